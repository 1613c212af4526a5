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
"""
from __future__ import annotations

import asyncio
import pathlib
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


BENCHMARKS = [sim_tick, sim_loopback_frames]
