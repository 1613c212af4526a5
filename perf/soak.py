"""Soak benchmark: does the node's (and the simulator's) memory stay flat while it trades?

``python perf/soak.py [--minutes 10] [--rates demo,max]`` (``make soak``). For each rate:

* the exchange simulator runs in its OWN process (``python -m cexnode sim``) from the demo config
  with ``sim.update_interval_ms`` set by the rate (demo: the config's, 10 ms; max: 1 ms, the
  fastest the simulator's auto clock steps; the frames/s it really sustained are reported);
* the node runs ``configs/demo.yaml`` in live mode against it (``venues.*.ws_url``/``rest_url``
  point at the simulator, ``sim.enabled: false``), logs, audit file and trade database in a
  temporary directory, metrics on a free loopback port;
* every ``--sample-s`` seconds the RSS of both processes is read from ``/proc``; at every minute
  ``/metrics`` is scraped (frames, trades, the tick-to-decision histogram).

Reported per rate: RSS per minute (node, simulator), the slope of RSS after warm-up (least
squares over the samples from ``--warmup-min`` on, MB/hour), the growth from the warm-up minute
to the last one (%), frames/s and trades after warm-up, and tick-to-decision p50/p99 (μs,
interpolated within the Prometheus histogram's buckets, samples after warm-up only). The result
goes to ``perf/results/soak.json`` and the benchmarks table of docs/benchmarks.md (``perf/summary.py``).
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

from _procs import free_port, histogram_quantile, stop

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "perf" / "results"
RATES = {"demo": None, "max": 1.0}      # sim.update_interval_ms (None: the config's)
FLAT_PCT = 2.0                           # RSS at the end within this much of the warm-up minute's




def _rss_mb(pid: int) -> float | None:
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _scrape(port: int) -> dict:
    """Counters and the tick-to-decision histogram from the node's /metrics."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    frames = trades = 0.0
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, _, value = line.rpartition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        if name.startswith("cexnode_ws_frames_total") or name == "cexnode_ws_frames":
            frames += v
        elif name.startswith("cexnode_ws_frames{"):
            frames += v
        elif name.startswith("cexnode_trades_total{") or name.startswith("cexnode_trades{"):
            if 'status="rejected"' not in name:
                trades += v
        elif name.startswith("cexnode_tick_to_decision_microseconds_bucket"):
            m = re.search(r'le="([^"]+)"', name)
            if m:
                buckets[float(m.group(1))] = v
    return {"frames": frames, "trades": trades, "buckets": buckets}




def _slope_mb_per_h(samples: list[tuple[float, float]]) -> float | None:
    if len(samples) < 3:
        return None
    n = len(samples)
    mx = sum(t for t, _ in samples) / n
    my = sum(v for _, v in samples) / n
    sxx = sum((t - mx) ** 2 for t, _ in samples)
    if sxx == 0:
        return None
    sxy = sum((t - mx) * (v - my) for t, v in samples)
    return sxy / sxx * 3600.0


def _configs(base: dict, interval_ms: float | None, tmp: pathlib.Path) -> tuple[dict, pathlib.Path]:
    sim = json.loads(json.dumps(base))
    sim.setdefault("sim", {})["enabled"] = True
    if interval_ms is not None:
        sim["sim"]["update_interval_ms"] = interval_ms
    path = tmp / "sim.yaml"
    path.write_text(yaml.safe_dump(sim))
    return sim, path


def _node_config(sim_cfg: dict, urls: dict, tmp: pathlib.Path, metrics_port: int) -> pathlib.Path:
    node = json.loads(json.dumps(sim_cfg))
    node["sim"] = {"enabled": False}
    for venue, (ws, rest) in urls.items():
        if venue in node.get("venues", {}):
            node["venues"][venue]["ws_url"] = ws
            node["venues"][venue]["rest_url"] = rest
    node["metrics"] = {"enabled": True, "host": "127.0.0.1", "port": metrics_port}
    log = node.setdefault("log", {})
    log.setdefault("audit", {})["path"] = str(tmp / "audit.jsonl")
    log.setdefault("console", {})["color"] = "never"
    node.setdefault("node", {})["status_interval_s"] = 10
    node.setdefault("storage", {})["path"] = str(tmp / "trades.sqlite")
    path = tmp / "node.yaml"
    path.write_text(yaml.safe_dump(node))
    return path




