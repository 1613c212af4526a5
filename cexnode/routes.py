"""The engine's arbitrage routes as read-only views (:attr:`cexnode.engine.Engine.route_table`).

The ArbEngine keeps its routes in C structs; whatever reads routes from Python (the scanner, the
universe manager that adds and removes routes at run time) reads these views instead: the route's
name (as the ArbEngine and its opportunities call it), its unified symbol, and per leg the venue,
the venue's symbol, the live book and the taker fee the route is evaluated with; and the scales of the books' mantissas.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from cexnode._core.book import Book

__all__ = ["LegView", "RouteView"]


@dataclass(frozen=True)
class LegView:
    """One leg of a route: where it trades and the book it reads."""

    venue: str
    symbol: str          # the unified symbol on that venue (a perpetual leg: ``BASE/QUOTE:SETTLE``)
    book: Book
    taker_fee: Decimal


@dataclass(frozen=True)
class RouteView:
    """One route of the ArbEngine (``name`` as its opportunities carry it)."""

    name: str
    symbol: str          # the route's unified symbol
    legs: tuple[LegView, ...]
    price_scale: int     # the mantissa scales every book of the route shares (SymbolRegistry.scales)
    qty_scale: int
