"""Start-up of a universe of 1,000 books to all in sync (issue 23: at most 60 s against the
simulator's real rate limits).

``startup_1000_books``: the simulator in its own process (``python -m cexnode sim``) serving a
generated market (``sim.universe``: 350 pairs common to both spot venues, 300 of them with a
perpetual) with the venues' published REST limits enforced (``sim.enforce_rate_limits``: 429 beyond
them); the node in its own process with ``arbitrage.universe`` on and no symbol configured: it reads
the venues' lists, selects every route (350 spot-spot, 600 spot-perpetual, reading 1,000 books) and
starts. Measured from the node's process start to its ``/readyz`` answering ready (every book in
sync and fresh), polled every 0.1 s; the median of the rounds. Also reported: when the node said it
was running (its start returns once each venue's books synced or half its start timeout passed),
the node's whole RSS at ready over its books (an upper bound of the memory per live book: the
interpreter, the simulator's 50-level books and every other part included; the books alone:
``perf/bench_memory.py``), and the RSS a book adds to the running node: a 100-book universe's
RSS against the 1,000-book one's, over the 900 books between them,
the snapshots the REST limits allowed per second, and the 429 answers (none expected: the node keeps
to the limits itself).
"""
from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

from _procs import free_port, stop
from bench_insitu import readyz, start_sim

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET_S = 60.0
COMMON, PERPS = 350, 300          # books: 2 x 350 spot + 300 perpetuals


def _sim_config(seed: int, common: int = COMMON, perps: int = PERPS) -> dict:
    return {"node": {"name": "startup-sim"}, "log": {"level": "warning", "console": {"color": "never"}},
            "sim": {"enabled": True, "seed": seed, "enforce_rate_limits": True, "dislocation_probability": 0.0,
                    "universe": {"enabled": True, "spot_pairs": common, "common_pairs": common,
                                 "perpetuals": perps}},
            "venues": {"mexc_spot": {}, "gateio_spot": {}, "gateio_futures": {}},
            "trading": {"mode": "paper"}}


def _node_config(urls: dict, tmp: pathlib.Path, port: int) -> dict:
    venues = {v: {"ws_url": ws, "rest_url": rest, "start_timeout_s": 300, "book_audit_interval_s": 0}
              for v, (ws, rest) in urls.items()}
    return {"node": {"name": "startup", "status_interval_s": 0, "start_timeout_s": 300},
            "log": {"level": "info", "loggers": {"picows": "warning"}, "console": {"color": "never"},
                    "audit": {"path": str(tmp / "audit.jsonl")}},
            "metrics": {"enabled": True, "host": "127.0.0.1", "port": port},
            "venues": venues,
            "arbitrage": {"universe": {"enabled": True, "refresh_interval_s": 0}},
            "trading": {"mode": "paper", "recover": False},
            "storage": {"enabled": False}}


def _rss_bytes(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _rest_429(port: int) -> float:
    """REST answers 429 (rate limited) or 418 the node got, from its /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    n = 0.0
    for line in text.splitlines():
        if line.startswith("cexnode_rest_rate_limited_total"):
            n += float(line.rpartition(" ")[2])
    return n


def one_round(seed: int, timeout_s: float = 240.0, common: int = COMMON, perps: int = PERPS) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        sim, urls, _ = start_sim(_sim_config(seed, common, perps), tmp, sys.executable)
        node = None
        try:
            port = free_port()
            path = tmp / "node.yaml"
            path.write_text(yaml.safe_dump(_node_config(urls, tmp, port)))
            log = open(tmp / "node.log", "w")
            t0 = time.monotonic()
            node = subprocess.Popen([sys.executable, "-m", "cexnode", "--config", str(path)], cwd=ROOT,
                                    env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log, stderr=subprocess.STDOUT)
            ready_s = None
            books = 0
            rss = 0
            while time.monotonic() - t0 < timeout_s and node.poll() is None:
                ok, details = readyz(port)
                if ok:
                    ready_s = time.monotonic() - t0
                    rss = _rss_bytes(node.pid)
                    books = int((details.get("books") or {}).get("books", 0) or 0)
                    break
                time.sleep(0.1)
            errors_429 = _rest_429(port) if ready_s is not None else None
        finally:
            stop(node)
            stop(sim)
        text = (tmp / "node.log").read_text()
        m = re.search(r"running \(\d+ components\) in (\d+) ms", text)
        u = re.search(r"universe read routes=(\d+) frozen=\d+ instruments=(\d+)", text)
        if ready_s is None:
            raise RuntimeError("the node was not ready within %.0f s: %s" % (timeout_s, text[-3000:]))
        return {"ready_s": ready_s, "running_s": int(m.group(1)) / 1000 if m else None,
                "routes": int(u.group(1)) if u else None, "books": int(u.group(2)) if u else books,
                "rest_429": errors_429, "node_rss_bytes": rss,
                "node_rss_bytes_per_book": rss / max(1, int(u.group(2)) if u else books)}


def startup_1000_books(quick: bool) -> dict:
    rounds = [one_round(31 + i) for i in range(1 if quick else 3)]
    # the node's RSS over books, marginal: a 100-book universe against the 1,000-book one
    small = one_round(41, common=35, perps=30)
    big = sorted(rounds, key=lambda r: r["node_rss_bytes"])[len(rounds) // 2]
    marginal = (big["node_rss_bytes"] - small["node_rss_bytes"]) / (big["books"] - small["books"])
    ready = sorted(r["ready_s"] for r in rounds)
    med = ready[len(ready) // 2]
    return {"name": "startup_1000_books", "median_ns": int(med * 1e9), "p99_ns": int(ready[-1] * 1e9),
            "target_ns": int(TARGET_S * 1e9), "unit": "node start to all books in sync",
            "ready_s_rounds": ready, "rounds": rounds, "books": rounds[0]["books"], "routes": rounds[0]["routes"],
            "node_rss_bytes_per_book": sorted(r["node_rss_bytes_per_book"] for r in rounds)[len(rounds) // 2],
            "node_rss_marginal_bytes_per_book": marginal, "small_round": small,
            "memory_target_bytes_per_book": 64 * 1024}


BENCHMARKS = [startup_1000_books]
