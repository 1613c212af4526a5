"""Where ``tick_to_order`` goes: the benchmark's run (``bench_execution``: the node in live mode, the
simulator in another process) with a ``time.monotonic_ns()`` stamp at each stage of the BTC trade's
order path, printed as the median time of each stage after the simulator wrote the frame, and the
median step from the stage before.

    .venv/bin/python perf/stages_tick_to_order.py [--samples 200] [--busy-poll] [--warm-ms MS] [--fsync always]

A diagnostic, not a benchmark (``perf/run.py`` does not run it): the stamps are wrappers around
the stages' functions, which cost a little themselves. CLOCK_MONOTONIC is system-wide, so the
node's stamps compare with the simulator's t0 and receipt times. Stages:

    submit       the opportunity handed to Executor.submit
    begin        Executor._begin (trade context, risk check_trade, balance freshness) ... begin_x
    audit        the pre-send record handed to the audit log; write / write_x: its write(2)
    place_mexc   MEXC's place started; lane / lane_x: OrderConnection.send (build, write)
    place_gate   Gate's place started; frame / frame_x: aiohttp writes the order frame
    submit_x     Executor.submit returned (both orders written)
    rx_mexc, rx_gate   the simulator has the order's bytes (as in the benchmark)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import bench_execution as B  # noqa: E402

_mono = time.monotonic_ns
_stamps: dict = {}
_on = [False]


def _st(key: str) -> None:
    if _on[0] and key not in _stamps:
        _stamps[key] = _mono()


def _wrapped(f, tag: str):
    def w(*a, **k):
        _st(tag)
        r = f(*a, **k)
        _st(tag + "_x")
        return r
    return w


def _instrument() -> list:
    """Stamp the module-level writers (audit write(2), MEXC's order connection, aiohttp frames)."""
    from aiohttp._websocket import writer as ws_writer

    import cexnode.log.backends as backends
    import cexnode.net.http1 as http1

    rows: list = []
    backends._write_all = _wrapped(backends._write_all, "write")
    http1.OrderConnection.send = _wrapped(http1.OrderConnection.send, "lane")
    ws_writer.WebSocketWriter._write_websocket_frame = _wrapped(ws_writer.WebSocketWriter._write_websocket_frame,
                                                                "frame")
    orig_samples = B._samples

    async def samples(node, simp, n):
        await B._wait(lambda: node.context.engine is not None and node.context.engine.executor is not None
                      and all(a.gateway is not None and a.gateway.started
                              for a in node.context.engine.adapters.values()), 30, "the node to start")
        eng = node.context.engine
        ex = eng.executor
        submit, begin, audit = ex.submit, ex._begin, ex._audit

        def stamped_submit(opp):
            if opp.route != "btc":
                return submit(opp)
            _on[0] = True
            _st("submit")
            try:
                return submit(opp)
            finally:
                _st("submit_x")
                _on[0] = False

        def stamped_audit(event, data, sync=True):
            if event != "trade_start":
                return audit(event, data, sync)
            _st("audit")
            return audit(event, data, sync)

        ex.submit, ex._begin, ex._audit = stamped_submit, _wrapped(begin, "begin"), stamped_audit
        for venue, ad in eng.adapters.items():
            place = ad.gateway.place

            def stamped_place(req, _place=place, _tag="place_" + venue.split("_")[0]):
                _st(_tag)
                return _place(req)

            ad.gateway.place = stamped_place
        ask = simp.ask

        async def stamped_ask(obj=None, timeout=10.0):
            dislocate = bool(obj) and obj.get("op") == "dislocate"
            if dislocate:
                _stamps.clear()
            r = await ask(obj, timeout)
            if dislocate:
                rows.append((r, dict(_stamps)))
            return r

        simp.ask = stamped_ask
        return await orig_samples(node, simp, n)

    B._samples = samples
    return rows


def _table(rows: list) -> str:
    cols: dict = {}
    for r, stamps in rows:
        t0 = r["t0"]
        sample = {k: (v - t0) / 1000 for k, v in stamps.items()}
        for v, t in r["received"]:
            sample["rx_" + v.split("_")[0]] = (t - t0) / 1000
        sample["both"] = (max(t for _, t in r["received"]) - t0) / 1000
        for k, v in sample.items():
            cols.setdefault(k, {})[id(r)] = v
    order = sorted(cols, key=lambda k: statistics.median(cols[k].values()))
    out = ["%-12s %9s %9s" % ("stage", "median", "step"), "-" * 32]
    prev = None
    for k in order:
        step = ""
        if prev is not None:
            common = cols[k].keys() & cols[prev].keys()
            if common:
                step = "%+9.1f" % statistics.median(cols[k][i] - cols[prev][i] for i in common)
        out.append("%-12s %9.1f %9s" % (k, statistics.median(cols[k].values()), step))
        prev = k
    return "\n".join(out) + "\n(us after the simulator wrote the frame; step: median of per-sample differences)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--busy-poll", action="store_true", help="node.busy_poll: true")
    ap.add_argument("--warm-ms", type=float, default=None,
                    help="trading.warm_interval_ms (0: off; default 2, or 0.25 with --busy-poll)")
    ap.add_argument("--fsync", default="always", choices=("always", "batch", "never"), help="log.audit.fsync")
    a = ap.parse_args(argv)
    if a.warm_ms is None:
        a.warm_ms = 0.25 if a.busy_poll else 2
    import uvloop

    rows = _instrument()
    uvloop.run(B._run_node(a.fsync, a.samples, a.busy_poll, a.warm_ms))
    print("tick_to_order stages: %d samples, busy_poll %s, warm_interval_ms %g, fsync %s" % (len(rows), a.busy_poll, a.warm_ms,
                                                                                     a.fsync))
    print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
