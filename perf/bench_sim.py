"""Exchange simulator capacity (it must outpace what it feeds).

* ``sim_tick``: one generator step of the demo market (configs/demo.yaml: 5 books on 3 venues) with
  every public channel subscribed once, frames encoded (Gate JSON via orjson, MEXC protobuf via the
  official runtime) and handed to a no-op connection. Target: under 10 % of the default 10 ms
  update interval (1 ms).
* ``sim_loopback_frames``: pre-rendered Gate spot diffs pushed by ``SimVenue.send_raw_batch`` over a real
  127.0.0.1 WebSocket to a picows client in the same process. The median is the simulator's CPU
  time per frame written (target: under 4 μs, i.e. faster than the node's ``feed_throughput``
  target of 250,000 frames/s, so the simulator is not that benchmark's bottleneck); the end-to-end
  time per frame with the in-process receiver is reported next to it.
* ``sim_market``: the simulator at market scale in its own process (``python -m cexnode sim`` with a
  generated ``sim.universe`` of 1,000 instruments per venue, every book updating every 50 ms: an
  offered 60,000 frames/s), a client in another process subscribed to every book of every venue
  (picows, within each venue's subscription limits) counting frames for the measured window. Reports
  the frames/s received and the simulator process's CPU (utime + stime) per frame. Target: 50,000
  frames/s; the median is the simulator's CPU per frame (target 20 us: 50,000 frames/s on one core).
  ``python perf/bench_sim.py --market [--instruments N] [--step-ms MS] [--seconds S]`` runs it alone.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from _timing import single_calls_ns, summarize

ROOT = pathlib.Path(__file__).resolve().parent.parent


class _NullConn:
    """Stands in for a connection: counts frames, sends nothing."""

    subscriptions = {"x"}

    def __init__(self):
        self.frames = 0

    def send_frame(self, data, binary):
        self.frames += 1

    def queue_frame(self, data, binary, batch):      # a clock tick's pushes: counted, not held
        self.frames += 1


def sim_tick(quick: bool) -> dict:
    from cexnode.config import load_config
    from cexnode.sim import ExchangeSimulator

    cfg = load_config(str(ROOT / "configs" / "demo.yaml"))
    sim = ExchangeSimulator(cfg, clock="manual", trading=False)
    conn = _NullConn()
    channels = {"mexc_spot": [("book", "10ms"), ("limit", 5), ("ticker", "10ms"), ("trades", "10ms")],
                "gateio_spot": [("book", "100"), ("obu", "400"), ("ticker", None), ("trades", None)],
                "gateio_futures": [("book", ("100", True)), ("obu", ("400", True)), ("ticker", True), ("trades", True)]}
    books = 0
    for name, v in sim.venues.items():
        for vsym in v.books:
            books += 1
            for kind, variant in channels[name]:
                v.subscribe(conn, kind, vsym, variant)
    samples = single_calls_ns(sim.tick, n=500 if quick else 5000, warmup=100)
    out = summarize(samples)
    out.update(name="sim_tick", target_ns=1_000_000, books=books, frames_per_tick=round(conn.frames / (len(samples) + 100), 1))
    return out


def sim_loopback_frames(quick: bool) -> dict:
    import uvloop
    from picows import WSListener, WSMsgType, ws_connect

    from cexnode.config import SimConfig
    from cexnode.sim import ExchangeSimulator

    n_frames = 20_000 if quick else 100_000
    runs = 3 if quick else 7

    class Counter(WSListener):
        def __init__(self):
            self.n = 0
            self.done = None
            self.want = 0

        def on_ws_frame(self, transport, frame):
            if frame.msg_type == WSMsgType.TEXT:
                self.n += 1
                if self.n == self.want and self.done is not None:
                    self.done.set_result(None)

    async def main():
        sim = ExchangeSimulator(SimConfig(seed=1), venues={"gateio_spot": ["BTC/USDT"]}, clock="manual", trading=False)
        async with sim:
            v = sim.venue("gateio_spot")
            base = v.render_frames("BTC_USDT", 2000)
            frames = (base * (n_frames // len(base) + 1))[:n_frames]
            tr, listener = await ws_connect(Counter, sim.urls["gateio_spot"].ws)
            tr.send(WSMsgType.TEXT, b'{"time":1,"channel":"spot.order_book_update","event":"subscribe",'
                                    b'"payload":["BTC_USDT","100ms"]}')
            await asyncio.sleep(0.2)
            send_ns, e2e_ns = [], []
            loop = asyncio.get_running_loop()
            pc = time.perf_counter_ns
            for _ in range(runs):
                listener.n, listener.want = 0, len(frames)
                listener.done = loop.create_future()
                sending = 0
                t0 = pc()
                for i in range(0, len(frames), 512):
                    t1 = pc()
                    v.send_raw_batch(frames[i:i + 512])
                    sending += pc() - t1
                    await asyncio.sleep(0)
                await asyncio.wait_for(listener.done, 30)
                e2e_ns.append((pc() - t0) / len(frames))
                send_ns.append(sending / len(frames))
            tr.disconnect()
            return send_ns, e2e_ns, sum(len(f) for f, _ in base) / len(base)

    send_ns, e2e_ns, avg_bytes = uvloop.run(main())
    out = summarize(send_ns)
    e2e = summarize(e2e_ns)["median_ns"]
    out.update(name="sim_loopback_frames", target_ns=4000, frames=n_frames, avg_frame_bytes=round(avg_bytes),
               sender_frames_per_s=round(1e9 / out["median_ns"]), end_to_end_ns_per_frame=round(e2e),
               end_to_end_frames_per_s=round(1e9 / e2e),
               note="median = simulator CPU per frame written; end_to_end includes a picows receiver in the same process")
    return out


# ------------------------------------------------------------------ sim_market

_MARKET_VENUES = ("mexc_spot", "gateio_spot", "gateio_futures")


def _market_config(instruments: int, step_ms: float, replay_steps: int) -> str:
    venues = "".join("  %s: {enabled: true}\n" % v for v in _MARKET_VENUES)
    steps = ", ".join("%s: %s" % (v, step_ms) for v in _MARKET_VENUES)
    return ("venues:\n" + venues +
            "sim:\n  seed: 7\n  update_interval_ms: 10\n  book_levels: 50\n"
            "  universe:\n    enabled: true\n    spot_pairs: %d\n    common_pairs: %d\n    perpetuals: %d\n"
            "    step_ms: {%s}\n    replay_steps: %d\n" % (instruments, instruments, instruments, steps, replay_steps))


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds (/proc/<pid>/stat fields 14 and 15)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _subscriptions(venue: str, symbols: list[str]) -> list[list[bytes]]:
    """Subscription messages per connection, within the venue's limits."""
    if venue == "mexc_spot":       # 30 topics per connection, one request each
        topics = ["spot@public.aggre.depth.v3.api.pb@10ms@" + s for s in symbols]
        return [[json.dumps({"method": "SUBSCRIPTION", "params": topics[i:i + 30], "id": 1}).encode()]
                for i in range(0, len(topics), 30)]
    if venue == "gateio_spot":     # one pair per request
        msgs = [json.dumps({"time": 1, "channel": "spot.order_book_update", "event": "subscribe",
                            "payload": [s, "100ms"]}).encode() for s in symbols]
    else:
        msgs = [json.dumps({"time": 1, "channel": "futures.order_book_update", "event": "subscribe",
                            "payload": [s, "100ms", "100"]}).encode() for s in symbols]
    return [msgs[i:i + 100] for i in range(0, len(msgs), 100)]


