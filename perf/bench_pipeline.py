"""tick_to_decision: in-process, frame bytes → parser → BookSync → Book → ArbEngine → opportunity.

The live hot path of DESIGN §1 without the socket: a BookRouter is the sink of the real Cython
parser; a route BTC/USDT mexc_spot + gateio_spot; the MEXC book is synced from a snapshot and stays
put, and every frame of the measured stream changes the Gate book's top bid (consecutive ids, so
every frame is applied) while that bid stays above MEXC's ask after fees: every frame is evaluated
and emits an opportunity, delivered to a Python ``on_opportunities`` callback inside the call.

Timing: ``BookRouter.bench_frames`` reads CLOCK_REALTIME before and after each ``FeedParser.feed``
call in C (one sample per frame; the two clock reads, ≈ 20-40 ns, are included), so median and p99
are of single frames, not batch means. Side by side in the same run:
- ``gate_no_edge``: the same stream shape without an edge (evaluated, nothing emitted);
- ``mexc``: MEXC publicAggreDepths protobuf frames (the MEXC book moves, Gate is static);
- ``peer_python``: the same Gate frames through a pure-Python pipeline (orjson.loads + Decimal
  levels into a dict book + tests/reference/arb_ref evaluation), per frame.
"""
from __future__ import annotations

import os
import sys
import time
from decimal import Decimal

from _timing import summarize

TARGET_NS = 4000
TARGET_P99_NS = 20000
T0 = 1_763_856_000_000_000_000


def _pipeline(edge: bool):
    from cexnode._core.arb import ArbEngine
    from cexnode._core.router import BookRouter
    from cexnode._core.symbols import SymbolRegistry

    reg = SymbolRegistry()
    reg.add_instruments([
        {"venue": "gateio_spot", "symbol": "BTC/USDT", "venue_symbol": "BTC_USDT", "tick": "0.1", "qty_step": "0.0001",
         "min_qty": "0.0001", "min_notional": "1"},
        {"venue": "mexc_spot", "symbol": "BTC/USDT", "venue_symbol": "BTCUSDT", "tick": "0.01", "qty_step": "0.000001",
         "min_qty": "0", "min_notional": "1"}])
    reg.freeze()
    gmap, mmap = reg.map("gateio_spot"), reg.map("mexc_spot")
    sid = gmap.id_of("BTC_USDT")
    p, q = reg.scales("BTC/USDT")
    arb = ArbEngine(min_profit="0.50", max_notional="1000", max_book_age_ms=5000)
    router = BookRouter(arb)
    bg = router.add_book(1, sid, 0, 100)
    bm = router.add_book(0, sid, 0, 100)
    arb.add_route("btc", "BTC/USDT", p, q, [
        dict(mmap.instrument(sid), venue="mexc_spot", book=bm, taker_fee=Decimal("0.0005")),
        dict(gmap.instrument(sid), venue="gateio_spot", book=bg, taker_fee=Decimal("0.001"))])
    P, Q = 10 ** p, 10 ** q
    now = time.time_ns()
    asks_m = [(int((30000 + k) * P), 2 * Q) for k in range(20)]
    bids_m = [(int((29999 - k) * P), 2 * Q) for k in range(20)]
    router.snapshot(0, sid, 1000, bids_m, asks_m, recv_ns=now)
    top_bid = 30100 if edge else 29990
    bids_g = [(int((top_bid - 1 - k) * P), Q) for k in range(20)]
    asks_g = [(int((30200 + k) * P), Q) for k in range(20)]
    router.snapshot(1, sid, 100, bids_g, asks_g, recv_ns=now)
    return reg, router, arb, sid, top_bid


def _gate_frames(n: int, top_bid: int, start_id: int = 101):
    import orjson

    out = []
    t_ms = time.time_ns() // 1_000_000
    for i in range(n):
        u = start_id + i
        res = {"t": t_ms, "e": "depthUpdate", "E": t_ms // 1000, "s": "BTC_USDT", "U": u, "u": u,
               "b": [["%d.0" % top_bid, "0.%04d" % (1000 + i % 8000)], ["%d.5" % (top_bid - 3), "0.%04d" % (500 + i % 97)]],
               "a": [["%d.0" % (30200 + i % 5), "0.%04d" % (2000 + i % 50)]]}
        out.append(orjson.dumps({"time": t_ms // 1000, "time_ms": t_ms, "channel": "spot.order_book_update",
                                 "event": "update", "result": res}))
    return out


def _mexc_frames(n: int, start_version: int = 1001):
    from cexnode.sim.venues.mexc_spot.proto import encode_aggre_depth

    out = []
    t_ms = time.time_ns() // 1_000_000
    for i in range(n):
        v = start_version + i
        out.append(encode_aggre_depth("spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT", "BTCUSDT",
                                      [["29999.%02d" % (i % 100), "0.%06d" % (100000 + i % 5000)]],
                                      [["30000.%02d" % (i % 100), "0.%06d" % (200000 + i % 5000)]], v, v,
                                      send_time=t_ms, create_time=t_ms))
    return out


