"""cexnode.log.LogSystem: flusher, backends (console, JSONL, audit, Prometheus), bridge, reload, drain."""
import asyncio
import io
import logging
import os
import time
from dataclasses import dataclass, field, replace

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from cexnode import log as clog
from cexnode._core import logring as lr
from cexnode.log.backends import JsonlFileBackend


@dataclass(frozen=True)
class Console:
    enabled: bool = True
    level: str = "info"
    color: str = "never"


@dataclass(frozen=True)
class File:
    enabled: bool = True
    path: str = ""
    level: str = "debug"
    max_bytes: int = 1 << 30
    rotate_daily: bool = True


@dataclass(frozen=True)
class Audit:
    path: str = ""
    fsync: str = "always"


@dataclass(frozen=True)
class LogCfg:
    level: str = "debug"
    ring_capacity: int = 1 << 16
    flush_interval_ms: int = 5
    batch_size: int = 512
    loggers: dict = field(default_factory=dict)
    console: Console = Console()
    file: File = File()
    audit: Audit = Audit()
    redact_keys: list = field(default_factory=list)


def make_cfg(tmp_path, **kw):
    cfg = LogCfg(file=File(path=str(tmp_path / "logs" / "node.jsonl")), audit=Audit(path=str(tmp_path / "audit.jsonl")))
    return replace(cfg, **kw)


def read_jsonl(path):
    with open(path, "rb") as f:
        return [orjson.loads(x) for x in f.read().splitlines()]


class _Secret:
    __cexnode_secret__ = True

    def __repr__(self):
        return "LEAKED"

    __str__ = __repr__


def run(coro):
    return asyncio.run(coro)


def test_no_loss_in_order_across_levels_and_backends(tmp_path):
    out = io.StringIO()
    cfg = make_cfg(tmp_path, console=Console(level="warning"), batch_size=300)

    async def main():
        ls = clog.setup(cfg, console_stream=out)
        await ls.start()
        lg = clog.get_logger("t.noloss", ["t"])
        tr = clog.get_logger("t.noloss.trade", ["t", "trading"])
        levels = [lg.debug, lg.info, lg.warning, lg.error]
        n = 5000
        for i in range(n):
            levels[i % 4]("rec", i=i)
            if i % 1000 == 0:
                tr.info("trade", i=i)
                await asyncio.sleep(0)       # let the flusher run mid-stream sometimes
        accepted = ls.ring.accepted
        await ls.stop()
        return ls, n, accepted

    ls, n, accepted = run(main())
    assert ls.ring.dropped == 0 and ls.ring.drained == accepted and len(ls.ring) == 0
    recs = [r for r in read_jsonl(cfg.file.path) if r["logger"] == "t.noloss"]
    assert [r["i"] for r in recs] == list(range(n))                        # exactly once, in order
    assert [r["level"] for r in recs[:4]] == ["debug", "info", "warning", "error"]
    console = [ln for ln in out.getvalue().splitlines() if "t.noloss:" in ln]
    assert [int(ln.rsplit("i=", 1)[1]) for ln in console] == [i for i in range(n) if i % 4 >= 2]
    audit = [r for r in read_jsonl(cfg.audit.path) if r.get("logger") == "t.noloss.trade"]
    assert [r["i"] for r in audit] == [0, 1000, 2000, 3000, 4000]           # trading tag -> audit


def test_overfilled_ring_counts_drops_and_reports(tmp_path):
    cfg = make_cfg(tmp_path, ring_capacity=1024, console=Console(enabled=False))

    async def main():
        ls = clog.setup(cfg)
        await ls.start()
        lg = clog.get_logger("t.overfill", ["t"])
        for i in range(1024 + 100):         # no await: the flusher cannot run
            lg.info("r", i=i)
        await ls.stop()
        return ls

    ls = run(main())
    assert ls.ring.dropped == 100
    recs = read_jsonl(cfg.file.path)
    got = [r["i"] for r in recs if r["logger"] == "t.overfill"]
    assert got == list(range(1024))
    reports = [r for r in recs if r["msg"] == lr.DROPS_MSG]
    assert len(reports) == 1 and reports[0]["dropped"] == 100


