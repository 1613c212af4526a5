"""Log ring benchmarks (peers measured side by side in the same run).

* log_call          — ``log.info("order sent", sym="BTC/USDT", px=1.5)`` from Python (record into the ring);
                      peer: stdlib ``logging`` with a FileHandler, same message and fields.
                      Targets: median <= 150 ns and >= 30x faster than the peer.
* log_call_cython   — ``log_event(level, logger_id, msg, i0, i1, d0)`` from a Cython loop (logring helper).
                      Target: median <= 30 ns.
* log_throughput    — sustained enqueue -> flusher task -> JSON Lines file (page cache), end to end,
                      including the final drain. Target: >= 1,500,000 records/s (<= 667 ns per record).
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import statistics
import tempfile
import time
import types

from _timing import summarize


def _log_cfg(path: str, ring: int = 1 << 18, batch: int = 4096, interval_ms: int = 1):
    ns = types.SimpleNamespace
    return ns(level="info", ring_capacity=ring, flush_interval_ms=interval_ms, batch_size=batch, loggers={},
              redact_keys=[], console=ns(enabled=False, level="info", color="never"),
              file=ns(enabled=True, path=path, level="debug", max_bytes=1 << 40, rotate_daily=False),
              audit=ns(path=path + ".audit", fsync="never"))


def _batched(call_batch, repeats: int, inner: int, after=None) -> list[float]:
    out = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats + 5):
            t0 = time.perf_counter_ns()
            call_batch(inner)
            dt = time.perf_counter_ns() - t0
            if r >= 5:                      # warm-up batches
                out.append(dt / inner)
            if after is not None:
                after()
    finally:
        if gc_was:
            gc.enable()
    return out


def log_call(quick: bool) -> dict:
    from cexnode._core import logring as lr
    from cexnode.log import get_logger

    repeats, inner = (50, 2000) if quick else (400, 2000)
    ring = lr.LogRing(4096)
    old = lr.activate_ring(ring)
    lr.set_levels("info", {})
    log = get_logger("bench.exec", ["bench", "execution"])
    info = log.info
    try:
        def ours(n):
            for _ in range(n):
                info("order sent", sym="BTC/USDT", px=1.5)

        def empty_loop(n):
            for _ in range(n):
                pass

        ring_samples = _batched(ours, repeats, inner, after=lambda: ring.drain(0))
        loop_samples = _batched(empty_loop, repeats, inner)
        debug = log.debug                               # filtered by level: the cost of a disabled call

        def disabled(n):
            for _ in range(n):
                debug("order sent", sym="BTC/USDT", px=1.5)

        disabled_samples = _batched(disabled, repeats, inner)
    finally:
        ring.drain(0)
        lr.activate_ring(old)

    # peer: stdlib logging, FileHandler, same message and fields
    tmp = tempfile.mkdtemp(prefix="cexnode-bench-")
    path = os.path.join(tmp, "stdlib.log")
    std = logging.getLogger("bench.stdlib")
    std.propagate = False
    std.setLevel(logging.INFO)
    h = logging.FileHandler(path)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    std.addHandler(h)
    try:
        def peer(n):
            for _ in range(n):
                std.info("order sent sym=%s px=%s", "BTC/USDT", 1.5)

        peer_samples = _batched(peer, max(20, repeats // 8), inner // 4)
    finally:
        std.removeHandler(h)
        h.close()
        os.unlink(path)
        os.rmdir(tmp)

    out = summarize(ring_samples)
    peer_median = statistics.median(peer_samples)
    out.update(name="log_call", target_ns=150,
               stdlib_filehandler_median_ns=peer_median,
               speedup_vs_stdlib=round(peer_median / out["median_ns"], 1), speedup_target=30,
               speedup_met=bool(peer_median / out["median_ns"] >= 30),
               empty_loop_median_ns=statistics.median(loop_samples),
               disabled_debug_median_ns=statistics.median(disabled_samples),
               call='log.info("order sent", sym="BTC/USDT", px=1.5)')
    return out


def log_call_cython(quick: bool) -> dict:
    from cexnode._core import logring as lr
    from cexnode.log import get_logger

    lr.set_levels("info", {})
    lg = get_logger("bench.cython", ["bench"])
    ev = lr.define_event("book update", "symbol_id", "seq", "age_s")
    lr.bench_log_event(lg.id, ev, 20, 2048)      # warm-up
    samples = lr.bench_log_event(lg.id, ev, 50 if quick else 500, 2048)
    out = summarize(samples)
    out.update(name="log_call_cython", target_ns=30, call="log_event(INFO, id, msg, i0, i1, d0) from a Cython loop")
    return out


def log_throughput(quick: bool) -> dict:
    from cexnode.log import get_logger, setup

    n = 300_000 if quick else 2_000_000
    runs = 3 if quick else 5
    chunk = 2048
    per_record, rates, drops, sizes = [], [], [], []
    for _ in range(runs):
        tmp = tempfile.mkdtemp(prefix="cexnode-bench-")
        path = os.path.join(tmp, "node.jsonl")
        ls = setup(_log_cfg(path), bridge_stdlib=False)

        async def main():
            await ls.start()
            log = get_logger("bench.tp", ["bench"])
            info = log.info
            t0 = time.perf_counter_ns()
            i = 0
            while i < n:
                for j in range(i, i + chunk):
                    info("order sent", sym="BTC/USDT", px=1.5, i=j)
                i += chunk
                await asyncio.sleep(0)          # the producer yields like a real loop; the flusher drains
            await ls.stop()                      # drains everything still in the ring
            return time.perf_counter_ns() - t0

        gc.disable()
        try:
            dt = asyncio.run(main())
        finally:
            gc.enable()
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            lines = sum(1 for _ in f)
        written = lines
        per_record.append(dt / written)
        rates.append(written * 1e9 / dt)
        drops.append(ls.ring.dropped)
        sizes.append(size)
        for p in os.listdir(tmp):
            os.unlink(os.path.join(tmp, p))
        os.rmdir(tmp)
    out = summarize(per_record)
    out.update(name="log_throughput", target_ns=round(1e9 / 1_500_000, 1),
               records_per_s_median=round(statistics.median(rates)), records_per_s_target=1_500_000,
               records_per_run=n, dropped=max(drops), bytes_per_record=round(statistics.median(sizes) / n, 1),
               path="enqueue -> LogRing -> flusher task -> JSONL file (os.write, page cache)")
    return out


BENCHMARKS = [log_call, log_call_cython, log_throughput]
