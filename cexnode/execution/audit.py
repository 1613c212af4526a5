"""The executor's audit writer: every order event goes to the audit log before it is acted on (docs/design.md §5).

:class:`AuditWriter` is shared by the executor's pieces (the orchestration in
:mod:`cexnode.execution.executor`, the legs in :mod:`cexnode.execution.legs`, the residual hedging in
:mod:`cexnode.execution.hedging`): one count of the records written, one of the writes that failed,
and one rule for a failure — risk halts (``audit``) and nothing new is sent.

* :meth:`AuditWriter.write` raises :class:`AuditFailed` when the record could not be written: the
  caller must not send the order the record announces (a write-ahead record).
* :meth:`AuditWriter.write_soft` is for what must be acted on regardless (venue updates of live
  orders): the failure halts trading as above and the bookkeeping goes on; the log system holds the
  record and writes it, in seq order, once the file takes writes again
  (``cexnode.log.backends.AuditBackend``).

It has no state to restore after a restart: the audit file is what is restored from
(:mod:`cexnode.execution.recovery`).
"""
from __future__ import annotations

from typing import Union

from cexnode._core.logring import Logger
from cexnode.execution.risk import RiskManager

__all__ = ["AuditWriter", "AuditFailed"]


class AuditFailed(Exception):
    """An audit record could not be written (``seq``: its number; the log holds it in memory)."""

    def __init__(self, event: str, seq: int = 0):
        super().__init__("audit write of %s failed" % event)
        self.event = event
        self.seq = seq


class AuditWriter:
    """Writes the executor's audit records through ``log`` (``Logger.audit``: synchronous, durable
    per ``log.audit.fsync``); a failed write raises risk's ``audit`` condition (trading halts).

    ``events``: records written; ``errors``: writes that failed."""

    __slots__ = ("log", "risk", "events", "errors")

    def __init__(self, log: Logger, risk: RiskManager):
        self.log = log
        self.risk = risk
        self.events = 0
        self.errors = 0

    def write(self, event: str, data: dict, sync: Union[bool, str] = True) -> int:
        """Write one record; its seq. Raises :class:`AuditFailed` when it could not be written."""
        try:
            seq = self.log.audit(event, data) if sync is True else self.log.audit(event, data, sync)
        except Exception as e:  # the audit trail is a precondition of trading
            self.errors += 1
            self.risk.set_condition("audit", True, str(e)[:200])
            if self.errors == 1:   # the log system said what failed, where (one error line)
                # "record", not "event": this line is copied to the audit file, where a field named
                # event reads as an audit event
                self.log.warning("audit write failed; trading halts", record=event, error=str(e)[:200])
            raise AuditFailed(event, getattr(e, "seq", 0)) from e
        self.events += 1
        return seq

    def write_soft(self, event: str, data: dict) -> None:
        """Audit an event we must act on regardless (venue updates of live orders). When the log
        cannot be written, trading halts (:meth:`write`) and the record is held by the log system,
        written once the file takes writes again (``AuditBackend``); the bookkeeping goes on."""
        try:
            self.write(event, data)
        except AuditFailed:
            pass
