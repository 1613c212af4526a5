"""Book audits: a runtime truth check of the live books against the venue's REST snapshot.

A live book is synced once from a snapshot and then trusted to follow the diff stream; a bug in a
parser, in the sync rule or in the venue's stream would leave it wrong without any gap to notice.
Every ``venues.<venue>.book_audit_interval_s`` (0: off) each book of the venue is checked once:

1. **When** — one task per venue (:class:`BookAuditor`) audits its books one at a time; the books'
   first audits are spread evenly over the interval, later ones follow ``interval`` after the last.
   An audit is *skipped* (and retried after ``min(interval, RETRY_S)``) while the book is out of
   sync, while any book of the venue waits for its resync snapshot (those snapshots come first),
   or when the REST manager has no room to spare: the snapshot is a background request
   (:func:`cexnode.net.rest.background_requests`), which is never delayed, never retried and never
   takes the last slots of a rate-limit window from a resync snapshot.
2. **Shadow** — :class:`AuditProbe` registers a shadow BookSync for the book with the router
   (``BookRouter.audit_begin``) right before the REST request goes out: from then on the router
   feeds every depth update of that book to the shadow too, which buffers them as a syncing book
   does. The snapshot (fetched by the adapter's own ``fetch_snapshot``, the sync code path) is fed
   to the shadow with ``on_snapshot``, which replays the buffered diffs exactly as a sync would.
3. **Compare** — once the shadow is in sync at the live book's id (a snapshot newer than the
   stream waits up to ``CATCH_UP_S`` for the stream to reach it), both books' top levels are
   compared (:func:`compare_tops`): ``book_depth`` levels per side, or the snapshot's depth if
   smaller, and only down to the snapshot's worst level (beyond it the shadow knows only what
   diffs told it). A difference is a **mismatch**: logged with the first differing level of each
   side, counted (``cexnode_book_audit_mismatches_total{venue,symbol}``) and the book is resynced
   (``BookRouter.request_resync``: the adapter fetches a fresh snapshot).
4. **Inconclusive** — a snapshot that cannot be brought to the live book's id (older than the
   first diff the shadow buffered, the live book resynced meanwhile, the stream never reached the
   snapshot's id) proves nothing either way: counted as ``inconclusive``, retried soon, never a
   mismatch.

Books kept by ``SYNC_STREAM_FULL`` (a venue stream of whole books) are not audited: nothing
documents that such a stream's update ids are comparable with the REST snapshot's id (the stream
needs no REST snapshot), so there is no id at which the two could be compared. The live node syncs
every book from REST snapshots (``SYNC_SNAPSHOT_DIFF``); only a replay follows a whole-book stream.
A replay has no auditor (no venue behind the capture to ask).

Every audit is counted in ``cexnode_book_audits_total{venue,result}`` (match, mismatch,
inconclusive, skipped, error).
"""
from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from cexnode._core.book import RESYNC_REQUESTED, SYNC_SNAPSHOT_DIFF
from cexnode._core.fixedpoint import format as fmt
from cexnode.log import get_exchange_logger
from cexnode.net.errors import RestBusyError
from cexnode.net.rest import background_requests

__all__ = ["BookAuditor", "AuditProbe", "AuditVerdict", "LevelDifference", "compare_tops", "first_audit_offsets",
           "MATCH", "MISMATCH", "INCONCLUSIVE", "PENDING", "SKIPPED", "ERROR"]

MATCH, MISMATCH, INCONCLUSIVE, PENDING, SKIPPED, ERROR = (
    "match", "mismatch", "inconclusive", "pending", "skipped", "error")

Level = tuple[int, int]


@dataclass(frozen=True, slots=True)
class LevelDifference:
    """The first level of one side where the live book and the venue's book differ.

    ``index`` counts from the touch (0) within the compared levels; ``live`` / ``venue`` are the
    ``(price, qty)`` mantissas there, None where that book has no level at that index."""

    side: str
    index: int
    live: Optional[Level]
    venue: Optional[Level]


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    result: str                      # MATCH, MISMATCH, INCONCLUSIVE or PENDING
    reason: str = ""                 # why inconclusive / pending
    last_id: int = 0                 # the id both books were compared at (live book's id otherwise)
    snapshot_id: int = 0
    differences: tuple = ()          # LevelDifference per differing side (MISMATCH)


