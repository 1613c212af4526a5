"""``python -m cexnode replay --config FILE --capture CAPTURE [--dump-books]``.

Runs the live market-data pipeline offline — the venues' Cython parsers feeding one
:class:`~cexnode._core.router.BookRouter` (BookSync → Book → ArbEngine) — over every frame of a
capture, and writes JSON Lines to ``out``:

* ``{"type": "opportunity", "route", "symbol", "buy_venue", "sell_venue", "qty", "buy_price",
  "sell_price", "buy_vwap", "sell_vwap", "net_profit", "net_bps", "t"}`` as the engine emits them;
* ``{"type": "resync", "venue", "symbol", "reason", "t"}`` each time a book leaves sync;
* with ``dump_books``: ``{"type": "book", "venue", "symbol", "in_sync", "last", "bids", "asks"}``
  for every book at the end (top 20 levels, decimal strings, sizes in base units);
* last, ``{"type": "summary", "frames", "errors", "resyncs", "opportunities", "snapshots"}``.

Deterministic: the router's clock is fixed at each entry's capture time ``t`` (freshness checks and
``Opportunity.t`` use it), entries are processed in capture order, and the output is a pure function
of the config and the capture.

Rules
-----
* Instruments: ``venues.<v>.instruments`` from the config, else the capture's REST instrument-info
  answers (MEXC ``/api/v3/exchangeInfo``, Gate ``/api/v4/spot/currency_pairs[/PAIR]``,
  ``/api/v4/futures/usdt/contracts[/C]``) for the configured symbols.
* Books: one per configured (venue, symbol); Gate venues whose capture carries ``*.obu`` pushes use
  the stream-full rule (no REST snapshot), every other book the snapshot+diff rule.
* REST snapshots: the pipeline requests one per snapshot+diff book at start and one per resync;
  each request is answered with the next unused captured order-book answer for that book whose
  capture time has been reached (a live recording holds each answer after its request, so this
  applies it exactly when live did). Non-200 answers are consumed as failed attempts.
"""
from __future__ import annotations

import sys
from collections import deque
from typing import IO, Any, Optional

import orjson

from cexnode.adapters.registry import descriptor, descriptors
from cexnode.capture.format import VENUES, CaptureEntry, CaptureFormatError, read_capture

__all__ = ["replay_main", "Replay", "ReplayInputError", "add_instrument_info", "parse_snapshot", "add_routes",
           "make_arb_engine"]

EXIT_OK, EXIT_RUNTIME, EXIT_BAD_INPUT = 0, 1, 2
VENUE_IDS = {name: i for i, name in enumerate(VENUES)}
DUMP_LEVELS = 20

# REST paths of the order-book snapshots and the symbol query parameter (venue REST docs).
SNAPSHOT_PATHS = {
    "mexc_spot": ("/api/v3/depth", "symbol"),
    "gateio_spot": ("/api/v4/spot/order_book", "currency_pair"),
    "gateio_futures": ("/api/v4/futures/usdt/order_book", "contract"),
}
INSTRUMENT_PATHS = {
    "mexc_spot": "/api/v3/exchangeInfo",
    "gateio_spot": "/api/v4/spot/currency_pairs",
    "gateio_futures": "/api/v4/futures/usdt/contracts",
}


class ReplayInputError(ValueError):
    """The config and the capture do not give what replay needs (reported with exit code 2)."""


def route_symbol_on(venue: str, symbol: str) -> str:
    """A route's spot symbol as listed on ``venue``: the USDT-settled perpetual on futures."""
    if venue == "gateio_futures" and ":" not in symbol:
        return "%s:%s" % (symbol, symbol.split("/")[1])
    return symbol


def _parser(venue: str, smap: Any, sink: Any) -> Any:
    if venue == "gateio_spot":
        from cexnode._core.parsers.gateio_spot import GateSpotParser
        return GateSpotParser(smap, sink)
    if venue == "gateio_futures":
        from cexnode._core.parsers.gateio_futures import GateFuturesParser
        return GateFuturesParser(smap, sink)
    from cexnode._core.parsers.mexc_spot import MexcSpotParser
    return MexcSpotParser(smap, sink)


def book_depth(venue: str, vcfg: Any) -> int:
    """Levels kept per side, as the venue adapters size their books: Gate streams push the top 20 or
    100 levels (spot ``20ms``/``100ms``; futures levels 20/50/100), MEXC the configured depth."""
    depth = int(vcfg.book_depth)
    if venue == "gateio_spot":
        from cexnode.adapters.gateio_spot import subscriptions
        return subscriptions.snapshot_limit(depth)
    if venue == "gateio_futures":
        from cexnode.adapters.gateio_futures import subscriptions
        return subscriptions.book_level(depth)
    return depth


