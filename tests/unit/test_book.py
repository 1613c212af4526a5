"""cexnode._core.book.Book against the pure-Python oracle (tests/reference/decimal_book.py)."""
import os
import random

import pytest
from hypothesis import given, settings, strategies as st

from cexnode._core.book import Book
from reference.bytestream import ByteStream
from reference.decimal_book import RefBook

LONG = bool(os.environ.get("CEXNODE_LONG"))

LIMITS = [1, 2, 3, 4, 8, 9, 12, 20, 40, 400]


def same(book, ref):
    assert book.overflowed == ref.overflowed
    if ref.overflowed:
        # an overflowed book is resynced by its owner (BookSync): which levels an unsorted full
        # replace kept is not part of the contract; the next full update starts afresh
        book.py_clear()
        ref.clear()
    assert book.top() == ref.top()
    assert book.counts() == (len(ref.bids), len(ref.asks))
    assert book.version == ref.version
    assert book.crossed == ref.crossed
    bb, ba = ref.top(1)
    assert book.best_bid() == (bb[0] if bb else None) and book.best_ask() == (ba[0] if ba else None)


BOOKS_PER_SEED = 4
BOOKS = {"n": 0}


@settings(max_examples=100_000 if LONG else 2_500, derandomize=not LONG, deadline=None)
@given(st.integers(0, 2 ** 64 - 1))
def test_book_matches_reference(seed):
    """10,000 generated books (2,500 hypothesis seeds x 4; ops decoded from seeded random bytes,
    cheaper than drawing them through hypothesis): every intermediate book equals the oracle."""
    rnd = random.Random(seed)
    for _ in range(BOOKS_PER_SEED):
        limit, data = rnd.choice(LIMITS), rnd.randbytes(rnd.randrange(120, 401))   # limit: max_levels
        try:
            _one_book(limit, data)
        except AssertionError as e:
            e.add_note("limit %d, bytes: %s" % (limit, data.hex()))
            raise
        BOOKS["n"] += 1


def test_book_volume():
    """Runs after the property test (file order): at least 10,000 books were compared."""
    if BOOKS["n"] == 0:
        pytest.skip("property test not run in this session")
    assert BOOKS["n"] >= 10_000


def _one_book(limit, data):
    bs = ByteStream(data)
    depth = min(limit, 4)
    book, ref = Book(0, 0, depth, limit), RefBook(depth, limit)
    i = 0
    while bs:
        i += 1
        kind = bs.next(10)
        if kind < 6:                                   # one level
            is_bid, p, q = bool(bs.next(2)), bs.next(61), bs.next(4)
            assert book.py_set_level(is_bid, p, q) == bool(ref.set_level(is_bid, p, q))
            assert ref.set_level(is_bid, p, q) == 0      # idempotent
            assert not book.py_set_level(is_bid, p, q)
        else:
            full = kind >= 8
            bids, asks = bs.levels(20 if full else 6, 61), bs.levels(20 if full else 6, 61)
            if full and kind == 9:   # venue order: touch first, unique prices -> the fast path
                bids = sorted(dict(bids).items(), reverse=True)
                asks = sorted(dict(asks).items())
            got = book.py_apply(bids, asks, full=full, first_id=i, last_id=i + 1, exch_ts_ms=7 * i, recv_ns=9 * i)
            want = ref.apply(bids, asks, full=full, last_id=i + 1, exch_ts_ms=7 * i, recv_ns=9 * i)
            assert got == want or ref.overflowed         # (what an overflowed replace kept: see same())
            assert (book.last_id, book.exch_ts_ms, book.recv_ns) == (i + 1, 7 * i, 9 * i)
        same(book, ref)


def test_touch_is_index_zero_and_walk():
    b = Book(3, 1, 10)
    b.py_apply([(100, 1), (99, 2), (101, 3)], [(103, 4), (102, 5), (105, 6)])
    assert b.top() == ([(101, 3), (100, 1), (99, 2)], [(102, 5), (103, 4), (105, 6)])
    assert b.top(2) == ([(101, 3), (100, 1)], [(102, 5), (103, 4)])
    assert b.top(0) == ([], [])
    assert not b.crossed
    b.py_set_level(True, 102, 1)
    assert b.crossed                     # best bid >= best ask
    b.py_set_level(True, 102, 0)
    b.py_set_level(False, 101, 1)        # equal prices also count as crossed
    assert b.crossed
    assert (b.symbol_id, b.venue, b.depth, b.in_sync) == (3, 1, 10, False)
    b.mark_in_sync()
    assert b.in_sync


def test_levels_beyond_depth_are_kept():
    # depth is what readers use; the book keeps every level it was told about
    b = Book(0, 0, 3)
    b.py_apply([(100, 1), (99, 1), (98, 1)], [])
    assert b.py_set_level(True, 97, 5)                # beyond depth: kept
    assert b.py_set_level(True, 101, 1)
    assert b.py_set_level(True, 100, 0)
    assert b.py_set_level(True, 99, 0)                # the market moves through the top levels ...
    assert b.top()[0] == [(101, 1), (98, 1), (97, 5)]  # ... and the deeper ones come up, exact
    assert b.top(2)[0] == [(101, 1), (98, 1)] and not b.overflowed