def _side_levels(levels: Sequence[Level], is_bid: bool, bound: Optional[int], n: int) -> list[Level]:
    """The first ``n`` of ``levels`` (touch first) that are at or better than ``bound``."""
    if bound is None:
        return list(levels[:n])
    out = []
    for lv in levels:
        if (lv[0] < bound) if is_bid else (lv[0] > bound):
            break                    # touch first: everything after is worse still
        out.append(lv)
        if len(out) == n:
            break
    return out


def compare_tops(live_top: tuple, venue_top: tuple, snap_bids: Sequence[Level], snap_asks: Sequence[Level],
                 depth: int) -> list[LevelDifference]:
    """First differing level of each side between the live book and the venue's book (both
    ``Book.top(depth)`` at the same id; the venue's is the snapshot brought to that id).

    Per side, the compared levels are at most ``depth`` and at most as many as the snapshot has, and
    only those at or better than the snapshot's worst level: beyond that level the venue's book
    holds only the levels diffs have named since the snapshot, not the venue's whole book. An empty
    snapshot side compares ``depth`` levels. Returns ``[]`` when they agree."""
    out = []
    for k, (side, is_bid, snap) in enumerate((("bid", True, snap_bids), ("ask", False, snap_asks))):
        n = min(depth, len(snap)) if snap else depth
        bound = snap[-1][0] if snap else None
        a = _side_levels(live_top[k], is_bid, bound, n)
        b = _side_levels(venue_top[k], is_bid, bound, n)
        if a == b:
            continue
        i = 0
        while i < len(a) and i < len(b) and a[i] == b[i]:
            i += 1
        out.append(LevelDifference(side, i, tuple(a[i]) if i < len(a) else None,
                                   tuple(b[i]) if i < len(b) else None))
    return out


def first_audit_offsets(interval_s: float, n: int) -> list[float]:
    """Seconds after the start at which each of ``n`` books is audited first: spread evenly over one
    interval (the last at the interval), so that the books' snapshots never come all at once."""
    return [interval_s * (i + 1) / n for i in range(n)]


