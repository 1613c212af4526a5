"""MEXC spot: instrument list, 24 h tickers and wallet status as the universe's neutral records.

Which fields count, per the exchange-payloads README ("REST: market universe, 24h tickers, wallet
config" under mexc/):

* **Tradable** = ``isSpotTradingAllowed is true`` and ``status`` online (``"1"``; ``"ENABLED"`` in
  the 2022-2023 shape). ``status`` alone does not separate API-blocked symbols: every symbol of the
  2026-09 catalogue had ``"1"`` while 91 had ``isSpotTradingAllowed:false``, BTCUSDT among them
  (``rest_exchange_info_btcusdt_2025_12.json``, ``rest_exchange_info_symbol_2023.json``). The
  status check still drops a paused (``"2"``) or offline (``"3"``) symbol. This is the rule of
  current ccxt (``active = status == "1" && isSpotTradingAllowed``).
* **Volume** = ``quoteVolume`` of ``GET /api/v3/ticker/24hr`` (no ``symbol``: all, weight 40),
  in the quote asset, a string (``rest_ticker_24hr_all.json``). The docs show ``null``; a ticker
  without a value gives no record (its volume is unknown, so 0 to the universe).
* **Wallet** = ``GET /api/v3/capital/config/getall`` (SIGNED, key permission
  ``SPOT_WITHDRAW_READ``): flags exist only per network, ``networkList[].depositEnable`` and
  ``networkList[].withdrawEnable`` (booleans); there is no coin-level flag. An asset can be
  deposited when some network takes deposits, withdrawn when some network pays out
  (``rest_capital_config_getall_item.ccxt_comment.json``: QANX, withdrawals on ERC20 only). The
  docs example (``rest_capital_config_getall.doc.json``) lists a network of another coin (BTC)
  under EOS; a network entry whose ``coin`` differs from its coin's is not that coin's and is
  ignored.
"""
from __future__ import annotations

from typing import Any

from cexnode.adapters.mexc_spot import urls
from cexnode.universe.readers import tickers_from_rows
from cexnode.universe.records import AssetTransfer, Listing, Ticker24h, UniverseSource

__all__ = ["VENUE", "SOURCE", "TICKER_24H", "CAPITAL_CONFIG", "parse_listings", "parse_tickers",
           "parse_transfers"]

VENUE = "mexc_spot"
TICKER_24H = "/api/v3/ticker/24hr"
CAPITAL_CONFIG = "/api/v3/capital/config/getall"

_ONLINE = ("1", "ENABLED")


def _rows(payload: Any, key: str) -> list:
    if isinstance(payload, dict):
        return payload.get(key, [payload] if "symbol" in payload else [])
    return list(payload or ())


def parse_listings(exchange_info: Any) -> list[Listing]:
    """``GET /api/v3/exchangeInfo`` (the whole answer, its ``symbols`` list, or one symbol object)."""
    out = []
    for row in _rows(exchange_info, "symbols"):
        try:
            out.append(Listing(venue=VENUE, base=row["baseAsset"], quote=row["quoteAsset"], settle=None,
                               market="spot", venue_symbol=row["symbol"],
                               tradable=row.get("isSpotTradingAllowed") is True and row.get("status") in _ONLINE))
        except (KeyError, TypeError, ValueError):
            continue        # a row without its assets names no instrument
    return out


def parse_tickers(tickers: Any, listings: list[Listing]) -> list[Ticker24h]:
    """``GET /api/v3/ticker/24hr``: one object (``?symbol=``) or the array of all symbols. Symbols
    not in ``listings`` are skipped (their assets are not known from the string alone)."""
    return tickers_from_rows(tickers, listings, VENUE, "symbol", "quoteVolume")


def parse_transfers(config: Any) -> list[AssetTransfer]:
    """``GET /api/v3/capital/config/getall``: the array of coins (or one coin object)."""
    rows = [config] if isinstance(config, dict) else list(config or ())
    out = []
    for row in rows:
        coin = row.get("coin")
        if not coin:
            continue
        nets = [n for n in row.get("networkList") or () if n.get("coin", coin) == coin]
        out.append(AssetTransfer(venue=VENUE, asset=coin,
                                 can_deposit=any(n.get("depositEnable") is True for n in nets),
                                 can_withdraw=any(n.get("withdrawEnable") is True for n in nets)))
    return out


SOURCE = UniverseSource(instruments_path=urls.EXCHANGE_INFO, tickers_path=TICKER_24H,
                        parse_listings=parse_listings, parse_tickers=parse_tickers,
                        transfers_path=CAPITAL_CONFIG, transfers_signed=True, parse_transfers=parse_transfers)
