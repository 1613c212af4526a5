"""The log system: ring + flusher task + backends, built from the ``log`` config section.

Life cycle (the node calls these): ``setup(cfg.log)`` -> ``await start()`` early -> ...
-> ``await stop()`` last (drains everything the ring accepted, then closes the ring and the files).
``reconfigure(cfg.log)`` applies a SIGHUP reload of the reloadable settings (levels, flush interval,
batch size, redact keys).
"""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Optional, TextIO

from prometheus_client import CollectorRegistry

from cexnode._core import logring as _lr
from cexnode.config import LogConfig
from cexnode.log.backends import AuditBackend, ConsoleBackend, JsonlFileBackend, PrometheusBackend
from cexnode.log.bridge import StdlibBridge

__all__ = ["LogSystem"]


class LogSystem:
    """Owns the active :class:`LogRing`, the flusher task and the backends.

    Parameters
    ----------
    cfg
        The ``log`` config section (``level``, ``ring_capacity``, ``flush_interval_ms``, ``batch_size``,
        ``loggers``, ``console``, ``file``, ``audit``, ``redact_keys``).
    registry
        prometheus_client ``CollectorRegistry`` for metric()/counter()/timer() records (a private one
        when None; pass the node's, see ``cexnode.metrics.NodeMetrics.registry``).
    console_stream
        Text stream for the console backend (default: ``sys.stderr`` at write time).
    take_over
        stdlib loggers whose own handlers are set aside while the bridge is installed (the node's
        bootstrap handler lives on ``cexnode``); restored by ``stop()``.
    """

    def __init__(self, cfg: LogConfig, *, registry: Optional[CollectorRegistry] = None,
                 console_stream: Optional[TextIO] = None, take_over: tuple = ("cexnode",),
                 bridge_stdlib: bool = True) -> None:
        self.cfg = cfg
        self.ring = _lr.LogRing(int(cfg.ring_capacity))
        self.console: Optional[ConsoleBackend] = None
        if cfg.console.enabled:
            self.console = ConsoleBackend(_lr.level_value(cfg.console.level), cfg.console.color, console_stream)
            self.console.audit = bool(getattr(cfg.console, "audit", True))
        self.file: Optional[JsonlFileBackend] = None
        if cfg.file.enabled:
            self.file = JsonlFileBackend(cfg.file.path, _lr.level_value(cfg.file.level), cfg.file.max_bytes,
                                         cfg.file.rotate_daily)
        self.audit = AuditBackend(cfg.audit.path, cfg.audit.fsync)
        self.prometheus = PrometheusBackend(registry)
        self.registry = self.prometheus.registry
        self.bridge = StdlibBridge(take_over) if bridge_stdlib else None
        self._interval = max(int(cfg.flush_interval_ms), 1) / 1000.0
        self._batch = max(int(cfg.batch_size), 1)
        self._task: Optional[asyncio.Task] = None
        self.started = False
        self.flushed = 0            # records dispatched to the backends
        self.backend_errors = 0
        self.last_flush_ns = 0
        self._apply_levels(cfg)

    # -- config ------------------------------------------------------------------------------------
    def _apply_levels(self, cfg: LogConfig) -> None:
        _lr.set_levels(cfg.level, dict(cfg.loggers or {}))
        _lr.set_redact_keys(list(cfg.redact_keys or ()))

    def _min_level(self, cfg: LogConfig) -> int:
        levels = [_lr.level_value(cfg.level)] + [_lr.level_value(v) for v in (cfg.loggers or {}).values()]
        return min(levels)

    def reconfigure(self, cfg: LogConfig) -> None:
        """Apply reloadable settings: levels (global, per-logger, per-backend), flush interval,
        batch size, redact keys. Backend enablement, paths and the ring size need a restart."""
        self._apply_levels(cfg)
        if self.console is not None:
            self.console.level = _lr.level_value(cfg.console.level)
            self.console.audit = bool(getattr(cfg.console, "audit", True))
        if self.file is not None:
            self.file.level = _lr.level_value(cfg.file.level)
        self._interval = max(int(cfg.flush_interval_ms), 1) / 1000.0
        self._batch = max(int(cfg.batch_size), 1)
        if self.bridge is not None:
            self.bridge.set_min_level(self._min_level(cfg))
        self.cfg = cfg

    # -- life cycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the files, make this ring the active one (records logged before start move over),
        install the audit writer and the stdlib bridge, start the flusher task."""
        if self.started:
            return
        if self.file is not None:
            self.file.open()
        self.audit.open()
        _lr.activate_ring(self.ring)
        _lr.set_audit_sink(self.audit.write_event)
        if self.bridge is not None:
            self.bridge.install(self._min_level(self.cfg))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cexnode-log-flusher")
        self.started = True

    async def stop(self) -> None:
        """Stop the flusher, drain every record the ring accepted to the backends, close everything.

        After stop the ring refuses records (counted in ``ring.rejected``); stdlib logging goes back
        to the handlers it had before ``start``."""
        if not self.started:
            return
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self.bridge is not None:
            self.bridge.uninstall()
        self.flush()
        self.ring.close()
        self.flush()                 # a drop report appended by the last drain, if any
        _lr.set_audit_sink(None)
        for b in self._backends():
            try:
                b.close()
            except Exception as e:   # pragma: no cover - close errors only reported
                self._report(b, e)
        try:
            self.audit.close()          # writes what it held in memory, if it can (reports otherwise)
        except OSError as e:            # close(2) itself: reported, never raised to the node's stop
            self._report(self.audit, e)
        self.started = False

    # -- flushing ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            while self._flush_batch() >= self._batch:
                await asyncio.sleep(0)        # a backlog: let the loop run between batches
            self.audit.after_flush()

    def flush(self) -> int:
        """Synchronously drain the ring completely; returns the number of records dispatched."""
        total = 0
        while True:
            n = self._flush_batch()
            total += n
            if n == 0:
                break
        self.audit.after_flush()
        return total

    def _backends(self) -> list:
        return [b for b in (self.console, self.file) if b is not None]

    def _flush_batch(self) -> int:
        batch = self.ring.drain(self._batch)
        n = batch.n
        if n == 0:
            return 0
        _mask, max_level, metric_idx = batch.summary()
        for b in (self.file, self.console, self.audit):
            if b is None:
                continue
            try:
                b.handle(batch, max_level)
            except Exception as e:
                self._report(b, e)
        if metric_idx:
            try:
                self.prometheus.handle_metrics(batch, metric_idx)
            except Exception as e:   # pragma: no cover - apply() already guards
                self._report(self.prometheus, e)
        self.flushed += n
        self.last_flush_ns = time.monotonic_ns()
        return n

    def _report(self, backend: Any, exc: BaseException) -> None:
        # Never through the ring (a broken backend would loop); first error and every 1000th.
        self.backend_errors += 1
        backend.errors = getattr(backend, "errors", 0) + 1
        path = getattr(backend, "path", None)
        if path and isinstance(exc, OSError):
            # a file that cannot be written (disk full): one line, which file, the errno; the run
            # then ends with exit code 1 (write_failures)
            if backend.errors == 1:
                try:
                    sys.__stderr__.write("cexnode: ERROR log %s %s cannot be written ([Errno %s] %s)\n"
                                         % (backend.name, path, exc.errno, exc.strerror or exc))
                except Exception:
                    pass
            return
        if backend.errors == 1 or backend.errors % 1000 == 0:
            try:
                sys.__stderr__.write("cexnode.log: %s backend error #%d: %s: %s\n"
                                     % (backend.name, backend.errors, type(exc).__name__, exc))
            except Exception:
                pass

    # -- introspection -----------------------------------------------------------------------------
    @property
    def write_failures(self) -> int:
        """Writes (and syncs) of the audit file or the log file that failed during this run."""
        n = self.audit.failures
        if self.file is not None:
            n += self.file.errors
        return n

    def stats(self) -> dict:
        s = self.ring.stats()
        s.update(flushed=self.flushed, backend_errors=self.backend_errors, audit_written=self.audit.written,
                 prometheus_errors=self.prometheus.errors)
        return s
