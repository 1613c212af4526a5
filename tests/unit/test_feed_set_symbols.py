"""FeedParser.set_symbols: a venue's parser takes a newer map of its venue between frames (instruments
listed at run time); frames of the new instruments parse from then on, the others as before."""
from __future__ import annotations

import gc

import pytest

from cexnode._core import feed as F
from cexnode._core import symbols as S
from cexnode._core.book import SYNC_SNAPSHOT_DIFF
from cexnode._core.parsers.gateio_futures import GateFuturesParser
from cexnode._core.parsers.gateio_spot import GateSpotParser
from cexnode._core.parsers.mexc_spot import MexcSpotParser
from cexnode._core.parsers.recording import RecordingSink
from cexnode._core.router import BookRouter
from cexnode._core.tap import FrameTap
from cexnode.sim.venues.mexc_spot import proto as mp

SPEC_KEYS = ("price_scale", "qty_scale", "venue_qty_scale", "qty_mult", "tick", "step", "min_qty",
             "min_notional", "tradable")


def frozen_map(venue, rows):
    """A registry of ``rows`` (venue_symbol, symbol, tick, step[, quanto]) on ``venue``, frozen: its map."""
    r = S.SymbolRegistry()
    for vs, sym, tick, step, *quanto in rows:
        spec = {"venue": venue, "symbol": sym, "venue_symbol": vs, "tick": tick, "qty_step": step}
        if quanto:
            spec["quanto_multiplier"] = quanto[0]
        r.add_instrument(spec)
    return r.freeze().map(venue)


def newer(m, extra):
    """``m`` plus ``extra`` ((venue_symbol, symbol, spec of SPEC_KEYS)): the map a grown registry hands out."""
    entries = []
    for vs in m.venue_symbols():
        i = m.instrument(vs)
        entries.append((vs, S.get_symbol(i["symbol"]), {k: i[k] for k in SPEC_KEYS}))
    entries += [(vs, S.get_symbol(sym), spec) for vs, sym, spec in extra]
    return S.SymbolMap(m.venue, entries, -1, m.venue_label)


def spec(ps, qs, tick=1, step=1, vqs=None, mult=1):
    return dict(price_scale=ps, qty_scale=qs, venue_qty_scale=qs if vqs is None else vqs, qty_mult=mult, tick=tick,
                step=step, min_qty=0, min_notional=0, tradable=True)


def gate_spot_depth(pair, first, last, bids):
    return ('{"time":1,"channel":"spot.order_book_update","event":"update","result":{"t":1682689045398,'
            '"s":"%s","U":%d,"u":%d,"b":%s,"a":[]}}' % (pair, first, last, str(bids).replace("'", '"'))).encode()


def gate_fut_depth(contract, first, last, bids):
    lv = ",".join('{"p":"%s","s":%s}' % (p, s) for p, s in bids)
    return ('{"time":1,"channel":"futures.order_book_update","event":"update","result":{"t":1733899016364,'
            '"s":"%s","U":%d,"u":%d,"b":[%s],"a":[]}}' % (contract, first, last, lv)).encode()


def mexc_depth(symbol, first, last, bids):
    body = {"bids": [{"price": p, "quantity": q} for p, q in bids], "asks": [], "fromVersion": str(first),
            "toVersion": str(last)}
    return mp.encode_push("spot@public.aggre.depth.v3.api.pb@10ms@" + symbol, symbol, "publicAggreDepths", body,
                          send_time=1)


CASES = {
    # venue: (parser class, rows of the first map, new venue symbol + unified symbol + spec, frame builder, binary)
    "gateio_spot": (GateSpotParser, [("BTC_USDT", "BTC/USDT", "0.1", "0.000001")],
                    ("SETX_USDT", "SETX/USDT", spec(2, 4)), gate_spot_depth, False),
    "gateio_futures": (GateFuturesParser, [("BTC_USDT", "BTC/USDT:USDT", "0.1", "1", "0.0001")],
                       ("SETX_USDT", "SETX/USDT:USDT", spec(2, 4, vqs=0, step=10000, mult=10000)), gate_fut_depth, False),
    "mexc_spot": (MexcSpotParser, [("BTCUSDT", "BTC/USDT", "0.01", "0.000001")],
                  ("SETXUSDT", "SETX/USDT", spec(2, 4)), mexc_depth, True),
}


