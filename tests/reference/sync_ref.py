"""Oracle for cexnode._core.book.BookSync: the venue sequence rules, written plainly.

SNAPSHOT_DIFF (Gate order_book_update, MEXC aggre depth): buffer diffs until a snapshot (bounded,
keep the newest on overflow); snapshot id S: drop last <= S; every diff applied needs
first <= id+1 <= last (an overlap is applied, as Gate's own client does; first > id+1 is a gap).
``full`` diffs replace the book, set id = last and count as bridged.
STREAM_FULL (obu): ignore diffs until a full push, then the same rule.
Gap / crossed / level cap / overflow / unbridgeable snapshot -> out of sync, book cleared, callback
once per episode.
"""
from __future__ import annotations

from .decimal_book import RefBook

SNAPSHOT_DIFF, STREAM_FULL = 0, 1
OK, STALE, BUFFERED, RESYNC, IGNORED = range(5)
R_NONE, R_GAP, R_CROSSED, R_OVERFLOW, R_SNAPSHOT_STALE, R_REQUESTED, R_LEVEL_CAP = range(7)


class Diff:
    __slots__ = ("first", "last", "bids", "asks", "full", "ts", "recv")

    def __init__(self, first, last, bids=(), asks=(), full=False, ts=0, recv=0):
        self.first, self.last, self.bids, self.asks = first, last, list(bids), list(asks)
        self.full, self.ts, self.recv = full, ts, recv

    @property
    def n_levels(self):
        return len(self.bids) + len(self.asks)


class RefSync:
    def __init__(self, rule=SNAPSHOT_DIFF, depth=400, buffer_limit=1024, buffer_level_limit=1 << 18,
                 max_levels=20000):
        self.rule = rule
        self.book = RefBook(depth, max_levels)
        self.level_cap_resyncs = 0
        self.in_sync = False
        self.buffer_limit, self.buffer_level_limit = buffer_limit, buffer_level_limit
        self.synced = self.bridged = self.reported = False
        self.buf: list[Diff] = []
        self.resync_reason = R_NONE
        self.resyncs = self.applied = self.stale_dropped = self.ignored = self.buffer_dropped = 0
        self.calls: list[int] = []

    # -- helpers
    def _leave(self, reason):
        if reason == R_LEVEL_CAP:
            self.level_cap_resyncs += 1
        self.book.clear()
        self.in_sync = self.synced = self.bridged = False
        self.resync_reason = reason

    def _report(self):
        if not self.reported:
            self.reported = True
            self.resyncs += 1
            self.calls.append(self.resync_reason)
        return RESYNC

    def _buffer(self, d: Diff):
        if self.buf:
            if d.last <= self.buf[-1].last:
                self.stale_dropped += 1
                return STALE
            if d.first > self.buf[-1].last + 1:
                self.buf = []
        if d.n_levels > self.buffer_level_limit:
            self.buffer_dropped += len(self.buf) + 1
            self.buf = []
            self.resync_reason = R_OVERFLOW
            return self._report() if not self.reported else IGNORED
        overflow = False
        while self.buf and (len(self.buf) >= self.buffer_limit
                            or sum(x.n_levels for x in self.buf) + d.n_levels > self.buffer_level_limit):
            self.buf.pop(0)
            self.buffer_dropped += 1
            overflow = True
        self.buf.append(d)
        if overflow:
            self.resync_reason = R_OVERFLOW
            if not self.reported:
                return self._report()
        return BUFFERED

    def _resync_keeping(self, d, reason):
        self.buf = []
        self._leave(reason)
        if self.rule == SNAPSHOT_DIFF:
            if d.n_levels <= self.buffer_level_limit:
                self._buffer(d)
            else:
                self.buffer_dropped += 1
        return self._report()

    def _apply(self, d: Diff, full=False):
        self.book.apply(d.bids, d.asks, full=full, last_id=d.last, exch_ts_ms=d.ts, recv_ns=d.recv)
        self.applied += 1

    # -- API
    def update(self, d: Diff):
        if d.full:
            return self._full(d, from_stream=True)
        if not self.synced:
            if self.rule == STREAM_FULL:
                self.ignored += 1
                return IGNORED
            return self._buffer(d)
        return self._checked(d)

    def snapshot(self, d: Diff):
        return self._full(d, from_stream=False)

    def request_resync(self, reason=R_REQUESTED):
        self.buf = []
        self._leave(reason)
        self._report()

    def _checked(self, d: Diff):
        nxt = self.book.last_id + 1
        if d.last < nxt:
            self.stale_dropped += 1
            return STALE
        if d.first > nxt or d.first > d.last:
            return self._resync_keeping(d, R_GAP)
        self._apply(d)
        self.bridged = True
        if self.book.overflowed:
            return self._resync_keeping(d, R_LEVEL_CAP)
        if self.book.crossed:
            return self._resync_keeping(d, R_CROSSED)
        return OK

    def _full(self, d: Diff, from_stream: bool):
        if self.synced and d.last <= self.book.last_id:
            self.stale_dropped += 1
            return STALE
        if not from_stream:
            self.reported = False
        else:
            self.buf = []
        self._apply(d, full=True)
        if self.book.overflowed or self.book.crossed:
            self._leave(R_LEVEL_CAP if self.book.overflowed else R_CROSSED)
            return self._report()
        self.synced = self.in_sync = True
        self.bridged = from_stream
        self.reported = False
        self.resync_reason = R_NONE
        # replay the buffer (only non-empty after a REST snapshot)
        while self.buf:
            b = self.buf[0]
            if b.last <= self.book.last_id:
                self.stale_dropped += 1
                self.buf.pop(0)
                continue
            nxt = self.book.last_id + 1
            if b.first > nxt:
                self._leave(R_GAP if self.bridged else R_SNAPSHOT_STALE)
                return self._report()
            self._apply(b)
            self.bridged = True
            if self.book.overflowed or self.book.crossed:   # that diff stays buffered
                self._leave(R_LEVEL_CAP if self.book.overflowed else R_CROSSED)
                return self._report()
            self.buf.pop(0)
        return OK

    def buffered_ids(self):
        return [(b.first, b.last) for b in self.buf]
