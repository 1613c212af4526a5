"""Gate.io spot: currency pairs, 24 h tickers and currency (wallet) status as the universe's
neutral records.

Which fields count, per the exchange-payloads README ("REST: currencies, tickers, pair status"
under gateio_spot/):

* **Tradable** = ``trade_status == "tradable"`` on ``GET /spot/currency_pairs``
  (``rest_currency_pair_btc_usdt.json``; ``rest_currency_pair_untradable.json`` is not). A pair
  that is only ``buyable`` or ``sellable`` cannot take both legs' directions, so it is not
  tradable here (ccxt and hummingbot test the same).
* **Volume** = ``quote_volume`` of ``GET /spot/tickers`` (all pairs), in the quote asset, a string
  with many decimals (``rest_tickers.json``, ``rest_tickers_single.json``). **Leveraged tokens**
  (``*3L_USDT``, ``*3S_USDT``) are in that list; a ticker carrying ``etf_leverage`` is one
  (``SUSHI3L_USDT`` in ``rest_tickers.json``) and is marked ``leveraged``.
* **Wallet** = ``GET /spot/currencies`` (public). The per-chain flags are authoritative:
  ``chains[].deposit_disabled`` and ``chains[].withdraw_disabled``; ``withdraw_delayed`` means slow,
  not blocked. An asset can be deposited when some chain has ``deposit_disabled == false`` and
  withdrawn when some chain has ``withdraw_disabled == false`` (``rest_currency_btc.json``: BTC and
  BSC chains both open). The top-level flags are deprecated and read only when a currency has no
  ``chains``. Delisted coins may still pay out: STPT and BBC (``rest_currencies.json``) have
  deposits disabled but withdrawals open, so they can leave but not come in.
"""
from __future__ import annotations

from typing import Any

from cexnode.adapters.gateio_spot import urls
from cexnode.universe.readers import as_list, tickers_from_rows
from cexnode.universe.records import AssetTransfer, Listing, Ticker24h, UniverseSource

__all__ = ["VENUE", "SOURCE", "TICKERS", "CURRENCIES", "parse_listings", "parse_tickers", "parse_transfers",
           "transfers_for"]

VENUE = "gateio_spot"
TICKERS = "/api/v4/spot/tickers"
CURRENCIES = "/api/v4/spot/currencies"


def parse_listings(pairs: Any) -> list[Listing]:
    """``GET /spot/currency_pairs`` (the array, or one pair object)."""
    out = []
    for row in as_list(pairs):
        try:
            out.append(Listing(venue=VENUE, base=row["base"], quote=row["quote"], settle=None, market="spot",
                               venue_symbol=row["id"], tradable=row.get("trade_status") == "tradable"))
        except (KeyError, TypeError, ValueError):
            continue        # a row without its assets names no instrument
    return out


def parse_tickers(tickers: Any, listings: list[Listing]) -> list[Ticker24h]:
    """``GET /spot/tickers`` (always an array, one element with ``currency_pair``). Pairs not in
    ``listings`` are skipped."""
    return tickers_from_rows(tickers, listings, VENUE, "currency_pair", "quote_volume", leveraged=lambda row: "etf_leverage" in row)


def transfers_for(venue: str, currencies: Any) -> list[AssetTransfer]:
    """``GET /spot/currencies`` (the array, or one currency object) as ``venue``'s wallet status:
    the venue's futures account is funded from this same wallet."""
    out = []
    for row in as_list(currencies):
        asset = row.get("currency")
        if not asset:
            continue
        chains = row.get("chains")
        if chains:
            dep = any(c.get("deposit_disabled") is False for c in chains)
            wd = any(c.get("withdraw_disabled") is False for c in chains)
        else:       # the deprecated coin-level flags, for a currency listed without chains
            dep = row.get("deposit_disabled") is False
            wd = row.get("withdraw_disabled") is False
        out.append(AssetTransfer(venue=venue, asset=asset, can_deposit=dep, can_withdraw=wd))
    return out


def parse_transfers(currencies: Any) -> list[AssetTransfer]:
    """``GET /spot/currencies`` as this venue's wallet status (see :func:`transfers_for`)."""
    return transfers_for(VENUE, currencies)


SOURCE = UniverseSource(instruments_path=urls.CURRENCY_PAIRS, tickers_path=TICKERS,
                        parse_listings=parse_listings, parse_tickers=parse_tickers,
                        transfers_path=CURRENCIES, transfers_signed=False, parse_transfers=parse_transfers)
