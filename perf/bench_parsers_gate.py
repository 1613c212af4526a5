"""gate_spot_parse_apply: one Gate spot.order_book_update push (JSON text, 4 levels) parsed and applied.

Frames: a BTC_USDT diff stream in the real wire shape (time, time_ms, channel, event, result with
t, e, E, s, U, u, b, a; compact JSON as Gate sends it), consecutive U/u, 2 bids + 2 asks per push
(updates, deletes and inserts near the touch of a 20-level book).

Measured side by side on the same frames in one run:
- ours, C loop: GateSpotParser.feed -> BookSyncSink -> BookSync.on_update (sequence rule + Book),
  timed per batch of frames with GateSpotParser.bench_feed (median/p99 of the per-frame batch means);
- ours, Python call: parser.feed_bytes(frame) per frame from Python;
- orjson.loads alone on the same frames (no book, no numbers converted): the bar "faster than
  orjson.loads";
- peer "cryptofeed-style": orjson.loads + sequence check + Decimal(price)/Decimal(size) into a dict
  per side (cryptofeed's Gate handler shape, with a plain dict standing in for its `order_book`
  SortedDict when that C extension is not installed);
- peer "orjson + our Book": orjson.loads + fixedpoint.parse into mantissas + Book.py_apply;
- peers from the optional `.venv-peers` (`make bench-peers`; never needed by `make test`):
  nautilus_trader's OrderBook (orjson + Price/Quantity.from_str + OrderBookDelta + apply_delta) and
  the cryptofeed-style pipeline on the real `order_book` C extension SortedDict; reported as
  "not installed" when run from .venv.
Each frame is fed exactly once per pass (ids must advance); BookSync.applied is checked, and every
pipeline must end with the same top of book.
"""
from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal

from _timing import summarize

TARGET_NS = 800
SYMBOL = "BTC_USDT"


