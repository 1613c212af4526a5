"""Generate the test captures in this directory (run: ``.venv/bin/python tests/resources/captures/make_captures.py``).

Sources (see SOURCES.md): frame and REST shapes are those of the shared samples in
../shared/reference/exchange-payloads (gateio_spot/ws_order_book_update.json,
ws_order_book_update_full.doc.json, ws_obu_full.json, ws_subscribe_ack.json, ws_pong.json,
rest_order_book.json, rest_currency_pair.doc.json; gateio_futures/ws_obu_full.doc.json,
ws_obu_update.doc.json, rest_contract.doc.json; mexc/rest_exchange_info.json, rest_depth.json,
ws_push_aggre_depth.pb.hex, ws_subscribe_ack.json); the values (ids, prices, sizes, times) are
generated here so that the streams contain buffered pre-snapshot diffs, gaps with REST resyncs,
``full`` resets, obu gaps + new full pushes, duplicates, malformed frames and cross-venue
dislocations. MEXC pushes are encoded with the official protobuf runtime (cexnode.sim.venues.mexc_spot.proto).
The files are committed; regenerate only when the scenario changes.
"""
from __future__ import annotations

import base64
import gzip
import os
import sys

import orjson

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "..")))

from cexnode.sim.venues.mexc_spot.proto import encode_aggre_depth  # noqa: E402

T0 = 1_763_856_000_000_000_000          # 2025-11-23T00:00:00Z in ns
MS = 1_000_000


class Cap:
    def __init__(self):
        self.lines = []
        self.t = T0

    def tick(self, ms=5):
        self.t += ms * MS
        return self.t

    def text(self, venue, obj_or_text):
        data = obj_or_text if isinstance(obj_or_text, str) else orjson.dumps(obj_or_text).decode()
        self.lines.append({"t": self.tick(), "venue": venue, "kind": "ws", "op": "text", "data": data})

    def binary(self, venue, payload: bytes):
        self.lines.append({"t": self.tick(), "venue": venue, "kind": "ws", "op": "binary",
                           "data": base64.b64encode(payload).decode()})

    def rest(self, venue, path, query, body, status=200):
        self.lines.append({"t": self.tick(), "venue": venue, "kind": "rest", "method": "GET", "path": path,
                           "query": query, "status": status,
                           "body": body if isinstance(body, str) else orjson.dumps(body).decode()})

    def write(self, name, extra_raw=()):
        data = b"".join(orjson.dumps(x) + b"\n" for x in self.lines) + b"".join(extra_raw)
        path = os.path.join(HERE, name)
        if name.endswith(".gz"):
            with gzip.GzipFile(path, "wb", mtime=0) as fh:
                fh.write(data)
        else:
            with open(path, "wb") as fh:
                fh.write(data)


