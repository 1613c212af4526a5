"""``python -m cexnode record --config FILE --out CAPTURE [--duration S]``.

Records what the node's market-data path receives — every WebSocket frame and every REST
exchange it makes — into a capture file (DESIGN §3) that ``replay`` can run offline.

How: for each enabled venue with symbols, the instrument info is fetched over REST (or taken from
``venues.<v>.instruments``), the venue's book channel is subscribed (the adapters' subscription
messages: Gate ``order_book_update``, MEXC aggre depth), and every received frame is written with
its receive time. The frames also run through the real parsers and a :class:`BookRouter` (books
only, no arbitrage), so that — exactly as in a live run — each book gets a REST snapshot after the
subscription and a new one whenever it leaves sync (gap, crossed); those answers are recorded too,
after their request, which is what ``replay`` needs to rebuild the same books. Pings are sent at the
venue's interval. With ``sim.enabled`` the embedded simulator is started and recorded.

The live node records through the same hook: a :class:`~cexnode.capture.format.CaptureWriter`
whose ``ws(venue, data, binary)`` the WebSocket listener calls for every frame (copying the
zero-copy payload) and whose ``rest(venue, method, path, query, status, body)`` the REST client
calls for every answer. Until the network layer (``cexnode.net``) calls it, this standalone
recorder (aiohttp) is what ``record`` runs.
"""
from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any, Optional
from urllib.parse import urlencode

from cexnode.capture.format import CaptureWriter

__all__ = ["record_main", "Recorder"]

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT = 0, 1, 2
VENUE_IDS = {"mexc_spot": 0, "gateio_spot": 1, "gateio_futures": 2}


def _venue_module(venue: str) -> tuple[Any, Any]:
    if venue == "gateio_spot":
        from cexnode.adapters.gateio_spot import subscriptions, urls
    elif venue == "gateio_futures":
        from cexnode.adapters.gateio_futures import subscriptions, urls
    else:
        from cexnode.adapters.mexc_spot import subscriptions, urls
    return subscriptions, urls


