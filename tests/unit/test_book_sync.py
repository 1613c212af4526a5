"""cexnode._core.book.BookSync: venue sequence rules, differential vs tests/reference/sync_ref.py.

Two layers:

* ``test_sync_matches_reference``: 10,000 generated streams per sync rule (snapshot+diff for Gate
  ``order_book_update`` / MEXC ``publicAggreDepths``; stream-full for Gate ``obu``). Every step's
  ApplyResult, in_sync, book contents, ids, timestamps, counters, buffer and resync callbacks equal
  the oracle. The oracle itself is checked on the way against the venue rules written out
  independently (``_check_rules``): what a synced book must do with a diff, that an out-of-sync
  book is empty and never crossed while in sync, that the buffer stays bounded and contiguous, and
  that exactly one resync request is raised per out-of-sync episode.
* per-venue tests built from the real samples in tests/resources/core (see SOURCES.md), converted
  with the instrument info's scales: pre-snapshot buffering and replay, stale diffs, duplicates,
  gaps, full resets, buffer overflow, crossed snapshots.
"""
import json
import os
import pathlib
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from cexnode._core import book as B
from cexnode._core.book import Book, BookSync
from cexnode._core.fixedpoint import parse
from cexnode._core.symbols import SymbolRegistry
from cexnode.adapters.gateio_futures import instruments as gate_futures_instruments
from reference import sync_ref as R
from reference.bytestream import ByteStream
from reference.decimal_book import RefBook, decimal_levels

RES = pathlib.Path(__file__).resolve().parents[1] / "resources" / "core"

LONG = bool(os.environ.get("CEXNODE_LONG"))
STREAMS_PER_SEED = 4

DEPTHS = [1, 2, 3, 5, 8, 400]
BUF_LIMITS = [1, 2, 3, 4, 8, 1024]
BUF_LEVEL_LIMITS = [2, 5, 12, 40, 1 << 18]
MAX_LEVELS = [0, 4, 20000]

# Generated prices: bids in [0, 30), asks in [30, 60) never cross; the "crossing" ops put a level
# on the other side of 30 so the oracle and BookSync must both detect the crossed book.
BID_BASE, ASK_BASE, HALF = 0, 30, 30


def test_enum_values_match_reference():
    assert (B.SYNC_SNAPSHOT_DIFF, B.SYNC_STREAM_FULL) == (R.SNAPSHOT_DIFF, R.STREAM_FULL)
    assert (B.APPLY_OK, B.APPLY_STALE, B.APPLY_BUFFERED, B.APPLY_RESYNC, B.APPLY_IGNORED) == \
        (R.OK, R.STALE, R.BUFFERED, R.RESYNC, R.IGNORED)
    assert (B.RESYNC_NONE, B.RESYNC_GAP, B.RESYNC_CROSSED, B.RESYNC_BUFFER_OVERFLOW,
            B.RESYNC_SNAPSHOT_STALE, B.RESYNC_REQUESTED, B.RESYNC_LEVEL_CAP) == \
        (R.R_NONE, R.R_GAP, R.R_CROSSED, R.R_OVERFLOW, R.R_SNAPSHOT_STALE, R.R_REQUESTED, R.R_LEVEL_CAP)


# --------------------------------------------------------------------------------------------------
# differential test

class _Stream:
    """Decodes bytes into a venue stream: ids move forward like the venue's, ops perturb them."""

    def __init__(self, bs: ByteStream, rule):
        self.bs = bs
        self.rule = rule
        self.seq = 1000 + bs.next(50)          # the venue's latest id
        self.prev = None                       # last diff sent (for duplicates)

    def levels(self, max_n, cross=False):
        bs = self.bs
        bids = bs.levels(max_n, HALF, 4, BID_BASE)
        asks = bs.levels(max_n, HALF, 4, ASK_BASE)
        if cross:                              # one level on the wrong side of the book
            if bs.next(2):
                bids.append((ASK_BASE + bs.next(HALF), 1 + bs.next(3)))
            else:
                asks.append((BID_BASE + bs.next(HALF), 1 + bs.next(3)))
        return bids, asks

    def next_diff(self, max_n=4, cross=False, span=None):
        span = self.bs.next(3) if span is None else span
        first, last = self.seq + 1, self.seq + 1 + span
        self.seq = last
        return first, last, self.levels(max_n, cross)


