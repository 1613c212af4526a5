"""The simulator's trading side: signed order entry, accounts, matching, private streams, order faults.

``ExchangeSimulator.__init__`` calls :func:`install`, which attaches ``sim.trading`` (a
:class:`SimTrading`) and gives every venue its matching engine and, through the protocol class
the venue names (``SimVenue.trading_class``, in ``cexnode/sim/venues/``), its signed REST
order/account routes, private streams and WebSocket order handlers.

Python API (tests, embedding)
-----------------------------
>>> t = sim.trading                                               # doctest: +SKIP
>>> acct = t.add_account(name, "key", "secret", {"USDT": "1000", "BTC": "0.5"})
>>> t.account(name, "key").balances["USDT"].available            # Decimal("1000")
>>> t.engine(name).orders                                        # {id: SimOrder}
>>> t.set_clock(1541993715000)     # auth checks use this time (ms); None = real time
>>> t.venue(name).protocol                                       # the venue's protocol handler

Accounts from the config: every enabled venue whose ``venues.<v>.api_key`` and ``api_secret`` are
set gets that account, with ``sim.balances[<v>]`` (or :func:`default_balances`).
"""
from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Mapping, Optional

from .common import release_held
from .matching import Account, MatchingEngine, Reject, SimOrder

if TYPE_CHECKING:  # pragma: no cover
    from ..server import ExchangeSimulator, SimVenue

__all__ = ["install", "SimTrading", "VenueTrading", "Account", "SimOrder", "Reject", "default_balances"]

log = logging.getLogger("cexnode.sim.trading")


def default_balances(venue) -> dict[str, Decimal]:
    """Starting balances when the config names none: 100000 of each quote (settle) currency and,
    on spot, 100000 quote worth of each base at the starting mid."""
    out: dict[str, Decimal] = {}
    for inst in venue.instruments.values():
        out[inst.quote] = Decimal(100000)
        if not inst.is_futures:
            book = venue.books.get(inst.venue_symbol)
            bb, ba = (book.best_bid(), book.best_ask()) if book is not None else (None, None)
            if bb and ba:
                mid = inst.price(bb[0] + ba[0]) / 2
                out[inst.base] = (Decimal(100000) / mid).quantize(inst.step)
    return out


class VenueTrading:
    """Trading state of one venue: accounts by API key, the matching engine, the protocol handler."""

    def __init__(self, trading: "SimTrading", venue: "SimVenue"):
        self.trading = trading
        self.venue = venue
        self.name = venue.name
        self.accounts: dict[str, Account] = {}
        self.engine = MatchingEngine(venue, id_start=venue.order_id_start)
        self.listen_key_ttl_s = 3600.0       # private-stream key lifetime, for venues that issue keys
        self.protocol: Any = None
        self.held: set = set()               # transports of never-answered requests (order_timeout)
        self._uid = 10000000 + 1000 * (list(trading.sim.venues).index(venue.name) + 1)

    def secret_of(self, api_key: str) -> Optional[str]:
        a = self.accounts.get(api_key)
        return a.secret if a is not None else None

    def add_account(self, api_key: str, api_secret: str, balances: Optional[Mapping] = None,
                    uid: Optional[int] = None, leverage: Any = None) -> Account:
        if not api_key or not api_secret:
            raise ValueError("an account needs a non-empty api key and secret")
        self._uid += 1
        kw = {} if leverage is None else {"leverage": Decimal(str(leverage))}
        acct = Account(self.name, api_key, api_secret, uid if uid is not None else self._uid,
                       {k: Decimal(str(v)) for k, v in (balances if balances is not None
                                                        else default_balances(self.venue)).items()}, **kw)
        self.accounts[api_key] = acct
        return acct


class SimTrading:
    """``sim.trading``: accounts, engines and the auth clock of every simulated venue."""

    def __init__(self, sim: "ExchangeSimulator"):
        self.sim = sim
        self._clock_ms: Optional[int] = None
        self.venues: dict[str, VenueTrading] = {n: VenueTrading(self, v) for n, v in sim.venues.items()}

    # -- clock (signature time windows)
    def set_clock(self, ms: Optional[int]) -> None:
        """Freeze the time the auth checks use at ``ms`` (e.g. a documented example's timestamp);
        None returns to the real clock. Matching and pushes keep real timestamps."""
        self._clock_ms = None if ms is None else int(ms)

    def now_ms(self) -> int:
        return self._clock_ms if self._clock_ms is not None else time.time_ns() // 1_000_000

    def now_s(self) -> float:
        return self.now_ms() / 1000.0

    # -- accounts
    def venue(self, name: str) -> VenueTrading:
        try:
            return self.venues[name]
        except KeyError:
            raise KeyError("the simulator serves %s, not %s" % (", ".join(self.venues), name)) from None

    def add_account(self, venue: str, api_key: str, api_secret: str, balances: Optional[Mapping] = None,
                    uid: Optional[int] = None, leverage: Any = None) -> Account:
        """Register an API key on ``venue`` with ``balances`` ({asset: amount}; default
        :func:`default_balances`), user id ``uid`` (default: generated) and futures ``leverage``
        (default 10). Re-registering a key replaces the account."""
        return self.venue(venue).add_account(api_key, api_secret, balances, uid, leverage)

    def account(self, venue: str, api_key: str) -> Account:
        return self.venue(venue).accounts[api_key]

    def engine(self, venue: str) -> MatchingEngine:
        return self.venue(venue).engine


def _config_accounts(sim, trading: SimTrading) -> None:
    full = sim.config
    sc = sim.cfg
    for name, vt in trading.venues.items():
        vcfg = getattr(full.venues, name, None) if full is not None else None
        key = vcfg.api_key.get() if vcfg is not None and vcfg.api_key else ""
        secret = vcfg.api_secret.get() if vcfg is not None and vcfg.api_secret else ""
        if key and secret:
            bal = sc.balances.get(name) if sc.balances else None
            vt.add_account(key, secret, bal)


def install(sim: "ExchangeSimulator") -> SimTrading:
    """Attach the trading side to an :class:`~cexnode.sim.server.ExchangeSimulator` (before start)."""
    trading = SimTrading(sim)
    sim.trading = trading
    for vt in trading.venues.values():
        protocol = vt.venue.trading_class
        if protocol is not None:
            vt.protocol = protocol(vt)
        _hook_public_diffs(vt)
        _hook_stop(vt)
    _config_accounts(sim, trading)
    return trading


def _hook_stop(vt: VenueTrading) -> None:
    """A request held by ``order_timeout`` must not keep the venue's REST server from stopping."""
    venue = vt.venue
    stop = venue.stop

    async def stop_and_release():
        release_held(vt.held)
        await stop()

    venue.stop = stop_and_release


def _hook_public_diffs(vt: VenueTrading) -> None:
    """After every published diff, let resting orders meet the market (the generator moves it)."""
    venue, engine = vt.venue, vt.engine
    publish = venue.publish

    def publish_and_match(diff, replay=None):
        publish(diff, replay)
        if engine.resting.get(diff.symbol):
            try:
                engine.on_public_diff(diff.symbol)
            except Exception:
                log.exception("%s: matching resting orders failed", venue.name)

    venue.publish = publish_and_match
