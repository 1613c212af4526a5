"""What the venues' instrument listing readers share (``adapters/<venue>/instruments.py``).

A venue's reader turns each row of its REST instrument listing into the registry's neutral spec
(:meth:`cexnode._core.symbols.SymbolRegistry.add_listing`); a row it cannot read becomes a
rejection ``(venue, venue_symbol, reason)`` in the row's place, so that one malformed row is
reported and skipped and the rest of the listing still loads.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Callable, Optional, Union

from cexnode._core.symbols import rejection_reason

__all__ = ["Entry", "read_rows"]

#: one entry of a listing: a spec, or ``(venue, venue_symbol, reason)`` for a row it could not read
Entry = Union[dict, tuple]


def read_rows(rows: Iterable[Any], symbol_key: str, spec: Callable[[dict, str], Optional[dict]],
              venue: str) -> list[Entry]:
    """``spec(row, venue_symbol)`` of every row, in order (None: a row left out, e.g. by ``only``);
    a row ``spec`` cannot read (ValueError, KeyError, TypeError) is a rejection in its place."""
    out: list[Entry] = []
    for row in rows:
        vs = row.get(symbol_key, "?") if isinstance(row, dict) else "?"
        try:
            s = spec(row, vs)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            out.append((venue, vs, rejection_reason(e)))
            continue
        if s is not None:
            out.append(s)
    return out

