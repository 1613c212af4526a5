"""arb_eval: one book update evaluated by ArbEngine (DESIGN §4), measured in C and through Python.

Setup: BTC group on all three venues (price_scale 2, qty_scale 6; futures step = 1 contract × 0.0001
BTC multiplier), routes spot–spot (mexc_spot, gateio_spot) and spot–perp (gateio_spot,
gateio_futures). The updated book is gateio_spot, which both routes touch: 4 ordered pairs per
update. Ladders have 20 levels a side, 0.001 BTC each, so a profitable pair walks 20 levels per side.

Cases
-----
arb_eval_emit      gateio_spot is cheap: 2 pairs emit (2 Opportunity objects + the list per call),
                   dedup memory cleared in C before every call.
arb_eval_walk      same books, min_profit out of reach: 20 levels walked per profitable pair, no emit.
arb_eval_noedge    no fee-adjusted edge at the touch (the common case).
The C figure comes from ArbEngine.bench_ns (a C loop over on_book_update, CLOCK_MONOTONIC); the
Python figure calls ArbEngine.evaluate per call (for _emit also reset_dedup(), included).
"""
from __future__ import annotations

from _timing import per_call_ns, summarize

NOW = 1_700_000_000_000_000_000
TARGET_NS = 1500


def _setup(case: str):
    from cexnode._core.arb import ArbEngine
    from cexnode._core.book import Book

    books = {0: Book(0, 0), 1: Book(0, 1), 2: Book(1, 2)}

    def ladder(best, side, qty=1000, n=20, gap=100):
        return [(best + side * k * gap, qty) for k in range(n)]

    mid = 6_500_000  # 65000.00
    if case == "noedge":
        gate_bid, gate_ask, other_bid, other_ask = mid - 100, mid + 100, mid - 50, mid + 50
    else:  # gateio_spot 1 % below the others
        gate_bid, gate_ask, other_bid, other_ask = mid - 65_100, mid - 65_000, mid - 100, mid + 100
    for v, (b, a) in {0: (other_bid, other_ask), 1: (gate_bid, gate_ask), 2: (other_bid, other_ask)}.items():
        books[v].py_apply(ladder(b, -1), ladder(a, 1), full=True, exch_ts_ms=NOW // 10**6, recv_ns=NOW)
        books[v].mark_in_sync(True)
    eng = ArbEngine(min_profit="1000000000" if case == "walk" else "0.50", max_notional="100000")

    def leg(v, name, fee, step):
        return dict(venue=name, book=books[v], taker_fee=fee, tick=1, step=step, min_qty=step, min_notional=500)

    eng.add_route("btc-ss", "BTC/USDT", 2, 6, [leg(0, "mexc_spot", "0.0005", 1), leg(1, "gateio_spot", "0.001", 1)])
    eng.add_route("btc-sp", "BTC/USDT", 2, 6, [leg(1, "gateio_spot", "0.001", 1),
                                                leg(2, "gateio_futures", "0.0005", 100)])
    got = eng.evaluate(books[1], NOW)
    n_emit = 0 if got is None else len(got)
    assert n_emit == (2 if case == "emit" else 0), got
    return eng, books[1], n_emit


def _bench(case: str, quick: bool) -> dict:
    eng, book, n_emit = _setup(case)
    reset = case == "emit"
    inner, repeats = (200, 50) if quick else (1000, 300)
    eng.bench_ns(book, NOW, inner * 10, reset)  # warm-up
    c_samples = [eng.bench_ns(book, NOW, inner, reset) / inner for _ in range(repeats)]
    c = summarize(c_samples)

    if reset:
        def call():
            eng.reset_dedup()
            return eng.evaluate(book, NOW)
    else:
        def call():
            return eng.evaluate(book, NOW)
    py = summarize(per_call_ns(call, inner=inner, repeats=repeats // 2))
    evaluations0 = eng.evaluations
    eng.bench_ns(book, NOW, 1, reset)
    return {
        "name": "arb_eval_%s" % case,
        "median_ns": c["median_ns"],
        "p99_ns": c["p99_ns"],
        "target_ns": TARGET_NS,
        "samples": c["samples"],
        "batch": inner,
        "level": "C loop over on_book_update (ArbEngine.bench_ns)",
        "python_call_median_ns": py["median_ns"],
        "python_call_p99_ns": py["p99_ns"],
        "pairs_evaluated_per_update": eng.evaluations - evaluations0,
        "opportunities_per_update": n_emit,
        "levels_per_side": 20,
    }


def bench_arb_eval_emit(quick: bool) -> dict:
    return _bench("emit", quick)


def bench_arb_eval_walk(quick: bool) -> dict:
    return _bench("walk", quick)


def bench_arb_eval_noedge(quick: bool) -> dict:
    return _bench("noedge", quick)


bench_arb_eval_emit.bench_name = "arb_eval_emit"
bench_arb_eval_walk.bench_name = "arb_eval_walk"
bench_arb_eval_noedge.bench_name = "arb_eval_noedge"
BENCHMARKS = [bench_arb_eval_emit, bench_arb_eval_walk, bench_arb_eval_noedge]
