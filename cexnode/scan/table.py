"""The live terminal table of the best routes (rich: the terminal handling is the library's).

Rebuilt from the samples of each refresh; :class:`LiveTable` owns the rich ``Live`` display, which
also carries the node's log lines written to stderr meanwhile above the table instead of through it.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Optional, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from cexnode.scan.stats import RouteSample, ScanStats

__all__ = ["LiveTable", "build_table", "sort_samples", "fmt_bps", "fmt_quote"]


def fmt_bps(v: Optional[Decimal]) -> str:
    return "-" if v is None else "%.2f" % v


def fmt_quote(v: Decimal) -> str:
    return "{:,.2f}".format(v)


def fmt_age(v: Optional[int]) -> str:
    return "-" if v is None else str(v)


def sort_samples(samples: list[RouteSample]) -> list[RouteSample]:
    """Best first: by net bps (routes without one last), then depth, then name."""
    return sorted(samples, key=lambda s: (s.net_bps is None, -(s.net_bps or 0), -s.depth, s.route))


def build_table(samples: list[RouteSample], stats: ScanStats, now: float, top: int, header: str) -> Table:
    t = Table(title=header, title_justify="left", expand=False)
    t.add_column("route", no_wrap=True)
    t.add_column("buy -> sell", no_wrap=True)
    t.add_column("net bps @%s" % stats.size, justify="right")
    t.add_column("depth >=0 bps", justify="right")
    t.add_column("opps", justify="right")
    t.add_column("opps/min", justify="right")
    t.add_column("age buy ms", justify="right")
    t.add_column("age sell ms", justify="right")
    for s in sort_samples(samples)[:top]:
        rate = stats.per_minute(s.route, now)
        net = Text(fmt_bps(s.net_bps), style="green" if s.net_bps is not None and s.net_bps > 0 else "")
        t.add_row(s.route, "%s -> %s" % (s.buy_venue, s.sell_venue) if s.in_sync else "(syncing)", net,
                  fmt_quote(s.depth), str(stats.opportunities_of(s.route)),
                  "-" if rate is None else "%.1f" % rate,
                  fmt_age(s.age_of(s.buy_venue)), fmt_age(s.age_of(s.sell_venue)))
    return t


class LiveTable:
    """The table on the terminal, redrawn by :meth:`update` (the caller's refresh loop)."""

    def __init__(self, stream: TextIO, top: int) -> None:
        self.top = top
        self.console = Console(file=stream)
        self._live: Optional[Live] = None

    def start(self) -> None:
        self._live = Live(Text("waiting for the first refresh"), console=self.console, auto_refresh=False,
                          redirect_stdout=False, redirect_stderr=True, transient=False)
        self._live.start()

    def update(self, samples: list[RouteSample], stats: ScanStats, now: float, header: str) -> None:
        if self._live is None:
            return
        shown = min(self.top, len(samples))
        footer = Text("%d of %d routes; Ctrl-C stops and prints the report" % (shown, len(samples)), style="dim")
        self._live.update(Group(build_table(samples, stats, now, self.top, header), footer), refresh=True)

    def stop(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()