def make_arb_engine(cfg: Any) -> Any:
    """An ArbEngine with the thresholds of ``cfg.arbitrage``."""
    from cexnode._core.arb import ArbEngine

    a = cfg.arbitrage
    return ArbEngine(min_profit=a.min_profit, min_bps=a.min_bps, max_notional=a.max_notional,
                     max_book_age_ms=a.max_book_age_ms, slippage_bps=a.slippage_bps,
                     venue_names={d.venue_id: d.name for d in descriptors()})


def add_routes(arb: Any, cfg: Any, registry: Any, maps: dict, books: dict) -> int:
    """Add ``cfg.arbitrage.routes`` to ``arb`` (legs as the engine builds them: instrument spec, book,
    the venue's taker fee); a route with fewer than two available venues is skipped. Returns the count."""
    n = 0
    for r in cfg.arbitrage.routes:
        legs = []
        for venue in r.venues:
            vcfg = getattr(cfg.venues, venue, None)
            if venue not in maps or vcfg is None:
                continue
            sym = route_symbol_on(venue, r.symbol)
            book = books.get((venue, sym))
            if book is None:
                continue
            legs.append(dict(maps[venue].instrument(sym), venue=venue, book=book, taker_fee=vcfg.taker_fee))
        if len(legs) >= 2:
            p, q = registry.scales(r.symbol)
            arb.add_route(r.name or "%s %s" % (r.symbol, "/".join(r.venues)), r.symbol, p, q, legs)
            n += 1
    return n


def add_instrument_info(registry: Any, venue: str, bodies: list, wanted: list) -> int:
    """Add ``wanted`` unified symbols of ``venue`` from instrument-info answers (parsed JSON bodies:
    MEXC exchangeInfo objects, Gate currency pair / contract objects or lists); returns how many."""
    found: dict[str, Any] = {}
    for body in bodies:
        if venue == "mexc_spot":
            for s in (body.get("symbols") or []) if isinstance(body, dict) else []:
                if isinstance(s, dict):
                    found.setdefault(str(s.get("symbol")), s)
        else:
            for item in body if isinstance(body, list) else [body]:
                if isinstance(item, dict):
                    found.setdefault(str(item.get("id") or item.get("name")), item)
    items = list(found.values())
    if not items:
        return 0
    only = set(wanted)
    load = descriptor(venue).instrument_loader
    return load(registry, {"symbols": items} if venue == "mexc_spot" else items, only=only)


def parse_snapshot(venue: str, body: str, inst: dict) -> tuple[int, list, list]:
    """(last_id, bids, asks) of an order-book REST answer, levels as (price, BASE qty) mantissas at the
    instrument's scales (Gate futures sizes are contracts × multiplier). ValueError/KeyError when malformed."""
    from cexnode._core.fixedpoint import parse

    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ValueError("snapshot is not JSON: %s" % e) from None
    last_id = int(obj["lastUpdateId"] if venue == "mexc_spot" else obj["id"])
    ps, vqs, mult = inst["price_scale"], inst["venue_qty_scale"], inst["qty_mult"]

    def levels(side: Any) -> list:
        out = []
        for lv in side or ():
            p, q = (lv["p"], lv["s"]) if isinstance(lv, dict) else (lv[0], lv[1])
            out.append((parse(str(p), ps), parse(str(q), vqs) * mult))
        return out

    return last_id, levels(obj.get("bids")), levels(obj.get("asks"))


def _dumps(obj: dict) -> str:
    return orjson.dumps(obj).decode() + "\n"