def test_sweep_far_beyond_the_initial_allocation_and_back():
    # 3,000 levels a side on a depth-10 book (allocation 36 levels to start): grows, stays sorted
    b, ref = Book(0, 0, 10), RefBook(10)
    for i in range(3000):
        b.py_set_level(True, 10_000 - i, i + 1)
        ref.set_level(True, 10_000 - i, i + 1)
        b.py_set_level(False, 20_000 + 7 * i % 3000, i + 1)   # inserts at every depth, not only the end
        ref.set_level(False, 20_000 + 7 * i % 3000, i + 1)
    assert b.top() == ref.top() and b.counts() == (3000, 3000)
    for i in range(2990):                              # a sweep through 2,990 asks and bids
        b.py_set_level(False, 20_000 + i, 0)
        ref.set_level(False, 20_000 + i, 0)
        b.py_set_level(True, 10_000 - i, 0)
        ref.set_level(True, 10_000 - i, 0)
    assert b.top() == ref.top() and b.counts() == (10, 10)
    b.py_clear()                                        # gives the grown allocation back
    assert b.counts() == (0, 0) and b.top() == ([], [])
    b.py_apply([(5, 1)], [(6, 1)], full=True)
    assert b.top() == ([(5, 1)], [(6, 1)])


def test_level_cap_overflows_instead_of_dropping():
    b = Book(0, 0, 2, 3)
    b.py_apply([(100, 1), (99, 1), (98, 1)], [])
    assert not b.overflowed
    assert not b.py_set_level(True, 101, 1)           # a side at the cap takes no new level
    assert b.overflowed and b.top()[0] == [(100, 1), (99, 1), (98, 1)]
    assert b.py_set_level(True, 100, 7)               # changes of kept levels still apply
    b.py_clear()
    assert not b.overflowed
    with pytest.raises(ValueError):
        Book(0, 0, 5, 4)                               # the cap is at least the depth


def test_full_replace_skips_zero_and_caps():
    b = Book(0, 0, 2)
    v = b.version
    assert b.py_apply([(5, 1), (7, 0), (6, 2), (4, 1)], [(9, 1)], full=True, last_id=42) == 4
    assert b.top() == ([(6, 2), (5, 1), (4, 1)], [(9, 1)]) and b.version == v + 1 and b.last_id == 42
    assert b.py_apply([], [], full=True) == 0 and b.counts() == (0, 0) and b.version == v + 2
    c = Book(0, 0, 1, 2)
    c.py_apply([(6, 2), (5, 1), (4, 1)], [(9, 1)], full=True)   # venue order, deeper than the cap
    assert c.overflowed and c.top() == ([(6, 2), (5, 1)], [(9, 1)])
    c.py_apply([(6, 2)], [(9, 1)], full=True)                   # a full replace starts afresh
    assert not c.overflowed


def test_empty_update_advances_id_and_time_not_version():
    b = Book()
    b.py_apply([(1, 1)], [])
    v = b.version
    assert b.py_apply([], [], last_id=5, exch_ts_ms=11, recv_ns=12) == 0
    assert (b.last_id, b.exch_ts_ms, b.recv_ns, b.version) == (5, 11, 12, v)
    assert b.py_apply([(1, 1)], []) == 0 and b.version == v     # same quantity: no change


def test_errors():
    with pytest.raises(ValueError):
        Book(0, 0, 0)
    b = Book()
    with pytest.raises(ValueError):
        b.py_set_level(True, 1, -1)
    with pytest.raises(ValueError):
        b.py_apply([(1, -5)], [], full=True)


def test_one_directional_churn_recentres_storage():
    # Many inserts at the touch then deletes: the segment slides and is re-centred; stays exact.
    b, ref = Book(0, 0, 5), RefBook(5)
    for i in range(1000):
        for bk in (b, ref):
            bk.set_level(True, 1000 + i, 1) if bk is ref else bk.py_set_level(True, 1000 + i, 1)
            bk.set_level(False, 5000 - i, 1) if bk is ref else bk.py_set_level(False, 5000 - i, 1)
        assert b.top() == ref.top()
    for i in range(1000):
        b.py_set_level(True, 1999 - i, 0)
        ref.set_level(True, 1999 - i, 0)
        b.py_set_level(False, 1000 + i, 1)
        ref.set_level(False, 1000 + i, 1)
        assert b.top() == ref.top()


def test_bench_helper_applies():
    b = Book(0, 0, 100)
    b.py_apply([(i, 1) for i in range(50)], [(100 + i, 1) for i in range(50)], full=True)
    ns = b.bench_apply([([(49, 2)], []), ([(49, 1)], [])], 10)
    assert ns >= 0 and b.top(1) == ([(49, 1)], [(100, 1)])
