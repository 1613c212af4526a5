"""A peer client of perf/bench_insitu.py: cryptofeed or ccxt.pro keeping the simulator's Gate-format
spot books, run under ``.venv-peers/bin/python`` (``make bench-peers`` installs them).

``insitu_peer.py --lib cryptofeed|ccxt --venue gateio_spot --ws URL --rest URL --symbols A/USDT,B/USDT``

Each library is used as its documentation shows, on uvloop (as the node), with one book callback /
watch loop that counts updates; nothing of the library is patched: only its endpoint URLs point at
the simulator (cryptofeed: a subclass of its Gate feed with the simulator's websocket and REST
endpoints, the ws:// one given back by its connection-time authentication hook; ccxt: ``urls['api']`` overrides, as tests/integration/test_sim_ccxt.py does, the WebSocket one marked
as Gate's EU site so that ccxt keeps the same channel as the others: see ``ccxt_client``). Frames are
counted where the library hands a received message to its exchange code (``message_handler`` /
``handle_message``), by a subclass that adds one to a counter and calls the library's method.

Commands, one JSON object a line on stdin, one JSON answer a line on stdout:
``{"cmd": "wait_ready", "timeout": S}`` (every book has both sides), ``{"cmd": "count"}`` ->
``{"frames": n, "updates": m}``, ``{"cmd": "books", "symbols": [...], "depth": d}`` -> top levels as
strings. End of stdin stops the client.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time

import uvloop


class Counts:
    frames = 0
    updates = 0
    errors = 0


def cryptofeed_client(args, syms: list[str], loop: asyncio.AbstractEventLoop):
    from cryptofeed import FeedHandler
    from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint
    from cryptofeed.defines import L2_BOOK
    from cryptofeed.exchanges import Gateio

    # cryptofeed accepts wss:// addresses only; its endpoints' authentication hook (called with the
    # address right before connecting, returning the address to connect to) gives back the simulator's ws://.
    class SimGateio(Gateio):
        websocket_endpoints = [WebsocketEndpoint("wss://" + args.ws.partition("://")[2], authentication=True,
                                                 options={"compression": None})]
        rest_endpoints = [RestEndpoint(args.rest, routes=Routes(
            "/api/v4/spot/currency_pairs", l2book="/api/v4/spot/order_book?currency_pair={}&limit=100&with_id=true"))]

        async def _ws_authentication(self, address, ws_options):
            return "ws://" + address.partition("://")[2], ws_options

        async def message_handler(self, msg, conn, timestamp):
            Counts.frames += 1
            await super().message_handler(msg, conn, timestamp)

    async def on_book(book, receipt_timestamp):
        Counts.updates += 1

    std = [s.replace("/", "-") for s in syms]
    fh = FeedHandler(config={"uvloop": False, "log": {"filename": "/dev/null", "level": "WARNING"}})
    feed = SimGateio(symbols=std, channels=[L2_BOOK], callbacks={L2_BOOK: on_book})
    fh.add_feed(feed)
    fh.run(start_loop=False, install_signal_handlers=False)

    def ready() -> bool:
        return all(s in feed._l2_book and len(feed._l2_book[s].book.bids) and len(feed._l2_book[s].book.asks)
                   for s in std)

    def books(symbols: list[str], depth: int) -> dict:
        out = {}
        for s in symbols:
            ob = feed._l2_book.get(s.replace("/", "-"))
            if ob is None:
                continue
            out[s] = {"bids": [[str(p), str(q)] for p, q in ob.book.bids.to_list()[:depth]],
                      "asks": [[str(p), str(q)] for p, q in ob.book.asks.to_list()[:depth]]}
        return out
    return ready, books


def ccxt_client(args, syms: list[str], loop: asyncio.AbstractEventLoop):
    import ccxt.pro as ccxtpro

    class SimGate(ccxtpro.gate):
        def handle_message(self, client, message):
            Counts.frames += 1
            return super().handle_message(client, message)

    ex = SimGate({"enableRateLimit": False, "options": {"fetchMarkets": {"types": ["spot"]}}})
    for access in ("public", "private"):
        for section in ex.urls["api"][access]:
            ex.urls["api"][access][section] = args.rest + "/api/v4"
    # ccxt watches Gate spot books on spot.obu unless the URL is Gate's EU site, where it takes
    # spot.order_book_update [pair, "100ms"]: the stream the node and cryptofeed keep. The marker rides
    # in the query string, which the simulator ignores.
    ex.urls["api"]["spot"] = args.ws + "?gateeu"

    async def watch(sym: str) -> None:
        while True:
            try:
                await ex.watch_order_book(sym)
            except Exception as e:              # ccxt raises a lost connection here and reconnects on the next call
                Counts.errors += 1
                print("ccxt %s: %s: %s" % (sym, type(e).__name__, e), file=sys.stderr, flush=True)
                await asyncio.sleep(0.1)
                continue
            Counts.updates += 1

    async def start() -> None:
        while True:             # the simulator may be slow to answer while other clients fetch their snapshots
            try:
                await ex.load_markets()
                break
            except Exception as e:
                Counts.errors += 1
                print("ccxt load_markets: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
                await asyncio.sleep(1.0)
        for s in syms:
            loop.create_task(watch(s))
    loop.create_task(start())

    def ready() -> bool:
        return all(s in ex.orderbooks and len(ex.orderbooks[s]["bids"]) and len(ex.orderbooks[s]["asks"])
                   for s in syms)

    def books(symbols: list[str], depth: int) -> dict:
        out = {}
        for s in symbols:
            ob = ex.orderbooks.get(s)
            if ob is None:
                continue
            out[s] = {"bids": [[repr(p), repr(q)] for p, q, *_ in ob["bids"][:depth]],
                      "asks": [[repr(p), repr(q)] for p, q, *_ in ob["asks"][:depth]]}
        return out
    return ready, books


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", required=True, choices=("cryptofeed", "ccxt"))
    ap.add_argument("--venue", default="gateio_spot", choices=("gateio_spot",))
    ap.add_argument("--ws", required=True)
    ap.add_argument("--rest", required=True)
    ap.add_argument("--symbols", required=True)
    args = ap.parse_args()
    syms = [s for s in args.symbols.split(",") if s]
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    ready, books = (cryptofeed_client if args.lib == "cryptofeed" else ccxt_client)(args, syms, loop)

    async def handle(cmd: dict) -> dict:
        if cmd["cmd"] == "count":
            return {"frames": Counts.frames, "updates": Counts.updates, "errors": Counts.errors}
        if cmd["cmd"] == "wait_ready":
            deadline = time.monotonic() + float(cmd.get("timeout", 300))
            while not ready():
                if time.monotonic() > deadline:
                    return {"ready": False}
                await asyncio.sleep(0.2)
            return {"ready": True}
        if cmd["cmd"] == "books":
            return {"books": books(cmd["symbols"], int(cmd.get("depth", 10)))}
        return {"error": "unknown command %r" % cmd.get("cmd")}

    def commands() -> None:
        for line in sys.stdin:
            if not line.strip():
                continue
            answer = asyncio.run_coroutine_threadsafe(handle(json.loads(line)), loop).result()
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=commands, daemon=True).start()
    loop.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
