"""_core building blocks: symbol maps, decimal parsing, book updates (issue 3 targets).

symbol_map       venue string -> symbol id and symbol id -> venue string on a MEXC-sized map
                 (2,000 instruments + the BTC pairs). ``symbol_map``: from Python
                 (SymbolMap.id_of / name_of, the slower of the two is the headline), side by side
                 with a plain dict lookup and the seeds' claimed 947 ns; ``symbol_map_c``: the
                 Cython-level ``find`` / ``venue_name`` in a C loop (SymbolMap.bench_find /
                 bench_venue_name, one timed call over many lookups).
decimal_parse    real price and size strings from the venue samples parsed at the instrument
                 scales in a C loop (fixedpoint.bench_parse_fields); per field. Side by side:
                 fixedpoint.parse from Python and decimal.Decimal(s).scaleb(k) (the seeds' way).
book_apply       a 4-level delta (2 bids, 2 asks: quantity changes, a delete and a re-insert
                 near the touch) on a 400-level book, C loop over Book.apply_levels
                 (Book.bench_apply). Extra: deltas at random depths, and the same deltas through
                 BookSync.on_update (sequence checks included).
book_apply_deep  4- and 2-level deltas at uniform random depths of a 1,000-level-a-side book
                 (deletes re-inserted in the next delta), C loop over Book.apply_levels.
"""
from __future__ import annotations

import random
import time
from decimal import Decimal

from _timing import per_call_ns, summarize

SEEDS_SYMBOL_NS = 947


# ---- symbol_map -----------------------------------------------------------------------------------

def _registry(n_extra: int = 2000):
    from cexnode._core.symbols import SymbolRegistry

    r = SymbolRegistry()
    for i in range(n_extra):
        base = "TK%04d" % i
        r.add_instrument({"venue": "mexc_spot", "symbol": "%s/USDT" % base, "venue_symbol": "%sUSDT" % base,
                          "tick": "0.0001", "qty_step": "0.01"})
    r.add_instrument({"venue": "mexc_spot", "symbol": "BTC/USDT", "venue_symbol": "BTCUSDT",
                      "tick": "0.01", "qty_step": "0.000001"})
    r.add_instrument({"venue": "mexc_spot", "symbol": "ETH/USDT", "venue_symbol": "ETHUSDT",
                      "tick": "0.01", "qty_step": "0.00001"})
    return r.freeze()


def _samples_c(fn, repeats, total_per_call):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / total_per_call)
    return out


