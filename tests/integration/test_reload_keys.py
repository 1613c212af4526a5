"""Every config setting marked reload (``opt(..., reload=True)``) takes effect on SIGHUP.

The keys are discovered from the JSON Schema (``x-reload``), so a new reloadable key without a
check here fails ``test_every_reload_key_has_a_check``. Each check builds a node from a config file
(log system, the embedded simulator's venues, the engine's books, arbitrage legs, executor, risk and
paper venues — no network), rewrites the file with one value changed, runs ``Node.reload()`` (what
SIGHUP runs) and looks at the component that holds the value: a behaviour where it is cheap (an
order refused, a status line printed, a debug line written), else the value the component reads.
"""
from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal

import pytest

from cexnode import log as clog
from cexnode.config import json_schema, load_config
from cexnode.node import Node

INSTRUMENTS = {
    "mexc_spot": [("BTC/USDT", "BTCUSDT", "0.01", "0.000001", "1")],
    "gateio_spot": [("BTC/USDT", "BTC_USDT", "0.01", "0.000001", "1")],
    "gateio_futures": [("BTC/USDT:USDT", "BTC_USDT", "0.1", "1", "0.0001")],
}

BASE = {
    "node.status_interval_s": "3600",
    "log.level": "info",
    "log.flush_interval_ms": "50",
    "log.batch_size": "4096",
    "log.loggers": "{}",
    "log.console.level": "info",
    "log.console.audit": "false",
    "log.file.level": "info",
    "risk.max_position": "{BTC: 1}",
}


def _yaml(tmp_path, changes: dict) -> str:
    v = dict(BASE)
    v.update(changes)
    venues = []
    for name, insts in INSTRUMENTS.items():
        syms = [i[0] for i in insts]
        ilist = ", ".join("{symbol: %s, venue_symbol: %s, tick: %s, step: %s, multiplier: %s}" % i for i in insts)
        extra = "".join("\n    %s: %s" % (k.split(".")[-1], val) for k, val in v.items()
                        if k.startswith("venues.%s." % name))
        venues.append("  %s:\n    symbols: [%s]\n    instruments: [%s]%s" % (name, ", ".join(syms), ilist, extra))

    def sect(prefix):
        return "".join("\n  %s: %s" % (k[len(prefix) + 1:], val) for k, val in v.items()
                       if k.startswith(prefix + ".") and k.count(".") == prefix.count(".") + 1)

    paper = sect("trading.paper")
    return """
node:
  name: t%(node)s
log:
  audit: {path: "%(tmp)s/audit.jsonl", fsync: never}
  console:%(console)s
  file:
    enabled: true
    path: "%(tmp)s/log.jsonl"%(file)s%(log)s
metrics: {enabled: false}
sim:
  enabled: true
  mid_prices: {BTC/USDT: 65000}
venues:
%(venues)s
arbitrage:
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: ss}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures], name: sp}%(arb)s
risk:%(risk)s
trading:
  mode: paper%(trading)s
  paper:
    balances:
      mexc_spot: {USDT: 10000, BTC: 1}
      gateio_spot: {USDT: 10000, BTC: 1}
      gateio_futures: {USDT: 10000}%(paper)s
""" % {"tmp": tmp_path, "node": sect("node"), "console": sect("log.console").replace("\n  ", "\n    "),
       "file": sect("log.file").replace("\n  ", "\n    "), "log": sect("log"), "venues": "\n".join(venues),
       "arb": sect("arbitrage"), "risk": sect("risk"), "trading": sect("trading"),
       "paper": paper.replace("\n  ", "\n    ")}


def reload_keys() -> list[str]:
    """Every reloadable key of the schema, as a dotted path (each venue's keys under its name)."""
    out = []

    def walk(node, path):
        if "anyOf" in node:
            for alt in node["anyOf"]:
                walk(dict(alt, **{k: v for k, v in node.items() if k.startswith("x-")}), path)
            return
        if node.get("x-reload") and path:
            out.append(path)
            return
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, "%s.%s" % (path, name) if path else name)

    walk(json_schema(), "")
    return sorted(set(out))


