"""config_load: read + parse + validate configs/prod.example.yaml (target: median < 10 ms)."""
from __future__ import annotations

import os
import pathlib

from _timing import single_calls_ns, summarize

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROD = ROOT / "configs" / "prod.example.yaml"
FAKE_ENV = {"MEXC_API_KEY": "bench-key", "MEXC_API_SECRET": "bench-secret",
            "GATE_API_KEY": "bench-key", "GATE_API_SECRET": "bench-secret"}


def config_load(quick: bool) -> dict:
    from cexnode.config import load_config

    for k, v in FAKE_ENV.items():
        os.environ.setdefault(k, v)
    samples = single_calls_ns(lambda: load_config(PROD), n=50 if quick else 500, warmup=5)
    out = summarize(samples)
    out.update(name="config_load", target_ns=10_000_000, file=str(PROD.relative_to(ROOT)))
    return out


BENCHMARKS = [config_load]