class AuditProbe:
    """One audit of one book, from the shadow's registration to :meth:`close` (module docstring).

    Parameters
    ----------
    router : BookRouter
        The node's router; the book ``(venue_id, symbol_id)`` must be synced from REST snapshots.
    venue_id, symbol_id : int
    """

    def __init__(self, router: Any, venue_id: int, symbol_id: int) -> None:
        self.router = router
        self.venue_id = venue_id
        self.symbol_id = symbol_id
        self.live_sync = router.book_sync(venue_id, symbol_id)
        if self.live_sync is None:
            raise KeyError("no book for venue %d symbol id %d" % (venue_id, symbol_id))
        self._resyncs0 = self.live_sync.resyncs
        self.shadow = router.audit_begin(venue_id, symbol_id)
        self.snapshot_id: Optional[int] = None
        self._snap_bids: Sequence[Level] = ()
        self._snap_asks: Sequence[Level] = ()
        self._open = True

    def feed_snapshot(self, last_id: int, bids: Sequence[Level], asks: Sequence[Level]) -> int:
        """Give the shadow the REST snapshot (levels as mantissas at the book's scales, as
        ``fetch_snapshot`` returns them); returns its ApplyResult."""
        self.snapshot_id = last_id
        self._snap_bids, self._snap_asks = bids, asks
        return self.shadow.py_snapshot(last_id, bids, asks)

    def verdict(self, depth: int) -> AuditVerdict:
        """Compare now, if the shadow and the live book can be compared (module docstring);
        PENDING while the snapshot is ahead of the stream (call again once more diffs came)."""
        live = self.live_sync.book
        sb = self.shadow.book
        snap_id = -1 if self.snapshot_id is None else self.snapshot_id
        if self.snapshot_id is None:
            return AuditVerdict(PENDING, "no snapshot yet", live.last_id, snap_id)
        if self.live_sync.resyncs != self._resyncs0 or not live.in_sync:
            return AuditVerdict(INCONCLUSIVE, "live book resynced during the audit", live.last_id, snap_id)
        if not sb.in_sync:
            return AuditVerdict(INCONCLUSIVE, "snapshot could not be bridged to the stream", live.last_id, snap_id)
        if sb.last_id > live.last_id:
            return AuditVerdict(PENDING, "snapshot ahead of the stream", live.last_id, snap_id)
        if sb.last_id < live.last_id:
            return AuditVerdict(INCONCLUSIVE, "snapshot older than the diffs the audit saw", live.last_id, snap_id)
        diffs = compare_tops(live.top(depth), sb.top(depth), self._snap_bids, self._snap_asks, depth)
        return AuditVerdict(MISMATCH if diffs else MATCH, "", live.last_id, snap_id, tuple(diffs))

    def close(self) -> None:
        """Unregister the shadow (idempotent)."""
        if self._open:
            self._open = False
            pending = self.router.audit_pending(self.venue_id)
            if pending is not None and pending[1] is self.shadow:
                self.router.audit_end(self.venue_id)

    def __enter__(self) -> "AuditProbe":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class BookAuditor:
    """The periodic audits of one venue's books (module docstring). Created by the venue adapter
    when ``book_audit_interval_s`` > 0; :meth:`start` after the adapter started.

    ``results`` counts audits by result and ``mismatches`` by unified symbol (the metrics read both).
    """

    RETRY_S = 5.0          # an audit that proved nothing is tried again this soon (at most the interval)
    CATCH_UP_S = 2.0       # how long a snapshot ahead of the stream waits for the stream to reach it
    POLL_S = 0.002         # how often the stream's progress is checked meanwhile

    def __init__(self, adapter: Any, interval_s: float) -> None:
        self.adapter = adapter
        self.venue = adapter.name
        self.interval_s = float(interval_s)
        self.log = get_exchange_logger(adapter.name, "book_audit")
        self.results: collections.Counter = collections.Counter()
        self.mismatches: collections.Counter = collections.Counter()
        self.last_mismatch: Optional[dict] = None
        self._task: Optional[asyncio.Task] = None
        self._probe: Optional[AuditProbe] = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.interval_s <= 0 or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._task.add_done_callback(self._done)

    def _done(self, t: asyncio.Task) -> None:
        if not t.cancelled() and t.exception() is not None:
            self.log.error("book audits stopped", venue=self.venue, error=repr(t.exception())[:300])

    async def stop(self) -> None:
        t, self._task = self._task, None
        if t is not None:
            t.cancel()
            try:
                await t
            except BaseException:
                pass
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- schedule --------------------------------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due: dict[int, float] = {}          # symbol id -> loop time of its next audit
        seen: set = set()                   # books looked at (audited or not auditable)
        while True:
            self._follow_books(due, seen, loop.time())
            if not due:
                await asyncio.sleep(min(self.interval_s, self.RETRY_S))
                continue
            sid = min(due, key=due.__getitem__)
            wait = due[sid] - loop.time()
            if wait > 0:
                # short enough that books added meanwhile join the schedule
                await asyncio.sleep(min(wait, self.RETRY_S))
                continue
            result = await self.audit(sid)
            later = self.interval_s if result in (MATCH, MISMATCH) else min(self.interval_s, self.RETRY_S)
            if sid in due:
                due[sid] = loop.time() + later

    def _follow_books(self, due: dict, seen: set, now: float) -> None:
        """The schedule follows the adapter's books (added and removed at run time): a removed book
        leaves it, new books get first audits spread over one interval from now."""
        ad = self.adapter
        for sid in [sid for sid in seen if sid not in ad.books]:
            seen.discard(sid)
            due.pop(sid, None)
        new = []
        for sid in ad.books:
            if sid in seen:
                continue
            seen.add(sid)
            sync = ad.router.book_sync(ad.venue_id, sid)
            if sync is not None and sync.rule == SYNC_SNAPSHOT_DIFF:
                new.append(sid)
            else:       # obu: its ids are not comparable with the REST snapshot's (module docstring)
                self.log.info("book not audited: not synced from REST snapshots", venue=self.venue,
                              symbol=ad._venue_symbols.get(sid, sid))
        for sid, off in zip(new, first_audit_offsets(self.interval_s, len(new))):
            due[sid] = now + off

    # -- one audit ---------------------------------------------------------------------------------------
    def _skip_reason(self, sid: int) -> str:
        ad = self.adapter
        sync = ad.router.book_sync(ad.venue_id, sid)
        if sync is None or sync.rule != SYNC_SNAPSHOT_DIFF:
            return "not synced from REST snapshots"
        if not sync.book.in_sync:
            return "book out of sync"
        if ad._stopping or not ad.connected:
            return "venue not connected"
        if any(not t.done() for t in ad._resyncing.values()):
            return "venue resyncing"
        if ad.router.audit_pending(ad.venue_id) is not None:
            return "an audit is pending"
        return ""

    async def audit(self, sid: int) -> str:
        """Audit the book of symbol id ``sid`` now; returns the result (counted in ``results``)."""
        try:
            result = await self._audit(sid)
        except asyncio.CancelledError:
            raise
        except Exception as e:          # one failed audit must not end the audits
            self.log.error("book audit failed", venue=self.venue, symbol=self.adapter._venue_symbols.get(sid, sid),
                           error=repr(e)[:300])
            result = ERROR
        self.results[result] += 1
        return result

    async def _audit(self, sid: int) -> str:
        ad = self.adapter
        why = self._skip_reason(sid)
        if why:
            self.log.debug("book audit skipped", venue=self.venue, symbol=ad._venue_symbols.get(sid, sid), why=why)
            return SKIPPED
        vs = ad._venue_symbols[sid]
        probe = self._probe = AuditProbe(ad.router, ad.venue_id, sid)
        try:
            try:
                with background_requests():
                    last_id, bids, asks = await ad.fetch_snapshot(vs)
            except RestBusyError:
                return SKIPPED
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.log.warning("book audit: snapshot failed", venue=self.venue, symbol=vs,
                                 error="%s: %s" % (type(e).__name__, str(e)[:160]))
                return ERROR
            probe.feed_snapshot(last_id, bids, asks)
            depth = ad.book_depth()
            v = probe.verdict(depth)
            deadline = time.monotonic() + self.CATCH_UP_S
            while v.result == PENDING and time.monotonic() < deadline:
                await asyncio.sleep(self.POLL_S)
                v = probe.verdict(depth)
        finally:
            probe.close()
            self._probe = None
        if v.result == MISMATCH:
            self._mismatch(sid, vs, v)
        elif v.result != MATCH:
            self.log.info("book audit inconclusive: retrying soon", venue=self.venue, symbol=vs,
                          reason=v.reason, live_id=v.last_id, snapshot_id=v.snapshot_id)
            return INCONCLUSIVE
        return v.result

    def _mismatch(self, sid: int, vs: str, v: AuditVerdict) -> None:
        ad = self.adapter
        inst = ad.symbol_map.instrument(sid)
        ps, qs, symbol = inst["price_scale"], inst["qty_scale"], inst["symbol"]

        def show(lv: Optional[Level]) -> str:
            return "-" if lv is None else "%s@%s" % (fmt(lv[0], ps), fmt(lv[1], qs))

        fields: dict = {}
        for d in v.differences:
            fields["%s_level" % d.side] = d.index
            fields["%s_live" % d.side] = show(d.live)
            fields["%s_venue" % d.side] = show(d.venue)
        self.mismatches[symbol] += 1
        self.last_mismatch = {"symbol": symbol, "venue_symbol": vs, "id": v.last_id,
                              "differences": list(v.differences)}
        self.log.warning("book audit mismatch: resyncing the book", venue=self.venue, symbol=symbol,
                         venue_symbol=vs, id=v.last_id, snapshot_id=v.snapshot_id, **fields)
        ad.router.request_resync(ad.venue_id, sid, RESYNC_REQUESTED)
