"""What the executor may spend: each venue's free balances and the trades in flight's reservations.

:class:`BalanceBook` is the executor's balance state (docs/design.md §5, "balances are never taken from a
stale cache"):

* **The fresh cache** per venue: balances fetched over REST (:meth:`BalanceBook.fetch`, both venues
  concurrently; as fresh as the request's start) or pushed by the venue's private stream
  (:meth:`BalanceBook.on_balances`; a push observed before our last order there is already stale
  and ignored). An entry is usable for ``trading.max_balance_age_ms`` (:meth:`BalanceBook.stale`)
  and is dropped the moment an order is sent to its venue (:meth:`BalanceBook.order_sent`): the
  venue's balances change then, and the cache must not be reused.
* **Reservations**: trades run concurrently (``max_inflight_trades`` > 1) may share a venue, and a
  balance observed after one trade's order was sent need not show that order yet. Each entry leg
  reserves what it takes (:func:`~cexnode.execution.risk.balance_needs`) from its venue until its
  trade has ended (:meth:`BalanceBook.reserve`, :meth:`BalanceBook.release`); the balance check
  reads the free balances less the reservations (:meth:`BalanceBook.free_of`).
* **Free balances for the arbitrage stage**: the ArbEngine sizes opportunities to what the balance
  check will allow (arb.pxd rule 3). It is told whenever that may have changed — a balance
  observed (private stream, paper fill, REST), a reservation taken or released — never per
  market-data message (:meth:`BalanceBook.add_free_listener`). Between an order and the next
  observation the last observed amounts stand (less the reservations); the check itself refreshes
  first, and stays the guard.

Audit: none of its own — balances are not order events; a refused trade is audited by the executor
(``trade_rejected``, whose detail names the reservations: :meth:`BalanceBook.reserved_note`).

Restart: nothing is restored from the audit trail. Balances are the venues' to say: they are read
fresh from every venue at start (the engine's ``Executor.refresh_balances``) and before any trade
whose cache is not fresh; reservations belong to trades in flight, which do not outlive the process
(their orders are reconciled by :class:`~cexnode.execution.legs.LegTracker`).
"""
from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Callable, Iterable, Mapping, Optional

from cexnode._core.logring import Logger
from cexnode.config import TradingConfig
from cexnode.execution.gateway import Balance, GatewayError, OrderGateway
from cexnode.execution.positions import DEC_CTX

__all__ = ["BalanceBook", "FreeListener"]

_ZERO = Decimal(0)

FreeListener = Callable[[str, Optional[dict[str, Decimal]]], None]


