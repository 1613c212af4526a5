"""cexnode._core.symbols: interning, registry loading from real instrument info, maps both ways."""
import json
import pathlib

import pytest
from hypothesis import given, settings, strategies as st

from cexnode._core import symbols as S
from cexnode.adapters.gateio_futures import instruments as gate_futures
from cexnode.adapters.gateio_spot import instruments as gate_spot
from cexnode.adapters.mexc_spot import instruments as mexc

RES = pathlib.Path(__file__).resolve().parents[1] / "resources" / "core"


def load(rel):
    return json.loads((RES / rel).read_text())


def test_symbols_are_interned_with_dense_ids():
    a = S.get_symbol("BTC/USDT")
    assert S.get_symbol("BTC/USDT") is a
    assert S.symbol_from_parts("BTC", "USDT") is a
    p = S.get_symbol("BTC/USDT:USDT")
    assert p is not a and p.is_perp and not a.is_perp
    assert (p.base, p.quote, p.settle, p.spot_name) == ("BTC", "USDT", "USDT", "BTC/USDT")
    assert a.settle is None
    assert S.symbol_by_id(a.id) is a and S.symbol_by_id(p.id) is p
    assert 0 <= a.id < S.symbol_count() and 0 <= p.id < S.symbol_count()
    with pytest.raises(TypeError):
        S.Symbol(None, 99, "X/Y", "X", "Y", None)
    for bad in ("BTCUSDT", "BTC/", "/USDT", "BTC/USDT:", "BTC/US DT", "A/B/C"):
        with pytest.raises(ValueError):
            S.get_symbol(bad)
    with pytest.raises(KeyError):
        S.symbol_by_id(10 ** 6)


def full_registry():
    r = S.SymbolRegistry()
    assert mexc.load(r, load("mexc/rest_exchange_info.json")) == 1
    assert mexc.load(r, (RES / "mexc/rest_exchange_info_symbol.newdocs.json").read_text()) == 1
    assert gate_spot.load(r, load("gateio_spot/rest_currency_pair.doc.json")) == 1
    assert gate_futures.load(r, [load("gateio_futures/rest_contract.doc.json")]) == 1
    # BTC/USDT on both spot venues given explicitly (config / replay form)
    r.add_instrument({"venue": "mexc_spot", "symbol": "BTC/USDT", "venue_symbol": "BTCUSDT",
                      "tick": "0.01", "qty_step": "0.000001", "min_qty": "0.000001", "min_notional": "1"})
    r.add_instrument({"venue": "gateio_spot", "symbol": "BTC/USDT", "venue_symbol": "BTC_USDT",
                      "tick": "0.1", "qty_step": "0.000001", "min_qty": "0.00001", "min_notional": "3"})
    return r.freeze()


def test_mexc_exchange_info_fields():
    r = full_registry()
    m = r.map("mexc_spot")
    ins = m.instrument("BROCKUSDT")
    # baseAssetPrecision 2 (+2 headroom) -> qty scale 4; quotePrecision 5 -> tick 1e-5
    assert ins["symbol"] == "BROCK/USDT" and ins["price_scale"] == 5 and ins["tick"] == 1
    assert ins["qty_scale"] == 4 and ins["venue_qty_scale"] == 4 and ins["qty_mult"] == 1
    assert ins["step"] == 100                      # 0.01 at scale 4
    assert ins["min_qty"] == 0                     # baseSizePrecision "0"
    assert ins["min_notional"] == 100000           # quoteAmountPrecision "1" at scale 5
    assert ins["tradable"] is True                 # status "1" (a string) = online
    assert m.instrument("METALUSDT")["min_qty"] == 1000   # "0.1" at scale 4


def test_mexc_status_not_online_is_untradable_but_mapped():
    row = dict(load("mexc/rest_exchange_info.json")["symbols"][0], status="2", symbol="PAUSEDUSDT",
               baseAsset="PAUSED")
    r = S.SymbolRegistry()
    mexc.load(r, {"symbols": [row]})
    r.freeze()
    assert r.map("mexc_spot").instrument("PAUSEDUSDT")["tradable"] is False


