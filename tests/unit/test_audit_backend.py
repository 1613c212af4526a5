"""AuditBackend: seq unique and increasing over the file across runs (restarts append to the same
file), torn last lines sealed at open, and writes that fail (disk full) failing closed: nothing
torn left behind, one error line, the records held in memory and written in order once the file
takes writes again."""
from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
import textwrap
import types

import orjson
import pytest

from cexnode.log.backends import AuditBackend, AuditWriteError

ROOT = pathlib.Path(__file__).resolve().parents[2]
LG = types.SimpleNamespace(name="execution.test", tags=("execution", "trading"), context=None)


def _run(path, events, fsync="never"):
    """One run of the node's audit backend on ``path``: open, write ``events``, close; the seqs."""
    b = AuditBackend(str(path), fsync=fsync)
    b.open()
    try:
        return b, [b.write_event(LG, ev, {"i": i}) for i, ev in enumerate(events)]
    finally:
        b.close()


def _lines(path):
    return path.read_bytes().split(b"\n")


def test_seq_continues_across_runs_on_the_same_file(tmp_path):
    """A restart appends to the same audit file: its records continue the seq (never 1 again) and
    carry their run's id; log-record copies after the last event (more than one read chunk, some
    with a field named seq) do not confuse where it continues from."""
    path = tmp_path / "audit.jsonl"
    b1, s1 = _run(path, ["order_ack"] * 3)
    with open(path, "ab") as f:           # what the flusher copies of trading log records looks like
        for i in range(3000):
            f.write(orjson.dumps({"ts": i, "level": "info", "logger": "execution.executor", "msg": "x", "seq": 10**6})
                    + b"\n")
    b2, s2 = _run(path, ["order_ack"] * 2)
    b3, s3 = _run(path, ["order_ack"])
    assert (s1, s2, s3) == ([1, 2, 3], [4, 5], [6])
    ev = [orjson.loads(x) for x in _lines(path) if x and b'"event"' in x]
    assert [e["seq"] for e in ev] == [1, 2, 3, 4, 5, 6]
    runs = [e["run"] for e in ev]
    assert runs[:3] == [b1.run] * 3 and runs[3:5] == [b2.run] * 2 and runs[5:] == [b3.run]
    assert len({b1.run, b2.run, b3.run}) == 3 and all(e["pid"] == os.getpid() for e in ev)


@pytest.mark.parametrize("cut", ["after_seq", "before_seq"])
def test_torn_last_line_is_sealed_and_the_next_records_parse(tmp_path, cut):
    """kill -9 in the middle of a write leaves the last line incomplete: the next open seals it with
    a newline, the records after it parse, and a seq that made it into the torn line is not given
    again (which record a seq names stays unambiguous)."""
    path = tmp_path / "audit.jsonl"
    _run(path, ["a", "b", "c"])
    raw = path.read_bytes()
    last = raw.rstrip(b"\n").rsplit(b"\n", 1)[1]
    keep = last.index(b'"run"') if cut == "after_seq" else last.index(b'"seq"') - 3
    path.write_bytes(raw[: len(raw) - len(last) - 1 + keep])        # the last record cut mid-line
    b, seqs = _run(path, ["d", "e"])
    assert b.sealed == 1
    lines = _lines(path)
    assert lines[-1] == b"" and lines[2] == last[:keep]             # the torn part alone on its line
    after = [orjson.loads(x) for x in lines[3:-1]]
    assert [e["event"] for e in after] == ["d", "e"]
    assert seqs == ([4, 5] if cut == "after_seq" else [3, 4])
    assert [e["seq"] for e in after] == seqs


def test_disk_full_fails_closed_with_one_line_and_dumps_what_it_held(capfd):
    """/dev/full: every write fails with ENOSPC. write_event raises AuditWriteError (path, errno,
    seq), one error line says so however many writes fail, nothing is raised by the flusher's
    copies or by close(), and what could never be written is on stderr at close."""
    b = AuditBackend("/dev/full", fsync="always")
    b.open()
    errs = []
    for i in range(3):
        with pytest.raises(AuditWriteError) as ei:
            b.write_event(LG, "order_ack", {"i": i})
        errs.append(ei.value)
    assert [e.errno for e in errs] == [errno.ENOSPC] * 3 and [e.seq for e in errs] == [1, 2, 3]
    assert "/dev/full" in str(errs[0]) and isinstance(errs[0], OSError)
    assert b.failures == 3 and len(b.pending) == 3
    b.close()
    err = capfd.readouterr().err.splitlines()
    errors = [ln for ln in err if "ERROR" in ln]
    assert len(errors) == 2 and "/dev/full" in errors[0] and "[Errno 28]" in errors[0]
    assert "still cannot be written at stop" in errors[1] and "3 record(s) (seq 1-3)" in errors[1]
    dumped = [orjson.loads(ln[len("audit-unwritten: "):]) for ln in err if ln.startswith("audit-unwritten: ")]
    assert [(d["seq"], d["event"], d["data"]["i"]) for d in dumped] == [(1, "order_ack", 0), (2, "order_ack", 1),
                                                                          (3, "order_ack", 2)]
    assert "Traceback" not in "\n".join(err)


