"""Pre-trade risk checks, the error-rate breaker, the kill switch, and the trading state.

States (``RiskManager.state``; ``state_code`` 0/1/2 for metrics)
----------------------------------------------------------------
* ``active``   — new trades allowed (each still checked).
* ``reducing`` — no new trades; hedges/unwinds that reduce a position are allowed. Entered while a
  position limit or the open-exposure limit is exceeded, or an order is unreconciled.
* ``halted``   — no new trades. Reasons: ``kill_switch`` (signal or file; blocks hedges too: the
  operator said stop), ``error_rate``, ``daily_loss``, ``stale_data``, ``audit`` (the audit log
  cannot be written), ``executor_error`` (a bug; cleared only by :meth:`RiskManager.clear`). Other than the kill switch,
  risk-reducing hedges of a trade already in flight may still go out.

Reasons are a set; the state is derived from it after every change. Every raised/cleared reason
is logged and audited (``risk_condition``), every state transition too (``risk_state``).

Clearing: ``stale_data`` clears when the books are fresh again; ``error_rate`` when the rolling
window's failure rate is back at or under the threshold (failures age out after
``risk.error_window_s``); ``daily_loss`` at the next UTC day; the kill switch when the file is gone
and the signal toggle is off; ``position``/``exposure`` when back within limits; ``unreconciled``
when the executor has reconciled every order; ``audit`` and ``executor_error`` only by an explicit
:meth:`RiskManager.clear` (operator action).

Pre-trade checks assume the worst case of a two-leg trade: one leg fills and the other does not,
so each leg alone must keep positions within ``risk.max_position`` and exposure within
``risk.max_open_exposure``.
"""
from __future__ import annotations

import collections
import os
import signal
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Optional

from cexnode.execution.positions import DEC_CTX, PositionBook
from cexnode.log import get_logger

__all__ = ["RiskManager", "RiskDecision", "book_ages", "RoutedBooks", "balance_needs", "ACTIVE", "REDUCING", "HALTED", "STATE_CODES",
           "HALT_REASONS", "REDUCE_REASONS"]

ACTIVE, REDUCING, HALTED = "active", "reducing", "halted"
STATE_CODES = {ACTIVE: 0, REDUCING: 1, HALTED: 2}
HALT_REASONS = frozenset({"kill_switch", "error_rate", "daily_loss", "stale_data", "audit", "executor_error"})
REDUCE_REASONS = frozenset({"position_limit", "exposure_limit", "unreconciled"})
_ZERO = Decimal(0)


def book_ages(books: Mapping[tuple, Any], clock_ns: Callable[[], int] = time.time_ns
              ) -> Callable[[], dict[tuple, Optional[float]]]:
    """The ``book_ages_ms`` source for :class:`RiskManager` from ``{(venue, symbol): Book}`` (the
    routed books): age = now − the book's last local receive time, in ms; None while the book is
    out of sync or has never been updated."""
    items = list(books.items())

    def ages() -> dict[tuple, Optional[float]]:
        now = clock_ns()
        return {k: ((now - b.recv_ns) / 1e6 if b.in_sync and b.recv_ns else None) for k, b in items}

    return ages