class Replay:
    """One replay run (module docstring). Build with the config and the capture's entries, then :meth:`run`."""

    def __init__(self, cfg: Any, entries: list[CaptureEntry], *, dump_books: bool = False) -> None:
        from cexnode._core.book import SYNC_SNAPSHOT_DIFF, SYNC_STREAM_FULL
        from cexnode._core.router import BookRouter
        from cexnode._core.symbols import SymbolRegistry

        self.cfg = cfg
        self.entries = entries
        self.dump_books = dump_books
        self.venues = [(n, v) for n, v in cfg.venues.enabled() if v.symbols]
        if not self.venues:
            raise ReplayInputError("the config enables no venue with symbols (venues.<venue>.symbols)")
        self.registry = SymbolRegistry()
        for name, vcfg in self.venues:
            self._load_instruments(name, vcfg)
        self.registry.freeze()

        self.arb = make_arb_engine(cfg)
        self.router = BookRouter(self.arb)
        self.router.set_now(entries[0].t if entries else 0)
        self.parsers: dict[str, Any] = {}
        self.maps: dict[str, Any] = {}
        self.books: dict[tuple[str, str], Any] = {}
        self.rules: dict[tuple[int, int], int] = {}
        obu = self._obu_venues()
        for name, vcfg in self.venues:
            smap = self.registry.map(name)
            self.maps[name] = smap
            vid = VENUE_IDS[name]
            rule = SYNC_STREAM_FULL if name in obu else SYNC_SNAPSHOT_DIFF
            for sym in smap.symbols():
                self.books[(name, sym.name)] = self.router.add_book(vid, sym.id, rule, book_depth(name, vcfg),
                                                                    max_levels=int(vcfg.book_max_levels))
                self.rules[(vid, sym.id)] = rule
            self.parsers[name] = _parser(name, smap, self.router)
        add_routes(self.arb, cfg, self.registry, self.maps, self.books)

        self._snap_rule = SYNC_SNAPSHOT_DIFF
        self.lines: list[str] = []
        self.pending: deque = deque()                   # (venue id, symbol id) awaiting a snapshot, request order
        self.answers: dict[tuple[int, int], deque] = {} # captured snapshot answers not used yet
        self.now = entries[0].t if entries else 0
        self.frames = 0
        self.snapshots = 0
        self.snapshot_failures = 0
        self.opportunities = 0
        self.resync_lines = 0
        self.router.on_opportunities = self._on_opportunities
        self.router.on_resync = self._on_resync
        for (vid, sid), rule in self.rules.items():
            if rule == SYNC_SNAPSHOT_DIFF:
                self.pending.append((vid, sid))

    # -- set-up --------------------------------------------------------------------------------------
    def _obu_venues(self) -> set:
        out = set()
        for e in self.entries:
            if e.kind == "ws" and e.venue.startswith("gateio") and e.venue not in out:
                if b'.obu"' in e.data and b'"event":"subscribe"' not in e.data.replace(b" ", b""):
                    out.add(e.venue)
        return out

    def _load_instruments(self, name: str, vcfg: Any) -> None:
        wanted = list(vcfg.symbols)
        if vcfg.instruments:
            specs = []
            for ic in vcfg.instruments:
                spec = {"venue": name, "symbol": ic.symbol, "venue_symbol": ic.venue_symbol,
                        "tick": str(ic.tick), "qty_step": str(ic.step), "min_qty": str(ic.min_qty),
                        "min_notional": str(ic.min_notional)}
                if name == "gateio_futures":
                    spec["quanto_multiplier"] = str(ic.multiplier)
                specs.append(spec)
            self.registry.add_instruments(specs)
            return
        prefix = INSTRUMENT_PATHS[name]
        bodies = []
        for e in self.entries:
            if e.kind != "rest" or e.venue != name or e.status != 200 or not e.path.startswith(prefix):
                continue
            try:
                bodies.append(orjson.loads(e.body))
            except orjson.JSONDecodeError:
                raise ReplayInputError("capture line %d: instrument info of %s is not JSON" % (e.lineno, name)) from None
        n = add_instrument_info(self.registry, name, bodies, wanted)
        if n < len(wanted):
            raise ReplayInputError(
                "no instrument info for %s %s: the capture holds no usable %s answer for them; give "
                "venues.%s.instruments in the config" % (name, ", ".join(wanted), prefix, name))

    # -- callbacks (inside the Cython pipeline) ----------------------------------------------------------
    def _on_opportunities(self, opps: list) -> None:
        for o in opps:
            d = {"type": "opportunity"}
            d.update(o.json_fields())
            self.lines.append(_dumps(d))
        self.opportunities += len(opps)

    def _on_resync(self, venue: int, symbol_id: int, reason: int) -> None:
        from cexnode._core.book import RESYNC_NAMES

        name = VENUES[venue]
        self.lines.append(_dumps({"type": "resync", "venue": name, "symbol": self.maps[name].symbol(
            self.maps[name].name_of(symbol_id)).name, "reason": RESYNC_NAMES.get(reason, str(reason)),
            "t": self.now}))
        self.resync_lines += 1
        if self.rules.get((venue, symbol_id)) == self._snap_rule and (venue, symbol_id) not in self.pending:
            self.pending.append((venue, symbol_id))

    # -- snapshots -----------------------------------------------------------------------------------
    def _snapshot_key(self, e: CaptureEntry) -> Optional[tuple[int, int]]:
        path, param = SNAPSHOT_PATHS[e.venue]
        if e.path != path or e.venue not in self.maps:
            return None
        vs = e.params().get(param)
        if vs is None:
            return None
        try:
            sid = self.maps[e.venue].id_of(vs)
        except KeyError:
            return None
        return VENUE_IDS[e.venue], sid

    def _apply_snapshot(self, key: tuple[int, int], e: CaptureEntry) -> bool:
        vid, sid = key
        if e.status != 200:
            self.snapshot_failures += 1
            return False
        try:
            last_id, bids, asks = parse_snapshot(e.venue, e.body, self.maps[e.venue].instrument(sid))
        except (KeyError, TypeError, ValueError, IndexError):
            self.snapshot_failures += 1
            return False
        # applied when the answer was received, or now when the request came after it (an answer
        # captured before the request that uses it: never the case in a live recording)
        t = max(e.t, self.now)
        self.router.set_now(t)
        self.router.snapshot(vid, sid, last_id, bids, asks, recv_ns=t)
        self.snapshots += 1
        return True

    def _serve(self) -> None:
        # Answer pending requests, in request order, with answers whose capture time has come.
        progressed = True
        while progressed and self.pending:
            progressed = False
            for _ in range(len(self.pending)):
                key = self.pending.popleft()
                q = self.answers.get(key)
                served = False
                while q:
                    e = q.popleft()
                    if self._apply_snapshot(key, e):
                        served = True
                        progressed = True
                        break
                if not served:
                    self.pending.append(key)

    # -- run -------------------------------------------------------------------------------------------
    def run(self, out: IO[str]) -> dict:
        router = self.router
        for e in self.entries:
            self.now = e.t
            if e.kind == "rest":
                key = self._snapshot_key(e)
                if key is not None:
                    self.answers.setdefault(key, deque()).append(e)
            else:
                parser = self.parsers.get(e.venue)
                if parser is None:
                    continue
                router.set_now(e.t)
                parser.feed_bytes(e.data, e.binary, e.t)
                self.frames += 1
            self._serve()
            if self.lines:
                out.write("".join(self.lines))
                self.lines.clear()
        if self.dump_books:
            self._dump_books(out)
        errors = sum(p.errors for p in self.parsers.values())
        summary = {"type": "summary", "frames": self.frames, "errors": errors, "resyncs": self.resync_lines,
                   "opportunities": self.opportunities, "snapshots": self.snapshots}
        out.write(_dumps(summary))
        return summary

    def _dump_books(self, out: IO[str]) -> None:
        from cexnode._core.arb import format_mantissa

        for (venue, symbol), book in sorted(self.books.items(), key=lambda kv: (VENUE_IDS[kv[0][0]], kv[0][1])):
            p, q = self.registry.scales(symbol)
            bids, asks = book.top(min(DUMP_LEVELS, book.depth))
            out.write(_dumps({"type": "book", "venue": venue, "symbol": symbol, "in_sync": bool(book.in_sync),
                              "last": book.last_id,
                              "bids": [[format_mantissa(a, p), format_mantissa(b, q)] for a, b in bids],
                              "asks": [[format_mantissa(a, p), format_mantissa(b, q)] for a, b in asks]}))


