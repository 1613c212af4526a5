"""The trading universe: every route common to the enabled venues, from their own instrument info.

Venue-neutral. Each venue package turns its REST payloads (instrument list with status, 24 h
tickers, deposit/withdraw status where the venue publishes it) into the records of
:mod:`cexnode.universe.records` (its ``universe`` module, with a :class:`UniverseSource` saying
where they come from); :func:`select` picks the routes (rules in :mod:`cexnode.universe.selection`)
and :func:`diff` says what changed between two reads: routes to add while the node runs, and
routes to stop (delisted, halted, frozen).
"""
from cexnode.universe.records import (CRYPTO, AssetTransfer, Listing, Market, Route, RouteKind, Ticker24h,
                                      Universe, UniverseRules, UniverseSource)
from cexnode.universe.selection import diff, held_assets, removal_reason, select

__all__ = ["CRYPTO", "AssetTransfer", "Listing", "Market", "Route", "RouteKind", "Ticker24h", "Universe",
           "UniverseRules", "UniverseSource", "diff", "held_assets", "removal_reason", "select"]
