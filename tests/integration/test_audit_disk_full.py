"""The audit file stops taking writes in the middle of a live trade (DESIGN §5: "a write that fails
(disk full) halts trading and never escapes a task").

A child process runs the node as ``python -m cexnode`` does (Node.run on uvloop; live mode against
the embedded simulator on 127.0.0.1) and trades once normally. It then lowers its own
RLIMIT_FSIZE so that a record of the next trade is cut short — the first one after its pre-send
record (its orders left), or the pre-send record itself — and every write to the audit file fails
with EFBIG from then on, as it would with ENOSPC on a full disk (Python ignores SIGXFSZ; a full
filesystem needs mount privileges, and /dev/full cannot recover: tests/unit/test_audit_backend.py
uses it). After that trade has settled and one more opportunity has come and gone, the limit is
lifted ("space is back") and the node is stopped.

Asserted: no traceback, exactly one error line (path and errno), exit code 1, risk halted with
reason audit, the trade in flight settled and booked, no order sent while halted, and — once the
file takes writes again — the audit file complete (every line parses, seq unique and increasing,
every order the venues accepted requested, answered, final and booked, tests/audit_check.py),
each audited final state equal to the venue's; the trade database, failing on the same disk, has
caught up from the audit file with every one of those orders.
"""
from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
import textwrap
from decimal import Decimal

import orjson
import pytest

from audit_check import audit_events, check_audit, read_audit
from cexnode.storage.tradedb import TradeDB

ROOT = pathlib.Path(__file__).resolve().parents[2]

YAML = """
node: {name: diskfull, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {level: info, color: never}
  file: {enabled: false}
  audit: {path: "%(audit)s", fsync: always}
metrics: {enabled: false}
sim:
  enabled: true
  seed: 3
  update_interval_ms: 5
  dislocation_probability: 0
  mid_prices: {BTC/USDT: 65000}
  balances:
    mexc_spot: {USDT: 100000, BTC: 2}
    gateio_spot: {USDT: 100000, BTC: 2}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT], api_key: "${CX_DF_KEY}", api_secret: "${CX_DF_SECRET}"}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT], api_key: "${CX_DF_KEY}", api_secret: "${CX_DF_SECRET}"}
arbitrage:
  min_profit: 0.01
  max_notional: 2000
  max_book_age_ms: 600000
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc}
risk:
  max_position: {BTC: 0.5}
  max_notional_per_trade: 5000
  max_open_exposure: 100000
  route_cooldown_ms: 0
  stale_data_halt_ms: 600000
trading:
  mode: live
  order_timeout_ms: 1500
  leg_deadline_ms: 2000
  poll_interval_ms: 50
  max_balance_age_ms: 5000
"""