def test_secrets_redacted_in_every_backend(tmp_path):
    out = io.StringIO()
    reg = CollectorRegistry()
    cfg = make_cfg(tmp_path, redact_keys=["pin"], console=Console(level="debug"))

    async def main():
        ls = clog.setup(cfg, registry=reg, console_stream=out)
        await ls.start()
        lg = clog.get_logger("t.secret", ["t", "trading"]).with_context(password="LEAKED")
        lg.info("login", api_key="LEAKED", pin="LEAKED", cred=_Secret(), body={"signature": "LEAKED"})
        lg.audit("order_new", {"api_secret": "LEAKED", "key": _Secret(), "id": 1})
        lg.metric("secret_gauge", 1.0, {"who": _Secret()})
        lg.counter("secret_counter", 2, {"api_key": "LEAKED"})
        logging.getLogger("cexnode.bridged").warning("bridged %s", _Secret())
        logging.getLogger("cexnode.bridged").error("kw", extra={"api_secret": "LEAKED"})
        await ls.stop()
        return ls

    ls = run(main())
    assert "LEAKED" not in out.getvalue() and "***" in out.getvalue()
    for p in (cfg.file.path, cfg.audit.path):
        raw = open(p, "rb").read()
        assert b"LEAKED" not in raw and b"***" in raw, p
    prom = generate_latest(reg)
    assert b"LEAKED" not in prom
    # the records reached every backend (redacted, not dropped)
    assert b'cexnode_secret_gauge{who="***"} 1.0' in prom
    assert b'cexnode_secret_counter_total{api_key="***"} 2.0' in prom
    for text in (out.getvalue(), open(cfg.file.path).read()):
        assert "login" in text and "bridged ***" in text
    assert b'"order_new"' in open(cfg.audit.path, "rb").read()


def test_audit_is_written_before_audit_returns(tmp_path):
    cfg = make_cfg(tmp_path, console=Console(enabled=False), flush_interval_ms=10000)

    async def main():
        ls = clog.setup(cfg)
        await ls.start()
        lg = clog.get_logger("t.audit", ["t"])
        seq = lg.audit("order_ack", {"order_id": "A1", "px": "1.5"})
        on_disk = read_jsonl(cfg.audit.path)          # flusher has not run (10 s interval)
        await ls.stop()
        return seq, on_disk

    seq, on_disk = run(main())
    assert seq == 1
    assert on_disk[-1]["event"] == "order_ack" and on_disk[-1]["data"] == {"order_id": "A1", "px": "1.5"}
    assert on_disk[-1]["seq"] == 1


def test_audit_sync_now_behind_and_batch(tmp_path):
    """fsync always: sync=True fdatasyncs before returning (on the caller's thread); sync="behind"
    returns with the line already in the file and the sync done by the syncer thread; batch:
    flushes request the sync, never run it on the loop; close() waits for a pending sync."""
    import threading
    from cexnode.log.backends import AuditBackend

    for fsync in ("always", "batch"):
        b = AuditBackend(str(tmp_path / ("a-%s.jsonl" % fsync)), fsync)
        b.open()
        callers = []
        real = os.fdatasync

        def spy(fd, _real=real):
            callers.append(threading.current_thread().name)
            return _real(fd)

        os.fdatasync = spy
        try:
            lg = clog.get_logger("t.sync")
            b.write_event(lg, "now", {"i": 1})
            after_now = list(callers)
            b.write_event(lg, "behind", {"i": 2}, "behind")
            lines = read_jsonl(b.path)                       # in the file before anything syncs
            assert [x["event"] for x in lines] == ["now", "behind"]
            if fsync == "batch":
                b.after_flush()
            deadline = time.monotonic() + 5
            while b.syncs_behind < 1 and time.monotonic() < deadline:
                time.sleep(0.001)
            b.request_sync()
            b.close()                                        # joins the syncer; final sync here
        finally:
            os.fdatasync = real
        if fsync == "always":
            assert after_now == [threading.current_thread().name]    # before write_event returned
        else:
            assert after_now == []                                   # batch: never on the caller's path
        assert b.syncs_behind >= 1
        assert "cexnode-audit-sync" in callers and callers[-1] == threading.current_thread().name
        assert b.syncs == len(callers)
        assert b._syncer is None and b.fd == -1


def test_audit_without_system_raises():
    lr.set_audit_sink(None)
    with pytest.raises(RuntimeError):
        clog.get_logger("t.noaudit").audit("x", {})


def test_prometheus_backend(tmp_path):
    reg = CollectorRegistry()
    cfg = make_cfg(tmp_path, console=Console(enabled=False))

    async def main():
        ls = clog.setup(cfg, registry=reg)
        await ls.start()
        lg = clog.get_logger("t.prom", ["t"])
        lg.metric("open_orders", 3, {"venue": "mexc_spot"})
        lg.counter("orders_placed", 2, {"venue": "mexc_spot"})
        lg.counter("orders_placed", 1, {"venue": "mexc_spot"})
        with lg.timer("place"):
            pass
        lg.counter("orders_placed", 1, {"other": "labels"})        # mismatched labels: counted, skipped
        await ls.stop()
        return ls

    ls = run(main())
    text = generate_latest(reg).decode()
    assert 'cexnode_open_orders{venue="mexc_spot"} 3.0' in text
    assert 'cexnode_orders_placed_total{venue="mexc_spot"} 3.0' in text
    assert "cexnode_place_duration_microseconds_count 1.0" in text
    assert ls.prometheus.errors == 1


