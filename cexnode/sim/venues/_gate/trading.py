"""Gate.io spot v4 and USDT futures v4 trading side: signed REST, private channels, WebSocket API.

REST (signed: ``KEY``, ``Timestamp``, ``SIGN`` headers, :func:`cexnode.sim.venues._gate.auth.verify_gate_rest`):

* spot — ``POST /api/v4/spot/orders`` (JSON ``text, currency_pair, type=limit, side, amount, price,
  time_in_force gtc|ioc|poc|fok``; 201 with the order), ``GET|DELETE /api/v4/spot/orders/{order_id}
  ?currency_pair=`` (``order_id``: the id or the ``t-...`` text), ``GET /api/v4/spot/open_orders``,
  ``GET /api/v4/spot/orders?currency_pair=&status=open|finished`` (``DELETE`` cancels all of a pair),
  ``GET /api/v4/spot/accounts[?currency=]``, ``GET /api/v4/spot/my_trades``; both venues
  ``GET /api/v4/account/detail`` (the venue's account of the key: ``user_id``, ``key.mode`` 1).
* futures — ``POST /api/v4/futures/usdt/orders`` (``contract, size`` signed contracts, ``price``
  string, ``"0"`` + ``tif: ioc`` = market, ``tif, text, reduce_only, close``), ``GET|DELETE
  /api/v4/futures/usdt/orders/{order_id}``, ``GET|DELETE /api/v4/futures/usdt/orders?contract=``,
  ``GET /api/v4/futures/usdt/accounts``, ``GET /api/v4/futures/usdt/positions[/{contract}]``,
  ``GET /api/v4/futures/usdt/my_trades``, ``/my_trades_timerange``. Sizes
  are integers, or strings with ``X-Gate-Size-Decimal: 1`` (venue rule).

Errors ``{"label","message"}`` (Gate docs "Error labels"): spot ``INVALID_CURRENCY_PAIR``,
``INVALID_PRECISION``, ``AMOUNT_TOO_LITTLE``, ``BALANCE_NOT_ENOUGH``, ``ORDER_EXISTS``,
``INVALID_PARAM_VALUE`` (400), ``ORDER_NOT_FOUND`` (404), ``ORDER_CLOSED`` / ``ORDER_CANCELLED``
(400, cancelling a final order); futures ``CONTRACT_NOT_FOUND``, ``SIZE_TOO_SMALL``,
``INSUFFICIENT_AVAILABLE``, ``ORDER_FINISHED``; auth ``INVALID_KEY``/``INVALID_SIGNATURE`` (401),
``REQUEST_EXPIRED`` (403).

WebSocket private channels (``auth`` = HMAC-SHA512 of ``channel=..&event=..&time=..``; error code 4
when it fails): ``spot.orders`` / ``spot.usertrades`` ``[pairs | "!all"]``, ``spot.balances``;
``futures.orders`` / ``futures.usertrades`` / ``futures.positions`` ``[user_id, contract | "!all"]``,
``futures.balances`` ``[user_id]`` (the user id first, venue rule). ``result`` is always an array.

WebSocket API (``event: "api"``): ``spot.login`` / ``futures.login`` (signature of
``"api\\n<channel>\\n<req_param>\\n<timestamp>"``, ``req_param`` empty or the JSON sent, e.g. ccxt's ``{}``), then ``*.order_place`` (an ``"ack": true`` frame echoing the
request, then the response with the order), ``*.order_cancel``, ``*.order_status``; responses
``{"request_id","header":{"status",...},"data":{"result"|"errs"}}``; ``req_header.x-gate-exptime``
(ms) in the past → ``REQUEST_EXPIRED``. Not modelled: batch placement (a list ``req_param``) and
per-request signatures without a login.
"""
from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal
from typing import Any, Optional

import orjson
from aiohttp import web

from ...trading.common import PrivateOut, dec_str, hold_unanswered
from ...trading.matching import Reject, SimOrder
from .auth import verify_gate_api_login, verify_gate_rest, verify_gate_ws_auth

__all__ = ["GateTrading"]

_TEXT_RE = re.compile(r"^t-[0-9A-Za-z_.\-]{1,28}$")
_SPOT_LABELS = {"symbol": "INVALID_CURRENCY_PAIR", "tick": "INVALID_PRECISION", "step": "INVALID_PRECISION",
                "min_qty": "AMOUNT_TOO_LITTLE", "min_notional": "AMOUNT_TOO_LITTLE", "balance": "BALANCE_NOT_ENOUGH",
                "duplicate": "ORDER_EXISTS"}
_FUT_LABELS = {"symbol": "CONTRACT_NOT_FOUND", "min_qty": "SIZE_TOO_SMALL", "balance": "INSUFFICIENT_AVAILABLE",
               "duplicate": "ORDER_EXISTS", "position": "REDUCE_EXCEEDED"}


