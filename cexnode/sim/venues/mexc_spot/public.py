"""Simulated MEXC spot v3: WebSocket ``/ws`` (protobuf pushes) and REST ``/api/v3/...`` (public side).

WebSocket (exchange-payloads README, "mexc/" and "Key protocol gotchas / MEXC"):

* control frames are JSON text: ``{"method":"SUBSCRIPTION","params":[topics],"id"?}`` → one ack
  ``{"id":id,"code":0,"msg":"t1,t2"}``; a rejected topic gets ``{"id":id,"code":0,"msg":"Not Subscribed
  successfully! [t1,t2].  Reason： Blocked! "}`` (**code 0**: detect by the text). Rejected: the old
  JSON topics (no ``.pb``), unknown topics or symbols, topics beyond 30 subscriptions per connection
  (then the reason is ``Maximum subscriptions exceeded!``: the real wording is not documented).
  ``UNSUBSCRIPTION`` acks the same way; ``{"method":"PING"}`` and ``{"method":"ping"}`` (ccxt's casing, answered
  alike by the venue in a public log) → ``{"id":0,"code":0,"msg":"PONG"}``.
* pushes are binary ``PushDataV3ApiWrapper`` frames encoded with the official protobuf runtime
  (:mod:`cexnode.sim.venues.mexc_spot.proto`):
  ``spot@public.aggre.depth.v3.api.pb@(10ms|100ms)@SYM`` (fromVersion/toVersion, synced with REST
  ``/api/v3/depth`` ``lastUpdateId``; at most one push per named interval and symbol, merging the
  interval's diffs: fromVersion of the first, toVersion of the last, the latest quantity per price), ``spot@public.limit.depth.v3.api.pb@SYM@(5|10|20)``,
  ``spot@public.aggre.bookTicker.v3.api.pb@(10ms|100ms)@SYM``, ``spot@public.aggre.deals.v3.api.pb@(10ms|100ms)@SYM``.
* a connection without a valid subscription is closed after ``sim.mexc_no_subscription_close_s``
  (venue: 30 s); every connection after ``sim.mexc_max_connection_age_s`` (venue: 24 h).

REST: ``/api/v3/depth?symbol=&limit=`` (default 100, max 5000), ``/api/v3/exchangeInfo[?symbol=|symbols=]``
(a delisted symbol: ``status "3"``, ``isSpotTradingAllowed: false``),
``/api/v3/ticker/bookTicker[?symbol=]``, ``/api/v3/ticker/24hr[?symbol=]`` (statistics since the venue
started: open = the mid then, high/low/last/volumes from the public trades; ``quoteVolume`` the generated
universe's 24 h volume when there is one), ``/api/v3/time``,
``/api/v3/ping``, ``/api/v1/contract/detail`` (the futures contract list ccxt's fetchMarkets also asks
for: empty, no MEXC contracts are simulated). Errors ``{"code","msg"}``.
"""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Optional

import orjson
from aiohttp import web

from ...books import BookDiff
from ...instruments import SimInstrument, default_decimals, instrument_basis
from ...server import SimConnection, SimVenue
from . import proto as mp
from .trading import MexcTrading

__all__ = ["MexcSpotVenue", "MAX_SUBSCRIPTIONS"]

MAX_SUBSCRIPTIONS = 30
_DEPTH = "spot@public.aggre.depth.v3.api.pb"
_LIMIT = "spot@public.limit.depth.v3.api.pb"
_TICKER = "spot@public.aggre.bookTicker.v3.api.pb"
_DEALS = "spot@public.aggre.deals.v3.api.pb"
_KINDS = {_DEPTH: "book", _TICKER: "ticker", _DEALS: "trades"}


