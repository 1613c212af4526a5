"""Audit durability: a real subprocess writes audit events and is killed with SIGKILL mid-stream;
every event it reported as written (after ``audit()`` returned) must be in the audit file."""
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
import types

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
    lines = raw.split(b"\n")
    # SIGKILL can cut the write in progress at a page boundary: at most the last line, with no
    # newline, is incomplete (its write never returned: not reported)
    torn = lines.pop()
    events = {}
    for ln in lines:
        rec = orjson.loads(ln)                # every other line complete: one write(2) per event
        if rec.get("event") == "order_ack":
            events[rec["seq"]] = rec
    for seq, i in reported:
        assert seq in events, "reported audit event seq=%d missing after SIGKILL" % seq
        assert events[seq]["data"]["i"] == i and events[seq]["data"]["order_id"] == "o%d" % i
        assert events[seq]["data"]["api_key"] == "***"
    seqs = sorted(events)
    assert seqs == list(range(1, len(seqs) + 1))       # no holes

    # the node restarted on the same file: a torn line is sealed off, the new records all parse
    from cexnode.log.backends import AuditBackend
    b = AuditBackend(str(audit), fsync="never")
    b.open()
    try:
        seq = b.write_event(types.SimpleNamespace(name="restart", tags=(), context=None), "restarted", {"ok": 1})
    finally:
        b.close()
    assert b.sealed == (1 if torn else 0)
    after = audit.read_bytes()[len(raw):].split(b"\n")
    assert after[-1] == b"" and (after[0] == b"" if torn else True)
    restarted = orjson.loads(after[-2])
    assert restarted["event"] == "restarted" and restarted["seq"] == seq
    # seq stays unique over the file across runs (it continues; the run id tells the runs apart)
    all_seqs = [orjson.loads(ln)["seq"] for ln in audit.read_bytes().split(b"\n")
                if ln.startswith(b'{"ts":') and ln.endswith(b"}") and b'"event"' in ln]
    assert len(all_seqs) == len(set(all_seqs)) and all_seqs == sorted(all_seqs) and seq > max(seqs)
    assert restarted["run"] != events[seqs[-1]]["run"]


def test_a_torn_last_line_is_sealed_on_open(tmp_path):
    """What a SIGKILL mid-write leaves (an incomplete last line) is sealed with a newline when the
    audit file is opened again; a complete file is left as it is."""
    from cexnode.log.backends import AuditBackend
    lg = types.SimpleNamespace(name="t", tags=(), context=None)
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"ts":1,"seq":1,"event":"a"}\n{"ts":2,"seq":2,"ev')
    b = AuditBackend(str(path), fsync="never")
    b.open()
    b.write_event(lg, "b", {"x": 1})
    b.close()
    lines = path.read_bytes().split(b"\n")
    assert b.sealed == 1 and lines[1] == b'{"ts":2,"seq":2,"ev' and lines[-1] == b""
    assert orjson.loads(lines[2])["event"] == "b"
    b2 = AuditBackend(str(path), fsync="never")
    b2.open()
    b2.close()
    assert b2.sealed == 0 and path.read_bytes().count(b"\n") == 3
