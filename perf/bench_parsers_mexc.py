"""mexc_parse_apply: one MEXC publicAggreDepths push (binary protobuf, 4 levels) decoded and applied.

Frames: a BTCUSDT diff stream encoded with the official protobuf runtime (cexnode/sim/venues/mexc_spot/proto.py
encode_aggre_depth),
consecutive fromVersion/toVersion, 2 bids + 2 asks per push (updates, deletes and inserts near the
touch of a 20-level book), the real wire shape (channel, symbol, sendTime, eventType).

Measured side by side on the same frames in one run:
- ours, C loop: MexcSpotParser.feed -> BookSyncSink -> BookSync.on_update (sequence rule + Book),
  timed per batch of frames with MexcSpotParser.bench_feed (median/p99 of the per-frame batch means);
- ours, Python call: parser.feed_bytes(frame, True, 0) per frame from Python;
- peer "protobuf + Decimal dict book": PushDataV3ApiWrapper.FromString (upb) + version check +
  Decimal(price)/Decimal(qty) into a dict per side (the usual Python pipeline);
- peer "protobuf + our Book": FromString + fixedpoint.parse into int mantissas + Book.py_apply.
Each frame is fed exactly once per pass (versions must advance); BookSync.applied is checked.
"""
from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal

from _timing import summarize

TARGET_NS = 800
CHANNEL = "spot@public.aggre.depth.v3.api.pb@10ms@BTCUSDT"


def _frames(n: int, seed: int = 7):
    from cexnode.sim.venues.mexc_spot import proto as mp

    rng = random.Random(seed)
    bids = {6_500_000 - 10 * k: rng.randint(1, 500) * 1000 for k in range(1, 21)}   # price_scale 2
    asks = {6_500_000 + 10 * k: rng.randint(1, 500) * 1000 for k in range(1, 21)}   # qty_scale 8
    v0 = 80_000_000_000
    snapshot = (v0, sorted(bids.items(), reverse=True), sorted(asks.items()))
    frames = []
    v = v0
    for _ in range(n):
        body = {"bids": [], "asks": [], "eventType": "spot@public.aggre.depth.v3.api.pb@10ms"}
        for side, book, sign in (("bids", bids, -1), ("asks", asks, 1)):
            touch = max(book) if sign < 0 else min(book)
            for _ in range(2):
                r = rng.random()
                if r < 0.6 and book:            # update a level near the touch
                    px = sorted(book, reverse=sign < 0)[rng.randrange(min(5, len(book)))]
                    q = rng.randint(1, 900) * 1000
                elif r < 0.8 and len(book) > 10:  # delete one
                    px = sorted(book, reverse=sign < 0)[rng.randrange(min(8, len(book)))]
                    q = 0
                else:                           # insert behind the touch
                    px = touch + sign * 10 * rng.randint(1, 25)
                    q = rng.randint(1, 900) * 1000
                if q:
                    book[px] = q
                else:
                    book.pop(px, None)
                body[side].append({"price": "%d.%02d" % divmod(px, 100), "quantity": "%d.%08d" % divmod(q, 10**8)})
        body["fromVersion"] = str(v + 1)
        body["toVersion"] = str(v + rng.randint(1, 3))
        v = int(body["toVersion"])
        frames.append(mp.encode_aggre_depth(
            CHANNEL, "BTCUSDT", [(x["price"], x["quantity"]) for x in body["bids"]],
            [(x["price"], x["quantity"]) for x in body["asks"]], body["fromVersion"], body["toVersion"],
            event_type=body["eventType"], send_time=1_782_208_005_090 + len(frames)))
    return snapshot, frames


def _ours(snapshot, frames, batch):
    from cexnode._core import symbols as S
    from cexnode._core.book import Book, BookSync, SYNC_SNAPSHOT_DIFF
    from cexnode._core.parsers.mexc_spot import BookSyncSink, MexcSpotParser

    reg = S.SymbolRegistry()
    reg.add_instrument({"venue": "mexc_spot", "symbol": "BTC/USDT", "venue_symbol": "BTCUSDT", "tick": "0.01",
                        "qty_step": "0.000001"})
    reg.freeze()
    m = reg.map("mexc_spot")
    assert (m.instrument("BTCUSDT")["price_scale"], m.instrument("BTCUSDT")["qty_scale"]) == (2, 8)

    def fresh():
        book = Book(m.id_of("BTCUSDT"), m.venue)
        sync = BookSync(book, SYNC_SNAPSHOT_DIFF)
        sync.py_snapshot(snapshot[0], snapshot[1], snapshot[2])
        return sync, MexcSpotParser(m, BookSyncSink({book.symbol_id: sync}))

    sync, p = fresh()                           # warm-up pass
    p.bench_feed(frames, 1)
    # applied counts the snapshot too
    assert sync.applied == len(frames) + 1 and sync.resyncs == 0 and p.errors == 0, (sync.applied, sync.resyncs)
    sync, p = fresh()
    samples = [p.bench_feed(frames[i:i + batch], 1) / batch for i in range(0, len(frames) - batch + 1, batch)]
    assert sync.applied == len(frames) - len(frames) % batch + 1 and sync.resyncs == 0
    top = sync.book.top(3)

    sync, p = fresh()
    feed = p.feed_bytes
    py = []
    pc = time.perf_counter_ns
    for i in range(0, len(frames) - batch + 1, batch):
        chunk = frames[i:i + batch]
        t0 = pc()
        for f in chunk:
            feed(f, True, 0)
        py.append((pc() - t0) / batch)
    assert sync.applied == len(frames) - len(frames) % batch + 1
    return summarize(samples), summarize(py), top


