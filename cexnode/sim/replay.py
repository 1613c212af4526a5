"""Loop replay of generated books (``sim.universe.replay_steps``): the market at scale for little CPU.

Generating a diff (``MarketGenerator.step_book``) and writing its frames cost about a hundred
microseconds of Python each (perf/results/sim_market.json has the numbers), which caps the
simulator far below a market of thousands of books. A :class:`BookLoop` generates a book's first
``n`` diffs as usual and records each with the sizes it replaced; from then on the book plays its
diffs backwards (each undoing one: the book walks back to where it started) and forwards again,
for ever. Every push is still an ordinary diff applied to the true book (REST snapshots,
``true_book`` and the matching engines see what the streams carry) with fresh ids and times; only
its frames are reused: the first time a position of the loop is pushed on a channel its frames are
rendered with sentinel ids and times (:data:`SENTINEL_S`, :func:`sentinel_id`), and later pushes
substitute the real ones into those bytes (:meth:`cexnode.sim.server.SimVenue.fill_template`).

A change from outside the generator (a fill, a ``full`` reset) ends the loop: the book continues
live from where it is and records a new loop. Replayed diffs carry no public trades (their trade
ids would repeat).
"""
from __future__ import annotations

from typing import Optional

__all__ = ["BookLoop", "SENTINEL_S", "SENTINEL_MS", "sentinel_id"]

#: wall time a template is rendered at: 2065-01-24; its seconds and milliseconds are digit runs no
#: price or size string holds, and as a protobuf varint it is as long as today's milliseconds
SENTINEL_S = 2999999999.9995
SENTINEL_MS = 2999999999999


def sentinel_id(digits: int, last: bool) -> int:
    """A placeholder update id as long as the real one: ``77..7`` (first) or ``88..8`` (last)."""
    return int(("8" if last else "7") * digits)


class BookLoop:
    """The recorded diffs of one book and where its replay is.

    ``steps[i]``: ``(bids, asks, n_ids)`` of the i-th diff of the loop, best first: the ``n``
    recorded forward diffs, then their inverses in reverse order, so that the book is back at its
    start after ``2 n`` steps. ``templates``: ``(position, kind, variant) -> [(frame, binary)]``
    rendered with sentinels, or None where a frame cannot be templated (rendered every time).
    """

    __slots__ = ("n", "steps", "undo", "pos", "templates")

    def __init__(self, n: int):
        if n < 1:
            raise ValueError("a loop needs at least one step")
        self.n = n
        self.steps: list[tuple[list, list, int]] = []
        self.undo: list[tuple[list, list, int]] = []
        self.pos = 0
        self.templates: dict[tuple, Optional[list]] = {}

    @property
    def recording(self) -> bool:
        return len(self.steps) < self.n

    def record(self, bids: list, asks: list, old_bids: dict, old_asks: dict, n_ids: int) -> None:
        """One generated diff and the sizes its levels had before it (0: absent)."""
        self.steps.append((bids, asks, n_ids))
        self.undo.append(([(p, old_bids.get(p, 0)) for p, _ in bids], [(p, old_asks.get(p, 0)) for p, _ in asks],
                          n_ids))
        if not self.recording:
            self.steps.extend(reversed(self.undo))
            self.undo = []
            self.pos = self.n            # the book is at the loop's far end: walk back first

    def next_step(self) -> tuple[int, tuple[list, list, int]]:
        """``(position, (bids, asks, n_ids))`` of the next replayed diff."""
        pos = self.pos
        self.pos = (pos + 1) % len(self.steps)
        return pos, self.steps[pos]
