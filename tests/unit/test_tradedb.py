"""The trade database (cexnode/storage): built from a realistic audit stream (tests/tradedb_stream.py),
idempotent feeding and rebuild, incremental catch-up of a growing file, the feeder's failure
handling, and the `trades` / `pnl` / `db rebuild` commands' outputs and exit codes."""
from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import shutil
from decimal import Decimal

import pytest

from cexnode import log as clog
from cexnode.__main__ import main
from cexnode.config import load_config_text
from cexnode.storage.feeder import TradeDBFeeder
from cexnode.storage.tradedb import TradeDB, parse_since, utc_day
from audit_stream import write_stream

D = Decimal


@pytest.fixture
def stream(tmp_path):
    audit = tmp_path / "audit.jsonl"
    pos, trades = write_stream(audit)
    return audit, pos, trades


def _config(tmp_path, audit, db=None):
    cfg = tmp_path / "node.yaml"
    cfg.write_text('log: {audit: {path: "%s"}}\nstorage: {path: "%s"}\nvenues: {mexc_spot: {symbols: [BTC/USDT]}}\n'
                   % (audit, db or tmp_path / "trades.sqlite"))
    return cfg


def test_database_from_the_audit_stream(tmp_path, stream):
    audit, pos, expected = stream
    with TradeDB(str(tmp_path / "t.sqlite")) as db:
        st = db.catch_up(str(audit))
        assert st.skipped == 1                                   # the torn line
        assert db.counts() == {"runs": 2, "trades": 4, "orders": 7, "fills": 6}
        trades = db.trades()
        assert [(t["route"], t["trade_id"], t["status"]) for t in trades] == \
            [(e["route"], e["trade_id"], e["status"]) for e in expected]
        assert len({t["run"] for t in trades}) == 2              # trade 1 of each run: two rows
        for t, e in zip(trades, expected):
            assert t["realised"] == e["realised"]
            assert t["orders"] == sorted(e["orders"], key=e["orders"].index)
        assert db.total_realised() == pos.realised()
        # fees in quote as PositionBook books them: the BTC fee of trade 1 at its fill price
        assert trades[0]["fees"] == D("0.000005") * D("64810") + D("0.64995")
        assert sum(r["fees"] for r in db.pnl("route")) == sum(D(r["fees"]) for r in pos.summary_rows())
        rejected = [t for t in db.trades(rejected=True) if t["status"] == "rejected"]
        assert len(rejected) == 1 and rejected[0]["reason"] == "balance"
        by_route = {r["route"]: r for r in db.pnl("route")}
        for row in pos.summary_rows():
            assert by_route[row["route"]]["realised"] == D(row["realised_pnl"])
            assert by_route[row["route"]]["fills"] == row["fills"]
        assert {k: v["trades"] for k, v in by_route.items()} == {"btc-ss": 1, "btc-sp": 1, "eth-ss": 1}
        by_asset = {r["asset"]: r for r in db.pnl("asset")}
        assert set(by_asset) == {"BTC", "ETH"}
        assert by_asset["ETH"]["realised"] == pos.realised("eth-ss")
        days = db.pnl("day")
        assert [r["day"] for r in days] == [utc_day(os.stat(audit).st_mtime_ns)]
        # order states: final and not moved back by the later (unknown) stream update
        o = db.conn.execute("SELECT status, result, filled_qty, order_id, purpose FROM orders WHERE client_id LIKE '%h1'"
                            ).fetchone()
        assert o == ("filled", "filled", "0.02", "oid-cxa1b2c3h1", "hedge")
        assert db.conn.execute("SELECT COUNT(*) FROM orders WHERE status='new'").fetchone()[0] == 0


def test_feeding_twice_and_rebuilding_never_double_counts(tmp_path, stream):
    audit, pos, _ = stream
    with TradeDB(str(tmp_path / "t.sqlite")) as db:
        db.catch_up(str(audit))
        once = db.dump()
        lines = audit.read_bytes().splitlines()
        db.conn.execute("BEGIN")
        db.ingest(lines)                   # the same records again, and again in reverse order
        db.ingest(reversed(lines))
        db.conn.execute("COMMIT")
        assert db.dump() == once
        copy = tmp_path / "audit-copy.jsonl"
        shutil.copy(audit, copy)
        db.catch_up(str(copy))             # the same events from another file
        assert db.dump() == once
        db.rebuild([str(audit)])
        assert db.dump() == once
        db.rebuild([str(audit)])
        assert db.dump() == once
        assert db.total_realised() == pos.realised()


def test_catch_up_follows_a_growing_file_line_by_line(tmp_path, stream):
    audit, pos, _ = stream
    data = audit.read_bytes()
    grow = tmp_path / "growing.jsonl"
    with TradeDB(str(tmp_path / "t.sqlite")) as db:
        cut = 0
        for n in (1000, 2345, 2346, 5000, len(data) - 7, len(data)):       # cuts inside lines too
            with open(grow, "ab") as f:
                f.write(data[cut:n])
            cut = n
            db.catch_up(str(grow), max_bytes=700)
            done = data[:n].rfind(b"\n") + 1
            assert db.conn.execute("SELECT offset FROM sources").fetchone()[0] == done
        with TradeDB(str(tmp_path / "r.sqlite")) as ref:
            ref.rebuild([str(audit)])
            want = _rows(ref)
        assert _rows(db) == want
        # the file replaced by a shorter one (rotated away, truncated): read again from its start
        os.unlink(grow)
        grow.write_bytes(data[: data.index(b"\n") + 1])
        db.catch_up(str(grow))
        assert _rows(db) == want
        assert db.total_realised() == pos.realised()


def _rows(db):
    d = db.dump()
    d.pop("sources", None)
    return d