def market_client(urls: dict, warmup: float, seconds: float) -> dict:
    """Subscribe to every book of every venue, count the frames of the measured window."""
    import aiohttp
    import uvloop
    from picows import WSListener, WSMsgType, ws_connect

    from cexnode.adapters.gateio_futures import universe as fut_u
    from cexnode.adapters.gateio_spot import universe as spot_u
    from cexnode.adapters.mexc_spot import universe as mexc_u

    sources = {"mexc_spot": mexc_u.SOURCE, "gateio_spot": spot_u.SOURCE, "gateio_futures": fut_u.SOURCE}
    counts = {"frames": 0, "bytes": 0}

    class Counter(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type in (WSMsgType.BINARY, WSMsgType.TEXT):
                counts["frames"] += 1
                counts["bytes"] += frame.payload_size

    async def main():
        conns = []
        books = 0
        async with aiohttp.ClientSession() as session:
            for venue, (ws, rest) in urls.items():
                src = sources[venue]
                async with session.get(rest + src.instruments_path) as r:
                    listings = src.parse_listings(json.loads(await r.read()))
                symbols = [li.venue_symbol for li in listings if li.tradable]
                books += len(symbols)
                for msgs in _subscriptions(venue, symbols):
                    tr, _ = await ws_connect(Counter, ws)
                    for m in msgs:
                        tr.send(WSMsgType.TEXT, m)
                    conns.append(tr)
        await asyncio.sleep(warmup)
        f0, b0, t0 = counts["frames"], counts["bytes"], time.monotonic()
        await asyncio.sleep(seconds)
        frames, nbytes, dt = counts["frames"] - f0, counts["bytes"] - b0, time.monotonic() - t0
        for tr in conns:
            tr.disconnect()
        return {"books": books, "connections": len(conns), "frames": frames, "bytes": nbytes, "window_s": dt}

    return uvloop.run(main())


def sim_market(quick: bool, instruments: int = 1000, step_ms: float = 50.0, seconds: float = 0.0,
               replay_steps: int = 32, warmup: float = 0.0) -> dict:
    seconds = seconds or (10.0 if quick else 30.0)
    # the loops record their first replay_steps steps and render each position once: after that
    # the market runs on replays (cexnode/sim/replay.py). Recording and rendering cost what live
    # generation does (~100 us a diff), so the warm-up gives them about 1.5 ms of CPU per book and
    # loop step, at the simulator's share of a busy machine
    warmup = warmup or (3 * instruments * 3 * replay_steps * 1.5e-4 + 5.0)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = pathlib.Path(tmp) / "sim.yaml"
        cfg.write_text(_market_config(instruments, step_ms, replay_steps))
        sim = subprocess.Popen([sys.executable, "-m", "cexnode", "sim", "--config", str(cfg)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            urls = {}
            while len(urls) < len(_MARKET_VENUES):
                line = sim.stdout.readline()
                if not line:
                    raise RuntimeError("the simulator exited before printing its URLs")
                parts = line.split()
                if len(parts) >= 6 and parts[0] == "sim" and parts[2] == "ws":
                    urls[parts[1]] = (parts[3], parts[5])
            client = subprocess.Popen([sys.executable, __file__, "--client", json.dumps(urls), str(warmup), str(seconds)],
                                      cwd=ROOT, stdout=subprocess.PIPE, text=True)
            time.sleep(warmup)
            c0, t0 = _cpu_s(sim.pid), time.monotonic()
            time.sleep(seconds)
            c1, t1 = _cpu_s(sim.pid), time.monotonic()
            out, _ = client.communicate(timeout=120)
        finally:
            sim.terminate()
            sim.wait(30)
    got = json.loads(out.strip().splitlines()[-1])
    frames = got["frames"]
    cpu_ns_per_frame = (c1 - c0) * 1e9 / frames if frames else None
    return {"name": "sim_market", "median_ns": round(cpu_ns_per_frame) if cpu_ns_per_frame else None, "p99_ns": None,
            "target_ns": 20_000, "instruments_per_venue": instruments, "venues": len(_MARKET_VENUES),
            "books": got["books"], "connections": got["connections"], "step_ms": step_ms,
            "replay_steps": replay_steps, "offered_frames_per_s": round(got["books"] * 1000.0 / step_ms),
            "frames_per_s": round(frames / got["window_s"]), "target_frames_per_s": 50_000,
            "sim_cpu_fraction": round((c1 - c0) / (t1 - t0), 3), "avg_frame_bytes": round(got["bytes"] / frames) if frames else None,
            "window_s": round(got["window_s"], 1),
            "note": "median = simulator process CPU (utime+stime) per frame received; the client runs in another process"}


BENCHMARKS = [sim_tick, sim_loopback_frames, sim_market]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", nargs=3, metavar=("URLS", "WARMUP", "SECONDS"))
    ap.add_argument("--market", action="store_true")
    ap.add_argument("--instruments", type=int, default=1000)
    ap.add_argument("--step-ms", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--replay-steps", type=int, default=32)
    ap.add_argument("--warmup", type=float, default=0.0)
    a = ap.parse_args()
    if a.client:
        print(json.dumps(market_client(json.loads(a.client[0]), float(a.client[1]), float(a.client[2]))))
    elif a.market:
        print(json.dumps(sim_market(False, a.instruments, a.step_ms, a.seconds, a.replay_steps, a.warmup), indent=2))