CHILD = textwrap.dedent("""
    import os, resource, sys, types
    from cexnode.log.backends import AuditBackend, AuditWriteError
    lg = types.SimpleNamespace(name="execution.test", tags=("execution", "trading"), context=None)
    b = AuditBackend(sys.argv[1], fsync="always")
    b.open()
    for i in range(3):
        b.write_event(lg, "before", {"i": i})
    size = os.path.getsize(sys.argv[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, hard))      # the next line fits only in part
    failed = []
    for i in range(3):
        try:
            b.write_event(lg, "during", {"i": i, "pad": "x" * 200})
        except AuditWriteError as e:
            failed.append((e.seq, e.errno))
    print("failed", failed, os.path.getsize(sys.argv[1]) == size, len(b.pending))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))           # space is back
    print("seq", b.write_event(lg, "after", {"i": 0}), len(b.pending), b.failures)
    b.close()
""")


def test_partial_write_is_undone_and_held_records_are_written_when_space_is_back(tmp_path):
    """RLIMIT_FSIZE (a child process; Python ignores SIGXFSZ) cuts a write short, then fails the
    rest with EFBIG: what went in is truncated away (no torn line), the records are held; once
    writes succeed again the held ones go in first, in seq order, then the new one."""
    path = tmp_path / "audit.jsonl"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "failed [(4, %d), (5, %d), (6, %d)] True 3" % ((errno.EFBIG,) * 3)
    assert out[1] == "seq 7 0 3"
    err = r.stderr.splitlines()
    assert len([ln for ln in err if "ERROR" in ln]) == 1 and "[Errno %d]" % errno.EFBIG in err[0]
    assert str(path) in err[0]
    assert "can be written again: 4 record(s) held in memory written (seq 4-7)" in r.stderr
    recs = [orjson.loads(x) for x in path.read_bytes().splitlines()]       # every line parses
    assert [(e["seq"], e["event"]) for e in recs] == [(1, "before"), (2, "before"), (3, "before"), (4, "during"),
                                                     (5, "during"), (6, "during"), (7, "after")]
    assert path.read_bytes().endswith(b"\n")


def test_log_file_on_a_full_disk_is_one_line_and_a_failed_run(tmp_path, capfd):
    """The JSON Lines log file cannot be written (/dev/full, ENOSPC): nothing is raised to the code
    that logs nor by the flusher, one line names the file and the errno however many writes fail,
    and the run counts as failed (``write_failures``: the node exits 1); the audit file is unaffected."""
    import asyncio

    from cexnode import log as clog

    ns = types.SimpleNamespace
    cfg = ns(level="info", ring_capacity=4096, flush_interval_ms=1, batch_size=64, loggers={}, redact_keys=[],
             console=ns(enabled=False, level="info", color="never"),
             file=ns(enabled=True, path="/dev/full", level="debug", max_bytes=1 << 20, rotate_daily=False),
             audit=ns(path=str(tmp_path / "audit.jsonl"), fsync="never"))

    async def main():
        ls = clog.setup(cfg, bridge_stdlib=False)
        await ls.start()
        lg = clog.get_logger("t.diskfull", ["t"])
        try:
            for i in range(200):
                lg.info("line", i=i)
                if i % 20 == 0:
                    await asyncio.sleep(0.005)          # the flusher runs (and fails) many times
            seq = lg.audit("order_ack", {"i": 1})
        finally:
            await ls.stop()
        return ls.write_failures, seq

    failures, seq = asyncio.run(asyncio.wait_for(main(), 20))
    err = capfd.readouterr().err
    lines = [ln for ln in err.splitlines() if "ERROR" in ln]
    assert failures > 1 and len(lines) == 1, err
    assert "/dev/full" in lines[0] and "[Errno 28]" in lines[0] and "Traceback" not in err
    assert [orjson.loads(x)["seq"] for x in (tmp_path / "audit.jsonl").read_bytes().splitlines()] == [seq]


FILE_CHILD = textwrap.dedent("""
    import os, resource, sys
    from cexnode.log.backends import JsonlFileBackend
    b = JsonlFileBackend(sys.argv[1], rotate_daily=False)
    b.open()
    b.write(b'{"i":0}\\n')
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(sys.argv[1]) + 5, hard))
    try:
        b.write(b'{"i":1,"pad":"xxxxxxxxxxxxxxxx"}\\n')
    except OSError as e:
        print("failed", e.errno, os.path.getsize(sys.argv[1]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    b.write(b'{"i":2}\\n')
    b.close()
""")


def test_log_file_write_cut_short_leaves_no_part_of_a_line(tmp_path):
    """The JSONL log file past RLIMIT_FSIZE (EFBIG after a short write): the part that went in is
    truncated away, so the next line written starts on a line of its own."""
    path = tmp_path / "node.jsonl"
    script = tmp_path / "child.py"
    script.write_text(FILE_CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["failed", str(errno.EFBIG), "8"]
    assert [orjson.loads(x)["i"] for x in path.read_bytes().splitlines()] == [0, 2]
