"""``python -m cexnode scan --config FILE [--duration S] [--size QUOTE] [--format table|csv|json]
[--top N] [--out FILE]``.

The node itself (:class:`cexnode.node.Node`: the engine, its adapters and, with ``sim.enabled``, the
embedded simulator) with trading off: the engine builds no executor, the config's trading mode is
forced to paper (no order entry, no private streams) and the trade database is not opened. A
:class:`ScanComponent`, started after the engine (the books are in sync by then) and stopped before
it, samples the engine's route table about once a second (:mod:`cexnode.scan.stats`) and, on a
terminal, redraws the live table of the best routes (:mod:`cexnode.scan.table`). At the end (the
duration, or SIGINT/SIGTERM) it takes a last sample and the closing report is written in the chosen
format to stdout or ``--out`` (:mod:`cexnode.scan.report`). docs/scanner.md describes the columns.
"""
from __future__ import annotations

import asyncio
import dataclasses
import sys
import time
from decimal import Decimal
from typing import IO, Optional

import uvloop

from cexnode.component import Component
from cexnode.config import Config
from cexnode.engine import Engine
from cexnode.node import Node
from cexnode.scan.report import write_report
from cexnode.scan.stats import ScanStats
from cexnode.scan.table import LiveTable

__all__ = ["scan_main", "ScanComponent", "scan_config", "REFRESH_S"]

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT = 0, 1, 2
REFRESH_S = 1.0          # the table is for reading: once a second is as fast as anyone reads it


class ScanComponent(Component):
    """Samples the engine's routes every ``refresh_s`` while the node runs (module docstring)."""

    name = "scan"

    def __init__(self, engine: Engine, stats: ScanStats, live: Optional[LiveTable], refresh_s: float = REFRESH_S):
        self.engine = engine
        self.stats = stats
        self.live = live
        self.refresh_s = refresh_s
        self.frames = 0                # the feeds' frame count at the last refresh (they go when the engine stops)
        self._task: Optional[asyncio.Task] = None

    async def start(self) -> None:
        self.stats.started = time.monotonic()     # the books are in sync: the scan starts now
        if self.live is not None:
            self.live.start()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(self.refresh_s)

    def refresh(self) -> None:
        eng = self.engine
        now = time.monotonic()
        samples = self.stats.refresh(eng.route_table, time.time_ns(), now)
        self.frames = eng.frames()
        if self.live is not None:
            n, total = eng.books_in_sync()
            header = ("scan %.0f s | books %d/%d in sync | frames %d | opportunities %d | size %s"
                      % (now - self.stats.started, n, total, self.frames, eng.opportunities, self.stats.size))
            self.live.update(samples, self.stats, now, header)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            self.refresh()            # the last look before the engine and its feeds stop
        if self.live is not None:
            self.live.stop()


def scan_config(cfg: Config) -> Config:
    """``cfg`` with trading off: paper mode (a live config must not start order entry or private
    streams) and no trade database (there are no trades to keep)."""
    return dataclasses.replace(cfg, trading=dataclasses.replace(cfg.trading, mode="paper"),
                               storage=dataclasses.replace(cfg.storage, enabled=False))


def _config_problem(cfg: Config) -> Optional[str]:
    if not cfg.venues.enabled():
        return "the config enables no venue (venues.<venue>.enabled)"
    if len(cfg.venues.enabled()) < 2:
        return "a scan needs two enabled venues at least (a route buys on one and sells on another)"
    if not cfg.arbitrage.routes and not cfg.arbitrage.universe.enabled:
        return "the config has no routes to scan (arbitrage.routes, or arbitrage.universe.enabled)"
    return None


def scan_main(cfg: Config, *, duration: Optional[float] = None, size: Optional[Decimal] = None,
              fmt: str = "table", top: int = 20, out: Optional[str] = None, config_path: Optional[str] = None,
              refresh_s: float = REFRESH_S, stdout: IO[str] = sys.stdout) -> int:
    """Scan until ``duration`` seconds have passed (None: until SIGINT/SIGTERM); the exit code.

    ``size``: quote notional the routes are priced at (default ``arbitrage.max_notional``). 0 ok; 2
    a config without what a scan needs or an ``out`` that cannot be written (one line on stderr);
    1 the node failed (its exit code).
    """
    problem = _config_problem(cfg)
    if problem is not None:
        sys.stderr.write("cexnode: scan: %s\n" % problem)
        return EXIT_BAD_INPUT
    size = cfg.arbitrage.max_notional if size is None else size
    try:
        sink = open(out, "w", encoding="utf-8") if out else None
    except OSError as e:
        sys.stderr.write("cexnode: scan: cannot write the report to %s: %s\n" % (out, e.strerror or e))
        return EXIT_BAD_INPUT
    try:
        node = Node(scan_config(cfg), config_path=config_path, duration=duration, trading=False)
        engine = node.context.engine
        stats = ScanStats(size, time.monotonic())
        engine.opportunity_taps.append(stats.on_opportunities)
        live = LiveTable(stdout, top) if stdout.isatty() else None
        comp = ScanComponent(engine, stats, live, refresh_s)
        node.components.append(comp)          # started after the engine, stopped before it
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            rc = runner.run(node.run())
        if rc != EXIT_OK:
            sys.stderr.write("cexnode: scan: the node stopped with exit code %d\n" % rc)
            return rc
        now = time.monotonic()
        summary = {"duration_s": round(now - stats.started, 1), "size": str(size), "refreshes": stats.refreshes,
                   "routes": len(stats.routes), "frames": comp.frames, "opportunities": engine.opportunities}
        write_report(stats, now, fmt, sink if sink is not None else stdout, summary)
    finally:
        if sink is not None:
            sink.close()
    return EXIT_OK