def bench_symbol_map(quick: bool):
    reg = _registry(500 if quick else 2000)
    m = reg.map("mexc_spot")
    names = m.venue_symbols()
    rnd = random.Random(7)
    probe = rnd.sample(names, 256)
    probe_b = [n.encode() for n in probe]
    ids = [m.id_of(n) for n in probe]
    peer = {n: i for n, i in zip(names, (m.id_of(x) for x in names))}
    inner, repeats = (200, 40) if quick else (2000, 200)

    # Python: one call per lookup, the same hot key (as a parser resolving its subscribed symbol)
    # and cycling over 256 keys (cache-cold-ish)
    name, name_b, sid = "BTCUSDT", b"BTCUSDT", m.id_of("BTCUSDT")
    id_of, name_of = m.id_of, m.name_of
    py_find_str = summarize(per_call_ns(lambda: id_of(name), inner, repeats))
    py_find_bytes = summarize(per_call_ns(lambda: id_of(name_b), inner, repeats))
    py_name = summarize(per_call_ns(lambda: name_of(sid), inner, repeats))
    dict_get = peer.get
    py_dict = summarize(per_call_ns(lambda: dict_get(name), inner, repeats))
    # loop overhead of per_call_ns itself (a lambda returning a constant): reported, not subtracted
    empty = summarize(per_call_ns(lambda: None, inner, repeats))

    def cycle_find():
        for n in probe:
            id_of(n)

    def cycle_name():
        for i in ids:
            name_of(i)
    py_find_cycle = summarize(_samples_c(cycle_find, repeats, len(probe)))
    py_name_cycle = summarize(_samples_c(cycle_name, repeats, len(ids)))

    c_rep = 200 if quick else 2000
    m.bench_find(probe_b, 10)
    c_find = summarize(_samples_c(lambda: m.bench_find(probe_b, c_rep), 30 if quick else 100, len(probe_b) * c_rep))
    c_name = summarize(_samples_c(lambda: m.bench_venue_name(ids, c_rep), 30 if quick else 100, len(ids) * c_rep))
    assert m.bench_find(probe_b, 1) == (len(probe_b), len(probe_b))

    py_med = max(py_find_str["median_ns"], py_name["median_ns"])
    py_p99 = max(py_find_str["p99_ns"], py_name["p99_ns"])
    c_med = max(c_find["median_ns"], c_name["median_ns"])
    c_p99 = max(c_find["p99_ns"], c_name["p99_ns"])
    common = {"instruments": len(m), "seeds_claimed_ns": SEEDS_SYMBOL_NS}
    return [
        dict(common, name="symbol_map", median_ns=py_med, p99_ns=py_p99, target_ns=60,
             level="Python call: SymbolMap.id_of(str) / name_of(int), slower of the two",
             py_id_of_str_median_ns=py_find_str["median_ns"], py_id_of_bytes_median_ns=py_find_bytes["median_ns"],
             py_name_of_median_ns=py_name["median_ns"],
             py_id_of_256_keys_median_ns=py_find_cycle["median_ns"],
             py_name_of_256_ids_median_ns=py_name_cycle["median_ns"],
             peer_dict_get_median_ns=py_dict["median_ns"], timing_loop_overhead_ns=empty["median_ns"],
             speedup_vs_seeds_claim=round(SEEDS_SYMBOL_NS / py_med, 1), samples=py_find_str["samples"],
             batch=inner),
        dict(common, name="symbol_map_c", median_ns=c_med, p99_ns=c_p99, target_ns=10,
             level="Cython: SymbolMap.find(const char*, n) / venue_name(id) in a C loop over 256 keys",
             c_find_median_ns=c_find["median_ns"], c_venue_name_median_ns=c_name["median_ns"],
             speedup_vs_seeds_claim=round(SEEDS_SYMBOL_NS / c_med, 1), samples=c_find["samples"],
             batch=len(probe_b) * c_rep),
    ]


bench_symbol_map.bench_name = "symbol_map"


# ---- decimal_parse --------------------------------------------------------------------------------

# Real strings from tests/resources/core and the shared reference samples (Gate spot obu/updates,
# MEXC aggre depth, Gate futures obu, ccxt MEXC depth); BTC group scales: price 2, qty 8.
PRICES = ["115765.1", "115764.2", "115763.3", "115765.2", "115765.9", "115769.4", "115576.7", "115275.2",
          "115717.7", "115731.3", "115733.8", "115745.7", "29291.4", "61759.73", "114838.84", "115198.74",
          "45995.47", "45995.48", "83705.9", "83706", "83702.2", "83702.1", "96186.9", "97478.7"]
SIZES = ["0.337839", "0.005", "0.004365", "0.631155", "0.001534", "0.005014", "0.050772", "0.000039",
         "0", "0.687304", "0.000864", "0.025922", "0.5124", "0.0001778", "0.000101", "0.068865",
         "10.337165", "13.457322", "30166", "4208", "62", "10500", "22", "2703.17"]


