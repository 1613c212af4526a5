"""Memory per live book (issue 23: at most 64 KB a book at 100 levels a side, over 1,000 books).

``book_memory``: a fresh interpreter (so that nothing else this run allocated is counted) builds the
node's book pipeline (:class:`BookRouter`, one book per instrument with the node's default depth and
level cap, as ``VenueAdapter.attach`` adds them), syncs every book from a 100-level-a-side snapshot,
then applies 100 diffs to each, and reports RSS after minus RSS before, over the books. The median
of the rounds is the figure; the target is 64 KB a book. The child also reports Python's traced
allocations over the books (what the Python objects hold, the rest being the books' C arrays).
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET_BYTES = 64 * 1024

_CHILD = r"""
import json, sys, tracemalloc
sys.path.insert(0, %(root)r)
from cexnode._core.book import SYNC_SNAPSHOT_DIFF
from cexnode._core.router import BookRouter
from cexnode._core.symbols import get_symbol

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

n_books, levels = %(books)d, %(levels)d
syms = [get_symbol("M%%04d/USDT" %% i).id for i in range(n_books)]
router = BookRouter()
tracemalloc.start()
t0, r0 = tracemalloc.get_traced_memory()[0], rss()
books = []
for k, sid in enumerate(syms):
    venue = k %% 3
    books.append(router.add_book(venue, sid, SYNC_SNAPSHOT_DIFF, 100, max_levels=20000))
    bids = [(1_000_000 - 10 * i, 1000 + i) for i in range(levels)]
    asks = [(1_000_010 + 10 * i, 1000 + i) for i in range(levels)]
    router.snapshot(venue, sid, 1, bids, asks)
for step in range(100):
    for k, sid in enumerate(syms):
        p = 1_000_000 - 10 * (step %% levels)
        router.py_depth(k %% 3, sid, 2 + step, 2 + step, bids=[(p, 2000 + step)], asks=[])
r1, t1 = rss(), tracemalloc.get_traced_memory()[0]
assert all(b.in_sync for b in books), "a book left sync"
print(json.dumps({"rss_per_book": (r1 - r0) / n_books, "traced_per_book": (t1 - t0) / n_books,
                  "levels": len(books[0].top(levels)[0])}))
"""


def _round(books: int, levels: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD % {"root": str(ROOT), "books": books, "levels": levels}],
                         check=True, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def book_memory(quick: bool) -> dict:
    books, levels = 1000, 100
    rounds = [_round(books, levels) for _ in range(1 if quick else 3)]
    per = sorted(r["rss_per_book"] for r in rounds)
    traced = sorted(r["traced_per_book"] for r in rounds)
    return {"name": "book_memory", "unit": "bytes per book", "median_ns": None, "p99_ns": None,
            "target_ns": None, "books": books, "levels_per_side": levels,
            "rss_bytes_per_book": per[len(per) // 2], "rss_bytes_per_book_rounds": per,
            "python_traced_bytes_per_book": traced[len(traced) // 2],
            "target_bytes_per_book": TARGET_BYTES, "meets_target": per[len(per) // 2] <= TARGET_BYTES}


BENCHMARKS = [book_memory]