def _run_ours(n: int, edge: bool, venue: str):
    from cexnode._core.parsers.gateio_spot import GateSpotParser
    from cexnode._core.parsers.mexc_spot import MexcSpotParser

    reg, router, arb, sid, top_bid = _pipeline(edge)
    got = [0, None]

    def on_opportunities(opps):      # like the engine: count, hand over, keep nothing
        got[0] += len(opps)
        got[1] = opps[-1]

    router.on_opportunities = on_opportunities
    if venue == "gateio_spot":
        parser = GateSpotParser(reg.map("gateio_spot"), router)
        frames, binary = _gate_frames(n, top_bid), False
    else:
        parser = MexcSpotParser(reg.map("mexc_spot"), router)
        frames, binary = _mexc_frames(n), True
    import gc
    gc_was = gc.isenabled()
    gc.disable()
    try:
        samples = router.bench_frames(parser, frames, binary, 1)
    finally:
        if gc_was:
            gc.enable()
    assert parser.errors == 0, parser.last_error
    assert router.all_in_sync(), "stream fell out of sync"
    warm = min(2000, n // 10)
    return summarize(samples[warm:]), got[0], router.evaluations, frames


def _peer_python(frames, top_bid: int):
    """orjson + Decimal dict book + the Decimal reference arbitrage, per frame."""
    import orjson

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
    from reference import arb_ref as ref

    now = time.time_ns()
    mb = ref.RefBook("mexc_spot", [(Decimal(29999 - k), Decimal(2)) for k in range(20)],
                     [(Decimal(30000 + k), Decimal(2)) for k in range(20)], True, 0, now)
    gb_bids = {Decimal(top_bid - 1 - k): Decimal(1) for k in range(20)}
    gb_asks = {Decimal(30200 + k): Decimal(1) for k in range(20)}
    gb = ref.RefBook("gateio_spot", [], [], True, 0, now)
    eng = ref.RefEngine(ref.RefParams(min_profit=Decimal("0.50"), max_notional=Decimal(1000)))
    eng.add_route(ref.RefRoute("btc", "BTC/USDT", 2, 6, [
        ref.RefLeg("mexc_spot", mb, Decimal("0.0005"), Decimal("0.01"), Decimal("0.000001")),
        ref.RefLeg("gateio_spot", gb, Decimal("0.001"), Decimal("0.1"), Decimal("0.0001"), Decimal("0.0001"))]))
    last = [100]
    out = []
    pc = time.perf_counter_ns
    emitted = 0
    for f in frames:
        t0 = pc()
        m = orjson.loads(f)
        r = m["result"]
        if r["U"] > last[0] + 1:
            raise AssertionError("gap")
        last[0] = r["u"]
        for side, book in (("b", gb_bids), ("a", gb_asks)):
            for p_s, q_s in r[side]:
                p_d, q_d = Decimal(p_s), Decimal(q_s)
                if q_d == 0:
                    book.pop(p_d, None)
                else:
                    book[p_d] = q_d
        gb.bids = sorted(gb_bids.items(), reverse=True)
        gb.asks = sorted(gb_asks.items())
        gb.version += 1
        gb.recv_ns = time.time_ns()
        opps = eng.on_book_update(gb, gb.recv_ns)
        emitted += len(opps or ())
        out.append(pc() - t0)
    return summarize(out[len(out) // 10:]), emitted


def tick_to_decision(quick: bool) -> dict:
    n = 20_000 if quick else 200_000
    edge, n_emit, n_eval, frames = _run_ours(n, True, "gateio_spot")
    assert n_emit >= n - 1, (n_emit, n)              # every frame emits
    noedge, n_emit0, n_eval0, _ = _run_ours(n, False, "gateio_spot")
    assert n_emit0 == 0 and n_eval0 >= n
    mexc, _, n_eval_m, _ = _run_ours(n, True, "mexc_spot")
    assert n_eval_m >= n
    peer, peer_emit = _peer_python(frames[: min(n, 5000)], 30100)
    assert peer_emit > 0
    return {
        "name": "tick_to_decision",
        "median_ns": edge["median_ns"],
        "p99_ns": edge["p99_ns"],
        "target_ns": TARGET_NS,
        "target_p99_ns": TARGET_P99_NS,
        "p99_met": bool(edge["p99_ns"] <= TARGET_P99_NS),
        "samples": edge["samples"],
        "frames": n,
        "opportunities": n_emit,
        "level": "per frame, C clock around FeedParser.feed: GateSpotParser -> BookRouter -> BookSync -> Book -> "
                 "ArbEngine -> Opportunity -> Python on_opportunities callback",
        "gate_no_edge_median_ns": noedge["median_ns"],
        "gate_no_edge_p99_ns": noedge["p99_ns"],
        "mexc_protobuf_median_ns": mexc["median_ns"],
        "mexc_protobuf_p99_ns": mexc["p99_ns"],
        "peer_python_orjson_decimal_refarb_median_ns": peer["median_ns"],
        "peer_python_orjson_decimal_refarb_p99_ns": peer["p99_ns"],
        "ratio_vs_peer_python": peer["median_ns"] / edge["median_ns"],
    }


tick_to_decision.bench_name = "tick_to_decision"
BENCHMARKS = [tick_to_decision]
