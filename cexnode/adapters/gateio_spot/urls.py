"""Gate.io spot v4 endpoints (production). Paths include /api/v4: Gate signs the full path."""
WS_URL = "wss://api.gateio.ws/ws/v4/"
REST_URL = "https://api.gateio.ws"

TIME = "/api/v4/spot/time"
CURRENCY_PAIRS = "/api/v4/spot/currency_pairs"
ORDER_BOOK = "/api/v4/spot/order_book"     # ?currency_pair=&limit=&with_id=true -> id
ORDERS = "/api/v4/spot/orders"             # POST place; /{order_id}?currency_pair= GET / DELETE
ACCOUNTS = "/api/v4/spot/accounts"
