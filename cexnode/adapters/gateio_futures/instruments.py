"""Gate.io futures instrument listing (``GET /futures/{settle}/contracts[/{contract}]``) -> the
registry's neutral specs.

quanto_multiplier = base units per contract, order_price_round = tick, order_size_min = minimum
contracts, status "trading" and not in_delisting = tradable. Sizes are integer contracts unless
``size_decimal`` (the ``X-Gate-Size-Decimal: 1`` mode) is on and the contract has
``enable_decimal: true``; then sizes parse at ``decimal_size_scale`` decimals (Gate documents no
per-contract size step for decimal mode; the order step is taken from ``order_size_min`` when it
is fractional, else 1 contract).

Contracts carry no base/quote fields: the settle currency is the endpoint's (``/futures/usdt`` ->
USDT) and the name must read ``<BASE>_<SETTLE>``; anything else is rejected rather than guessed,
as is a contract that is not direct (linear).
"""
from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Optional

from cexnode._core.symbols import (SymbolRegistry, decimals_of, load_json, spec_decimal,
                                   spec_decimal_places, symbol_from_parts)
from cexnode.adapters.listing import Entry, read_rows

__all__ = ["VENUE", "listing", "load"]

VENUE = "gateio_futures"



def listing(contracts: Any, only: Optional[Iterable[str]] = None, *, settle: str = "USDT",
            size_decimal: bool = False, decimal_size_scale: int = 4, venue: str = VENUE) -> list[Entry]:
    """The specs of a contracts answer (list, one object, or JSON text), in order, for
    :meth:`SymbolRegistry.add_listing`. ``only``: optional set of venue strings / unified names."""
    contracts = load_json(contracts)
    if isinstance(contracts, dict):
        contracts = [contracts]
    return read_rows(contracts, "name", lambda row, vs: _spec(row, vs, only, settle, size_decimal, decimal_size_scale, venue), venue)


def _spec(row: dict, vs: str, only: Optional[Iterable[str]], settle: str, size_decimal: bool,
          decimal_size_scale: int, venue: str) -> Optional[dict]:
    base, us, quote = vs.rpartition("_")
    if not us or not base or quote != settle:
        raise ValueError("contract name %r is not <BASE>_%s on the %s-settled endpoint" % (vs, settle, settle))
    if row.get("type", "direct") != "direct":
        raise ValueError("contract type %r is not a direct (linear) contract" % row.get("type"))
    if only is not None and vs not in only and "%s/%s:%s" % (base, quote, settle) not in only:
        return None
    sym = symbol_from_parts(base, quote, settle)
    mn = spec_decimal(row.get("order_size_min", 1), "order_size_min")
    decimal_mode = bool(size_decimal and row.get("enable_decimal", False))
    vdec = max(spec_decimal_places(decimal_size_scale, "decimal_size_scale"), decimals_of(mn)) if decimal_mode else 0
    if decimals_of(mn) > vdec:
        raise ValueError("order_size_min %s is fractional but decimal sizes are off" % mn)
    step = Decimal(1).scaleb(-decimals_of(mn)) if decimals_of(mn) else Decimal(1)
    return {"venue": venue, "symbol": sym.name, "venue_symbol": vs,
            "tick": spec_decimal(row["order_price_round"], "order_price_round"),
            "qty_step": step, "min_qty": mn, "min_notional": None,
            "quanto_multiplier": spec_decimal(row["quanto_multiplier"], "quanto_multiplier"),
            "size_decimals": vdec,
            "tradable": row.get("status", "trading") == "trading" and not row.get("in_delisting", False)}


def load(registry: SymbolRegistry, contracts: Any, only: Optional[Iterable[str]] = None, *, settle: str = "USDT",
         size_decimal: bool = False, decimal_size_scale: int = 4, venue: str = VENUE) -> int:
    """Add a contracts answer to ``registry``; returns the number of instruments added (the rows
    that could not be loaded are in ``registry.rejected``)."""
    return registry.add_listing(listing(contracts, only, settle=settle, size_decimal=size_decimal,
                                        decimal_size_scale=decimal_size_scale, venue=venue))
