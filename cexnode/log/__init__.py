"""cexnode.log — structured, non-blocking logging on the C log ring (``cexnode._core.logring``).

Usage::

    from cexnode.log import get_logger
    log = get_logger("exchange.venue_a.ws", ["venue_a", "public", "ws", "connection"])
    log.info("order sent", sym="BTC/USDT", px=1.5)        # a record in the ring, nothing else
    log.metric("open_orders", 3, tags={"venue": "venue_a"})
    log.counter("orders_placed", tags={"venue": "venue_a"})
    seq = log.audit("order_acked", {"order_id": "123"})   # written (and fsynced per config) NOW
    with log.timer("place_order"):
        ...
    trade = log.with_context(route="BTC/USDT venue_a->venue_b")  # records also carry route=...

Records are formatted by the flusher task (``LogSystem``) into the console, a JSON Lines file, the
audit file (audit events and loggers tagged ``trading``) and Prometheus. Cython code cimports
``log_event`` / ``log_enabled`` from ``cexnode/_core/logring.pxd``.

Secrets
-------
A field is rendered as ``"***"`` in every backend when its *name* is a secret key (``api_key``,
``api_secret``, ``secret``, ``password``, ``token``, ``signature``, ... plus ``log.redact_keys``;
case-insensitive) or when its *value* is an instance of a class that declares the class attribute
``__cexnode_secret__ = True`` (the protocol ``cexnode.config.Secret`` implements). Nested dicts and
lists are masked the same way.
"""
from __future__ import annotations

from typing import Iterable, Optional, TextIO

from prometheus_client import CollectorRegistry

from cexnode._core.logring import (
    BUILTIN_REDACT_KEYS,
    DEBUG,
    ERROR,
    INFO,
    WARNING,
    HotHistogram,
    Logger,
    LoggingTimer,
    LogRing,
    define_event,
    is_secret,
    level_value,
    redact,
)
from cexnode._core.logring import get_logger as _get_logger
from cexnode.config import LogConfig
from cexnode.log.flusher import LogSystem

SECRET_ATTR = "__cexnode_secret__"

__all__ = [
    "get_logger", "get_exchange_logger", "get_strategy_logger", "setup", "LogSystem", "Logger",
    "LoggingTimer", "LogRing", "HotHistogram", "define_event", "is_secret", "redact", "level_value",
    "SECRET_ATTR", "BUILTIN_REDACT_KEYS", "DEBUG", "INFO", "WARNING", "ERROR",
]


def get_logger(name: str, tags: Optional[Iterable[str]] = None) -> Logger:
    """Logger ``name`` with hierarchical ``tags`` (default: ``[name]``). Cached per (name, tags)."""
    return _get_logger(name, list(tags) if tags is not None else [name])


def get_exchange_logger(exchange: str, component: str) -> Logger:
    """``exchange.<exchange>.<component>`` tagged ``[exchange, component]``."""
    return _get_logger("exchange.%s.%s" % (exchange, component), [exchange, component])


def get_strategy_logger(path: str, tags: Iterable[str]) -> Logger:
    """``strategy.<path>`` with hierarchical tags ``[venue, api_type, transport, role]``."""
    return _get_logger("strategy." + path, list(tags))


def setup(log_cfg: LogConfig, *, registry: Optional[CollectorRegistry] = None,
          console_stream: Optional[TextIO] = None, take_over: tuple = ("cexnode",),
          bridge_stdlib: bool = True) -> LogSystem:
    """Build the log system from the ``log`` config section (no I/O until ``await start()``)."""
    return LogSystem(log_cfg, registry=registry, console_stream=console_stream, take_over=take_over,
                     bridge_stdlib=bridge_stdlib)
