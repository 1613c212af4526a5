"""Book audits (cexnode.book_audit) without a network: the router's shadow (BookRouter.audit_*),
AuditProbe's verdicts and compare_tops, with the venue's true book and the expected shadow
state taken from the pure-Python oracles (tests/reference/decimal_book, sync_ref)."""
from __future__ import annotations

import random

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from cexnode._core.book import SYNC_SNAPSHOT_DIFF, SYNC_STREAM_FULL
from cexnode._core.router import BookRouter
from cexnode.book_audit import (INCONCLUSIVE, MATCH, MISMATCH, PENDING, AuditProbe, LevelDifference,
                                compare_tops, first_audit_offsets)
from reference import sync_ref
from reference.decimal_book import RefBook

V, SID = 1, 3
BIG = 10_000          # depth that never truncates: every level the venue has is kept


def stream(seed: int, n: int, multi: bool = True):
    """``n`` diffs with contiguous ids from 1 (some spanning several ids, MEXC style) over bids
    90..99 and asks 101..110, so that no diff can cross the book; qty 0 deletes."""
    rnd = random.Random(seed)
    out, nxt = [], 1
    for _ in range(n):
        span = rnd.choice((1, 1, 1, 3)) if multi else 1
        bids = [(rnd.randint(90, 99), rnd.choice((0, 1, 2, 3, 5, 8))) for _ in range(rnd.randint(0, 3))]
        asks = [(rnd.randint(101, 110), rnd.choice((0, 1, 2, 3, 5, 8))) for _ in range(rnd.randint(0, 3))]
        out.append(sync_ref.Diff(nxt, nxt + span - 1, dict(bids).items(), dict(asks).items()))
        nxt += span
    return out


INITIAL = ([(p, 4) for p in range(99, 89, -1)], [(p, 4) for p in range(101, 111)])


def truths(diffs):
    """The venue's true book after each diff: ``[(id, RefBook top), ...]`` (index 0: the initial book)."""
    ref = RefBook(BIG)
    ref.apply(*INITIAL, full=True, last_id=0)
    out = [(0, ref.top())]
    for d in diffs:
        ref.apply(d.bids, d.asks, last_id=d.last)
        out.append((d.last, ref.top()))
    return out


def make_router():
    r = BookRouter()
    r.add_book(V, SID, SYNC_SNAPSHOT_DIFF, BIG)
    resyncs = []
    r.on_resync = lambda v, s, reason: resyncs.append((v, s, reason))
    assert r.snapshot(V, SID, 0, *INITIAL) == 0
    return r, resyncs


def feed(r, diffs):
    for d in diffs:
        r.py_depth(V, SID, d.first, d.last, list(d.bids), list(d.asks))


def snap_of(top, limit):
    return list(top[0][:limit]), list(top[1][:limit])


# -- compare_tops ---------------------------------------------------------------------------------

def test_compare_tops_names_the_first_differing_level_of_each_side():
    live = ([(99, 1), (98, 2), (97, 3)], [(101, 1), (102, 2)])
    venue = ([(99, 1), (98, 5), (97, 3)], [(101, 1), (103, 2)])
    snap = ([(99, 1), (98, 5), (97, 3)], [(101, 1), (103, 2)])
    assert compare_tops(live, venue, *snap, depth=10) == [
        LevelDifference("bid", 1, (98, 2), (98, 5)), LevelDifference("ask", 1, (102, 2), (103, 2))]
    assert compare_tops(venue, venue, *snap, depth=10) == []
    # a level missing on one side: the other book's level and None
    assert compare_tops(([(99, 1)], []), ([(99, 1), (98, 5)], []), [(99, 1), (98, 5)], [], depth=10) == [
        LevelDifference("bid", 1, None, (98, 5))]


