"""MEXC spot v3 endpoints (production). The embedded simulator serves the same paths on 127.0.0.1."""
WS_URL = "wss://wbs-api.mexc.com/ws"
REST_URL = "https://api.mexc.com"

PING = "/api/v3/ping"
TIME = "/api/v3/time"
EXCHANGE_INFO = "/api/v3/exchangeInfo"
DEPTH = "/api/v3/depth"                    # ?symbol=&limit= (max 5000) -> lastUpdateId
ORDER = "/api/v3/order"                    # POST new, DELETE cancel, GET query (signed)
ACCOUNT = "/api/v3/account"                # signed; 2 requests/s
MY_TRADES = "/api/v3/myTrades"             # ?symbol=&orderId= (signed): fills with commission
USER_DATA_STREAM = "/api/v3/userDataStream"  # POST create / PUT keep-alive / DELETE close (signed)
