"""Gate.io spot instrument listing (``GET /spot/currency_pairs[/{pair}]``) -> the registry's neutral specs.

precision = price decimals, amount_precision = amount decimals, min_base_amount = min qty,
min_quote_amount = min notional (null = none), trade_status "tradable" = tradable. Symbols come
from the pair's ``base``/``quote`` fields, never from splitting its id.
"""
from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Optional

from cexnode._core.symbols import (SymbolRegistry, load_json, spec_decimal,
                                   spec_decimal_places, symbol_from_parts)
from cexnode.adapters.listing import Entry, read_rows

__all__ = ["VENUE", "listing", "load"]

VENUE = "gateio_spot"



def listing(pairs: Any, only: Optional[Iterable[str]] = None, *, venue: str = VENUE) -> list[Entry]:
    """The specs of a currency_pairs answer (list, one object, or JSON text), in order, for
    :meth:`SymbolRegistry.add_listing`. ``only``: optional set of venue strings / unified names."""
    pairs = load_json(pairs)
    if isinstance(pairs, dict):
        pairs = [pairs]
    return read_rows(pairs, "id", lambda row, vs: _spec(row, vs, only, venue), venue)


def _spec(row: dict, vs: str, only: Optional[Iterable[str]], venue: str) -> Optional[dict]:
    base, quote = row["base"], row["quote"]
    if only is not None and vs not in only and base + "/" + quote not in only:
        return None
    sym = symbol_from_parts(base, quote)
    pdec = spec_decimal_places(row["precision"], "precision")
    qdec = spec_decimal_places(row["amount_precision"], "amount_precision")
    return {"venue": venue, "symbol": sym.name, "venue_symbol": vs,
            "tick": Decimal(1).scaleb(-pdec), "qty_step": Decimal(1).scaleb(-qdec),
            "min_qty": spec_decimal(row.get("min_base_amount"), "min_base_amount"),
            "min_notional": spec_decimal(row.get("min_quote_amount"), "min_quote_amount"),
            "tradable": row.get("trade_status") == "tradable"}


def load(registry: SymbolRegistry, pairs: Any, only: Optional[Iterable[str]] = None, *, venue: str = VENUE) -> int:
    """Add a currency_pairs answer to ``registry``; returns the number of instruments added (the
    rows that could not be loaded are in ``registry.rejected``)."""
    return registry.add_listing(listing(pairs, only, venue=venue))