def test_gate_spot_and_futures_fields_and_shared_scales():
    r = full_registry()
    g = r.map("gateio_spot").instrument("ETH_USDT")
    assert g["symbol"] == "ETH/USDT" and g["price_scale"] == 6 and g["qty_scale"] == 5
    assert g["min_qty"] == 100 and g["min_notional"] == 1_000_000 and g["tradable"] is True
    f = r.map("gateio_futures").instrument("BTC_USDT")
    assert f["symbol"] == "BTC/USDT:USDT"
    # group BTC/USDT: ticks 0.01 (mexc), 0.1 (gate spot), 0.1 (futures) -> price_scale 2;
    # qty: spot 6+2 headroom = 8, futures 0 contract decimals + 4 quanto decimals -> 8
    assert r.scales("BTC/USDT") == r.scales("BTC/USDT:USDT") == (2, 8)
    assert f["venue_qty_scale"] == 0 and f["qty_mult"] == 10_000        # 1 contract = 0.0001 BTC
    assert f["tick"] == 10 and f["step"] == 10_000 and f["min_qty"] == 10_000 and f["min_notional"] == 0
    for v in ("mexc_spot", "gateio_spot"):
        i = r.map(v).instrument("BTC/USDT")
        assert (i["price_scale"], i["qty_scale"]) == (2, 8)
    assert r.map("gateio_spot").instrument("BTC_USDT")["tick"] == 10


def test_maps_both_ways_and_misses():
    r = full_registry()
    m, g, f = r.map("mexc_spot"), r.map("gateio_spot"), r.map("gateio_futures")
    btc, perp = S.get_symbol("BTC/USDT"), S.get_symbol("BTC/USDT:USDT")
    assert m.id_of("BTCUSDT") == btc.id == g.id_of(b"BTC_USDT")
    assert f.id_of("BTC_USDT") == perp.id                   # same venue string, other venue, other symbol
    assert m.name_of(btc.id) == "BTCUSDT" and g.name_of(btc.id) == "BTC_USDT" and f.name_of(perp.id) == "BTC_USDT"
    assert g.symbol("BTC_USDT") is btc and f.symbol("BTC_USDT") is perp
    assert m.venue_symbol("BTC/USDT") == "BTCUSDT" and m.venue_symbol(btc) == "BTCUSDT"
    for miss in ("BTC_USDT", "btcusdt", "BTCUSD", "", "BTCUSDT ", "ETHUSDT"):
        assert miss not in m
        assert m.get(miss) is None
        with pytest.raises(KeyError):
            m.id_of(miss)
    with pytest.raises(KeyError):
        m.name_of(perp.id)                                   # MEXC lists no perpetual
    with pytest.raises(KeyError):
        m.name_of(-1)
    with pytest.raises(KeyError):
        g.name_of(10 ** 6)
    with pytest.raises(TypeError):
        m.id_of(123)
    assert len(m) == 3 and set(m.venue_symbols()) == {"BROCKUSDT", "METALUSDT", "BTCUSDT"}


def test_venue_strings_come_from_instrument_fields_not_string_surgery():
    # A pair whose id does not split into base/quote the obvious way still maps by its fields.
    r = S.SymbolRegistry()
    gate_spot.load(r, [dict(load("gateio_spot/rest_currency_pair.doc.json"), id="WEIRD_ID", base="AAA",
                                  quote="USDT")])
    mexc.load(r, {"symbols": [dict(load("mexc/rest_exchange_info.json")["symbols"][0],
                                               symbol="ZZZUSDT", baseAsset="YYY")]})
    r.freeze()
    assert r.map("gateio_spot").symbol("WEIRD_ID").name == "AAA/USDT"
    assert r.map("mexc_spot").symbol("ZZZUSDT").name == "YYY/USDT"


def test_rejections_are_listed_not_guessed():
    r = S.SymbolRegistry()
    c = load("gateio_futures/rest_contract.doc.json")
    gate_futures.load(r, [dict(c, name="BTC_USD"), dict(c, name="BTCUSDT"), dict(c, name="ETH_USDT")])
    bad = dict(load("gateio_spot/rest_currency_pair.doc.json"), precision="x")
    nobase = {k: v for k, v in load("gateio_spot/rest_currency_pair.doc.json").items() if k != "base"}
    gate_spot.load(r, [bad, nobase])
    r.freeze()
    names = [(v, s) for v, s, _ in r.rejected]
    assert ("gateio_futures", "BTC_USD") in names and ("gateio_futures", "BTCUSDT") in names
    assert names.count(("gateio_spot", "ETH_USDT")) == 2
    assert r.map("gateio_futures").venue_symbols() == ["ETH_USDT"]
    assert len(r.map("gateio_spot")) == 0


def test_only_filter_and_freeze_rules():
    r = S.SymbolRegistry()
    assert mexc.load(r, load("mexc/rest_exchange_info.json"), only={"NOPE"}) == 0
    assert gate_spot.load(r, load("gateio_spot/rest_currency_pair.doc.json"), only={"ETH/USDT"}) == 1
    with pytest.raises(RuntimeError):
        r.map("gateio_spot")
    r.freeze()
    assert r.freeze() is r and r.frozen
    with pytest.raises(RuntimeError):
        gate_spot.load(r, [])
    with pytest.raises(ValueError):
        r.map("binance")