@pytest.mark.parametrize("venue", sorted(CASES))
def test_new_instruments_parse_after_the_swap(venue):
    cls, rows, (new_vs, new_sym, new_spec), frame, binary = CASES[venue]
    old = frozen_map(venue, rows)
    old_vs = rows[0][0]
    sink = RecordingSink()
    p = cls(old, sink)
    assert p.feed_bytes(frame(new_vs, 5, 6, [["1.5", "2"]]), binary, 7) == F.FRAME_IGNORED   # not listed yet
    assert p.feed_bytes(frame(old_vs, 5, 6, [["100.5", "1"]]), binary, 7) == F.FRAME_DEPTH
    before = list(sink.events)
    m2 = newer(old, [(new_vs, new_sym, new_spec)])
    p.set_symbols(m2)
    assert p.symbols is m2 and p.venue == old.venue
    assert p.feed_bytes(frame(new_vs, 7, 8, [["1.5", "2"]]), binary, 7) == F.FRAME_DEPTH
    ev = sink.events[len(before)]
    assert ev[0] == "depth" and ev[1] == old.venue and ev[2] == S.get_symbol(new_sym).id
    assert ev[8] == [(150, 20000)]                          # 1.5 at 2 decimals, 2 base at 4 decimals
    # the instruments of the old map parse exactly as before
    assert p.feed_bytes(frame(old_vs, 5, 6, [["100.5", "1"]]), binary, 7) == F.FRAME_DEPTH
    assert sink.events[-1] == before[-1]


def test_set_symbols_refuses_another_venue_an_older_map_and_raw_mode():
    gs = frozen_map("gateio_spot", [("BTC_USDT", "BTC/USDT", "0.1", "0.000001")])
    mx = frozen_map("mexc_spot", [("BTCUSDT", "BTC/USDT", "0.01", "0.000001")])
    p = GateSpotParser(gs)
    with pytest.raises(ValueError, match="map is of"):
        p.set_symbols(mx)
    with pytest.raises(ValueError, match="None"):
        p.set_symbols(None)
    bigger = newer(gs, [("SETY_USDT", "SETY/USDT", spec(2, 4))])
    p.set_symbols(bigger)
    with pytest.raises(ValueError, match="every instrument"):
        p.set_symbols(gs)                                   # drops SETY_USDT
    changed = S.SymbolMap(gs.venue, [("BTC_USDT", S.get_symbol("BTC/USDT"),
                                      dict({k: gs.instrument("BTC_USDT")[k] for k in SPEC_KEYS}, tick=2))],
                          -1, gs.venue_label)
    with pytest.raises(ValueError, match="every instrument"):
        p.set_symbols(changed)
    assert p.symbols is bigger
    with pytest.raises(ValueError, match="raw-mode"):
        GateSpotParser().set_symbols(gs)
    assert bigger.extends(gs) and bigger.extends(bigger) and not gs.extends(bigger) and not mx.extends(gs)


def test_a_tap_swaps_its_parser_map_too():
    gs = frozen_map("gateio_spot", [("BTC_USDT", "BTC/USDT", "0.1", "0.000001")])
    sink = RecordingSink()
    inner = GateSpotParser(gs, sink)

    class Capture:
        frames = 0

        def ws(self, venue, data, binary, recv_ns):
            Capture.frames += 1

    tap = FrameTap(inner, Capture(), "gateio_spot")
    m2 = newer(gs, [("SETZ_USDT", "SETZ/USDT", spec(2, 4))])
    tap.set_symbols(m2)
    assert tap.symbols is m2 and inner.symbols is m2
    assert tap.feed_bytes(gate_spot_depth("SETZ_USDT", 1, 2, [["3", "1"]]), False, 7) == F.FRAME_DEPTH
    assert Capture.frames == 1 and sink.events[-1][2] == S.get_symbol("SETZ/USDT").id


def test_a_swap_from_inside_a_sink_callback_keeps_the_frame_consistent():
    # a resync callback (inside the parser's feed call) swaps the map and drops every other
    # reference to the old one: the rest of the frame and the next frames still parse
    gs = frozen_map("gateio_spot", [("BTC_USDT", "BTC/USDT", "0.1", "0.000001")])
    router = BookRouter()
    sid = gs.id_of("BTC_USDT")
    router.add_book(gs.venue, sid, SYNC_SNAPSHOT_DIFF)
    p = GateSpotParser(gs, router)
    router.snapshot(gs.venue, sid, 5, [(1000, 1)], [(1010, 1)])
    maps = {"next": newer(gs, [("SETW_USDT", "SETW/USDT", spec(2, 4))])}
    swapped = []

    def on_resync(symbol_id, reason):
        p.set_symbols(maps.pop("next"))
        gc.collect()
        swapped.append(symbol_id)

    router.set_resync_handler(gs.venue, on_resync)
    del gs
    # a gap (U=10 after 5): the book leaves sync inside on_depth, the handler swaps the map
    assert p.feed_bytes(gate_spot_depth("BTC_USDT", 10, 11, [["100.5", "1"]]), False, 7) == F.FRAME_DEPTH
    assert swapped == [sid] and p.symbols.venue_symbols() == ["BTC_USDT", "SETW_USDT"]
    router.add_book(p.venue, S.get_symbol("SETW/USDT").id, SYNC_SNAPSHOT_DIFF)
    assert p.feed_bytes(gate_spot_depth("SETW_USDT", 1, 2, [["3", "1"]]), False, 7) == F.FRAME_DEPTH
    assert router.book_sync(p.venue, S.get_symbol("SETW/USDT").id).buffered == 1
