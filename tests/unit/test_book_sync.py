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
import pathlib
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from cexnode._core import book as B
from cexnode._core.book import Book, BookSync
from cexnode._core.fixedpoint import parse
from cexnode._core.symbols import SymbolRegistry
from reference import sync_ref as R
from reference.bytestream import ByteStream
from reference.decimal_book import RefBook, decimal_levels

RES = pathlib.Path(__file__).resolve().parents[1] / "resources" / "core"

N = settings(max_examples=10_000, derandomize=True, deadline=None)

DEPTHS = [1, 2, 3, 5, 8, 400]
BUF_LIMITS = [1, 2, 3, 4, 8, 1024]
BUF_LEVEL_LIMITS = [2, 5, 12, 40, 1 << 18]

# Generated prices: bids in [0, 30), asks in [30, 60) never cross; the "crossing" ops put a level
# on the other side of 30 so the oracle and BookSync must both detect the crossed book.
BID_BASE, ASK_BASE, HALF = 0, 30, 30


def test_enum_values_match_reference():
    assert (B.SYNC_SNAPSHOT_DIFF, B.SYNC_STREAM_FULL) == (R.SNAPSHOT_DIFF, R.STREAM_FULL)
    assert (B.APPLY_OK, B.APPLY_STALE, B.APPLY_BUFFERED, B.APPLY_RESYNC, B.APPLY_IGNORED) == \
        (R.OK, R.STALE, R.BUFFERED, R.RESYNC, R.IGNORED)
    assert (B.RESYNC_NONE, B.RESYNC_GAP, B.RESYNC_CROSSED, B.RESYNC_BUFFER_OVERFLOW,
            B.RESYNC_SNAPSHOT_STALE, B.RESYNC_REQUESTED) == \
        (R.R_NONE, R.R_GAP, R.R_CROSSED, R.R_OVERFLOW, R.R_SNAPSHOT_STALE, R.R_REQUESTED)


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
            sync.resync_reason, sync.buffered_ids(), bool(sync.awaiting_snapshot))


def _ref_state(ref: R.RefSync):
    bk = ref.book
    return (ref.in_sync, bk.top(), bk.last_id, bk.version, bk.exch_ts_ms, bk.recv_ns,
            ref.resyncs, ref.applied, ref.stale_dropped, ref.ignored, ref.buffer_dropped,
            ref.resync_reason, ref.buffered_ids(), not ref.synced)


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
                elif first > last or first > nxt or (self.bridged and first != nxt):
                    assert res == R.RESYNC and not bk.in_sync   # gap (U != prev_u+1 once bridged)
                else:
                    after = RefBook(bk.depth_limit)
                    after.bids, after.asks = dict(prev_book[0]), dict(prev_book[1])
                    after.apply(bids, asks)
                    if after.crossed:
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
    calls = []
    ref_sync = R.RefSync(rule, depth, blim, blvl)
    sync = BookSync(Book(7, 1, depth), rule, blim,
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
    """10,000 generated streams per rule; every step equals the oracle and obeys the venue rules."""
    seen = {"steps": 0}

    @N
    @given(st.binary(min_size=100, max_size=320))
    def run(data):
        seen["steps"] += _run_stream(rule, data)

    run()
    assert seen["steps"] > 100_000          # the streams were not trivially short


def test_generated_streams_reach_every_outcome():
    """The generator is not vacuous: over a fixed sample of streams every ApplyResult and every
    resync reason (of the rule) occurs."""
    import random
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