def gate_obu_spot(c, U, u, bids, asks, full=False):
    r = {"t": c.t // MS, "s": "ob.BTC_USDT.400", "u": u, "b": bids, "a": asks}
    if full:
        r["full"] = True
    else:
        r["U"] = U
    c.text("gateio_spot", {"channel": "spot.obu", "result": r, "time_ms": c.t // MS, "event": "update"})


def gate_obu_fut(c, U, u, bids, asks, full=False):
    r = {"t": c.t // MS, "s": "ob.BTC_USDT.400", "u": u, "b": bids, "a": asks}
    if full:
        r["full"] = True
    else:
        r["U"] = U
    c.text("gateio_futures", {"channel": "futures.obu", "result": r, "time_ms": c.t // MS})


def gate_obu(c, U, u, bids, asks, full=False):
    gate_obu_spot(c, U, u, bids, asks, full)


def gate_diff(c, U, u, bids, asks, full=False):
    r = {"t": c.t // MS, "e": "depthUpdate", "E": c.t // 10**9, "s": "BTC_USDT", "U": U, "u": u,
         "b": bids, "a": asks}
    if full:
        r["full"] = True
    c.text("gateio_spot", {"time": c.t // 10**9, "time_ms": c.t // MS, "channel": "spot.order_book_update",
                           "event": "update", "result": r})


def mexc_diff(c, frm, to, bids, asks):
    c.binary("mexc_spot", encode_aggre_depth("spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT", "BTCUSDT",
                                             bids, asks, frm, to, send_time=c.t // MS + 1,
                                             create_time=c.t // MS))


GATE_PAIR = {"id": "BTC_USDT", "base": "BTC", "base_name": "Bitcoin", "quote": "USDT", "quote_name": "Tether",
             "fee": "0.2", "min_base_amount": "0.0001", "min_quote_amount": "1", "max_base_amount": "1000",
             "max_quote_amount": "10000000", "amount_precision": 4, "precision": 1,
             "trade_status": "tradable", "sell_start": 1516378650, "buy_start": 1516378650,
             "delisting_time": 0, "trade_url": "https://www.gate.io/trade/BTC_USDT", "st_tag": False}
MEXC_INFO = {"timezone": "CST", "serverTime": T0 // MS, "rateLimits": [], "exchangeFilters": [], "symbols": [
    {"symbol": "BTCUSDT", "status": "1", "baseAsset": "BTC", "baseAssetPrecision": 6, "quoteAsset": "USDT",
     "quotePrecision": 2, "quoteAssetPrecision": 2, "baseCommissionPrecision": 6, "quoteCommissionPrecision": 2,
     "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"], "isSpotTradingAllowed": True,
     "isMarginTradingAllowed": False, "quoteAmountPrecision": "1", "baseSizePrecision": "0",
     "permissions": ["SPOT"], "filters": [], "maxQuoteAmount": "2000000", "makerCommission": "0",
     "takerCommission": "0.0005", "fullName": "Bitcoin"},
    {"symbol": "ETHUSDT", "status": "1", "baseAsset": "ETH", "baseAssetPrecision": 5, "quoteAsset": "USDT",
     "quotePrecision": 2, "quoteAssetPrecision": 2, "baseCommissionPrecision": 5, "quoteCommissionPrecision": 2,
     "orderTypes": ["LIMIT"], "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
     "quoteAmountPrecision": "1", "baseSizePrecision": "0", "permissions": ["SPOT"], "filters": [],
     "maxQuoteAmount": "2000000", "makerCommission": "0", "takerCommission": "0.0005", "fullName": "Ethereum"}]}
FUT_CONTRACT = {"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001", "order_price_round": "0.1",
                "mark_price_round": "0.01", "order_size_min": 1, "order_size_max": 1000000, "status": "trading",
                "in_delisting": False, "maker_fee_rate": "-0.00025", "taker_fee_rate": "0.00075",
                "enable_decimal": False}


def spot_spot():
    """gateio_spot order_book_update + mexc_spot aggre depth, BTC/USDT."""
    c = Cap()
    c.rest("gateio_spot", "/api/v4/spot/currency_pairs/BTC_USDT", "", GATE_PAIR)
    c.rest("mexc_spot", "/api/v3/exchangeInfo", "symbols=BTCUSDT", MEXC_INFO)
    c.text("gateio_spot", {"time": c.t // 10**9, "time_ms": c.t // MS, "channel": "spot.order_book_update",
                           "event": "subscribe", "payload": ["BTC_USDT", "100ms"], "result": {"status": "success"}})
    c.text("mexc_spot", '{"id":1,"code":0,"msg":"spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"}')
    # pre-snapshot diffs: buffered, then bridged by the snapshot (id 100)
    gate_diff(c, 95, 99, [["29990.0", "1"]], [])                         # older than the snapshot: dropped
    gate_diff(c, 100, 101, [["29999.0", "0.5"]], [])                     # bridges 100 -> 101
    mexc_diff(c, 5001, 5001, [["29998.00", "0.3"]], [])
    c.rest("gateio_spot", "/api/v4/spot/order_book", "currency_pair=BTC_USDT&limit=100&with_id=true",
           {"id": 100, "current": c.t // MS, "update": c.t // MS,
            "asks": [["30001.0", "1"], ["30002.0", "2"], ["30005.0", "3"]],
            "bids": [["30000.0", "1"], ["29999.0", "2"], ["29995.0", "3"]]})
    c.rest("mexc_spot", "/api/v3/depth", "symbol=BTCUSDT&limit=1000",
           {"lastUpdateId": 5000, "bids": [["29999.50", "1.5"], ["29998.00", "2"]],
            "asks": [["30000.50", "1.2"], ["30003.00", "2"]]})
    for k in range(4):                                                    # normal flow
        gate_diff(c, 102 + k, 102 + k, [["30000.0", str(1 + k)]], [])
        mexc_diff(c, 5002 + k, 5002 + k, [], [["30000.50", "1.%d" % (k + 3)]])
    # dislocation: gate bids jump far above mexc's ask -> buy mexc, sell gate
    gate_diff(c, 106, 106, [["30150.0", "0.2"], ["30120.0", "0.3"]],
              [["30001.0", "0"], ["30002.0", "0"], ["30005.0", "0"], ["30151.0", "1"]])
    mexc_diff(c, 5006, 5006, [], [["30000.50", "0.4"]])                  # mexc changes: re-evaluated
    gate_diff(c, 106, 106, [["30150.0", "0.2"]], [])                     # duplicate: stale, ignored
    c.text("gateio_spot", '{"time":1,"channel":"spot.order_book_update","event":"update","result":{"s":"BTC_USDT","U":')
    c.binary("mexc_spot", b"\x0a\x05spot@\x9a\x13\xff\xff")               # malformed protobuf
    # gap on gate: 110 after 106 -> resync; diffs buffered until the captured answer (id 111)
    gate_diff(c, 110, 111, [["30000.0", "5"]], [["30151.0", "0"]])
    gate_diff(c, 112, 112, [["29999.0", "0"]], [])
    c.rest("gateio_spot", "/api/v4/spot/order_book", "currency_pair=BTC_USDT&limit=100&with_id=true",
           {"id": 111, "current": c.t // MS, "update": c.t // MS,
            "asks": [["30001.0", "1"], ["30002.0", "2"]], "bids": [["30000.0", "5"], ["29999.0", "2"]]})
    gate_diff(c, 113, 113, [["29998.0", "1"]], [])
    # full reset (Gate `full: true`): replaces the book; a dislocation the other way (gate ask low)
    gate_diff(c, 200, 200, [["29890.0", "1"]], [["29900.0", "0.3"], ["29910.0", "1"]], full=True)
    mexc_diff(c, 5007, 5007, [["30040.00", "0.25"]],                      # mexc bid above gate ask
              [["30000.50", "0"], ["30003.00", "0"], ["30041.00", "1"]])
    # MEXC gap -> resync with a failed answer (500) first, then a good one
    mexc_diff(c, 5010, 5010, [["29990.00", "1"]], [])
    c.rest("mexc_spot", "/api/v3/depth", "symbol=BTCUSDT&limit=1000", '{"code":500,"msg":"busy"}', status=500)
    c.rest("mexc_spot", "/api/v3/depth", "symbol=BTCUSDT&limit=1000",
           {"lastUpdateId": 5010, "bids": [["29999.00", "1"]], "asks": [["30000.00", "1"]]})
    mexc_diff(c, 5011, 5011, [["29999.50", "0.7"]], [])
    c.text("gateio_spot", {"time": c.t // 10**9, "time_ms": c.t // MS, "conn_id": "x", "channel": "spot.pong",
                           "event": "", "result": None})
    c.write("spot_spot.jsonl", extra_raw=[b"this line is not a capture entry\n"])
    c.write("spot_spot_clean.jsonl")


def obu_spot_perp():
    """gateio_spot obu + gateio_futures obu (stream-full rule), BTC/USDT spot-perp route; gzip."""
    c = Cap()
    c.rest("gateio_spot", "/api/v4/spot/currency_pairs", "", [GATE_PAIR])
    c.rest("gateio_futures", "/api/v4/futures/usdt/contracts", "", [FUT_CONTRACT])
    c.text("gateio_spot", {"time": c.t // 10**9, "time_ms": c.t // MS, "channel": "spot.obu", "event": "subscribe",
                           "payload": ["ob.BTC_USDT.400"], "result": {"status": "success"}})
    gate_obu(c, 0, 1000, [["30000.0", "1"], ["29999.0", "2"]], [["30001.0", "1"], ["30002.0", "2"]], full=True)
    gate_obu_fut(c, 0, 7000, [["29999.9", "10000"]], [["30000.1", "10000"]], full=True)
    for k in range(3):
        gate_obu(c, 1001 + k, 1001 + k, [["30000.0", str(2 + k)]], [])
        gate_obu_fut(c, 7001 + k, 7001 + k, [], [["30000.1", str(12000 + k)]])
    # perp bid far above spot ask -> buy spot, sell perp (sizes are contracts of 0.0001 BTC)
    gate_obu_fut(c, 7004, 7004, [["30100.0", "3000"], ["30090.0", "5000"]], [["30000.1", "0"], ["30100.5", "1000"]])
    # spot gap -> out of sync until the next full push; perp updates meanwhile cannot trade
    gate_obu(c, 1010, 1010, [["30000.0", "9"]], [])
    gate_obu_fut(c, 7005, 7005, [["30100.0", "2500"]], [])
    c.text("gateio_futures", '{"channel":"futures.obu","result":{"t":1,"s":"ob.BTC_USDT.400","U":7006,"u":7006,"b":[["x","1"]]}}')
    gate_obu(c, 0, 1020, [["30010.0", "1"]], [["30011.0", "0.5"], ["30012.0", "1"]], full=True)
    gate_obu_fut(c, 7006, 7006, [["30100.0", "2400"]], [])
    c.write("obu_spot_perp.jsonl.gz")


if __name__ == "__main__":
    spot_spot()
    obu_spot_perp()
    print("written:", sorted(f for f in os.listdir(HERE) if f.endswith((".jsonl", ".gz"))))