def test_compare_tops_stops_at_depth_and_at_the_snapshots_worst_level():
    venue = ([(99, 1), (98, 2), (90, 9)], [(101, 1), (102, 2)])
    # beyond depth: not compared
    assert compare_tops(([(99, 1), (98, 7)], venue[1]), venue, [(99, 1), (98, 2)], venue[1], depth=1) == []
    # the snapshot's depth when smaller than depth
    assert compare_tops(([(99, 1), (98, 7)], venue[1]), venue, [(99, 1)], [(101, 1)], depth=10) == []
    # levels worse than the snapshot's worst (only diffs told the shadow about them): not compared,
    # on either book
    snap_b = [(99, 1), (98, 2), (95, 1)]
    live = ([(99, 1), (98, 2), (93, 4)], venue[1])
    assert compare_tops(live, venue, snap_b, venue[1], depth=10) == []
    # ... but a level the live book has inside that range is
    live = ([(99, 1), (98, 2), (96, 4)], venue[1])
    assert compare_tops(live, venue, snap_b, venue[1], depth=10) == [LevelDifference("bid", 2, (96, 4), None)]


@pytest.mark.parametrize("interval, n", [(300.0, 1), (300.0, 5), (0.5, 7)])
def test_first_audits_are_spread_evenly_over_one_interval(interval, n):
    offs = first_audit_offsets(interval, n)
    assert len(offs) == n and offs[-1] == pytest.approx(interval)
    gaps = [b - a for a, b in zip([0.0] + offs, offs)]
    assert all(g == pytest.approx(interval / n) for g in gaps)


# -- the router's shadow -----------------------------------------------------------------------------

def test_shadow_gets_every_update_of_its_book_and_nothing_else_until_audit_end():
    r, resyncs = make_router()
    r.add_book(V, SID + 1, SYNC_SNAPSHOT_DIFF, BIG)
    r.add_book(V + 1, SID, SYNC_SNAPSHOT_DIFF, BIG)
    shadow = r.audit_begin(V, SID)
    assert r.audit_pending(V) == (SID, shadow) and r.audit_pending(V + 1) is None
    feed(r, stream(1, 5, multi=False))
    r.py_depth(V, SID + 1, 1, 1, [(95, 1)], [])          # another symbol of the venue
    r.py_depth(V + 1, SID, 1, 1, [(95, 1)], [])          # the same symbol id on another venue
    assert shadow.buffered_ids() == [(i, i) for i in range(1, 6)]
    # a gap in the shadow's buffer: the shadow never reports a resync (no callback); the live book does
    r.py_depth(V, SID, 9, 9, [(95, 1)], [])
    assert resyncs == [(V, SID, sync_ref.R_GAP)]
    r.audit_end(V)
    assert r.audit_pending(V) is None
    r.py_depth(V, SID, 10, 10, [(95, 1)], [])
    assert shadow.buffered_ids() == [(9, 9)]             # fed no more
    assert resyncs == [(V, SID, sync_ref.R_GAP)]


def test_audit_begin_refuses_obu_books_a_second_audit_and_unknown_books():
    r, _ = make_router()
    r.add_book(V + 1, SID, SYNC_STREAM_FULL, BIG)
    with pytest.raises(ValueError, match="REST snapshots"):
        r.audit_begin(V + 1, SID)
    with pytest.raises(KeyError):
        r.audit_begin(V, SID + 5)
    r.audit_begin(V, SID)
    with pytest.raises(RuntimeError, match="pending"):
        r.audit_begin(V, SID)
    r.audit_end(V)
    r.audit_begin(V, SID)


# -- AuditProbe against the oracles ------------------------------------------------------------------------