def test_a_failed_write_is_logged_counted_and_retried(tmp_path, stream):
    audit, pos, _ = stream
    bad = tmp_path / "blocked"
    bad.mkdir()                                    # a directory where the database file should be
    out = io.StringIO()
    cfg = load_config_text("log: {audit: {path: '%s'}, console: {level: info, color: never}}\n"
                           "venues: {mexc_spot: {symbols: [BTC/USDT]}}" % (tmp_path / "a2.jsonl"))

    async def main_():
        ls = clog.setup(cfg.log, console_stream=out, bridge_stdlib=False)
        await ls.start()
        try:
            f = TradeDBFeeder(str(bad), str(audit), interval_s=0.01)
            results = [f.step(), f.step(), f.step()]
            bad.rmdir()
            results.append(f.step())
            f.start_thread()                        # and the thread: runs, then stops with a last step
            assert f.stop_thread(5.0)
            ls.flush()
            return f, results
        finally:
            await ls.stop()

    f, results = asyncio.run(main_())
    assert results == [False, False, False, True]
    assert f.errors == 3 and f.events > 0
    text = out.getvalue()
    assert text.count("trade database write failed") == 1      # one line per kind of failure
    assert "trade database writable again" in text
    with TradeDB(str(bad)) as db:
        assert db.total_realised() == pos.realised()


# -- the commands ------------------------------------------------------------------------------------


def test_trades_command_formats(tmp_path, stream, capsys):
    audit, pos, expected = stream
    cfg = _config(tmp_path, audit)
    assert main(["trades", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["started", "(UTC)", "trade", "route"]
    assert len(out) == 2 + 3 + 1
    assert out[-1] == "3 trades, realised P&L %s; 1 rejected opportunity not listed" \
        % pos.realised().quantize(D("0.01"))
    assert main(["trades", "--config", str(cfg), "--format", "json", "--route", "btc-sp"]) == 0
    recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["route"], r["status"], D(r["realised_pnl"])) for r in recs] == \
        [("btc-sp", "hedged", expected[1]["realised"])]
    assert len(recs[0]["orders"]) == 3
    assert main(["trades", "--config", str(cfg), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(r["trade_id"]) for r in rows] == [1, 3, 1]
    assert sum(D(r["realised_pnl"]) for r in rows) == pos.realised()
    assert main(["trades", "--config", str(cfg), "--since", "2999-01-01", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1            # the header only
    assert main(["trades", "--config", str(cfg), "--since", "2000-01-01T00:00:00Z", "--format", "json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_pnl_command(tmp_path, stream, capsys):
    audit, pos, _ = stream
    cfg = _config(tmp_path, audit)
    for by in ("route", "day", "asset"):
        assert main(["pnl", "--config", str(cfg), "--by", by, "--format", "json"]) == 0
        recs = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert sum(D(r["realised_pnl"]) for r in recs) == pos.realised()
        assert sum(r["trades"] for r in recs) == 3 and sum(r["fills"] for r in recs) == 6
    assert main(["pnl", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["route", "trades", "fills", "fees", "realised"]
    assert [line.split()[0] for line in out[2:-1]] == ["btc-sp", "btc-ss", "eth-ss"]
    assert out[-1].startswith("total: 3 trades, 6 fills, fees ")
    assert out[-1].endswith("realised P&L %s" % pos.realised().quantize(D("0.01")))


def test_db_rebuild_command_is_idempotent(tmp_path, stream, capsys):
    audit, pos, _ = stream
    cfg = _config(tmp_path, audit)
    assert main(["db", "rebuild", "--config", str(cfg)]) == 0
    first = capsys.readouterr().out
    assert "4 trades, 7 orders, 6 fills" in first and "1 unreadable lines skipped" in first
    with TradeDB(str(tmp_path / "trades.sqlite")) as db:
        before = db.dump()
    assert main(["db", "rebuild", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out == first
    with TradeDB(str(tmp_path / "trades.sqlite")) as db:
        assert _rows(db) == {k: v for k, v in before.items() if k != "sources"}


@pytest.mark.parametrize("argv, needle", [
    (["trades", "--since", "yesterday"], "expected a date YYYY-MM-DD or an ISO 8601 time"),
    (["trades", "--format", "xml"], "invalid choice: 'xml'"),
    (["pnl", "--by", "week"], "invalid choice: 'week'"),
    (["db"], "required: db_command"),
])
def test_bad_arguments_exit_2_with_one_paragraph(tmp_path, stream, capsys, argv, needle):
    audit, _, _ = stream
    cfg = _config(tmp_path, audit)
    with pytest.raises(SystemExit) as e:
        main(argv[:1] + ["--config", str(cfg)] + argv[1:] if argv != ["db"] else argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_missing_history_and_config_exit_2(tmp_path, capsys):
    cfg = _config(tmp_path, tmp_path / "none.jsonl")
    assert main(["trades", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "no trade history" in err and "storage.path" in err and "log.audit.path" in err
    assert main(["db", "rebuild", "--config", str(cfg)]) == 2
    assert "log.audit.path" in capsys.readouterr().err
    assert main(["pnl", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.startswith("cexnode: ")


def test_not_a_database_exits_2(tmp_path, stream, capsys):
    audit, _, _ = stream
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    cfg = _config(tmp_path, audit, junk)
    assert main(["pnl", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "junk.sqlite" in err and "Traceback" not in err


def test_parse_since():
    assert parse_since("2024-05-01") == 1714521600 * 10**9
    assert parse_since("2024-05-01T12:00:00Z") == (1714521600 + 43200) * 10**9
    assert parse_since("2024-05-01T14:00:00+02:00") == (1714521600 + 43200) * 10**9
    with pytest.raises(ValueError):
        parse_since("05/01/2024")