def _op(stream: _Stream, bs: ByteStream):
    """One stream event: (kind, first, last, bids, asks, full)."""
    k = bs.next(20)
    if k < 8:                                          # next contiguous diff
        first, last, (b, a) = stream.next_diff()
    elif k == 8:                                       # gap: ids skipped by the venue
        stream.seq += 1 + bs.next(3)
        first, last, (b, a) = stream.next_diff()
    elif k == 9 and stream.prev is not None:           # duplicate of the previous diff
        return ("diff",) + stream.prev
    elif k == 10:                                      # stale / old diff
        last = stream.seq - bs.next(6)
        first = last - bs.next(3)
        b, a = stream.levels(3)
    elif k == 11:                                      # overlapping diff: starts before the head
        first = stream.seq - bs.next(4)
        last = stream.seq + 1 + bs.next(3)
        stream.seq = last
        b, a = stream.levels(3)
    elif k in (12, 13) and stream.rule == R.STREAM_FULL:   # obu has no REST snapshot: full push
        first, last, (b, a) = stream.next_diff(max_n=12, cross=bs.next(12) == 0)
        return ("diff", first, last, b, a, True)
    elif k in (12, 13):                                # REST snapshot at a random point
        sid = stream.seq - 3 + bs.next(6)              # older or newer than the diffs we have
        b, a = stream.levels(12, cross=bs.next(12) == 0)
        return ("snapshot", sid, sid, b, a, True)
    elif k == 14:                                      # venue full push (full:true / obu first push)
        first, last, (b, a) = stream.next_diff(max_n=12, cross=bs.next(12) == 0)
        return ("diff", first, last, b, a, True)
    elif k == 15:
        return ("request_resync", 0, 0, [], [], False)
    elif k == 16:                                      # diff that crosses the book
        first, last, (b, a) = stream.next_diff(cross=True)
    elif k == 17:                                      # malformed ids: first > last
        first, last = stream.seq + 2, stream.seq + 1
        b, a = stream.levels(2)
    elif k == 18:                                      # big diff (level-limited buffer overflow)
        first, last, (b, a) = stream.next_diff(max_n=20)
    else:                                              # empty diff (futures: id still advances)
        first, last, _ = stream.next_diff(max_n=0)
        b, a = [], []
    if k not in (10, 17):
        stream.prev = (first, last, b, a, False)
    return ("diff", first, last, b, a, False)


def _state(sync: BookSync):
    bk = sync.book
    return (bool(bk.in_sync), bk.top(), bk.last_id, bk.version, bk.exch_ts_ms, bk.recv_ns,
            sync.resyncs, sync.applied, sync.stale_dropped, sync.ignored, sync.buffer_dropped,
            sync.resync_reason, sync.buffered_ids(), bool(sync.awaiting_snapshot), sync.level_cap_resyncs)


def _ref_state(ref: R.RefSync):
    bk = ref.book
    return (ref.in_sync, bk.top(), bk.last_id, bk.version, bk.exch_ts_ms, bk.recv_ns,
            ref.resyncs, ref.applied, ref.stale_dropped, ref.ignored, ref.buffer_dropped,
            ref.resync_reason, ref.buffered_ids(), not ref.synced, ref.level_cap_resyncs)


class _RuleChecker:
    """The venue rules written out independently of the oracle (README 'Local order book',
    issue 3): used to check both the oracle and BookSync on every step."""

    def __init__(self, rule, buffer_limit):
        self.rule = rule
        self.buffer_limit = buffer_limit
        self.bridged = False          # a diff (or full push) was applied since the REST snapshot
        self.reported = False         # the current out-of-sync episode raised its request
        self.calls_seen = 0

    def check(self, op, before, sync: BookSync, res, calls):
        kind, first, last, bids, asks, full = op
        bk = sync.book
        new_calls = calls[self.calls_seen:]
        self.calls_seen = len(calls)
        assert len(new_calls) <= 1, "more than one resync request in one step"
        # an out-of-sync book is empty; an in-sync book is never crossed
        if not bk.in_sync:
            assert bk.counts() == (0, 0)
        else:
            assert not bk.crossed
        # buffer: bounded, strictly increasing ids with no hole between neighbours
        ids = sync.buffered_ids()
        assert len(ids) <= self.buffer_limit
        for (f0, l0), (f1, l1) in zip(ids, ids[1:]):
            assert l1 > l0 and f1 <= l0 + 1
        if self.rule == R.STREAM_FULL:
            assert ids == []

        was_synced, prev_last, prev_book = before
        if kind == "diff" and not full:
            if not was_synced:
                if self.rule == R.STREAM_FULL:
                    assert res == R.IGNORED      # obu: nothing before the first full push
                else:
                    assert res in (R.BUFFERED, R.STALE, R.RESYNC, R.IGNORED)
                    assert not bk.in_sync
            else:
                nxt = prev_last + 1
                if last < nxt:                               # drop u < id+1 / toVersion <= lastUpdateId
                    assert res == R.STALE and bk.last_id == prev_last
                elif first > last or first > nxt:
                    assert res == R.RESYNC and not bk.in_sync   # gap: U > id+1 (an overlap applies)
                else:
                    after = RefBook(bk.depth, bk.max_levels)
                    after.bids, after.asks = dict(prev_book[0]), dict(prev_book[1])
                    after.apply(bids, asks)
                    if after.crossed or after.overflowed:
                        assert res == R.RESYNC and not bk.in_sync
                    else:
                        assert res == R.OK and bk.in_sync and bk.last_id == last
                        self.bridged = True
        elif kind == "diff":                                 # full push: replaces the book, id = u
            if was_synced and last <= prev_last:
                assert res == R.STALE
            elif res == R.OK:
                assert bk.in_sync and bk.last_id == last
                self.bridged = True
                self.reported = False
            else:
                assert res == R.RESYNC and not bk.in_sync   # only a crossed full push fails
        elif kind == "snapshot":
            if was_synced and last <= prev_last:
                assert res == R.STALE
            else:
                self.reported = False                        # a snapshot answers the request
                if res == R.OK:
                    assert bk.in_sync and bk.last_id >= last
                    self.bridged = bk.last_id > last         # buffered diffs were replayed on it
                else:
                    assert res == R.RESYNC and not bk.in_sync
        else:                                                # request_resync
            assert not bk.in_sync
        if new_calls:
            assert not self.reported, "second resync request in one episode"
            assert res == R.RESYNC or kind == "request_resync"
            self.reported = True
        if res == R.RESYNC:
            assert self.reported, "out of sync without a resync request"
        assert len(calls) == sync.resyncs


