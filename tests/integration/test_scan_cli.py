"""`cexnode scan` on the embedded simulator (127.0.0.1): trading off, the closing report per route.

The simulator dislocates prices often enough for the engine to see opportunities within seconds;
the report must list every configured route, parse as csv and json, agree with the engine's own
opportunity count (its closing summary line on stderr), and be consistent with itself. Bad
arguments and configs exit 2 naming the problem.
"""
from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from decimal import Decimal

import orjson

from cexnode.config import load_config
from cexnode.node import Node
from cexnode.scan.main import ScanComponent, scan_config
from cexnode.scan.report import report_rows
from cexnode.scan.stats import ScanStats

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CFG = """
node: {name: scan, status_interval_s: 0, start_timeout_s: 20, stop_timeout_s: 10}
log:
  console: {enabled: true, level: info}
  audit: {path: "%(tmp)s/audit.jsonl", fsync: never}
metrics: {enabled: false}
sim:
  enabled: true
  seed: 7
  update_interval_ms: 5
  dislocation_probability: 0.08
  dislocation_bps: 60
  mid_prices: {BTC/USDT: 65000, ETH/USDT: 3200}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT, ETH/USDT], book_audit_interval_s: 0}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT, ETH/USDT], book_audit_interval_s: 0}
  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], book_audit_interval_s: 0}
arbitrage:
  min_profit: 0.10
  max_notional: 2000
  routes:
%(routes)s
trading: {mode: live, recover: false}
"""
ROUTES = """\
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc-ss}
    - {symbol: ETH/USDT, venues: [mexc_spot, gateio_spot], name: eth-ss}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures], name: btc-sp}
"""
ROUTE_VENUES = {"btc-ss": {"mexc_spot", "gateio_spot"}, "eth-ss": {"mexc_spot", "gateio_spot"},
                "btc-sp": {"gateio_spot", "gateio_futures"}}


def _config(tmp_path, routes: str = ROUTES) -> str:
    path = tmp_path / "scan.yaml"
    path.write_text(CFG % {"tmp": tmp_path, "routes": routes})
    return str(path)


def _cli(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "cexnode", *args], cwd=ROOT, capture_output=True, timeout=timeout)


def _engine_opportunities(stderr: bytes) -> int:
    """The engine's closing summary line: ``summary: ran ... opportunities N``."""
    found = re.findall(rb"summary: ran .*? opportunities (\d+)", stderr)
    assert found, stderr.decode()[-2000:]
    return int(found[-1])


def test_scan_json_report_lists_every_route_with_the_engines_counts(tmp_path):
    cfg = _config(tmp_path)
    r = _cli("scan", "--config", cfg, "--duration", "5", "--size", "500", "--format", "json")
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    lines = [orjson.loads(x) for x in r.stdout.splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert summary["type"] == "summary" and all(x["type"] == "route" for x in rows)
    assert {x["route"] for x in rows} == set(ROUTE_VENUES)
    # the opportunities are the engine's: per route they add up to its counter at the end, which
    # is at least what its closing summary logged (frames still arrive while its feeds stop)
    assert summary["opportunities"] == sum(x["opportunities"] for x in rows) > 0
    assert 0 < _engine_opportunities(r.stderr) <= summary["opportunities"]
    assert summary["size"] == "500" and summary["routes"] == 3 and summary["frames"] > 100
    assert summary["refreshes"] >= 3
    for x in rows:
        assert x["status"] == "live" and x["symbol"] in ("BTC/USDT", "ETH/USDT")
        assert 1 <= x["samples"] <= summary["refreshes"] and 0 <= x["priced"] <= x["samples"]
        assert x["priced"] > 0, x          # 500 quote is well within the simulator's books
        best, median = Decimal(x["best_net_bps"]), Decimal(x["median_net_bps"])
        assert best >= median and -1000 < median < 1000
        buy, sell = x["direction"].split(" -> ")
        assert {buy, sell} == ROUTE_VENUES[x["route"]]
        assert Decimal(x["depth_max"]) >= 0
        assert set(x["book_age_ms"]) == ROUTE_VENUES[x["route"]]
        assert all(0 <= a < 5000 for a in x["book_age_ms"].values())
        # opportunities per minute over the scan (the routes were all there from the start)
        minutes = summary["duration_s"] / 60
        assert abs(x["opportunities_per_min"] * minutes - x["opportunities"]) <= 0.05 * x["opportunities"] + 1


def test_scan_csv_report_to_a_file_and_the_table_on_stdout(tmp_path):
    cfg = _config(tmp_path)
    out = tmp_path / "report.csv"
    r = _cli("scan", "--config", cfg, "--duration", "3", "--format", "csv", "--out", str(out))
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    assert r.stdout == b""           # not a terminal: no live table, and the report went to the file
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {x["route"] for x in rows} == set(ROUTE_VENUES)
    assert sum(int(x["opportunities"]) for x in rows) >= _engine_opportunities(r.stderr) > 0
    for x in rows:
        ages = dict(kv.split("=") for kv in x["book_age_ms"].split())
        assert set(ages) == ROUTE_VENUES[x["route"]]
        assert int(x["samples"]) >= 2 and Decimal(x["best_net_bps"]) >= Decimal(x["median_net_bps"])

    r = _cli("scan", "--config", cfg, "--duration", "2")
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    text = r.stdout.decode()
    assert "best_net_bps" in text and "opportunities" in text
    for name in ROUTE_VENUES:
        assert re.search(r"^\s*%s\s" % name, text, re.M), text


def test_scan_bad_arguments_and_configs_exit_2_naming_the_problem(tmp_path):
    cfg = _config(tmp_path)
    cases = [
        (["--size", "0"], b"--size"),
        (["--size", "lots"], b"--size"),
        (["--top", "0"], b"--top"),
        (["--format", "xml"], b"--format"),
        (["--duration", "-1"], b"--duration"),
        (["--out", str(tmp_path / "missing" / "r.csv")], b"cannot write the report"),
    ]
    for extra, needle in cases:
        r = _cli("scan", "--config", cfg, *extra, timeout=30)
        assert r.returncode == 2 and needle in r.stderr, (extra, r.stderr)
    r = _cli("scan", "--config", str(tmp_path / "nope.yaml"), timeout=30)
    assert r.returncode == 2 and b"nope.yaml" in r.stderr
    r = _cli("scan", "--config", _config(tmp_path, routes="    []"), timeout=30)
    assert r.returncode == 2 and b"arbitrage.routes" in r.stderr, r.stderr
    r = _cli("scan", timeout=30)
    assert r.returncode == 2 and b"--config" in r.stderr


def _run_on_a_terminal(args: list[str], deadline_s: float) -> tuple[int, str]:
    """Run the CLI with stdout on a pseudo-terminal; its exit code and everything it drew there."""
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "cexnode", *args], cwd=ROOT, stdout=slave, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, COLUMNS="160", LINES="40"))
    os.close(slave)
    drawn = b""
    deadline = time.monotonic() + deadline_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:          # the child closed the terminal
                    break
                if not chunk:
                    break
                drawn += chunk
            elif p.poll() is not None:
                break
        rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return rc, drawn.decode(errors="replace")