class Recorder:
    """One recording session (module docstring). ``await run(duration)``; counters for tests."""

    def __init__(self, cfg: Any, writer: CaptureWriter, *, urls: Optional[dict] = None,
                 clock: Any = time.time_ns, arbitrage: bool = True) -> None:
        self.cfg = cfg
        self.writer = writer
        self.clock = clock
        self.venues = [(n, v) for n, v in cfg.venues.enabled() if v.symbols]
        self.urls = urls or {}                      # venue -> (ws, rest) overriding config/production
        self.frames = 0
        self.rest_calls = 0
        self.snapshots = 0
        self.resyncs = 0
        self.errors: list[str] = []
        self.arbitrage = arbitrage
        self.opportunities: list[dict] = []       # json_fields() of every opportunity seen live
        self.router: Any = None
        self.parsers: dict[str, Any] = {}
        self.maps: dict[str, Any] = {}
        self._session: Any = None
        self._tasks: list[asyncio.Task] = []
        self._sync_tasks: dict[tuple[int, int], asyncio.Task] = {}
        self._stop = asyncio.Event()

    def _urls(self, venue: str, vcfg: Any) -> tuple[str, str]:
        if venue in self.urls:
            return self.urls[venue]
        _, u = _venue_module(venue)
        return vcfg.ws_url or u.WS_URL, (vcfg.rest_url or u.REST_URL).rstrip("/")

    async def _get(self, venue: str, vcfg: Any, path: str, params: dict) -> tuple[int, str]:
        query = urlencode(params)
        url = self._urls(venue, vcfg)[1] + path + ("?" + query if query else "")
        async with self._session.get(url) as resp:
            body = await resp.text()
            status = resp.status
        self.rest_calls += 1
        self.writer.rest(venue, "GET", path, query, status, body, t=self.clock())
        return status, body

    async def _instruments(self, registry: Any) -> None:
        import orjson

        from cexnode.capture.replay import add_instrument_info

        for venue, vcfg in self.venues:
            wanted = list(vcfg.symbols)
            if vcfg.instruments:
                specs = []
                for ic in vcfg.instruments:
                    spec = {"venue": venue, "symbol": ic.symbol, "venue_symbol": ic.venue_symbol, "tick": str(ic.tick),
                            "qty_step": str(ic.step), "min_qty": str(ic.min_qty), "min_notional": str(ic.min_notional)}
                    if venue == "gateio_futures":
                        spec["quanto_multiplier"] = str(ic.multiplier)
                    specs.append(spec)
                registry.add_instruments(specs)
                continue
            _, u = _venue_module(venue)
            path = {"mexc_spot": "EXCHANGE_INFO", "gateio_spot": "CURRENCY_PAIRS", "gateio_futures": "CONTRACTS"}[venue]
            status, body = await self._get(venue, vcfg, getattr(u, path), {})
            if status != 200:
                raise RuntimeError("%s instrument info: HTTP %d" % (venue, status))
            n = add_instrument_info(registry, venue, [orjson.loads(body)], wanted)
            if n < len(wanted):
                raise RuntimeError("%s lists %d of the configured symbols %s" % (venue, n, ", ".join(wanted)))

    def _build(self, registry: Any) -> None:
        from cexnode._core.book import SYNC_SNAPSHOT_DIFF
        from cexnode._core.router import BookRouter
        from cexnode.capture.replay import _parser, add_routes, book_depth, make_arb_engine

        self.router = BookRouter()
        self.router.on_resync = self._on_resync
        books = {}
        for venue, vcfg in self.venues:
            smap = registry.map(venue)
            self.maps[venue] = smap
            for sym in smap.symbols():
                books[(venue, sym.name)] = self.router.add_book(VENUE_IDS[venue], sym.id, SYNC_SNAPSHOT_DIFF,
                                                                book_depth(venue, vcfg),
                                                                max_levels=int(vcfg.book_max_levels))
            self.parsers[venue] = _parser(venue, smap, self.router)
        if self.arbitrage and self.cfg.arbitrage.routes:
            # the live pipeline's decisions, for comparison with a replay of this capture
            arb = make_arb_engine(self.cfg)
            add_routes(arb, self.cfg, registry, self.maps, books)
            self.router.set_arb(arb)
            self.router.on_opportunities = lambda opps: self.opportunities.extend(o.json_fields() for o in opps)

    def _on_resync(self, venue: int, symbol_id: int, reason: int) -> None:
        self.resyncs += 1
        self._schedule_snapshot(venue, symbol_id)

    def _schedule_snapshot(self, venue: int, symbol_id: int) -> None:
        t = self._sync_tasks.get((venue, symbol_id))
        if t is None or t.done():
            t = asyncio.get_running_loop().create_task(self._snapshot(venue, symbol_id))
            t.add_done_callback(self._task_done)
            self._sync_tasks[(venue, symbol_id)] = t

    def _task_done(self, t: asyncio.Task) -> None:
        # a snapshot task that died is reported, never lost silently
        if not t.cancelled() and t.exception() is not None:
            self.errors.append("snapshot task failed: %r" % (t.exception(),))

    async def _snapshot(self, venue_id: int, symbol_id: int) -> None:
        from cexnode.capture.replay import SNAPSHOT_PATHS, book_depth, parse_snapshot

        venue = next(n for n, i in VENUE_IDS.items() if i == venue_id)
        vcfg = getattr(self.cfg.venues, venue)
        smap = self.maps[venue]
        vs = smap.name_of(symbol_id)
        path, param = SNAPSHOT_PATHS[venue]
        depth = book_depth(venue, vcfg)
        params = {param: vs}
        if venue == "mexc_spot":
            params["limit"] = str(min(max(depth, 5), 5000))
        else:
            params["limit"] = str(depth)
            params["with_id"] = "true"
        delay = 0.05
        while not self._stop.is_set():
            try:
                status, body = await self._get(venue, vcfg, path, params)
                if status == 200:
                    last_id, bids, asks = parse_snapshot(venue, body, smap.instrument(symbol_id))
                    self.router.snapshot(venue_id, symbol_id, last_id, bids, asks)
                    self.snapshots += 1
                    return
            except asyncio.CancelledError:
                raise
            except Exception as e:        # keep recording; the failed answer is in the capture
                self.errors.append("%s snapshot: %r" % (venue, e))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _feed(self, venue: str, vcfg: Any) -> None:
        import aiohttp

        subs, _ = _venue_module(venue)
        smap = self.maps[venue]
        vsyms = [smap.venue_symbol(s) for s in smap.symbols()]
        depth = int(vcfg.book_depth)
        if venue == "mexc_spot":
            msgs = [subs.subscribe_message([subs.depth_topic(v)], req_id=i + 1) for i, v in enumerate(vsyms)]
        else:
            msgs = [subs.book_subscription(v, depth, req_id=i + 1) for i, v in enumerate(vsyms)]
        parser = self.parsers[venue]
        ws_url = self._urls(venue, vcfg)[0]
        async with self._session.ws_connect(ws_url, autoping=True, max_msg_size=0) as ws:
            for m in msgs:
                await ws.send_str(m.decode())
            for s in smap.symbols():
                self._schedule_snapshot(VENUE_IDS[venue], s.id)
            ping = asyncio.get_running_loop().create_task(self._ping(ws, subs))
            try:
                async for msg in ws:
                    t = self.clock()
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        data, binary = msg.data.encode(), False
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        data, binary = msg.data, True
                    else:
                        break
                    self.writer.ws(venue, data, binary=binary, t=t)
                    self.frames += 1
                    parser.feed_bytes(data, binary, t)
            finally:
                ping.cancel()
        if not self._stop.is_set():
            self.errors.append("%s: WebSocket closed by the venue" % venue)

    async def _ping(self, ws: Any, subs: Any) -> None:
        while True:
            await asyncio.sleep(float(getattr(subs, "PING_INTERVAL_S", 10.0)))
            await ws.send_str(subs.ping_message().decode())

    async def run(self, duration: Optional[float]) -> None:
        import aiohttp

        from cexnode._core.symbols import SymbolRegistry

        async with aiohttp.ClientSession() as session:
            self._session = session
            registry = SymbolRegistry()
            await self._instruments(registry)
            registry.freeze()
            self._build(registry)
            self._tasks = [asyncio.get_running_loop().create_task(self._feed(v, c)) for v, c in self.venues]
            waiter = asyncio.get_running_loop().create_task(self._stop.wait())
            try:
                done, _ = await asyncio.wait(self._tasks + [waiter], timeout=duration,
                                             return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    if t is not waiter and t.exception() is not None:
                        raise t.exception()
            finally:
                self._stop.set()
                for t in self._tasks + list(self._sync_tasks.values()) + [waiter]:
                    t.cancel()
                await asyncio.gather(*self._tasks, *self._sync_tasks.values(), waiter, return_exceptions=True)
        self.writer.flush()

    def stop(self) -> None:
        self._stop.set()


async def _record(cfg: Any, out: str, duration: Optional[float]) -> Recorder:
    sim = None
    urls = None
    if cfg.sim.enabled:
        from cexnode.sim import ExchangeSimulator

        sim = ExchangeSimulator(cfg)
        await sim.start()
        urls = {n: (u.ws, u.rest.rstrip("/")) for n, u in sim.urls.items()}
    try:
        with CaptureWriter(out) as writer:
            rec = Recorder(cfg, writer, urls=urls)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, rec.stop)
                except (NotImplementedError, RuntimeError):
                    pass
            await rec.run(duration)
            return rec
    finally:
        if sim is not None:
            await sim.stop()


def record_main(cfg: Any, out: str, duration: Optional[float] = None) -> int:
    """Record until ``duration`` seconds have passed (None: until SIGINT/SIGTERM); exit code.

    0 ok (a summary line on stderr), 2 no venue with symbols in the config, 1 runtime failure
    (network, instrument info) with a one-line message.
    """
    if not any(v.symbols for _, v in cfg.venues.enabled()):
        sys.stderr.write("cexnode: record: the config enables no venue with symbols (venues.<venue>.symbols)\n")
        return EXIT_BAD_INPUT
    try:
        rec = asyncio.run(_record(cfg, out, duration))
    except OSError as e:
        sys.stderr.write("cexnode: record: %s\n" % e)
        return EXIT_RUNTIME
    except Exception as e:
        sys.stderr.write("cexnode: record failed: %s\n" % (str(e) or repr(e)))
        return EXIT_RUNTIME
    sys.stderr.write("cexnode: recorded %d frames, %d REST answers (%d snapshots, %d resyncs; %d opportunities "
                     "seen live) to %s\n" % (rec.frames, rec.rest_calls, rec.snapshots, rec.resyncs,
                                              len(rec.opportunities), out))
    return EXIT_OK