CHILD = textwrap.dedent("""
    import asyncio, json, os, resource, sys, time
    from decimal import ROUND_DOWN, Decimal
    from cexnode.config import load_config_text
    from cexnode.node import Node, _new_loop, _setup_bootstrap_logging

    SYM, VENUES, KEY = "BTC/USDT", ("mexc_spot", "gateio_spot"), "k-diskfull"
    audit = sys.argv[2]
    report = {}

    async def wait_for(pred, timeout, what):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for " + what)
            await asyncio.sleep(0.005)

    async def main(node):
        runner = asyncio.get_running_loop().create_task(node.run())
        ctx = node.context
        await wait_for(lambda: ctx.engine is not None and ctx.engine.executor is not None
                       and ctx.engine.executor.started
                       and ctx.engine.books_in_sync() == (2, 2)
                       and all(a.gateway is not None and a.gateway.started for a in ctx.engine.adapters.values()),
                       30, "the node")
        engine, sim = ctx.engine, ctx.sim
        ex, risk = engine.executor, engine.risk
        sim.pause()

        async def synced():
            books = {v: engine.books[(v, SYM)] for v in VENUES}
            await wait_for(lambda: all(books[v].in_sync and books[v].last_id == sim.venue(v).book(SYM).last_id
                                       for v in VENUES), 10, "books in step")

        def dislocate(cheap, bps=40, size="0.01"):
            rich = VENUES[1 - VENUES.index(cheap)]
            cv, rv = sim.venue(cheap), sim.venue(rich)
            inst, rinst = cv.instrument(SYM), rv.instrument(SYM)
            best_bid, best_size = rv.true_book(SYM)[0][0]
            ask = (best_bid * (1 - Decimal(bps) / 10000)).quantize(inst.tick, rounding=ROUND_DOWN)
            removed = [(p, s) for p, s in cv.true_book(SYM)[0] if p >= ask]
            cv.publish_change(SYM, bids=[(inst.ticks_of(p), 0) for p, _ in removed],
                              asks=[(inst.ticks_of(ask), inst.steps_of(Decimal(size)))])
            return cv, inst, removed, ask, rv, rinst, best_bid, best_size

        async def restore(undo):
            cv, inst, removed, ask, rv, rinst, best_bid, best_size = undo
            left = [(inst.ticks_of(ask), 0)] if any(p == ask for p, _ in cv.true_book(SYM)[1]) else []
            cv.publish_change(SYM, bids=[(inst.ticks_of(p), inst.steps_of(s)) for p, s in removed], asks=left)
            rv.publish_change(SYM, bids=[(rinst.ticks_of(best_bid), rinst.steps_of(best_size))])
            await synced()

        async def trade(cheap):
            await ex.refresh_balances()
            n0 = len(ex.results)
            undo = dislocate(cheap)
            await wait_for(lambda: len(ex.results) > n0 and ex.inflight == 0, 15, "the trade")
            await restore(undo)
            return ex.results[n0]

        await synced()
        r1 = await trade("mexc_spot")
        await asyncio.sleep(0.3)              # the flusher's copy of its log lines is in the file too
        with open(audit, "rb") as f:
            raw = f.read()
        start_len = max(len(ln) + 1 for ln in raw.splitlines() if b'"event":"trade_start"' in ln)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        # "answer": the next trade's pre-send record fits (its orders leave), the record after it
        # does not; "request": the pre-send record itself is cut short (its orders must not leave)
        # "hedge": as "answer", with the sell leg half filled: the residual needs a hedge
        room = 10 if sys.argv[3] == "request" else start_len + 60
        if sys.argv[3] == "hedge":
            sim.venue("gateio_spot").faults.partial_fill_next(Decimal("0.5"))
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(raw) + room, hard))
        r2 = await trade("mexc_spot")
        report["state_after"] = [risk.state, sorted(risk.reasons)]
        placed = sum(engine.adapters[v].gateway.placed for v in VENUES)
        # another opportunity while halted: nothing may be sent
        n0 = ex.opportunities
        undo = dislocate("mexc_spot")
        await wait_for(lambda: ex.opportunities > n0, 10, "the next opportunity")
        await asyncio.sleep(0.2)
        await restore(undo)
        report["sent_while_halted"] = sum(engine.adapters[v].gateway.placed for v in VENUES) - placed
        report["skipped"] = dict(ex.skipped)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))          # space is back
        await asyncio.sleep(1.5)              # the flusher retries what the audit log holds (every 1 s)
        report["results"] = [[r.status, str(r.buy_filled), str(r.sell_filled), r.reason] for r in (r1, r2)]
        report["positions"] = {a: str(p) for a, p in engine.positions.positions().items()}
        orders = {}
        for v in VENUES:
            for (key, cid), o in sim.trading.engine(v).by_client.items():
                if key == KEY:
                    cid = cid[2:] if v.startswith("gateio") and cid.startswith("t-") else cid
                    orders[cid] = [v, str(sim.venue(v).instrument(o.symbol).size(o.filled)), o.is_open]
        report["sim_orders"] = orders
        node.request_stop()
        return await asyncio.wait_for(runner, 30)

    _setup_bootstrap_logging()
    node = Node(load_config_text(open(sys.argv[1]).read()), duration=None)
    with asyncio.Runner(loop_factory=_new_loop) as r:
        code = r.run(main(node))
    sys.stdout.write(json.dumps(report) + "\\n")
    sys.exit(code)
""")


