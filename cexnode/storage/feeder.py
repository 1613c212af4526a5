"""The node component that keeps the trade database current from the audit file.

Audit events are written by ``AuditBackend.write_event`` on the caller's path (one ``write(2)``),
not through the log ring, so the audit file itself is where they are handed over: one thread
(``cexnode-tradedb``) reads what was appended every ``storage.poll_interval_ms`` and ingests it
(:meth:`TradeDB.catch_up`). The trade path does nothing for it. SQLite runs its statements with
the GIL released; the Python part per record is a JSON parse and a few parameter tuples, and a
backlog (a long audit file at the first start) is read during ``start()``, before any venue is
connected, so that the thread only ever has a few records to take while the node trades.

A failure (disk full, a locked or corrupt database) never leaves the thread and never touches
trading: it is logged as one error line (the first of a kind, then every 100th, and a line when
writing works again), counted (``cexnode_tradedb_errors_total``), and the next poll retries with a
new connection. The audit file stays the source of truth; ``cexnode db rebuild`` rebuilds the
database from it.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Optional

from cexnode.log import get_logger
from cexnode.metrics import SeriesDef
from cexnode.storage.tradedb import TradeDB, db_path

__all__ = ["TradeDBFeeder", "TradeDBComponent"]


class TradeDBFeeder:
    """Reads ``audit_path`` into the database at ``db_path`` on its own thread.

    ``events`` / ``errors`` count the audit events ingested and the failed attempts;
    ``caught_up_ns`` is the wall time of the last attempt that reached the end of the file."""

    def __init__(self, db_path: str, audit_path: str, *, interval_s: float = 0.5, logger: Any = None):
        self.db_path = db_path
        self.audit_path = audit_path
        self.interval_s = interval_s
        self.log = logger if logger is not None else get_logger("storage.tradedb", ["storage"])
        self.events = 0
        self.skipped = 0
        self.errors = 0
        self.caught_up_ns = 0
        self._failing = ""              # the kind of the current run of failures ("" when healthy)
        self._db: Optional[TradeDB] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- one step (any thread) -------------------------------------------------------------------
    def step(self, deadline: Optional[float] = None) -> bool:
        """Ingest what was appended; False (logged, counted) when the database could not be written."""
        try:
            if self._db is None:
                self._db = TradeDB(self.db_path)
            st = self._db.catch_up(self.audit_path, deadline=deadline)
        except Exception as e:
            self.errors += 1
            self._drop_db()
            kind = type(e).__name__
            if kind != self._failing or self.errors % 100 == 0:
                self.log.error("trade database write failed; trading goes on, the audit file keeps every record "
                               "(`cexnode db rebuild` rebuilds the database from it)", db=self.db_path,
                               error="%s: %s" % (kind, str(e)[:200]), failures=self.errors)
            self._failing = kind
            return False
        if self._failing:
            self.log.info("trade database writable again", db=self.db_path, failures=self.errors)
            self._failing = ""
        self.events += st.events
        self.skipped += st.skipped
        if deadline is None or time.monotonic() < deadline:
            self.caught_up_ns = time.time_ns()
        return True

    def _drop_db(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            try:
                db.close()
            except Exception:
                pass

    # -- the thread ------------------------------------------------------------------------------
    def start_thread(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="cexnode-tradedb", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.step()
        self.step()                      # what the last trades wrote before the stop
        self._drop_db()

    def stop_thread(self, timeout_s: float) -> bool:
        """Ask the thread to take the last records and end; False if it did not within the timeout
        (it is a daemon thread: an exit cuts its transaction, which SQLite rolls back)."""
        t = self._thread
        if t is None:
            return True
        self._stop.set()
        t.join(timeout_s)
        if t.is_alive():
            return False
        self._thread = None
        return True


class TradeDBComponent:
    """``storage``: started after the log system and the metrics, before the venues (so stopped
    after the executor has written its last record)."""

    name = "tradedb"

    def __init__(self, node: Any) -> None:
        cfg = node.cfg
        self.feeder = TradeDBFeeder(db_path(cfg), cfg.log.audit.path,
                                    interval_s=cfg.storage.poll_interval_ms / 1000.0)
        self._start_budget_s = cfg.node.start_timeout_s / 2
        self._stop_budget_s = cfg.node.stop_timeout_s / 2
        self.register_metrics(node.context.metrics)

    def register_metrics(self, metrics: Any) -> None:
        f = self.feeder
        metrics.define(SeriesDef("cexnode_tradedb_events", "Audit events ingested into the trade database.", "counter"))
        metrics.define(SeriesDef("cexnode_tradedb_errors", "Failed trade database writes (the audit file keeps the "
                                 "records; `cexnode db rebuild`).", "counter"))
        metrics.add_source("cexnode_tradedb_events", lambda: [((), f.events)])
        metrics.add_source("cexnode_tradedb_errors", lambda: [((), f.errors)])

    async def start(self) -> None:
        # The backlog, before anything trades; what is left of it (a huge file) the thread takes.
        deadline = time.monotonic() + self._start_budget_s
        await asyncio.get_running_loop().run_in_executor(None, self.feeder.step, deadline)
        self.feeder.start_thread()

    async def stop(self) -> None:
        ok = await asyncio.get_running_loop().run_in_executor(None, self.feeder.stop_thread, self._stop_budget_s)
        if not ok:
            self.feeder.log.warning("trade database still catching up at stop; the next start (or `cexnode db "
                                    "rebuild`) takes the rest from the audit file", db=self.feeder.db_path)

    def apply_reload(self, cfg: Any) -> None:
        pass
