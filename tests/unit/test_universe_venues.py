"""Each venue's universe module: real REST payloads (tests/resources/universe/, see its SOURCES.md)
to the neutral records, with the fields the exchange-payloads README says count; then one universe
built from all three venues' payloads."""
from __future__ import annotations

import copy
import dataclasses
import json
import pathlib
from decimal import Decimal as D

import pytest

from cexnode.adapters.gateio_futures import universe as gf
from cexnode.adapters.gateio_spot import universe as gs
from cexnode.adapters.mexc_spot import universe as mx
from cexnode.adapters.registry import descriptor
from cexnode.universe import AssetTransfer, Listing, Ticker24h, UniverseRules, UniverseSource, select

RES = pathlib.Path(__file__).resolve().parents[1] / "resources" / "universe"


def load(rel):
    return json.loads((RES / rel).read_text(encoding="utf-8"))


def test_each_venue_module_speaks_for_its_registered_venue():
    for mod, payload in ((mx, "mexc/rest_exchange_info_2025_12.json"),
                         (gs, "gateio_spot/rest_currency_pair_btc_usdt.json"),
                         (gf, "gateio_futures/rest_contract.json")):
        d = descriptor(mod.VENUE)
        listings = mod.SOURCE.parse_listings(load(payload))
        assert listings and {(li.venue, li.market) for li in listings} == {(d.name, d.market)}
        assert isinstance(mod.SOURCE, UniverseSource) and mod.SOURCE.parse_transfers is not None
    assert mx.SOURCE.transfers_signed and not gs.SOURCE.transfers_signed and not gf.SOURCE.transfers_signed
    assert gf.SOURCE.transfers_path == gs.SOURCE.transfers_path      # one wallet, funded from spot


# -- instrument lists and tradability -----------------------------------------------------------------------

def test_mexc_listing_is_tradable_only_when_api_trading_is_allowed_and_online():
    info = load("mexc/rest_exchange_info_2025_12.json")
    assert mx.parse_listings(info) == [
        Listing("mexc_spot", "METAL", "USDT", None, "spot", "METALUSDT", True),
        Listing("mexc_spot", "RARI", "USDT", None, "spot", "RARIUSDT", True),
        Listing("mexc_spot", "PYTH", "USDT", None, "spot", "PYTHUSDT", True),
    ]
    # BTCUSDT: status "1" (online) but isSpotTradingAllowed false: API-blocked, not tradable
    (btc,) = mx.parse_listings(load("mexc/rest_exchange_info_btcusdt_2025_12.json"))
    assert (btc.symbol, btc.venue_symbol, btc.tradable) == ("BTC/USDT", "BTCUSDT", False)
    # the 2023 shape ("ENABLED"), one symbol object: blocked as well
    (old,) = mx.parse_listings(load("mexc/rest_exchange_info_symbol_2023.json"))
    assert (old.symbol, old.tradable) == ("BTC/USDT", False)
    allowed = dict(load("mexc/rest_exchange_info_symbol_2023.json"), isSpotTradingAllowed=True)
    assert mx.parse_listings(allowed)[0].tradable is True                    # "ENABLED" is online
    paused = copy.deepcopy(info)
    paused["symbols"][0]["status"] = "2"
    assert [li.tradable for li in mx.parse_listings(paused)] == [False, True, True]


def test_gate_spot_listing_is_tradable_only_when_trade_status_is_tradable():
    pairs = [load("gateio_spot/rest_currency_pair_btc_usdt.json"), load("gateio_spot/rest_currency_pair_untradable.json"),
             load("gateio_spot/rest_currency_pair.doc.json")]
    assert gs.parse_listings(pairs) == [
        Listing("gateio_spot", "BTC", "USDT", None, "spot", "BTC_USDT", True),
        Listing("gateio_spot", "100X", "USDT", None, "spot", "100X_USDT", False),
        Listing("gateio_spot", "ETH", "USDT", None, "spot", "ETH_USDT", True),
    ]
    one_sided = dict(pairs[0], trade_status="buyable")       # documented, never captured
    assert gs.parse_listings(one_sided)[0].tradable is False


def test_gate_futures_listing_is_a_linear_perpetual_tradable_while_trading_and_not_delisting():
    btc, jdon = load("gateio_futures/rest_contract.json"), load("gateio_futures/rest_contracts_item_decimal.json")
    assert gf.parse_listings([btc, jdon]) == [
        Listing("gateio_futures", "BTC", "USDT", "USDT", "perpetual", "BTC_USDT", True, "crypto"),
        Listing("gateio_futures", "JDON", "USDT", "USDT", "perpetual", "JDON_USDT", True, "stocks"),
    ]
    assert gf.parse_listings(btc)[0].symbol == "BTC/USDT:USDT"
    assert gf.parse_listings(dict(btc, in_delisting=True))[0].tradable is False
    assert gf.parse_listings(dict(btc, status="circuit_breaker"))[0].tradable is False
    # names that do not read <BASE>_USDT, and inverse contracts, are not guessed at
    assert gf.parse_listings([dict(btc, name="BTCUSDT"), dict(btc, name="BTC_USD"), dict(btc, type="inverse")]) == []


