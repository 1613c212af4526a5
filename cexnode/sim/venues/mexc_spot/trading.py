"""MEXC spot v3 trading side: signed REST order entry, account, listenKeys, protobuf private pushes.

REST (all SIGNED: ``X-MEXC-APIKEY`` + ``timestamp`` + ``signature``, parameters in the query string
and/or a form body; :func:`cexnode.sim.venues.mexc_spot.auth.verify_mexc`):

* ``POST /api/v3/order`` — ``symbol, side (BUY|SELL), type, quantity, price, newClientOrderId``;
  ``type``: ``LIMIT`` (GTC), ``IMMEDIATE_OR_CANCEL``, ``FILL_OR_KILL``, ``LIMIT_MAKER`` (post only),
  ``MARKET`` (with ``quantity``). Answer: the small ack of ``rest_order_new_response.json`` (no status).
* ``GET /api/v3/order`` / ``DELETE /api/v3/order`` — ``symbol`` + ``orderId`` or
  ``origClientOrderId``: the order object / the cancel answer (``rest_order_cancel_response.json``);
  unknown: ``-2013 Order does not exist.`` (GET) / ``-2011 Unknown order sent.`` (DELETE, also for an
  order that is already final).
* ``GET /api/v3/openOrders?symbol=`` (``DELETE`` cancels them all), ``GET /api/v3/account``
  (``rest_account.json``), ``GET /api/v3/myTrades?symbol=[&orderId=]``,
  ``GET /api/v3/capital/config/getall`` (coins and networks; ccxt's ``fetchCurrencies``).
* ``POST/PUT/DELETE/GET /api/v3/userDataStream`` — listenKeys (60 min, PUT extends; 60 per account).

Order statuses: NEW, PARTIALLY_FILLED, FILLED, CANCELED, PARTIALLY_CANCELED. Error codes: 10007 bad
symbol, 400 ``price scale is invalid`` / ``quantity scale is invalid`` (venue text, hummingbot PR 7348),
30002 below the minimum (quantity or ``quoteAmountPrecision`` notional), 30004 insufficient balance,
33333 invalid parameter, 700001..700005 auth (:mod:`.auth`). HTTP 400 for all of them.

Private pushes on ``/ws?listenKey=<key>`` (binary ``PushDataV3ApiWrapper``, the official runtime):
``spot@private.orders.v3.api.pb`` (privateOrders 304), ``spot@private.deals.v3.api.pb`` (privateDeals
306), ``spot@private.account.v3.api.pb`` (privateAccount 307). A subscription with an unknown or
expired listenKey, or from a 6th connection of one key, is refused ("Blocked!"); when a key expires
its connections are closed.
"""
from __future__ import annotations

import asyncio
import secrets
import time
from decimal import Decimal
from typing import Any, Optional
from urllib.parse import parse_qsl

from aiohttp import web

from ...trading.common import PrivateOut, dec_str, hold_unanswered
from ...trading.matching import Reject, SimOrder
from . import proto as mp
from .auth import verify_mexc

__all__ = ["MexcTrading", "ORDERS_TOPIC", "DEALS_TOPIC", "ACCOUNT_TOPIC"]

ORDERS_TOPIC = "spot@private.orders.v3.api.pb"
DEALS_TOPIC = "spot@private.deals.v3.api.pb"
ACCOUNT_TOPIC = "spot@private.account.v3.api.pb"
_TYPES = {"LIMIT": "gtc", "IMMEDIATE_OR_CANCEL": "ioc", "FILL_OR_KILL": "fok", "LIMIT_MAKER": "poc", "MARKET": "ioc"}
# privateOrders.orderType (README): 1 LIMIT, 2 POST_ONLY, 3 IOC, 4 FOK, 5 MARKET
_ORDER_TYPE_NO = {"LIMIT": 1, "LIMIT_MAKER": 2, "IMMEDIATE_OR_CANCEL": 3, "FILL_OR_KILL": 4, "MARKET": 5}
_TIF = {"gtc": "GTC", "ioc": "IOC", "fok": "FOK", "poc": "GTC"}
_ID_PREFIX = "C02__"
MAX_LISTEN_KEYS = 60
MAX_CONNECTIONS_PER_KEY = 5          # venue: at most 5 connections per listenKey


