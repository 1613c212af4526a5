"""A transport that answers from a capture file (``cexnode replay``; docs/design.md §3).

The engine runs unchanged on it: the adapters load their instruments, attach their parsers and
sync their books through this transport instead of the venues (:mod:`cexnode.adapters.transport`).

* **Frames**: :meth:`CaptureTransport.play` hands every captured frame, in capture order, to the
  parser of its venue (the adapter's own parser), with the router's clock fixed at the frame's
  capture time (freshness checks and ``Opportunity.t`` use it): the output is a pure function of
  the config and the capture, whatever the machine's speed.
* **REST before the frames** (instrument info, while the engine builds): answered from the whole
  capture — the answer to the same request, else one to the same path with other parameters (a
  filtered answer of the same resource), else the answers to its sub-resources (``/things/A``,
  ``/things/B`` for ``/things``) as a list.
* **REST once the feeds run** (order-book snapshots at start and at each resync): each request
  waits for the next unused captured answer to the same method and path with the same non-numeric
  parameters (a numeric one, like a depth limit, may differ) whose capture time has been reached.
  A live recording holds each answer after its request, so the snapshot is applied exactly where
  the live node applied it. Requests are served in the order they were made, one at a time, each
  applied before the next frame; answers that are not 200 or not JSON are used up as failed
  attempts (the live REST manager retried them).
* Book audits and order entry stay off: there is no live venue behind a capture.
"""
from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence
from urllib.parse import parse_qsl

import orjson

from cexnode._core.book import SYNC_SNAPSHOT_DIFF, SYNC_STREAM_FULL
from cexnode.adapters import registry as venue_registry
from cexnode.capture.format import CaptureEntry

if TYPE_CHECKING:  # pragma: no cover
    from cexnode.adapters.base import VenueAdapter

__all__ = ["CaptureTransport", "CaptureAnswer", "CaptureMissingError"]

#: event-loop turns without any request activity after which the pipeline is taken as settled
_IDLE_TURNS = 2


class CaptureMissingError(LookupError):
    """A request made before the frames that the capture holds no answer to."""


@dataclass(frozen=True, slots=True)
class CaptureAnswer:
    """A captured REST answer, read as the REST manager's answers are."""

    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def _request_key(venue: str, method: str, path: str, params: dict) -> tuple:
    fixed = tuple(sorted((k, v) for k, v in params.items() if not v.lstrip("-").isdigit()))
    return venue, method.upper(), path, fixed


class CaptureRestClient:
    """One venue's REST client over the capture (module docstring)."""

    def __init__(self, transport: "CaptureTransport", venue: str) -> None:
        self._transport = transport
        self.venue = venue
        self.requests = 0

    async def request(self, method: str, path: str, *, params: Optional[dict] = None, weight: int = 1,
                      headers: Optional[dict] = None, **_: Any) -> CaptureAnswer:
        self.requests += 1
        return await self._transport.answer(self.venue, method, path, {str(k): str(v) for k, v in (params or {}).items()})

    async def close(self) -> None:
        return None

    def stats(self) -> dict:
        return {"requests": self.requests}


class CaptureFeed:
    """One venue's feed over the capture: frames come from :meth:`CaptureTransport.play`."""

    def __init__(self, transport: "CaptureTransport", adapter: "VenueAdapter") -> None:
        self._transport = transport
        self.venue = adapter.name
        self.parser = adapter.parser
        self.router = adapter.router
        self.frames = 0
        self.started = False

    async def start(self) -> None:
        self.started = True
        self._transport.feed_started(self)

    async def stop(self) -> None:
        self.started = False

    async def wait_sent(self, msg: bytes) -> None:
        """Nothing is sent: the captured frames follow the recording's subscriptions."""

    def add_subscriptions(self, msgs: list[bytes]) -> None:
        """Nothing to send: the capture holds the frames of whatever the recording node subscribed."""

    def remove_subscriptions(self, sub_msgs: list[bytes], unsub_msgs: list[bytes]) -> None:
        """Nothing to send (see :meth:`add_subscriptions`); the router drops a removed book's frames."""

    def deliver(self, e: CaptureEntry) -> bool:
        """Feed one frame; True when it may have woken a task (a book left sync, or a control
        message reached the adapter), i.e. the pipeline must settle before the next entry."""
        router, parser = self.router, self.parser
        resyncs, quiet = router.resyncs, parser.depth_updates + parser.ignored + parser.errors
        router.set_now(e.t)
        parser.feed_bytes(e.data, e.binary, e.t)
        self.frames += 1
        return (router.resyncs != resyncs
                or parser.depth_updates + parser.ignored + parser.errors - quiet != 1)

    def status(self) -> dict:
        return {"frames": self.frames, "connected": self.started}


