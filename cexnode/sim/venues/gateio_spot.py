"""Simulated Gate.io spot v4: WebSocket ``/ws/v4/`` and REST ``/api/v4/spot/...`` (public side).

Channels (exchange-payloads README, "gateio_spot/"):

* ``spot.order_book_update`` ``[pair, "20ms"|"100ms"]`` — diffs of the top 20 / top 100 levels with
  ``U``/``u`` (one push may span several ids; a push whose changes are all deeper keeps the ids
  contiguous with empty sides), ``full: true`` pushes on resets; synced with
  ``GET /api/v4/spot/order_book?limit=<20|100>&with_id=true``. Pushed every ``sim.update_interval_ms``.
* ``spot.obu`` ``["ob.<pair>.400"|"ob.<pair>.50"]`` — first push full (``u`` only), then ``U``/``u``;
  a duplicate subscription is error code 2 ``Alert sub ob.<pair>.<level>``.
* ``spot.book_ticker`` ``[pairs]``, ``spot.trades`` ``[pairs]`` (taker side; ``create_time_ms`` is a
  decimal string), ``spot.ping`` → ``spot.pong``.

REST: ``/api/v4/spot/order_book`` (``id`` only with ``with_id=true``; ``current``/``update`` integer ms;
``with_id`` spelled other than ``true``/``false``, e.g. gate-api's ``True``, is refused with 400
``INVALID_PARAM_VALUE`` as Gate refused it, unless ``sim.gate_python_bools``: see
:meth:`GateVenue.bool_param`), ``/api/v4/spot/currency_pairs[/{pair}]`` (a delisted pair ``trade_status: untradable``), ``/api/v4/spot/time``,
``/api/v4/spot/currencies[/{currency}]`` (frozen and delisted assets per chain with a
generated universe), ``/api/v4/spot/tickers[?currency_pair=]``, ``/api/v4/margin/currency_pairs`` (deprecated; ccxt calls it).
Errors ``{"label","message"}``.
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

__all__ = ["GateSpotVenue", "SIM_VENUE"]


class GateSpotVenue(GateVenue):
    DEFAULT_BOOK_VARIANT = "100"
    ws_paths = ("/ws/v4/", "/ws/v4")
    prefix = "spot"
    symbol_params = ("currency_pair",)
    order_id_start = 1852454420

    @classmethod
    def make_instrument(cls, venue: str, symbol: str, mid: Decimal, *,
                        decimal_contracts: bool = False) -> SimInstrument:
        # BTC_USDT: one price digit fewer than ~7 significant (0.1 at 65000), sizes 1e-6
        base, quote, digits = instrument_basis(venue, symbol, mid, perpetual=False)
        pd, sd = default_decimals(digits)
        return SimInstrument(venue=venue, symbol=symbol, venue_symbol=base + "_" + quote, base=base, quote=quote,
                             price_decimals=max(0, pd - 1), size_decimals=sd,
                             min_qty=Decimal(1).scaleb(-sd), min_notional=Decimal(3))

    def _parse_sub(self, conn, channel: Any, payload: list) -> list:
        if channel == "spot.order_book_update":
            # one pair per request; 1000ms was removed on 2024-11-28
            if len(payload) != 2 or payload[1] not in ("20ms", "100ms"):
                raise SubError(2, "invalid argument: payload must be [currency_pair, \"20ms\"|\"100ms\"]")
            # 20ms pushes a 20-level book, 100ms a 100-level book (venue rule)
            return [("book", self._pair(payload[0]), "20" if payload[1] == "20ms" else "100")]
        if channel == "spot.obu":
            return self._obu(payload, lambda level: level)
        if channel in ("spot.book_ticker", "spot.trades"):
            if not payload:
                raise SubError(2, "invalid argument: empty payload")
            kind = "ticker" if channel == "spot.book_ticker" else "trades"
            return [(kind, self._pair(p), None) for p in payload]
        raise SubError(2, "unknown channel %s" % (channel,))

    # ---------------------------------------------------------------- wire shapes
    def _levels(self, inst, levels) -> list:
        return [[inst.price_str(p), inst.size_str(q)] for p, q in levels]

    def _frames_for(self, kind: str, diff: BookDiff, variant: Any) -> list:
        inst = self.instruments[diff.symbol]
        now = self.push_clock()
        if kind == "book":
            bids, asks = self.view_changes(kind, diff, int(variant))
            r: dict = {"t": diff.ts_ms}
            if diff.full:
                r["full"] = True
                r["l"] = variant
            r.update({"e": "depthUpdate", "E": diff.ts_ms // 1000, "s": diff.symbol, "U": diff.first, "u": diff.last,
                      "b": self._levels(inst, bids), "a": self._levels(inst, asks)})
            return [(orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": "spot.order_book_update",
                                   "event": "update", "result": r}), False)]
        if kind == "obu":
            s = "ob.%s.%s" % (diff.symbol, variant)
            if diff.full:
                r = {"t": diff.ts_ms, "full": True, "s": s, "u": diff.last}
            else:
                r = {"t": diff.ts_ms, "s": s, "u": diff.last, "U": diff.first}
            bids, asks = self.view_changes(kind, diff, int(variant))
            r["b"] = self._levels(inst, bids)
            r["a"] = self._levels(inst, asks)
            return [(orjson.dumps({"channel": "spot.obu", "result": r, "time_ms": int(now * 1000),
                                   "event": "update"}), False)]
        if kind == "ticker":
            book = self.books[diff.symbol]
            bb, ba = book.best_bid(), book.best_ask()
            r = {"t": diff.ts_ms, "u": diff.last, "s": diff.symbol,
                 "b": inst.price_str(bb[0]) if bb else "", "B": inst.size_str(bb[1]) if bb else "0",
                 "a": inst.price_str(ba[0]) if ba else "", "A": inst.size_str(ba[1]) if ba else "0"}
            return [(orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": "spot.book_ticker",
                                   "event": "update", "result": r}), False)]
        if kind == "trades":
            out = []
            for t in diff.trades:
                r = {"id": t.id, "create_time": t.ts_ms // 1000, "create_time_ms": "%d.0" % t.ts_ms,
                     "side": "buy" if t.taker_buy else "sell", "currency_pair": diff.symbol,
                     "amount": inst.size_str(t.size), "price": inst.price_str(t.price)}
                out.append((orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": "spot.trades",
                                          "event": "update", "result": r}), False))
            return out
        return []

    # ---------------------------------------------------------------- REST
    def _add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v4/spot/order_book", self._order_book)
        router.add_get("/api/v4/spot/currency_pairs", self._currency_pairs)
        router.add_get("/api/v4/spot/currency_pairs/{pair}", self._currency_pair)
        router.add_get("/api/v4/spot/time", self._time)
        self._add_wallet_routes(router)
        router.add_get("/api/v4/spot/tickers", self._tickers)
        router.add_get("/api/v4/margin/currency_pairs", self._margin_pairs)

    async def _order_book(self, request: web.Request) -> web.Response:
        pair = request.query.get("currency_pair", "")
        if pair not in self.instruments:
            return self.bad_request("INVALID_CURRENCY_PAIR", "Invalid currency pair: %s" % pair)
        try:
            limit = self._limit(request, 10, 1000)
        except ValueError as e:
            return self.bad_request("INVALID_PARAM_VALUE", str(e))
        with_id, err = self.bool_param(request, "with_id")
        if err is not None:
            return err
        inst, book = self.instruments[pair], self.books[pair]
        bids, asks = book.top(limit)
        now = int(time.time() * 1000)
        body: dict = {}
        if with_id:
            body["id"] = book.last_id
        body.update({"current": now, "update": book.ts_ms or now,
                     "asks": self._levels(inst, asks), "bids": self._levels(inst, bids)})
        return self.json_response(body)

    def _pair_info(self, inst) -> dict:
        return {"id": inst.venue_symbol, "base": inst.base, "base_name": inst.base, "quote": inst.quote,
                "quote_name": inst.quote, "fee": str(self.taker_fee * 100),
                "min_base_amount": str(inst.min_qty) if inst.min_qty else None,
                "min_quote_amount": str(inst.min_notional) if inst.min_notional else None,
                "max_base_amount": None, "max_quote_amount": "10000000",
                "amount_precision": inst.size_decimals, "precision": inst.price_decimals,
                "trade_status": "untradable" if inst.venue_symbol in self.halted else "tradable", "sell_start": 1516378650, "buy_start": 1516378650,
                "delisting_time": 0, "trade_url": "https://www.gate.io/trade/" + inst.venue_symbol, "st_tag": False}

    async def _currency_pairs(self, request: web.Request) -> web.Response:
        return self.json_response([self._pair_info(i) for i in self.instruments.values()])

    async def _currency_pair(self, request: web.Request) -> web.Response:
        pair = request.match_info["pair"]
        if pair not in self.instruments:
            return self.bad_request("INVALID_CURRENCY_PAIR", "Invalid currency pair: %s" % pair)
        return self.json_response(self._pair_info(self.instruments[pair]))

    def _ticker_row(self, inst) -> dict:
        # rest_tickers.json: strings throughout; quote_volume is the generated universe's 24 h volume
        book = self.books[inst.venue_symbol]
        bb, ba = book.best_bid(), book.best_ask()
        last = inst.price_str((bb[0] + ba[0]) // 2) if bb and ba else "0"
        qv = self.quote_volume_24h(inst.venue_symbol)
        base_vol = qv / inst.price((bb[0] + ba[0]) // 2) if qv is not None and bb and ba else None
        return {"currency_pair": inst.venue_symbol, "last": last,
                "lowest_ask": inst.price_str(ba[0]) if ba else "", "highest_bid": inst.price_str(bb[0]) if bb else "",
                "change_percentage": "0", "base_volume": self.volume_str(base_vol.quantize(Decimal("0.01")) if base_vol is not None else None),
                "quote_volume": self.volume_str(qv), "high_24h": last, "low_24h": last}

    async def _tickers(self, request: web.Request) -> web.Response:
        pair = request.query.get("currency_pair")
        if pair is not None:
            if pair not in self.instruments:
                return self.bad_request("INVALID_CURRENCY_PAIR", "Invalid currency pair: %s" % pair)
            return self.json_response([self._ticker_row(self.instruments[pair])])
        return self.json_response([self._ticker_row(i) for i in self.instruments.values()])

    async def _margin_pairs(self, request: web.Request) -> web.Response:
        # deprecated endpoint that ccxt still calls on every fetchMarkets; the shape of the old docs
        # example (rest_margin_currency_pairs.doc.json, `leverage` an int). Margin trading itself is
        # not simulated: orders with account=margin trade like spot ones.
        return self.json_response([{"id": i.venue_symbol, "base": i.base, "quote": i.quote, "leverage": 3,
                                    "min_base_amount": str(i.min_qty) if i.min_qty else "0",
                                    "min_quote_amount": str(i.min_notional) if i.min_notional else "0",
                                    "max_quote_amount": "1000000"} for i in self.instruments.values()])

    async def _time(self, request: web.Request) -> web.Response:
        return self.json_response({"server_time": int(time.time() * 1000)})


SIM_VENUE = GateSpotVenue