class BalanceBook:
    """Free balances per venue, their freshness, and the reservations of the trades in flight.

    Parameters
    ----------
    gateways
        ``{venue: OrderGateway}``, the executor's own map (shared, not copied).
    trading
        The ``trading`` config section (``max_balance_age_ms``, ``order_timeout_ms``); the executor
        sets a reloaded one (``Executor.reconfigure``).
    log
        For a free-balance listener that failed (sizing is advisory).
    clock_ns
        Wall clock (ns), the one ``Balance.ts_ns`` is on.
    """

    def __init__(self, *, gateways: Mapping[str, OrderGateway], trading: TradingConfig, log: Logger,
                 clock_ns: Callable[[], int]):
        self.gateways = gateways
        self.trading = trading
        self.log = log
        self._clock = clock_ns
        self._balances: dict[str, tuple[dict[str, Balance], int]] = {}   # venue -> (balances, observed at)
        self._seen: dict[str, dict[str, Decimal]] = {}   # venue -> free amounts last observed (kept past a send)
        self._free_listeners: list[FreeListener] = []
        self._sent_at: dict[str, int] = {}        # venue -> wall ns of the last order sent there
        self._reserving: dict[str, list[tuple[int, str, Decimal]]] = {}   # venue -> (trade id, asset, amount)

    # -- freshness -----------------------------------------------------------------------------------
    def stale(self, venues: list[str]) -> list[str]:
        """The venues among ``venues`` whose cached balances may not be used (none, or older than
        ``max_balance_age_ms``; 0: always fetched)."""
        now = self._clock()
        max_age = self.trading.max_balance_age_ms * 1_000_000
        return [v for v in venues if max_age == 0 or v not in self._balances or now - self._balances[v][1] > max_age]

    async def fetch(self, need: list[str]) -> None:
        """Ask the venues concurrently (REST); each result is as fresh as the request's start.
        Raises GatewayError when a venue did not answer within ``order_timeout_ms``."""
        t_req = self._clock()
        timeout = self.trading.order_timeout_ms / 1000.0
        res = await asyncio.gather(*(asyncio.wait_for(self.gateways[v].balances(), timeout) for v in need),
                                   return_exceptions=True)
        for v, r in zip(need, res):
            if isinstance(r, BaseException):
                raise GatewayError("balances of %s unavailable: %r" % (v, r))
            self._balances[v] = (dict(r), t_req)
            self._observed(v, r)

    def on_balances(self, venue: str, balances: Mapping[str, Balance]) -> None:
        """A venue's balance push (``OrderGateway.subscribe_balances``)."""
        ts = min((b.ts_ns for b in balances.values() if b.ts_ns), default=self._clock())
        if ts <= self._sent_at.get(venue, 0):
            return                        # observed before our last order there: already stale
        self._balances[venue] = (dict(balances), ts)
        self._observed(venue, balances)

    def order_sent(self, venue: str) -> int:
        """An order is being sent to ``venue``: its balances change now, so the cache is dropped
        and pushes observed before this moment are ignored. Returns the moment (wall ns)."""
        self._balances.pop(venue, None)
        t = self._sent_at[venue] = self._clock()
        return t

    def cached(self, venue: str) -> Optional[tuple[dict[str, Balance], int]]:
        """The cached balances of ``venue`` and when they were observed (wall ns), fresh or not;
        None when there are none (never fetched, or an order was sent there since)."""
        return self._balances.get(venue)

    def last_sent_ns(self, venue: str) -> int:
        """When the last order was sent to ``venue`` (wall ns; 0: none)."""
        return self._sent_at.get(venue, 0)

    # -- free balances -------------------------------------------------------------------------------
    def free(self, venue: str) -> dict[str, Decimal]:
        """Free balances in ``venue``'s cache less what trades in flight have reserved there."""
        b = self._balances.get(venue)
        free = {a: x.free for a, x in b[0].items()} if b is not None else {}
        for asset, amount in self.reserved(venue).items():         # summed once for all assets
            free[asset] = DEC_CTX.subtract(free.get(asset, _ZERO), amount)
        return free

    def free_of(self, venue: str, asset: str) -> Decimal:
        """What :meth:`free` says for one asset (0 when there is none), without the whole map: the
        balance check's two."""
        b = self._balances.get(venue)
        x = b[0].get(asset) if b is not None else None
        free = x.free if x is not None else _ZERO
        if venue in self._reserving:
            r = self.reserved(venue).get(asset)
            if r is not None:
                free = DEC_CTX.subtract(free, r)
        return free

    def add_free_listener(self, callback: FreeListener) -> Callable[[], None]:
        """``callback(venue, free)`` whenever :meth:`free_balances` of ``venue`` may have changed
        (``free`` is its value); returns the unsubscribe function."""
        self._free_listeners.append(callback)
        return lambda: self._free_listeners.remove(callback) if callback in self._free_listeners else None

    def free_balances(self, venue: str) -> Optional[dict[str, Decimal]]:
        """The free amounts last observed at ``venue`` less what trades in flight have reserved
        there (the balance check's terms); None before any observation."""
        seen = self._seen.get(venue)
        if seen is None:
            return None
        free = dict(seen)
        if venue in self._reserving:
            for asset, amount in self.reserved(venue).items():
                free[asset] = DEC_CTX.subtract(free.get(asset, _ZERO), amount)
        return free

    def _observed(self, venue: str, balances: Mapping[str, Balance]) -> None:
        self._seen[venue] = {a: b.free for a, b in balances.items()}
        self._free_changed(venue)

    def _free_changed(self, *venues: str) -> None:
        for venue in dict.fromkeys(venues):
            if self._free_listeners:
                free = self.free_balances(venue)
                for cb in list(self._free_listeners):
                    try:
                        cb(venue, free)
                    except Exception as e:     # sizing is advisory (the balance check is the guard)
                        self.log.error("free balance listener failed", venue=venue, error=repr(e)[:200])

    # -- reservations --------------------------------------------------------------------------------
    # (After a trade has ended, a snapshot taken between its send and the venue's processing could
    # still be used while younger than max_balance_age_ms, as between sequential trades; a venue's
    # pushes normally follow its processing.)
    def reserve(self, trade_id: int, buy_venue: str, sell_venue: str,
                needs: tuple[tuple[str, Decimal], tuple[str, Decimal]]) -> None:
        """Trade ``trade_id``'s entry legs take ``needs`` (``((asset, amount) of the buy leg,
        (asset, amount) of the sell leg)``, as the balance check computed them) from their venues
        until :meth:`release`."""
        (asset_b, amount_b), (asset_s, amount_s) = needs
        self._reserving.setdefault(buy_venue, []).append((trade_id, asset_b, amount_b))
        self._reserving.setdefault(sell_venue, []).append((trade_id, asset_s, amount_s))
        if self._free_listeners:
            self._free_changed(buy_venue, sell_venue)

    def reserved(self, venue: str) -> dict[str, Decimal]:
        """What trades in flight have reserved at ``venue``, by asset."""
        out: dict[str, Decimal] = {}
        for _, asset, amount in self._reserving.get(venue, ()):
            out[asset] = DEC_CTX.add(out.get(asset, _ZERO), amount)
        return out

    def reserved_by_venue(self) -> dict[str, dict[str, Decimal]]:
        """:meth:`reserved` of every venue where something is reserved."""
        return {v: self.reserved(v) for v in list(self._reserving)}

    def release(self, trade_id: int) -> None:
        """The trade has ended: its legs' reservations go."""
        changed = []
        for venue in list(self._reserving):
            keep = [r for r in self._reserving[venue] if r[0] != trade_id]
            if len(keep) == len(self._reserving[venue]):
                continue
            changed.append(venue)
            if keep:
                self._reserving[venue] = keep
            else:
                del self._reserving[venue]
        if changed and self._free_listeners:
            self._free_changed(*changed)

    def reserved_note(self, venues: Iterable[str]) -> str:
        """For a balance refusal's detail: what is reserved at ``venues`` ("" when nothing)."""
        parts = ["%s %s %s" % (v, a, x) for v in dict.fromkeys(venues) for a, x in self.reserved(v).items()]
        return " (after reserving for trades in flight: %s)" % ", ".join(parts) if parts else ""