def bench_decimal_parse(quick: bool):
    from cexnode._core import fixedpoint

    px_buf, sz_buf = " ".join(PRICES).encode(), " ".join(SIZES).encode()
    rep = 2000 if quick else 20000
    fixedpoint.bench_parse_fields(px_buf, 2, 100)
    n_fields = len(PRICES) + len(SIZES)

    def both():
        fixedpoint.bench_parse_fields(px_buf, 2, rep)
        fixedpoint.bench_parse_fields(sz_buf, 8, rep)
    c = summarize(_samples_c(both, 30 if quick else 150, n_fields * rep))
    c_px = summarize(_samples_c(lambda: fixedpoint.bench_parse_fields(px_buf, 2, rep), 30, len(PRICES) * rep))
    c_sz = summarize(_samples_c(lambda: fixedpoint.bench_parse_fields(sz_buf, 8, rep), 30, len(SIZES) * rep))

    parse = fixedpoint.parse
    bprices = [p.encode() for p in PRICES]

    def py_loop():
        for p in bprices:
            parse(p, 2)
    py = summarize(_samples_c(py_loop, 100 if quick else 500, len(bprices)))

    def dec_loop():
        for p in PRICES:
            int(Decimal(p).scaleb(2))
    dec = summarize(_samples_c(dec_loop, 100 if quick else 500, len(PRICES)))
    assert [parse(p, 2) for p in PRICES] == [int(Decimal(p).scaleb(2)) for p in PRICES]
    return {
        "name": "decimal_parse", "median_ns": c["median_ns"], "p99_ns": c["p99_ns"], "target_ns": 25,
        "level": "Cython: parse_decimal(const char*, n, scale) in a C loop, per field",
        "fields": n_fields, "c_price_median_ns": c_px["median_ns"], "c_size_median_ns": c_sz["median_ns"],
        "py_parse_bytes_median_ns": py["median_ns"], "peer_decimal_scaleb_median_ns": dec["median_ns"],
        "speedup_vs_decimal": round(dec["median_ns"] / c["median_ns"], 1),
        "samples": c["samples"], "batch": n_fields * rep,
    }


bench_decimal_parse.bench_name = "decimal_parse"


# ---- book_apply -----------------------------------------------------------------------------------

def _book_400():
    from cexnode._core.book import Book

    b = Book(0, 0, 400)
    mid = 6_500_000
    bids = [(mid - 5 - 10 * k, 1000 + k) for k in range(400)]
    asks = [(mid + 5 + 10 * k, 1000 + k) for k in range(400)]
    b.py_apply(bids, asks, full=True, last_id=1)
    return b, mid


def _near_touch_deltas(mid):
    # 4 levels each: quantity change at the touch, delete at level 2, re-insert it in the next delta
    b0, b1, b2 = mid - 5, mid - 15, mid - 25
    a0, a1, a2 = mid + 5, mid + 15, mid + 25
    return [
        ([(b0, 2000), (b2, 0)], [(a0, 2000), (a2, 0)]),
        ([(b0, 1000), (b2, 1002)], [(a0, 1000), (a2, 1002)]),
        ([(b1, 3000), (b0, 1500)], [(a1, 3000), (a0, 1500)]),
        ([(b1, 1001), (b0, 1000)], [(a1, 1001), (a0, 1000)]),
    ]


def _random_depth_deltas(mid, n=64):
    rnd = random.Random(3)
    out = []
    for _ in range(n):
        kb, ka = rnd.sample(range(400), 2), rnd.sample(range(400), 2)
        out.append(([(mid - 5 - 10 * k, 500 + rnd.randrange(1000)) for k in kb],
                    [(mid + 5 + 10 * k, 500 + rnd.randrange(1000)) for k in ka]))
    # delete + re-insert pairs deep in the book (memmove of the worse part)
    for k in (50, 150, 250, 350):
        out.append(([(mid - 5 - 10 * k, 0), (mid - 5 - 10 * (k + 1), 0)], [(mid + 5 + 10 * k, 0), (mid + 5 + 10 * (k + 1), 0)]))
        out.append(([(mid - 5 - 10 * k, 7), (mid - 5 - 10 * (k + 1), 7)], [(mid + 5 + 10 * k, 7), (mid + 5 + 10 * (k + 1), 7)]))
    return out