class Harness:
    """A node built from a config file, its engine's pipeline built (no feeds, no network)."""

    def __init__(self, tmp_path, changes: dict):
        self.tmp = tmp_path
        self.path = tmp_path / "node.yaml"
        self.path.write_text(_yaml(tmp_path, changes))
        self.node = Node(load_config(str(self.path)), config_path=str(self.path))
        self.engine = self.node.context.engine
        self.sim = self.node.context.sim
        self.log = self.node.components[0].system

    async def build(self):
        await self.engine.build()

    def reload(self, changes: dict) -> None:
        self.path.write_text(_yaml(self.tmp, changes))
        assert self.node.reload()


def _leg(engine, venue):
    return [p for p in engine.arb.leg_params() if p[0] == venue]


# -- checks: (old values, new values, async check(h) after the reload) ------------------------------

async def _status_interval(h, capfd):
    n = 0
    orig = h.engine.status_line

    def counting():
        nonlocal n
        n += 1
        return orig()

    h.engine.status_line = counting
    h.engine.restart_status()                  # as start() does, at the hour-long interval
    h.reload({"node.status_interval_s": "0.05"})
    await asyncio.sleep(0.6)
    h.engine.status_line = orig
    assert n >= 4, n                           # the new interval, not the hour
    h.reload({"node.status_interval_s": "0"})  # 0: none
    await asyncio.sleep(0.15)
    assert h.engine._status_task is None


async def _logged(h, emit, needle: str) -> bool:
    await h.log.start()
    try:
        emit()
        h.log.flush()
    finally:
        await h.log.stop()
    text = (h.tmp / "log.jsonl").read_text() if (h.tmp / "log.jsonl").exists() else ""
    text += (h.tmp / "stderr.txt").read_text() if (h.tmp / "stderr.txt").exists() else ""
    return needle in text


# the initial config of a check, where it differs from BASE (a reload rewrites the file from BASE)
INITIAL = {
    "log.level": {"log.file.level": "debug"},
    "log.loggers": {"log.file.level": "debug"},
    "log.file.level": {"log.level": "debug"},
    "log.console.level": {"log.level": "debug", "log.file.level": "error"},
}


def _check_log_level(key, value):
    async def check(h, capfd):
        # a debug line is written only once the reloaded level lets it through
        changes = dict(INITIAL[key], **{key: value})
        h.reload(changes)
        lg = clog.get_logger("reloadtest", ["t"])
        await h.log.start()
        try:
            lg.debug("debug-line-after-reload")
            h.log.flush()
        finally:
            await h.log.stop()
        if key == "log.console.level":
            assert "debug-line-after-reload" in capfd.readouterr().err
        else:
            assert "debug-line-after-reload" in (h.tmp / "log.jsonl").read_text()
    return check


async def _console_audit(h, capfd):
    h.reload({"log.console.audit": "true"})
    await h.log.start()
    try:
        clog.get_logger("reloadtest", ["t"]).audit("reload_probe", {"x": 1})
        h.log.flush()
    finally:
        await h.log.stop()
    assert "reload_probe" in capfd.readouterr().err


async def _flusher_reads(h, key, value, attr):
    h.reload({key: value})
    assert getattr(h.log.cfg, attr) == int(value)   # the flusher's config: its next sleep / batch


def _arb_param(key, value, read):
    async def check(h, capfd):
        h.reload({key: value})
        assert read(h.engine.arb) == read_value(key, value)
    return check


def read_value(key, value):
    conv = {"arbitrage.min_profit": Decimal, "arbitrage.max_notional": Decimal,
            "arbitrage.min_bps": lambda x: int(Decimal(x) * 10**8), "arbitrage.max_book_age_ms": int,
            "arbitrage.slippage_bps": lambda x: int(Decimal(x) * 10**4)}
    return conv[key](value)


def _taker_fee(venue):
    async def check(h, capfd):
        h.reload({"venues.%s.taker_fee" % venue: "0.0042"})
        assert {Decimal(f) for _, f, _ in _leg(h.engine, venue)} == {Decimal("0.0042")}
        # the route views (what the scanner prices routes with) carry the new fee too
        assert {leg.taker_fee for view in h.engine.route_table.values() for leg in view.legs
                if leg.venue == venue} == {Decimal("0.0042")}
        assert {r.taker_fee for (v, _), r in h.engine.executor.rules.items() if v == venue} == {Decimal("0.0042")}
        assert h.engine.executor.gateways[venue].fee_rate == Decimal("0.0042")
        assert h.sim.venues[venue].taker_fee == Decimal("0.0042")
    return check


