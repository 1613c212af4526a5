"""Gate.io USDT-settled futures v4 endpoints (production). Paths include /api/v4 (signed as such)."""
WS_URL = "wss://fx-ws.gateio.ws/v4/ws/usdt"
REST_URL = "https://api.gateio.ws"

CONTRACTS = "/api/v4/futures/usdt/contracts"
ORDER_BOOK = "/api/v4/futures/usdt/order_book"   # ?contract=&limit=&with_id=true (limit == WS level)
ORDERS = "/api/v4/futures/usdt/orders"
ACCOUNTS = "/api/v4/futures/usdt/accounts"
POSITIONS = "/api/v4/futures/usdt/positions"
# Sizes as decimal strings (fractional contracts): send on REST requests AND the WS handshake.
SIZE_DECIMAL_HEADER = ("X-Gate-Size-Decimal", "1")
