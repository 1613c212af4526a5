"""MEXC spot v3 order entry (REST, signed) and the private stream (listenKey), implementing
:class:`cexnode.execution.gateway.OrderGateway`.

* ``POST /api/v3/order`` with ``newClientOrderId`` = the executor's client id (MEXC needs no
  prefix), ``type=IMMEDIATE_OR_CANCEL`` for IOC (``LIMIT`` for GTC). The answer is an ack without
  status (exchange-payloads ``rest_order_new_response.json``): DEFINITIVE with state NEW; the final
  state comes from the private stream or :meth:`query`.
* Order ``status`` (private orders): 1 new → NEW, 3 partially filled → PARTIALLY_FILLED, 2 filled →
  FILLED, 4 canceled and 5 partially canceled → CANCELLED (``filled_qty`` says how much filled);
  ``OrderState.avg_price`` from ``cummulativeQuoteQty``.
* ``GET``/``DELETE /api/v3/order`` by ``origClientOrderId``; ``-2013``/``-2011`` mean the order is
  unknown (:class:`OrderNotFound`). ``GET /api/v3/account`` for balances.
* Fees: the order answers carry none; they come from the private stream's deals, and a final
  state with fills from :meth:`query` takes them from ``GET /api/v3/myTrades?orderId=`` (the
  stream may have been down: an order reconciled by query must not be booked without its fee).
  The orders and deals channels are separate and not ordered with each other: a final order push
  whose deals have not all arrived is held (never reported without its fees) until they do, or
  for ``fee_wait_s`` at most, then completed from ``myTrades``.
* Every signed request carries ``recvWindow`` and a ``timestamp`` from the server clock
  (``/api/v3/time``, synced at start and every ``time_sync_interval_s``).
* Private stream: :class:`cexnode.adapters.mexc_spot.private.MexcUserStream`.
"""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any, Callable, Mapping, Optional

from cexnode._core import feed
from cexnode.adapters.live import GatewayError, LiveGateway, NotSent, VenueInstrument, _with, dec
from cexnode.adapters.mexc_spot import urls
from cexnode.adapters.mexc_spot.private import MexcUserStream
from cexnode.adapters.mexc_spot.signing import MexcSigner
from cexnode.execution.gateway import (Balance, OrderAck, OrderNotFound, OrderRequest, OrderState, OrderStatus,
                                       Outcome, Side, TimeInForce)
from cexnode.net.rest import encode_query, plain_value

__all__ = ["MexcSpotGateway", "NOT_FOUND_CODES", "order_status"]

NOT_FOUND_CODES = frozenset({-2013, -2011})     # "Order does not exist" / "Unknown order sent"
_ZERO = Decimal(0)
# REST status strings and the private stream's (parser-normalized) names -> OrderStatus; the
# contract: 4 canceled and 5 partially canceled -> CANCELLED (filled_qty says how much filled).
_STATUS = {"NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED, "FILLED": OrderStatus.FILLED,
           "CANCELED": OrderStatus.CANCELLED, "PARTIALLY_CANCELED": OrderStatus.CANCELLED,
           "CANCELLED": OrderStatus.CANCELLED,
           "new": OrderStatus.NEW, "partially_filled": OrderStatus.PARTIALLY_FILLED, "filled": OrderStatus.FILLED,
           "canceled": OrderStatus.CANCELLED, "partially_canceled": OrderStatus.CANCELLED}


def order_status(s: Any) -> OrderStatus:
    return _STATUS.get(str(s), OrderStatus.UNKNOWN)


def _error(ans: Any) -> tuple[Optional[int], str]:
    try:
        body = ans.json()
    except Exception:
        return None, ans.body[:200].decode("utf-8", "replace")
    if isinstance(body, dict):
        code = body.get("code")
        try:
            code = int(code) if code is not None else None
        except (TypeError, ValueError):
            code = None
        return code, str(body.get("msg") or "")
    return None, ""


