"""What the benchmarks that run the simulator and the node in processes of their own share: a free
loopback port, stopping a process the way an operator does (SIGINT, then SIGKILL), and quantiles
of the node's cumulative latency histograms between two scrapes of /metrics."""
from __future__ import annotations

import signal
import socket
import subprocess

__all__ = ["free_port", "stop", "histogram_quantile"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(p: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """SIGINT (the node's clean stop), then SIGKILL after ``timeout`` seconds."""
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def histogram_quantile(b0: dict, b1: dict, q: float) -> float | None:
    """q-quantile of the samples observed between two scrapes of a cumulative histogram
    (``{upper bound: count}``), linearly interpolated inside its bucket."""
    bounds = sorted(b1)
    cum = [b1[b] - b0.get(b, 0.0) for b in bounds]
    if not cum or cum[-1] <= 0:
        return None
    target = q * cum[-1]
    prev_bound, prev_cum = 0.0, 0.0
    for bound, c in zip(bounds, cum):
        if c >= target:
            if bound == float("inf"):
                return prev_bound
            frac = (target - prev_cum) / (c - prev_cum) if c > prev_cum else 1.0
            return prev_bound + frac * (bound - prev_bound)
        prev_bound, prev_cum = bound, c
    return prev_bound
