"""``python -m cexnode replay --config FILE --capture CAPTURE [--dump-books]``.

The node's engine (:class:`cexnode.engine.Engine`: the same adapters, parsers, books, router and
ArbEngine as a live run) on the capture transport (:mod:`cexnode.capture.transport`), trading off.
Writes JSON Lines to ``out``:

* ``{"type": "opportunity", "route", "symbol", "buy_venue", "sell_venue", "qty", "buy_price",
  "sell_price", "buy_vwap", "sell_vwap", "net_profit", "net_bps", "t"}`` as the engine emits them;
* ``{"type": "resync", "venue", "symbol", "reason", "t"}`` each time a book leaves sync;
* with ``dump_books``: ``{"type": "book", "venue", "symbol", "in_sync", "last", "bids", "asks"}``
  for every book at the end (top 20 levels, decimal strings, sizes in base units);
* last, ``{"type": "summary", "frames", "errors", "resyncs", "opportunities", "snapshots"}``.

Deterministic: the router's clock is fixed at each entry's capture time ``t``, entries are
processed in capture order, and each REST answer is applied before the next entry (the capture
transport's rules), so the output is a pure function of the config and the capture.

Instruments come from ``venues.<v>.instruments`` in the config, else from the capture's REST
answers. Book audits and order entry are off (there is no venue behind a capture); opportunities
are sized by the books and ``max_notional`` only (no balances to size them to).
"""
from __future__ import annotations

import asyncio
import dataclasses
import sys
from typing import IO, Any

import orjson

from cexnode._core.arb import format_mantissa
from cexnode._core.book import RESYNC_NAMES
from cexnode.capture.format import CaptureEntry, CaptureFormatError, read_capture
from cexnode.capture.transport import CaptureTransport
from cexnode.component import NodeContext
from cexnode.engine import Engine
from cexnode.metrics import NodeMetrics

__all__ = ["replay_main", "Replay", "ReplayInputError"]

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT = 0, 1, 2
DUMP_LEVELS = 20


class ReplayInputError(ValueError):
    """The config and the capture do not give what replay needs (reported with exit code 2)."""


