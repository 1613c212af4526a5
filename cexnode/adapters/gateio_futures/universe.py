"""Gate.io USDT-settled perpetuals: contracts, 24 h tickers and wallet status as the universe's
neutral records.

Which fields count, per the exchange-payloads README ("REST: tickers, contracts" under
gateio_futures/):

* **Listing** = ``GET /futures/usdt/contracts``: the name reads ``<BASE>_USDT`` and the contract
  is linear (``type: "direct"``), so it is ``BASE/USDT:USDT``; other names are skipped rather than
  guessed, as the instrument loader does. Tokenized stocks, ETFs and indices are listed too
  (``contract_type: "stocks"``, ``rest_contracts_item_decimal.json``); their asset class is their
  ``contract_type``, and an empty ``contract_type`` is crypto (``rest_contract.json``).
* **Tradable** = ``status == "trading"`` and not ``in_delisting`` (``in_delisting`` with open
  positions is the reduce-only delisting transition; hummingbot keeps a contract iff
  ``in_delisting`` is false). Only ``trading`` has been seen in captures; ``prelaunch``,
  ``delisting``, ``delisted`` and ``circuit_breaker`` are the documented others.
* **Volume** = ``volume_24h_quote`` of ``GET /futures/usdt/tickers``, in USDT
  (``rest_tickers.json``, ``rest_tickers_btc_usdt.json``). ``volume_24h`` is contracts and
  ``volume_24h_base`` is truncated to an integer without the decimal header, so neither is used.
* **Wallet**: the futures account is funded from the spot wallet, so its settle asset moves as
  ``GET /spot/currencies`` says (the spot venue's reading, under this venue's name).
"""
from __future__ import annotations

from typing import Any

from cexnode.adapters.gateio_futures import urls
from cexnode.adapters.gateio_spot import universe as spot_universe
from cexnode.universe.readers import as_list, tickers_from_rows
from cexnode.universe.records import CRYPTO, AssetTransfer, Listing, Ticker24h, UniverseSource

__all__ = ["VENUE", "SETTLE", "SOURCE", "TICKERS", "parse_listings", "parse_tickers", "parse_transfers"]

VENUE = "gateio_futures"
SETTLE = "USDT"
TICKERS = "/api/v4/futures/usdt/tickers"


def parse_listings(contracts: Any) -> list[Listing]:
    """``GET /futures/usdt/contracts`` (the array, or one contract object)."""
    out = []
    for row in as_list(contracts):
        name = row.get("name") or ""
        base, us, quote = name.rpartition("_")
        if not us or not base or quote != SETTLE or row.get("type", "direct") != "direct":
            continue
        try:
            out.append(Listing(venue=VENUE, base=base, quote=quote, settle=SETTLE, market="perpetual",
                               venue_symbol=name,
                               tradable=row.get("status") == "trading" and row.get("in_delisting") is not True,
                               asset_class=row.get("contract_type") or CRYPTO))
        except ValueError:
            continue
    return out


def parse_tickers(tickers: Any, listings: list[Listing]) -> list[Ticker24h]:
    """``GET /futures/usdt/tickers`` (always an array). Contracts not in ``listings`` are skipped."""
    return tickers_from_rows(tickers, listings, VENUE, "contract", "volume_24h_quote")


def parse_transfers(currencies: Any) -> list[AssetTransfer]:
    """``GET /spot/currencies`` as this venue's wallet status (the futures account's funding)."""
    return spot_universe.transfers_for(VENUE, currencies)


SOURCE = UniverseSource(instruments_path=urls.CONTRACTS, tickers_path=TICKERS,
                        parse_listings=parse_listings, parse_tickers=parse_tickers,
                        transfers_path=spot_universe.CURRENCIES, transfers_signed=False,
                        parse_transfers=parse_transfers)
