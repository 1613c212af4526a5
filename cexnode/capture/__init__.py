"""Capture tools (docs/design.md §3): the capture file format, ``record``, ``decode`` and ``replay``.

* :mod:`cexnode.capture.format` — read/write capture entries (JSON Lines, optionally gzip);
  :class:`~cexnode.capture.format.CaptureWriter` is the recording hook the WebSocket listener
  and the REST client call.
* :mod:`cexnode.capture.decode` — raw frames → normalized events (``python -m cexnode decode``).
* :mod:`cexnode.capture.transport` — the engine's transport that answers from a capture.
* :mod:`cexnode.capture.replay` — ``python -m cexnode replay``: the engine on that transport.
* :mod:`cexnode.capture.record` — ``python -m cexnode record``: the node with a capture tap.
"""
from cexnode.capture.format import CaptureEntry, CaptureFormatError, CaptureWriter, read_capture

__all__ = ["CaptureEntry", "CaptureFormatError", "CaptureWriter", "read_capture"]
