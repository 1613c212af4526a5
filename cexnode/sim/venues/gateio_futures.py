"""Simulated Gate.io USDT-settled futures v4: WebSocket ``/v4/ws/usdt``, REST ``/api/v4/futures/usdt/...``.

Channels (exchange-payloads README, "gateio_futures/"):

* ``futures.order_book_update`` ``[contract, "20ms"|"100ms", "20"|"50"|"100"]`` (20ms only with level
  20): changes of the top ``level`` levels as ``{"p": price, "s": size}`` objects, sizes absolute
  contracts, 0 deletes; the REST ``limit`` must equal the level (venue rule);
  ``full: true`` pushes on resets. Synced with ``GET /api/v4/futures/usdt/order_book?with_id=true``.
* ``futures.obu`` ``["ob.<contract>.400"|".50"]`` — levels are ``[price, size]`` string arrays.
* ``futures.book_ticker`` (``B``/``A`` integers), ``futures.trades`` (a list; ``size`` sign = taker side,
  ``create_time_ms`` integer), ``futures.ping`` → ``futures.pong``.

Sizes: integers, or decimal strings for a connection / request that sent ``X-Gate-Size-Decimal: 1``
(venue rule; without the header fractional sizes are truncated toward zero). Fractional contracts
exist only with ``sim.futures_decimal_sizes`` (contracts report ``enable_decimal: true``).
REST: ``/order_book``, ``/contracts[/{contract}]`` (a delisted contract ``status: delisting``,
``in_delisting: true``), ``/tickers[?contract=]`` (``volume_24h_quote``: the generated universe's
24 h volume, whole USDT as the venue rounds it), and ``/api/v4/spot/currencies`` (the spot wallet
that funds the futures account). ``current``/``update`` are float seconds (unlike spot's integer ms); ``with_id`` as on spot
(``true``/``false``; other spellings 400 ``INVALID_PARAM_VALUE``, see :meth:`GateVenue.bool_param`).
"""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from ..books import BookDiff
from ..instruments import SimInstrument, default_decimals, instrument_basis
from ._gate import GateVenue, SubError

__all__ = ["GateFuturesVenue", "SIM_VENUE"]


def _decimal_mode(headers) -> bool:
    return headers.get("X-Gate-Size-Decimal", "") == "1"


