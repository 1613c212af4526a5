"""SymbolRegistry.extend: instruments listed after freeze() (a re-read listing) grow the registry; new
SymbolMaps per venue that gained one, old maps untouched, scales shared and never made finer."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from cexnode._core import feed as F
from cexnode._core import symbols as S
from cexnode._core.parsers.gateio_spot import GateSpotParser
from cexnode._core.parsers.recording import RecordingSink
from cexnode.adapters.gateio_futures.execution import GateFuturesGateway
from cexnode.config import Secret

MX, GS, GF = "mexc_spot", "gateio_spot", "gateio_futures"


def spot(venue, base, tick="0.01", step="0.0001", quote="USDT", **kw):
    vs = base + quote if venue == MX else base + "_" + quote
    return dict({"venue": venue, "symbol": base + "/" + quote, "venue_symbol": vs, "tick": tick, "qty_step": step},
                **kw)


def perp(base, tick="0.1", step="1", quanto="0.001", **kw):
    return dict({"venue": GF, "symbol": base + "/USDT:USDT", "venue_symbol": base + "_USDT", "tick": tick,
                 "qty_step": step, "quanto_multiplier": quanto}, **kw)


def frozen(specs):
    r = S.SymbolRegistry()
    r.add_listing(specs)
    return r.freeze()


def instruments(m):
    return [m.instrument(vs) for vs in m.venue_symbols()]


def test_extend_needs_a_frozen_registry():
    r = S.SymbolRegistry()
    with pytest.raises(RuntimeError, match="freeze"):
        r.extend([spot(MX, "XA")])
    r.freeze()
    with pytest.raises(RuntimeError, match="frozen"):
        r.add_instrument(spot(MX, "XA"))
    assert r.extend([]) == {}


def test_new_listings_get_new_maps_and_the_old_maps_stay():
    r = frozen([spot(MX, "XB"), spot(GS, "XB", tick="0.001"), perp("XB", quanto="0.01")])
    old = {v: r.map(v) for v in (MX, GS, GF)}
    before = {v: instruments(m) for v, m in old.items()}
    got = r.extend([spot(MX, "XB"), spot(GS, "XB", tick="0.001"),       # the whole listing again: ignored
                    spot(GS, "XC", tick="0.5", step="1"), perp("XC", tick="0.5", step="1", quanto="10"),
                    spot(GS, "XB", quote="BTC", tick="0.00000001", step="1")])
    gs_id, gf_id = r.venue_id(GS), r.venue_id(GF)
    assert set(got) == {gs_id, gf_id}                     # the other venue gained nothing: no new map
    assert r.map(GS) is got[gs_id] and r.map(GF) is got[gf_id] and r.map(MX) is old[MX]
    assert r.rejected == []
    for v in (GS, GF):
        new = r.map(v)
        assert new is not old[v] and new.extends(old[v]) and not old[v].extends(new)
        assert instruments(old[v]) == before[v]           # handed out earlier: unchanged
        assert instruments(new)[:len(before[v])] == before[v]
    assert r.map(GS).venue_symbols() == ["XB_USDT", "XC_USDT", "XB_BTC"]
    assert "XC_USDT" not in old[GS] and "XC_USDT" in r.map(GS)
    # a new economic instrument: scales as freeze computes them (spot step + headroom vs perp size)
    assert r.scales("XC/USDT") == (1, 2) == r.scales("XC/USDT:USDT")
    assert r.map(GF).instrument("XC_USDT")["qty_mult"] == 1000 == r.map(GF).instrument("XC_USDT")["step"]
    assert r.scales("XB/BTC") == (8, 2)
    # extending again with nothing new hands out nothing
    assert r.extend([spot(GS, "XC", tick="0.5", step="1")]) == {} and r.map(GS) is got[gs_id]


def test_a_new_venue_of_a_known_instrument_keeps_its_scales_or_is_refused():
    r = frozen([spot(MX, "XD", tick="0.01", step="0.0001"), perp("XE", tick="0.1", step="1", quanto="0.001")])
    assert r.scales("XD/USDT") == (2, 6)
    got = r.extend([spot(GS, "XD", tick="0.05", step="0.01"),              # coarser: shares (2, 6)
                    spot(GS, "XE", tick="0.01", step="0.01")])             # XE: (1, 3) from the perp
    assert r.map(GS).instrument("XD_USDT")["price_scale"] == 2 and r.map(GS).instrument("XD_USDT")["tick"] == 5
    assert r.map(GS).instrument("XD_USDT")["qty_scale"] == 6
    assert "XE_USDT" not in r.map(GS)
    assert len(r.rejected) == 1
    venue, vs, reason = r.rejected[0]
    assert (venue, vs) == (GS, "XE_USDT")
    assert "scales" in reason and "price 2, qty 4" in reason and "price 1, qty 3" in reason
    assert r.scales("XE/USDT") == (1, 3)                  # unchanged
    assert set(got) == {r.venue_id(GS)}
    # a step one decimal finer than the headroom leaves room for: refused too
    r.extend([spot(GS, "XE", tick="0.1", step="0.01")])
    assert r.rejected[-1][:2] == (GS, "XE_USDT") and "qty 4" in r.rejected[-1][2]
    r.extend([spot(GS, "XE", tick="0.1", step="0.1")])  # (1, 3): fits
    assert r.map(GS).instrument("XE_USDT")["qty_scale"] == 3


def test_changed_specs_and_bad_rows_are_refused_once():
    r = frozen([spot(MX, "XF", tick="0.01")])
    m = r.map(MX)
    rows = [spot(MX, "XF", tick="0.001"), spot(MX, "XF", tick="0.01", tradable=False),
            (MX, "WEIRD", "no tick in the listing"), spot(MX, "XG", tick="0"),
            spot(MX, "XH"), dict(spot(MX, "XH"), venue_symbol="XH-USDT")]
    assert r.extend(rows) == {r.venue_id(MX): r.map(MX)}
    reasons = {(vs, reason) for _, vs, reason in r.rejected}
    assert ("XFUSDT", "listed again with tick 0.001 (was 0.01); the loaded instrument stays") in reasons
    assert ("XFUSDT", "listed again with tradable False (was True); the loaded instrument stays") in reasons
    assert ("WEIRD", "no tick in the listing") in reasons
    assert any(vs == "XGUSDT" and "tick" in why for vs, why in reasons)
    assert any(vs == "XH-USDT" and "already listed" in why for vs, why in reasons)
    assert r.map(MX).instrument("XFUSDT") == m.instrument("XFUSDT")
    assert r.map(MX).venue_symbols() == ["XFUSDT", "XHUSDT"]
    n = len(r.rejected)
    assert r.extend(rows) == {} and len(r.rejected) == n   # the same listing again: nothing recorded twice


def test_a_parser_and_a_gateway_take_the_extended_map():
    r = frozen([spot(GS, "XI", tick="0.1", step="0.001"), perp("XI", quanto="0.001")])
    sink = RecordingSink()
    p = GateSpotParser(r.map(GS), sink)
    gw = GateFuturesGateway(api_key=Secret("k"), api_secret=Secret("s"), private_stream=False, ws_order_api=False,
                            rest_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9")
    gw.bind_symbol_map(r.map(GF))
    frame = (b'{"time":1,"channel":"spot.order_book_update","event":"update","result":{"t":1,'
             b'"s":"XJ_USDT","U":1,"u":2,"b":[["2.5","3"]],"a":[]}}')
    assert p.feed_bytes(frame, False, 7) == F.FRAME_IGNORED
    assert gw.instrument("XJ/USDT:USDT") is None
    got = r.extend([spot(GS, "XJ", tick="0.1", step="0.1"), perp("XJ", quanto="0.1")])
    p.set_symbols(got[r.venue_id(GS)])
    gw.bind_symbol_map(got[r.venue_id(GF)])
    assert p.feed_bytes(frame, False, 7) == F.FRAME_DEPTH
    assert sink.events[-1][2] == S.get_symbol("XJ/USDT").id and sink.events[-1][8] == [(25, 3000)]
    assert str(gw.instrument("XJ/USDT:USDT").multiplier) == "0.1"
    assert gw.by_venue_symbol("XJ_USDT").symbol == "XJ/USDT:USDT"
    assert str(gw.instrument("XI/USDT:USDT").multiplier) == "0.001"


# ------------------------------------------------------------------------------------------------
# property: extending a frozen registry with B = freezing A + B at once, whenever B needs no finer scales

VENUES = [SimpleNamespace(name="pa", venue_id=0, market="spot"), SimpleNamespace(name="pb", venue_id=1, market="spot"),
          SimpleNamespace(name="pp", venue_id=2, market="perpetual")]
TICKS = ["1", "0.5", "0.1", "0.05", "0.01", "0.001", "0.0001"]
STEPS = ["1", "0.1", "0.01", "0.001", "10"]
QUANTOS = ["1", "0.1", "0.01", "0.0001", "10"]


def _listing(rng):
    """Specs over a few economic instruments and the three venues (each at most once per venue)."""
    out = []
    for b in range(rng.randint(1, 7)):
        base = "PX%d" % b
        for v in VENUES:
            if rng.random() < 0.6:
                spec = {"venue": v.name, "venue_symbol": "%s-%s" % (base, v.name), "tick": rng.choice(TICKS),
                        "qty_step": rng.choice(STEPS), "min_qty": rng.choice(["0", "0.001", "2"]),
                        "min_notional": rng.choice(["0", "5", "0.015"]), "tradable": rng.random() < 0.9}
                if v.market == "spot":
                    spec["symbol"] = base + "/USDT"
                else:
                    spec["symbol"] = base + "/USDT:USDT"
                    spec["quanto_multiplier"] = rng.choice(QUANTOS)
                out.append(spec)
    rng.shuffle(out)
    return out


def _registry(specs):
    r = S.SymbolRegistry(VENUES)
    for s in specs:
        r.add_instrument(s)
    return r.freeze()


def _maps(r):
    return {v.name: instruments(r.map(v.name)) for v in VENUES}


STATS = {"cases": 0, "all_taken": 0, "refused": 0}


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.integers(0, 2**64 - 1))
def test_extend_equals_freezing_everything_at_once(seed):
    rng = random.Random(seed)
    specs = _listing(rng)
    cut = rng.randint(0, len(specs))
    a, b = specs[:cut], specs[cut:]
    r = _registry(a)
    old = {v.name: r.map(v.name) for v in VENUES}
    old_inst = _maps(r)
    scales_a = {sym.spot_name: r.scales(sym) for sym in r.symbols}
    # B comes with the A rows again (a re-read listing), in any order
    again = a[:] if rng.random() < 0.5 else []
    rows = b + again
    rng.shuffle(rows)
    got = r.extend(rows)
    b = [s for s in rows if any(s is x for x in b)]       # B in the order extend saw it (the maps' order)
    refused = {vs for _, vs, _ in r.rejected}
    taken = [s for s in b if s["venue_symbol"] not in refused]
    # B needs no finer scales of A's economic instruments <=> freezing A + B keeps them
    whole = _registry(a + b)
    keeps = all(whole.scales(name) == sc for name, sc in scales_a.items())
    STATS["cases"] += 1
    if keeps:
        STATS["all_taken"] += 1
        assert r.rejected == []
        assert _maps(r) == _maps(whole)
    else:
        STATS["refused"] += 1
        assert refused and all("scales" in why for _, _, why in r.rejected)
        assert _maps(r) == _maps(_registry(a + taken))
        for vs in refused:            # each refused one would have made its instrument's scales finer
            s = next(x for x in b if x["venue_symbol"] == vs)
            sym = S.get_symbol(s["symbol"])
            alone = _registry(a + [s])
            assert alone.scales(sym.spot_name) != scales_a[sym.spot_name]
    # new maps exactly for the venues that gained an instrument; maps handed out before unchanged
    gained = {S.SymbolRegistry(VENUES).venue_id(s["venue"]) for s in taken}
    assert set(got) == gained
    for v in VENUES:
        assert instruments(old[v.name]) == old_inst[v.name]
        assert r.map(v.name).extends(old[v.name])
        assert (r.map(v.name) is old[v.name]) == (v.venue_id not in gained)
    # and every new map finds every instrument by its venue string
    for v in VENUES:
        m = r.map(v.name)
        for vs in m.venue_symbols():
            assert m.id_of(vs) == m.instrument(vs)["symbol_id"]


def test_extend_property_saw_both_outcomes():
    """Runs after the property test (file order): both branches were exercised."""
    assert STATS["cases"] >= 600
    print("extend property:", STATS)
    assert STATS["all_taken"] >= 100 and STATS["refused"] >= 100, STATS
