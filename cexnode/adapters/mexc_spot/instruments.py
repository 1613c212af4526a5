"""MEXC spot instrument listing (``GET /api/v3/exchangeInfo``) -> the registry's neutral specs.

baseAssetPrecision = qty decimals, quotePrecision = price decimals (tick 10^-n),
baseSizePrecision = min qty, quoteAmountPrecision = min notional, status "1" (or 1, "ENABLED") =
online; isSpotTradingAllowed false = not tradable. Symbols come from ``baseAsset``/``quoteAsset``,
never from splitting the venue string. (The registry's ``qty_headroom`` exists for this venue:
its depth pushes carry sizes finer than the order step.)
"""
from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Optional

from cexnode._core.symbols import (SymbolRegistry, load_json, spec_decimal,
                                   spec_decimal_places, symbol_from_parts)
from cexnode.adapters.listing import Entry, read_rows

__all__ = ["VENUE", "listing", "load"]

VENUE = "mexc_spot"



def listing(info: Any, only: Optional[Iterable[str]] = None, *, venue: str = VENUE) -> list[Entry]:
    """The specs of an exchangeInfo answer (dict with ``symbols``, a list of symbol objects, one
    symbol object, or the JSON text), in order, for :meth:`SymbolRegistry.add_listing`.

    ``only``: optional set of venue strings / unified names (rows outside it are left out)."""
    info = load_json(info)
    rows = info.get("symbols", [info] if "symbol" in info else []) if isinstance(info, dict) else info
    return read_rows(rows, "symbol", lambda row, vs: _spec(row, vs, only, venue), venue)


def _spec(row: dict, vs: str, only: Optional[Iterable[str]], venue: str) -> Optional[dict]:
    base, quote = row["baseAsset"], row["quoteAsset"]
    if only is not None and vs not in only and base + "/" + quote not in only:
        return None
    sym = symbol_from_parts(base, quote)
    qdec = spec_decimal_places(row["baseAssetPrecision"], "baseAssetPrecision")
    pdec = spec_decimal_places(row["quotePrecision"], "quotePrecision")
    online = row.get("status") in ("1", 1, "ENABLED")
    return {"venue": venue, "symbol": sym.name, "venue_symbol": vs,
            "tick": Decimal(1).scaleb(-pdec), "qty_step": Decimal(1).scaleb(-qdec),
            "min_qty": spec_decimal(row.get("baseSizePrecision"), "baseSizePrecision"),
            "min_notional": spec_decimal(row.get("quoteAmountPrecision"), "quoteAmountPrecision"),
            "tradable": bool(online and row.get("isSpotTradingAllowed", True) is not False)}


def load(registry: SymbolRegistry, info: Any, only: Optional[Iterable[str]] = None, *, venue: str = VENUE) -> int:
    """Add an exchangeInfo answer to ``registry``; returns the number of instruments added (the
    rows that could not be loaded are in ``registry.rejected``)."""
    return registry.add_listing(listing(info, only, venue=venue))
