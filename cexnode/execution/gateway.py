"""The venue order-entry interface the executor talks to (paper, and later the live adapters).

Contract
--------
* Every quantity is in **base units** of the unified symbol (futures adapters convert contracts ×
  ``quanto_multiplier`` both ways, docs/design.md §3); prices in the quote currency. Requests carry int
  mantissas with explicit scales (the route's ``price_scale``/``qty_scale``, as in ``Opportunity``);
  venue reports carry exact :class:`~decimal.Decimal` values parsed from the venue's strings.
  No floats for money anywhere.
* :meth:`OrderGateway.place` never raises for a venue outcome: it returns an :class:`OrderAck`
  whose ``outcome`` is DEFINITIVE (the venue answered: accepted, filled, rejected, ...) or
  AMBIGUOUS (timeout, disconnect, HTTP 5xx on POST, any transport error after the request may
  have left): an ambiguous order may or may not exist and must be reconciled with
  :meth:`OrderGateway.query` — never assumed. The executor treats an exception from ``place`` as
  AMBIGUOUS too.
* :meth:`OrderGateway.query` returns the venue's current :class:`OrderState`, raises
  :class:`OrderNotFound` when the venue definitively does not know the client id, and
  :class:`GatewayError` when it could not find out (transport trouble: ask again).
* Order updates from the venue's private stream are delivered to callbacks registered with
  :meth:`OrderGateway.subscribe_orders`, in venue order, with ``filled_qty`` cumulative.
  Balance pushes (when the venue streams them) go to :meth:`OrderGateway.subscribe_balances`
  callbacks; ``Balance.ts_ns`` says when the venue's value was observed (docs/design.md §5 freshness), on
  OUR clock: a venue timestamp is converted with the server-time offset (the executor compares it
  with its own send times).
* Optional attribute ``fast_send`` (default False): True while ``place`` writes its order at once
  (a logged-in WebSocket order API) rather than building an HTTP request first; the executor then
  starts the other leg first.
* Optional attribute ``eager_place`` (default False): True when ``place`` may be started outside a
  Task, its first step run inside the executor's own call up to its first suspension
  (:func:`cexnode.execution.eager.start_eager`): it then writes its order before it first waits
  and does not need ``asyncio.current_task()`` before that.
* ``client_id`` is chosen by the executor, unique per order, at most 20 chars of ``[0-9a-z]``
  (short enough for every venue's client order id field); adapters add the venue's prefix and
  strip it again in updates, so ``OrderState.client_id`` is the executor's.

Mapping venue states (for the adapters)
---------------------------------------
* Each venue's gateway (``cexnode/adapters/<venue>/execution.py``) documents how its order
  states map onto :class:`OrderStatus`. An order answer that is only an ack (no status): return
  DEFINITIVE with state NEW (or None); the final state comes from the stream or ``query``. A 4xx
  answer naming a reason → REJECTED with that ``reason``. Contract sizes (perpetuals) are
  reported in base units: ``filled_qty`` = |filled contracts| × the contract multiplier.
* HTTP 5xx, timeouts and disconnects after a POST was written: AMBIGUOUS. A 4xx, or a failure
  before the request was written: DEFINITIVE REJECTED.
* ``OrderState.avg_price`` = cumulative quote / filled quantity (the venue's filled-quote field),
  exact Decimal division is fine (the PositionBook keeps 80 digits).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Mapping, Optional, Protocol, runtime_checkable

from cexnode._core import fixedpoint as _fixedpoint

__all__ = [
    "Side", "TimeInForce", "OrderStatus", "Outcome", "OrderRequest", "OrderState", "OrderAck", "Balance",
    "GatewayError", "OrderNotFound", "OrderGateway", "FINAL_STATUSES", "mantissa_to_decimal",
    "mantissa_text",
]


def mantissa_to_decimal(m: int, scale: int) -> Decimal:
    """Exact ``m × 10**-scale``."""
    return Decimal(m).scaleb(-scale)


def mantissa_text(m: int, scale: int) -> str:
    """``m × 10**-scale`` as plain decimal text without exponent or trailing zeros ("0.15",
    "65000", "0"): what the venues' order requests carry. Formatted in C from the mantissa
    (:func:`cexnode._core.fixedpoint.format`), through Decimal only beyond int64."""
    try:
        return _fixedpoint.format(m, scale)
    except OverflowError:
        s = format(mantissa_to_decimal(m, scale), "f")
        return (s.rstrip("0").rstrip(".") if "." in s else s) or "0"


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> "Side":
        return Side.SELL if self is Side.BUY else Side.BUY


class TimeInForce(str, enum.Enum):
    IOC = "ioc"      # immediate-or-cancel: what the executor sends (docs/design.md §5)
    GTC = "gtc"


class OrderStatus(str, enum.Enum):
    NEW = "new"                          # resting / accepted, nothing filled yet
    PARTIALLY_FILLED = "partially_filled"  # open with a partial fill (not final)
    FILLED = "filled"                    # final, filled_qty == qty
    CANCELLED = "cancelled"              # final; filled_qty may be > 0 (IOC remainder cancelled)
    REJECTED = "rejected"                # final, nothing filled
    UNKNOWN = "unknown"                  # no definitive knowledge (ambiguous outcome placeholder)

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})


class Outcome(str, enum.Enum):
    DEFINITIVE = "definitive"   # the venue answered; ``OrderAck.state`` is its word
    AMBIGUOUS = "ambiguous"     # timeout / disconnect / 5xx on POST: the order may exist; reconcile


_kw = dict(frozen=True, kw_only=True, slots=True)


@dataclass(**_kw)
class OrderRequest:
    """One order. ``qty_m``/``price_m`` are mantissas at ``qty_scale``/``price_scale`` (base units,
    quote per base unit). ``symbol`` is the venue's unified symbol (``BTC/USDT`` or ``BTC/USDT:USDT``)."""

    client_id: str
    venue: str
    symbol: str
    side: Side
    qty_m: int
    price_m: int
    qty_scale: int
    price_scale: int
    tif: TimeInForce = TimeInForce.IOC
    reduce_only: bool = False
    route: str = ""
    purpose: str = "entry"   # entry | hedge | unwind (audit only)

    @property
    def qty(self) -> Decimal:
        return mantissa_to_decimal(self.qty_m, self.qty_scale)

    @property
    def price(self) -> Decimal:
        return mantissa_to_decimal(self.price_m, self.price_scale)

    @property
    def qty_text(self) -> str:
        """:attr:`qty` as the venues' requests carry it (:func:`mantissa_text`)."""
        return mantissa_text(self.qty_m, self.qty_scale)

    @property
    def price_text(self) -> str:
        """:attr:`price` as the venues' requests carry it (:func:`mantissa_text`)."""
        return mantissa_text(self.price_m, self.price_scale)

    @property
    def notional(self) -> Decimal:
        """qty × price, exact."""
        return mantissa_to_decimal(self.qty_m * self.price_m, self.qty_scale + self.price_scale)

    def audit_fields(self) -> dict:
        return {"client_id": self.client_id, "venue": self.venue, "symbol": self.symbol, "side": self.side.value,
                "qty": str(self.qty), "price": str(self.price), "tif": self.tif.value, "route": self.route,
                "purpose": self.purpose, "reduce_only": self.reduce_only}

    def audit_brief(self) -> dict:
        """The fields that identify the order (the trade record carries route, tif, purpose)."""
        return {"client_id": self.client_id, "venue": self.venue, "symbol": self.symbol, "side": self.side.value,
                "qty": self.qty_text, "price": self.price_text}


