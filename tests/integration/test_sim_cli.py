"""``python -m cexnode sim``, the auto clock, and the extension hook the trading side plugs into."""
from __future__ import annotations

import asyncio
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import aiohttp
import orjson
from aiohttp import web

from cexnode.component import NodeContext
from cexnode.config import SimConfig, load_config
from cexnode.metrics import NodeMetrics
from cexnode.sim import ExchangeSimulator

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))

CFG = """
sim:
  enabled: true
  seed: 4
  update_interval_ms: 5
  mid_prices: {BTC/USDT: 65000}
venues:
  mexc_spot: {symbols: [BTC/USDT]}
  gateio_futures: {symbols: [BTC/USDT:USDT]}
"""


def test_cli_sim_prints_urls_serves_and_stops_on_sigterm(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text(CFG)
    p = subprocess.Popen([sys.executable, "-m", "cexnode", "sim", "--config", str(path)], cwd=ROOT, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [p.stdout.readline() for _ in range(2)]
        urls = dict(re.match(r"sim (\S+)\s+ws (\S+)\s+rest (\S+)", ln).group(1, 3) for ln in lines)
        assert set(urls) == {"mexc_spot", "gateio_futures"}        # the venues the config lists

        async def probe():
            async with aiohttp.ClientSession() as s:
                async with s.get(urls["mexc_spot"] + "/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"}) as r:
                    return r.status, await r.json()
        status, body = asyncio.run(asyncio.wait_for(probe(), 5))
        assert status == 200 and len(body["bids"]) == 5
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert p.returncode == 0, err
    assert "sim stopped" in out


def test_cli_sim_sigusr1_pauses_the_clock_and_sigusr2_resumes_it(tmp_path):
    """A benchmark holds the books still from another process to compare its clients' books with the
    REST snapshots: SIGUSR1 stops the book ids (REST still answers), SIGUSR2 sets them moving again."""
    path = tmp_path / "sim.yaml"
    path.write_text(CFG)
    p = subprocess.Popen([sys.executable, "-m", "cexnode", "sim", "--config", str(path)], cwd=ROOT, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [p.stdout.readline() for _ in range(2)]
        rest = dict(re.match(r"sim (\S+)\s+ws (\S+)\s+rest (\S+)", ln).group(1, 3) for ln in lines)["mexc_spot"]

        async def last_id(s: aiohttp.ClientSession) -> int:
            async with s.get(rest + "/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"}) as r:
                assert r.status == 200
                return (await r.json())["lastUpdateId"]

        async def ids_until(s, pred, what: str, t: float = 10.0) -> list[int]:
            seen = [await last_id(s)]
            deadline = time.monotonic() + t
            while not pred(seen):
                assert time.monotonic() < deadline, "%s: ids %s" % (what, seen[-5:])
                seen.append(await last_id(s))
            return seen

        async def probe():
            async with aiohttp.ClientSession() as s:
                await ids_until(s, lambda ids: len(set(ids)) >= 3, "the clock runs")
                p.send_signal(signal.SIGUSR1)
                # paused: once the id stands still it stays still over 40 update periods (5 ms)
                still = await ids_until(s, lambda ids: len(ids) >= 2 and ids[-1] == ids[-2], "SIGUSR1 pauses")
                t_end = time.monotonic() + 0.2
                while time.monotonic() < t_end:
                    assert await last_id(s) == still[-1]
                p.send_signal(signal.SIGUSR2)
                moving = await ids_until(s, lambda ids: ids[-1] > still[-1], "SIGUSR2 resumes")
                return still[-1], moving[-1]
        paused_id, resumed_id = asyncio.run(asyncio.wait_for(probe(), 30))
        assert resumed_id > paused_id
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    assert p.returncode == 0, err


def test_cli_sim_duration_and_bad_config(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text(CFG)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "cexnode", "sim", "--config", str(path), "--duration", "0.5"],
                       cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("sim ") >= 2 and time.monotonic() - t0 < 15
    bad = tmp_path / "bad.yaml"
    bad.write_text(CFG.replace("seed: 4", "seed: four"))
    r = subprocess.run([sys.executable, "-m", "cexnode", "sim", "--config", str(bad)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "sim.seed" in r.stderr and "Traceback" not in r.stderr


def test_auto_clock_streams_from_a_full_config(tmp_path):
    path = tmp_path / "sim.yaml"
    path.write_text(CFG)
    cfg = load_config(str(path))

    async def main():
        async with ExchangeSimulator(cfg, trading=False) as sim, aiohttp.ClientSession() as s:
            assert set(sim.venues) == {"mexc_spot", "gateio_futures"}
            async with s.ws_connect(sim.urls["gateio_futures"].ws) as ws:
                await ws.send_str('{"time":1,"channel":"futures.order_book_update","event":"subscribe",'
                                  '"payload":["BTC_USDT","100ms","100"]}')
                ids = []
                while len(ids) < 20:
                    m = orjson.loads((await ws.receive(timeout=3)).data)
                    if m["event"] == "update":
                        ids.append((m["result"]["U"], m["result"]["u"]))
                assert all(b[0] == a[1] + 1 for a, b in zip(ids, ids[1:]))      # contiguous ids
        return sim.diffs_published

    assert asyncio.run(asyncio.wait_for(main(), 10)) >= 20


def test_extension_hook_routes_ws_handlers_and_publish_change():
    """What the trading side uses: extra REST routes, WS handlers by channel/topic, true books."""
    async def main():
        sim = ExchangeSimulator(SimConfig(seed=2, book_levels=10), clock="manual", trading=False)
        gate, mexc = sim.venue("gateio_spot"), sim.venue("mexc_spot")
        seen = []

        async def orders(request):
            return web.json_response({"ok": True})
        gate.app.router.add_get("/api/v4/spot/orders", orders)

        def login(conn, msg):
            conn.user_data["user"] = 42
            gate.gate_ack(conn, msg, result={"uid": "42"})
        gate.ws_handlers["spot.login"] = login

        def private(conn, topic):
            seen.append((topic, conn.query.get("listenKey")))
            return conn.query.get("listenKey") == "good"
        mexc.ws_handlers["spot@private.orders.v3.api.pb"] = private

        async with sim, aiohttp.ClientSession() as s:
            async with s.get(sim.urls["gateio_spot"].rest + "/api/v4/spot/orders") as r:
                assert (await r.json()) == {"ok": True}
            async with s.ws_connect(sim.urls["gateio_spot"].ws) as ws:
                await ws.send_str('{"time":1,"id":5,"channel":"spot.login","event":"api","payload":{}}')
                ack = orjson.loads((await ws.receive(timeout=3)).data)
                assert ack["id"] == 5 and ack["result"] == {"uid": "42"}
                assert [c.user_data for c in gate.connections] == [{"user": 42}]
                await ws.send_str('{"time":1,"channel":"spot.order_book_update","event":"subscribe","payload":["BTC_USDT","100ms"]}')
                await ws.receive(timeout=3)
                # a fill eats the best ask: published as a diff on the public stream
                inst, book = gate.instrument("BTC/USDT"), gate.book("BTC/USDT")
                px, qty = book.best_ask()
                before = book.last_id
                diff = gate.publish_change("BTC/USDT", asks=[(px, 0)])
                assert diff.first == before + 1 and book.best_ask()[0] > px
                m = orjson.loads((await ws.receive(timeout=3)).data)
                assert m["result"]["U"] == before + 1 and m["result"]["a"] == [[inst.price_str(px), "0"]]
            for key, ok in (("good", True), ("bad", False)):
                async with s.ws_connect(sim.urls["mexc_spot"].ws + "?listenKey=" + key) as ws:
                    await ws.send_str('{"method":"SUBSCRIPTION","params":["spot@private.orders.v3.api.pb"]}')
                    m = orjson.loads((await ws.receive(timeout=3)).data)
                    assert (m["msg"] == "spot@private.orders.v3.api.pb") == ok
            assert seen == [("spot@private.orders.v3.api.pb", "good"), ("spot@private.orders.v3.api.pb", "bad")]

    asyncio.run(asyncio.wait_for(main(), 10))


def test_sim_component_publishes_urls_in_the_node_context(tmp_path):
    from types import SimpleNamespace

    from cexnode.sim.component import SimComponent
    path = tmp_path / "sim.yaml"
    path.write_text(CFG)
    node = SimpleNamespace(cfg=load_config(str(path)), context=NodeContext(metrics=NodeMetrics()))

    async def main():
        comp = SimComponent(node)
        assert node.context.sim is comp.sim and node.context.sim_urls is None     # no I/O at build
        await comp.start()
        try:
            urls = node.context.sim_urls
            assert set(urls) == {"mexc_spot", "gateio_futures"}
            async with aiohttp.ClientSession() as s:
                async with s.get(urls["gateio_futures"].rest + "/api/v4/futures/usdt/contracts") as r:
                    assert [c["name"] for c in await r.json()] == ["BTC_USDT"]
        finally:
            await comp.stop()

    asyncio.run(asyncio.wait_for(main(), 10))
