"""Bridge from Python's ``logging`` (aiohttp, asyncio, the node's bootstrap logger) into the log ring.

While installed, the root logger's handlers (and those of the loggers named in ``take_over``) are
replaced by one :class:`RingHandler`; ``uninstall`` restores them exactly. The stdlib record's
logger name becomes a ring logger tagged ``stdlib``, so per-logger levels (``log.loggers``) apply.
"""
from __future__ import annotations

import logging
from typing import Iterable

from cexnode._core import logring as _lr

__all__ = ["RingHandler", "StdlibBridge"]


def _mask(v):
    return _lr.SECRET_MASK if _lr.is_secret(v) else v


def _message(record: logging.LogRecord) -> str:
    # record.getMessage() with Secret-typed arguments masked before %-formatting.
    msg = str(record.msg)
    args = record.args
    if args:
        if isinstance(args, dict):
            args = {k: (_lr.SECRET_MASK if _lr.is_secret_key(k) else _mask(v)) for k, v in args.items()}
        else:
            args = tuple(_mask(a) for a in args)
        msg = msg % args
    return msg


class RingHandler(logging.Handler):
    """A logging.Handler that pushes each record into the active log ring (no I/O in ``emit``)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self._loggers: dict = {}
        self._fmt = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            lg = self._loggers.get(record.name)
            if lg is None:
                lg = self._loggers[record.name] = _lr.get_logger(record.name, ("stdlib",))
            msg = _message(record)
            if record.exc_info:
                lg.log(record.levelno, msg, exc=self._fmt.formatException(record.exc_info))
            elif record.stack_info:
                lg.log(record.levelno, msg, stack=record.stack_info)
            else:
                lg.log(record.levelno, msg)
        except Exception:
            self.handleError(record)


class StdlibBridge:
    def __init__(self, take_over: Iterable[str] = ("cexnode",)) -> None:
        self.handler = RingHandler()
        self.take_over = tuple(take_over)
        self._saved: list = []
        self.installed = False

    def install(self, min_level: int) -> None:
        if self.installed:
            return
        root = logging.getLogger()
        self._saved = [(root, list(root.handlers), root.level, root.propagate)]
        for name in self.take_over:
            lg = logging.getLogger(name)
            self._saved.append((lg, list(lg.handlers), lg.level, lg.propagate))
        for lg, handlers, _level, _prop in self._saved:
            for h in handlers:
                lg.removeHandler(h)
            if lg is not root:
                lg.setLevel(logging.NOTSET)   # the ring's per-logger levels decide
                lg.propagate = True           # a taken-over logger may have had propagate off
        root.setLevel(min_level)
        root.addHandler(self.handler)
        self.installed = True

    def set_min_level(self, min_level: int) -> None:
        if self.installed:
            logging.getLogger().setLevel(min_level)

    def uninstall(self) -> None:
        if not self.installed:
            return
        root = logging.getLogger()
        root.removeHandler(self.handler)
        for lg, handlers, level, propagate in self._saved:
            for h in handlers:
                if h not in lg.handlers:
                    lg.addHandler(h)
            lg.setLevel(level)
            lg.propagate = propagate
        self._saved = []
        self.installed = False