@dataclass(**_kw)
class OrderState:
    """The venue's view of one order. ``filled_qty`` is cumulative (base units); ``avg_price`` the
    volume-weighted fill price (None when nothing filled); ``fee`` the cumulative fee in ``fee_asset``."""

    client_id: str
    venue: str
    symbol: str
    side: Side
    status: OrderStatus
    qty: Decimal
    filled_qty: Decimal = Decimal(0)
    avg_price: Optional[Decimal] = None
    fee: Decimal = Decimal(0)
    fee_asset: str = ""
    order_id: str = ""
    reason: str = ""
    ts_ns: int = 0

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def filled_quote(self) -> Decimal:
        return self.filled_qty * self.avg_price if self.avg_price is not None else Decimal(0)

    def audit_fields(self) -> dict:
        return {"client_id": self.client_id, "venue": self.venue, "symbol": self.symbol, "side": self.side.value,
                "status": self.status.value, "qty": str(self.qty), "filled_qty": str(self.filled_qty),
                "avg_price": None if self.avg_price is None else str(self.avg_price), "fee": str(self.fee),
                "fee_asset": self.fee_asset, "order_id": self.order_id, "reason": self.reason}


@dataclass(**_kw)
class OrderAck:
    """Result of ``place`` or ``cancel``. DEFINITIVE: ``state`` is the venue's answer (REJECTED with
    ``reason``/``error_code`` when refused). AMBIGUOUS: ``state`` is None or status UNKNOWN."""

    client_id: str
    venue: str
    outcome: Outcome
    state: Optional[OrderState] = None
    order_id: str = ""
    reason: str = ""
    error_code: str = ""
    latency_ns: int = 0

    @property
    def definitive(self) -> bool:
        return self.outcome is Outcome.DEFINITIVE

    def audit_fields(self) -> dict:
        d = {"client_id": self.client_id, "venue": self.venue, "outcome": self.outcome.value,
             "order_id": self.order_id, "reason": self.reason, "error_code": self.error_code,
             "latency_us": self.latency_ns // 1000}
        if self.state is not None:
            d["state"] = self.state.audit_fields()
        return d


@dataclass(**_kw)
class Balance:
    """Balance of one asset on one venue: ``free`` usable now, ``locked`` in open orders/margin;
    ``ts_ns`` (CLOCK_REALTIME) when the venue's value was observed."""

    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)
    ts_ns: int = 0

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class GatewayError(Exception):
    """Transport/venue failure. ``ambiguous``: the request may have taken effect (timeout,
    disconnect, 5xx on a POST); False: it certainly did not (4xx, refused before sending)."""

    def __init__(self, message: str, *, ambiguous: bool = True, code: str = ""):
        super().__init__(message)
        self.ambiguous = ambiguous
        self.code = code