def test_explicit_instrument_validation():
    r = S.SymbolRegistry()
    base = {"venue": "gateio_futures", "symbol": "ETH/USDT:USDT", "venue_symbol": "ETH_USDT",
            "tick": "0.01", "qty_step": "1", "quanto_multiplier": "0.01"}
    for bad in ({**base, "venue": "gateio_spot"}, {**base, "tick": "0"}, {**base, "bogus": 1},
                {k: v for k, v in base.items() if k != "tick"}, {**base, "qty_step": "0.5", "size_decimals": 0},
                {**base, "symbol": "ETH/USDT"}, {**base, "tick": "-1"}, {**base, "tradable": "yes"}):
        with pytest.raises(ValueError):
            r.add_instrument(bad)
    r.add_instrument(base)
    with pytest.raises(ValueError):
        r.add_instrument(base)                               # duplicate venue string
    with pytest.raises(ValueError):
        r.add_instrument({**base, "venue_symbol": "ETH_USDT2"})  # symbol listed twice on one venue
    r.add_instrument({"venue": "gateio_futures", "symbol": "SOL/USDT:USDT", "venue_symbol": "SOL_USDT",
                      "tick": "0.001", "qty_step": "0.1", "quanto_multiplier": "1", "min_qty": "0.1"})
    r.freeze()
    eth = r.map("gateio_futures").instrument("ETH_USDT")
    assert (eth["price_scale"], eth["qty_scale"], eth["qty_mult"], eth["step"]) == (2, 2, 1, 1)
    sol = r.map("gateio_futures").instrument("SOL_USDT")
    assert (sol["venue_qty_scale"], sol["qty_scale"], sol["qty_mult"], sol["step"], sol["min_qty"]) == (1, 1, 1, 1, 1)


def test_futures_decimal_size_mode():
    c = dict(load("gateio_futures/rest_contract.doc.json"), enable_decimal=True)
    r = S.SymbolRegistry()
    gate_futures.load(r, [c], size_decimal=True)
    r.freeze()
    f = r.map("gateio_futures").instrument("BTC_USDT")
    # sizes like "1053.5" contracts parse at 4 decimals; 1 contract-mantissa = 0.0001*1e-4 BTC
    assert f["venue_qty_scale"] == 4 and f["qty_scale"] == 8 and f["qty_mult"] == 1
    assert f["step"] == 10_000


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12), min_size=1, max_size=60,
                unique=True), st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", max_size=13))
def test_hash_map_agrees_with_dict(bases, probe):
    syms = [S.get_symbol("H%s/USDX" % b) for b in bases]
    spec = dict(price_scale=2, qty_scale=2, venue_qty_scale=2, qty_mult=1, tick=1, step=1, min_qty=0,
                min_notional=0, tradable=True)
    m = S.SymbolMap(0, [(b + "USDX", s, spec) for b, s in zip(bases, syms)])
    ref = {b + "USDX": s for b, s in zip(bases, syms)}
    for name, s in ref.items():
        assert m.id_of(name) == s.id and m.name_of(s.id) == name and m.get(name.encode()) is s
    for p in (probe, probe + "USDX", probe + "USD"):
        assert (p in m) == (p in ref)
    n, hits = m.bench_find([k.encode() for k in ref] + [b"\x00nope"], 2)
    assert (n, hits) == (2 * (len(ref) + 1), 2 * len(ref))
    n, total = m.bench_venue_name([s.id for s in syms] + [-1], 1)
    assert total == sum(len(k) for k in ref)


def test_hash_every_length_and_byte_position():
    # venue_name_hash reads words (8-byte, overlapping tail, 4+4 or bytewise for short names):
    # every length 1..40 and a change at every byte position must be told apart exactly
    names = ["Q" * k for k in range(1, 41)]
    names += ["Q" * i + "R" + "Q" * (k - i - 1) for k in (1, 3, 4, 7, 8, 9, 15, 16, 17, 33) for i in range(k)]
    syms = [S.get_symbol("HX%d/USDX" % i) for i in range(len(names))]
    spec = dict(price_scale=2, qty_scale=2, venue_qty_scale=2, qty_mult=1, tick=1, step=1, min_qty=0,
                min_notional=0, tradable=True)
    m = S.SymbolMap(0, list(zip(names, syms, [spec] * len(names))))
    for name, s in zip(names, syms):
        assert m.id_of(name) == s.id and m.name_of(s.id) == name
    for probe in ("", "S", "Q" * 41, "QQQQQQQRR", "R" * 8, "Q" * 7 + "\x00"):
        assert probe not in m
    for k in (5, 8, 12, 20):
        for i in range(k):
            probe = "Q" * i + "S" + "Q" * (k - i - 1)
            assert probe not in m and m.get(probe.encode()) is None
