"""The capture file format (docs/design.md §3): one JSON object per line, optionally gzip (``.gz``).

::

    {"t": <receive ns>, "venue": "<venue>", "kind": "ws", "op": "text", "data": "<frame text>"}
    {"t": <receive ns>, "venue": "<venue>", "kind": "ws", "op": "binary", "data": "<base64 payload>"}
    {"t": <receive ns>, "venue": "<venue>", "kind": "rest", "method": "GET", "path": "/path/of/order_book",
     "query": "symbol=XY&limit=100", "status": 200, "body": "<response text>"}

``venue`` is a registered venue name (:mod:`cexnode.adapters.registry`).

Readers keep the file order (the recorder writes in receive order); a line that is not a capture
entry is a :class:`CaptureFormatError` naming the file and line (or, with ``errors="collect"``,
reported and skipped so a tool can go on).
"""
from __future__ import annotations

import base64
import binascii
import gzip
import os
import time
from dataclasses import dataclass
from typing import IO, Any, Iterator, Optional, Union
from urllib.parse import parse_qsl

import orjson

from cexnode.adapters import registry as venue_registry

__all__ = ["CaptureEntry", "CaptureFormatError", "CaptureWriter", "read_capture", "open_capture"]


class CaptureFormatError(ValueError):
    """A capture line that is not a capture entry; ``lineno`` is 1-based."""

    def __init__(self, path: str, lineno: int, reason: str) -> None:
        super().__init__("%s:%d: not a capture entry (%s)" % (path, lineno, reason))
        self.path, self.lineno, self.reason = path, lineno, reason