class CaptureTransport:
    """Market data and REST answers from ``entries`` (module docstring)."""

    book_audits = False

    def __init__(self, entries: Sequence[CaptureEntry]) -> None:
        self.entries = entries
        self.now = entries[0].t if entries else 0
        self.feeds: dict[str, CaptureFeed] = {}
        self.snapshots = 0                   # answers handed to waiting requests
        self.failed_answers = 0              # answers used up as failed attempts
        self._gated = False                  # True once a feed runs: REST answers wait for their time
        self._pending: deque = deque()       # (key, future) in request order
        self._answers: dict[tuple, deque] = {}   # key -> captured answers reached and not used yet
        self._activity = 0                   # request calls and resumptions (the pipeline is busy)
        self._settled_at = -1                # _activity when the pipeline last settled
        self._router: Any = None
        self.playing = False                 # the frames are being played

    # -- the adapters' side ------------------------------------------------------------------------
    def rest_client(self, adapter: "VenueAdapter") -> CaptureRestClient:
        return CaptureRestClient(self, adapter.name)

    def market_feed(self, adapter: "VenueAdapter", ws_url: str, subscriptions: list[bytes],
                    on_reconnected: Callable[..., None]) -> CaptureFeed:
        feed = CaptureFeed(self, adapter)
        self.feeds[adapter.name] = feed
        self._router = adapter.router
        return feed

    def book_sync_rule(self, adapter: "VenueAdapter") -> int:
        """Stream-full for a venue whose captured frames come from a stream of whole books."""
        is_full = venue_registry.descriptor(adapter.name).full_book_frame
        if is_full is not None:
            for e in self.entries:
                if e.kind == "ws" and e.venue == adapter.name and is_full(e.data):
                    return SYNC_STREAM_FULL
        return SYNC_SNAPSHOT_DIFF

    def feed_started(self, feed: CaptureFeed) -> None:
        self._gated = True

    async def answer(self, venue: str, method: str, path: str, params: dict) -> CaptureAnswer:
        self._activity += 1
        if not self._gated:
            return self._setup_answer(venue, method, path, params)
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((_request_key(venue, method, path, params), fut))
        try:
            return await fut
        finally:
            self._activity += 1

    def _setup_answer(self, venue: str, method: str, path: str, params: dict) -> CaptureAnswer:
        method = method.upper()
        query = sorted(params.items())
        same_path, children = [], []
        for e in self.entries:
            if e.kind != "rest" or e.venue != venue or e.method != method or e.status != 200:
                continue
            if e.path == path:
                if sorted(e.params().items()) == query:
                    return CaptureAnswer(e.status, e.body.encode())
                same_path.append(e)
            elif e.path.startswith(path.rstrip("/") + "/"):
                children.append(e)
        if same_path:
            e = same_path[0]
            return CaptureAnswer(e.status, e.body.encode())
        if children:
            try:
                items = [orjson.loads(e.body) for e in children]
            except orjson.JSONDecodeError as exc:
                raise CaptureMissingError("%s %s: a captured answer is not JSON (%s)" % (venue, path, exc)) from None
            return CaptureAnswer(200, orjson.dumps(items))
        raise CaptureMissingError("the capture holds no answer to %s %s%s for %s" % (
            method, path, "?" + "&".join("%s=%s" % kv for kv in query) if query else "", venue))

    # -- the player ---------------------------------------------------------------------------------
    async def play(self, expected_feeds: int, on_entry: Optional[Callable[[], None]] = None) -> None:
        """Feed every frame in capture order once ``expected_feeds`` feeds have started; serve the
        waiting REST requests after each entry. ``on_entry`` is called after each entry settled."""
        while len(self.feeds) < expected_feeds or not all(f.started for f in self.feeds.values()):
            await asyncio.sleep(0)
        if self._router is not None:
            self._router.set_now(self.now)
        await self._settle()
        self.playing = True
        for e in self.entries:
            self.now = e.t
            if e.kind == "rest":
                key = _request_key(e.venue, e.method, e.path, e.params())
                self._answers.setdefault(key, deque()).append(e)
                woke = any(k == key for k, _ in self._pending)
            else:
                feed = self.feeds.get(e.venue)
                if feed is None:
                    continue
                woke = feed.deliver(e)
            if woke or self._activity != self._settled_at:
                await self._settle()
            if on_entry is not None:
                on_entry()

    async def _settle(self) -> None:
        """Let the tasks the last entry woke run, serving the waiting requests one at a time."""
        idle = 0
        while idle < _IDLE_TURNS:
            seen = self._activity
            await asyncio.sleep(0)
            if self._serve_one():
                seen = -1
            idle = idle + 1 if seen == self._activity else 0
        self._settled_at = self._activity

    def _serve_one(self) -> bool:
        for i, (key, fut) in enumerate(self._pending):
            if fut.done():                     # the request was cancelled (the engine stops)
                del self._pending[i]
                return True
            q = self._answers.get(key)
            while q:
                e = q.popleft()
                if e.status != 200:
                    self.failed_answers += 1
                    continue
                try:
                    orjson.loads(e.body)
                except orjson.JSONDecodeError:
                    self.failed_answers += 1
                    continue
                del self._pending[i]
                # applied when it was received, or now when the request came after it
                t = max(e.t, self.now)
                if self._router is not None:
                    self._router.set_now(t)
                self.snapshots += 1
                fut.set_result(CaptureAnswer(e.status, e.body.encode()))
                return True
        return False