def _maker_fee(venue):
    async def check(h, capfd):
        h.reload({"venues.%s.maker_fee" % venue: "0.0007"})
        # the node sends IOC (taker) orders only; the embedded simulator charges maker fees
        assert h.sim.venues[venue].maker_fee == Decimal("0.0007")
    return check


def _fresh_books(h):
    """Every book in sync with a level each side, just updated (risk's stale-data halt is clear)."""
    now = time.time_ns()
    for b in h.engine.books.values():
        b.py_apply([(6500000, 1000)], [(6500100, 1000)], full=True, exch_ts_ms=now // 10**6, recv_ns=now)
        b.mark_in_sync(True)


async def _kill_switch_file(h, capfd):
    _fresh_books(h)
    kill = h.tmp / "KILL"
    kill.write_text("")
    assert h.engine.risk.refresh() == "active"
    h.reload({"risk.kill_switch_file": '"%s"' % kill})
    assert h.engine.risk.refresh() == "halted"


async def _route_cooldown(h, capfd):
    r = h.engine.risk
    r.note_trade("ss")
    h.reload({"risk.route_cooldown_ms": "3600000"})
    assert r.in_cooldown("ss")
    h.reload({"risk.route_cooldown_ms": "0"})
    assert not r.in_cooldown("ss")


async def _max_notional_per_trade(h, capfd):
    _fresh_books(h)
    def check():
        return h.engine.risk.check_trade(route="ss", base="BTC", qty=Decimal("0.01"), buy_price=Decimal(65000),
                                         sell_price=Decimal(65100), count=False)
    assert check().ok
    h.reload({"risk.max_notional_per_trade": "100"})
    d = check()
    assert not d.ok and d.reason == "max_notional", d


async def _max_position(h, capfd):
    _fresh_books(h)
    def check():
        return h.engine.risk.check_trade(route="ss", base="BTC", qty=Decimal("0.01"), buy_price=Decimal(65000),
                                         sell_price=Decimal(65100), count=False)
    assert check().ok
    h.reload({"risk.max_position": "{BTC: 0.001}"})
    assert not check().ok


def _risk_field(key, value, conv):
    async def check(h, capfd):
        h.reload({key: value})
        assert getattr(h.engine.risk.cfg, key.split(".")[-1]) == conv(value)
    return check


async def _paper_latency(h, capfd):
    h.reload({"trading.paper.latency_ms": "37"})
    assert h.engine.executor.gateways["mexc_spot"].latency_ms == 37.0


async def _margin_fraction(h, capfd):
    h.reload({"trading.futures_margin_fraction": "0.25"})
    assert [Decimal(m) for _, _, m in _leg(h.engine, "gateio_futures")] == [Decimal("0.25")]
    assert all(m is None for _, _, m in _leg(h.engine, "gateio_spot"))
    assert h.engine.executor.gateways["gateio_futures"].margin_fraction == Decimal("0.25")
    assert h.engine.executor.trading.futures_margin_fraction == Decimal("0.25")


def _trading_field(key, value, conv):
    async def check(h, capfd):
        h.reload({key: value})
        # the executor reads its trading section on every trade (and its warm-up timer on every tick)
        assert getattr(h.engine.executor.trading, key.split(".")[-1]) == conv(value)
    return check


CHECKS = {
    "node.status_interval_s": _status_interval,
    "log.level": _check_log_level("log.level", "debug"),
    "log.loggers": _check_log_level("log.loggers", "{reloadtest: debug}"),
    "log.file.level": _check_log_level("log.file.level", "debug"),
    "log.console.level": _check_log_level("log.console.level", "debug"),
    "log.console.audit": _console_audit,
    "log.flush_interval_ms": lambda h, c: _flusher_reads(h, "log.flush_interval_ms", "7", "flush_interval_ms"),
    "log.batch_size": lambda h, c: _flusher_reads(h, "log.batch_size", "3", "batch_size"),
    "arbitrage.min_profit": _arb_param("arbitrage.min_profit", "2.5", lambda a: a.min_profit),
    "arbitrage.min_bps": _arb_param("arbitrage.min_bps", "3.5", lambda a: a.min_bps_m),
    "arbitrage.max_notional": _arb_param("arbitrage.max_notional", "777", lambda a: a.max_notional),
    "arbitrage.max_book_age_ms": _arb_param("arbitrage.max_book_age_ms", "1234", lambda a: a.max_book_age_ms),
    "arbitrage.slippage_bps": _arb_param("arbitrage.slippage_bps", "1.5", lambda a: a.slippage_m),
    "risk.kill_switch_file": _kill_switch_file,
    "risk.route_cooldown_ms": _route_cooldown,
    "risk.max_notional_per_trade": _max_notional_per_trade,
    "risk.max_position": _max_position,
    "risk.max_open_exposure": _risk_field("risk.max_open_exposure", "1234", Decimal),
    "risk.daily_loss_limit": _risk_field("risk.daily_loss_limit", "12", Decimal),
    "risk.error_rate_threshold": _risk_field("risk.error_rate_threshold", "0.5", Decimal),
    "risk.error_window_s": _risk_field("risk.error_window_s", "17", int),
    "risk.min_orders_for_breaker": _risk_field("risk.min_orders_for_breaker", "3", int),
    "risk.stale_data_halt_ms": _risk_field("risk.stale_data_halt_ms", "4321", int),
    "risk.stale_data_scope": _risk_field("risk.stale_data_scope", "venue", str),
    "trading.paper.latency_ms": _paper_latency,
    "trading.futures_margin_fraction": _margin_fraction,
}
for _v in INSTRUMENTS:
    CHECKS["venues.%s.taker_fee" % _v] = _taker_fee(_v)
    CHECKS["venues.%s.maker_fee" % _v] = _maker_fee(_v)
for _k, _val, _conv in (("order_timeout_ms", "1234", int), ("leg_deadline_ms", "2345", int),
                        ("max_balance_age_ms", "321", int), ("hedge_loss_cap", "7.5", Decimal),
                        ("hedge_attempts", "5", int), ("poll_interval_ms", "55", int),
                        ("reconcile_timeout_ms", "4567", int), ("not_found_grace_ms", "765", int),
                        ("max_opportunity_age_ms", "432", int), ("warm_interval_ms", "3.5", float),
                        ("max_inflight_trades", "3", int)):
    CHECKS["trading." + _k] = _trading_field("trading." + _k, _val, _conv)


def test_every_reload_key_has_a_check():
    keys = reload_keys()
    assert "node.status_interval_s" in keys and "venues.gateio_futures.taker_fee" in keys
    assert set(keys) == set(CHECKS), ("no check for", sorted(set(keys) - set(CHECKS)),
                                      "not reloadable", sorted(set(CHECKS) - set(keys)))


@pytest.mark.parametrize("key", reload_keys())
def test_reload_key_takes_effect(key, tmp_path, capfd):
    check = CHECKS.get(key)
    assert check is not None, "reloadable key %s has no check in this module" % key

    async def main():
        h = Harness(tmp_path, INITIAL.get(key, {}))
        await h.build()
        try:
            await check(h, capfd)
        finally:
            if h.engine._status_task is not None:
                h.engine._status_task.cancel()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_status_line_counts_disconnected_books(tmp_path):
    """No venue connected (the feeds never started): the books are not shown as in sync, even
    though they hold fresh, in-sync content."""
    async def main():
        h = Harness(tmp_path, {})
        await h.build()
        _fresh_books(h)
        assert h.engine.books_in_sync() == (3, 3)          # the books' own flags
        line = h.engine.status_line()
        assert line.startswith("books 0/3 in sync (3 disconnected) |"), line
        assert h.engine.book_health() == {"in_sync": 0, "disconnected": 3, "out_of_sync": 0, "stale": 0,
                                          "total": 3}

    asyncio.run(asyncio.wait_for(main(), 30))
