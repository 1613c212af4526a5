"""Gate.io order entry (spot here; USDT futures in :mod:`cexnode.adapters.gateio_futures.execution`
on the same base), implementing :class:`cexnode.execution.gateway.OrderGateway`.

* Orders go through the WebSocket order API (``spot.order_place`` / ``order_cancel`` /
  ``order_status`` after ``spot.login``) when ``ws_order_api`` is on and that connection is logged
  in; otherwise, or when the frame cannot be written, through REST ``/api/v4/spot/orders`` (the
  request certainly did not leave, so the fallback cannot double an order).
* The client id travels as ``text = "t-" + client_id`` (Gate: ``t-`` + at most 28 bytes) and is
  stripped again in every state; orders are queried and cancelled by that text.
* Outcomes: an answer with status < 500 is DEFINITIVE (4xx → REJECTED, ``reason`` = Gate
  ``label``); 5xx, a timeout or a lost connection after sending → AMBIGUOUS; ``ORDER_NOT_FOUND``
  (or HTTP 404) on a query → :class:`OrderNotFound`.
* ``finish_as``: open → NEW / PARTIALLY_FILLED (by what filled), filled → FILLED, anything else
  (cancelled, ioc, stp, poc, fok, ...) → CANCELLED with the filled amount.
* Private channels ``spot.orders`` (``!all``) and ``spot.balances``; REST ``/spot/accounts``.
"""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Optional

import orjson

from cexnode.adapters.gateio_spot import urls
from cexnode.adapters.gateio_spot.private import GateWsSession
from cexnode.adapters.gateio_spot.signing import GateSigner
from cexnode.adapters.live import GatewayError, HttpAnswer, LiveGateway, NotSent, VenueInstrument, dec
from cexnode.execution.gateway import (Balance, OrderAck, OrderNotFound, OrderRequest, OrderState, OrderStatus,
                                       Outcome, Side, TimeInForce)

__all__ = ["GateGatewayBase", "GateSpotGateway", "TEXT_PREFIX", "NOT_FOUND_LABELS", "finish_status"]

TEXT_PREFIX = "t-"
NOT_FOUND_LABELS = frozenset({"ORDER_NOT_FOUND", "ORDER_NOT_EXIST"})
_ZERO = Decimal(0)
_OPEN = frozenset({"open", "_new", "_update", ""})


def finish_status(status: Any, finish_as: Any, filled: Decimal, qty: Decimal) -> OrderStatus:
    """The contract's Gate mapping (see the module docstring)."""
    fa = str(finish_as or "")
    st = str(status or "")
    if st == "open" or (not st and fa in _OPEN):
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW
    if fa == "filled" or (fa in _OPEN and qty > 0 and filled >= qty):
        return OrderStatus.FILLED
    return OrderStatus.CANCELLED


def _client_id(text: Any) -> Optional[str]:
    t = str(text or "")
    return t[len(TEXT_PREFIX):] if t.startswith(TEXT_PREFIX) else None


def _errs(obj: Any) -> tuple[str, str]:
    """(label, message) of a Gate error body (REST) or WebSocket API ``data.errs``."""
    if isinstance(obj, dict):
        return str(obj.get("label") or ""), str(obj.get("message") or obj.get("detail") or "")
    return "", ""


