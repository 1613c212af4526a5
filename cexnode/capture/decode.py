"""``python -m cexnode decode --venue VENUE CAPTURE``: raw frames → normalized events (docs/design.md §3).

Every WebSocket frame of ``VENUE`` in the capture goes through the venue's Cython parser in raw
mode (no instrument info: venue symbols, decimals as sent) and each event is written as one JSON
line: ``book_snapshot`` / ``book_delta`` / ``bbo`` / ``trade``, or ``error`` with the reason for a
frame that cannot be parsed. Control frames (acks, pongs) and private pushes are not events.
Decoding always goes on: a capture line that is not a capture entry is reported as an ``error``
event too, and the exit code is then 2 (bad input) with the first such line named on stderr.
"""
from __future__ import annotations

import sys
from typing import IO, Any

import orjson

from cexnode.adapters import registry as venue_registry
from cexnode.capture.format import CaptureFormatError, read_capture

__all__ = ["decode_capture", "raw_parser"]


def raw_parser(venue: str) -> Any:
    """The venue's Cython parser in raw mode (no SymbolMap); ValueError for an unknown venue."""
    try:
        desc = venue_registry.descriptor(venue)
    except venue_registry.UnknownVenueError as e:
        raise ValueError(str(e)) from None
    return desc.adapter_class.make_parser(None, None)


def decode_capture(venue: str, path: str, out: IO[str] = sys.stdout) -> int:
    """Write the normalized events of ``venue``'s frames in ``path`` to ``out``; returns the exit code.

    Parameters
    ----------
    venue : a registered venue name (:func:`cexnode.adapters.registry.names`)
    path : capture file (JSON Lines, optionally gzip)
    out : text stream receiving one JSON object per line

    Returns
    -------
    int
        0, or 2 when some capture lines were not capture entries (they are reported as ``error``
        events and on stderr). OSError / ValueError for an unreadable file propagate (the CLI
        turns them into exit code 2).
    """
    parser = raw_parser(venue)
    first_bad: CaptureFormatError | None = None
    bad = 0
    write = out.write
    for e in read_capture(path, errors="collect"):
        if isinstance(e, CaptureFormatError):
            bad += 1
            if first_bad is None:
                first_bad = e
            write(orjson.dumps({"venue": venue, "symbol": None, "type": "error", "ts": None,
                                "reason": str(e)}).decode() + "\n")
            continue
        if e.kind != "ws" or e.venue != venue:
            continue
        for ev in parser.decode(e.data, e.binary, e.t):
            write(orjson.dumps(ev).decode() + "\n")
    if bad:
        sys.stderr.write("cexnode: %d line(s) of %s are not capture entries; first: %s\n" % (bad, path, first_bad))
        return 2
    return 0