def _frames(n: int, seed: int = 7):
    import orjson

    rng = random.Random(seed)
    bids = {291_000 - k: rng.randint(1, 500) * 100 for k in range(1, 21)}       # price_scale 1
    asks = {291_000 + k: rng.randint(1, 500) * 100 for k in range(1, 21)}       # qty_scale 8, 6 decimals sent
    u0 = 13_934_528_633
    snapshot = (u0, sorted(bids.items(), reverse=True), sorted(asks.items()))
    frames = []
    u = u0
    t = 1_682_689_045_398
    for i in range(n):
        res = {"t": t + i, "e": "depthUpdate", "E": (t + i) // 1000, "s": SYMBOL, "U": u + 1, "u": u + 1, "b": [], "a": []}
        for side, book, sign in (("b", bids, -1), ("a", asks, 1)):
            touch = max(book) if sign < 0 else min(book)
            for _ in range(2):
                r = rng.random()
                if r < 0.6 and book:
                    px = sorted(book, reverse=sign < 0)[rng.randrange(min(5, len(book)))]
                    q = rng.randint(1, 900) * 100
                elif r < 0.8 and len(book) > 10:
                    px = sorted(book, reverse=sign < 0)[rng.randrange(min(8, len(book)))]
                    q = 0
                else:
                    px = touch + sign * rng.randint(1, 25)
                    q = rng.randint(1, 900) * 100
                if q:
                    book[px] = q
                else:
                    book.pop(px, None)
                qs = "0" if q == 0 else ("%d.%08d" % divmod(q, 10**8)).rstrip("0")
                res[side].append(["%d.%d" % divmod(px, 10), qs])
        res["u"] = u + rng.randint(1, 3)
        u = res["u"]
        frames.append(orjson.dumps({"time": (t + i) // 1000, "time_ms": t + i + 150, "channel": "spot.order_book_update",
                                    "event": "update", "result": res}))
    return snapshot, frames


def _registry():
    from cexnode._core import symbols as S

    reg = S.SymbolRegistry()
    reg.add_instrument({"venue": "gateio_spot", "symbol": "BTC/USDT", "venue_symbol": SYMBOL, "tick": "0.1",
                        "qty_step": "0.000001"})
    reg.freeze()
    m = reg.map("gateio_spot")
    assert (m.instrument(SYMBOL)["price_scale"], m.instrument(SYMBOL)["qty_scale"]) == (1, 8)
    return m


def _ours(snapshot, frames, batch):
    from cexnode._core.book import Book, BookSync, SYNC_SNAPSHOT_DIFF
    from cexnode._core.parsers.gateio_spot import GateSpotParser
    from cexnode._core.parsers.recording import BookSyncSink

    m = _registry()

    def fresh():
        book = Book(m.id_of(SYMBOL), m.venue)
        sync = BookSync(book, SYNC_SNAPSHOT_DIFF)
        sync.py_snapshot(snapshot[0], snapshot[1], snapshot[2])
        return sync, GateSpotParser(m, BookSyncSink({book.symbol_id: sync}))

    sync, p = fresh()                           # warm-up pass
    p.bench_feed(frames, 1)
    assert sync.applied == len(frames) + 1 and sync.resyncs == 0 and p.errors == 0, (sync.applied, p.last_error)
    sync, p = fresh()
    samples = [p.bench_feed(frames[i:i + batch], 1) / batch for i in range(0, len(frames) - batch + 1, batch)]
    used = len(frames) - len(frames) % batch
    assert sync.applied == used + 1 and sync.resyncs == 0
    top = sync.book.top(3)

    sync, p = fresh()
    feed = p.feed_bytes
    py = []
    pc = time.perf_counter_ns
    for i in range(0, len(frames) - batch + 1, batch):
        chunk = frames[i:i + batch]
        t0 = pc()
        for f in chunk:
            feed(f)
        py.append((pc() - t0) / batch)
    assert sync.applied == used + 1 and sync.book.top(3) == top
    return summarize(samples), summarize(py), top, used


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


def _orjson_alone(frames, batch):
    import orjson

    return _timed(orjson.loads, frames, batch)


def _peer_cryptofeed(snapshot, frames, batch):
    """The per-message work of cryptofeed's Gate.io ``_process_l2_book`` (exchanges/gateio.py):
    orjson.loads, venue -> standard symbol lookup, update-id check, ``t / 1000``, Decimal price and
    amount per level into the side's book (delete on 0) and a ``delta`` of the changes; the final
    ``book_callback`` (OrderBook object construction, user callbacks) is NOT included. A plain dict
    stands in for the ``order_book`` SortedDict C extension (cheaper, so the peer is flattered)."""
    import orjson

    symbols = {SYMBOL: "BTC-USDT"}
    books = {"BTC-USDT": {"bid": {Decimal(px) / 10: Decimal(q) / 10**8 for px, q in snapshot[1]},
                          "ask": {Decimal(px) / 10: Decimal(q) / 10**8 for px, q in snapshot[2]}}}
    last_id = {"BTC-USDT": snapshot[0]}
    sink = []

    def apply(frame):
        msg = orjson.loads(frame)
        r = msg["result"]
        symbol = symbols[r["s"]]
        first, last = r["U"], r["u"]
        if last <= last_id[symbol]:
            return
        if first != last_id[symbol] + 1:
            raise RuntimeError("gap")
        ts = r["t"] / 1000
        book = books[symbol]
        delta = {"bid": [], "ask": []}
        for s, side in (("b", "bid"), ("a", "ask")):
            levels = book[side]
            for update in r[s]:
                price = Decimal(update[0])
                amount = Decimal(update[1])
                if amount == 0:
                    if price in levels:
                        del levels[price]
                        delta[side].append((price, amount))
                else:
                    levels[price] = amount
                    delta[side].append((price, amount))
        last_id[symbol] = last
        sink.append((ts, delta))
        if len(sink) > 64:
            sink.clear()

    out = _timed(apply, frames, batch)
    b = books["BTC-USDT"]
    return out, (max(b["bid"]), min(b["ask"]))


def _peer_our_book(snapshot, frames, batch):
    import orjson

    from cexnode._core.book import Book
    from cexnode._core.fixedpoint import parse as dparse

    book = Book(0, 1)
    book.py_apply(snapshot[1], snapshot[2], full=True, first_id=snapshot[0], last_id=snapshot[0])

    def apply(frame):
        r = orjson.loads(frame)["result"]
        first, last = r["U"], r["u"]
        if first != book.last_id + 1:
            raise RuntimeError("gap")
        book.py_apply([(dparse(p, 1), dparse(q, 8)) for p, q in r["b"]],
                      [(dparse(p, 1), dparse(q, 8)) for p, q in r["a"]], first_id=first, last_id=last)

    return _timed(apply, frames, batch), book.top(3)


def _installed(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def _peer_nautilus(snapshot, frames, batch):
    """nautilus_trader's L2 OrderBook (Rust core behind Cython) fed the way a nautilus data client
    does it: decode the JSON (orjson here; nautilus uses msgspec), sequence check, one
    ``OrderBookDelta`` per level with ``Price``/``Quantity`` parsed from the venue strings
    (DELETE for "0", UPDATE otherwise), ``book.apply_delta``."""
    import orjson
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.data import BookOrder, OrderBookDelta
    from nautilus_trader.model.enums import BookAction, BookType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.objects import Price, Quantity

    iid = InstrumentId.from_str("BTC_USDT.GATEIO")
    book = OrderBook(iid, BookType.L2_MBP)
    seq = [0]

    def delta(action, side, px, q, ts):
        seq[0] += 1
        return OrderBookDelta(iid, action, BookOrder(side, px, q, 0), 0, seq[0], ts, ts)

    for side, levels in ((OrderSide.BUY, snapshot[1]), (OrderSide.SELL, snapshot[2])):
        for px, q in levels:
            book.apply_delta(delta(BookAction.ADD, side, Price(px / 10, 1), Quantity(q / 10**8, 8), 0))
    last_id = [snapshot[0]]
    buy, sell, upd, dele = OrderSide.BUY, OrderSide.SELL, BookAction.UPDATE, BookAction.DELETE

    def apply(frame):
        r = orjson.loads(frame)["result"]
        first, last = r["U"], r["u"]
        if last <= last_id[0]:
            return
        if first != last_id[0] + 1:
            raise RuntimeError("gap")
        ts = r["t"] * 1_000_000
        for key, side in (("b", buy), ("a", sell)):
            for p, q in r[key]:
                if q == "0":
                    book.apply_delta(delta(dele, side, Price.from_str(p), Quantity.from_str("0"), ts))
                else:
                    book.apply_delta(delta(upd, side, Price.from_str(p), Quantity.from_str(q), ts))
        last_id[0] = last

    out = _timed(apply, frames, batch)
    return out, (Decimal(str(book.best_bid_price())), Decimal(str(book.best_ask_price())))


def _peer_cryptofeed_sorted(snapshot, frames, batch):
    """The cryptofeed-style pipeline with cryptofeed's real book container: the ``order_book`` C
    extension's SortedDict per side (what cryptofeed's ``OrderBook`` wraps)."""
    import orjson
    from order_book import OrderBook

    ob = OrderBook()
    for px, q in snapshot[1]:
        ob.bids[Decimal(px) / 10] = Decimal(q) / 10**8
    for px, q in snapshot[2]:
        ob.asks[Decimal(px) / 10] = Decimal(q) / 10**8
    last_id = [snapshot[0]]
    sides = (("b", ob.bids), ("a", ob.asks))
    sink = []

    def apply(frame):
        r = orjson.loads(frame)["result"]
        first, last = r["U"], r["u"]
        if last <= last_id[0]:
            return
        if first != last_id[0] + 1:
            raise RuntimeError("gap")
        ts = r["t"] / 1000
        delta = {"bid": [], "ask": []}
        for key, levels in sides:
            d = delta["bid" if key == "b" else "ask"]
            for p, q in r[key]:
                price = Decimal(p)
                amount = Decimal(q)
                if amount == 0:
                    if price in levels:
                        del levels[price]
                        d.append((price, amount))
                else:
                    levels[price] = amount
                    d.append((price, amount))
        last_id[0] = last
        sink.append((ts, delta))
        if len(sink) > 64:
            sink.clear()

    out = _timed(apply, frames, batch)
    return out, (ob.bids.index(0)[0], ob.asks.index(0)[0])


def gate_spot_parse_apply(quick: bool) -> dict:
    n, batch = (20_000, 500) if quick else (200_000, 1000)
    snapshot, frames = _frames(n)
    c, py, top, used = _ours(snapshot, frames, batch)
    oj = _orjson_alone(frames, batch)
    cf, cf_top = _peer_cryptofeed(snapshot, frames[:used], batch)
    ob, ob_top = _peer_our_book(snapshot, frames[:used], batch)
    assert ob_top == top, (ob_top, top)          # same stream, same book
    assert (cf_top[0] * 10, cf_top[1] * 10) == (top[0][0][0], top[1][0][0])
    extra = {}
    for key, name, fn in (("nautilus_trader", "nautilus_trader", _peer_nautilus),
                          ("order_book_c_extension", "order_book", _peer_cryptofeed_sorted)):
        if not _installed(name):
            extra["peer_%s" % key] = "not installed (make bench-peers)"
            continue
        res, ptop = fn(snapshot, frames[:used], batch)
        assert (ptop[0] * 10, ptop[1] * 10) == (top[0][0][0], top[1][0][0]), (key, ptop, top)
        extra["peer_%s_median_ns" % key] = res["median_ns"]
        extra["peer_%s_p99_ns" % key] = res["p99_ns"]
        extra["ratio_vs_%s" % key] = res["median_ns"] / c["median_ns"]
    ratios = [cf["median_ns"] / c["median_ns"]] + [v for k, v in extra.items() if k.startswith("ratio_vs_")]
    return {
        "name": "gate_spot_parse_apply",
        "median_ns": c["median_ns"],
        "p99_ns": c["p99_ns"],
        "target_ns": TARGET_NS,
        "samples": c["samples"],
        "batch": batch,
        "frames": n,
        "frame_bytes_mean": statistics.mean(len(f) for f in frames),
        "levels_per_frame": 4,
        "level": "C loop: GateSpotParser.feed -> BookSyncSink -> BookSync.on_update (bench_feed)",
        "python_call_median_ns": py["median_ns"],
        "python_call_p99_ns": py["p99_ns"],
        "orjson_loads_alone_median_ns": oj["median_ns"],
        "orjson_loads_alone_p99_ns": oj["p99_ns"],
        "faster_than_orjson_loads": bool(c["median_ns"] < oj["median_ns"]),
        "python_call_faster_than_orjson_loads": bool(py["median_ns"] < oj["median_ns"]),
        "peer_cryptofeed_style_orjson_decimal_dict_median_ns": cf["median_ns"],
        "peer_cryptofeed_style_orjson_decimal_dict_p99_ns": cf["p99_ns"],
        "peer_orjson_our_book_median_ns": ob["median_ns"],
        "peer_orjson_our_book_p99_ns": ob["p99_ns"],
        "ratio_vs_orjson_loads": oj["median_ns"] / c["median_ns"],
        "ratio_vs_cryptofeed_style": cf["median_ns"] / c["median_ns"],
        "ratio_vs_orjson_our_book": ob["median_ns"] / c["median_ns"],
        "ratio_python_call_vs_cryptofeed_style": cf["median_ns"] / py["median_ns"],
        "target_ratio": 10.0,
        "ratio_met": bool(min(ratios) >= 10.0),
        **extra,
    }


gate_spot_parse_apply.bench_name = "gate_spot_parse_apply"
BENCHMARKS = [gate_spot_parse_apply]