def run_rate(rate: str, interval_ms: float | None, minutes: float, base: dict, sample_s: float,
             warmup_min: float, python: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="cexnode-soak-") as td:
        tmp = pathlib.Path(td)
        sim_cfg, sim_path = _configs(base, interval_ms, tmp)
        venues = [v for v in sim_cfg.get("venues", {})]
        sim = subprocess.Popen([python, "-m", "cexnode", "sim", "--config", str(sim_path)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=open(tmp / "sim.err", "w"), text=True)
        node = None
        try:
            urls: dict[str, tuple[str, str]] = {}
            deadline = time.monotonic() + 60
            while len(urls) < len(venues) and time.monotonic() < deadline:
                line = sim.stdout.readline()
                if not line:
                    raise RuntimeError("simulator ended: %s" % (tmp / "sim.err").read_text()[-2000:])
                m = re.match(r"sim (\S+)\s+ws (\S+)\s+rest (\S+)", line)
                if m:
                    urls[m.group(1)] = (m.group(2), m.group(3))
            port = free_port()
            node_path = _node_config(sim_cfg, urls, tmp, port)
            duration = minutes * 60.0
            node_log = open(tmp / "node.log", "w")
            node = subprocess.Popen([python, "-m", "cexnode", "--config", str(node_path), "--duration",
                                     str(duration + 30)], cwd=ROOT, env=env, stdout=node_log, stderr=subprocess.STDOUT)
            # t = 0 once the node serves metrics and has frames (started, books synced)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                s = _scrape(port)
                if s.get("frames"):
                    break
                if node.poll() is not None:
                    raise RuntimeError("node ended: %s" % (tmp / "node.log").read_text()[-3000:])
                time.sleep(0.5)
            t0 = time.monotonic()
            samples = {"node": [], "sim": []}          # (seconds, MB)
            scrapes = [(0.0, _scrape(port))]
            next_sample, next_scrape = t0, t0 + 60
            while True:
                now = time.monotonic()
                if now - t0 >= duration:
                    break
                if node.poll() is not None or sim.poll() is not None:
                    raise RuntimeError("a process ended early: node rc %s, sim rc %s\n%s" % (
                        node.poll(), sim.poll(), (tmp / "node.log").read_text()[-3000:]))
                if now >= next_sample:
                    for name, p in (("node", node), ("sim", sim)):
                        v = _rss_mb(p.pid)
                        if v is not None:
                            samples[name].append((now - t0, v))
                    next_sample += sample_s
                if now >= next_scrape:
                    scrapes.append((now - t0, _scrape(port)))
                    next_scrape += 60
                time.sleep(max(0.0, min(next_sample, next_scrape, t0 + duration) - time.monotonic()))
            for name, p in (("node", node), ("sim", sim)):
                v = _rss_mb(p.pid)
                if v is not None:
                    samples[name].append((time.monotonic() - t0, v))
            scrapes.append((time.monotonic() - t0, _scrape(port)))
            status = [ln for ln in (tmp / "node.log").read_text().splitlines() if "tick-to-decision" in ln]
        finally:
            if node is not None:
                stop(node)
            stop(sim)
    return _report(rate, interval_ms if interval_ms is not None else base.get("sim", {}).get("update_interval_ms"),
                   minutes, warmup_min, samples, scrapes, status[-1] if status else "")


def _per_minute(samples: list[tuple[float, float]], minutes: float) -> list[float]:
    """RSS at each whole minute (the sample nearest to it), minute 0 .. the end."""
    out = []
    for m in range(int(minutes) + 1):
        if not samples:
            break
        t = m * 60.0
        out.append(round(min(samples, key=lambda s: abs(s[0] - t))[1], 1))
    return out


def _report(rate: str, interval_ms, minutes: float, warmup_min: float, samples: dict, scrapes: list,
            status: str) -> dict:
    w = warmup_min * 60.0
    base_scrape = min(scrapes, key=lambda s: abs(s[0] - w))
    end_t, end = scrapes[-1]
    span = max(end_t - base_scrape[0], 1e-9)
    out = {"rate": rate, "update_interval_ms": interval_ms, "minutes": minutes, "warmup_min": warmup_min}
    if end and base_scrape[1]:
        b0, b1 = base_scrape[1], end
        out["frames_per_s"] = round((b1["frames"] - b0["frames"]) / span, 1)
        out["trades"] = int(b1["trades"])
        out["trades_per_min_after_warmup"] = round((b1["trades"] - b0["trades"]) / span * 60.0, 1)
        q50, q99 = histogram_quantile(b0["buckets"], b1["buckets"], 0.5), histogram_quantile(b0["buckets"], b1["buckets"], 0.99)
        out["tick_to_decision_us"] = {"p50": round(q50, 2) if q50 is not None else None,
                                      "p99": round(q99, 2) if q99 is not None else None}
    out["last_status_line"] = status[status.find("books"):] if "books" in status else status
    for name in ("node", "sim"):
        s = samples[name]
        after = [x for x in s if x[0] >= w]
        at_w = min(s, key=lambda x: abs(x[0] - w))[1] if s else None
        last = s[-1][1] if s else None
        slope = _slope_mb_per_h(after)
        out[name] = {"rss_mb_per_minute": _per_minute(s, minutes),
                     "slope_mb_per_hour": round(slope, 2) if slope is not None else None,
                     "rss_warmup_mb": round(at_w, 1) if at_w else None, "rss_end_mb": round(last, 1) if last else None,
                     "growth_pct": round((last - at_w) / at_w * 100.0, 2) if at_w and last else None}
        out[name]["flat"] = out[name]["growth_pct"] is not None and abs(out[name]["growth_pct"]) <= FLAT_PCT
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="soak length per rate (default 10)")
    ap.add_argument("--rates", default="demo,max", help="comma-separated: demo (the config's interval), max (1 ms)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "demo.yaml"))
    ap.add_argument("--sample-s", type=float, default=10.0, help="RSS sampling period")
    ap.add_argument("--warmup-min", type=float, default=2.0, help="minutes excluded from slope and growth")
    ap.add_argument("--out", default=str(RESULTS / "soak.json"))
    ap.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md's table")
    a = ap.parse_args(argv)
    base = yaml.safe_load(pathlib.Path(a.config).read_text())
    runs = []
    for rate in [r.strip() for r in a.rates.split(",") if r.strip()]:
        if rate not in RATES:
            ap.error("unknown rate %r (demo, max)" % rate)
        print("soak %s: %.1f min ..." % (rate, a.minutes), flush=True)
        r = run_rate(rate, RATES[rate], a.minutes, base, a.sample_s, a.warmup_min, sys.executable)
        print(json.dumps(r, indent=1), flush=True)
        runs.append(r)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    result = {"name": "soak", "kind": "soak", "config": os.path.relpath(a.config, ROOT), "minutes": a.minutes,
              "flat_pct": FLAT_PCT, "cpus": os.cpu_count(), "loadavg_1m_at_end": load,
              "date": time.strftime("%Y-%m-%d", time.gmtime()), "runs": runs}
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    if not a.no_doc and out.resolve().parent == RESULTS.resolve():
        sys.path.insert(0, str(ROOT / "perf"))
        import summary
        summary.write_doc()
    flat = all(r[n]["flat"] for r in runs for n in ("node", "sim"))
    print("soak: %s (RSS at the end within %.0f %% of minute %g for node and simulator)"
          % ("flat" if flat else "NOT flat", FLAT_PCT, a.warmup_min))
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