def order_status(o: SimOrder) -> str:
    if o.is_open:
        return "PARTIALLY_FILLED" if o.filled else "NEW"
    if o.status == "closed":
        return "FILLED"
    return "PARTIALLY_CANCELED" if o.filled else "CANCELED"


def _status_no(o: SimOrder) -> int:
    # privateOrders.status: 1 new, 2 filled, 3 partially filled, 4 canceled, 5 partially canceled
    return {"NEW": 1, "FILLED": 2, "PARTIALLY_FILLED": 3, "CANCELED": 4, "PARTIALLY_CANCELED": 5}[order_status(o)]


class MexcTrading:
    """Routes, WebSocket handlers and private pushes of the simulated MEXC spot venue."""

    def __init__(self, vt):
        self.vt = vt
        self.venue = vt.venue
        self.engine = vt.engine
        self.out = PrivateOut(self.venue)
        self.listen_keys: dict[str, list] = {}          # key -> [api_key, expires (monotonic)]
        self._bal_seen: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        r = self.venue.app.router
        r.add_post("/api/v3/order", self.new_order)
        r.add_get("/api/v3/order", self.query_order)
        r.add_delete("/api/v3/order", self.cancel_order)
        r.add_get("/api/v3/openOrders", self.open_orders)
        r.add_delete("/api/v3/openOrders", self.cancel_open_orders)
        r.add_get("/api/v3/account", self.account)
        r.add_get("/api/v3/myTrades", self.my_trades)
        r.add_get("/api/v3/capital/config/getall", self.capital_config)
        r.add_post("/api/v3/userDataStream", self.create_listen_key)
        r.add_put("/api/v3/userDataStream", self.keepalive_listen_key)
        r.add_delete("/api/v3/userDataStream", self.delete_listen_key)
        r.add_get("/api/v3/userDataStream", self.list_listen_keys)
        for topic in (ORDERS_TOPIC, DEALS_TOPIC, ACCOUNT_TOPIC):
            self.venue.ws_handlers[topic] = self.subscribe
        self.engine.listeners.append(self.on_event)

    # ------------------------------------------------------------------ REST plumbing
    def error(self, code: int, msg: str, status: int = 400) -> web.Response:
        return self.venue.json_response({"code": code, "msg": msg}, status=status)

    async def _signed(self, request: web.Request):
        """``(account, params)`` of a signed request, or an error response."""
        raw_path = request.raw_path
        raw_query = raw_path.split("?", 1)[1] if "?" in raw_path else ""
        body = (await request.read()).decode("utf-8", "replace")
        params = dict(parse_qsl(raw_query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        key = request.headers.get("X-MEXC-APIKEY")
        err = verify_mexc(key, raw_query, body, params, self.vt.secret_of, self.vt.trading.now_ms())
        if err is not None:
            return None, self.error(err.code, err.message, err.status)
        return self.vt.accounts[key], params

    def _order_id(self, o: SimOrder) -> str:
        return _ID_PREFIX + str(o.id)

    def _find(self, acct, params) -> tuple[Optional[SimOrder], Optional[web.Response]]:
        oid, cid = params.get("orderId"), params.get("origClientOrderId")
        if not oid and not cid:
            return None, self.error(700004, "Mandatory parameter 'orderId' or 'origClientOrderId' was not sent.")
        o = None
        if oid:
            raw = oid[len(_ID_PREFIX):] if oid.startswith(_ID_PREFIX) else oid
            o = self.engine.get(acct, order_id=raw)
        elif cid:
            o = self.engine.get(acct, client_id=cid)
        if o is not None and params.get("symbol") and o.symbol != params["symbol"]:
            o = None
        return o, None

    def order_json(self, o: SimOrder) -> dict:
        inst = self.venue.instruments[o.symbol]
        return {"symbol": o.symbol, "orderId": self._order_id(o), "orderListId": -1, "clientOrderId": o.client_id,
                "price": inst.price_str(o.price) if o.price is not None else "0",
                "origQty": inst.size_str(o.qty), "executedQty": inst.size_str(o.filled),
                "cummulativeQuoteQty": dec_str(o.filled_quote), "status": order_status(o),
                "timeInForce": _TIF[o.tif], "type": o.extra.get("type", "LIMIT"),
                "side": o.side.upper(), "stopPrice": "", "icebergQty": "", "time": o.create_ms,
                "updateTime": o.update_ms, "isWorking": o.is_open, "origQuoteOrderQty": "0"}

    # ------------------------------------------------------------------ orders
    async def new_order(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        sym = p.get("symbol", "")
        inst = self.venue.instruments.get(sym)
        if inst is None:
            return self.error(10007, "symbol not support api")
        side = p.get("side", "").upper()
        otype = p.get("type", "").upper()
        if side not in ("BUY", "SELL"):
            return self.error(33333, "Parameter error: side")
        if otype not in _TYPES:
            return self.error(33333, "Parameter error: type %s is not supported" % otype)
        try:
            qty = inst.steps_of(p.get("quantity", ""))
        except (ValueError, ArithmeticError):
            return self.error(400, "quantity scale is invalid")
        price = None
        if otype != "MARKET":
            try:
                price = inst.ticks_of(p.get("price", ""))
            except (ValueError, ArithmeticError):
                return self.error(400, "price scale is invalid")
        fault = self.venue.faults.take_order_fault()
        if fault is not None and fault[0] == "reject":
            return self.error(fault[1] if fault[1] is not None else 30004,
                              "Insufficient position" if fault[1] is None else "Order rejected (simulated)")
        try:
            o = self.engine.place(acct, sym, side.lower(), qty, price, tif=_TYPES[otype],
                                  client_id=p.get("newClientOrderId", ""), type="market" if otype == "MARKET" else "limit",
                                  extra={"type": otype})
        except Reject as e:
            return self._reject(e)
        ack = {"symbol": sym, "orderId": self._order_id(o), "orderListId": -1,
               "price": inst.price_str(price) if price is not None else "0", "origQty": inst.size_str(qty),
               "type": otype, "side": side, "transactTime": o.create_ms}
        return await self._answer(request, fault, ack)

    async def _answer(self, request, fault, body) -> web.Response:
        if fault is not None:
            kind, arg = fault
            if kind == "timeout":
                await hold_unanswered(request, arg, self.vt.held)
                return web.Response(status=504)
            if kind == "5xx":
                return self.venue.rest_error(arg, "Service Unavailable")
            if kind == "delay":
                await asyncio.sleep(arg)
        return self.venue.json_response(body)

    def _reject(self, e: Reject) -> web.Response:
        code = {"symbol": 10007, "min_qty": 30002, "min_notional": 30002, "balance": 30004}.get(e.kind, 33333)
        msg = {30004: "Insufficient position", 30002: "minimum transaction volume cannot be less than: " + e.message,
               10007: "symbol not support api"}.get(code, "Parameter error: " + e.message)
        return self.error(code, msg)

    async def query_order(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        o, err = self._find(acct, p)
        if err is not None:
            return err
        if o is None:
            return self.error(-2013, "Order does not exist.")
        return self.venue.json_response(self.order_json(o))

    async def cancel_order(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        o, err = self._find(acct, p)
        if err is not None:
            return err
        if o is None or not o.is_open:
            return self.error(-2011, "Unknown order sent.")
        self.engine.cancel(o)
        inst = self.venue.instruments[o.symbol]
        return self.venue.json_response({
            "symbol": o.symbol, "origClientOrderId": o.client_id, "orderId": self._order_id(o),
            "clientOrderId": p.get("newClientOrderId", o.client_id),
            "price": inst.price_str(o.price) if o.price is not None else "0", "origQty": inst.size_str(o.qty),
            "executedQty": inst.size_str(o.filled), "cummulativeQuoteQty": dec_str(o.filled_quote),
            "status": order_status(o), "timeInForce": _TIF[o.tif], "type": o.extra.get("type", "LIMIT"),
            "side": o.side.upper()})

    async def open_orders(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        sym = p.get("symbol")
        if sym and sym not in self.venue.instruments:
            return self.error(10007, "symbol not support api")
        return self.venue.json_response([self.order_json(o) for o in self.engine.open_orders(acct, sym or None)])

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/openOrders?symbol=``: cancel every open order of the symbol."""
        acct, p = await self._signed(request)
        if acct is None:
            return p
        sym = p.get("symbol", "")
        if sym not in self.venue.instruments:
            return self.error(10007, "symbol not support api")
        out = []
        for o in self.engine.open_orders(acct, sym):
            self.engine.cancel(o)
            out.append(self.order_json(o))
        return self.venue.json_response(out)

    async def account(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        bals = [{"asset": a, "free": dec_str(b.available), "locked": dec_str(b.locked)}
                for a, b in sorted(acct.balances.items()) if b.available or b.locked]
        return self.venue.json_response({
            "makerCommission": None, "takerCommission": None, "buyerCommission": None, "sellerCommission": None,
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "updateTime": None, "accountType": "SPOT",
            "balances": bals, "permissions": ["SPOT"]})

    async def my_trades(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        sym = p.get("symbol", "")
        if sym not in self.venue.instruments:
            return self.error(10007, "symbol not support api")
        order = None
        if p.get("orderId"):
            order, _ = self._find(acct, {"orderId": p["orderId"], "symbol": sym})
            if order is None:
                return self.venue.json_response([])
        inst = self.venue.instruments[sym]
        limit = min(int(p.get("limit") or 100), 100)
        fills = self.engine.fills_of(acct, sym, order)[-limit:]
        return self.venue.json_response([
            {"symbol": sym, "id": "%dX%d" % (f.order.id, f.id), "orderId": self._order_id(f.order), "orderListId": -1,
             "price": inst.price_str(f.price), "qty": inst.size_str(f.qty), "quoteQty": dec_str(f.quote),
             "commission": dec_str(f.fee), "commissionAsset": f.fee_asset, "time": f.ts_ms,
             "isBuyer": f.order.is_buy, "isMaker": f.role == "maker", "isBestMatch": True, "isSelfTrade": False,
             "clientOrderId": f.order.client_id} for f in fills])

    # one simulated network per coin: stablecoins on ERC20, other coins on their own chain
    _NETWORKS = {"USDT": "ERC20", "USDC": "ERC20"}

    async def capital_config(self, request: web.Request) -> web.Response:
        """``GET /api/v3/capital/config/getall`` (SIGNED; what ccxt's ``fetchCurrencies`` calls in
        ``loadMarkets`` whenever keys are set): every coin of the venue's symbols with one network,
        deposits and withdrawals enabled unless the generated universe froze or delisted the coin. Shape: the docs example as JKorf corrected it (lowercase
        ``name``, both ``network`` and ``netWork``), 18-decimal strings, ``minConfirm`` a number."""
        acct, p = await self._signed(request)
        if acct is None:
            return p
        coins = sorted({c for i in self.venue.instruments.values() for c in (i.base, i.quote)})
        out = []
        for c in coins:
            net = self._NETWORKS.get(c, c)
            # the flags exist per network only (frozen or delisted assets of a generated universe)
            dep, wd = self.venue.transfer_status(c)
            out.append({"coin": c, "name": c, "networkList": [{
                "coin": c, "depositDesc": None, "depositEnable": dep, "minConfirm": 0, "name": c,
                "network": net, "withdrawEnable": wd, "withdrawFee": "0.000100000000000000",
                "withdrawIntegerMultiple": None, "withdrawMax": "10000.000000000000000000",
                "withdrawMin": "0.001000000000000000", "sameAddress": False, "contract": "",
                "withdrawTips": None, "depositTips": None, "netWork": net}]})
        return self.venue.json_response(out)

    # ------------------------------------------------------------------ listenKeys
    def _key_valid(self, key: Optional[str]) -> Optional[str]:
        ent = self.listen_keys.get(key or "")
        if ent is None:
            return None
        if time.monotonic() >= ent[1]:
            self._expire(key)
            return None
        return ent[0]

    def _expire(self, key: str) -> None:
        self.listen_keys.pop(key, None)
        for c in list(self.venue.connections):
            if c.query.get("listenKey") == key:
                c.close(1000)

    def _schedule_expiry(self, key: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        def check():
            ent = self.listen_keys.get(key)
            if ent is None:
                return
            left = ent[1] - time.monotonic()
            if left <= 0:
                self._expire(key)
            else:
                loop.call_later(left, check)
        loop.call_later(self.vt.listen_key_ttl_s, check)

    async def create_listen_key(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        mine = [k for k, v in self.listen_keys.items() if v[0] == acct.api_key]
        if len(mine) >= MAX_LISTEN_KEYS:
            return self.error(730707, "listenKey limit exceeded (60 per account)")
        key = secrets.token_hex(32)
        self.listen_keys[key] = [acct.api_key, time.monotonic() + self.vt.listen_key_ttl_s]
        self._schedule_expiry(key)
        return self.venue.json_response({"listenKey": key})

    def _own_key(self, acct, p) -> tuple[Optional[str], Optional[web.Response]]:
        key = p.get("listenKey", "")
        if not key:
            return None, self.error(700004, "Mandatory parameter 'listenKey' was not sent.")
        if self._key_valid(key) != acct.api_key:
            return None, self.error(-1125, "This listenKey does not exist.")
        return key, None

    async def keepalive_listen_key(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        key, err = self._own_key(acct, p)
        if err is not None:
            return err
        self.listen_keys[key][1] = time.monotonic() + self.vt.listen_key_ttl_s
        return self.venue.json_response({"listenKey": key})

    async def delete_listen_key(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        key, err = self._own_key(acct, p)
        if err is not None:
            return err
        self._expire(key)
        return self.venue.json_response({"listenKey": key})

    async def list_listen_keys(self, request: web.Request) -> web.Response:
        acct, p = await self._signed(request)
        if acct is None:
            return p
        return self.venue.json_response({"listenKey": [k for k in list(self.listen_keys)
                                                       if self._key_valid(k) == acct.api_key]})

    # ------------------------------------------------------------------ private streams
    def subscribe(self, conn, topic: str) -> bool:
        key = conn.query.get("listenKey")
        api_key = self._key_valid(key)
        if api_key is None:
            return False
        if "mexc_api_key" not in conn.user_data:
            using = sum(1 for c in self.venue.connections
                        if c is not conn and c.query.get("listenKey") == key and "mexc_api_key" in c.user_data)
            if using >= MAX_CONNECTIONS_PER_KEY:
                return False
        conn.user_data["mexc_api_key"] = api_key
        if topic == ACCOUNT_TOPIC:       # changes are reported relative to the balances seen now
            for asset, b in self.vt.accounts[api_key].balances.items():
                self._bal_seen[(api_key, asset)] = (b.available, b.locked)
        return True

    def _targets(self, api_key: str, topic: str) -> list:
        return [c for c in self.venue.connections
                if c.user_data.get("mexc_api_key") == api_key and topic in c.subscriptions]

    def on_event(self, event: str, data: Any) -> None:
        if event == "order":
            o, _ = data
            targets = self._targets(o.account.api_key, ORDERS_TOPIC)
            if targets:
                self._send(targets, self._orders_push(o))
        elif event == "fill":
            targets = self._targets(data.order.account.api_key, DEALS_TOPIC)
            if targets:
                fault = self.venue.faults.take_deals_fault()
                if fault is None:
                    self._send(targets, self._deals_push(data))
                elif fault[0] == "late":         # after the order's pushes
                    asyncio.get_running_loop().call_later(fault[1], self._send, targets, self._deals_push(data))
        elif event == "balance":
            acct, assets, change = data
            targets = self._targets(acct.api_key, ACCOUNT_TOPIC)
            for asset in assets:
                b = acct.balance(asset)
                now = (b.available, b.locked)
                prev = self._bal_seen.get((acct.api_key, asset), now)
                self._bal_seen[(acct.api_key, asset)] = now
                if targets and prev != now:
                    self._send(targets, self._account_push(asset, now, prev, change))

    def _send(self, targets, frame: bytes) -> None:
        for c in targets:
            self.out.send(c, frame, True)

    def _orders_push(self, o: SimOrder) -> bytes:
        inst = self.venue.instruments[o.symbol]
        price = inst.price(o.price) if o.price is not None else Decimal(0)
        last = o.fills[-1].qty if o.fills else 0
        body = mp.PrivateOrdersV3Api(
            id=self._order_id(o), clientId=o.client_id, price=inst.price_str(o.price) if o.price is not None else "0",
            quantity=inst.size_str(o.qty), amount=dec_str(inst.size(o.qty) * price),
            avgPrice=dec_str(o.filled_quote / inst.size(o.filled)) if o.filled else "0",
            orderType=_ORDER_TYPE_NO.get(o.extra.get("type", "LIMIT"), 1), tradeType=1 if o.is_buy else 2,
            isMaker=bool(o.fills) and o.fills[-1].role == "maker",
            remainAmount=dec_str(inst.size(o.left) * price) if o.is_open else "0",
            remainQuantity=inst.size_str(o.left) if o.is_open else "0", lastDealQuantity=inst.size_str(last),
            cumulativeQuantity=inst.size_str(o.filled), cumulativeAmount=dec_str(o.filled_quote),
            status=_status_no(o), createTime=o.create_ms)
        return mp.build_push(ORDERS_TOPIC, o.symbol, "privateOrders", body, send_time=int(time.time() * 1000)
                             ).SerializeToString()

    def _deals_push(self, f) -> bytes:
        o = f.order
        inst = self.venue.instruments[o.symbol]
        body = mp.PrivateDealsV3Api(
            price=inst.price_str(f.price), quantity=inst.size_str(f.qty), amount=dec_str(f.quote),
            tradeType=1 if o.is_buy else 2, isMaker=f.role == "maker", isSelfTrade=False,
            tradeId="%dX%d" % (o.id, f.id), clientOrderId=o.client_id, orderId=self._order_id(o),
            feeAmount=dec_str(f.fee), feeCurrency=f.fee_asset, time=f.ts_ms)
        return mp.build_push(DEALS_TOPIC, o.symbol, "privateDeals", body, send_time=int(time.time() * 1000)
                             ).SerializeToString()

    def _account_push(self, asset: str, now, prev, change: str) -> bytes:
        kind = {"order-create": "ENTRUST_PLACE", "order-cancel": "ENTRUST_CANCEL"}.get(change, "ENTRUST")
        ts = int(time.time() * 1000)
        body = mp.PrivateAccountV3Api(
            vcoinName=asset, coinId=asset.lower(), balanceAmount=dec_str(now[0]),
            balanceAmountChange=dec_str(now[0] - prev[0]), frozenAmount=dec_str(now[1]),
            frozenAmountChange=dec_str(now[1] - prev[1]), type=kind, time=ts)
        return mp.build_push(ACCOUNT_TOPIC, None, "privateAccount", body, send_time=ts, create_time=ts
                             ).SerializeToString()