class MexcSpotGateway(LiveGateway):
    """Live order entry on MEXC spot.

    Parameters
    ----------
    rest_url, ws_url
        REST base URL and the public WebSocket URL (the private stream connects to
        ``ws_url?listenKey=``).
    api_key, api_secret
        :class:`cexnode.config.Secret` credentials.
    recv_window_ms
        ``recvWindow`` of signed requests.
    listen_key_keepalive_s
        Period of the listenKey keep-alive ``PUT`` (venue: the key lives 60 min; every 30 min).
    request_timeout_s
        HTTP timeout per request (an order without an answer by then is AMBIGUOUS).
    order_connection
        Place and cancel orders over one kept-alive HTTP/1.1 connection written from the order
        path (:meth:`cexnode.net.rest.RestManager.open_order_connection`); the pooled client
        while it is busy or down.
    """

    venue = "mexc_spot"

    def __init__(self, *, rest_url: str, ws_url: str, api_key: Any, api_secret: Any, recv_window_ms: int = 5000,
                 listen_key_keepalive_s: float = 1800.0, request_timeout_s: float = 5.0,
                 time_sync_interval_s: float = 60.0, private_stream: bool = True,
                 stream_start_timeout_s: float = 10.0, clock_ns: Callable[[], int] = time.time_ns,
                 instruments: Optional[Mapping[str, VenueInstrument]] = None, rest: Any = None,
                 balance_poll_s: float = 0.0, order_connection: bool = True) -> None:
        super().__init__(rest_url=rest_url, ws_url=ws_url, request_timeout_s=request_timeout_s,
                         time_sync_interval_s=time_sync_interval_s, clock_ns=clock_ns, instruments=instruments,
                         rest=rest, balance_poll_s=balance_poll_s)
        self.signer = MexcSigner(api_key, api_secret, recv_window_ms)
        self.listen_key_keepalive_s = float(listen_key_keepalive_s)
        self.private_stream = private_stream
        self.stream_start_timeout_s = float(stream_start_timeout_s)
        self.stream: Any = None
        self.order_connection = bool(order_connection)
        self._fees: dict[str, tuple[Decimal, str]] = {}      # client id -> (cumulative fee, asset) from deals
        self._deal_qty: dict[str, Decimal] = {}               # client id -> quantity of the deals received
        self._fees_final: set[str] = set()                     # fees taken from myTrades: complete
        self._held: dict[str, tuple[OrderState, Any]] = {}     # final pushes waiting for their deals
        self.fee_wait_s = 0.5
        self.fee_waits = 0            # final pushes that arrived before their deals
        self.fee_lookups = 0          # ... whose deals did not follow within fee_wait_s (myTrades asked)
        self._bg: set = set()

    # -- signed HTTP -------------------------------------------------------------------------------
    async def signed(self, method: str, path: str, params: Optional[list] = None,
                     timeout_s: Optional[float] = None) -> Any:
        """A signed request through the REST manager (never retried when not idempotent)."""
        return await self._send(method, path, dict(params or ()), sign=self._sign, timeout_s=timeout_s)

    def _sign(self, method: str, path: str, query: str, body: bytes) -> tuple:
        # called by the REST manager right before sending: the timestamp is fresh per attempt
        return self.signer.sign_query(query, self.server_clock.now_ms(), body.decode() if body else ""), \
            self.signer.headers()

    async def _fetch_server_time(self) -> int:
        ans = await self._send("GET", urls.TIME, timeout_s=min(self.request_timeout_s, 5.0))
        if ans.status != 200:
            raise GatewayError("time: HTTP %d" % ans.status)
        return int(ans.json()["serverTime"])

    # -- states ------------------------------------------------------------------------------------
    def _state_from_rest(self, symbol: str, body: dict, fallback_cid: str = "") -> OrderState:
        cid = str(body.get("clientOrderId") or body.get("origClientOrderId") or fallback_cid)
        qty = dec(body.get("origQty"), _ZERO)
        filled = dec(body.get("executedQty"), _ZERO)
        quote = dec(body.get("cummulativeQuoteQty"), _ZERO)
        fee, fee_asset = self._fees.get(cid, (_ZERO, ""))
        st = OrderState(client_id=cid, venue=self.venue, symbol=symbol,
                        side=Side.BUY if str(body.get("side", "")).upper() == "BUY" else Side.SELL,
                        status=order_status(body.get("status")), qty=qty, filled_qty=filled,
                        avg_price=(quote / filled) if filled else None, fee=fee, fee_asset=fee_asset,
                        order_id=str(body.get("orderId") or ""), ts_ns=self._clock())
        return st

    # -- OrderGateway --------------------------------------------------------------------------------
    @staticmethod
    def _order_params(order: OrderRequest, inst: VenueInstrument) -> list:
        return [("symbol", inst.venue_symbol), ("side", "BUY" if order.side is Side.BUY else "SELL"),
                ("type", "IMMEDIATE_OR_CANCEL" if order.tif is TimeInForce.IOC else "LIMIT"),
                ("quantity", order.qty_text), ("price", order.price_text),
                ("newClientOrderId", order.client_id)]

    @classmethod
    def _order_query(cls, order: OrderRequest, inst: VenueInstrument) -> str:
        """:meth:`_order_params` url-encoded (``encode_query``), built in one step: the symbol and
        the client id need no escaping (checked), side, type and the plain decimals never do."""
        sym, cid = inst.venue_symbol, order.client_id
        if plain_value(sym) is None or plain_value(cid) is None:
            return encode_query(cls._order_params(order, inst))
        return "symbol=%s&side=%s&type=%s&quantity=%s&price=%s&newClientOrderId=%s" % (
            sym, "BUY" if order.side is Side.BUY else "SELL",
            "IMMEDIATE_OR_CANCEL" if order.tif is TimeInForce.IOC else "LIMIT",
            order.qty_text, order.price_text, cid)

    def warm_order(self, order: OrderRequest) -> None:
        """The executor's warm-up: ``order``'s request built and signed as :meth:`place` would
        send it over the order connection — not sent, nothing counted."""
        inst = self.instrument(order.symbol)
        if inst is None:
            return
        q, hdrs = self._sign("POST", urls.ORDER, self._order_query(order, inst), b"")
        oc = self._rest.order_connection if self._rest is not None else None
        if oc is not None:
            oc.request_bytes("POST", urls.ORDER + "?" + q, hdrs)

    async def place(self, order: OrderRequest) -> OrderAck:
        t0 = time.monotonic_ns()
        self.placed += 1
        inst = self.instrument(order.symbol)
        if inst is None:
            return self._rejected(order, t0, "unknown_symbol")
        try:
            # written in this call on the order connection when it can go at once (executor: eagerly)
            ans = await self._send("POST", urls.ORDER, query=self._order_query(order, inst), sign=self._sign)
        except NotSent as e:
            return self._rejected(order, t0, "not_sent: %s" % e, "not_sent")
        except GatewayError as e:
            return self._ambiguous(order, t0, str(e))
        if ans.status >= 500:
            return self._ambiguous(order, t0, "HTTP %d" % ans.status)
        if ans.status >= 400:
            code, msg = _error(ans)
            self.log.warning("order rejected", venue=self.venue, client_id=order.client_id, http=ans.status,
                             code=code, msg=msg[:200])
            return self._rejected(order, t0, msg or "HTTP %d" % ans.status, str(code if code is not None else ans.status))
        try:
            body = ans.json()
            oid = str(body.get("orderId") or "")
        except Exception:
            return self._ambiguous(order, t0, "unreadable order answer")
        st = OrderState(client_id=order.client_id, venue=self.venue, symbol=order.symbol, side=order.side,
                        status=OrderStatus.NEW, qty=order.qty, order_id=oid, ts_ns=self._clock())
        st = self._remember(st)          # the stream may already have said more
        return self._ack(order, Outcome.DEFINITIVE, t0, st)

    async def query(self, symbol: str, client_id: str) -> OrderState:
        inst = self.instrument(symbol)
        if inst is None:
            raise GatewayError("unknown symbol %s" % symbol, ambiguous=False, code="unknown_symbol")
        try:
            ans = await self.signed("GET", urls.ORDER, [("symbol", inst.venue_symbol), ("origClientOrderId", client_id)])
        except NotSent as e:
            raise GatewayError(str(e), ambiguous=False, code="not_sent") from None
        if ans.status >= 500:
            raise GatewayError("query: HTTP %d" % ans.status, code=str(ans.status))
        if ans.status >= 400:
            code, msg = _error(ans)
            if code in NOT_FOUND_CODES:
                raise OrderNotFound(msg or "order not found", code=str(code))
            raise GatewayError("query: HTTP %d %s %s" % (ans.status, code, msg[:100]), ambiguous=False,
                               code=str(code if code is not None else ans.status))
        return self._remember(await self._rest_state_with_fees(inst, symbol, ans.json(), client_id))

    async def _rest_state_with_fees(self, inst: VenueInstrument, symbol: str, body: dict, client_id: str) -> OrderState:
        """An order answer as a state; a final one with fills gets its fee from myTrades (order
        answers carry none)."""
        st = self._state_from_rest(symbol, body, client_id)
        if st.filled_qty > 0 and st.is_final and await self._fees_from_trades(inst, st):
            st = self._state_from_rest(symbol, body, client_id)
        return st

    async def _fees_from_trades(self, inst: VenueInstrument, st: OrderState) -> bool:
        """Set the order's fee from its fills (``GET /api/v3/myTrades``) when they add up to its
        filled quantity; False (fees as the stream reported them) when they cannot be had."""
        if not st.order_id:
            return False
        try:
            ans = await self.signed("GET", urls.MY_TRADES, [("symbol", inst.venue_symbol), ("orderId", st.order_id)])
            trades = ans.json() if ans.status == 200 else None
        except Exception as e:  # NotSent, transport, unreadable: keep what the stream said
            self.log.warning("order fees unavailable", venue=self.venue, client_id=st.client_id, error=repr(e)[:200])
            return False
        if not isinstance(trades, list):
            self.log.warning("order fees unavailable", venue=self.venue, client_id=st.client_id, http=ans.status)
            return False
        mine = [t for t in trades if str(t.get("orderId")) == st.order_id]
        if sum((dec(t.get("qty"), _ZERO) for t in mine), _ZERO) != st.filled_qty:
            return False                     # not all fills listed yet
        assets = {str(t.get("commissionAsset") or "") for t in mine}
        if len(assets) != 1:
            return False
        self._fees[st.client_id] = (sum((dec(t.get("commission"), _ZERO) for t in mine), _ZERO), assets.pop())
        self._fees_final.add(st.client_id)
        return True

    async def cancel(self, symbol: str, client_id: str) -> OrderAck:
        t0 = time.monotonic_ns()
        inst = self.instrument(symbol)
        if inst is None:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, reason="unknown_symbol",
                            error_code="unknown_symbol")
        try:
            ans = await self.signed("DELETE", urls.ORDER, [("symbol", inst.venue_symbol),
                                                           ("origClientOrderId", client_id)])
        except NotSent:
            ans = None
        except GatewayError as e:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.AMBIGUOUS, reason=str(e),
                            error_code="ambiguous", latency_ns=time.monotonic_ns() - t0)
        if ans is not None and ans.status < 400:
            st = self._remember(await self._rest_state_with_fees(inst, symbol, ans.json(), client_id))
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.DEFINITIVE, state=st,
                            order_id=st.order_id, latency_ns=time.monotonic_ns() - t0)
        if ans is not None and ans.status >= 500:
            return OrderAck(client_id=client_id, venue=self.venue, outcome=Outcome.AMBIGUOUS,
                            reason="HTTP %d" % ans.status, error_code="ambiguous", latency_ns=time.monotonic_ns() - t0)
        # refused (already final, unknown) or not sent: the venue's current word decides
        return await self._cancel_answer_from_query(symbol, client_id, t0)

    async def balances(self) -> dict[str, Balance]:
        try:
            ans = await self.signed("GET", urls.ACCOUNT)
        except NotSent as e:
            raise GatewayError(str(e), ambiguous=False, code="not_sent") from None
        if ans.status != 200:
            code, msg = _error(ans)
            raise GatewayError("account: HTTP %d %s %s" % (ans.status, code, msg[:100]), ambiguous=ans.status >= 500,
                               code=str(code if code is not None else ans.status))
        now = self._clock()
        out = {}
        for b in ans.json().get("balances") or ():
            a = str(b.get("asset"))
            out[a] = Balance(asset=a, free=dec(b.get("free"), _ZERO), locked=dec(b.get("locked"), _ZERO), ts_ns=now)
        return self._set_balances(out)

    def _forget(self, client_id: str) -> None:
        self._fees.pop(client_id, None)
        self._deal_qty.pop(client_id, None)
        self._fees_final.discard(client_id)
        held = self._held.pop(client_id, None)
        if held is not None:
            held[1].cancel()

    # -- private stream ----------------------------------------------------------------------------
    def on_private(self, kind: int, msg: dict) -> None:
        """A private push decoded by the Cython MEXC parser (feed.MSG_ORDER / MSG_FILL / MSG_BALANCE)."""
        if kind == feed.MSG_ORDER:
            st = self._state_from_push(msg)
            if st is None:
                return
            if st.is_final and st.filled_qty > self._deal_qty.get(st.client_id, _ZERO) \
                    and st.client_id not in self._fees_final:
                self._hold(st)                 # its deals (fees) are still on their way
                return
            self._emit_order(self._remember(st))
        elif kind == feed.MSG_FILL:
            cid = msg.get("client_order_id") or self._order_ids.get(msg.get("order_id") or "")
            if not cid:
                return
            self._deal_qty[cid] = self._deal_qty.get(cid, _ZERO) + dec(msg.get("qty"), _ZERO)
            fee = dec(msg.get("fee"))
            if fee is not None and cid not in self._fees_final:
                old, asset = self._fees.get(cid, (_ZERO, ""))
                self._fees[cid] = (old + fee, msg.get("fee_currency") or asset)
            held = self._held.get(cid)
            if held is not None and self._deal_qty[cid] >= held[0].filled_qty:
                del self._held[cid]
                held[1].cancel()
                self._release(held[0])
        elif kind == feed.MSG_BALANCE:
            a = msg.get("asset")
            if a:
                ts = self.local_ns(msg.get("time") or msg.get("ts")) or self._clock()
                self._push_balances({a: Balance(asset=a, free=dec(msg.get("free"), _ZERO),
                                                locked=dec(msg.get("frozen"), _ZERO), ts_ns=ts)}, ts)

    def _hold(self, st: OrderState) -> None:
        cid = st.client_id
        old = self._held.pop(cid, None)
        if old is not None:
            old[1].cancel()
        else:
            self.fee_waits += 1
        self._held[cid] = (st, asyncio.get_running_loop().call_later(self.fee_wait_s, self._fee_timeout, cid))

    def _release(self, st: OrderState) -> None:
        """Report a held final state with the fees known now."""
        fee, fee_asset = self._fees.get(st.client_id, (_ZERO, ""))
        self._emit_order(self._remember(_with(st, fee=fee, fee_asset=fee_asset)))

    def _fee_timeout(self, cid: str) -> None:
        held = self._held.pop(cid, None)
        if held is not None:
            self.fee_lookups += 1
            task = asyncio.get_running_loop().create_task(self._complete_fees(held[0]))
            self._bg.add(task)
            task.add_done_callback(self._bg.discard)

    async def _complete_fees(self, st: OrderState) -> None:
        """The deals did not follow the final push in time: take the fees from myTrades."""
        inst = self.instrument(st.symbol)
        ok = False
        try:
            ok = inst is not None and await self._fees_from_trades(inst, st)
        finally:
            if not ok:
                self.log.warning("final order push without all its deals; fees as received", venue=self.venue,
                                 client_id=st.client_id, filled=str(st.filled_qty),
                                 deals=str(self._deal_qty.get(st.client_id, _ZERO)))
            self._release(st)

    def _state_from_push(self, msg: dict) -> Optional[OrderState]:
        cid = msg.get("client_order_id") or self._order_ids.get(msg.get("order_id") or "")
        if not cid:
            return None                        # not one of ours (placed elsewhere)
        inst = self.by_venue_symbol(msg.get("venue_symbol"))
        prev = self._orders.get(cid)
        symbol = inst.symbol if inst is not None else (prev.symbol if prev is not None else str(msg.get("venue_symbol")))
        filled = dec(msg.get("filled_qty"), _ZERO)
        quote = dec(msg.get("filled_amount"), _ZERO)
        avg = (quote / filled) if filled and quote else (dec(msg.get("avg_price")) if filled else None)
        fee, fee_asset = self._fees.get(cid, (_ZERO, ""))
        side = Side.BUY if msg.get("side") == "buy" else Side.SELL
        return OrderState(client_id=cid, venue=self.venue, symbol=symbol, side=side,
                          status=order_status(msg.get("status")), qty=dec(msg.get("qty"), _ZERO), filled_qty=filled,
                          avg_price=avg, fee=fee, fee_asset=fee_asset, order_id=str(msg.get("order_id") or ""),
                          ts_ns=int(msg.get("ts") or 0) * 1_000_000 or self._clock())

    async def _start_private(self) -> None:
        if self.order_connection:
            # orders (place, cancel) on one kept-alive connection, written from the order path
            await self._manager().open_order_connection([("POST", urls.ORDER), ("DELETE", urls.ORDER)],
                                                        ping_path=urls.PING)
        if not self.private_stream:
            return
        self.stream = MexcUserStream(self)
        await self.stream.start(self.stream_start_timeout_s)

    async def _stop_private(self) -> None:
        if self._rest is not None:
            await self._rest.close_order_connection()
        for _, timer in self._held.values():
            timer.cancel()
        self._held.clear()
        for t in list(self._bg):
            t.cancel()
        if self.stream is not None:
            await self.stream.stop()
            self.stream = None

    def stream_connected(self) -> bool:
        return self.stream is not None and self.stream.connected.is_set()

    def status(self) -> dict:
        d = super().status()
        d.update(fee_waits=self.fee_waits, fee_lookups=self.fee_lookups, held=len(self._held))
        if self.stream is not None:
            d["stream"] = self.stream.status()
        return d