class GateFuturesVenue(GateVenue):
    market = "perpetual"
    DEFAULT_BOOK_VARIANT = ("100", False)
    ws_paths = ("/v4/ws/usdt",)
    prefix = "futures"
    symbol_params = ("contract",)
    order_id_start = 58828270140012048      # futures ids exceed 2**53 like the real ones: parse them as int64

    @classmethod
    def make_instrument(cls, venue: str, symbol: str, mid: Decimal, *,
                        decimal_contracts: bool = False) -> SimInstrument:
        # USDT futures: contracts of 10**-(digits-1) base (BTC 0.0001), integer contracts unless
        # decimal sizes are on (enable_decimal, X-Gate-Size-Decimal: 1), then 0.1 contract steps;
        # order_price_round one digit coarser than ~7 significant (BTC_USDT 0.1)
        base, quote, digits = instrument_basis(venue, symbol, mid, perpetual=True)
        pd, _ = default_decimals(digits)
        mult = Decimal(1).scaleb(-(digits - 1)) if digits > 1 else Decimal(1)
        return SimInstrument(venue=venue, symbol=symbol, venue_symbol=base + "_" + quote, base=base, quote=quote,
                             price_decimals=max(0, pd - 1), size_decimals=1 if decimal_contracts else 0,
                             multiplier=mult, min_qty=Decimal(1) if not decimal_contracts else Decimal("0.1"),
                             is_futures=True)

    def _parse_sub(self, conn, channel: Any, payload: list) -> list:
        dec = _decimal_mode(conn.headers)
        if channel == "futures.order_book_update":
            # levels 20/50/100; 20ms allows 20 only (1000ms and level 10 removed 2024-11-18)
            if len(payload) != 3 or payload[1] not in ("20ms", "100ms") or payload[2] not in ("20", "50", "100") \
                    or (payload[1] == "20ms" and payload[2] != "20"):
                raise SubError(2, "invalid argument: payload must be [contract, \"20ms\"|\"100ms\", level]")
            return [("book", self._pair(payload[0]), (payload[2], dec))]
        if channel == "futures.obu":
            return self._obu(payload, lambda level: (level, dec))
        if channel in ("futures.book_ticker", "futures.trades"):
            if not payload:
                raise SubError(2, "invalid argument: empty payload")
            kind = "ticker" if channel == "futures.book_ticker" else "trades"
            return [(kind, self._pair(p), dec) for p in payload]
        raise SubError(2, "unknown channel %s" % (channel,))

    def _pair(self, name: str) -> str:
        if name not in self.instruments:
            raise SubError(2, "unknown contract: %s" % name)
        return name

    # ---------------------------------------------------------------- wire shapes
    @staticmethod
    def _size(inst, steps: int, dec: bool):
        if dec:
            return inst.size_str(steps)
        return int(steps / 10 ** inst.size_decimals) if inst.size_decimals else steps   # truncated toward zero

    def _frames_for(self, kind: str, diff: BookDiff, variant: Any) -> list:
        inst = self.instruments[diff.symbol]
        now = self.push_clock()
        if kind == "book":
            level, dec = variant
            bids, asks = self.view_changes(kind, diff, int(level))
            r: dict = {"t": diff.ts_ms}
            if diff.full:
                r["full"] = True
                r["l"] = level
            r.update({"s": diff.symbol, "U": diff.first, "u": diff.last,
                      "b": [{"p": inst.price_str(p), "s": self._size(inst, q, dec)} for p, q in bids],
                      "a": [{"p": inst.price_str(p), "s": self._size(inst, q, dec)} for p, q in asks]})
            return [(orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": "futures.order_book_update",
                                   "event": "update", "result": r}), False)]
        if kind == "obu":
            level, dec = variant
            s = "ob.%s.%s" % (diff.symbol, level)
            r = {"t": diff.ts_ms, "full": True, "s": s, "u": diff.last} if diff.full else \
                {"t": diff.ts_ms, "s": s, "U": diff.first, "u": diff.last}
            bids, asks = self.view_changes(kind, diff, int(level))
            r["b"] = [[inst.price_str(p), str(self._size(inst, q, dec))] for p, q in bids]
            r["a"] = [[inst.price_str(p), str(self._size(inst, q, dec))] for p, q in asks]
            return [(orjson.dumps({"channel": "futures.obu", "result": r, "time_ms": int(now * 1000)}), False)]
        if kind == "ticker":
            dec = variant
            book = self.books[diff.symbol]
            bb, ba = book.best_bid(), book.best_ask()
            r = {"t": diff.ts_ms, "u": diff.last, "s": diff.symbol,
                 "b": inst.price_str(bb[0]) if bb else "", "B": self._size(inst, bb[1], dec) if bb else (("0" if dec else 0)),
                 "a": inst.price_str(ba[0]) if ba else "", "A": self._size(inst, ba[1], dec) if ba else (("0" if dec else 0))}
            return [(orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": "futures.book_ticker",
                                   "event": "update", "result": r}), False)]
        if kind == "trades":
            if not diff.trades:
                return []
            dec = variant
            res = []
            for t in diff.trades:
                size = self._size(inst, t.size, dec)
                size = size if t.taker_buy else (("-" + size) if dec else -size)
                res.append({"size": size, "id": t.id, "create_time": t.ts_ms // 1000, "create_time_ms": t.ts_ms,
                            "price": inst.price_str(t.price), "contract": diff.symbol})
            return [(orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": "futures.trades",
                                   "event": "update", "result": res}), False)]
        return []

    # ---------------------------------------------------------------- REST
    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v4/futures/usdt/order_book", self._order_book)
        router.add_get("/api/v4/futures/usdt/contracts", self._contracts)
        router.add_get("/api/v4/futures/usdt/contracts/{contract}", self._contract)
        router.add_get("/api/v4/futures/usdt/tickers", self._tickers)
        # the futures account is funded from the spot wallet: its status is served here too
        self._add_wallet_routes(router)

    async def _order_book(self, request: web.Request) -> web.Response:
        name = request.query.get("contract", "")
        if name not in self.instruments:
            return self.bad_request("CONTRACT_NOT_FOUND", "Contract not found: %s" % name)
        try:
            limit = self._limit(request, 10, 1000)
        except ValueError as e:
            return self.bad_request("INVALID_PARAM_VALUE", str(e))
        with_id, err = self.bool_param(request, "with_id")
        if err is not None:
            return err
        dec = _decimal_mode(request.headers)
        inst, book = self.instruments[name], self.books[name]
        bids, asks = book.top(limit)
        now = time.time()
        body: dict = {}
        if with_id:
            body["id"] = book.last_id
        body.update({"current": round(now, 3), "update": round((book.ts_ms / 1000.0) if book.ts_ms else now, 3),
                     "asks": [{"p": inst.price_str(p), "s": self._size(inst, q, dec)} for p, q in asks],
                     "bids": [{"p": inst.price_str(p), "s": self._size(inst, q, dec)} for p, q in bids]})
        return self.json_response(body)

    def _contract_info(self, inst, dec: bool) -> dict:
        book = self.books[inst.venue_symbol]
        bb, ba = book.best_bid(), book.best_ask()
        last = inst.price_str((bb[0] + ba[0]) // 2) if bb and ba else "0"
        size_min = inst.min_qty if inst.min_qty else inst.step
        halted = inst.venue_symbol in self.halted      # a delisting: in_delisting, reduce-only on the venue
        return {"name": inst.venue_symbol, "type": "direct", "quanto_multiplier": str(inst.multiplier),
                "ref_discount_rate": "0", "order_price_deviate": "0.5", "maintenance_rate": "0.005",
                "mark_type": "index", "last_price": last, "mark_price": last, "index_price": last,
                "funding_rate_indicative": "0.0001", "mark_price_round": str(inst.tick), "funding_offset": 0,
                "in_delisting": halted, "risk_limit_base": "1000000", "interest_rate": "0.0003",
                "order_price_round": str(inst.tick),
                "order_size_min": str(size_min) if dec else max(1, int(size_min)),
                "ref_rebate_rate": "0.2", "funding_interval": 28800, "risk_limit_step": "1000000",
                "leverage_min": "1", "leverage_max": "100", "risk_limit_max": "8000000",
                "maker_fee_rate": str(self.maker_fee), "taker_fee_rate": str(self.taker_fee),
                "funding_rate": "0.0001", "order_size_max": "1000000" if dec else 1000000,
                "funding_next_apply": 1610035200, "short_users": 0, "config_change_time": 1609899548,
                "trade_size": 0, "position_size": 0, "long_users": 0, "funding_impact_value": "60000",
                "orders_limit": 50, "trade_id": 0, "orderbook_id": book.last_id, "enable_bonus": False,
                "enable_credit": True, "create_time": 1669688556, "funding_cap_ratio": "0.75",
                "status": "delisting" if halted else "trading", "launch_time": 1609899548, "enable_decimal": inst.size_decimals > 0}

    def _ticker_row(self, inst) -> dict:
        # rest_tickers.json: volume_24h_quote / _settle are the generated universe's 24 h volume
        book = self.books[inst.venue_symbol]
        bb, ba = book.best_bid(), book.best_ask()
        mid = (bb[0] + ba[0]) // 2 if bb and ba else 0
        last = inst.price_str(mid)
        qv = self.quote_volume_24h(inst.venue_symbol)
        base = int(qv / inst.price(mid)) if qv is not None and mid else 0
        contracts = int(base / inst.multiplier)
        quote = self.volume_str(qv)
        return {"change_percentage": "0", "change_price": "0", "contract": inst.venue_symbol,
                "funding_rate": "0.0001", "funding_rate_indicative": "0.0001", "high_24h": last,
                "highest_bid": inst.price_str(bb[0]) if bb else "", "highest_size": str(self._size(inst, bb[1], False)) if bb else "0",
                "index_price": last, "last": last, "low_24h": last,
                "lowest_ask": inst.price_str(ba[0]) if ba else "", "lowest_size": str(self._size(inst, ba[1], False)) if ba else "0",
                "mark_price": last, "quanto_multiplier": str(inst.multiplier), "total_size": "0",
                "volume_24h": str(contracts), "volume_24h_base": str(base), "volume_24h_quote": quote,
                "volume_24h_settle": quote}

    async def _tickers(self, request: web.Request) -> web.Response:
        name = request.query.get("contract")
        if name is not None:
            if name not in self.instruments:
                return self.bad_request("CONTRACT_NOT_FOUND", "Contract not found: %s" % name)
            return self.json_response([self._ticker_row(self.instruments[name])])
        return self.json_response([self._ticker_row(i) for i in self.instruments.values()])

    async def _contracts(self, request: web.Request) -> web.Response:
        dec = _decimal_mode(request.headers)
        return self.json_response([self._contract_info(i, dec) for i in self.instruments.values()])

    async def _contract(self, request: web.Request) -> web.Response:
        name = request.match_info["contract"]
        if name not in self.instruments:
            return self.bad_request("CONTRACT_NOT_FOUND", "Contract not found: %s" % name)
        return self.json_response(self._contract_info(self.instruments[name], _decimal_mode(request.headers)))


SIM_VENUE = GateFuturesVenue