def bench_book_apply(quick: bool):
    from cexnode._core.book import BookSync, SYNC_SNAPSHOT_DIFF

    book, mid = _book_400()
    near = _near_touch_deltas(mid)
    rand = _random_depth_deltas(mid)
    rep = 2000 if quick else 20000
    n_samples = 30 if quick else 200
    book.bench_apply(near, 100)
    c = summarize([book.bench_apply(near, rep) / (rep * len(near)) for _ in range(n_samples)])
    assert book.counts() == (400, 400)
    rrep = max(1, rep // 16)
    cr = summarize([book.bench_apply(rand, rrep) / (rrep * len(rand)) for _ in range(n_samples)])
    assert book.counts() == (400, 400)

    book2, _ = _book_400()
    sync = BookSync(book2, SYNC_SNAPSHOT_DIFF, 16)
    sync.py_snapshot(1, *book2.top())
    sync.bench_updates(near, 100)
    cs = summarize([sync.bench_updates(near, rep) / (rep * len(near)) for _ in range(n_samples)])
    assert book2.in_sync and sync.resyncs == 0 and book2.counts() == (400, 400)

    py_book, _ = _book_400()
    py = summarize(per_call_ns(lambda: py_book.py_apply(*near[0]), 200, 100 if quick else 300))
    return {
        "name": "book_apply", "median_ns": c["median_ns"], "p99_ns": c["p99_ns"], "target_ns": 150,
        "level": "Cython: Book.apply_levels on a 4-level delta near the touch, 400 levels a side (C loop)",
        "random_depth_median_ns": cr["median_ns"], "random_depth_p99_ns": cr["p99_ns"],
        "via_booksync_on_update_median_ns": cs["median_ns"],
        "py_apply_call_median_ns": py["median_ns"],
        "levels_per_side": 400, "levels_per_delta": 4, "samples": c["samples"], "batch": rep * len(near),
    }


bench_book_apply.bench_name = "book_apply"


# ---- book_apply_deep ------------------------------------------------------------------------------

def _deep_deltas(mid, levels, n=256):
    # 4 levels each at uniform random depths over the whole book: quantity changes, and deletes
    # paired with re-inserts in the next delta so that the book keeps its size
    rnd = random.Random(5)
    out = []
    for _ in range(n // 2):
        kb, ka = rnd.sample(range(levels), 2), rnd.sample(range(levels), 2)
        q = 500 + rnd.randrange(1000)
        out.append(([(mid - 5 - 10 * kb[0], q), (mid - 5 - 10 * kb[1], 0)],
                    [(mid + 5 + 10 * ka[0], q), (mid + 5 + 10 * ka[1], 0)]))
        out.append(([(mid - 5 - 10 * kb[1], q + 1)], [(mid + 5 + 10 * ka[1], q + 1)]))
    return out


def bench_book_apply_deep(quick: bool):
    from cexnode._core.book import Book

    levels, mid = 1000, 6_500_000
    book = Book(0, 0, 100)                     # depth 100 read by arbitrage; 1,000 levels kept a side
    book.py_apply([(mid - 5 - 10 * k, 1000 + k) for k in range(levels)],
                  [(mid + 5 + 10 * k, 1000 + k) for k in range(levels)], full=True, last_id=1)
    deltas = _deep_deltas(mid, levels)
    rep = 100 if quick else 1000
    n_samples = 30 if quick else 200
    book.bench_apply(deltas, 10)
    c = summarize([book.bench_apply(deltas, rep) / (rep * len(deltas)) for _ in range(n_samples)])
    assert book.counts() == (levels, levels)
    return {
        "name": "book_apply_deep", "median_ns": c["median_ns"], "p99_ns": c["p99_ns"], "target_ns": None,
        "level": "Cython: Book.apply_levels, updates spread uniformly over 1,000 levels a side (C loop)",
        "levels_per_side": levels, "levels_per_delta": "4 or 2", "samples": c["samples"],
        "batch": rep * len(deltas),
    }


bench_book_apply_deep.bench_name = "book_apply_deep"

BENCHMARKS = [bench_symbol_map, bench_decimal_parse, bench_book_apply, bench_book_apply_deep]