# -- 24 h tickers ---------------------------------------------------------------------------------------------

def test_mexc_tickers_read_quote_volume_of_listed_symbols():
    listings = mx.parse_listings(load("mexc/rest_exchange_info_2025_12.json")) + \
        mx.parse_listings(load("mexc/rest_exchange_info_btcusdt_2025_12.json"))
    assert mx.parse_tickers(load("mexc/rest_ticker_24hr_all.json"), listings) == [
        Ticker24h("mexc_spot", "METAL/USDT", D("8996.36581")),
        Ticker24h("mexc_spot", "RARI/USDT", D("93433.7427")),
        Ticker24h("mexc_spot", "PYTH/USDT", D("232354.62007")),
    ]
    assert mx.parse_tickers(load("mexc/rest_ticker_24hr.json"), listings) == [
        Ticker24h("mexc_spot", "BTC/USDT", D("677764373.43"))]
    # the docs' quoteVolume null: volume unknown, no record
    assert mx.parse_tickers(load("mexc/rest_ticker_24hr.doc.json"), listings) == []
    # a symbol the instrument list does not have: its assets are unknown, no record
    assert mx.parse_tickers(load("mexc/rest_ticker_24hr_all.json"), listings[3:]) == []


def test_gate_spot_tickers_read_quote_volume_and_mark_leveraged_tokens():
    pairs = [{"id": vs, "base": vs.split("_")[0], "quote": "USDT", "trade_status": "tradable"}
             for vs in ("RATS_USDT", "TCOM_USDT", "SUSHI3L_USDT", "BTC_USDT")]
    listings = gs.parse_listings(pairs)
    assert gs.parse_tickers(load("gateio_spot/rest_tickers.json"), listings) == [
        Ticker24h("gateio_spot", "RATS/USDT", D("209618.0648051")),
        Ticker24h("gateio_spot", "TCOM/USDT", D("44565.59172")),
        Ticker24h("gateio_spot", "SUSHI3L/USDT", D("11910.21673754"), leveraged=True),   # etf_leverage
    ]
    assert gs.parse_tickers(load("gateio_spot/rest_tickers_single.json"), listings) == [
        Ticker24h("gateio_spot", "BTC/USDT", D("290264968.57010812722"))]          # exact, no float


def test_gate_futures_tickers_read_volume_24h_quote():
    names = ("EWJ_USDT", "MEW_USDT", "NAS100_USDT", "BTC_USDT")
    listings = gf.parse_listings([dict(load("gateio_futures/rest_contract.json"), name=n) for n in names])
    assert gf.parse_tickers(load("gateio_futures/rest_tickers.json"), listings) == [
        Ticker24h("gateio_futures", "EWJ/USDT:USDT", D("3157")),
        Ticker24h("gateio_futures", "MEW/USDT:USDT", D("35858")),
        Ticker24h("gateio_futures", "NAS100/USDT:USDT", D("90100")),
    ]
    assert gf.parse_tickers(load("gateio_futures/rest_tickers_btc_usdt.json"), listings) == [
        Ticker24h("gateio_futures", "BTC/USDT:USDT", D("2196541426"))]


# -- deposit / withdraw status ----------------------------------------------------------------------------------

def test_mexc_wallet_status_folds_networks():
    # QANX: deposits on both networks, withdrawals on ERC20 only: it can come in and go out
    assert mx.parse_transfers(load("mexc/rest_capital_config_getall_item.ccxt_comment.json")) == [
        AssetTransfer("mexc_spot", "QANX", True, True)]
    # EOS (docs): its one EOS network pays nothing out; the BTC network listed under it is not EOS's
    assert mx.parse_transfers(load("mexc/rest_capital_config_getall.doc.json")) == [
        AssetTransfer("mexc_spot", "EOS", True, False)]
    closed = load("mexc/rest_capital_config_getall_item.ccxt_comment.json")
    for net in closed["networkList"]:
        net["depositEnable"] = False
    assert mx.parse_transfers([closed]) == [AssetTransfer("mexc_spot", "QANX", False, True)]


