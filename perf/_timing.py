"""Timing helpers shared by the benchmarks: medians and p99 over many timed batches."""
from __future__ import annotations

import gc
import statistics
import time
from typing import Callable


def per_call_ns(fn: Callable[[], object], inner: int = 1000, repeats: int = 200, warmup: int = 20) -> list[float]:
    """Time ``fn`` in batches of ``inner`` calls; return one ns-per-call sample per batch.

    Use for sub-microsecond operations where a single call is below timer resolution.
    """
    for _ in range(warmup):
        for _ in range(inner):
            fn()
    samples = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            for _ in range(inner):
                fn()
            samples.append((time.perf_counter_ns() - t0) / inner)
    finally:
        if gc_was:
            gc.enable()
    return samples


def single_calls_ns(fn: Callable[[], object], n: int = 10000, warmup: int = 200) -> list[float]:
    """Time each of ``n`` calls individually (for p99 of operations ≳ 1 μs)."""
    for _ in range(warmup):
        fn()
    out = []
    pc = time.perf_counter_ns
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(n):
            t0 = pc()
            fn()
            out.append(pc() - t0)
    finally:
        if gc_was:
            gc.enable()
    return out


def summarize(samples: list[float]) -> dict:
    s = sorted(samples)
    return {
        "median_ns": statistics.median(s),
        "p99_ns": s[min(len(s) - 1, int(len(s) * 0.99))],
        "samples": len(s),
    }
