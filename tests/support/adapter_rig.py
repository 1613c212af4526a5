"""One venue adapter on its own against the embedded simulator, without an engine: the simulator
serves more instruments than the adapter starts with, so that a test can add books at run time
(``add_books``) and remove them, and compare them with the simulator's true books. Every wait is
bounded."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from cexnode._core.router import BookRouter
from cexnode._core.symbols import SymbolMap, SymbolRegistry, get_symbol
from cexnode.adapters.base import VenueAdapter
from cexnode.adapters.registry import descriptor
from cexnode.component import NodeContext
from cexnode.config import SimConfig, load_config_text
from cexnode.metrics import NodeMetrics
from cexnode.sim.server import ExchangeSimulator
from support.node_books import true_levels, wait_until

_YAML = """
node: {name: rig, status_interval_s: 0, start_timeout_s: %(start_timeout_s)s}
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: never}
metrics: {port: 0}
venues:
  %(venue)s: {symbols: [%(symbols)s], book_depth: %(depth)d}
"""


def spot_symbols(n: int, prefix: str = "R", perpetual: bool = False) -> list[str]:
    """``n`` unified spot symbols no one of which is a prefix of another (``R001/USDT``...), or the
    USDT perpetuals of the same (``R001/USDT:USDT``)."""
    return ["%s%03d/USDT%s" % (prefix, i, ":USDT" if perpetual else "") for i in range(n)]


class AdapterRig:
    """``venue``'s adapter configured with ``symbols``, the simulator serving ``served`` (a
    superset) on 127.0.0.1. ``async with`` starts the simulator and attaches the adapter; the test
    calls :meth:`start`."""

    def __init__(self, tmp_path: Any, venue: str, symbols: Sequence[str], served: Sequence[str], *,
                 seed: int = 7, update_interval_ms: float = 20.0, enforce_rate_limits: bool = False,
                 depth: int = 20, start_timeout_s: float = 30.0) -> None:
        self.venue = venue
        self.symbols = list(symbols)
        self.served = list(dict.fromkeys([*symbols, *served]))
        self.sim = ExchangeSimulator(SimConfig(seed=seed, update_interval_ms=update_interval_ms,
                                               enforce_rate_limits=enforce_rate_limits, book_levels=depth),
                                     venues={venue: self.served})
        cfg = load_config_text(_YAML % {"audit": tmp_path / "audit.jsonl", "venue": venue, "depth": depth,
                                        "symbols": ", ".join(self.symbols), "start_timeout_s": start_timeout_s})
        self.context = NodeContext(metrics=NodeMetrics(node_name="rig"))
        self.adapter: VenueAdapter = descriptor(venue).create_adapter(getattr(cfg.venues, venue), self.context)
        self.router = BookRouter()
        self.registry: Optional[SymbolRegistry] = None

    async def __aenter__(self) -> "AdapterRig":
        await self.sim.start()
        self.context.sim_urls = self.sim.urls
        self.registry = SymbolRegistry()
        await self.adapter.load_instruments(self.registry)
        self.registry.freeze()
        self.adapter.attach(self.registry.map(self.venue), self.router)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.adapter.stop()
        finally:
            await self.sim.stop()

    async def start(self) -> None:
        await self.adapter.start()

    async def map_with(self, symbols: Sequence[str]) -> SymbolMap:
        """A newer map of the venue listing the adapter's symbols and ``symbols`` (a second registry,
        frozen: the symbol ids are the same, symbols being interned)."""
        reg = SymbolRegistry()
        wanted = list(dict.fromkeys([*(s.name for s in self.adapter.symbol_map.symbols()), *symbols]))
        n = await self.adapter.venue_load_instruments(reg, wanted)
        assert n == len(wanted), (n, wanted)
        reg.freeze()
        return reg.map(self.venue)

    @staticmethod
    def ids(symbols: Sequence[str]) -> list[int]:
        return [get_symbol(s).id for s in symbols]

    def venue_symbol(self, symbol: str) -> str:
        return self.adapter.symbol_map.venue_symbol(get_symbol(symbol).id)

    def sim_venue(self) -> Any:
        return self.sim.venue(self.venue)

    def sim_subscribed(self, venue_symbol: str) -> int:
        """Simulator connections subscribed to ``venue_symbol``'s streams (its subscription keys name
        the venue symbol)."""
        return sum(1 for c in self.sim_venue().connections
                   if any(_names(k, venue_symbol) for k in c.subscriptions))

    async def books_equal_truth(self, symbols: Sequence[str], timeout: float = 15.0) -> None:
        """Pause the simulator, wait until each book reached the venue's last id, compare the top 20."""
        self.sim.pause()
        try:
            v = self.sim_venue()
            for s in symbols:
                sid = get_symbol(s).id
                book = self.adapter.books[sid]
                vs = self.adapter.symbol_map.venue_symbol(sid)
                ok = await wait_until(lambda: book.in_sync and book.last_id == v.book(vs).last_id, timeout)
                assert ok, (s, book.in_sync, book.last_id, v.book(vs).last_id)
                levels, _ = true_levels(v, vs, self.adapter.symbol_map.instrument(sid), 20)
                assert book.top(20) == levels, s
        finally:
            self.sim.resume()


def _names(key: Any, venue_symbol: str) -> bool:
    parts = key if isinstance(key, tuple) else str(key).split("@")
    return venue_symbol in parts