def test_gate_wallet_status_reads_chains_and_keeps_delisted_coins_withdrawable():
    assert gs.parse_transfers(load("gateio_spot/rest_currencies.json")) == [
        AssetTransfer("gateio_spot", "STPT", False, True),       # delisted: deposits off, withdrawals on
        AssetTransfer("gateio_spot", "BBC", False, True),
        AssetTransfer("gateio_spot", "SCR", True, True),
    ]
    assert gs.parse_transfers(load("gateio_spot/rest_currency_btc.json")) == [AssetTransfer("gateio_spot", "BTC", True, True)]
    assert gs.parse_transfers(load("gateio_spot/rest_currencies.doc.json")) == [AssetTransfer("gateio_spot", "GT", True, True)]
    # one chain open is enough; the deprecated coin-level flag does not override the chains
    btc = load("gateio_spot/rest_currency_btc.json")
    btc["chains"][0]["withdraw_disabled"] = True
    btc["withdraw_disabled"] = True
    assert gs.parse_transfers(btc) == [AssetTransfer("gateio_spot", "BTC", True, True)]
    btc["chains"][1]["withdraw_disabled"] = True
    assert gs.parse_transfers(btc) == [AssetTransfer("gateio_spot", "BTC", True, False)]
    # withdraw_delayed is slow, not blocked
    slow = load("gateio_spot/rest_currency_btc.json")
    for c in slow["chains"]:
        c["withdraw_delayed"] = True
    assert gs.parse_transfers(slow) == [AssetTransfer("gateio_spot", "BTC", True, True)]
    # a currency without chains: the coin-level flags
    bare = {k: v for k, v in load("gateio_spot/rest_currencies.json")[0].items() if k != "chains"}
    assert gs.parse_transfers(bare) == [AssetTransfer("gateio_spot", "STPT", False, True)]
    # the futures account is funded from the same wallet
    assert gf.parse_transfers(load("gateio_spot/rest_currency_btc.json")) == [
        AssetTransfer("gateio_futures", "BTC", True, True)]


# -- one universe from the three venues' payloads -------------------------------------------------------------------

def real_inputs():
    m = mx.parse_listings(load("mexc/rest_exchange_info_2025_12.json")) + \
        mx.parse_listings(load("mexc/rest_exchange_info_btcusdt_2025_12.json"))
    s = gs.parse_listings([load("gateio_spot/rest_currency_pair_btc_usdt.json"),
                           load("gateio_spot/rest_currency_pair_untradable.json")])
    f = gf.parse_listings([load("gateio_futures/rest_contract.json"),
                           load("gateio_futures/rest_contracts_item_decimal.json")])
    tickers = (mx.parse_tickers(load("mexc/rest_ticker_24hr.json"), m)
               + gs.parse_tickers(load("gateio_spot/rest_tickers_single.json"), s)
               + gf.parse_tickers(load("gateio_futures/rest_tickers_btc_usdt.json"), f))
    return m + s + f, tickers


def test_a_universe_from_real_payloads():
    listings, tickers = real_inputs()
    u = select(listings, tickers, [], UniverseRules())
    # BTC/USDT is on all three venues, but API trading of BTCUSDT is blocked on the first: only the
    # spot-perpetual route remains, at the spot leg's (thinner) volume
    assert [(r.symbol, r.venues, r.kind, r.quote_volume) for r in u.routes] == [
        ("BTC/USDT", ("gateio_spot", "gateio_futures"), "spot_perp", D("290264968.57010812722"))]
    unblocked = [dataclasses.replace(li, tradable=True) if li.venue_symbol == "BTCUSDT" else li
                 for li in listings]
    assert [(r.venues, r.quote_volume) for r in select(unblocked, tickers, []).routes] == [
        (("mexc_spot", "gateio_futures"), D("677764373.43")),
        (("gateio_spot", "gateio_futures"), D("290264968.57010812722")),     # a tie: by venue names
        (("gateio_spot", "mexc_spot"), D("290264968.57010812722")),
    ]


def test_real_wallet_status_freezes_routes_the_wallet_cannot_serve():
    listings, tickers = real_inputs()
    btc = load("gateio_spot/rest_currency_btc.json")
    usdt = dict(btc, currency="USDT")
    wallet = gs.parse_transfers([btc, usdt]) + gf.parse_transfers([btc, usdt])
    assert [r.frozen for r in select(listings, tickers, wallet).routes] == [False]
    # the spot wallet lists no USDT: the quote cannot move there
    u = select(listings, tickers, gs.parse_transfers([btc]))
    assert u.routes == () and [r.frozen_because for r in u.frozen] == [
        ("USDT deposit gateio_spot", "USDT withdraw gateio_spot")]
    # deposits of BTC closed on both chains of the spot wallet
    closed = copy.deepcopy(btc)
    for c in closed["chains"]:
        c["deposit_disabled"] = True
    u = select(listings, tickers, gs.parse_transfers([closed, usdt]), UniverseRules(skip_frozen_transfers=False))
    assert [(r.frozen, r.frozen_because) for r in u.routes] == [(True, ("BTC deposit gateio_spot",))]


@pytest.mark.parametrize("mod", [mx, gs, gf])
def test_rows_without_an_instrument_are_skipped(mod):
    assert mod.parse_listings([{"status": "1"}, {}]) == []
    assert mod.parse_transfers([{}, {"name": "x"}]) == []
