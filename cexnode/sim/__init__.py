"""Exchange simulator: the venues of ``cexnode/sim/venues/`` on 127.0.0.1.

Each venue runs a picows WebSocket server and an aiohttp REST server speaking the venue's real
public protocol, with market data from a seeded generator, REST snapshots consistent with the
stream's sequence ids, instrument-info endpoints, connection limits and scriptable faults.
See ``docs/simulator.md``, :mod:`cexnode.sim.server` (extension hook for the trading side) and
:mod:`cexnode.sim.registry` (which protocol serves a venue name).

Public API (imported lazily, so importing one module of the package stays light)
--------------------------------------------------------------------------------
ExchangeSimulator, SimVenue, SimConnection, VenueUrls, run_standalone, Faults.
"""
from __future__ import annotations

__all__ = ["ExchangeSimulator", "SimVenue", "SimConnection", "VenueUrls", "run_standalone", "Faults"]


def __getattr__(name: str):
    if name in ("ExchangeSimulator", "SimVenue", "SimConnection", "VenueUrls", "run_standalone"):
        from . import server  # lazy: the package docstring says why
        return getattr(server, name)
    if name == "Faults":
        from .faults import Faults  # lazy: as above
        return Faults
    raise AttributeError("module 'cexnode.sim' has no attribute %r" % name)
