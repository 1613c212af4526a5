"""Play a capture file (docs/design.md §3 capture format) back through the simulated venues.

Capture lines (JSON Lines, optionally gzip)::

    {"t": ns, "venue": "<venue>", "kind": "ws", "op": "text", "data": "<frame text>"}
    {"t": ns, "venue": "<venue>", "kind": "ws", "op": "binary", "data": "<base64 payload>"}
    {"t": ns, "venue": "<venue>", "kind": "rest", "method": "GET", "path": "<path>",
     "query": "<query string>", "status": 200, "body": "<response text>"}

Rules
-----
* Each venue's playback starts when its first WebSocket subscription is acknowledged (so the
  client sees the capture from its first frame) and sends every captured *push* to every
  connection with a subscription: binary frames, and text frames that are not the recorder's own
  acks/pongs (the venue's ``is_control_frame``; captured malformed frames are sent as they are).
* ``speed`` 1.0 keeps the captured timing, 2.0 plays twice as fast, 0 sends as fast as the loop
  allows (yielding every ``batch`` frames so REST requests are still answered).
* REST requests with captured answers for the same method, path and symbol parameter (the venue's
  ``symbol_params``) get the newest captured answer at or before the playback position (the first one before playback
  starts). Everything else falls through to the simulator's own endpoints.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional
from urllib.parse import parse_qsl

import orjson

from . import registry

if TYPE_CHECKING:  # pragma: no cover
    from .server import SimVenue

__all__ = ["CaptureData", "RestEntry", "load_capture", "Player"]


@dataclass(slots=True)
class RestEntry:
    t: int
    method: str
    path: str
    symbol: str
    status: int
    body: str


@dataclass
class CaptureData:
    """One venue's part of a capture: ``ws`` = [(t_ns, payload, is_binary)], ``rest`` entries by key.

    ``is_control(text) -> bool`` and ``symbol_params`` come from the venue's protocol class
    (:mod:`cexnode.sim.registry`); a venue the simulator does not serve keeps every frame."""

    ws: list = field(default_factory=list)
    rest: dict = field(default_factory=dict)      # (method, path, symbol) -> [RestEntry] in time order
    is_control: Callable[[bytes], bool] = lambda text: False
    symbol_params: tuple = ()


def _capture_data(venue: str) -> CaptureData:
    cls = registry.find(venue)
    if cls is None:
        return CaptureData()
    return CaptureData(is_control=cls.is_control_frame, symbol_params=cls.symbol_params)


def symbol_of(query, params: tuple) -> str:
    """The symbol a REST query names (the first of the venue's ``params`` present), or ""."""
    return next((query[k] for k in params if k in query), "")


def load_capture(path: str) -> dict[str, CaptureData]:
    """Read a capture file; ValueError naming the line for anything that is not a capture entry.
    The recorder's own acks/pongs/errors are left out; pushes and unparsable frames are kept."""
    opener = gzip.open if path.endswith(".gz") else open
    out: dict[str, CaptureData] = {}
    with opener(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                e = orjson.loads(line)
                venue, kind, t = e["venue"], e["kind"], int(e["t"])
                cap = out.get(venue)
                if cap is None:
                    cap = out[venue] = _capture_data(venue)
                if kind == "ws":
                    if e["op"] == "binary":
                        cap.ws.append((t, base64.b64decode(e["data"]), True))
                    elif e["op"] == "text":
                        data = e["data"].encode()
                        if not cap.is_control(data):
                            cap.ws.append((t, data, False))
                    else:
                        raise ValueError("op must be text or binary")
                elif kind == "rest":
                    q = dict(parse_qsl(e.get("query", "")))
                    sym = symbol_of(q, cap.symbol_params)
                    entry = RestEntry(t, e.get("method", "GET").upper(), e["path"], sym, int(e["status"]), e["body"])
                    cap.rest.setdefault((entry.method, entry.path, sym), []).append(entry)
                else:
                    raise ValueError("kind must be ws or rest")
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError("%s:%d: not a capture entry (%s)" % (path, lineno, exc)) from None
    for cap in out.values():
        cap.ws.sort(key=lambda x: x[0])
        for lst in cap.rest.values():
            lst.sort(key=lambda x: x.t)
    return out


class Player:
    """Plays one venue's captured frames; see the module docstring."""

    def __init__(self, venue: "SimVenue", data: CaptureData, *, speed: float = 1.0, loop: bool = False,
                 batch: int = 256):
        self.venue, self.data, self.speed, self.loop, self.batch = venue, data, speed, loop, batch
        self.position_t: Optional[int] = None        # capture time of the newest frame sent
        self.frames_sent = 0
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        self._task: Optional[asyncio.Task] = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-playback-" + self.venue.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        await self.venue.first_subscription.wait()
        self.started.set()
        frames = self.data.ws
        while frames:
            if self.speed <= 0:                 # as fast as possible: one socket write per batch
                for i in range(0, len(frames), self.batch):
                    chunk = frames[i:i + self.batch]
                    self.position_t = chunk[-1][0]
                    self.venue.send_raw_batch([(p, b) for _, p, b in chunk])
                    self.frames_sent += len(chunk)
                    await asyncio.sleep(0)
            else:
                t0, w0 = frames[0][0], time.monotonic()
                for t, payload, binary in frames:
                    delay = (t - t0) / 1e9 / self.speed - (time.monotonic() - w0)
                    if delay > 0:
                        await asyncio.sleep(delay)
                    self.position_t = t
                    self.venue.send_raw(payload, binary)
                    self.frames_sent += 1
            if not self.loop:
                break
        self.finished.set()

    def rest_answer(self, method: str, path: str, query) -> Optional[RestEntry]:
        sym = symbol_of(query, self.data.symbol_params)
        lst = self.data.rest.get((method, path, sym))
        if not lst:
            return None
        if self.position_t is None:
            return lst[0]
        best = lst[0]
        for e in lst:
            if e.t <= self.position_t:
                best = e
            else:
                break
        return best
