"""Exchange simulator: MEXC spot v3, Gate spot v4 and Gate USDT futures v4 on 127.0.0.1.

Each venue runs a picows WebSocket server and an aiohttp REST server speaking the venue's real
public protocol, with market data from a seeded generator, REST snapshots consistent with the
stream's sequence ids, instrument-info endpoints, connection limits and scriptable faults.
See ``cexnode/sim/README.md`` and :mod:`cexnode.sim.server` (extension hook for the trading side).

Public API (imported lazily, so ``from cexnode.sim import mexc_proto`` stays light)
--------------------------------------------------------------------------------
ExchangeSimulator, SimVenue, SimConnection, VenueUrls, run_standalone, Faults.
"""
from __future__ import annotations

__all__ = ["ExchangeSimulator", "SimVenue", "SimConnection", "VenueUrls", "run_standalone", "Faults"]


def __getattr__(name: str):
    if name in ("ExchangeSimulator", "SimVenue", "SimConnection", "VenueUrls", "run_standalone"):
        from . import server
        return getattr(server, name)
    if name == "Faults":
        from .faults import Faults
        return Faults
    raise AttributeError("module 'cexnode.sim' has no attribute %r" % name)