@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), data=st.data())
def test_probe_matches_a_correct_book_and_finds_a_planted_level(seed, n, data):
    diffs = stream(seed, n)
    tr = truths(diffs)
    k = data.draw(st.integers(0, n), label="diffs before the audit begins")
    j = data.draw(st.integers(0, n), label="diff index of the snapshot's id")
    limit = data.draw(st.integers(1, 12), label="snapshot depth")
    depth = data.draw(st.integers(1, 12), label="compared depth")
    r, resyncs = make_router()
    feed(r, diffs[:k])
    live = r.book(V, SID)
    with AuditProbe(r, V, SID) as probe:
        feed(r, diffs[k:])
        snap_id, top = tr[j]
        # the oracle: the shadow's rule on the same buffered diffs and snapshot
        ref = sync_ref.RefSync(sync_ref.SNAPSHOT_DIFF, BIG)
        for d in diffs[k:]:
            ref.update(d)
        ref.snapshot(sync_ref.Diff(snap_id, snap_id, *snap_of(top, limit)))
        probe.feed_snapshot(snap_id, *snap_of(top, limit))
        v = probe.verdict(depth)
        event(v.result)
        assert probe.shadow.book.in_sync == ref.in_sync
        if ref.in_sync and ref.book.last_id == live.last_id:
            assert v.result == MATCH, v
            assert probe.shadow.book.top() == ref.book.top()      # the shadow is the oracle's book
            # plant a wrong quantity on a compared level (within depth, the snapshot's depth and
            # at or above its worst bid): found, named, and nothing else
            snap_bids = snap_of(top, limit)[0]
            bids = [lv for lv in live.top(depth)[0] if not snap_bids or lv[0] >= snap_bids[-1][0]]
            m = min(depth, len(snap_bids) or depth, len(bids))
            if m:
                i = data.draw(st.integers(0, m - 1), label="planted bid level")
                p, q = bids[i]
                live.py_set_level(True, p, q + 1)
                v2 = probe.verdict(depth)
                assert v2.result == MISMATCH
                assert v2.differences == (LevelDifference("bid", i, (p, q + 1), (p, q)),)
                assert v2.last_id == live.last_id
        else:
            # the snapshot could not be brought to the live book's id: proves nothing
            assert v.result == INCONCLUSIVE, v
            assert not v.differences
    assert r.audit_pending(V) is None
    assert resyncs == []                      # the audit itself never resyncs the live book


def test_snapshot_ahead_of_the_stream_waits_for_the_stream():
    diffs = stream(7, 20)
    tr = truths(diffs)
    r, _ = make_router()
    feed(r, diffs[:10])
    with AuditProbe(r, V, SID) as probe:
        snap_id, top = tr[15]                 # the venue answered with a book the stream has not reached
        probe.feed_snapshot(snap_id, *snap_of(top, 5))
        assert probe.verdict(5).result == PENDING
        feed(r, diffs[10:14])
        assert probe.verdict(5).result == PENDING
        feed(r, diffs[14:])
        v = probe.verdict(5)
        assert v.result == MATCH and v.last_id == tr[20][0]


def test_live_resync_during_the_audit_is_inconclusive_even_with_a_wrong_book():
    diffs = stream(9, 20)
    tr = truths(diffs)
    r, _ = make_router()
    feed(r, diffs[:5])
    with AuditProbe(r, V, SID) as probe:
        feed(r, diffs[5:10])
        r.request_resync(V, SID)
        assert r.snapshot(V, SID, tr[10][0], *tr[10][1]) == 0
        feed(r, diffs[10:])
        live = r.book(V, SID)
        p, q = live.top(1)[0][0]
        live.py_set_level(True, p, q + 3)
        probe.feed_snapshot(tr[12][0], *snap_of(tr[12][1], 10))
        v = probe.verdict(10)
    assert v.result == INCONCLUSIVE and "resynced" in v.reason


def test_snapshot_older_than_the_audits_first_diff_is_inconclusive():
    diffs = stream(3, 20, multi=False)
    tr = truths(diffs)
    r, _ = make_router()
    feed(r, diffs[:10])
    with AuditProbe(r, V, SID) as probe:
        feed(r, diffs[10:])
        probe.feed_snapshot(tr[8][0], *snap_of(tr[8][1], 10))     # id 8: diffs 9, 10 never reached the shadow
        v = probe.verdict(10)
    assert v.result == INCONCLUSIVE and "bridged" in v.reason
    # and with nothing after the audit began: the snapshot is simply behind the live book
    r2, _ = make_router()
    feed(r2, diffs)
    with AuditProbe(r2, V, SID) as probe:
        probe.feed_snapshot(tr[15][0], *snap_of(tr[15][1], 10))
        v = probe.verdict(10)
    assert v.result == INCONCLUSIVE and "older" in v.reason