def replay_main(cfg: Any, capture: str, dump_books: bool = False, out: IO[str] = sys.stdout) -> int:
    """Replay ``capture`` with ``cfg`` and write the output lines to ``out``; returns the exit code.

    0 ok; 2 bad input (unreadable capture, a line that is not a capture entry, instruments missing),
    with a one-paragraph message on stderr.
    """
    try:
        entries = [e for e in read_capture(capture)]
    except FileNotFoundError:
        sys.stderr.write("cexnode: capture file not found: %s\n" % capture)
        return EXIT_BAD_INPUT
    except (OSError, EOFError, CaptureFormatError) as e:
        sys.stderr.write("cexnode: cannot read capture %s: %s\n" % (capture, e))
        return EXIT_BAD_INPUT
    try:
        rp = Replay(cfg, entries, dump_books=dump_books)
    except (ReplayInputError, ValueError, KeyError) as e:
        sys.stderr.write("cexnode: cannot replay %s: %s\n" % (capture, e))
        return EXIT_BAD_INPUT
    try:
        rp.run(out)
    except Exception as e:       # a bug, not bad input: exit 1 with the reason, never a traceback
        sys.stderr.write("cexnode: replay of %s failed: %r\n" % (capture, e))
        return EXIT_RUNTIME
    out.flush()
    return EXIT_OK