class RoutedBooks:
    """The routed books, as routes come and go at run time: a ``book_ages_ms`` source for
    :class:`RiskManager` (call it) that follows :meth:`add` and :meth:`remove`.

    A book is watched while at least one route uses it (each :meth:`add` is one use, each
    :meth:`remove` gives one back), so a book left by its last route never trips the stale-data
    halt. A book added with ``pending=True`` (a route wired while the node runs, whose book is
    still fetching its snapshot) is not watched until it is first in sync: until then its route
    cannot trade (the arbitrage stage reads only books in sync), and one listing syncing must not
    halt every other route. From then on it is watched as any other (out of sync = stale).
    """

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock_ns
        self._books: dict[tuple, Any] = {}
        self._uses: dict[tuple, int] = {}
        self._pending: set[tuple] = set()

    def add(self, key: tuple, book: Any, *, pending: bool = False) -> None:
        """One more route uses ``book`` (``key``: ``(venue, symbol)``)."""
        n = self._uses.get(key, 0)
        self._uses[key] = n + 1
        if n == 0:
            self._books[key] = book
            if pending and not book.in_sync:
                self._pending.add(key)

    def remove(self, key: tuple) -> bool:
        """One route fewer uses the book; True when that was the last (it is no longer watched)."""
        n = self._uses.get(key, 0)
        if n > 1:
            self._uses[key] = n - 1
            return False
        self._uses.pop(key, None)
        self._books.pop(key, None)
        self._pending.discard(key)
        return n == 1

    def __contains__(self, key: object) -> bool:
        return key in self._books

    def __len__(self) -> int:
        return len(self._books)

    def keys(self) -> list[tuple]:
        return list(self._books)

    @property
    def pending(self) -> list[tuple]:
        """Books added while the node runs that have not been in sync yet (not watched)."""
        return sorted(self._pending)

    def __call__(self) -> dict[tuple, Optional[float]]:
        """``{(venue, symbol): age_ms}`` of the watched books, as :func:`book_ages`."""
        now = self._clock()
        pending = self._pending
        out: dict[tuple, Optional[float]] = {}
        for k, b in self._books.items():
            if pending and k in pending:
                if not b.in_sync:
                    continue
                pending.discard(k)
            out[k] = (now - b.recv_ns) / 1e6 if b.in_sync and b.recv_ns else None
        return out


def balance_needs(*, base: str, quote: str, qty: Decimal, buy_price: Decimal, sell_price: Decimal,
                  buy_fee: Decimal, sell_fee: Decimal, buy_is_futures: bool = False, sell_is_futures: bool = False,
                  margin_fraction: Decimal = Decimal(1)) -> tuple[tuple[str, Decimal], tuple[str, Decimal]]:
    """What each leg of a trade takes from its venue's free balance: ``((asset, amount) of the buy
    leg, (asset, amount) of the sell leg)``. Spot buy: quote, qty × price × (1 + fee). Spot sell:
    base, qty. Futures leg (either side): quote margin, qty × price × (margin_fraction + fee)."""
    mul, add = DEC_CTX.multiply, DEC_CTX.add        # (DEC_CTX's operations: no context switch)
    buy = (quote, mul(mul(qty, buy_price), add(margin_fraction if buy_is_futures else 1, buy_fee)))
    if sell_is_futures:
        sell = (quote, mul(mul(qty, sell_price), add(margin_fraction, sell_fee)))
    else:
        sell = (base, qty)
    return buy, sell


@dataclass(frozen=True, slots=True)
class RiskDecision:
    ok: bool
    reason: str = ""
    detail: str = ""


_OK = RiskDecision(True)


