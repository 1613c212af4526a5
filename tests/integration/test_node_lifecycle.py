"""The node process end to end: duration, signals, SIGHUP reload, CPU pinning warnings."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

BASE = """\
node:
  name: lifecycle-test
  cpu_affinity: {cpus}
  gc: {{warmup_s: 0.1}}
metrics: {{enabled: false}}
log: {{audit: {{path: "{audit}"}}}}   # under the test's tmp_path, not the checkout's logs/
sim: {{enabled: true, update_interval_ms: 20, mid_prices: {{BTC/USDT: 65000}}}}   # loopback venues only
venues:
  gateio_spot:
    symbols: [BTC/USDT]
  mexc_spot:
    symbols: [BTC/USDT]
arbitrage:
  min_profit: {min_profit}
  routes:
    - symbol: BTC/USDT
      venues: [mexc_spot, gateio_spot]
"""


def _write(path, cpus="null", min_profit="0.5"):
    path.write_text(BASE.format(cpus=cpus, min_profit=min_profit, audit=path.parent / "audit.jsonl"))


def _start(cfg, *extra):
    return subprocess.Popen([sys.executable, "-m", "cexnode", "--config", str(cfg), *extra],
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc, needle, timeout=15.0):
    """Read stderr lines until one contains needle; return everything read so far."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError("%r not seen; stderr so far:\n%s" % (needle, "".join(seen)))


def test_duration_exits_zero(tmp_path):
    cfg = tmp_path / "c.yaml"
    _write(cfg)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "cexnode", "--config", str(cfg), "--duration", "0.5"],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "duration of 0.5 s reached" in r.stderr
    assert "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 20


def test_sigterm_stops_cleanly_and_sighup_reloads(tmp_path):
    cfg = tmp_path / "c.yaml"
    _write(cfg)
    proc = _start(cfg)
    try:
        _wait_for(proc, "running")
        # hot change (reloadable) + cold change (needs restart)
        cfg.write_text(BASE.format(cpus="null", min_profit="2.5", audit=tmp_path / "audit.jsonl")
                       .replace("name: lifecycle-test", "name: renamed"))
        proc.send_signal(signal.SIGHUP)
        out = _wait_for(proc, "config reloaded")
        assert "arbitrage.min_profit" in out
        assert "node.name changed but needs a restart" in out
        # a bad reload is rejected and the node keeps running
        cfg.write_text("venues: [oops\n")
        proc.send_signal(signal.SIGHUP)
        out = _wait_for(proc, "reload rejected")
        assert "YAML syntax error" in out
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        rest = proc.stderr.read()
        assert rc == 0, rest
        assert "SIGTERM received" in rest
        assert "Traceback" not in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_cpu_affinity_warns_not_crashes(tmp_path):
    cfg = tmp_path / "c.yaml"
    _write(cfg, cpus="[0, 4095]")
    r = subprocess.run([sys.executable, "-m", "cexnode", "--config", str(cfg), "--duration", "0.3"],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "4095" in r.stderr and "not permitted" in r.stderr
    assert "pinned to CPU(s) [0]" in r.stderr


SLOW_STOP = textwrap.dedent("""
    import asyncio, sys
    from cexnode.config import load_config
    from cexnode import node as N

    class Slow(N.Component):
        name = "slow"
        async def stop(self):
            print("stopping-slowly", file=sys.stderr, flush=True)
            await asyncio.sleep(60)

    orig = N.build_components
    N.build_components = lambda node: orig(node) + [Slow()]
    sys.exit(N.run_node(load_config(sys.argv[1]), config_path=sys.argv[1]))
""")


def test_second_signal_forces_exit(tmp_path):
    cfg = tmp_path / "c.yaml"
    _write(cfg)
    cfg.write_text(cfg.read_text().replace("node:\n", "node:\n  stop_timeout_s: 120\n"))
    proc = subprocess.Popen([sys.executable, "-c", SLOW_STOP, str(cfg)], cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(proc, "running")
        proc.send_signal(signal.SIGINT)
        _wait_for(proc, "stopping-slowly")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10)
        assert rc == 1
        assert time.monotonic() - t0 < 5
        assert "forcing exit" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