class MexcSpotVenue(SimVenue):
    """MEXC spot v3 (module docstring).

    ``ws_handlers`` (the trading side's hook) are looked up by topic
    (``"spot@private.orders.v3.api.pb"``...) and called as ``handler(conn, topic)`` for a
    SUBSCRIPTION of that topic: True accepts it (it joins ``conn.subscriptions`` and the combined
    ack), False rejects it. ``conn.query["listenKey"]`` is the key from the URL.
    """

    DEFAULT_BOOK_VARIANT = "10ms"
    ws_paths = ("/ws",)
    supports_full = False
    max_connections = 10_000
    BOOK_KINDS = ("book",)
    rest_rate_limit = (500, 10.0)        # 500 requests per 10 s per endpoint (no quota headers)
    MAX_CLIENT_MESSAGES_PER_S = 100      # more client messages per second close the connection
    symbol_params = ("symbol",)
    trading_class = MexcTrading
    order_id_start = 505979017439002624
    universe_step_ms = (10.0, 100.0)     # the aggregated streams' two intervals (@10ms, @100ms)
    template_time_varint = True          # sendTime: int64 milliseconds in the protobuf wrapper

    @classmethod
    def make_instrument(cls, venue: str, symbol: str, mid: Decimal, *,
                        decimal_contracts: bool = False) -> SimInstrument:
        # BTCUSDT: ~7 significant price digits (0.01 at 65000), sizes 1e-6, fixed-precision strings
        base, quote, digits = instrument_basis(venue, symbol, mid, perpetual=False)
        pd, sd = default_decimals(digits)
        return SimInstrument(venue=venue, symbol=symbol, venue_symbol=base + quote, base=base, quote=quote,
                             price_decimals=pd, size_decimals=sd, min_notional=Decimal(1), strip_zeros=False)

    @classmethod
    def is_control_frame(cls, text: bytes) -> bool:
        """Acks, PONG and rejections: JSON text (the pushes are binary protobuf)."""
        try:
            m = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(m, dict):
            return False
        return "method" in m or ("code" in m and "msg" in m and "channel" not in m)

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        # 24 h ticker statistics per symbol since the venue started (the simulator runs for less
        # than a day): [open_ms, open ticks, high, low, last, volume steps, sum of ticks × steps]
        self._stats: dict[str, list] = {}

    def publish(self, diff: BookDiff, replay: Optional[tuple] = None) -> None:
        for t in diff.trades:
            st = self._stat(diff.symbol)
            st[2], st[3], st[4] = max(st[2], t.price), min(st[3], t.price), t.price
            st[5] += t.size
            st[6] += t.price * t.size
        super().publish(diff, replay)

    def _stat(self, vsym: str) -> list:
        st = self._stats.get(vsym)
        if st is None:
            book = self.books[vsym]
            bb, ba = book.best_bid(), book.best_ask()
            mid = (bb[0] + ba[0]) // 2 if bb and ba else (bb or ba or (0, 0))[0]
            st = self._stats[vsym] = [int(time.time() * 1000), mid, mid, mid, mid, 0, 0]
        return st

    # ---------------------------------------------------------------- connections
    def _on_connected(self, conn: SimConnection) -> None:
        super()._on_connected(conn)
        sc = self.sim.cfg
        conn.call_later(sc.mexc_no_subscription_close_s,
                        lambda: conn.close(1000) if not conn.subscriptions else None)
        conn.call_later(sc.mexc_max_connection_age_s, lambda: conn.close(1000))

    def _parse_topic(self, topic: str) -> Optional[tuple[str, str, Any]]:
        """``(kind, venue_symbol, variant)`` of a public topic, or None when it is not one we serve."""
        parts = topic.split("@")
        if len(parts) != 4:
            return None
        ch = parts[0] + "@" + parts[1]
        if ch == _LIMIT:
            sym, n = parts[2], parts[3]
            if sym in self.instruments and n in ("5", "10", "20"):
                return ("limit", sym, int(n))
            return None
        kind = _KINDS.get(ch)
        if kind is None or parts[2] not in ("10ms", "100ms") or parts[3] not in self.instruments:
            return None
        return (kind, parts[3], parts[2])

    def _reject(self, conn: SimConnection, req_id: Any, topics: list, reason: str) -> None:
        conn.send_json({"id": req_id, "code": 0,
                        "msg": "Not Subscribed successfully! [%s].  Reason： %s " % (",".join(topics), reason)})

    def on_text(self, conn: SimConnection, data: bytes) -> None:
        now = time.monotonic()
        start, n = conn.msg_window or (now, 0)
        if now - start >= 1.0:
            start, n = now, 0
        conn.msg_window = (start, n + 1)
        if n + 1 > self.MAX_CLIENT_MESSAGES_PER_S:
            conn.close(1008)           # venue rule: at most 100 messages per second per connection
            return
        try:
            msg = orjson.loads(data)
            if not isinstance(msg, dict):
                raise ValueError
        except ValueError:
            conn.send_json({"id": 0, "code": 400, "msg": "invalid request"})
            return
        method = msg.get("method")
        req_id = msg.get("id", 0)
        if method in ("PING", "ping"):
            # ccxt sends lower case; the venue answered it with the same upper-case PONG (reference
            # README "MEXC WebSocket keep-alive casing", ws_ping_request_lowercase.json)
            conn.send_json({"id": 0, "code": 0, "msg": "PONG"})
            return
        params = msg.get("params")
        if method not in ("SUBSCRIPTION", "UNSUBSCRIPTION") or not isinstance(params, list) \
                or not all(isinstance(t, str) for t in params):
            conn.send_json({"id": req_id, "code": 400, "msg": "invalid request"})
            return
        if method == "UNSUBSCRIPTION":
            for topic in params:
                parsed = self._parse_topic(topic)
                if parsed is not None:
                    self.unsubscribe(conn, parsed[0], parsed[1])
                conn.subscriptions.discard(topic)
            conn.send_json({"id": req_id, "code": 0, "msg": ",".join(params)})
            return
        accepted, blocked, over = [], [], []
        for topic in params:
            if topic in conn.subscriptions:
                accepted.append(topic)
                continue
            if self.faults.rejecting:
                blocked.append(topic)
                continue
            handler = self.ws_handlers.get(topic)
            parsed = self._parse_topic(topic) if handler is None else None
            if handler is None and parsed is None:
                blocked.append(topic)           # JSON topics, unknown channels and symbols: "Blocked!"
                continue
            if len(conn.subscriptions) >= MAX_SUBSCRIPTIONS:
                over.append(topic)
                continue
            if handler is not None:
                if not self._run_handler(handler, conn, topic):
                    blocked.append(topic)
                    continue
            else:
                self.subscribe(conn, parsed[0], parsed[1], parsed[2])
            conn.subscriptions.add(topic)
            accepted.append(topic)
        if accepted:
            conn.send_json({"id": req_id, "code": 0, "msg": ",".join(accepted)})
        if blocked:
            self._reject(conn, req_id, blocked, "Blocked!")
        if over:
            self._reject(conn, req_id, over, "Maximum subscriptions exceeded!")

    # ---------------------------------------------------------------- wire shapes
    _INTERVALS = {"10ms": 0.010, "100ms": 0.100}

    def batch_interval(self, kind: str, variant: Any) -> Optional[float]:
        # aggre depth pushes come once per the interval the topic names, each merging the diffs of
        # that interval (fromVersion of the first, toVersion of the last, the latest quantity per
        # price): the 100ms sample spans 8 versions (ws_push_aggre_depth_100ms.decoded.json)
        return self._INTERVALS.get(variant) if kind == "book" else None

    def _malformed_frame(self, frame: bytes, binary: bool) -> bytes:
        # a truncated protobuf: the wrapper's length-delimited field runs past the end
        return frame[: max(2, len(frame) // 2)]

    def _frames_for(self, kind: str, diff: BookDiff, variant: Any) -> list:
        inst = self.instruments[diff.symbol]
        sym = diff.symbol
        now = int(self.push_clock() * 1000)
        if kind == "book":
            ch = "%s@%s@%s" % (_DEPTH, variant, sym)
            data = mp.encode_aggre_depth(ch, sym, [(inst.price_str(p), inst.size_str(q)) for p, q in diff.bids],
                                         [(inst.price_str(p), inst.size_str(q)) for p, q in diff.asks],
                                         diff.first, diff.last, event_type="%s@%s" % (_DEPTH, variant), send_time=now)
            return [(data, True)]
        if kind == "limit":
            b, a = self.books[sym].top(variant)
            data = mp.encode_limit_depth("%s@%s@%d" % (_LIMIT, sym, variant), sym,
                                         [(inst.price_str(p), inst.size_str(q)) for p, q in b],
                                         [(inst.price_str(p), inst.size_str(q)) for p, q in a],
                                         diff.last, event_type=_LIMIT, send_time=now)
            return [(data, True)]
        if kind == "ticker":
            book = self.books[sym]
            bb, ba = book.best_bid(), book.best_ask()
            data = mp.encode_aggre_book_ticker("%s@%s@%s" % (_TICKER, variant, sym), sym,
                                               (inst.price_str(bb[0]), inst.size_str(bb[1])) if bb else None,
                                               (inst.price_str(ba[0]), inst.size_str(ba[1])) if ba else None,
                                               version=diff.last, send_time=now)
            return [(data, True)]
        if kind == "trades":
            if not diff.trades:
                return []
            deals = [(inst.price_str(t.price), inst.size_str(t.size), 1 if t.taker_buy else 2, t.ts_ms, str(t.id))
                     for t in diff.trades]
            data = mp.encode_aggre_deals("%s@%s@%s" % (_DEALS, variant, sym), sym, deals,
                                         event_type="%s@%s" % (_DEALS, variant), send_time=now)
            return [(data, True)]
        return []

    # ---------------------------------------------------------------- REST
    def rest_error(self, status: int, text: str, headers: Optional[dict] = None) -> web.Response:
        return self.json_response({"code": status, "msg": text}, status=status, headers=headers)

    def _bad(self, code: int, msg: str) -> web.Response:
        return self.json_response({"code": code, "msg": msg}, status=400)

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v3/depth", self._depth)
        router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        router.add_get("/api/v3/ticker/bookTicker", self._book_ticker)
        router.add_get("/api/v3/time", self._time)
        router.add_get("/api/v3/ping", self._ping)
        router.add_get("/api/v3/ticker/24hr", self._ticker_24hr)
        # ccxt's mexc fetchMarkets always asks the futures contract list too (at the contract
        # API's base URL); the simulated venue lists no contracts
        router.add_get("/api/v1/contract/detail", self._contract_detail)

    async def _depth(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol", "")
        if sym not in self.instruments:
            return self._bad(10007, "bad symbol")
        raw = request.query.get("limit", "100")
        try:
            limit = int(raw)
            if not 1 <= limit <= 5000:
                raise ValueError
        except ValueError:
            return self._bad(-1100, "Illegal characters found in parameter 'limit'; legal range is '1-5000'.")
        inst, book = self.instruments[sym], self.books[sym]
        b, a = book.top(limit)
        return self.json_response({"lastUpdateId": book.last_id,
                                   "bids": [[inst.price_str(p), inst.size_str(q)] for p, q in b],
                                   "asks": [[inst.price_str(p), inst.size_str(q)] for p, q in a],
                                   "timestamp": int(time.time() * 1000)})

    def _symbol_info(self, inst) -> dict:
        # a delisted symbol: status "3" (offline) and no API trading (isSpotTradingAllowed, the flag
        # that counts: README "mexc/ REST: market universe")
        halted = inst.venue_symbol in self.halted
        return {"symbol": inst.venue_symbol, "status": "3" if halted else "1", "baseAsset": inst.base,
                "baseAssetPrecision": inst.size_decimals, "quoteAsset": inst.quote,
                "quotePrecision": inst.price_decimals, "quoteAssetPrecision": inst.price_decimals,
                "baseCommissionPrecision": inst.size_decimals, "quoteCommissionPrecision": inst.price_decimals,
                "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"], "isSpotTradingAllowed": not halted,
                "isMarginTradingAllowed": False, "quoteAmountPrecision": str(inst.min_notional),
                "baseSizePrecision": str(inst.min_qty), "permissions": ["SPOT"], "filters": [],
                "maxQuoteAmount": "2000000", "makerCommission": str(self.maker_fee),
                "takerCommission": str(self.taker_fee), "quoteAmountPrecisionMarket": str(inst.min_notional),
                "maxQuoteAmountMarket": "100000", "fullName": inst.base, "tradeSideType": 1}

    async def _exchange_info(self, request: web.Request) -> web.Response:
        want = None
        if "symbol" in request.query:
            want = [request.query["symbol"]]
        elif "symbols" in request.query:
            want = [s for s in request.query["symbols"].split(",") if s]
        if want is not None:
            missing = [s for s in want if s not in self.instruments]
            if missing:
                return self._bad(-1121, "Invalid symbol.")
            insts = [self.instruments[s] for s in want]
        else:
            insts = list(self.instruments.values())
        return self.json_response({"timezone": "CST", "serverTime": int(time.time() * 1000), "rateLimits": [],
                                   "exchangeFilters": [], "symbols": [self._symbol_info(i) for i in insts]})

    def _ticker(self, inst) -> dict:
        book = self.books[inst.venue_symbol]
        bb, ba = book.best_bid(), book.best_ask()
        return {"symbol": inst.venue_symbol,
                "bidPrice": inst.price_str(bb[0]) if bb else "", "bidQty": inst.size_str(bb[1]) if bb else "",
                "askPrice": inst.price_str(ba[0]) if ba else "", "askQty": inst.size_str(ba[1]) if ba else ""}

    async def _book_ticker(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol")
        if sym is None:
            return self.json_response([self._ticker(i) for i in self.instruments.values()])
        if sym not in self.instruments:
            return self._bad(-1121, "Invalid symbol.")
        return self.json_response(self._ticker(self.instruments[sym]))

    def _ticker_24h(self, inst) -> dict:
        # rest_ticker_24hr.json (live 2025-12) in wire key order (ccxt fixture): strings for prices and
        # sizes, numbers for the times, count null, priceChangePercent a fraction
        st = self._stat(inst.venue_symbol)
        t = self._ticker(inst)
        open_px, last = inst.price(st[1]), inst.price(st[4])
        change = last - open_px
        return {"symbol": inst.venue_symbol, "priceChange": inst.price_str(st[4] - st[1]) if st[4] >= st[1]
                else "-" + inst.price_str(st[1] - st[4]),
                "priceChangePercent": format((change / open_px).quantize(Decimal("0.0001")), "f") if open_px else "0",
                "prevClosePrice": inst.price_str(st[1]), "lastPrice": inst.price_str(st[4]),
                "bidPrice": t["bidPrice"], "bidQty": t["bidQty"], "askPrice": t["askPrice"], "askQty": t["askQty"],
                "openPrice": inst.price_str(st[1]), "highPrice": inst.price_str(st[2]),
                "lowPrice": inst.price_str(st[3]), "volume": inst.size_str(st[5]),
                "quoteVolume": self._quote_volume(inst, st), "openTime": st[0],
                "closeTime": int(time.time() * 1000), "count": None}

    def _quote_volume(self, inst, st: list) -> str:
        # the generated universe's 24 h volume; else what the public trades since start came to
        qv = self.quote_volume_24h(inst.venue_symbol)
        return format(qv if qv is not None else (inst.tick * inst.step * st[6]).normalize(), "f")

    async def _ticker_24hr(self, request: web.Request) -> web.Response:
        sym = request.query.get("symbol")
        if sym is None:
            return self.json_response([self._ticker_24h(i) for i in self.instruments.values()])
        if sym not in self.instruments:
            return self._bad(-1121, "Invalid symbol.")
        return self.json_response(self._ticker_24h(self.instruments[sym]))

    async def _contract_detail(self, request: web.Request) -> web.Response:
        return self.json_response({"success": True, "code": 0, "data": []})

    async def _time(self, request: web.Request) -> web.Response:
        return self.json_response({"serverTime": int(time.time() * 1000)})

    async def _ping(self, request: web.Request) -> web.Response:
        return self.json_response({})