def _ms_s(ms: int) -> str:
    return str(ms // 1000)


class GateTrading:
    """Routes, WebSocket handlers and private pushes of one simulated Gate venue (spot or futures)."""

    def __init__(self, vt):
        self.vt = vt
        self.venue = vt.venue
        self.engine = vt.engine
        self.futures = self.venue.is_perpetual
        self.prefix = "futures" if self.futures else "spot"
        self.out = PrivateOut(self.venue)
        self._trace = 0
        base = "/api/v4/futures/usdt" if self.futures else "/api/v4/spot"
        r = self.venue.app.router
        r.add_post(base + "/orders", self.rest_place)
        r.add_get(base + "/orders", self.rest_list)
        r.add_delete(base + "/orders", self.rest_cancel_all)
        r.add_get(base + "/orders/{order_id}", self.rest_get)
        r.add_delete(base + "/orders/{order_id}", self.rest_cancel)
        r.add_get(base + "/accounts", self.rest_accounts)
        r.add_get(base + "/my_trades", self.rest_my_trades)
        r.add_get("/api/v4/account/detail", self.rest_account_detail)
        if self.futures:
            r.add_get(base + "/my_trades_timerange", self.rest_my_trades_timerange)
            r.add_get(base + "/positions", self.rest_positions)
            r.add_get(base + "/positions/{contract}", self.rest_position)
        else:
            r.add_get(base + "/open_orders", self.rest_open_orders)
        channels = ["orders", "usertrades", "balances"] + (["positions"] if self.futures else [])
        for ch in channels:
            self.venue.ws_handlers["%s.%s" % (self.prefix, ch)] = self.ws_private
        self.venue.ws_handlers[self.prefix + ".login"] = self.api_login
        for op in ("order_place", "order_cancel", "order_status"):
            self.venue.ws_handlers["%s.%s" % (self.prefix, op)] = self.api_order
        self.engine.listeners.append(self.on_event)

    # ================================================================== shapes
    def _size_val(self, inst, steps: int, dec: bool):
        if dec:
            return inst.size_str(steps) if steps >= 0 else "-" + inst.size_str(-steps)
        whole = int(Decimal(steps).scaleb(-inst.size_decimals))        # truncated toward zero (venue rule)
        return whole

    def order_json(self, o: SimOrder, dec: bool = False, push: bool = False) -> dict:
        """The order as the venue shows it. Futures: REST and the WebSocket API use the REST schema
        (``FuturesOrder``: ``finish_as`` only names how a *finished* order ended, and ``finish_time``
        is "not returned if order is open"), so an open order carries neither; only the
        ``futures.orders`` push (``push=True``) reports ``_new`` / ``_update`` (ws_orders.json)."""
        inst = self.venue.instruments[o.symbol]
        avg = o.filled_quote / inst.base_qty(o.filled) if o.filled else None
        if self.futures:
            sign = 1 if o.is_buy else -1
            d = {
                "id": o.id, "user": o.account.uid, "contract": o.symbol, "create_time": o.create_ms / 1000,
                "create_time_ms": o.create_ms, "size": self._size_val(inst, sign * o.qty, dec), "iceberg": 0,
                "left": self._size_val(inst, sign * (o.left if o.is_open or o.finish_as != "filled" else 0), dec),
                "price": inst.price_str(o.price) if o.price is not None else "0",
                "fill_price": dec_str(avg) if avg is not None else "0",        # exact average
                "mkfr": str(self.venue.maker_fee), "tkfr": str(self.venue.taker_fee), "tif": o.tif, "refu": 0,
                "is_reduce_only": o.reduce_only, "is_close": bool(o.extra.get("close")), "is_liq": False,
                "text": o.client_id, "status": "open" if o.is_open else "finished",
                "finish_time": o.update_ms // 1000 if not o.is_open else 0,
                "finish_time_ms": o.update_ms if not o.is_open else 0,
                "finish_as": o.finish_as if not o.is_open else ("_update" if o.filled else "_new"),
                "stp_id": 0, "stp_act": "-", "amend_text": "-", "update_id": max(o.updates, 1)}
            if o.is_open and not push:
                for k in ("finish_as", "finish_time", "finish_time_ms"):
                    del d[k]
            return d
        return {
            "id": str(o.id), "text": o.client_id, "amend_text": "-", "create_time": _ms_s(o.create_ms),
            "update_time": _ms_s(o.update_ms), "create_time_ms": o.create_ms, "update_time_ms": o.update_ms,
            "status": "open" if o.is_open else o.status, "currency_pair": o.symbol, "type": o.type,
            "account": o.extra.get("account", "spot"), "side": o.side, "amount": inst.size_str(o.qty),
            "price": inst.price_str(o.price) if o.price is not None else "0", "time_in_force": o.tif,
            "iceberg": "0", "left": inst.size_str(o.left if o.is_open else o.qty - o.filled),
            "filled_amount": inst.size_str(o.filled), "fill_price": dec_str(o.filled_quote),
            "filled_total": dec_str(o.filled_quote), "avg_deal_price": dec_str(avg) if avg is not None else "0",
            "fee": dec_str(o.fee), "fee_currency": o.fee_asset, "point_fee": "0", "gt_fee": "0",
            "gt_maker_fee": "0", "gt_taker_fee": "0", "gt_discount": False, "rebated_fee": "0",
            "rebated_fee_currency": inst.quote, "finish_as": o.finish_as}

    # ================================================================== placing (REST and WS API)
    def _label(self, e: Reject) -> str:
        if e.code is not None:
            return str(e.code)
        return (_FUT_LABELS if self.futures else _SPOT_LABELS).get(e.kind, "INVALID_PARAM_VALUE")

    def place_from(self, acct, p: Any, dec: bool) -> SimOrder:
        """Parse a Gate order body (dict) and place it; raises :class:`Reject`."""
        if not isinstance(p, dict):
            raise Reject("param", "request body must be a JSON object")
        text = p.get("text")
        if text is None or text == "":
            text = ""
        elif not isinstance(text, str) or not _TEXT_RE.match(text):
            raise Reject("param", "Invalid parameter `text` with value: %s" % (text,))
        if self.futures:
            return self._place_futures(acct, p, text, dec)
        pair = p.get("currency_pair")
        inst = self.venue.instruments.get(pair) if isinstance(pair, str) else None
        if inst is None:
            raise Reject("symbol", "Invalid currency pair: %s" % (pair,))
        side = p.get("side")
        if side not in ("buy", "sell"):
            raise Reject("param", "Invalid parameter `side` with value: %s" % (side,))
        otype = p.get("type", "limit")
        if otype != "limit":
            raise Reject("param", "the simulator accepts limit orders only (type=%s)" % (otype,))
        tif = p.get("time_in_force", "gtc")
        if tif not in ("gtc", "ioc", "poc", "fok"):
            raise Reject("param", "Invalid parameter `time_in_force` with value: %s" % (tif,))
        try:
            qty = inst.steps_of(str(p.get("amount", "")))
        except (ValueError, ArithmeticError):
            raise Reject("step", "Invalid amount precision: %s" % (p.get("amount"),)) from None
        try:
            price = inst.ticks_of(str(p.get("price", "")))
        except (ValueError, ArithmeticError):
            raise Reject("tick", "Invalid price precision: %s" % (p.get("price"),)) from None
        return self.engine.place(acct, pair, side, qty, price, tif=tif, client_id=text or "",
                                 extra={"account": p.get("account", "spot")})

    def _place_futures(self, acct, p: dict, text: str, dec: bool) -> SimOrder:
        name = p.get("contract")
        inst = self.venue.instruments.get(name) if isinstance(name, str) else None
        if inst is None:
            raise Reject("symbol", "Contract not found: %s" % (name,))
        raw = p.get("size")
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise Reject("param", "Invalid parameter `size` with value: %s" % (raw,))
        try:
            signed = inst.steps_of(str(raw))
        except (ValueError, ArithmeticError):
            raise Reject("param", "Invalid parameter `size` with value: %s" % (raw,)) from None
        if not dec and inst.size_decimals and signed % 10 ** inst.size_decimals:
            # without X-Gate-Size-Decimal sizes are whole contracts (venue rule)
            raise Reject("param", "fractional size %s needs X-Gate-Size-Decimal: 1" % (raw,))
        close = bool(p.get("close"))
        reduce_only = bool(p.get("reduce_only")) or close
        if close and signed == 0:
            pos = acct.position(name).size
            if pos == 0:
                raise Reject("position", "position is empty")
            signed = -pos
        if signed == 0:
            raise Reject("param", "size must not be 0")
        tif = p.get("tif", "gtc")
        if tif not in ("gtc", "ioc", "poc", "fok"):
            raise Reject("param", "Invalid parameter `tif` with value: %s" % (tif,))
        try:
            price_raw = str(p.get("price", ""))
            price = inst.ticks_of(price_raw)
        except (ValueError, ArithmeticError):
            raise Reject("param", "Invalid parameter `price` with value: %s" % (p.get("price"),)) from None
        if price == 0:
            if tif not in ("ioc", "fok"):
                raise Reject("param", "a market order (price 0) must be ioc or fok")
            price = None
        o = self.engine.place(acct, name, "buy" if signed > 0 else "sell", abs(signed), price, tif=tif,
                              client_id=text, type="market" if price is None else "limit",
                              reduce_only=reduce_only, extra={"close": close})
        return o

    # ================================================================== REST
    def error(self, status: int, label: str, message: str) -> web.Response:
        return self.venue.json_response({"label": label, "message": message}, status=status)

    async def _auth(self, request: web.Request):
        body = await request.read()
        raw = request.raw_path
        path, _, query = raw.partition("?")
        err = verify_gate_rest(request.headers, request.method, path, query, body, self.vt.secret_of,
                               self.vt.trading.now_s())
        if err is not None:
            return None, self.error(err.status, err.code, err.message), body
        return self.vt.accounts[request.headers["KEY"]], None, body

    @staticmethod
    def _dec(request) -> bool:
        return request.headers.get("X-Gate-Size-Decimal", "") == "1"

    async def rest_place(self, request: web.Request) -> web.Response:
        acct, err, body = await self._auth(request)
        if acct is None:
            return err
        try:
            p = orjson.loads(body) if body else None
        except ValueError:
            return self.error(400, "INVALID_REQUEST_BODY", "request body is not valid JSON")
        fault = self.venue.faults.take_order_fault()
        if fault is not None and fault[0] == "reject":
            return self.error(400, fault[1] or ("INSUFFICIENT_AVAILABLE" if self.futures else "BALANCE_NOT_ENOUGH"),
                              "Order rejected (simulated)")
        try:
            o = self.place_from(acct, p, self._dec(request))
        except Reject as e:
            return self.error(400, self._label(e), e.message)
        body = self.order_json(o, self._dec(request))
        if fault is not None:
            kind, arg = fault
            if kind == "timeout":
                await hold_unanswered(request, arg, self.vt.held)
                return web.Response(status=504)
            if kind == "5xx":
                return self.venue.rest_error(arg, "Service Unavailable")
            if kind == "delay":
                await asyncio.sleep(arg)
                body = self.order_json(o, self._dec(request))
        return self.venue.json_response(body, status=201)

    def _lookup(self, acct, order_id: str, pair: Optional[str]) -> Optional[SimOrder]:
        if order_id.startswith("t-"):
            o = self.engine.get(acct, client_id=order_id)
        else:
            o = self.engine.get(acct, order_id=order_id)
        if o is not None and pair is not None and o.symbol != pair:
            return None
        return o

    def _pair_param(self, request) -> tuple[Optional[str], Optional[web.Response]]:
        if self.futures:
            return None, None
        pair = request.query.get("currency_pair")
        if not pair:
            return None, self.error(400, "MISSING_REQUIRED_PARAM", "Missing required parameter: currency_pair")
        if pair not in self.venue.instruments:
            return None, self.error(400, "INVALID_CURRENCY_PAIR", "Invalid currency pair: %s" % pair)
        return pair, None

    async def rest_get(self, request: web.Request) -> web.Response:
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        pair, err = self._pair_param(request)
        if err is not None:
            return err
        o = self._lookup(acct, request.match_info["order_id"], pair)
        if o is None:
            return self.error(404, "ORDER_NOT_FOUND", "Order not found")
        return self.venue.json_response(self.order_json(o, self._dec(request)))

    async def rest_cancel(self, request: web.Request) -> web.Response:
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        pair, err = self._pair_param(request)
        if err is not None:
            return err
        o = self._lookup(acct, request.match_info["order_id"], pair)
        if o is None:
            return self.error(404, "ORDER_NOT_FOUND", "Order not found")
        if not o.is_open:
            if self.futures:
                return self.error(400, "ORDER_FINISHED", "Order already finished")
            return self.error(400, "ORDER_CLOSED" if o.status == "closed" else "ORDER_CANCELLED",
                              "Order already closed" if o.status == "closed" else "Order already cancelled")
        self.engine.cancel(o)
        return self.venue.json_response(self.order_json(o, self._dec(request)))

    async def rest_list(self, request: web.Request) -> web.Response:
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        sym = request.query.get("contract" if self.futures else "currency_pair")
        status = request.query.get("status", "open")
        if status == "open":
            orders = self.engine.open_orders(acct, sym)
        else:
            orders = [o for o in self.engine.orders.values() if o.account is acct and not o.is_open
                      and (sym is None or o.symbol == sym)]
        return self.venue.json_response([self.order_json(o, self._dec(request)) for o in orders])

    async def rest_cancel_all(self, request: web.Request) -> web.Response:
        """``DELETE .../orders?currency_pair=`` (spot; ``side`` optional) / ``?contract=`` (futures):
        cancel the account's open orders; answers the cancelled orders."""
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        key = "contract" if self.futures else "currency_pair"
        sym = request.query.get(key)
        if not sym:
            return self.error(400, "MISSING_REQUIRED_PARAM", "Missing required parameter: %s" % key)
        if sym not in self.venue.instruments:
            return self.error(400, "CONTRACT_NOT_FOUND" if self.futures else "INVALID_CURRENCY_PAIR", "unknown %s" % sym)
        side = request.query.get("side")
        out = []
        for o in self.engine.open_orders(acct, sym):
            if side in ("buy", "sell") and o.side != side:
                continue
            self.engine.cancel(o)
            out.append(self.order_json(o, self._dec(request)))
        return self.venue.json_response(out)

    async def rest_open_orders(self, request: web.Request) -> web.Response:
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        by_pair: dict[str, list] = {}
        for o in self.engine.open_orders(acct):
            by_pair.setdefault(o.symbol, []).append(self.order_json(o))
        return self.venue.json_response([{"currency_pair": k, "total": len(v), "orders": v}
                                         for k, v in sorted(by_pair.items())])

    async def rest_my_trades(self, request: web.Request) -> web.Response:
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        q = request.query
        sym = q.get("contract" if self.futures else "currency_pair")
        if sym is not None and sym not in self.venue.instruments:
            return self.error(400, "CONTRACT_NOT_FOUND" if self.futures else "INVALID_CURRENCY_PAIR",
                              "unknown %s" % sym)
        oid = q.get("order" if self.futures else "order_id")
        order = None
        if oid:
            order = self._lookup(acct, oid, None)
            if order is None:
                return self.venue.json_response([])
        try:           # unix seconds (ccxt sends since / 1000 as `from`)
            start = float(q["from"]) * 1000 if "from" in q else None
            end = float(q["to"]) * 1000 if "to" in q else None
        except ValueError:
            return self.error(400, "INVALID_PARAM_VALUE", "invalid from / to")
        dec = self._dec(request)
        out = []
        for f in self.engine.fills_of(acct, sym, order):
            if (start is not None and f.ts_ms < start) or (end is not None and f.ts_ms > end):
                continue
            o = f.order
            inst = self.venue.instruments[o.symbol]
            if self.futures:
                out.append({"id": f.id, "create_time": f.ts_ms / 1000, "contract": o.symbol, "order_id": str(o.id),
                            "size": self._size_val(inst, f.qty if o.is_buy else -f.qty, dec),
                            "price": inst.price_str(f.price), "role": f.role, "text": o.client_id,
                            "fee": dec_str(f.fee), "point_fee": "0"})
            else:
                out.append({"id": str(f.id), "create_time": str(f.ts_ms // 1000), "create_time_ms": "%d.000" % f.ts_ms,
                            "currency_pair": o.symbol, "side": o.side, "role": f.role, "amount": inst.size_str(f.qty),
                            "price": inst.price_str(f.price), "order_id": str(o.id), "fee": dec_str(f.fee),
                            "fee_currency": f.fee_asset, "point_fee": "0", "gt_fee": "0", "amend_text": "-",
                            "sequence_id": str(f.id), "text": o.client_id})
        return self.venue.json_response(out)

    async def rest_my_trades_timerange(self, request: web.Request) -> web.Response:
        """``GET /futures/usdt/my_trades_timerange`` (what ccxt's swap ``fetchMyTrades`` calls):
        ``contract, from, to`` (unix seconds), ``limit`` (default 100, max 1000), ``offset``,
        ``role``; items in the current docs' shape (``trade_id`` a string, ``close_size``), newest
        first; ``X-Pagination-Limit`` / ``X-Pagination-Offset`` echo the page."""
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        q = request.query
        sym = q.get("contract")
        if sym is not None and sym not in self.venue.instruments:
            return self.error(400, "CONTRACT_NOT_FOUND", "Contract not found: %s" % sym)
        role = q.get("role")
        if role not in (None, "maker", "taker"):
            return self.error(400, "INVALID_PARAM_VALUE", "Invalid request parameter `role` value: %s" % role)
        try:
            start = float(q["from"]) if "from" in q else None
            end = float(q["to"]) if "to" in q else None
            limit = int(q.get("limit", 100))
            offset = int(q.get("offset", 0))
            if not 1 <= limit <= 1000 or offset < 0:
                raise ValueError
        except ValueError:
            return self.error(400, "INVALID_PARAM_VALUE", "invalid from / to / limit / offset")
        fills = [f for f in self.engine.fills_of(acct, sym)
                 if (start is None or f.ts_ms >= start * 1000) and (end is None or f.ts_ms <= end * 1000)
                 and (role is None or f.role == role)]
        fills.reverse()
        dec = self._dec(request)
        out = []
        for f in fills[offset:offset + limit]:
            o = f.order
            inst = self.venue.instruments[o.symbol]
            out.append({"trade_id": str(f.id), "create_time": f.ts_ms / 1000, "contract": o.symbol,
                        "order_id": str(o.id), "size": self._size_val(inst, f.qty if o.is_buy else -f.qty, dec),
                        "close_size": self._size_val(inst, f.closed if o.is_buy else -f.closed, dec),
                        "price": inst.price_str(f.price), "role": f.role, "text": o.client_id,
                        "fee": dec_str(f.fee), "point_fee": "0"})
        return self.venue.json_response(out, headers={"X-Pagination-Limit": str(limit),
                                                      "X-Pagination-Offset": str(offset)})

    async def rest_account_detail(self, request: web.Request) -> web.Response:
        """``GET /api/v4/account/detail`` in the shape of rest_account_detail.json (ccxt reads
        ``key.mode``: 1 classic account, 2 unified; the simulator's accounts are classic)."""
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        return self.venue.json_response({"user_id": acct.uid, "ip_whitelist": [], "currency_pairs": [],
                                         "key": {"mode": 1}, "tier": 0, "tier_expire_time": "0001-01-01T00:00:00Z",
                                         "copy_trading_role": 0})

    def futures_account_json(self, acct) -> dict:
        settle = "USDT"
        pm, om = self.engine.futures_margins(acct, settle)
        total = acct.balance(settle).available
        upnl = sum((self.engine.unrealised_pnl(acct, c) for c in acct.positions), Decimal(0))
        return {"user": acct.uid, "currency": settle, "total": dec_str(total), "unrealised_pnl": dec_str(upnl),
                "position_margin": dec_str(pm), "order_margin": dec_str(om),
                "available": dec_str(total - pm - om), "point": "0", "bonus": "0", "in_dual_mode": False,
                "enable_credit": False, "position_initial_margin": dec_str(pm),
                "maintenance_margin": "0", "cross_available": dec_str(total - pm - om)}

    async def rest_accounts(self, request: web.Request) -> web.Response:
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        if self.futures:
            return self.venue.json_response(self.futures_account_json(acct))
        cur = request.query.get("currency")
        out = [{"currency": a, "available": dec_str(b.available), "locked": dec_str(b.locked), "update_id": 1}
               for a, b in sorted(acct.balances.items()) if cur is None or a == cur]
        return self.venue.json_response(out)

    def position_json(self, acct, contract: str, dec: bool = False) -> dict:
        inst = self.venue.instruments[contract]
        p = acct.position(contract)
        book = self.venue.books[contract]
        bb, ba = book.best_bid(), book.best_ask()
        mark = (inst.price(bb[0] + ba[0]) / 2).quantize(inst.tick) if bb and ba else Decimal(0)
        margin = inst.base_qty(abs(p.size)) * p.entry_price / acct.leverage
        return {"user": acct.uid, "contract": contract, "size": self._size_val(inst, p.size, dec),
                "leverage": dec_str(acct.leverage), "risk_limit": "1000000", "leverage_max": "100",
                "maintenance_rate": "0.005", "value": dec_str(inst.base_qty(abs(p.size)) * mark),
                "margin": dec_str(margin), "entry_price": dec_str(p.entry_price), "liq_price": "0",
                "mark_price": dec_str(mark), "unrealised_pnl": dec_str(self.engine.unrealised_pnl(acct, contract)),
                "realised_pnl": dec_str(p.realised_pnl), "history_pnl": "0", "last_close_pnl": "0",
                "realised_point": "0", "history_point": "0", "adl_ranking": 5, "pending_orders":
                    len(self.engine.open_orders(acct, contract)), "close_order": None, "mode": "single",
                "cross_leverage_limit": "0", "update_time": int(time.time())}

    async def rest_positions(self, request: web.Request) -> web.Response:
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        return self.venue.json_response([self.position_json(acct, c, self._dec(request))
                                         for c in sorted(acct.positions)])

    async def rest_position(self, request: web.Request) -> web.Response:
        acct, err, _ = await self._auth(request)
        if acct is None:
            return err
        c = request.match_info["contract"]
        if c not in self.venue.instruments:
            return self.error(400, "CONTRACT_NOT_FOUND", "Contract not found: %s" % c)
        return self.venue.json_response(self.position_json(acct, c, self._dec(request)))

    # ================================================================== private channels
    def ws_private(self, conn, msg: dict) -> None:
        venue = self.venue
        channel = msg.get("channel")
        event = msg.get("event")
        if event not in ("subscribe", "unsubscribe"):
            venue.gate_error(conn, msg, 1, "invalid event: %r" % (event,))
            return
        key, reason = verify_gate_ws_auth(msg, self.vt.secret_of, self.vt.trading.now_s())
        if key is None:
            venue.gate_error(conn, msg, 4, "Authentication fail: %s" % reason)
            return
        acct = self.vt.accounts[key]
        payload = msg.get("payload") or []
        if not isinstance(payload, list) or not all(isinstance(x, str) for x in payload):
            venue.gate_error(conn, msg, 2, "payload must be a list of strings")
            return
        if self.futures:
            # futures private channels: the user id first (venue rule)
            if not payload or payload[0] != str(acct.uid):
                venue.gate_error(conn, msg, 2, "invalid argument: the first payload item must be your user id")
                return
            targets = payload[1:] or ["!all"]
        else:
            targets = payload or ["!all"]
        for t in targets:
            if t != "!all" and t not in venue.instruments:
                venue.gate_error(conn, msg, 2, "invalid argument: unknown %s %s"
                                 % ("contract" if self.futures else "currency pair", t))
                return
        subs = conn.user_data.setdefault("gate_private", {})
        conn.user_data["gate_key"] = key
        if event == "subscribe":
            subs.setdefault(channel, set()).update(targets)
            conn.subscriptions.add((channel, "private"))
        else:
            s = subs.get(channel, set())
            s.difference_update(targets)
            if not s:
                subs.pop(channel, None)
                conn.subscriptions.discard((channel, "private"))
        venue.gate_ack(conn, msg)

    def _targets(self, acct, channel: str, symbol: Optional[str]) -> list:
        out = []
        for c in self.venue.connections:
            if c.user_data.get("gate_key") != acct.api_key:
                continue
            s = c.user_data.get("gate_private", {}).get(channel)
            if s and (symbol is None or "!all" in s or symbol in s):
                out.append(c)
        return out

    def _push(self, targets, channel: str, items: list, dec_of=None) -> None:
        now = time.time()
        cache: dict = {}
        for c in targets:
            dec = bool(dec_of and c.headers.get("X-Gate-Size-Decimal", "") == "1")
            frame = cache.get(dec)
            if frame is None:
                res = [i(dec) if callable(i) else i for i in items]
                frame = cache[dec] = orjson.dumps({"time": int(now), "time_ms": int(now * 1000), "channel": channel,
                                                   "event": "update", "result": res})
            self.out.send(c, frame, False)

    def on_event(self, event: str, data: Any) -> None:
        p = self.prefix
        if event == "order":
            o, gev = data
            o.updates += 1
            targets = self._targets(o.account, p + ".orders", o.symbol)
            if targets:
                def item(dec, o=o, gev=gev):
                    d = self.order_json(o, dec, push=True)
                    if not self.futures:
                        d["user"] = o.account.uid
                        d["event"] = gev
                        d["create_time_ms"] = str(o.create_ms)
                        d["update_time_ms"] = str(o.update_ms)
                    return d
                self._push(targets, p + ".orders", [item], dec_of=True)
        elif event == "fill":
            f = data
            o = f.order
            targets = self._targets(o.account, p + ".usertrades", o.symbol)
            if targets:
                inst = self.venue.instruments[o.symbol]
                if self.futures:
                    def item(dec, f=f, o=o, inst=inst):
                        return {"id": str(f.id), "create_time": f.ts_ms // 1000, "create_time_ms": f.ts_ms,
                                "contract": o.symbol, "order_id": str(o.id),
                                "size": self._size_val(inst, f.qty if o.is_buy else -f.qty, dec),
                                "price": inst.price_str(f.price), "role": f.role, "text": o.client_id,
                                "fee": dec_str(f.fee), "point_fee": "0"}
                    self._push(targets, p + ".usertrades", [item], dec_of=True)
                else:
                    self._push(targets, p + ".usertrades", [{
                        "id": f.id, "user_id": o.account.uid, "order_id": str(o.id), "currency_pair": o.symbol,
                        "create_time": f.ts_ms // 1000, "create_time_ms": "%d.000" % f.ts_ms, "side": o.side,
                        "amount": inst.size_str(f.qty), "role": f.role, "price": inst.price_str(f.price),
                        "fee": dec_str(f.fee), "fee_currency": f.fee_asset, "point_fee": "0", "gt_fee": "0",
                        "text": o.client_id}])
        elif event == "balance":
            acct, assets, change = data
            targets = self._targets(acct, p + ".balances", None)
            if not targets:
                return
            now_ms = int(time.time() * 1000)
            seen = acct.__dict__.setdefault("_gate_seen", {})
            items = []
            for a in assets:
                b = acct.balance(a)
                if self.futures:
                    total = b.available
                    prev = seen.get(a, total)
                    seen[a] = total
                    if prev == total:
                        continue
                    items.append({"balance": dec_str(total), "change": dec_str(total - prev), "text": change,
                                  "time": now_ms // 1000, "time_ms": now_ms, "type": "fee" if change else "pnl",
                                  "user": str(acct.uid), "currency": a})
                else:
                    cur = (b.available, b.locked)
                    prev = seen.get(a, cur)
                    seen[a] = cur
                    if prev == cur:
                        continue
                    items.append({"timestamp": str(now_ms // 1000), "timestamp_ms": str(now_ms),
                                  "user": str(acct.uid), "currency": a,
                                  "change": dec_str(cur[0] + cur[1] - prev[0] - prev[1]),
                                  "total": dec_str(b.total), "available": dec_str(b.available),
                                  "freeze": dec_str(b.locked), "freeze_change": dec_str(cur[1] - prev[1]),
                                  "change_type": change})
            if items:
                self._push(targets, p + ".balances", items)
        elif event == "position" and self.futures:
            acct, contract = data
            targets = self._targets(acct, "futures.positions", contract)
            if targets:
                def item(dec, acct=acct, contract=contract):
                    d = self.position_json(acct, contract, dec)
                    d["time"] = int(time.time())
                    d["time_ms"] = int(time.time() * 1000)
                    return d
                self._push(targets, "futures.positions", [item], dec_of=True)

    # ================================================================== WebSocket API
    def api_send(self, conn, msg: dict, *, status: str = "200", result: Any = None, errs: Any = None,
                 ack: bool = False) -> None:
        payload = msg.get("payload") if isinstance(msg.get("payload"), dict) else {}
        self._trace += 1
        now = time.time()
        out: dict = {"request_id": payload.get("req_id")}
        if ack:
            out["ack"] = True
        out["header"] = {"response_time": str(int(now * 1000)), "status": status, "channel": msg.get("channel"),
                         "event": "api", "client_id": "127.0.0.1-%s" % conn.conn_id,
                         "x_in_time": int(now * 1e6), "x_out_time": int(now * 1e6), "conn_id": conn.conn_id,
                         "conn_trace_id": "%032x" % (hash(conn.conn_id) & (1 << 128) - 1),
                         "trace_id": "%032x" % (self._trace * 0x9E3779B97F4A7C15 & (1 << 128) - 1)}
        out["data"] = {"errs": errs} if errs is not None else {"result": result}
        conn.send_json(out)

    def api_error(self, conn, msg, status: int, label: str, message: str) -> None:
        self.api_send(conn, msg, status=str(status), errs={"label": label, "message": message})

    def api_login(self, conn, msg: dict) -> None:
        payload = msg.get("payload")
        if msg.get("event") != "api" or not isinstance(payload, dict):
            self.venue.gate_error(conn, msg, 1, "invalid request body")
            return
        key, err = verify_gate_api_login(msg.get("channel", ""), payload, self.vt.secret_of, self.vt.trading.now_s())
        if err is not None:
            self.api_error(conn, msg, err.status, err.code, err.message)
            return
        conn.user_data["gate_api_key"] = key
        self.api_send(conn, msg, result={"api_key": key, "uid": str(self.vt.accounts[key].uid)})

    async def api_order(self, conn, msg: dict) -> None:
        payload = msg.get("payload")
        if msg.get("event") != "api" or not isinstance(payload, dict):
            self.venue.gate_error(conn, msg, 1, "invalid request body")
            return
        key = conn.user_data.get("gate_api_key")
        acct = self.vt.accounts.get(key) if key else None
        if acct is None:
            self.api_error(conn, msg, 401, "INVALID_KEY", "login required (%s.login)" % self.prefix)
            return
        op = msg.get("channel", "").split(".", 1)[1]
        param = payload.get("req_param")
        hdr = payload.get("req_header")
        exp = hdr.get("x-gate-exptime") if isinstance(hdr, dict) else None
        if exp is not None:
            try:
                expired = int(exp) < self.vt.trading.now_ms()
            except (TypeError, ValueError):
                self.api_error(conn, msg, 400, "INVALID_PARAM_VALUE", "invalid x-gate-exptime")
                return
            if expired:     # venue docs: a request received after x-gate-exptime is rejected
                self.api_error(conn, msg, 400, "REQUEST_EXPIRED", "request expired (x-gate-exptime)")
                return
        dec = conn.headers.get("X-Gate-Size-Decimal", "") == "1"
        if op == "order_place":
            fault = self.venue.faults.take_order_fault()
            if fault is not None and fault[0] == "timeout":
                try:
                    self.place_from(acct, param, dec)         # the order exists; no answer ever comes
                except Reject:
                    pass
                if fault[1]:
                    conn.close(None)
                return
            # the ack echoes the request (venue docs "Ack Notification")
            self.api_send(conn, msg, ack=True, result={"req_id": payload.get("req_id"), "req_header": None,
                                                       "req_param": param, "api_key": "", "timestamp": "",
                                                       "signature": ""})
            if fault is not None and fault[0] == "reject":
                self.api_error(conn, msg, 400, fault[1] or ("INSUFFICIENT_AVAILABLE" if self.futures
                                                            else "BALANCE_NOT_ENOUGH"), "Order rejected (simulated)")
                return
            try:
                o = self.place_from(acct, param, dec)
            except Reject as e:
                self.api_error(conn, msg, 400, self._label(e), e.message)
                return
            if fault is not None and fault[0] == "5xx":
                self.api_error(conn, msg, 500, "SERVER_ERROR", "Internal server error")
                return
            if fault is not None and fault[0] == "delay":
                await asyncio.sleep(fault[1])
            self.api_send(conn, msg, result=self.order_json(o, dec))
            return
        if not isinstance(param, dict) or not param.get("order_id"):
            self.api_error(conn, msg, 400, "INVALID_PARAM_VALUE", "order_id is required")
            return
        pair = None if self.futures else param.get("currency_pair")
        o = self._lookup(acct, str(param["order_id"]), pair)
        if o is None:
            self.api_error(conn, msg, 404, "ORDER_NOT_FOUND", "Order not found")
            return
        if op == "order_cancel":
            if not o.is_open:
                label = "ORDER_FINISHED" if self.futures else ("ORDER_CLOSED" if o.status == "closed" else "ORDER_CANCELLED")
                self.api_error(conn, msg, 400, label, "Order already finished")
                return
            self.engine.cancel(o)
        self.api_send(conn, msg, result=self.order_json(o, dec))