def _run_stream(rule, data):
    bs = ByteStream(data)
    depth = DEPTHS[bs.next(len(DEPTHS))]
    blim = BUF_LIMITS[bs.next(len(BUF_LIMITS))]
    blvl = BUF_LEVEL_LIMITS[bs.next(len(BUF_LEVEL_LIMITS))]
    cap = MAX_LEVELS[bs.next(len(MAX_LEVELS))] or depth        # 0: the cap at the depth (resyncs often)
    cap = max(cap, depth)
    calls = []
    ref_sync = R.RefSync(rule, depth, blim, blvl, cap)
    sync = BookSync(Book(7, 1, depth, cap), rule, blim,
                    lambda s, reason: calls.append((s, reason)), blvl)
    checker = _RuleChecker(rule, blim)
    stream = _Stream(bs, rule)
    step = 0
    while bs:
        step += 1
        op = _op(stream, bs)
        kind, first, last, bids, asks, full = op
        ts, recv = 5 * step, 11 * step
        before = (bool(sync.book.in_sync), sync.book.last_id, (dict(sync.book.top()[0]), dict(sync.book.top()[1])))
        if kind == "snapshot":
            res = sync.py_snapshot(last, bids, asks, exch_ts_ms=ts, recv_ns=recv)
            want = ref_sync.snapshot(R.Diff(first, last, bids, asks, True, ts, recv))
        elif kind == "diff":
            res = sync.py_update(first, last, bids, asks, full=full, exch_ts_ms=ts, recv_ns=recv)
            want = ref_sync.update(R.Diff(first, last, bids, asks, full, ts, recv))
        else:
            assert sync.request_resync() is None
            ref_sync.request_resync()
            res = want = R.RESYNC
        assert res == want, (step, op)
        assert _state(sync) == _ref_state(ref_sync), (step, op)
        assert [r for _, r in calls] == ref_sync.calls
        assert all(s is sync for s, _ in calls)
        checker.check(op, before, sync, res, [r for _, r in calls])
    return step


@pytest.mark.parametrize("rule", [R.SNAPSHOT_DIFF, R.STREAM_FULL], ids=["snapshot_diff", "stream_full"])
def test_sync_matches_reference(rule):
    """10,000 generated streams per rule (2,500 hypothesis seeds x 4 streams: the byte strings come
    from a seeded Random, cheaper than drawing them through hypothesis); every step equals the
    oracle and obeys the venue rules. A failure names the seed and the stream's bytes."""
    seen = {"streams": 0, "steps": 0}

    @settings(max_examples=100_000 if LONG else 2_500, derandomize=not LONG, deadline=None)
    @given(st.integers(0, 2 ** 64 - 1))
    def run(seed):
        rnd = random.Random(seed)
        for _ in range(STREAMS_PER_SEED):
            data = rnd.randbytes(rnd.randrange(100, 321))
            try:
                seen["steps"] += _run_stream(rule, data)
            except AssertionError as e:
                e.add_note("stream bytes: %s" % data.hex())
                raise
            seen["streams"] += 1

    run()
    assert seen["streams"] >= 10_000
    assert seen["steps"] > 100_000          # the streams were not trivially short (~15 steps each)


def test_generated_streams_reach_every_outcome():
    """The generator is not vacuous: over a fixed sample of streams every ApplyResult and every
    resync reason (of the rule) occurs."""
    rnd = random.Random(1234)
    for rule, results, reasons in (
            (R.SNAPSHOT_DIFF, {R.OK, R.STALE, R.BUFFERED, R.RESYNC, R.IGNORED},
             {R.R_GAP, R.R_CROSSED, R.R_OVERFLOW, R.R_SNAPSHOT_STALE, R.R_REQUESTED}),
            (R.STREAM_FULL, {R.OK, R.STALE, R.RESYNC, R.IGNORED}, {R.R_GAP, R.R_CROSSED, R.R_REQUESTED})):
        got_results, got_reasons = set(), set()
        for _ in range(3000):
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(30, 160)))
            bs = ByteStream(data)
            depth = DEPTHS[bs.next(len(DEPTHS))]
            blim = BUF_LIMITS[bs.next(len(BUF_LIMITS))]
            blvl = BUF_LEVEL_LIMITS[bs.next(len(BUF_LEVEL_LIMITS))]
            ref = R.RefSync(rule, depth, blim, blvl)
            stream = _Stream(bs, rule)
            while bs:
                kind, first, last, bids, asks, full = _op(stream, bs)
                if kind == "snapshot":
                    got_results.add(ref.snapshot(R.Diff(first, last, bids, asks, True)))
                elif kind == "diff":
                    got_results.add(ref.update(R.Diff(first, last, bids, asks, full)))
                else:
                    ref.request_resync()
            got_reasons.update(ref.calls)
        assert got_results == results
        assert reasons <= got_reasons


# --------------------------------------------------------------------------------------------------
# per-venue tests from the real samples (tests/resources/core, provenance in SOURCES.md)

def _load(rel):
    return json.loads((RES / rel).read_text())


