"""``python -m cexnode record --config FILE --out CAPTURE [--duration S] [--opportunities FILE]``.

The node itself (:class:`cexnode.node.Node`: the engine, its adapters and, with ``sim.enabled``,
the embedded simulator; trading as the config says) with a capture tap: the node context's
capture sink is a :class:`~cexnode.capture.format.CaptureWriter`, so the engine's live transport
(:class:`cexnode.adapters.transport.LiveTransport`) writes every frame the feed listeners receive,
with its receive time and venue, and every answer the venues' REST managers get (instrument info,
snapshots at start and at each resync; in live mode the private answers too) into the capture
(docs/design.md §3). ``replay`` of that capture runs the same engine on it.

With ``--opportunities FILE`` every opportunity the node sees is written there as ``replay``
writes it (``{"type": "opportunity", ...}``): what a replay of the capture must reproduce. A replay
reproduces them exactly when the run sized them by the books (``arbitrage.size_to_balances: false``:
a replay has no balances) and ran no book audits (``book_audit_interval_s: 0``: an audit's snapshot
answer looks like a resync's in the capture).
"""
from __future__ import annotations

import asyncio
import sys
from typing import IO, Any, Optional

import orjson
import uvloop

from cexnode.capture.format import CaptureWriter
from cexnode.node import Node

__all__ = ["record_main", "Recorder"]

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT = 0, 1, 2


class Recorder:
    """A node recording into ``writer`` (module docstring). ``await run()``; ``stop()``."""

    def __init__(self, cfg: Any, writer: CaptureWriter, *, duration: Optional[float] = None,
                 config_path: Optional[str] = None, opportunities: Optional[IO[bytes]] = None) -> None:
        self.writer = writer
        self.node = Node(cfg, config_path=config_path, duration=duration)
        self.node.context.capture = writer         # read once, when the engine builds (engine.context_capture)
        self.engine: Any = self.node.context.engine
        self.opportunities = 0
        self._opp_out = opportunities
        if self.engine is not None:
            self.engine.opportunity_taps.append(self._on_opportunities)

    def _on_opportunities(self, opps: list) -> None:
        self.opportunities += len(opps)
        if self._opp_out is not None:
            self._opp_out.write(b"".join(orjson.dumps(dict(type="opportunity", **o.json_fields())) + b"\n"
                                         for o in opps))

    async def run(self) -> int:
        try:
            return await self.node.run()
        finally:
            self.writer.flush()
            if self._opp_out is not None:
                self._opp_out.flush()

    def stop(self) -> None:
        self.node.request_stop()

    # -- counters (the closing line, tests) --------------------------------------------------------------
    def frames(self) -> int:
        return self.engine.frames() if self.engine is not None else 0

    def snapshots(self) -> int:
        return sum(a.snapshots for a in self.engine.adapters.values()) if self.engine is not None else 0

    def resyncs(self) -> int:
        return sum(a.resync_requests for a in self.engine.adapters.values()) if self.engine is not None else 0


def record_main(cfg: Any, out: str, duration: Optional[float] = None, *, config_path: Optional[str] = None,
                opportunities: Optional[str] = None) -> int:
    """Record until ``duration`` seconds have passed (None: until SIGINT/SIGTERM); exit code.

    0 ok (a summary line on stderr), 2 no venue with symbols in the config, 1 runtime failure
    (the node's exit code, or the capture could not be written) with a one-line message.
    """
    if not any(v.symbols for _, v in cfg.venues.enabled()):
        sys.stderr.write("cexnode: record: the config enables no venue with symbols (venues.<venue>.symbols)\n")
        return EXIT_BAD_INPUT
    opp_out: Optional[IO[bytes]] = None
    try:
        if opportunities:
            opp_out = open(opportunities, "wb")
        with CaptureWriter(out) as writer:
            rec = Recorder(cfg, writer, duration=duration, config_path=config_path, opportunities=opp_out)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                rc = runner.run(rec.run())
    except OSError as e:
        sys.stderr.write("cexnode: record: %s\n" % e)
        return EXIT_RUNTIME
    finally:
        if opp_out is not None:
            opp_out.close()
    if rc != EXIT_OK:
        sys.stderr.write("cexnode: record: the node stopped with exit code %d; the capture so far is in %s\n" % (rc, out))
        return rc
    sys.stderr.write("cexnode: recorded %d frames, %d REST answers (%d snapshots, %d resyncs; %d opportunities "
                     "seen live) to %s\n" % (writer.ws_entries, writer.rest_entries, rec.snapshots(), rec.resyncs(),
                                              rec.opportunities, out))
    return EXIT_OK
