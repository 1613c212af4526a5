"""Audit durability: a real subprocess writes audit events and is killed with SIGKILL mid-stream;
every event it reported as written (after ``audit()`` returned) must be in the audit file."""
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import orjson
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import asyncio, sys, types
    from cexnode import log as clog

    audit_path, fsync, sync = sys.argv[1], sys.argv[2], sys.argv[3]
    sync = True if sync == "now" else sync
    ns = types.SimpleNamespace
    cfg = ns(level="info", ring_capacity=4096, flush_interval_ms=5, batch_size=1024, loggers={}, redact_keys=[],
             console=ns(enabled=False, level="info", color="never"),
             file=ns(enabled=False, path="", level="debug", max_bytes=1 << 20, rotate_daily=False),
             audit=ns(path=audit_path, fsync=fsync))

    async def main():
        ls = clog.setup(cfg)
        await ls.start()
        lg = clog.get_logger("execution.audit_test", ["execution", "trading"])
        i = 0
        while True:
            i += 1
            seq = lg.audit("order_ack", {"order_id": "o%d" % i, "i": i, "api_key": "LEAKED"}, sync)
            lg.info("order acked", i=i)            # ring traffic alongside (trading tag -> audit too)
            sys.stdout.write("%d %d\\n" % (seq, i))
            sys.stdout.flush()
            if i % 50 == 0:
                await asyncio.sleep(0)

    asyncio.run(main())
""")


@pytest.mark.parametrize("fsync,sync", [("always", "now"), ("never", "now"), ("always", "behind"), ("batch", "now")])
def test_reported_audit_events_survive_sigkill(tmp_path, fsync, sync):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    audit = tmp_path / "audit" / "audit.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), str(audit), fsync, sync], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
    reported = []
    deadline = time.monotonic() + 30
    try:
        while len(reported) < 400 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported.append(tuple(int(x) for x in line.split()))
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    for line in rest.splitlines():           # reported before the kill, still in the pipe
        parts = line.split()
        if len(parts) == 2:
            reported.append((int(parts[0]), int(parts[1])))
    assert len(reported) >= 400, err.decode()[-2000:]

    raw = audit.read_bytes()
    assert b"LEAKED" not in raw
    events = {}
    for ln in raw.splitlines():
        rec = orjson.loads(ln)                # every line complete: one write(2) per event
        if rec.get("event") == "order_ack":
            events[rec["seq"]] = rec
    for seq, i in reported:
        assert seq in events, "reported audit event seq=%d missing after SIGKILL" % seq
        assert events[seq]["data"]["i"] == i and events[seq]["data"]["order_id"] == "o%d" % i
        assert events[seq]["data"]["api_key"] == "***"
    seqs = sorted(events)
    assert seqs == list(range(1, len(seqs) + 1))       # no holes