@pytest.fixture(scope="module")
def registry():
    """Scales from instrument info: Gate futures from the contract sample (quanto 0.0001), the spot
    BTC pairs given explicitly (the instrument samples are other pairs)."""
    r = SymbolRegistry()
    gate_futures_instruments.load(r, [_load("gateio_futures/rest_contract.doc.json")])
    r.add_instrument({"venue": "mexc_spot", "symbol": "BTC/USDT", "venue_symbol": "BTCUSDT",
                      "tick": "0.01", "qty_step": "0.000001"})
    r.add_instrument({"venue": "mexc_spot", "symbol": "BTC/USDC", "venue_symbol": "BTCUSDC",
                      "tick": "0.01", "qty_step": "0.000001"})
    r.add_instrument({"venue": "gateio_spot", "symbol": "BTC/USDT", "venue_symbol": "BTC_USDT",
                      "tick": "0.1", "qty_step": "0.000001"})
    return r.freeze()


class Venue:
    """Converts one venue's sample levels to mantissas with the instrument's scales (the _core
    parser path: fixedpoint.parse at venue_qty_scale, × qty_mult) and checks them against Decimal."""

    def __init__(self, registry, venue, venue_symbol):
        ins = registry.map(venue).instrument(venue_symbol)
        self.ps, self.vqs, self.mult, self.qs = ins["price_scale"], ins["venue_qty_scale"], ins["qty_mult"], ins["qty_scale"]
        self.symbol_id = registry.map(venue).id_of(venue_symbol)

    def levels(self, rows):
        # Gate spot/obu: [p, s]; Gate futures order_book_update: {p, s}; MEXC: {price, quantity}
        rows = [tuple(r) if isinstance(r, list) else (r["p"], r["s"]) if "p" in r else (r["price"], r["quantity"])
                for r in rows]
        out = [(parse(str(p), self.ps), parse(str(q), self.vqs) * self.mult) for p, q in rows]
        # the same numbers through Decimal (base quantity = venue size × quanto for futures)
        want = decimal_levels([(p, str(Decimal(str(q)) * Decimal(self.mult).scaleb(self.vqs - self.qs)))
                               for p, q in rows], self.ps, self.qs)
        assert out == want
        return out

    def sync(self, rule=B.SYNC_SNAPSHOT_DIFF, buffer_limit=1024, depth=400):
        calls = []
        s = BookSync(Book(self.symbol_id, 0, depth), rule, buffer_limit, lambda s, r: calls.append(r))
        return s, calls


def _expected(*updates):
    """Book contents after applying (bids, asks, full) in order, by the Decimal-free oracle book."""
    ref = RefBook(400)
    for bids, asks, full in updates:
        ref.apply(bids, asks, full=full)
    return ref.top()


def test_gate_spot_order_book_update_from_samples(registry):
    v = Venue(registry, "gateio_spot", "BTC_USDT")
    push = _load("gateio_spot/ws_order_book_update.json")["result"]          # REAL, U == u
    rest = _load("gateio_spot/rest_order_book.json")                         # mock snapshot, with_id
    U, u = push["U"], push["u"]
    bids, asks = v.levels(push["b"]), v.levels(push["a"])
    assert (U, u) == (13934528633, 13934528633) and bids == [(2929140, 51240000)] and asks == []
    # the REST mock is another pair (0.2986, 6 decimals): at BTC_USDT's scale it is an error, never
    # truncated. The snapshot levels come from the REAL BTC_USDT obu full push instead (2025 prices,
    # above the 2023 push: its bid becomes the 4th bid level, nothing crosses).
    with pytest.raises(ValueError, match="too precise"):
        v.levels(rest["bids"])
    obu = _load("gateio_spot/ws_obu_full.json")["result"]
    snap_bids, snap_asks = v.levels(obu["b"]), v.levels(obu["a"])

    # 1. pre-snapshot buffering and replay: diffs before the snapshot, one stale, then bridging
    s, calls = v.sync()
    assert s.py_update(U, u, bids, asks, exch_ts_ms=push["t"]) == B.APPLY_BUFFERED
    nxt = [(u + 1, u + 3, [(2929140, 0), (2929100, 7)], [])]
    assert s.py_update(*nxt[0]) == B.APPLY_BUFFERED
    assert s.py_update(U, u, bids, asks) == B.APPLY_STALE                  # duplicate while waiting
    assert s.buffered_ids() == [(U, u), (u + 1, u + 3)] and not s.book.in_sync
    # snapshot id = U - 1: drop u < id+1 (none), first applied has U <= id+1 <= u
    assert s.py_snapshot(U - 1, snap_bids, snap_asks) == B.APPLY_OK
    assert s.book.in_sync and s.book.last_id == u + 3 and s.buffered == 0 and calls == []
    assert s.book.top() == _expected((snap_bids, snap_asks, True), (bids, asks, False), (nxt[0][2], [], False))
    assert s.book.exch_ts_ms == 0                                          # of the last applied diff
    # 2. stale and duplicate diffs after the sync: dropped, book untouched
    top, version = s.book.top(), s.book.version
    assert s.py_update(U, u, bids, asks) == B.APPLY_STALE
    assert s.py_update(*nxt[0]) == B.APPLY_STALE
    assert s.book.top() == top and s.book.version == version and s.stale_dropped == 3
    # 3. gap: U > prev_u + 1 -> resync, one request, book cleared; later diffs are buffered again
    assert s.py_update(u + 5, u + 5, bids, []) == B.APPLY_RESYNC
    assert calls == [B.RESYNC_GAP] and s.resyncs == 1 and not s.book.in_sync and s.book.counts() == (0, 0)
    assert s.py_update(u + 6, u + 6, [(2929000, 1)], []) == B.APPLY_BUFFERED
    assert s.py_update(u + 8, u + 8, [], []) == B.APPLY_BUFFERED              # a hole inside the buffer
    assert calls == [B.RESYNC_GAP] and s.buffered_ids() == [(u + 8, u + 8)]
    # a snapshot older than the buffer cannot bridge it -> a new request
    assert s.py_snapshot(u + 3, snap_bids, snap_asks) == B.APPLY_RESYNC
    assert calls == [B.RESYNC_GAP, B.RESYNC_SNAPSHOT_STALE]
    assert s.py_snapshot(u + 7, snap_bids, snap_asks) == B.APPLY_OK
    assert s.book.last_id == u + 8 and s.book.in_sync and s.book.top() == _expected((snap_bids, snap_asks, True))
    # 4. a snapshot newer than the first buffered diffs: they are dropped as stale on replay
    s2, calls2 = v.sync()
    for i in range(5):
        assert s2.py_update(U + i, u + i, [(2929140 - i, 1 + i)], []) == B.APPLY_BUFFERED
    assert s2.py_snapshot(U + 2, snap_bids, snap_asks) == B.APPLY_OK
    assert s2.stale_dropped == 3 and s2.book.last_id == u + 4 and calls2 == []
    assert s2.book.top() == _expected((snap_bids, snap_asks, True), ([(2929137, 4)], [], False),
                                      ([(2929136, 5)], [], False))