class OrderNotFound(GatewayError):
    """The venue definitively does not know this client id (query answered 'not found')."""

    def __init__(self, message: str = "order not found", *, code: str = "not_found"):
        super().__init__(message, ambiguous=False, code=code)


OrderCallback = Callable[[OrderState], None]
BalanceCallback = Callable[[str, Mapping[str, Balance]], None]   # (venue, {asset: Balance})


@runtime_checkable
class OrderGateway(Protocol):
    """Order entry on one venue (implemented by PaperGateway and the live venue adapters)."""

    venue: str

    async def place(self, order: OrderRequest) -> OrderAck:
        """Send one order. Never raises for venue outcomes (see the module contract)."""
        ...

    async def cancel(self, symbol: str, client_id: str) -> OrderAck:
        """Cancel by client id. DEFINITIVE with the resulting state (an already final order is
        answered with its final state), or AMBIGUOUS."""
        ...

    async def query(self, symbol: str, client_id: str) -> OrderState:
        """Current state; raises OrderNotFound (definitive) or GatewayError (ask again)."""
        ...

    async def balances(self) -> dict[str, Balance]:
        """Fresh balances from the venue (REST), keyed by asset; raises GatewayError."""
        ...

    def subscribe_orders(self, callback: OrderCallback) -> Callable[[], None]:
        """Register a private-stream order-update callback; returns an unsubscribe function."""
        ...

    def subscribe_balances(self, callback: BalanceCallback) -> Callable[[], None]:
        """Register a balance-push callback; returns an unsubscribe function (no-op when the venue
        does not push balances)."""
        ...
