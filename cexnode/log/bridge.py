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
            if record.exc_info:
                lg.log(record.levelno, record.getMessage(), exc=self._fmt.formatException(record.exc_info))
            elif record.stack_info:
                lg.log(record.levelno, record.getMessage(), stack=record.stack_info)
            else:
                lg.log(record.levelno, record.getMessage())
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
        self._saved = [(root, list(root.handlers), root.level)]
        for name in self.take_over:
            lg = logging.getLogger(name)
            self._saved.append((lg, list(lg.handlers), lg.level))
        for lg, handlers, _level in self._saved:
            for h in handlers:
                lg.removeHandler(h)
            if lg is not root:
                lg.setLevel(logging.NOTSET)   # the ring's per-logger levels decide
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
        for lg, handlers, level in self._saved:
            for h in handlers:
                if h not in lg.handlers:
                    lg.addHandler(h)
            lg.setLevel(level)
        self._saved = []
        self.installed = False