def test_gate_spot_full_true_resets_the_book(registry):
    v = Venue(registry, "gateio_spot", "BTC_USDT")
    full = _load("gateio_spot/ws_order_book_update_full.doc.json")["result"]    # DOC, full:true
    assert full["full"] is True
    fb, fa = v.levels(full["b"]), v.levels(full["a"])
    assert fb == [(1913774, 10000), (1908837, 0)]            # "0" in a full push is simply absent
    s, calls = v.sync()
    # a full push before any snapshot: replaces the book, id = u, buffered diffs before it dropped
    assert s.py_update(full["U"] - 3, full["U"] - 2, [(1900000, 5)], []) == B.APPLY_BUFFERED
    assert s.py_update(full["U"], full["u"], fb, fa, full=True) == B.APPLY_OK
    assert s.book.in_sync and s.book.last_id == full["u"] and s.buffered == 0
    assert s.book.top() == ([(1913774, 10000)], [(1913775, 61350000)])
    # then U <= prev_u + 1 <= u: an overlap applies (as gatews local_order_book.py does) ...
    assert s.py_update(full["u"] + 1, full["u"] + 2, [(1913770, 3)], []) == B.APPLY_OK
    assert s.py_update(full["u"] + 2, full["u"] + 3, [(1913770, 4)], []) == B.APPLY_OK
    assert s.book.last_id == full["u"] + 3 and s.book.top(2)[0] == [(1913774, 10000), (1913770, 4)]
    assert calls == []
    # ... and U > prev_u + 1 is a gap
    assert s.py_update(full["u"] + 5, full["u"] + 6, [], []) == B.APPLY_RESYNC
    assert calls == [B.RESYNC_GAP]
    # full push in the middle of a resync episode ends it: book replaced, in sync, no new request
    assert s.py_update(full["u"] + 10, full["u"] + 20, fb, fa, full=True) == B.APPLY_OK
    assert s.book.in_sync and s.book.last_id == full["u"] + 20 and calls == [B.RESYNC_GAP]
    # an older full push is stale
    assert s.py_update(full["U"], full["u"], fb, fa, full=True) == B.APPLY_STALE


def test_gate_spot_obu_from_real_pushes(registry):
    v = Venue(registry, "gateio_spot", "BTC_USDT")
    full = _load("gateio_spot/ws_obu_full.json")["result"]       # REAL 2025-08-01, full:true, u only
    upd = _load("gateio_spot/ws_obu_update.json")["result"]      # REAL, 60 s later: U/u, no full key
    assert full["full"] is True and "U" not in full and "full" not in upd
    fb, fa = v.levels(full["b"]), v.levels(full["a"])
    ub, ua = v.levels(upd["b"]), v.levels(upd["a"])
    s, calls = v.sync(B.SYNC_STREAM_FULL)
    # diffs before the first full push are ignored (no REST snapshot on obu)
    assert s.py_update(upd["U"], upd["u"], ub, ua) == B.APPLY_IGNORED and s.ignored == 1
    assert s.py_update(full["u"], full["u"], fb, fa, full=True, exch_ts_ms=full["t"]) == B.APPLY_OK
    assert s.book.in_sync and s.book.top() == (fb, fa) and s.book.exch_ts_ms == full["t"]
    # the two real captures are 16,895 ids apart: a gap (U != local + 1) -> unsubscribe/resubscribe
    assert upd["U"] != full["u"] + 1
    assert s.py_update(upd["U"], upd["u"], ub, ua) == B.APPLY_RESYNC
    assert calls == [B.RESYNC_GAP] and not s.book.in_sync and s.buffered == 0
    assert s.py_update(upd["u"] + 1, upd["u"] + 1, ub, ua) == B.APPLY_IGNORED   # waits for a full push
    assert calls == [B.RESYNC_GAP]
    # the market moved 60 s later: the update's best ask (115731.3) is below the full push's best
    # bid (115765.1), so on top of it the book would cross
    assert ua[0][0] < fb[0][0]
    # resubscribed: a full push (the real one moved 100.00 down to the update's prices), then the
    # real update with ids continuing from it
    fb2, fa2 = [(px - 10000, q) for px, q in fb], [(px - 10000, q) for px, q in fa]
    assert s.py_update(upd["U"] - 1, upd["U"] - 1, fb2, fa2, full=True) == B.APPLY_OK
    assert s.py_update(upd["U"], upd["u"], ub, ua, exch_ts_ms=upd["t"]) == B.APPLY_OK
    assert s.book.last_id == upd["u"] and s.book.exch_ts_ms == upd["t"]
    assert s.book.top() == _expected((fb2, fa2, True), (ub, ua, False))
    # the real full push itself now arrives again (stale id) and is dropped
    assert s.py_update(full["u"], full["u"], fb, fa, full=True) == B.APPLY_STALE
    assert s.py_update(upd["U"], upd["u"], ub, ua) == B.APPLY_STALE           # duplicate
    assert calls == [B.RESYNC_GAP] and s.resyncs == 1