class _Host:
    """What the engine reads of its node: the config and the context (no other component runs)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.context = NodeContext(metrics=NodeMetrics(node_name="replay"))


def _dumps(obj: dict) -> str:
    return orjson.dumps(obj).decode() + "\n"


class Replay:
    """One replay run (module docstring): ``await build()``, then ``await run(out)``."""

    def __init__(self, cfg: Any, entries: list[CaptureEntry], *, dump_books: bool = False) -> None:
        if not any(v.symbols for _, v in cfg.venues.enabled()):
            raise ReplayInputError("the config enables no venue with symbols (venues.<venue>.symbols)")
        # trading off: no executor, and a live-mode config must not start order entry either
        self.cfg = dataclasses.replace(cfg, trading=dataclasses.replace(cfg.trading, mode="paper"))
        self.dump_books = dump_books
        self.transport = CaptureTransport(entries)
        self.engine = Engine(_Host(self.cfg), transport=self.transport, trading=False)
        self.lines: list[str] = []
        self.opportunities = 0
        self.resyncs = 0

    async def build(self) -> None:
        """Instruments and pipeline (the engine's phases 1 and 2); ReplayInputError when a venue
        cannot be built from the config and the capture."""
        eng = self.engine
        try:
            await eng.build()
        except RuntimeError as e:
            raise ReplayInputError(str(e)) from None
        if eng.failed:
            raise ReplayInputError("venue(s) failed: " + "; ".join("%s (%s)" % kv for kv in sorted(eng.failed.items())))
        eng.opportunity_taps.append(self._on_opportunities)
        for adapter in eng.adapters.values():
            eng.router.set_resync_handler(adapter.venue_id, self._resync_handler(adapter))

    # -- callbacks (inside the Cython pipeline) ----------------------------------------------------------
    def _on_opportunities(self, opps: list) -> None:
        for o in opps:
            d = {"type": "opportunity"}
            d.update(o.json_fields())
            self.lines.append(_dumps(d))
        self.opportunities += len(opps)

    def _resync_handler(self, adapter: Any) -> Any:
        smap = adapter.symbol_map

        def on_resync(symbol_id: int, reason: int) -> None:
            self.lines.append(_dumps({"type": "resync", "venue": adapter.name,
                                      "symbol": smap.symbol(smap.name_of(symbol_id)).name,
                                      "reason": RESYNC_NAMES.get(reason, str(reason)), "t": self.transport.now}))
            self.resyncs += 1
            adapter.on_resync(symbol_id, reason)

        return on_resync

    # -- run -------------------------------------------------------------------------------------------
    async def run(self, out: IO[str]) -> dict:
        eng = self.engine
        if eng.router is None:
            await self.build()
        loop = asyncio.get_running_loop()

        def flush() -> None:
            if self.lines:
                out.write("".join(self.lines))
                self.lines.clear()

        start = loop.create_task(eng.start())
        play = loop.create_task(self.transport.play(len(eng.adapters), on_entry=flush))
        try:
            await asyncio.wait({start, play}, return_when=asyncio.FIRST_COMPLETED)
            if start.done() and not play.done() and not self.transport.playing:
                # the start ended before every venue's feed ran: nothing would ever be played
                raise (None if start.cancelled() else start.exception()) or RuntimeError(
                    "the venues' feeds did not start")
            await play
        finally:
            for t in (start, play):
                if not t.done():
                    t.cancel()
            await asyncio.gather(start, play, return_exceptions=True)
            await eng.stop()
        flush()
        if self.dump_books:
            self._dump_books(out)
        summary = {"type": "summary", "frames": sum(f.frames for f in self.transport.feeds.values()),
                   "errors": sum(a.parser.errors for a in eng.adapters.values() if a.parser is not None),
                   "resyncs": self.resyncs, "opportunities": self.opportunities,
                   "snapshots": self.transport.snapshots}
        out.write(_dumps(summary))
        return summary

    def _dump_books(self, out: IO[str]) -> None:
        eng = self.engine
        ids = {name: a.venue_id for name, a in eng.adapters.items()}
        for (venue, symbol), book in sorted(eng.books.items(), key=lambda kv: (ids[kv[0][0]], kv[0][1])):
            p, q = eng.registry.scales(symbol)
            bids, asks = book.top(min(DUMP_LEVELS, book.depth))
            out.write(_dumps({"type": "book", "venue": venue, "symbol": symbol, "in_sync": bool(book.in_sync),
                              "last": book.last_id,
                              "bids": [[format_mantissa(a, p), format_mantissa(b, q)] for a, b in bids],
                              "asks": [[format_mantissa(a, p), format_mantissa(b, q)] for a, b in asks]}))


def replay_main(cfg: Any, capture: str, dump_books: bool = False, out: IO[str] = sys.stdout) -> int:
    """Replay ``capture`` with ``cfg`` and write the output lines to ``out``; returns the exit code.

    0 ok; 2 bad input (unreadable capture, a line that is not a capture entry, instruments missing),
    with a one-paragraph message on stderr; 1 a failure of the run itself.
    """
    try:
        entries = list(read_capture(capture))
    except FileNotFoundError:
        sys.stderr.write("cexnode: capture file not found: %s\n" % capture)
        return EXIT_BAD_INPUT
    except (OSError, EOFError, CaptureFormatError) as e:
        sys.stderr.write("cexnode: cannot read capture %s: %s\n" % (capture, e))
        return EXIT_BAD_INPUT

    async def main() -> None:
        try:
            rp = Replay(cfg, entries, dump_books=dump_books)
            await rp.build()
        except (ValueError, KeyError, LookupError) as e:    # instruments missing or unusable
            raise ReplayInputError(str(e)) from None
        await rp.run(out)

    try:
        asyncio.run(main())
    except ReplayInputError as e:
        sys.stderr.write("cexnode: cannot replay %s: %s\n" % (capture, e))
        return EXIT_BAD_INPUT
    except Exception as e:       # a bug, not bad input: exit 1 with the reason, never a traceback
        sys.stderr.write("cexnode: replay of %s failed: %r\n" % (capture, e))
        return EXIT_RUNTIME
    out.flush()
    return EXIT_OK
