"""Malformed configs through the real CLI (`python -m cexnode check`) as a subprocess.

Each case: exit code 2, the exact key path (and line where there is one) in the message, no traceback.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

GOOD = """\
venues:
  mexc_spot:
    taker_fee: 0.0005
    symbols: [BTC/USDT]
  gateio_spot:
    taker_fee: 0.001
    symbols: [BTC/USDT]
  gateio_futures:
    symbols: [BTC/USDT:USDT]
arbitrage:
  routes:
    - symbol: BTC/USDT
      venues: [mexc_spot, gateio_spot]
"""

# (id, yaml text or None for a special file, expected substrings in the message)
CASES = [
    ("empty_file", "", ["empty"]),
    ("comment_only", "# nothing\n", ["empty"]),
    ("top_level_list", "- a\n- b\n", ["top level must be a mapping", ":1"]),
    ("top_level_scalar", "hello\n", ["top level must be a mapping"]),
    ("yaml_syntax", "venues:\n  mexc_spot: {symbols: [BTC/USDT\n", ["YAML syntax error"]),
    ("bad_indent", "venues:\n  mexc_spot:\n    symbols: [BTC/USDT]\n   taker_fee: 1\n", ["YAML syntax error", ":4"]),
    ("missing_venues", "node:\n  name: x\n", ["'venues'"]),
    ("no_venue", "venues: {}\n", ["at least one venue", "'venues'"]),
    ("unknown_top_key", GOOD + "arbitrge_x: 1\n", ["'arbitrge_x'", ":14"]),
    ("unknown_key_hint", GOOD.replace("    taker_fee: 0.0005", "    taker_fe: 0.0005"), ["venues.mexc_spot.taker_fe", "did you mean 'taker_fee'", ":3"]),
    ("unknown_venue", GOOD.replace("venues:\n", "venues:\n  binance_spot:\n    symbols: [BTC/USDT]\n"), ["venues.binance_spot", ":2"]),
    ("duplicate_key", GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    taker_fee: 0.0006\n"), ["duplicate key 'taker_fee'", "venues.mexc_spot.taker_fee", ":4"]),
    ("duplicate_section", GOOD + "venues:\n  mexc_spot: {}\n", ["duplicate key 'venues'"]),
    ("fee_wrong_type", GOOD.replace("taker_fee: 0.001", "taker_fee: cheap"), ["venues.gateio_spot.taker_fee", "decimal number", "'cheap'", ":6"]),
    ("fee_out_of_range", GOOD.replace("taker_fee: 0.001", "taker_fee: 0.5"), ["venues.gateio_spot.taker_fee", "<= 0.05", ":6"]),
    ("fee_negative", GOOD.replace("taker_fee: 0.001", "taker_fee: -0.001"), ["venues.gateio_spot.taker_fee", ">= 0"]),
    ("fee_bool", GOOD.replace("taker_fee: 0.001", "taker_fee: true"), ["venues.gateio_spot.taker_fee", "boolean"]),
    ("symbols_not_list", GOOD.replace("symbols: [BTC/USDT]\n  gateio_spot", "symbols: BTC/USDT\n  gateio_spot"), ["venues.mexc_spot.symbols", "a list"]),
    ("malformed_symbol", GOOD.replace("symbols: [BTC/USDT]\n  gateio_spot", "symbols: [BTCUSDT]\n  gateio_spot"), ["venues.mexc_spot.symbols[0]", "unified symbol", "'BTCUSDT'"]),
    ("lowercase_symbol", GOOD.replace("symbols: [BTC/USDT:USDT]", "symbols: [btc/usdt:usdt]"), ["venues.gateio_futures.symbols[0]", "unified symbol"]),
    ("spot_symbol_on_futures", GOOD.replace("symbols: [BTC/USDT:USDT]", "symbols: [BTC/USDT]"), ["venues.gateio_futures.symbols[0]", "perpetual"]),
    ("perp_on_spot", GOOD.replace("symbols: [BTC/USDT]\n  gateio_spot", "symbols: [BTC/USDT:USDT]\n  gateio_spot"), ["venues.mexc_spot.symbols[0]", "spot venue"]),
    ("depth_out_of_range", GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    book_depth: 0\n"), ["venues.mexc_spot.book_depth", ">= 1", ":4"]),
    ("depth_float", GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    book_depth: 10.5\n"), ["venues.mexc_spot.book_depth", "integer"]),
    ("route_unknown_venue", GOOD.replace("venues: [mexc_spot, gateio_spot]", "venues: [mexc_spot, gate_spot]"), ["arbitrage.routes[0].venues[1]", "unknown venue 'gate_spot'", "did you mean"]),
    ("route_unconfigured_venue", GOOD.replace("  gateio_futures:\n    symbols: [BTC/USDT:USDT]\n", "").replace("venues: [mexc_spot, gateio_spot]", "venues: [mexc_spot, gateio_futures]"), ["arbitrage.routes[0].venues[1]", "not configured"]),
    ("route_symbol_not_listed", GOOD.replace("    - symbol: BTC/USDT\n", "    - symbol: ETH/USDT\n"), ["arbitrage.routes[0].venues[0]", "ETH/USDT"]),
    ("route_one_venue", GOOD.replace("venues: [mexc_spot, gateio_spot]", "venues: [mexc_spot]"), ["arbitrage.routes[0].venues", "at least two"]),
    ("route_missing_symbol", GOOD.replace("    - symbol: BTC/USDT\n      venues", "    - venues"), ["arbitrage.routes[0].symbol", "missing required key"]),
    ("live_without_credentials", GOOD + "trading:\n  mode: live\n", ["venues.mexc_spot.api_key", "live"]),
    ("bad_mode", GOOD + "trading:\n  mode: yolo\n", ["trading.mode", "paper, live", ":15"]),
    ("unset_env_var", GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    api_key: ${CEXNODE_TEST_SURELY_UNSET}\n"), ["venues.mexc_spot.api_key", "CEXNODE_TEST_SURELY_UNSET", "not set"]),
    ("literal_secret", GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    api_secret: hunter2\n"), ["venues.mexc_spot.api_secret", "environment"]),
    ("env_not_int", GOOD + "metrics:\n  port: ${CEXNODE_TEST_PORT:-notaport}\n", ["metrics.port", "integer"]),
    ("port_range", GOOD + "metrics:\n  port: 70000\n", ["metrics.port", "<= 65535", ":15"]),
    ("ring_not_pow2", GOOD + "log:\n  ring_capacity: 3000\n", ["log.ring_capacity", "power of two"]),
    ("log_level_typo", GOOD + "log:\n  level: verbose\n", ["log.level", "debug, info, warning, error"]),
    ("logger_level_bad", GOOD + "log:\n  loggers:\n    cexnode.net: loud\n", ["log.loggers.cexnode.net", ":16"]),
    ("section_wrong_type", GOOD + "risk: 5\n", ["'risk'", "mapping"]),
    ("gc_thresholds", GOOD + "node:\n  gc:\n    thresholds: [1, 2]\n", ["node.gc.thresholds", "three"]),
    ("cpu_negative", GOOD + "node:\n  cpu_affinity: [-1]\n", ["node.cpu_affinity"]),
    ("paper_balance_unknown_venue", GOOD + "trading:\n  paper:\n    balances:\n      kraken: {USDT: 1}\n", ["trading.paper.balances.kraken", "unknown venue"]),
    ("risk_max_position_bad", GOOD + "risk:\n  max_position: {BTC: lots}\n", ["risk.max_position.BTC", "decimal"]),
    ("null_required", GOOD.replace("    - symbol: BTC/USDT\n", "    - symbol: null\n"), ["arbitrage.routes[0].symbol", "null"]),
    ("foreign_key_on_spot", GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    size_decimal: true\n"),
     ["venues.mexc_spot.size_decimal", "unknown key 'size_decimal' (a gateio_futures key)", ":4"]),
    ("foreign_key_on_futures", GOOD.replace("    symbols: [BTC/USDT:USDT]\n", "    symbols: [BTC/USDT:USDT]\n    recv_window_ms: 6000\n"),
     ["venues.gateio_futures.recv_window_ms", "unknown key 'recv_window_ms' (a mexc_spot key)", ":10"]),
]

# a key of another venue in a venue's section: (yaml, key path, message)
FOREIGN = [
    (GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    size_decimal: true\n"),
     "venues.mexc_spot.size_decimal", "unknown key 'size_decimal' (a gateio_futures key)"),
    (GOOD.replace("    taker_fee: 0.001\n", "    taker_fee: 0.001\n    listen_key_keepalive_s: 60\n"),
     "venues.gateio_spot.listen_key_keepalive_s", "unknown key 'listen_key_keepalive_s' (a mexc_spot key)"),
    (GOOD.replace("    symbols: [BTC/USDT:USDT]\n", "    symbols: [BTC/USDT:USDT]\n    order_connection: false\n"),
     "venues.gateio_futures.order_connection", "unknown key 'order_connection' (a mexc_spot key)"),
    (GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    ws_order_api: false\n"),
     "venues.mexc_spot.ws_order_api", "unknown key 'ws_order_api' (a gateio_spot and gateio_futures key)"),
]


def _run(args, env=None, timeout=30):
    e = dict(os.environ)
    e.pop("CEXNODE_TEST_SURELY_UNSET", None)
    e.pop("CEXNODE_TEST_PORT", None)
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-m", "cexnode", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=str(ROOT), env=e)


def test_at_least_25_cases():
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)


def test_good_config_passes(tmp_path):
    f = tmp_path / "good.yaml"
    f.write_text(GOOD)
    r = _run(["check", "--config", str(f)])
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


@pytest.mark.parametrize("case_id,text,expect", CASES, ids=[c[0] for c in CASES])
def test_malformed_config_exits_2(tmp_path, case_id, text, expect):
    f = tmp_path / ("%s.yaml" % case_id)
    f.write_text(text)
    r = _run(["check", "--config", str(f)])
    msg = r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout, msg)
    assert "Traceback" not in msg and "Traceback" not in r.stdout
    assert str(f) in msg, msg
    for needle in expect:
        assert needle in msg, "%r not in %r" % (needle, msg)
    # one paragraph: a single non-empty line
    assert len([ln for ln in msg.splitlines() if ln.strip()]) == 1, msg


@pytest.mark.parametrize("text, path, message", FOREIGN, ids=[f[1] for f in FOREIGN])
def test_key_of_another_venue_stops_the_node_with_exit_2(tmp_path, text, path, message):
    """``python -m cexnode --config x.yaml`` (the node itself, not only ``check``) refuses a key of
    another venue before starting anything: exit 2, one line naming the key and the venue owning it."""
    f = tmp_path / "x.yaml"
    f.write_text(text)
    r = _run(["--config", str(f)])
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert "at key '%s': %s" % (path, message) in r.stderr, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1, r.stderr


def test_missing_file(tmp_path):
    r = _run(["check", "--config", str(tmp_path / "nope.yaml")])
    assert r.returncode == 2 and "file not found" in r.stderr and "Traceback" not in r.stderr


def test_directory_instead_of_file(tmp_path):
    r = _run(["check", "--config", str(tmp_path)])
    assert r.returncode == 2 and "directory" in r.stderr and "Traceback" not in r.stderr


def test_unreadable_file(tmp_path):
    # A path through a regular file fails with ENOTDIR for every user (root ignores mode 000).
    f = tmp_path / "plain"
    f.write_text(GOOD)
    r = _run(["check", "--config", str(f / "child.yaml")])
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_not_utf8(tmp_path):
    f = tmp_path / "latin1.yaml"
    f.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    r = _run(["check", "--config", str(f)])
    assert r.returncode == 2 and "UTF-8" in r.stderr and ":14" in r.stderr and "Traceback" not in r.stderr


def test_bad_arguments_exit_2():
    r = _run(["--config"])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = _run(["--config", "configs/demo.yaml", "--duration", "-3"])
    assert r.returncode == 2 and "positive" in r.stderr


def test_env_substitution_and_redaction(tmp_path):
    f = tmp_path / "live.yaml"
    f.write_text(GOOD.replace("    taker_fee: 0.0005\n",
                              "    taker_fee: 0.0005\n    api_key: ${CX_KEY}\n    api_secret: ${CX_SECRET}\n")
                 + "metrics:\n  port: ${CEXNODE_TEST_PORT:-9999}\n")
    r = _run(["config", "show", "--config", str(f)], env={"CX_KEY": "AKIAKEYVALUE", "CX_SECRET": "s3cr3t-value"})
    assert r.returncode == 0, r.stderr
    assert "AKIAKEYVALUE" not in r.stdout and "s3cr3t-value" not in r.stdout
    assert '"api_key": "***"' in r.stdout and '"port": 9999' in r.stdout


def test_schema_is_json():
    import json
    r = _run(["config", "schema"])
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["properties"]["venues"]["properties"]["gateio_spot"]["anyOf"][0]["properties"]["taker_fee"]["maximum"] == 0.05
    assert schema["additionalProperties"] is False


def test_shipped_configs_are_valid():
    env = {"MEXC_API_KEY": "k", "MEXC_API_SECRET": "s", "GATE_API_KEY": "k", "GATE_API_SECRET": "s"}
    for name in ("configs/demo.yaml", "configs/prod.example.yaml"):
        r = _run(["check", "--config", name], env=env)
        assert r.returncode == 0, (name, r.stderr)