def test_gate_futures_order_book_update_from_samples(registry):
    v = Venue(registry, "gateio_futures", "BTC_USDT")
    assert (v.vqs, v.mult) == (0, 10 ** (v.qs - 4))               # contracts × quanto 0.0001
    push = _load("gateio_futures/ws_order_book_update.json")["result"]      # REAL 2024-12-11, {p,s}
    rest = _load("gateio_futures/rest_order_book.doc.json")                 # DOC snapshot, {p,s}
    doc = _load("gateio_futures/ws_order_book_update.doc.json")["result"]   # DOC, U..u spans 13 ids
    U, u = push["U"], push["u"]
    bids, asks = v.levels(push["b"]), v.levels(push["a"])
    assert bids[0] == (9618690, 10500 * v.mult) and bids[2][1] == 0 and asks == []
    s, calls = v.sync()
    # the DOC REST snapshot (prices ~1.5) under the REAL push (bids ~96k): the bid crosses its
    # asks -> the book is never left crossed: resync requested, the crossing diff kept to bridge
    rb, ra = v.levels(rest["bids"]), v.levels(rest["asks"])
    assert s.py_update(U, u, bids, asks) == B.APPLY_BUFFERED
    assert s.py_snapshot(U - 1, rb, ra) == B.APPLY_RESYNC
    assert calls == [B.RESYNC_CROSSED] and not s.book.in_sync and s.buffered_ids() == [(U, u)]
    # a consistent snapshot (asks above the push) bridges the kept diff
    snap_asks = [(px + 9800000, q) for px, q in ra]
    assert s.py_snapshot(U - 1, rb, snap_asks) == B.APPLY_OK
    assert s.book.top() == _expected((rb, snap_asks, True), (bids, asks, False)) and s.book.last_id == u
    # "update the book id even when a/b are empty": an empty push advances id and time, not version
    ver = s.book.version
    assert s.py_update(u + 1, u + 1, [], [], exch_ts_ms=push["t"]) == B.APPLY_OK
    assert s.book.last_id == u + 1 and s.book.version == ver and s.book.exch_ts_ms == push["t"]
    # a multi-id push (the doc's U..u spans 13 ids) continues the sequence
    span = doc["u"] - doc["U"]
    assert span == 12
    db = [(px, q) for px, q in v.levels(doc["b"]) if px < 9618690]
    assert s.py_update(u + 2, u + 2 + span, db, []) == B.APPLY_OK and s.book.last_id == u + 2 + span
    # duplicate, stale, then a gap
    assert s.py_update(u + 2, u + 2 + span, db, []) == B.APPLY_STALE
    assert s.py_update(u, u, bids, asks) == B.APPLY_STALE
    assert s.py_update(u + 4 + span, u + 4 + span, bids, []) == B.APPLY_RESYNC
    assert calls == [B.RESYNC_CROSSED, B.RESYNC_GAP] and s.resyncs == 2


def test_gate_futures_obu_doc_pushes(registry):
    v = Venue(registry, "gateio_futures", "BTC_USDT")
    full = _load("gateio_futures/ws_obu_full.doc.json")["result"]
    upd = _load("gateio_futures/ws_obu_update.doc.json")["result"]
    assert upd["U"] == full["u"] + 1                      # the doc pair is contiguous
    fb, fa = v.levels(full["b"]), v.levels(full["a"])
    ub = v.levels(upd["b"])
    s, calls = v.sync(B.SYNC_STREAM_FULL)
    assert s.py_update(full["u"], full["u"], fb, fa, full=True) == B.APPLY_OK
    assert s.py_update(upd["U"], upd["u"], ub, []) == B.APPLY_OK
    assert s.book.top() == _expected((fb, fa, True), (ub, [], False)) and s.book.last_id == upd["u"]
    assert s.book.top()[0][0] == (8370590, 30166 * v.mult)
    assert s.py_update(upd["U"], upd["u"], ub, []) == B.APPLY_STALE and calls == []