@dataclass(frozen=True, kw_only=True, slots=True)
class CaptureEntry:
    """One capture line. ``ws``: ``data`` is the frame bytes (base64 already decoded for binary);
    ``rest``: ``method``, ``path``, ``query``, ``status``, ``body`` (text)."""

    lineno: int
    t: int
    venue: str
    kind: str                      # "ws" | "rest"
    op: str = ""                   # ws: "text" | "binary"
    data: bytes = b""
    method: str = ""
    path: str = ""
    query: str = ""
    status: int = 0
    body: str = ""

    @property
    def binary(self) -> bool:
        return self.op == "binary"

    def params(self) -> dict[str, str]:
        """The REST query as a dict (last value wins)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))


def open_capture(path: str, mode: str = "rb") -> IO[bytes]:
    """Open a capture file, gzip when the name ends with ``.gz`` (or the file starts with the gzip magic)."""
    if "r" in mode:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        if path.endswith(".gz") or magic == b"\x1f\x8b":
            return gzip.open(path, mode)          # type: ignore[return-value]
        return open(path, mode)
    if path.endswith(".gz"):
        return gzip.open(path, mode)              # type: ignore[return-value]
    return open(path, mode)


def _entry(obj: Any, lineno: int, venues: tuple[str, ...]) -> CaptureEntry:
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    t = obj.get("t")
    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
        raise ValueError('"t" must be a non-negative integer (receive time, ns)')
    venue = obj.get("venue")
    if venue not in venues:
        raise ValueError('"venue" must be one of %s' % ", ".join(venues))
    kind = obj.get("kind")
    if kind == "ws":
        op, data = obj.get("op"), obj.get("data")
        if not isinstance(data, str):
            raise ValueError('"data" must be a string')
        if op == "text":
            return CaptureEntry(lineno=lineno, t=t, venue=venue, kind=kind, op=op, data=data.encode())
        if op == "binary":
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError('"data" of a binary frame must be base64') from None
            return CaptureEntry(lineno=lineno, t=t, venue=venue, kind=kind, op=op, data=raw)
        raise ValueError('"op" must be "text" or "binary"')
    if kind == "rest":
        path, body, status = obj.get("path"), obj.get("body"), obj.get("status")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError('"path" must be a string starting with /')
        if not isinstance(body, str):
            raise ValueError('"body" must be a string (the response text)')
        if not isinstance(status, int) or isinstance(status, bool):
            raise ValueError('"status" must be an integer')
        query = obj.get("query", "")
        method = obj.get("method", "GET")
        if not isinstance(query, str) or not isinstance(method, str):
            raise ValueError('"query" and "method" must be strings')
        return CaptureEntry(lineno=lineno, t=t, venue=venue, kind=kind, method=method.upper(), path=path,
                            query=query.lstrip("?"), status=status, body=body)
    raise ValueError('"kind" must be "ws" or "rest"')


def read_capture(path: str, *, errors: str = "raise") -> Iterator[Union[CaptureEntry, CaptureFormatError]]:
    """Capture entries of ``path`` in file order.

    ``errors="raise"``: a bad line raises :class:`CaptureFormatError`; ``errors="collect"``: it is
    yielded as a CaptureFormatError instance and reading goes on. Blank lines are skipped.
    OSError (missing file, bad gzip) propagates.
    """
    venues = venue_registry.names()
    with open_capture(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError("invalid JSON: %s" % exc) from None
                e = _entry(obj, lineno, venues)
            except ValueError as exc:
                err = CaptureFormatError(path, lineno, str(exc).splitlines()[0][:200])
                if errors == "raise":
                    raise err from None
                yield err
                continue
            yield e


class CaptureWriter:
    """Writes capture entries; the recording hook of the WebSocket listener and the REST client.

    Call :meth:`ws` for every received frame and :meth:`rest` for every REST exchange (or the
    generic :meth:`record`). ``clock`` gives the receive time in ns when the caller has none
    (default ``time.time_ns``: CLOCK_REALTIME, the same clock as ``DepthUpdate.recv_ns``).
    Lines are buffered; :meth:`flush` / :meth:`close` (or ``with``) write them out.
    """

    def __init__(self, path: str, *, clock: Any = time.time_ns) -> None:
        self.path = path
        self._clock = clock
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        self._fh: Optional[IO[bytes]] = open_capture(path, "wb")
        self.entries = 0
        self.ws_entries = 0
        self.rest_entries = 0
        self.bytes_written = 0

    def _write(self, obj: dict) -> None:
        if self._fh is None:
            raise ValueError("capture writer is closed")
        line = orjson.dumps(obj) + b"\n"
        self._fh.write(line)
        self.entries += 1
        self.bytes_written += len(line)

    def ws(self, venue: str, data: Union[bytes, bytearray, memoryview, str], binary: bool = False,
           t: Optional[int] = None) -> None:
        """One received WebSocket frame (copied now: zero-copy buffers die after the callback)."""
        ts = self._clock() if t is None else t
        self.ws_entries += 1
        if binary:
            self._write({"t": ts, "venue": venue, "kind": "ws", "op": "binary",
                         "data": base64.b64encode(bytes(data)).decode("ascii")})
        else:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")
            self._write({"t": ts, "venue": venue, "kind": "ws", "op": "text", "data": text})

    def rest(self, venue: str, method: str, path: str, query: str, status: int, body: Union[str, bytes],
             t: Optional[int] = None) -> None:
        """One REST exchange (the response as received)."""
        ts = self._clock() if t is None else t
        self.rest_entries += 1
        if not isinstance(body, str):
            body = bytes(body).decode("utf-8", "replace")
        self._write({"t": ts, "venue": venue, "kind": "rest", "method": method.upper(), "path": path,
                     "query": query, "status": int(status), "body": body})

    def record(self, venue: str, kind: str, op: str, *args: Any, **kw: Any) -> None:
        """Generic hook: ``record(venue, "ws", "text"|"binary", data, t=None)`` or
        ``record(venue, "rest", METHOD, path, query, status, body, t=None)``."""
        if kind == "ws":
            self.ws(venue, args[0] if args else kw["data"], binary=(op == "binary"), t=kw.get("t"))
        elif kind == "rest":
            self.rest(venue, op, *args, **kw)
        else:
            raise ValueError("kind must be ws or rest")

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> "CaptureWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