def _peer_decimal(snapshot, frames, batch):
    from cexnode.sim.venues.mexc_spot.proto import PushDataV3ApiWrapper

    parse = PushDataV3ApiWrapper.FromString
    bids = {Decimal(px) / 100: Decimal(q) / 10**8 for px, q in snapshot[1]}
    asks = {Decimal(px) / 100: Decimal(q) / 10**8 for px, q in snapshot[2]}
    state = {"last": snapshot[0]}

    def apply(frame):
        msg = parse(frame)
        body = msg.publicAggreDepths
        first, last = int(body.fromVersion), int(body.toVersion)
        if last <= state["last"]:
            return
        if first != state["last"] + 1:
            raise RuntimeError("gap")
        for lv in body.bids:
            p, q = Decimal(lv.price), Decimal(lv.quantity)
            if q:
                bids[p] = q
            else:
                bids.pop(p, None)
        for lv in body.asks:
            p, q = Decimal(lv.price), Decimal(lv.quantity)
            if q:
                asks[p] = q
            else:
                asks.pop(p, None)
        state["last"] = last

    return _timed(apply, frames, batch), (max(bids), min(asks))


def _peer_book(snapshot, frames, batch):
    from cexnode._core.book import Book
    from cexnode._core.fixedpoint import parse as dparse
    from cexnode.sim.venues.mexc_spot.proto import PushDataV3ApiWrapper

    parse = PushDataV3ApiWrapper.FromString
    book = Book(0, 0)
    book.py_apply(snapshot[1], snapshot[2], full=True, first_id=snapshot[0], last_id=snapshot[0])

    def apply(frame):
        body = parse(frame).publicAggreDepths
        first, last = int(body.fromVersion), int(body.toVersion)
        if first != book.last_id + 1:
            raise RuntimeError("gap")
        book.py_apply([(dparse(x.price, 2), dparse(x.quantity, 8)) for x in body.bids],
                      [(dparse(x.price, 2), dparse(x.quantity, 8)) for x in body.asks],
                      first_id=first, last_id=last)

    return _timed(apply, frames, batch), book.top(3)


def _timed(fn, frames, batch):
    pc = time.perf_counter_ns
    out = []
    for i in range(0, len(frames) - batch + 1, batch):
        chunk = frames[i:i + batch]
        t0 = pc()
        for f in chunk:
            fn(f)
        out.append((pc() - t0) / batch)
    return summarize(out)


def mexc_parse_apply(quick: bool) -> dict:
    n, batch = (20_000, 500) if quick else (200_000, 1000)
    snapshot, frames = _frames(n)
    c, py, top = _ours(snapshot, frames, batch)
    dec, dec_top = _peer_decimal(snapshot, frames, batch)
    pbk, pbk_top = _peer_book(snapshot, frames, batch)
    assert pbk_top == top, (pbk_top, top)       # same stream, same book
    assert (dec_top[0] * 100, dec_top[1] * 100) == (top[0][0][0], top[1][0][0])
    return {
        "name": "mexc_parse_apply",
        "median_ns": c["median_ns"],
        "p99_ns": c["p99_ns"],
        "target_ns": TARGET_NS,
        "samples": c["samples"],
        "batch": batch,
        "frames": n,
        "frame_bytes_mean": statistics.mean(len(f) for f in frames),
        "levels_per_frame": 4,
        "level": "C loop: MexcSpotParser.feed -> BookSyncSink -> BookSync.on_update (bench_feed)",
        "python_call_median_ns": py["median_ns"],
        "python_call_p99_ns": py["p99_ns"],
        "peer_protobuf_decimal_dict_median_ns": dec["median_ns"],
        "peer_protobuf_decimal_dict_p99_ns": dec["p99_ns"],
        "peer_protobuf_our_book_median_ns": pbk["median_ns"],
        "peer_protobuf_our_book_p99_ns": pbk["p99_ns"],
        "ratio_vs_protobuf_decimal_dict": dec["median_ns"] / c["median_ns"],
        "ratio_vs_protobuf_our_book": pbk["median_ns"] / c["median_ns"],
        "ratio_python_call_vs_protobuf_decimal_dict": dec["median_ns"] / py["median_ns"],
        "target_ratio": 10.0,
        "ratio_met": bool(dec["median_ns"] / c["median_ns"] >= 10.0 and pbk["median_ns"] / c["median_ns"] >= 10.0),
    }


mexc_parse_apply.bench_name = "mexc_parse_apply"
BENCHMARKS = [mexc_parse_apply]