def test_mexc_aggre_depth_from_samples(registry):
    v = Venue(registry, "mexc_spot", "BTCUSDC")
    push = _load("mexc/ws_push_aggre_depth_100ms.decoded.json")["publicAggreDepths"]   # 8 versions
    frm, to = int(push["fromVersion"]), int(push["toVersion"])
    assert to - frm == 7
    bids, asks = v.levels(push["bids"]), v.levels(push["asks"])
    snap = ([(11483000, 200000000)], [(11520000, 100000000)])
    # lastUpdateId anywhere in [fromVersion-1, toVersion-1] bridges (fromVersion <= id+1 <= toVersion)
    for sid in (frm - 1, frm + 3, to - 1):
        s, calls = v.sync()
        assert s.py_update(frm, to, bids, asks) == B.APPLY_BUFFERED
        assert s.py_snapshot(sid, *snap) == B.APPLY_OK and s.book.last_id == to and calls == []
        assert s.book.top() == _expected((snap[0], snap[1], True), (bids, asks, False))
        assert s.py_update(to + 1, to + 1, [(11483000, 0)], []) == B.APPLY_OK   # fromVersion == prev+1
        assert s.book.top()[0] == [(11483884, 10100)]
    # toVersion <= lastUpdateId: dropped
    s, calls = v.sync()
    assert s.py_update(frm, to, bids, asks) == B.APPLY_BUFFERED
    assert s.py_snapshot(to, *snap) == B.APPLY_OK and s.stale_dropped == 1 and s.book.top() == snap
    # fromVersion > lastUpdateId + 1: the snapshot is older than the stream -> resync
    s, calls = v.sync()
    assert s.py_update(frm, to, bids, asks) == B.APPLY_BUFFERED
    assert s.py_snapshot(frm - 2, *snap) == B.APPLY_RESYNC and calls == [B.RESYNC_SNAPSHOT_STALE]
    assert s.buffered_ids() == [(frm, to)]                  # kept for the next snapshot
    assert s.py_snapshot(frm, *snap) == B.APPLY_OK and s.book.last_id == to and calls == [B.RESYNC_SNAPSHOT_STALE]


def test_mexc_buffer_overflow_and_crossed_doc_snapshot(registry):
    v = Venue(registry, "mexc_spot", "BTCUSDT")
    push = _load("mexc/ws_push_aggre_depth.decoded.json")["publicAggreDepths"]   # REAL, from == to
    ver = int(push["fromVersion"])
    assert ver == int(push["toVersion"]) and push["asks"] == []
    bids = v.levels(push["bids"])
    assert bids == [(6175973, 17780)]                         # 0.0001778 BTC at qty scale 8
    # buffer overflow while waiting for the snapshot: the oldest are dropped, one request, the
    # newest kept so that a snapshot requested now can bridge them
    s, calls = v.sync(buffer_limit=3)
    res = [s.py_update(ver + i, ver + i, [(bids[0][0] - i, bids[0][1])], []) for i in range(6)]
    assert res == [B.APPLY_BUFFERED] * 3 + [B.APPLY_RESYNC] + [B.APPLY_BUFFERED] * 2
    assert calls == [B.RESYNC_BUFFER_OVERFLOW] and s.buffer_dropped == 3 and s.resyncs == 1
    assert s.buffered_ids() == [(ver + 3, ver + 3), (ver + 4, ver + 4), (ver + 5, ver + 5)]
    ccxt = _load("mexc/rest_depth.ccxt_static.json")         # BTCUSDT 2024: ask 45995.48 < push bid
    sb, sa = v.levels(ccxt["bids"]), v.levels(ccxt["asks"])
    sa_up = [(px + 2000000, q) for px, q in sa]               # moved above the 2026 push prices
    assert s.py_snapshot(ver + 2, sb, sa_up) == B.APPLY_OK
    assert s.book.last_id == ver + 5 and s.book.in_sync and calls == [B.RESYNC_BUFFER_OVERFLOW]
    # the DOC depth example is itself crossed (bid 15 > ask 14): never in sync, one request
    doc = _load("mexc/rest_depth.json")
    db, da = v.levels(doc["bids"]), v.levels(doc["asks"])
    s, calls = v.sync()
    assert s.py_snapshot(doc["lastUpdateId"], db, da) == B.APPLY_RESYNC
    assert calls == [B.RESYNC_CROSSED] and not s.book.in_sync and s.book.counts() == (0, 0)
    # request_resync (e.g. after a reconnect) while already reported: no second request
    s.request_resync()
    assert calls == [B.RESYNC_CROSSED]
    # ... but on a synced book it is a new episode
    assert s.py_snapshot(int(ccxt["lastUpdateId"]), sb, sa) == B.APPLY_OK
    s.request_resync()
    assert calls == [B.RESYNC_CROSSED, B.RESYNC_REQUESTED] and not s.book.in_sync


def test_resync_callback_exception_propagates_and_counts():
    def boom(sync, reason):
        raise RuntimeError("adapter failed")
    s = BookSync(Book(), B.SYNC_SNAPSHOT_DIFF, 4, boom)
    assert s.py_snapshot(10, [(1, 1)], [(2, 1)]) == B.APPLY_OK
    with pytest.raises(RuntimeError, match="adapter failed"):
        s.py_update(12, 12, [(1, 2)], [])
    assert s.resyncs == 1 and not s.book.in_sync and s.buffered_ids() == [(12, 12)]
    assert s.py_update(13, 13) == B.APPLY_BUFFERED            # episode already reported


def test_constructor_errors():
    with pytest.raises(ValueError):
        BookSync(Book(), 7)
    with pytest.raises(ValueError):
        BookSync(Book(), B.SYNC_SNAPSHOT_DIFF, 0)
    with pytest.raises(TypeError):
        BookSync(Book(), B.SYNC_SNAPSHOT_DIFF, 4, on_resync=5)
    with pytest.raises(TypeError):
        BookSync(None)


