"""What the venues' universe readers (``adapters/<venue>/universe.py``) share: payload shapes and
the 24 h ticker rows matched to the venue's listings."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Optional

from cexnode.universe.records import Listing, Ticker24h

__all__ = ["as_list", "tickers_from_rows"]


def as_list(payload: Any) -> list:
    """An answer that is one object or an array of them, as a list."""
    return [payload] if isinstance(payload, dict) else list(payload or ())


def tickers_from_rows(rows: Any, listings: list[Listing], venue: str, symbol_key: str, volume_key: str,
                      leveraged: Optional[Callable[[dict], bool]] = None) -> list[Ticker24h]:
    """One :class:`Ticker24h` per row whose ``symbol_key`` names one of ``venue``'s listings and whose
    ``volume_key`` is a number (a row without either is skipped: its assets are not known from the
    venue string alone, or it has no volume); ``leveraged(row)`` marks leveraged tokens."""
    by_vs = {li.venue_symbol: li for li in listings if li.venue == venue}
    out = []
    for row in as_list(rows):
        li = by_vs.get(row.get(symbol_key))
        vol = row.get(volume_key)
        if li is None or vol in (None, ""):
            continue
        try:
            out.append(Ticker24h(venue=venue, symbol=li.symbol, quote_volume=Decimal(str(vol)),
                                 leveraged=bool(leveraged(row)) if leveraged is not None else False))
        except InvalidOperation:
            continue
    return out