class RiskManager:
    """Risk state and checks for one node.

    Parameters
    ----------
    cfg
        The ``risk`` config section (``cexnode.config.RiskConfig`` or any object with its fields).
    positions
        The node's PositionBook (positions, realised P&L, marks).
    book_ages_ms
        Optional callable returning ``{(venue, symbol): age_ms}`` of every routed book (age = now −
        last update, or None when the book is out of sync); drives the stale-data halt.
    clock_ns
        CLOCK_REALTIME ns (injectable for tests).
    """

    def __init__(self, cfg: Any, positions: PositionBook, *,
                 book_ages_ms: Optional[Callable[[], Mapping[tuple, Optional[float]]]] = None,
                 clock_ns: Callable[[], int] = time.time_ns, logger: Any = None):
        self.cfg = cfg
        self.positions = positions
        self.book_ages_ms = book_ages_ms
        self._clock = clock_ns
        self.log = logger if logger is not None else get_logger("execution.risk", ["execution", "risk"])
        self.reasons: set[str] = set()
        self.state = ACTIVE
        self.state_code = 0
        self.transitions = 0
        self.kill_signal = False           # toggled by SIGUSR1
        self.kill_file_present = False
        self._last_trade_ns: dict[str, int] = {}
        # order outcomes per second: [second, orders, failed, newest ts_ns] (memory bounded by the
        # window in seconds, whatever the trade rate)
        self._orders: collections.deque = collections.deque()
        self.window_orders = 0
        self.window_failures = 0
        self.checks = 0
        self.rejections: dict[str, int] = {}
        self.stale_books: list = []
        self._pos_key: tuple = ()
        self.exposure = _ZERO
        self.audit_errors = 0              # risk records the audit log did not take

    # -- configuration -----------------------------------------------------------------------------
    def reconfigure(self, cfg: Any) -> None:
        """Apply a reloaded ``risk`` section (every field is reloadable)."""
        self.cfg = cfg
        self.refresh()

    def install_signal_handler(self, loop: Any, sig: int = signal.SIGUSR1) -> None:
        """SIGUSR1 toggles the kill switch (loop.add_signal_handler: runs on the loop, not in a C handler)."""
        loop.add_signal_handler(sig, self.toggle_kill_signal)

    def remove_signal_handler(self, loop: Any, sig: int = signal.SIGUSR1) -> None:
        loop.remove_signal_handler(sig)

    def toggle_kill_signal(self) -> None:
        self.kill_signal = not self.kill_signal
        self.log.warning("kill switch toggled by signal", engaged=self.kill_signal)
        self.refresh()

    # -- state -------------------------------------------------------------------------------------
    def _set(self, reason: str, on: bool, detail: str = "") -> None:
        if on and reason not in self.reasons:
            self.reasons.add(reason)
            self.log.warning("risk condition raised", reason=reason, detail=detail)
            self._audit("risk_condition", {"reason": reason, "raised": True, "detail": detail})
        elif not on and reason in self.reasons:
            self.reasons.discard(reason)
            self.log.info("risk condition cleared", reason=reason)
            self._audit("risk_condition", {"reason": reason, "raised": False})

    def _audit(self, event: str, data: dict) -> None:
        try:
            self.log.audit(event, data)
        except RuntimeError:      # no audit sink configured (tools, some tests)
            pass
        except OSError as e:      # the audit log cannot be written (AuditWriteError): halt, never raise
            self.audit_errors += 1
            if "audit" not in self.reasons:
                # raised here, not through _set: its own record could not be written either
                self.reasons.add("audit")
                self.log.warning("risk condition raised", reason="audit", detail=str(e)[:200])
                self._derive()

    def _derive(self) -> None:
        if self.reasons & HALT_REASONS:
            st = HALTED
        elif self.reasons:
            st = REDUCING
        else:
            st = ACTIVE
        if st != self.state:
            old, self.state, self.state_code = self.state, st, STATE_CODES[st]
            self.transitions += 1
            data = {"from": old, "to": st, "reasons": sorted(self.reasons)}
            self.log.warning("trading state changed", **data)
            self._audit("risk_state", data)

    def set_condition(self, reason: str, on: bool, detail: str = "") -> None:
        """Raise/clear a reason from outside (the executor: ``unreconciled``)."""
        self._set(reason, on, detail)
        self._derive()

    def clear(self, reason: str) -> None:
        """Operator action: clear a latched reason (``audit``, ``executor_error``)."""
        self.set_condition(reason, False)

    def refresh(self, now_ns: Optional[int] = None) -> str:
        """Re-evaluate every condition (cheap: one stat(2) for the kill file; position-derived
        checks only when a fill was booked, the UTC day or the config changed); returns the state."""
        now = self._clock() if now_ns is None else now_ns
        cfg = self.cfg
        path = cfg.kill_switch_file
        self.kill_file_present = bool(path) and os.path.exists(path)
        kill = self.kill_signal or self.kill_file_present
        if kill != ("kill_switch" in self.reasons):
            self._set("kill_switch", kill, "file" if self.kill_file_present else "signal")
        self._roll_window(now)
        n, f = self.window_orders, self.window_failures
        tripped = n >= cfg.min_orders_for_breaker and f > cfg.error_rate_threshold * n
        if tripped != ("error_rate" in self.reasons):
            self._set("error_rate", tripped, "%d/%d failed" % (f, n))
        if self.book_ages_ms is not None:
            ages = self.book_ages_ms()
            stale = [k for k, age in ages.items() if age is None or age > cfg.stale_data_halt_ms]
            if stale and cfg.stale_data_scope == "venue":
                # only a venue whose every routed book is stale: its feed stopped, not one quiet book
                gone = set(stale)
                streaming = {k[0] for k in ages if k not in gone}
                stale = [k for k in stale if k[0] not in streaming]
            self.stale_books = stale
            if bool(stale) != ("stale_data" in self.reasons):
                self._set("stale_data", bool(stale), ",".join("%s:%s" % k for k in stale))
        key = (self.positions.fill_count, now // 86_400_000_000_000, id(cfg))
        if key != self._pos_key:
            self._pos_key = key
            daily = self.positions.daily_realised(now)
            self._set("daily_loss", daily < -cfg.daily_loss_limit, "realised today %s" % daily)
            pos_breach = self._position_breaches()
            self._set("position_limit", bool(pos_breach), ",".join(pos_breach))
            exposure = self.positions.open_exposure()
            self.exposure = exposure
            self._set("exposure_limit", exposure > cfg.max_open_exposure, "exposure %s" % exposure)
        self._derive()
        return self.state

    def _position_breaches(self) -> list[str]:
        lim = self.cfg.max_position
        return [a for a, p in self.positions.positions().items() if a in lim and abs(p) > lim[a]]

    # -- error-rate breaker ------------------------------------------------------------------------
    def _roll_window(self, now: int) -> None:
        horizon = now - self.cfg.error_window_s * 1_000_000_000
        q = self._orders
        while q and q[0][3] < horizon:           # a second leaves once its newest outcome has
            _, n, failed, _ = q.popleft()
            self.window_orders -= n
            self.window_failures -= failed

    def _count_outcome(self, ts: int, failed: int) -> None:
        sec = ts // 1_000_000_000
        q = self._orders
        if q and q[-1][0] == sec:
            b = q[-1]
            b[1] += 1
            b[2] += failed
            b[3] = max(b[3], ts)
        else:
            q.append([sec, 1, failed, ts])
        self.window_orders += 1
        self.window_failures += failed

    def record_order(self, failed: bool, now_ns: Optional[int] = None) -> None:
        """Count one order outcome for the breaker (failed: rejected, error or ambiguous)."""
        now = self._clock() if now_ns is None else now_ns
        self._count_outcome(now, int(failed))
        if failed:
            self.refresh(now)

    def restore_outcomes(self, outcomes: Iterable[tuple[int, int]]) -> None:
        """Order outcomes ``(ts_ns, failed)`` recovered from the audit trail, oldest first (the
        error-rate window holds across a restart)."""
        for ts, failed in outcomes:
            self._count_outcome(int(ts), int(failed))
        self.refresh()

    @property
    def error_rate(self) -> float:
        return self.window_failures / self.window_orders if self.window_orders else 0.0

    # -- checks ------------------------------------------------------------------------------------
    def _reject(self, reason: str, detail: str = "", count: bool = True) -> RiskDecision:
        if count:
            self.rejections[reason] = self.rejections.get(reason, 0) + 1
        return RiskDecision(False, reason, detail)

    def allows_hedge(self) -> bool:
        """Risk-reducing orders of an in-flight trade: allowed unless the kill switch is engaged."""
        return "kill_switch" not in self.reasons

    def check_trade(self, *, route: str, base: str, qty: Decimal, buy_price: Decimal, sell_price: Decimal,
                    now_ns: Optional[int] = None, count: bool = True) -> RiskDecision:
        """Pre-trade checks that need no balances: state, cooldown, notional, positions, exposure.
        ``count=False``: a dry run (the executor's warm-up): nothing is counted."""
        now = self._clock() if now_ns is None else now_ns
        if count:
            self.checks += 1
        if self.refresh(now) != ACTIVE:
            return self._reject("state_" + self.state, ",".join(sorted(self.reasons)), count)
        cfg = self.cfg
        last = self._last_trade_ns.get(route)
        if last is not None and now - last < cfg.route_cooldown_ms * 1_000_000:
            return self._reject("cooldown", "%d ms since last trade" % ((now - last) // 1_000_000), count)
        C = DEC_CTX                                  # exact (its operations: no context switch)
        notional = max(C.multiply(qty, buy_price), C.multiply(qty, sell_price))
        if notional > cfg.max_notional_per_trade:
            return self._reject("max_notional", "%s > %s" % (notional, cfg.max_notional_per_trade), count)
        lim = cfg.max_position.get(base)
        if lim is not None:
            pos = self.positions.position(base)
            if C.abs(C.add(pos, qty)) > lim or C.abs(C.subtract(pos, qty)) > lim:    # one leg alone fills
                return self._reject("position_limit", "%s %s ± %s > %s" % (base, pos, qty, lim), count)
        exposure = self.exposure                     # computed by refresh() above
        if C.add(exposure, notional) > cfg.max_open_exposure:
            return self._reject("exposure_limit", "%s + %s > %s" % (exposure, notional, cfg.max_open_exposure), count)
        return _OK

    def check_balances(self, *, buy_venue: str, sell_venue: str, base: str, quote: str, qty: Decimal,
                       buy_price: Decimal, sell_price: Decimal, buy_fee: Decimal, sell_fee: Decimal,
                       buy_free: Mapping[str, Any], sell_free: Mapping[str, Any], sell_is_futures: bool,
                       buy_is_futures: bool = False, margin_fraction: Decimal = Decimal(1),
                       count: bool = True) -> RiskDecision:
        """Balances (free amounts, fresh per docs/design.md §5) cover both legs (:func:`balance_needs`)."""
        needs = balance_needs(base=base, quote=quote, qty=qty, buy_price=buy_price, sell_price=sell_price,
                              buy_fee=buy_fee, sell_fee=sell_fee, buy_is_futures=buy_is_futures,
                              sell_is_futures=sell_is_futures, margin_fraction=margin_fraction)
        return self.check_needs(buy_venue=buy_venue, sell_venue=sell_venue, needs=needs, buy_free=buy_free,
                                sell_free=sell_free, count=count)

    def check_needs(self, *, buy_venue: str, sell_venue: str, needs: tuple, buy_free: Mapping[str, Any],
                    sell_free: Mapping[str, Any], count: bool = True) -> RiskDecision:
        """:meth:`check_balances` for needs already computed by :func:`balance_needs`."""
        (asset_b, need_b), (asset_s, need_s) = needs
        have_b = buy_free.get(asset_b, _ZERO)
        if have_b < need_b:
            return self._reject("balance", "%s %s: need %s, have %s" % (buy_venue, asset_b, need_b, have_b), count)
        have_s = sell_free.get(asset_s, _ZERO)
        if have_s < need_s:
            return self._reject("balance", "%s %s: need %s, have %s" % (sell_venue, asset_s, need_s, have_s), count)
        return _OK

    def in_cooldown(self, route: str, now_ns: Optional[int] = None) -> bool:
        """``route`` traded less than ``route_cooldown_ms`` ago (the executor's cheap pre-filter:
        an opportunity that persists over many book updates is skipped, not rejected and audited)."""
        last = self._last_trade_ns.get(route)
        if last is None:
            return False
        now = self._clock() if now_ns is None else now_ns
        return now - last < self.cfg.route_cooldown_ms * 1_000_000

    def note_trade(self, route: str, now_ns: Optional[int] = None) -> None:
        """A trade went out on ``route`` (starts its cooldown)."""
        self._last_trade_ns[route] = self._clock() if now_ns is None else now_ns

    def forget_route(self, route: str) -> None:
        """``route`` is gone (unwired, nothing of it in flight): its cooldown entry goes, so that
        routes coming and going leave nothing behind."""
        self._last_trade_ns.pop(route, None)

    def status(self) -> dict:
        return {"state": self.state, "reasons": sorted(self.reasons), "error_rate": self.error_rate,
                "window_orders": self.window_orders, "window_failures": self.window_failures,
                "window_entries": len(self._orders),
                "rejections": dict(self.rejections)}
