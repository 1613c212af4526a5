"""Gate.io USDT-settled futures order entry (shared Gate code in
:mod:`cexnode.adapters.gateio_spot.execution`), implementing :class:`OrderGateway`.

* Sizes are contracts: ``size`` = ± base qty / ``quanto_multiplier`` (+ buy / − sell); an order
  whose base quantity is not a whole number of contracts is refused before sending unless
  ``size_decimal`` (header ``X-Gate-Size-Decimal: 1`` on REST and the WebSocket handshake: sizes
  become decimal strings). States convert back: ``filled_qty`` = (|size| − |left|) × multiplier,
  side from the sign of ``size``, ``avg_price`` = ``fill_price``.
* WebSocket API ``futures.login`` / ``futures.order_place`` / ``order_cancel`` / ``order_status``
  with REST ``/api/v4/futures/usdt/orders`` fallback; private channel ``futures.orders`` with the
  user id (from the login answer, else ``user_id``) first in the payload.
* Futures orders carry no fee field: ``fee`` = filled quote × ``tkfr`` (the taker rate the venue
  reports on the order) in the settle currency.
* ``balances()``: ``/accounts`` (settle currency: free = ``available``, locked = total − available)
  and ``/positions`` (signed base position per base asset). Balances are not pushed.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Optional

from cexnode.adapters.gateio_futures import urls
from cexnode.adapters.gateio_spot.execution import TEXT_PREFIX, GateGatewayBase, _client_id, finish_status
from cexnode.adapters.gateio_spot import urls as spot_urls
from cexnode.adapters.live import GatewayError, VenueInstrument, dec, fmt_decimal
from cexnode.execution.gateway import Balance, OrderRequest, OrderState, Side, TimeInForce

__all__ = ["GateFuturesGateway"]

_ZERO = Decimal(0)


class GateFuturesGateway(GateGatewayBase):
    """Live order entry on Gate.io USDT futures (module docstring)."""

    venue = "gateio_futures"
    channel_prefix = "futures"
    orders_path = urls.ORDERS
    time_path = spot_urls.TIME          # one REST host serves spot and futures; the time is the venue's

    def __init__(self, *, size_decimal: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.size_decimal = bool(size_decimal)

    # -- venue specifics ---------------------------------------------------------------------------
    def ws_headers(self) -> dict:
        return {urls.SIZE_DECIMAL_HEADER[0]: urls.SIZE_DECIMAL_HEADER[1]} if self.size_decimal else {}

    def rest_extra_headers(self) -> dict:
        return self.ws_headers()

    def private_channels(self, uid: Optional[str]) -> list[tuple[str, list]]:
        if not uid:
            self.log.error("futures.orders needs the user id (login answer or venues.gateio_futures.user_id)",
                           venue=self.venue)
            return []
        return [("futures.orders", [uid, "!all"])]

    def _contracts(self, order: OrderRequest, inst: VenueInstrument) -> Decimal:
        return order.qty / inst.multiplier

    def _pre_check(self, order: OrderRequest, inst: VenueInstrument) -> Optional[str]:
        c = self._contracts(order, inst)
        if c <= 0:
            return "invalid_qty"
        if not self.size_decimal and c != c.to_integral_value():
            return "qty_not_whole_contracts"
        return None

    def order_body(self, order: OrderRequest, inst: VenueInstrument) -> dict:
        c = self._contracts(order, inst)
        if order.side is Side.SELL:
            c = -c
        size: Any = fmt_decimal(c) if self.size_decimal else int(c)
        body = {"contract": inst.venue_symbol, "size": size, "price": order.price_text,
                "tif": "ioc" if order.tif is TimeInForce.IOC else "gtc", "text": TEXT_PREFIX + order.client_id}
        if order.reduce_only:
            body["reduce_only"] = True
        return body

    def order_ref_params(self, inst: VenueInstrument, client_id: str) -> dict:
        return {"order_id": TEXT_PREFIX + client_id}

    def order_ref_query(self, inst: VenueInstrument) -> Optional[dict]:
        return None

    def instrument_of_item(self, item: dict) -> Optional[VenueInstrument]:
        return self.by_venue_symbol(item.get("contract"))

    def state_from_order(self, item: dict, inst: Optional[VenueInstrument], fallback_cid: str = "") -> Optional[OrderState]:
        cid = _client_id(item.get("text")) or fallback_cid
        if not cid:
            return None
        mult = inst.multiplier if inst is not None else Decimal(1)
        size = dec(item.get("size"), _ZERO)
        left = dec(item.get("left"), _ZERO)
        filled_c = abs(size) - abs(left)
        if filled_c < 0:
            filled_c = _ZERO
        qty = abs(size) * mult
        filled = filled_c * mult
        avg = dec(item.get("fill_price")) if filled > 0 else None
        if avg is not None and avg <= 0:
            avg = None
        fee = _ZERO
        tkfr = dec(item.get("tkfr"))
        if avg is not None and tkfr is not None and tkfr > 0:
            fee = filled * avg * tkfr
        ts = dec(item.get("finish_time_ms") or item.get("update_time_ms") or item.get("create_time_ms"))
        if ts is None:
            t_s = dec(item.get("finish_time") or item.get("create_time"))
            ts = t_s * 1000 if t_s else None
        symbol = inst.symbol if inst is not None else str(item.get("contract") or "")
        return OrderState(client_id=cid, venue=self.venue, symbol=symbol, side=Side.SELL if size < 0 else Side.BUY,
                          status=finish_status(item.get("status"), item.get("finish_as"), filled, qty), qty=qty,
                          filled_qty=filled, avg_price=avg, fee=fee, fee_asset=inst.quote if inst is not None else "USDT",
                          order_id=str(item.get("id") or ""), ts_ns=int(ts * 1_000_000) if ts else self._clock())

    def on_balance_items(self, items: Iterable[Any], ts_ms: Any) -> None:
        pass           # futures.balances carries the total only, not what is free: use balances()

    async def _fetch_server_time(self) -> int:
        """``/api/v4/spot/time`` (one host serves both markets on the venue); where that path is not
        served (a futures-only endpoint, e.g. the simulator), the futures order book's ``current``
        (server time, float seconds) of a configured contract."""
        ans = await self._send("GET", self.time_path, timeout_s=min(self.request_timeout_s, 5.0))
        if ans.status == 200:
            return int(ans.json()["server_time"])
        if ans.status != 404 or not self._instruments:
            raise GatewayError("time: HTTP %d" % ans.status)
        contract = next(iter(self._instruments.values())).venue_symbol
        ans = await self._send("GET", urls.ORDER_BOOK, {"contract": contract, "limit": "1"},
                               timeout_s=min(self.request_timeout_s, 5.0))
        if ans.status != 200:
            raise GatewayError("time (order book): HTTP %d" % ans.status)
        return int(dec(ans.json()["current"]) * 1000)

    # -- balances ------------------------------------------------------------------------------------
    async def balances(self) -> dict[str, Balance]:
        acct = await self._get_json(urls.ACCOUNTS)
        positions = await self._get_json(urls.POSITIONS)
        now = self._clock()
        out: dict[str, Balance] = {}
        if isinstance(acct, dict):
            cur = str(acct.get("currency") or "USDT")
            free = dec(acct.get("available"), _ZERO)
            total = dec(acct.get("total"), free)
            out[cur] = Balance(asset=cur, free=free, locked=max(total - free, _ZERO), ts_ns=now)
        for p in positions or ():
            inst = self.by_venue_symbol(p.get("contract"))
            if inst is None:
                continue
            pos = dec(p.get("size"), _ZERO) * inst.multiplier
            prev = out.get(inst.base)
            pos = pos + (prev.free if prev is not None else _ZERO)
            out[inst.base] = Balance(asset=inst.base, free=pos, ts_ns=now)
        return self._set_balances(out)