def test_gap_revealed_by_a_diff_too_big_to_buffer_reports_the_gap():
    calls = []
    s = BookSync(Book(), B.SYNC_SNAPSHOT_DIFF, 4, lambda s, r: calls.append(r), 3)
    assert s.py_snapshot(10, [(1, 1)], [(5, 1)]) == B.APPLY_OK
    assert s.py_update(13, 13, [(1, 2), (2, 2)], [(5, 2), (6, 2)]) == B.APPLY_RESYNC   # 4 levels > 3
    assert calls == [B.RESYNC_GAP] and s.resync_reason == B.RESYNC_GAP
    assert s.buffer_dropped == 1 and s.buffered == 0
    assert s.py_update(14, 14, [(1, 3)], []) == B.APPLY_BUFFERED and calls == [B.RESYNC_GAP]


# every scenario of the issue on every venue's diff channel, from that venue's real push
_CHANNELS = {
    # venue, venue symbol, sample, levels keys, ids, full pushes exist on the channel
    "gateio_spot": ("gateio_spot", "BTC_USDT", "gateio_spot/ws_order_book_update.json", "b", "a", True),
    "gateio_futures": ("gateio_futures", "BTC_USDT", "gateio_futures/ws_order_book_update.json", "b", "a", True),
    "mexc_spot": ("mexc_spot", "BTCUSDT", "mexc/ws_push_aggre_depth.decoded.json", "bids", "asks", False),
}


def _push(name):
    venue, vs, path, kb, ka, has_full = _CHANNELS[name]
    raw = _load(path)
    body = raw.get("result") or raw["publicAggreDepths"]
    first = int(body.get("U", body.get("fromVersion")))
    last = int(body.get("u", body.get("toVersion")))
    return venue, vs, body[kb], body[ka], first, last, has_full


@pytest.mark.parametrize("name", sorted(_CHANNELS))
def test_every_sync_scenario_per_venue(registry, name):
    venue, vs, rb, ra, U, u, has_full = _push(name)
    v = Venue(registry, venue, vs)
    bids, asks = v.levels(rb), v.levels(ra)
    top_bid = max(px for px, q in bids if q) if any(q for _, q in bids) else 0
    # a snapshot consistent with the push: bids at/below it, asks above it (real levels, moved)
    snap = ([(top_bid - 100, 5), (top_bid - 200, 7)], [(top_bid + 1000, 3), (top_bid + 1100, 4)])

    def step_bids(k):       # the real push's bid levels, moved k ticks down for the k-th follower
        return [(px - k, q) for px, q in bids]

    s, calls = v.sync(buffer_limit=3)
    span = u - U
    # pre-snapshot buffering: the real push and two followers
    ids = [(U, u), (u + 1, u + 1 + span), (u + 2 + span, u + 2 + 2 * span)]
    for k, (f, l) in enumerate(ids):
        assert s.py_update(f, l, step_bids(k), asks) == B.APPLY_BUFFERED
    # duplicate and stale while waiting
    assert s.py_update(U, u, bids, asks) == B.APPLY_STALE
    assert s.buffered_ids() == ids
    # replay on a snapshot inside the first push's range
    assert s.py_snapshot(U - 1, *snap) == B.APPLY_OK
    assert s.book.last_id == ids[-1][1] and s.book.in_sync and calls == []
    assert s.book.top() == _expected((snap[0], snap[1], True), *[(step_bids(k), asks, False) for k in range(3)])
    head = s.book.last_id
    # duplicates and stale diffs after the sync
    assert s.py_update(*ids[-1], step_bids(2), asks) == B.APPLY_STALE
    assert s.py_update(U, u, bids, asks) == B.APPLY_STALE
    assert s.book.last_id == head and s.stale_dropped == 3
    # a gap: one request, book cleared, later diffs buffered; overflow inside the same episode
    # does not raise a second request
    assert s.py_update(head + 2, head + 2, bids, asks) == B.APPLY_RESYNC
    assert calls == [B.RESYNC_GAP] and s.book.counts() == (0, 0) and not s.book.in_sync
    for k in range(3, 8):
        assert s.py_update(head + k, head + k, bids, asks) == B.APPLY_BUFFERED
    assert calls == [B.RESYNC_GAP] and s.buffered == 3 and s.buffer_dropped == 3
    assert s.py_snapshot(head + 4, *snap) == B.APPLY_OK and s.book.last_id == head + 7
    # buffer overflow before any snapshot: a fresh sync, one request naming the overflow
    s2, calls2 = v.sync(buffer_limit=3)
    res = [s2.py_update(U + k, U + k, bids, asks) for k in range(5)]
    assert res == [B.APPLY_BUFFERED] * 3 + [B.APPLY_RESYNC, B.APPLY_BUFFERED]
    assert calls2 == [B.RESYNC_BUFFER_OVERFLOW] and s2.buffered_ids()[0] == (U + 2, U + 2)
    # full reset (Gate full:true on order_book_update; MEXC aggre depth has no full push: a
    # resync there always goes through a REST snapshot, as above)
    if has_full:
        assert s.py_update(head + 20, head + 30, snap[0], snap[1], full=True) == B.APPLY_OK
        assert s.book.top() == (sorted(snap[0], reverse=True), snap[1]) and s.book.last_id == head + 30
        assert s.py_update(head + 31, head + 31, bids, asks) == B.APPLY_OK
        assert calls == [B.RESYNC_GAP]
