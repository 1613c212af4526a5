"""Log backends: console, JSON Lines file, audit file, Prometheus.

Every backend receives the same :class:`~cexnode._core.logring.LogBatch`; the batch encodes each
record's JSON line once (secrets already masked) and the JSONL backends write slices of it. The
console formats its own human-readable lines, only for the records at or above its level.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import os
import re
import sys
import threading
import time
from typing import Any, Optional, TextIO

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cexnode._core import logring as _lr

__all__ = ["ConsoleBackend", "JsonlFileBackend", "AuditBackend", "AuditWriteError", "PrometheusBackend",
           "TIMER_BUCKETS_US"]

_TEXT_KINDS = (_lr.KIND_LOG, _lr.KIND_EVENT, _lr.KIND_AUDIT, _lr.KIND_DROPS)
_LEVEL_LABEL = {10: "DEBUG", 20: "INFO", 30: "WARN", 40: "ERROR", 50: "CRIT"}
_COLOURS = {10: "\x1b[2m", 20: "\x1b[32m", 30: "\x1b[33m", 40: "\x1b[31m", 50: "\x1b[1;31m"}
_RESET = "\x1b[0m"


def _level_label(level: int) -> str:
    return _LEVEL_LABEL.get(level - level % 10 if level < 50 else 50, str(level))


def _fmt_value(v: Any) -> str:
    if isinstance(v, str):
        return v if v and " " not in v and "=" not in v else repr(v)
    if isinstance(v, (dict, list)):
        return orjson.dumps(v, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return str(v)


class ConsoleBackend:
    """Human-readable lines (UTC time, level, logger, message, key=value fields) on a text stream.

    ``color``: ``auto`` (only when the stream is a TTY), ``always`` or ``never``."""

    name = "console"

    def __init__(self, level: int = _lr.INFO, color: str = "auto", stream: Optional[TextIO] = None):
        self.level = level
        self.audit = True          # show audit records below WARNING (log.console.audit)
        self.stream = stream
        self.color_mode = color
        self.errors = 0

    def _colour(self, stream: TextIO) -> bool:
        if self.color_mode == "always":
            return True
        if self.color_mode == "never":
            return False
        try:
            return stream.isatty()
        except Exception:
            return False

    def format(self, rec: tuple, colour: bool = False) -> str:
        ts_ns, level, kind, logger_id, msg, fields = rec
        name, _tags = _lr.logger_info(logger_id)
        secs, ns = divmod(ts_ns, 1_000_000_000)
        t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%06dZ" % (ns // 1000)
        lab = "%-5s" % _level_label(level)
        if colour:
            lab = _COLOURS.get(level - level % 10 if level < 50 else 50, "") + lab + _RESET
        parts = [t, lab, name + ":", str(msg)]
        if kind == _lr.KIND_AUDIT:
            parts.append("[audit]")
        if fields:
            red = _lr.redact(fields)
            parts.extend("%s=%s" % (k, _fmt_value(v)) for k, v in red.items())
        return " ".join(parts)

    def handle(self, batch: _lr.LogBatch, max_level: int) -> None:
        if max_level < self.level:
            return
        stream = self.stream if self.stream is not None else sys.stderr
        colour = self._colour(stream)
        lines = []
        for i in range(batch.n):
            if batch.kind(i) in _TEXT_KINDS and batch.level(i) >= self.level and (
                    self.audit or batch.kind(i) != _lr.KIND_AUDIT or batch.level(i) >= _lr.WARNING):
                lines.append(self.format(batch.record(i), colour))
        if lines:
            stream.write("\n".join(lines) + "\n")
            stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.flush()
            except Exception:
                pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class _PartialWrite(OSError):
    """os.write failed after ``done`` bytes of the data had been written."""

    def __init__(self, err: OSError, done: int):
        super().__init__(err.errno, err.strerror)
        self.done = done


def _write_counted(fd: int, data: bytes) -> None:
    """:func:`_write_all` that says, when a write fails, how much of ``data`` went in before."""
    view = memoryview(data)
    done = 0
    while view:
        try:
            n = os.write(fd, view)
        except OSError as e:
            raise _PartialWrite(e, done) from e
        done += n
        view = view[n:]


class AuditWriteError(OSError):
    """The audit file cannot be written (disk full, I/O error, file size limit). ``seq`` is the
    sequence number of the record that could not be written; the record is held in memory and
    written (with that seq) as soon as the file takes writes again (:class:`AuditBackend`)."""

    def __init__(self, path: str, err: OSError, seq: int = 0, what: str = "write"):
        super().__init__(err.errno, "audit log %s: %s failed: %s" % (path, what, err.strerror or err))
        self.path = path
        self.seq = seq


_SEQ_LINE_RE = re.compile(rb'^\{"ts":-?\d+,"seq":(\d+)', re.MULTILINE)   # an audit event's line
_TAIL_CHUNK = 1 << 16


def _utc_day(ts: Optional[float] = None) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() if ts is None else ts))


class JsonlFileBackend:
    """One JSON object per line (orjson-compatible; secrets masked), rotated by size and at UTC midnight.

    A rotated file is renamed ``<path>.<UTC yyyymmdd-HHMMSS>[.n]``; rotation happens between lines."""

    name = "file"

    def __init__(self, path: str, level: int = _lr.DEBUG, max_bytes: int = 256 << 20, rotate_daily: bool = True):
        self.path = os.path.abspath(path)
        self.level = level
        self.max_bytes = max(int(max_bytes), 1)
        self.rotate_daily = rotate_daily
        self.fd = -1
        self.size = 0
        self.day = ""
        self.rotations = 0
        self.errors = 0

    def open(self) -> None:
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        st = os.fstat(self.fd)
        self.size = st.st_size
        # A file left over from an earlier day is rotated at the first write of today.
        self.day = _utc_day(st.st_mtime) if st.st_size else _utc_day()

    def _rotated_name(self) -> str:
        base = "%s.%s" % (self.path, time.strftime("%Y%m%d-%H%M%S", time.gmtime()))
        name, n = base, 1
        while os.path.exists(name):
            name = "%s.%d" % (base, n)
            n += 1
        return name

    def rotate(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            os.rename(self.path, self._rotated_name())
            self.rotations += 1
        self.open()
        self.day = _utc_day()

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.fd < 0:
            self.open()
        if self.rotate_daily and self.size and _utc_day() != self.day:
            self.rotate()
        while data:
            room = self.max_bytes - self.size
            if len(data) <= room:
                self._put(data)
                self.size += len(data)
                return
            cut = data.rfind(b"\n", 0, room) + 1 if room > 0 else 0
            if cut <= 0:
                if self.size:
                    self.rotate()
                    continue
                cut = data.find(b"\n") + 1 or len(data)     # one line longer than max_bytes
            self._put(data[:cut])
            self.size += cut
            data = data[cut:]
            self.rotate()

    def _put(self, data: bytes) -> None:
        """Write ``data``; when the write fails (disk full), what went in is truncated away so that
        the file never holds part of a line (the flusher reports the error)."""
        try:
            _write_counted(self.fd, data)
        except _PartialWrite as e:
            if e.done:
                try:
                    os.ftruncate(self.fd, os.fstat(self.fd).st_size - e.done)
                except OSError:
                    pass
            raise

    def handle(self, batch: _lr.LogBatch, max_level: int) -> None:
        if max_level < self.level:
            return
        self.write(batch.jsonl(self.level, False))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class AuditBackend:
    """The audit trail: its own JSON Lines file.

    ``write_event`` runs on the caller's path (``Logger.audit``): the line is written with one
    ``write(2)`` on an O_APPEND descriptor — in the kernel before the call returns, so it survives
    ``kill -9`` — and, with ``fsync: always``, made durable with ``fdatasync`` before returning
    (power loss). ``batch``: synced once per flush; ``never``: the OS decides.
    Records of loggers tagged ``trading`` are appended by the flusher as well.

    Syncs that need not block the caller — ``batch`` flushes and records written with
    ``sync="behind"`` (the executor's pre-send record: its orders leave while it is being synced)
    — run on one syncer thread (fdatasync releases the GIL), never on the event loop.
    ``syncs`` / ``syncs_behind`` count them; ``close()`` waits for a pending one.

    Sequence numbers: ``seq`` is unique and increasing over the whole file, across runs. ``open()``
    continues from the last record's seq (a restart after ``kill -9`` appends to the same file; the
    seq of a record cut short by the kill is not reused either), and every record carries ``run``,
    an id drawn at each ``open()``, and ``pid``: which run wrote it is never ambiguous.

    A write(2) that SIGKILL interrupts can stop at a page boundary: the file then ends with an
    incomplete line, of a record whose write never returned (so never reported as written).
    ``open()`` seals such a line with a newline before appending (``sealed`` = 1), so that it
    stays alone on its line and every later record parses.

    A write that fails (disk full: ENOSPC; EFBIG past RLIMIT_FSIZE; EIO) never leaves part of a
    line behind: what went in is truncated away (or, where the file cannot be truncated, sealed
    with a newline before the next record). The record is held in memory with its seq and
    ``write_event`` raises :class:`AuditWriteError` (the executor halts trading). One line on
    stderr says what failed, on which path, with the errno. The records held (``pending``) are
    written, in seq order and before any newer one, by the next ``write_event``, by the flusher
    every ``retry_s`` and by ``close()``; a line on stderr says when that happened. What still
    cannot be written at ``close()`` is printed on stderr, one record per line (prefixed
    ``audit-unwritten:``), after one line saying so. Copies of ``trading`` log records (not
    audit events) are not held: they are skipped (``skipped``) while the file fails.
    ``failures`` counts failed writes and syncs (the node exits 1 when it is not 0)."""

    name = "audit"
    max_pending = 100_000        # records held in memory while the file fails; later ones are lost (counted)

    def __init__(self, path: str, fsync: str = "always", level: int = _lr.INFO):
        if fsync not in ("always", "batch", "never"):
            raise ValueError("audit fsync must be always|batch|never, got %r" % (fsync,))
        self.path = os.path.abspath(path)
        self.fsync = fsync
        self.level = level          # minimum level of `trading` logger records copied here
        self.fd = -1
        self.seq = 0
        self.run = ""
        self.written = 0
        self.errors = 0
        self._dirty = False
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.syncs = 0                  # fdatasync calls made
        self.syncs_behind = 0           # of which on the syncer thread
        self.sealed = 0                 # 1: open() found the file ending mid-line and sealed it
        self.failures = 0               # failed writes / syncs (the file could not be written)
        self.error: Optional[OSError] = None    # the first failure of the current outage
        self.pending: list = []         # (seq, line) held in memory while the file fails
        self.lost = 0                   # records beyond max_pending while the file failed
        self.skipped = 0                # batches of trading log records not copied while it failed
        self.recovered = 0              # records written late, once the file took writes again
        self.retry_s = 1.0
        self._last_try = 0.0
        self._unsealed = False          # a failed write left part of a line that could not be truncated
        self._want_sync = threading.Condition(threading.Lock())
        self._sync_requested = False
        self._syncer: Optional[threading.Thread] = None
        self._stopping = False

    def open(self) -> None:
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.sealed = 0
        self.run = os.urandom(6).hex()
        self._pid = os.getpid()
        size = os.fstat(self.fd).st_size
        self.seq = 0
        if size:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                torn = f.read(1) != b"\n"
                self.seq = _last_seq(f, size)
            if torn:
                _write_all(self.fd, b"\n")
                self.sealed = 1
                try:
                    sys.__stderr__.write("cexnode.log: audit file %s ended with an incomplete line (a write cut "
                                         "short by a crash); sealed it with a newline\n" % self.path)
                except Exception:
                    pass
        self._stopping = False
        if self.fsync != "never":
            self._syncer = threading.Thread(target=self._sync_loop, name="cexnode-audit-sync", daemon=True)
            self._syncer.start()

    def _sync(self, fd: Optional[int] = None) -> None:
        fd = self.fd if fd is None else fd
        if hasattr(os, "fdatasync"):
            os.fdatasync(fd)
        else:  # pragma: no cover - non-Linux
            os.fsync(fd)
        self.syncs += 1

    def request_sync(self) -> None:
        """Have the syncer thread fdatasync the file soon; returns at once."""
        with self._want_sync:
            self._sync_requested = True
            self._want_sync.notify()

    def _sync_loop(self) -> None:
        while True:
            with self._want_sync:
                while not self._sync_requested and not self._stopping:
                    self._want_sync.wait()
                if not self._sync_requested:
                    return                       # stopping, nothing pending
                self._sync_requested = False
            fd = self.fd
            if fd < 0:
                return
            try:
                self._sync(fd)
                self.syncs_behind += 1
            except OSError as e:                  # reported; the next synchronous sync raises to its caller
                self.errors += 1
                try:
                    sys.__stderr__.write("cexnode.log: audit fdatasync failed: %s\n" % e)
                except Exception:
                    pass

    # -- write failures (all under self._lock) ---------------------------------------------------------
    def _failed(self, err: OSError, what: str) -> None:
        """Count a failure; the first of an outage is reported: one line, path and errno."""
        self.failures += 1
        if self.error is not None:
            return
        self.error = err
        try:
            sys.__stderr__.write("cexnode: ERROR audit log %s cannot be written (%s: [Errno %s] %s): trading "
                                 "halts; records are held in memory and written when it can be written again\n"
                                 % (self.path, what, err.errno, err.strerror or err))
            sys.__stderr__.flush()
        except Exception:
            pass

    def _undo(self, e: "_PartialWrite") -> None:
        """A failed write leaves no part of a line: truncate what went in (ftruncate frees space,
        it works on a full disk); where that fails, seal it before the next write."""
        if e.done <= 0:
            return
        try:
            os.ftruncate(self.fd, os.fstat(self.fd).st_size - e.done)
        except OSError:
            self._unsealed = True

    def _write(self, data: bytes, what: str = "write") -> None:
        if self._unsealed:
            data = b"\n" + data
        try:
            _write_counted(self.fd, data)
        except _PartialWrite as e:
            self._undo(e)
            self._failed(e, what)
            raise
        self._unsealed = False

    def _hold(self, seq: int, line: bytes) -> None:
        if len(self.pending) < self.max_pending:
            self.pending.append((seq, line))
        else:
            self.lost += 1

    def _drain(self) -> None:
        """Write the records held in memory, in order, in one write; raises _PartialWrite."""
        self._last_try = time.monotonic()
        held = self.pending
        self._write(b"".join(line for _seq, line in held), "write")
        self.pending = []
        self.written += len(held)
        self.recovered += len(held)
        self._dirty = True
        try:
            sys.__stderr__.write("cexnode: audit log %s can be written again: %d record(s) held in memory written "
                                 "(seq %d-%d); trading stays halted (risk: audit) until cleared\n"
                                 % (self.path, len(held), held[0][0], held[-1][0]))
        except Exception:
            pass
        self.error = None

    def write_event(self, logger: Any, event: str, data: Any, sync: Any = True) -> int:
        """Write one audit event; returns its sequence number. ``sync="behind"``: the
        fdatasync (``fsync: always``) runs on the syncer thread, asked at the event loop's next step,
        instead of before returning. Raises :class:`AuditWriteError` when the file cannot be
        written (the record is then held in memory: see the class docstring)."""
        with self._lock:
            if self.fd < 0:
                raise RuntimeError("audit log is closed")
            seq = self.seq + 1
            rec = {"ts": _lr.wall_ns(), "seq": seq, "run": self.run, "pid": self._pid, "event": event,
                   "logger": logger.name, "tags": list(logger.tags)}
            if logger.context:
                rec["context"] = _lr.redact(logger.context)
            rec["data"] = _lr.redact(data) if data is not None else None
            line = orjson.dumps(rec, default=_lr_json_default, option=orjson.OPT_NON_STR_KEYS) + b"\n"
            self.seq = seq                       # a seq is never given twice, written or not
            try:
                if self.pending:                 # held records first: the file stays in seq order
                    self._hold(seq, line)
                    self._drain()
                else:
                    try:
                        self._write(line)
                    except _PartialWrite:
                        self._hold(seq, line)
                        raise
                    self.written += 1
            except _PartialWrite as e:
                raise AuditWriteError(self.path, e, seq) from None
            if self.fsync == "always" and sync is True:
                try:
                    self._sync()
                except OSError as e:            # written, but not known to be durable
                    self._failed(e, "fdatasync")
                    raise AuditWriteError(self.path, e, seq, "fdatasync") from None
            else:
                self._dirty = True
        if sync == "behind" and self.fsync == "always":
            # the syncer is woken at the loop's next step: the caller (the executor: the record its
            # orders go out with) writes them first, without a futex wake-up in between; a later
            # sync=True record syncs the whole file itself in any case
            try:
                asyncio.get_running_loop().call_soon(self.request_sync)
            except RuntimeError:                 # no loop in this thread
                self.request_sync()
        return seq

    def handle(self, batch: _lr.LogBatch, max_level: int) -> None:
        data = batch.jsonl(self.level, True)
        if data:
            with self._lock:
                if self.fd < 0 or self.pending:
                    self.skipped += 1            # copies of log records: not held while the file fails
                    return
                try:
                    self._write(data)
                    self.error = None            # takes writes again (nothing was held)
                    if self.fsync == "always":
                        self._sync()
                    else:
                        self._dirty = True
                except _PartialWrite:
                    self.skipped += 1            # reported by _write
                except OSError as e:
                    self._failed(e, "fdatasync")

    def after_flush(self) -> None:
        if self.pending and time.monotonic() - self._last_try >= self.retry_s:
            with self._lock:
                if self.pending and self.fd >= 0:
                    try:
                        self._drain()
                    except _PartialWrite:
                        pass
        if self.fsync == "batch" and self._dirty and self.fd >= 0:
            self._dirty = False
            self.request_sync()             # off the event loop

    def close(self) -> None:
        t = self._syncer
        if t is not None:
            with self._want_sync:
                self._stopping = True
                self._want_sync.notify()
            t.join()                        # a pending sync finishes first
            self._syncer = None
        with self._lock:
            if self.fd >= 0:
                if self.pending:
                    try:
                        self._drain()
                    except _PartialWrite:
                        self._dump_pending()
                if self.fsync != "never":
                    try:
                        self._sync()
                    except OSError as e:
                        self._failed(e, "fdatasync")
                os.close(self.fd)
                self.fd = -1
            if self.lost:
                try:
                    sys.__stderr__.write("cexnode: ERROR audit log %s: %d record(s) beyond the %d held in memory "
                                         "while it could not be written are lost\n"
                                         % (self.path, self.lost, self.max_pending))
                except Exception:
                    pass

    def _dump_pending(self) -> None:
        """At close, the file still fails: the held records go to stderr (the journal), not nowhere."""
        held, self.pending = self.pending, []
        err = self.error
        try:
            out = sys.__stderr__
            out.write("cexnode: ERROR audit log %s still cannot be written at stop (%s): %d record(s) (seq %d-%d) "
                      "follow on stderr, one per line, prefixed 'audit-unwritten: '\n"
                      % (self.path, err.strerror if err is not None else "?", len(held), held[0][0], held[-1][0]))
            for _seq, line in held:
                out.write("audit-unwritten: " + line.decode("utf-8", "replace"))
            out.flush()
        except Exception:
            pass


def _last_seq(f: Any, size: int) -> int:
    """The seq of the last audit event in the file open as ``f`` (``size`` bytes): read backwards
    in chunks (copies of log records can follow the last event); a record cut short counts too,
    when its seq made it in. 0 when there is none."""
    end, tail = size, b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        f.seek(start)
        buf = f.read(end - start) + tail
        if start > 0:                      # the chunk starts mid-line: that part goes with the next one
            nl = buf.find(b"\n")
            if nl < 0:
                tail, end = buf, start
                continue
            tail, buf = buf[:nl + 1], buf[nl + 1:]
        last = None
        for last in _SEQ_LINE_RE.finditer(buf):
            pass
        if last is not None:
            return int(last.group(1))
        end = start
    return 0


def _lr_json_default(o: Any) -> Any:
    if _lr.is_secret(o):
        return _lr.SECRET_MASK
    return str(o)


TIMER_BUCKETS_US = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000,
                    100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000)
_NAME_RE = re.compile(r"[^a-zA-Z0-9_:]")


def metric_name(name: str, prefix: str = "cexnode_") -> str:
    n = _NAME_RE.sub("_", str(name)).strip("_") or "unnamed"
    if n[0].isdigit():
        n = "_" + n
    return n if n.startswith(prefix) else prefix + n


class PrometheusBackend:
    """metric() -> Gauge, counter() -> Counter, timer() -> Histogram in μs, on the given registry.

    Label names are the (sorted) keys of the record's tags; a name reused with other label names or
    another type is counted in ``errors`` and skipped."""

    name = "prometheus"

    def __init__(self, registry: Optional[CollectorRegistry] = None):
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._families: dict = {}
        self.errors = 0
        self.applied = 0

    def _family(self, kind: int, name: str, labelnames: tuple) -> Gauge | Counter | Histogram:
        key = (kind, name, labelnames)
        fam = self._families.get(key)
        if fam is None:
            if kind == _lr.KIND_METRIC:
                fam = Gauge(metric_name(name), "metric() values of %s" % name, labelnames, registry=self.registry)
            elif kind == _lr.KIND_COUNTER:
                fam = Counter(metric_name(name), "counter() increments of %s" % name, labelnames,
                              registry=self.registry)
            else:
                fam = Histogram(metric_name(name) + "_duration_microseconds", "timer() durations of %s (μs)" % name,
                                labelnames, buckets=TIMER_BUCKETS_US, registry=self.registry)
            self._families[key] = fam
        return fam

    def apply(self, kind: int, name: str, value: Any, tags: Optional[dict]) -> None:
        labelnames = tuple(sorted(tags)) if tags else ()
        if tags:
            tags = _lr.redact(tags)
        try:
            fam = self._family(kind, str(name), labelnames)
            m = fam.labels(**{k: str(tags[k]) for k in labelnames}) if labelnames else fam
            if kind == _lr.KIND_METRIC:
                m.set(value)
            elif kind == _lr.KIND_COUNTER:
                m.inc(value)
            else:
                m.observe(value / 1000.0)
            self.applied += 1
        except (ValueError, TypeError):
            self.errors += 1

    def handle_metrics(self, batch: _lr.LogBatch, indices: list) -> None:
        for i in indices:
            self.apply(*batch.metric(i))

    def close(self) -> None:
        pass