def test_scan_on_a_terminal_draws_the_live_table_of_the_best_routes(tmp_path):
    rc, drawn = _run_on_a_terminal(["scan", "--config", _config(tmp_path), "--duration", "4", "--top", "2"], 90)
    assert rc == 0, drawn[-3000:]
    table, report = drawn.rsplit("routes at 2000 quote", 1)
    # the live table: the header line with the books in sync, the columns, at most --top rows per draw
    assert re.search(r"scan \d+ s \| books 5/5 in sync \| frames \d+ \| opportunities \d+", table), table[-3000:]
    assert "net bps @2000" in table and "depth >=0 bps" in table and "2 of 3 routes" in table
    assert any(name in table for name in ROUTE_VENUES)
    # then the closing report, every route in it
    for name in ROUTE_VENUES:
        assert re.search(r"^%s\s" % name, report, re.M), report


async def _until(cond, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        await asyncio.sleep(0.02)


def test_scan_follows_routes_that_leave_and_join_the_engines_table(tmp_path):
    """What the universe manager does at run time, done here by hand on the running engine's
    route table: the scanner stops sampling a removed route (reported ``removed``) and picks up a
    new one from its first refresh on."""
    cfg = load_config(_config(tmp_path))
    out = {}

    async def main():
        node = Node(scan_config(cfg), duration=30, trading=False)
        engine = node.context.engine
        stats = ScanStats(Decimal(500), time.monotonic())
        engine.opportunity_taps.append(stats.on_opportunities)
        comp = ScanComponent(engine, stats, None, refresh_s=0.1)
        node.components.append(comp)

        async def edit():
            await _until(lambda: stats.refreshes >= 3, 60, "the scan's first refreshes")
            view = engine.route_table.pop("eth-ss")
            at = stats.refreshes
            await _until(lambda: stats.refreshes >= at + 3, 10, "refreshes without eth-ss")
            engine.route_table["eth-ss-again"] = dataclasses.replace(view, name="eth-ss-again")
            at = stats.refreshes
            await _until(lambda: stats.refreshes >= at + 3, 10, "refreshes with eth-ss-again")
            node.request_stop()

        editor = asyncio.get_running_loop().create_task(edit())
        out["rc"] = await node.run()
        await editor
        out["refreshes"] = stats.refreshes
        out["rows"] = {r["route"]: r for r in report_rows(stats, time.monotonic())}

    asyncio.run(asyncio.wait_for(main(), 120))
    assert out["rc"] == 0
    rows, refreshes = out["rows"], out["refreshes"]
    assert set(rows) == set(ROUTE_VENUES) | {"eth-ss-again"}
    assert rows["eth-ss"]["status"] == "removed" and rows["eth-ss-again"]["status"] == "live"
    assert rows["btc-ss"]["samples"] == rows["btc-sp"]["samples"] == refreshes
    # sampled while in the table only: at least 3 refreshes saw neither the old route nor the new one
    assert rows["eth-ss"]["samples"] >= 3 and rows["eth-ss-again"]["samples"] >= 3
    assert rows["eth-ss"]["samples"] + rows["eth-ss-again"]["samples"] <= refreshes - 3
    assert rows["eth-ss-again"]["direction"] is not None


def test_scan_until_ctrl_c_then_the_report(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "cexnode", "scan", "--config", _config(tmp_path), "--format", "json"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the node says when it runs (every component started: the scan's too); then Ctrl-C
        seen = b""
        deadline = time.monotonic() + 60
        while b" running (" not in seen:
            assert time.monotonic() < deadline and p.poll() is None, seen.decode()[-2000:]
            ready, _, _ = select.select([p.stderr], [], [], 0.5)
            if ready:
                seen += os.read(p.stderr.fileno(), 65536)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (seen + err).decode()[-3000:]
    lines = [orjson.loads(x) for x in out.splitlines()]
    assert {x["route"] for x in lines if x["type"] == "route"} == set(ROUTE_VENUES)
    assert lines[-1]["type"] == "summary" and lines[-1]["refreshes"] >= 1