def test_stdlib_bridge_and_handover(tmp_path):
    cfg = make_cfg(tmp_path, console=Console(enabled=False), loggers={"aiohttp": "warning"})
    boot = logging.getLogger("cexnode")
    seen = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    h = Catch()
    boot.addHandler(h)
    boot.setLevel(logging.INFO)
    try:
        async def main():
            ls = clog.setup(cfg)
            await ls.start()
            logging.getLogger("cexnode.node").info("node line %d", 1)
            logging.getLogger("aiohttp.client").info("filtered by log.loggers")
            logging.getLogger("aiohttp.client").warning("aiohttp warn")
            try:
                raise ValueError("boom")
            except ValueError:
                logging.getLogger("asyncio").exception("loop error")
            await ls.stop()

        run(main())
        logging.getLogger("cexnode.node").info("after stop")
        recs = read_jsonl(cfg.file.path)
        msgs = [(r["logger"], r["msg"]) for r in recs]
        assert ("cexnode.node", "node line 1") in msgs
        assert ("aiohttp.client", "aiohttp warn") in msgs
        assert ("aiohttp.client", "filtered by log.loggers") not in msgs
        err = [r for r in recs if r["msg"] == "loop error"][0]
        assert "ValueError: boom" in err["exc"] and err["tags"] == ["stdlib"]
        assert seen == ["after stop"]              # bootstrap handler: set aside, then restored
        assert boot.level == logging.INFO
    finally:
        boot.removeHandler(h)


def test_reconfigure_levels(tmp_path):
    out = io.StringIO()
    cfg = make_cfg(tmp_path, level="info", console=Console(level="info"))

    async def main():
        ls = clog.setup(cfg, console_stream=out)
        await ls.start()
        lg = clog.get_logger("t.reload", ["t"])
        lg.debug("before")
        ls.reconfigure(replace(cfg, level="debug", console=Console(level="debug"), file=replace(cfg.file, level="error")))
        lg.debug("after")
        lg.error("err")
        await ls.stop()

    run(main())
    assert [r["msg"] for r in read_jsonl(cfg.file.path) if r["logger"] == "t.reload"] == ["err"]
    txt = out.getvalue()
    assert "after" in txt and "before" not in txt


def test_stop_rejects_later_records(tmp_path):
    cfg = make_cfg(tmp_path, console=Console(enabled=False))

    async def main():
        ls = clog.setup(cfg)
        await ls.start()
        await ls.stop()
        clog.get_logger("t.late").info("late")
        return ls

    ls = run(main())
    assert ls.ring.rejected == 1 and ls.ring.accepted == ls.ring.drained


def test_console_colour_modes():
    from cexnode.log.backends import ConsoleBackend

    b = ConsoleBackend(lr.INFO, "always")
    line = b.format((0, lr.ERROR, lr.KIND_LOG, 0, "m", {"k": "v w"}), True)
    assert "\x1b[31m" in line and "k='v w'" in line
    assert not ConsoleBackend(lr.INFO, "auto")._colour(io.StringIO())


def test_file_rotation_by_size_and_day(tmp_path):
    p = tmp_path / "r" / "f.jsonl"
    b = JsonlFileBackend(str(p), lr.DEBUG, max_bytes=100, rotate_daily=True)
    b.open()
    line = b'{"x":"' + b"a" * 40 + b'"}\n'          # 49 bytes
    for _ in range(5):
        b.write(line)
    b.write(line * 3)
    files = sorted(os.listdir(p.parent))
    total = b"".join(open(p.parent / f, "rb").read() for f in files)
    assert total.count(b"\n") == 8
    assert all(os.path.getsize(p.parent / f) <= 100 for f in files)
    assert b.rotations >= 3
    b.day = "1999-01-01"                              # the UTC day changed
    before = b.rotations
    b.write(line)
    assert b.rotations == before + 1 and os.path.getsize(p) == len(line)
    b.close()


def test_throughput_smoke(tmp_path):
    """Enqueue -> JSONL on disk at a useful rate (the real number is in perf/bench_log.py)."""
    cfg = make_cfg(tmp_path, console=Console(enabled=False), batch_size=4096)

    async def main():
        ls = clog.setup(cfg)
        await ls.start()
        lg = clog.get_logger("t.tp", ["t"])
        n = 200_000
        t0 = time.perf_counter()
        for i in range(n):
            lg.info("order sent", sym="BTC/USDT", px=1.5, i=i)
            if i & 4095 == 4095:
                ls.flush()
        ls.flush()
        dt = time.perf_counter() - t0
        await ls.stop()
        return n / dt

    rate = run(main())
    assert sum(1 for _ in open(cfg.file.path, "rb")) >= 200_000
    assert rate > 100_000