@pytest.mark.parametrize("cut", ["answer", "request", "hedge"])
def test_audit_unwritable_mid_trade_halts_settles_and_exits_1(tmp_path, cut):
    """``answer``: the file fails after the trade's orders left (on the first record about them):
    the trade settles and is booked in memory, its records reach the file once it takes writes
    again. ``request``: the file fails on the pre-send record itself: the orders never leave
    (``orders_withdrawn``). ``hedge``: as ``answer`` with one leg half filled: the hedge's request
    cannot be written, so it is not sent either; the residual is booked and reported."""
    audit = tmp_path / "audit" / "audit.jsonl"
    cfg = tmp_path / "node.yaml"
    cfg.write_text(YAML % {"audit": audit})
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               CX_DF_KEY="k-diskfull", CX_DF_SECRET="s-diskfull-secret")
    r = subprocess.run([sys.executable, str(script), str(cfg), str(audit), cut], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120)
    err = r.stderr
    assert "Traceback" not in err and "timed out" not in err, err[-3000:]
    assert r.returncode == 1, err[-3000:]                       # a runtime failure, said at the exit
    errors = [ln for ln in err.splitlines() if "ERROR" in ln]
    # the trade database is on the same full disk: its own single line, then it catches up from the
    # audit file once writes work again (it never blocks trading)
    db_errors = [ln for ln in errors if "storage.tradedb" in ln]
    assert len(db_errors) <= 1, db_errors
    errors = [ln for ln in errors if ln not in db_errors]
    if cut == "hedge":                                          # the other thing that went wrong, said once
        assert len(errors) == 2 and "residual position left open" in errors[1], errors
    else:
        assert len(errors) == 1, errors                         # ONE line: what failed, where, errno
    assert str(audit) in errors[0] and "[Errno %d]" % errno.EFBIG in errors[0] and "cannot be written" in errors[0]
    assert "can be written again" in err
    rep = orjson.loads(r.stdout.splitlines()[-1])

    assert rep["state_after"] == ["halted", ["audit"]]
    assert rep["sent_while_halted"] == 0 and rep["skipped"].get("risk_halted", 0) >= 1
    res = [(st, Decimal(b), Decimal(s)) for st, b, s, _reason in rep["results"]]
    ok = ("done", Decimal("0.01"), Decimal("0.01"))
    if cut == "answer":   # the trade in flight when the file failed went on: answered, settled, booked
        assert res == [ok, ok]
    elif cut == "hedge":  # settled and booked; the residual stays (no order without its record)
        assert res == [ok, ("residual", Decimal("0.01"), Decimal("0.005"))]
        assert rep["positions"]["BTC"] != "0"
    else:                 # nothing of it left
        assert res == [ok, ("error", 0, 0)] and "trade_start" in rep["results"][1][3]

    # space is back: the audit file is whole and complete
    raw = audit.read_bytes()
    assert raw.endswith(b"\n")
    recs = read_audit(audit)                                    # every line parses (nothing torn)
    ev = audit_events(audit)
    seqs = [e["seq"] for e in ev]
    assert seqs == list(range(1, len(seqs) + 1))                # unique, increasing, none lost
    sim_orders = rep["sim_orders"]
    assert len(sim_orders) == (2 if cut == "request" else 4) and not any(o[2] for o in sim_orders.values())
    finals = check_audit(ev, sent=set(sim_orders))
    for cid, (venue, filled, _open) in sim_orders.items():
        assert finals[cid]["venue"] == venue and Decimal(finals[cid]["filled_qty"]) == Decimal(filled)
    assert len([e for e in ev if e["event"] == "fill_booked"]) == len(sim_orders)
    # the trade database (on the same full disk) caught up from the audit file once writes worked
    # again: every order the venues accepted is in it, with the venue's fill
    with TradeDB(str(audit.parent / "trades.sqlite"), readonly=True) as db:
        rows = dict(db.conn.execute("SELECT client_id, filled_qty FROM orders").fetchall())
    for cid, (_venue, filled, _open) in sim_orders.items():
        assert Decimal(rows[cid]) == Decimal(filled), (cid, rows.get(cid))
    names = [e["event"] for e in ev]
    assert names.count("trade_start") == 2 and names.count("trade_done") == (1 if cut == "request" else 2)
    halt = [e["data"] for e in ev if e["event"] == "risk_state"]
    assert halt and halt[-1]["to"] == "halted" and halt[-1]["reasons"] == ["audit"]
    second = [e for e in ev if e["data"] and e["data"].get("trade_id") == 2]
    assert second[0]["event"] == "trade_start"                  # written first, late or not
    if cut == "answer":
        assert len(second) > 4 and "orders_withdrawn" not in names
    elif cut == "hedge":
        w = [e["data"] for e in second if e["event"] == "orders_withdrawn"]
        assert len(w) == 1 and w[0]["record"] == "hedge_plan" and w[0]["client_ids"][0] not in sim_orders
        assert [e["event"] for e in second][-2:] == ["residual_open", "trade_done"]
        assert second[-1]["data"]["status"] == "residual"
    else:
        assert [e["event"] for e in second] == ["trade_start", "orders_withdrawn"]
        assert second[1]["data"]["record_seq"] == second[0]["seq"]
        assert set(second[1]["data"]["client_ids"]) == {o["client_id"] for o in second[0]["data"]["orders"]}
    assert len(recs) > len(ev)                                  # the log-record copies before the failure