class GateGatewayBase(LiveGateway):
    """What Gate spot and futures order entry share (REST signing, the WS session, outcomes)."""

    channel_prefix = "spot"
    orders_path = urls.ORDERS
    time_path = urls.TIME

    def __init__(self, *, rest_url: str, ws_url: str, api_key: Any, api_secret: Any, ws_order_api: bool = True,
                 private_stream: bool = True, user_id: str = "", request_timeout_s: float = 5.0,
                 time_sync_interval_s: float = 60.0, stream_start_timeout_s: float = 10.0,
                 clock_ns: Callable[[], int] = time.time_ns,
                 instruments: Optional[Mapping[str, VenueInstrument]] = None, rest: Any = None,
                 balance_poll_s: float = 0.0) -> None:
        super().__init__(rest_url=rest_url, ws_url=ws_url, request_timeout_s=request_timeout_s,
                         time_sync_interval_s=time_sync_interval_s, clock_ns=clock_ns, instruments=instruments,
                         rest=rest, balance_poll_s=balance_poll_s)
        self.signer = GateSigner(api_key, api_secret)
        self.ws_order_api = bool(ws_order_api)
        self.private_stream = bool(private_stream)
        self.user_id = str(user_id or "")
        self.stream_start_timeout_s = float(stream_start_timeout_s)
        self.session: Any = None
        self.ws_orders = 0
        self.rest_orders = 0
        self.rest_fallbacks = 0

    # -- venue specifics (overridden by futures) ------------------------------------------------------
    def ws_headers(self) -> dict:
        return {}

    def rest_extra_headers(self) -> dict:
        return {}

    def private_channels(self, uid: Optional[str]) -> list[tuple[str, list]]:
        return [("spot.orders", ["!all"]), ("spot.balances", [])]

    def order_body(self, order: OrderRequest, inst: VenueInstrument) -> dict:
        return {"text": TEXT_PREFIX + order.client_id, "currency_pair": inst.venue_symbol, "type": "limit",
                "account": "spot", "side": order.side.value, "amount": order.qty_text,
                "price": order.price_text, "time_in_force": "ioc" if order.tif is TimeInForce.IOC else "gtc"}

    def order_ref_params(self, inst: VenueInstrument, client_id: str) -> dict:
        """WebSocket API ``req_param`` naming one order (cancel / status)."""
        return {"order_id": TEXT_PREFIX + client_id, "currency_pair": inst.venue_symbol}

    def order_ref_query(self, inst: VenueInstrument) -> Optional[dict]:
        return {"currency_pair": inst.venue_symbol}

    def state_from_order(self, item: dict, inst: Optional[VenueInstrument], fallback_cid: str = "") -> Optional[OrderState]:
        cid = _client_id(item.get("text")) or fallback_cid
        if not cid:
            return None
        qty = dec(item.get("amount"), _ZERO)
        left = dec(item.get("left"))
        # the contract: what filled is amount - left (``filled_amount`` only when left is absent)
        filled = max(qty - left, _ZERO) if left is not None else dec(item.get("filled_amount"), _ZERO)
        total = dec(item.get("filled_total"), _ZERO)
        if filled > 0:
            avg = total / filled if total > 0 else dec(item.get("avg_deal_price"))
        else:
            avg = None
        symbol = inst.symbol if inst is not None else str(item.get("currency_pair") or "")
        ts = dec(item.get("update_time_ms") or item.get("create_time_ms"))
        return OrderState(client_id=cid, venue=self.venue, symbol=symbol,
                          side=Side.BUY if item.get("side") == "buy" else Side.SELL,
                          status=finish_status(item.get("status"), item.get("finish_as"), filled, qty), qty=qty,
                          filled_qty=filled, avg_price=avg, fee=dec(item.get("fee"), _ZERO),
                          fee_asset=str(item.get("fee_currency") or ""), order_id=str(item.get("id") or ""),
                          ts_ns=int(ts * 1_000_000) if ts else self._clock())

    def instrument_of_item(self, item: dict) -> Optional[VenueInstrument]:
        return self.by_venue_symbol(item.get("currency_pair"))

    def on_balance_items(self, items: Iterable[Any], ts_ms: Any) -> None:
        """``spot.balances`` items: ``available`` is free, ``freeze`` locked (else total − available)."""
        upd = {}
        stamps = []
        for it in items:
            if not isinstance(it, dict) or not it.get("currency"):
                continue
            a = str(it["currency"])
            t = self.local_ns(it.get("timestamp_ms"))
            if t:
                stamps.append(t)
            free = dec(it.get("available"), _ZERO)
            total = dec(it.get("total"))
            locked = dec(it.get("freeze"))
            if locked is None:
                locked = total - free if total is not None else _ZERO
            upd[a] = (free, locked)
        if upd:
            ts_ns = max(stamps) if stamps else self._clock()
            self._push_balances({a: Balance(asset=a, free=f, locked=lk, ts_ns=ts_ns) for a, (f, lk) in upd.items()},
                                ts_ns)

    # -- REST ----------------------------------------------------------------------------------------
    async def rest(self, method: str, path: str, params: Optional[dict] = None, body: Optional[dict] = None, *,
                   endpoint: Optional[str] = None, market: Optional[str] = None,
                   timeout_s: Optional[float] = None) -> HttpAnswer:
        """A signed REST request through the REST manager (the body is sent as the exact bytes signed)."""
        raw = orjson.dumps(body) if body is not None else b""

        def sign(m: str, p: str, q: str, b: bytes) -> tuple:
            h = self.signer.rest_headers(m, p, q, b, self.server_clock.now_s())
            h["Accept"] = "application/json"
            h.update(self.rest_extra_headers())
            return q, h

        return await self._send(method, path, params, raw, sign=sign, endpoint=endpoint, market=market,
                                timeout_s=timeout_s)

    async def _fetch_server_time(self) -> int:
        ans = await self._send("GET", self.time_path, timeout_s=min(self.request_timeout_s, 5.0))
        if ans.status != 200:
            raise GatewayError("time: HTTP %d" % ans.status)
        return int(ans.json()["server_time"])

    # -- transport choice ----------------------------------------------------------------------------
    async def _call(self, ws_channel: str, req_param: Any, method: str, path: str, params: Optional[dict] = None,
                    body: Optional[dict] = None, endpoint: Optional[str] = None,
                    market: Optional[str] = None) -> tuple[int, Any, str]:
        """One request over the WebSocket API (when on and logged in) else REST.

        Returns ``(status, result or error object, transport)``. Raises :class:`NotSent` when
        nothing left on either path, ``GatewayError(ambiguous=True)`` when the request left and no
        answer came."""
        placing = method == "POST"
        if self.ws_order_api and self.session is not None and self.session.api_ready:
            try:
                if placing:
                    self.ws_orders += 1          # sent on the WS API (answered or not)
                resp = await self.session.request(ws_channel, req_param, self.request_timeout_s)
            except NotSent:
                if placing:
                    self.ws_orders -= 1
                self.rest_fallbacks += 1
            else:
                status = int(str((resp.get("header") or {}).get("status") or 0) or 0)
                data = resp.get("data") or {}
                errs = data.get("errs")
                if errs:
                    return (status if status >= 400 else 400), errs, "ws"
                return status, data.get("result"), "ws"
        elif self.ws_order_api:
            self.rest_fallbacks += 1
        if placing:
            self.rest_orders += 1
        ans = await self.rest(method, path, params, body, endpoint=endpoint, market=market)
        try:
            obj = ans.json()
        except Exception:
            obj = None
        return ans.status, obj, "rest"

    @property
    def fast_send(self) -> bool:
        """Orders go over the logged-in WebSocket API: written at once, no HTTP request to build
        (the executor sends such a leg after one that goes over REST)."""
        return bool(self.ws_order_api and self.session is not None and self.session.api_ready)

    # -- OrderGateway --------------------------------------------------------------------------------
    def _pre_check(self, order: OrderRequest, inst: VenueInstrument) -> Optional[str]:
        return None

    def warm_order(self, order: OrderRequest) -> None:
        """The executor's warm-up: ``order``'s WebSocket API request built as :meth:`place` would
        send it — not sent, nothing counted."""
        inst = self.instrument(order.symbol)
        if inst is None or self._pre_check(order, inst):
            return
        body = self.order_body(order, inst)
        if self.session is not None and self.ws_order_api:
            self.session.api_message(self.channel_prefix + ".order_place", body, "0-0")

    async def place(self, order: OrderRequest) -> OrderAck:
        t0 = time.monotonic_ns()
        self.placed += 1
        inst = self.instrument(order.symbol)
        if inst is None:
            return self._rejected(order, t0, "unknown_symbol")
        bad = self._pre_check(order, inst)
        if bad:
            return self._rejected(order, t0, bad)
        body = self.order_body(order, inst)
        try:
            status, obj, via = await self._call(self.channel_prefix + ".order_place", body, "POST", self.orders_path,
                                                body=body, market=inst.venue_symbol)
        except NotSent as e:
            return self._rejected(order, t0, "not_sent: %s" % e, "not_sent")
        except GatewayError as e:
            return self._ambiguous(order, t0, str(e))
        if status >= 500 or status == 0:
            return self._ambiguous(order, t0, "status %d via %s" % (status, via))
        if status >= 400:
            label, msg = _errs(obj)
            self.log.warning("order rejected", venue=self.venue, client_id=order.client_id, status=status,
                             label=label, msg=msg[:200], via=via)
            return self._rejected(order, t0, label or "HTTP %d" % status, label or str(status))
        st = self.state_from_order(obj, inst, order.client_id) if isinstance(obj, dict) else None
        if st is None:
            return self._ambiguous(order, t0, "unreadable order answer via %s" % via)
        st = self._remember(st)
        return self._ack(order, Outcome.DEFINITIVE, t0, st)

    async def query(self, symbol: str, client_id: str) -> OrderState:
        inst = self.instrument(symbol)
        if inst is None:
            raise GatewayError("unknown symbol %s" % symbol, ambiguous=False, code="unknown_symbol")
        try:
            status, obj, via = await self._call(self.channel_prefix + ".order_status",
                                                self.order_ref_params(inst, client_id), "GET",
                                                "%s/%s%s" % (self.orders_path, TEXT_PREFIX, client_id),
                                                self.order_ref_query(inst), endpoint=self.orders_path + "/{id}")
        except NotSent as e:
            raise GatewayError(str(e), ambiguous=False, code="not_sent") from None
        if status >= 500 or status == 0:
            raise GatewayError("query: status %d via %s" % (status, via), code=str(status))
        if status >= 400:
            label, msg = _errs(obj)
            if label in NOT_FOUND_LABELS or (status == 404 and not label):
                raise OrderNotFound(msg or "order not found", code=label or "404")
            raise GatewayError("query: %d %s %s" % (status, label, msg[:100]), ambiguous=False, code=label or str(status))
        st = self.state_from_order(obj, inst, client_id) if isinstance(obj, dict) else None
        if st is None:
            raise GatewayError("query: unreadable answer via %s" % via)
        return self._remember(st)

    async def cancel(self, symbol: str, client_id: str) -> OrderAck:
        t0 = time.monotonic_ns()
        inst = self.instrument(symbol)
        if inst is None:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, reason="unknown_symbol",
                            error_code="unknown_symbol")
        status, obj = 0, None
        try:
            status, obj, _via = await self._call(self.channel_prefix + ".order_cancel",
                                                 self.order_ref_params(inst, client_id), "DELETE",
                                                 "%s/%s%s" % (self.orders_path, TEXT_PREFIX, client_id),
                                                 self.order_ref_query(inst), endpoint=self.orders_path + "/{id}")
        except NotSent:
            status = -1
        except GatewayError as e:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.AMBIGUOUS, reason=str(e),
                            error_code="ambiguous", latency_ns=time.monotonic_ns() - t0)
        if 200 <= status < 300 and isinstance(obj, dict):
            st = self.state_from_order(obj, inst, client_id)
            if st is not None:
                st = self._remember(st)
                return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=st,
                                order_id=st.order_id, latency_ns=time.monotonic_ns() - t0)
        if status >= 500 or status == 0:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.AMBIGUOUS,
                            reason="status %d" % status, error_code="ambiguous", latency_ns=time.monotonic_ns() - t0)
        # refused (already final / unknown) or not sent: the venue's current word decides
        return await self._cancel_answer_from_query(symbol, client_id, t0)

    async def _get_json(self, path: str, params: Optional[dict] = None) -> Any:
        try:
            ans = await self.rest("GET", path, params)
        except NotSent as e:
            raise GatewayError(str(e), ambiguous=False, code="not_sent") from None
        if ans.status != 200:
            label, msg = _errs(ans.json() if ans.body[:1] == b"{" else None)
            raise GatewayError("GET %s: HTTP %d %s %s" % (path, ans.status, label, msg[:100]), ambiguous=ans.status >= 500,
                               code=label or str(ans.status))
        return ans.json()

    # -- private pushes --------------------------------------------------------------------------------
    def on_push(self, channel: str, items: list, ts_ms: Any = None) -> None:
        if channel.endswith(".orders"):
            for it in items:
                if not isinstance(it, dict):
                    continue
                st = self.state_from_order(it, self.instrument_of_item(it))
                if st is not None:
                    self._emit_order(self._remember(st))
        elif channel.endswith(".balances"):
            self.on_balance_items(items, ts_ms)

    async def _start_private(self) -> None:
        if not (self.private_stream or self.ws_order_api):
            return
        self.session = GateWsSession(self)
        await self.session.start(self.stream_start_timeout_s)

    async def _stop_private(self) -> None:
        if self.session is not None:
            await self.session.stop()
            self.session = None

    def transport_counts(self) -> dict[str, int]:
        return {"ws_api": self.ws_orders, "rest": self.rest_orders}

    def stream_connected(self) -> bool:
        return self.session is not None and self.session.ready.is_set()

    def status(self) -> dict:
        d = super().status()
        d.update(ws_orders=self.ws_orders, rest_orders=self.rest_orders, rest_fallbacks=self.rest_fallbacks)
        if self.session is not None:
            d["session"] = self.session.status()
        return d


class GateSpotGateway(GateGatewayBase):
    """Live order entry on Gate.io spot (module docstring). ``account``: the order's account type
    (``spot``, or ``unified`` for unified accounts)."""

    venue = "gateio_spot"

    def __init__(self, *, account: str = "spot", **kw: Any) -> None:
        super().__init__(**kw)
        self.account = account

    def order_body(self, order: OrderRequest, inst: VenueInstrument) -> dict:
        body = super().order_body(order, inst)
        body["account"] = self.account
        return body

    async def balances(self) -> dict[str, Balance]:
        rows = await self._get_json(urls.ACCOUNTS)
        now = self._clock()
        out = {}
        for r in rows or ():
            a = str(r.get("currency"))
            out[a] = Balance(asset=a, free=dec(r.get("available"), _ZERO), locked=dec(r.get("locked"), _ZERO), ts_ns=now)
        return self._set_balances(out)
