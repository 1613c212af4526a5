"""YAML → frozen, validated config objects.

One declarative schema (the dataclasses below) drives validation, defaults, ``config schema``
(JSON Schema), ``config show`` (secrets redacted) and the config reference (docs/configuration.md).

Rules
-----
* Unknown keys are rejected with a "did you mean" hint; duplicate keys are rejected (PyYAML would
  silently keep the last one).
* ``${VAR}`` and ``${VAR:-default}`` are substituted from the environment inside scalar values;
  an unset variable without a default is an error naming it.
* Secrets (``api_key``, ``api_secret``) are :class:`Secret`: they redact themselves in repr/str,
  logs and ``config show``; ``.get()`` is the only way to the value.
* Every problem raises :class:`ConfigError` whose message names the file, the key path
  (``venues.<venue>.taker_fee``), the line, what was expected and what was found.
* Fields marked ``reload=True`` may change on SIGHUP without a restart (see :func:`diff_reload`).
* Cross-field rules are the ``check(data, path)`` method of their class (:class:`Section`), run once
  the class's own fields are valid.

Venues
------
``venues:`` is a :class:`VenuesConfig`: each configured venue's name -> an instance of that venue's
config class (``descriptor.config_class``, a :class:`VenueConfig` subclass in
``cexnode/adapters/<venue>/config.py`` that adds only the keys that venue has). The venues are the
ones the registry (:mod:`cexnode.adapters.registry`) knows, looked up when a file is loaded, never
at import: the venue packages import this module. A key of another venue in a venue's section is an
error naming the venue(s) that own it.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import re
import types
import typing
from collections import abc
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Mapping, Optional

import yaml

from cexnode.sim.venues._options import SimVenueOptions

__all__ = [
    "ConfigError", "Secret", "Config", "load_config", "load_config_text", "json_schema",
    "redacted_dict", "diff_reload", "merge_reloadable", "markdown_reference", "Section", "section", "opt",
    "VenueConfig", "VenuesConfig",
]

LOG_LEVELS = ("debug", "info", "warning", "error")

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


# --------------------------------------------------------------------------------------------
# Errors and secrets


class ConfigError(Exception):
    """A configuration problem; ``str(e)`` is the one-paragraph message shown to the user."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, file: str | None = None):
        self.path = path
        self.line = line
        self.file = file
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += ":%d" % self.line
        key = " at key '%s'" % self.path if self.path else ""
        return "config error in %s%s: %s" % (where, key, self.detail)

    def with_file(self, file: str) -> "ConfigError":
        self.file = file
        self.args = (self._render(),)
        return self


class Secret:
    """A credential: never shown by repr/str/format; ``get()`` returns the value."""

    __slots__ = ("_value",)
    __cexnode_secret__ = True

    def __init__(self, value: str):
        object.__setattr__(self, "_value", value)

    def get(self) -> str:
        return self._value

    def __setattr__(self, name, value):  # immutable
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = lambda self: "***"  # noqa: E731

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other):
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self):
        return hash(("Secret", self._value))

    def __bool__(self):
        return bool(self._value)

    def __reduce__(self):  # pickling would leak it into files: refuse
        raise TypeError("Secret cannot be pickled")


# --------------------------------------------------------------------------------------------
# Schema helpers


def opt(default=dataclasses.MISSING, *, doc: str, reload: bool = False, ge=None, gt=None, le=None, lt=None,
        pow2: bool = False, off_or_ge=None, factory=None, example=None):
    """A config field: default, documentation, range and whether SIGHUP may change it.
    ``off_or_ge``: 0 (off) or a value >= this."""
    md = {"doc": doc, "reload": reload, "ge": ge, "gt": gt, "le": le, "lt": lt, "pow2": pow2, "off_or_ge": off_or_ge,
          "example": example}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


#: the decorator of every config class (frozen, keyword-only); venue config classes use it too
section = dataclass(frozen=True, kw_only=True)


class Section:
    """Base of every config class: :meth:`check` holds its cross-field rules."""

    __slots__ = ()

    def check(self, data: Mapping, path: str) -> None:
        """Rules across fields, run by the loader once this section's own fields are valid.
        ``data``: the section as parsed (``_line_of(data, key)`` gives a key's line); ``path``: its
        dotted key path. Raise :class:`ConfigError` naming the key; the default has no rules."""


@section
class GcConfig(Section):
    freeze_after_warmup: bool = opt(True, doc="Run gc.collect() then gc.freeze() once start-up is done, so long-lived objects are never rescanned.")
    warmup_s: float = opt(2.0, doc="Seconds after start before the freeze.", ge=0, le=600)
    thresholds: Optional[list[int]] = opt(None, doc="gc.set_threshold(gen0, gen1, gen2); null keeps Python's defaults.")
    disable: bool = opt(False, doc="Disable the cyclic GC entirely (reference counting still frees most objects).")

    def check(self, data, path):
        if self.thresholds is not None and (len(self.thresholds) != 3 or any(t < 0 for t in self.thresholds)):
            raise ConfigError("expected three non-negative integers [gen0, gen1, gen2], found %s" % list(self.thresholds),
                              path=path + ".thresholds", line=_line_of(data, "thresholds"))


@section
class NodeConfig(Section):
    name: str = opt("cexnode", doc="Node name (logs, metrics label).")
    cpu_affinity: Optional[list[int]] = opt(None, doc="CPUs to pin the process to (sched_setaffinity). A CPU that does not exist or is not permitted gives a warning, not a crash.")
    gc: GcConfig = opt(factory=GcConfig, doc="Garbage-collector policy.")
    start_timeout_s: float = opt(20.0, doc="Deadline for each component to start.", gt=0, le=600)
    stop_timeout_s: float = opt(10.0, doc="Deadline for the whole orderly stop.", gt=0, le=600)
    busy_poll: bool = opt(False, doc="Keep the event loop polling instead of sleeping in epoll between events: a frame is handled without the wake-up of an idle CPU, at the cost of 100% of one core. For a node pinned to an isolated core (cpu_affinity).")
    on_venue_failure: Literal["stop", "degrade"] = opt("stop", doc="A venue that fails to start stops the node, or the node runs without it.")
    status_interval_s: float = opt(5.0, doc="Seconds between status lines on the console (0 disables).", ge=0, le=3600, reload=True)

    def check(self, data, path):
        if self.cpu_affinity is not None:
            if not self.cpu_affinity or any(c < 0 for c in self.cpu_affinity):
                raise ConfigError("expected a non-empty list of CPU numbers >= 0, found %s" % list(self.cpu_affinity),
                                  path=path + ".cpu_affinity", line=_line_of(data, "cpu_affinity"))


@section
class ConsoleLogConfig(Section):
    enabled: bool = opt(True, doc="Human-readable log lines on stderr.")
    level: Literal["debug", "info", "warning", "error"] = opt("info", doc="Minimum level for this backend.", reload=True)
    color: Literal["auto", "always", "never"] = opt("auto", doc="ANSI colours (auto: only on a TTY).")
    audit: bool = opt(True, doc="Also show audit events (every order event) below warning level; they are always in the audit file.", reload=True)


@section
class FileLogConfig(Section):
    enabled: bool = opt(False, doc="JSON Lines log file.")
    path: str = opt("logs/cexnode.jsonl", doc="File path (directories are created).")
    level: Literal["debug", "info", "warning", "error"] = opt("debug", doc="Minimum level for this backend.", reload=True)
    max_bytes: int = opt(256 * 1024 * 1024, doc="Rotate when the file exceeds this size.", ge=4096)
    rotate_daily: bool = opt(True, doc="Also rotate at UTC midnight.")


@section
class AuditLogConfig(Section):
    path: str = opt("logs/audit.jsonl", doc="Audit trail of every order event (JSON Lines).")
    checkpoint_interval_s: float = opt(60.0, doc="Fold the audit trail into a checkpoint (<path>.checkpoint) this often and at stop, on its own thread, so that a restart reads the checkpoint and only the audit records after it (0: off; every start then folds the whole file).", ge=0, le=86400, off_or_ge=1)
    fsync: Literal["always", "batch", "never"] = opt("always", doc="Every record is written with one write(2) before the call returns (survives kill -9). always: also fdatasync'd before it returns (power loss), except a trade's pre-send record, synced off the loop while its orders are in flight and before any answer to them is recorded; batch: fdatasync per flush, off the loop; never: the OS decides.")


@section
class LogConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = opt("info", doc="Default level for every logger.", reload=True)
    ring_capacity: int = opt(65536, doc="Records the log ring holds (power of two). When full, new records are dropped and counted; trading never blocks.", ge=1024, le=1 << 24, pow2=True)
    flush_interval_ms: int = opt(50, doc="Flusher period.", ge=1, le=10000, reload=True)
    batch_size: int = opt(4096, doc="Records formatted per flusher batch.", ge=1, le=1 << 20, reload=True)
    loggers: dict[str, Literal["debug", "info", "warning", "error"]] = opt(factory=dict, doc="Per-logger levels, e.g. {cexnode.net: debug}.", reload=True)
    redact_keys: list[str] = opt(factory=list, doc="Extra field names to redact (api_key, api_secret, secret, password, token, signature always are).")
    console: ConsoleLogConfig = opt(factory=ConsoleLogConfig, doc="Console backend.")
    file: FileLogConfig = opt(factory=FileLogConfig, doc="JSONL file backend.")
    audit: AuditLogConfig = opt(factory=AuditLogConfig, doc="Audit backend.")


@section
class MetricsConfig(Section):
    enabled: bool = opt(True, doc="Serve /metrics, /healthz and /readyz.")
    host: str = opt("127.0.0.1", doc="Bind address (loopback by default).")
    port: int = opt(9464, doc="TCP port (0 = any free port).", ge=0, le=65535)


@section
class RestConfig(Section):
    timeout_s: float = opt(10.0, doc="Whole-request timeout of a REST call (connect, send, answer).", gt=0, le=300)
    max_attempts: int = opt(4, doc="Attempts of an idempotent REST request (GET) on 429, 5xx and timeouts; orders are never sent twice.", ge=1, le=20)
    backoff_base_s: float = opt(0.05, doc="First retry delay; doubles per attempt, with jitter (x0.5..1.5).", gt=0, le=60)
    backoff_max_s: float = opt(2.0, doc="Cap of the retry delay.", gt=0, le=600)
    max_retry_wait_s: float = opt(30.0, doc="Longest venue pause (Retry-After, rate-limit reset) a request waits for; longer fails at once and is retried later.", ge=0, le=3600)
    breaker_failures: int = opt(5, doc="Consecutive failures (5xx, timeouts, transport errors) of one endpoint that open its circuit breaker.", ge=1, le=1000)
    breaker_cooldown_s: float = opt(2.0, doc="Open breaker: seconds before one probe request is let through (doubles while probes fail).", gt=0, le=600)
    breaker_cooldown_max_s: float = opt(30.0, doc="Cap of the breaker cool-down.", gt=0, le=3600)
    limit_headroom: float = opt(0.9, doc="Fraction of the venue's published REST rate limits used (clock skew against the venue's windows).", gt=0, le=1)
    pool_size: int = opt(32, doc="Pooled keep-alive HTTP connections per venue.", ge=1, le=1000)
    keepalive_s: float = opt(60.0, doc="Seconds an idle pooled connection is kept open.", gt=0, le=3600)


@section
class InstrumentConfig(Section):
    symbol: str = opt(doc="Unified symbol, e.g. BTC/USDT or BTC/USDT:USDT.")
    venue_symbol: str = opt(doc="The venue's name for it, e.g. BTCUSDT or BTC_USDT.")
    tick: Decimal = opt(doc="Price increment.", gt=0)
    step: Decimal = opt(doc="Order size increment in venue units (contracts on futures).", gt=0)
    min_qty: Decimal = opt(Decimal(0), doc="Minimum order size in venue units.", ge=0)
    min_notional: Decimal = opt(Decimal(0), doc="Minimum order value in quote currency.", ge=0)
    multiplier: Decimal = opt(Decimal(1), doc="Futures: base units per contract (quanto_multiplier).", gt=0)

    def check(self, data, path):
        _check_symbol(self.symbol, path + ".symbol", _line_of(data, "symbol"))


@section
class VenueConfig(Section):
    """The keys every venue takes. A venue's own keys are in its config class (a subclass in
    ``cexnode/adapters/<venue>/config.py``), its documentation in that class's docstring."""

    enabled: bool = opt(True, doc="Connect to this venue.")
    ws_url: str = opt("", doc="Public WebSocket URL (empty: the venue's production URL, or the embedded simulator's).")
    rest_url: str = opt("", doc="REST base URL (empty: production, or the simulator's).")
    api_key: Optional[Secret] = opt(None, doc="API key; use ${ENV_VAR}, never a literal.", example="${EXCHANGE_API_KEY}")
    api_secret: Optional[Secret] = opt(None, doc="API secret; use ${ENV_VAR}, never a literal.", example="${EXCHANGE_API_SECRET}")
    taker_fee: Decimal = opt(Decimal("0.001"), doc="Taker fee rate (0.001 = 0.1 %).", ge=0, le=Decimal("0.05"), reload=True)
    maker_fee: Decimal = opt(Decimal("0.001"), doc="Maker fee rate.", ge=-Decimal("0.01"), le=Decimal("0.05"), reload=True)
    symbols: list[str] = opt(factory=list, doc="Unified symbols to stream (spot venues: BTC/USDT; perpetual venues: BTC/USDT:USDT).")
    book_depth: int = opt(100, doc="Levels per side that arbitrage, metrics and dumps read, and the snapshot's depth (within the depths the venue serves: see its section). The book itself keeps every level the venue sends, up to book_max_levels.", ge=1, le=5000)
    book_max_levels: int = opt(20000, doc="Memory cap: levels kept per side of each book (16 bytes a level). A book that would exceed it is resynced and counted (cexnode_book_level_cap_resyncs_total). At least 5000, the deepest snapshot a venue serves, so a fresh snapshot always fits.", ge=5000, le=1 << 20)
    book_audit_interval_s: float = opt(300.0, doc="Check each live book against a fresh REST snapshot this often (0: off): the snapshot is brought to the live book's id as during sync and the top book_depth levels compared; a mismatch is logged, counted (cexnode_book_audit_mismatches_total) and resyncs the book. The books' audits are spread over the interval and use only spare REST rate limit (never delaying a resync snapshot).", ge=0, le=86400, off_or_ge=0.1)
    instruments: list[InstrumentConfig] = opt(factory=list, doc="Instrument specs given here instead of loaded from the venue (replay, offline).")
    start_timeout_s: float = opt(15.0, doc="Deadline for this venue to connect and sync.", gt=0, le=600)
    balance_poll_s: float = opt(0.0, doc="Live mode: re-read balances over REST this often and hand them to the executor (0: off). Keeps a quiet account fresh where the private stream pushes changes only; mind the venue's account request limit (its section).", ge=0, le=3600)
    time_sync_interval_s: float = opt(60.0, doc="Live mode: how often the venue's server time is re-read for signed-request timestamps (0: only at start).", ge=0, le=86400)
    max_connection_age_s: float = opt(0.0, doc="Public WebSocket: rotate a connection this old (seconds): the replacement is opened, subscribed and receiving before the old one closes, so no diff is missed (0: the venue's default, under its connection age limit if it has one: see its section).", ge=0, le=86400)
    rest: RestConfig = opt(factory=RestConfig, doc="REST manager: timeouts, retries, rate-limit headroom, circuit breaker, connection pool.")


def _registry():
    """:mod:`cexnode.adapters.registry`, imported when a config is loaded or documented, not with
    this module. Importing it imports :mod:`cexnode.adapters` and the descriptor module, whose
    fields name a venue's collaborators (net, execution) that import this module for their config
    classes; and the venue packages the registry discovers import this module for
    :class:`VenueConfig`. A module-level import would tie this module's import to all of theirs:
    the cycle is broken here, on first use."""
    from cexnode.adapters import registry  # cycle: see the docstring
    return registry


def _own_fields(cls) -> list:
    """The fields a venue config class adds to :class:`VenueConfig`, in declaration order."""
    common = {f.name for f in dataclasses.fields(VenueConfig)}
    return [f for f in dataclasses.fields(cls) if f.name not in common and not f.metadata.get("internal")]


class VenuesConfig(abc.Mapping):
    """``venues:``: each configured venue's name -> its config (an instance of the venue's
    ``descriptor.config_class``), in venue-id order; a mapping (``items()``, ``get(name)``,
    ``cfg.venues[name]``, ``name in cfg.venues``) plus :meth:`enabled`.

    ``cfg.venues.<name>`` also works, for code and tests written before venues were a mapping: it
    gives the venue's config, None for a registered venue that is not configured, and raises
    AttributeError for a name no venue registers. New code uses ``get(name)``.
    """

    __slots__ = ("_by_name",)

    def __init__(self, venues: Optional[Mapping[str, VenueConfig]] = None):
        object.__setattr__(self, "_by_name", types.MappingProxyType(dict(venues or {})))

    def __getitem__(self, name: str) -> VenueConfig:
        return self._by_name[name]

    def __iter__(self):
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        by_name = object.__getattribute__(self, "_by_name")
        if name in by_name:
            return by_name[name]
        if name in _registry().names():
            return None
        raise AttributeError("no venue %r (configured: %s)" % (name, ", ".join(by_name) or "none"))

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError("cannot assign to field %r" % name)

    def __repr__(self) -> str:
        return "VenuesConfig(%r)" % (dict(self._by_name),)

    def __reduce__(self):
        return (VenuesConfig, (dict(self._by_name),))

    def enabled(self) -> list[tuple[str, VenueConfig]]:
        return [(n, v) for n, v in self.items() if v.enabled]

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def build(cls, data: Mapping, path: str) -> "VenuesConfig":
        """The ``venues`` section: each name a registered venue, each section built with that
        venue's config class; a key another venue owns is named as such."""
        registry = _registry()
        known = registry.names()
        klines = getattr(data, "key_lines", {})
        for name in data:
            if name not in known:
                hint = difflib.get_close_matches(str(name), known, n=1)
                raise ConfigError("unknown venue '%s'%s; known venues: %s" % (
                    name, " (did you mean '%s'?)" % hint[0] if hint else "", ", ".join(known)),
                    path="%s.%s" % (path, name), line=klines.get(name, getattr(data, "line", None)))
        raws = getattr(data, "raw", {})
        venues = {}
        for desc in registry.descriptors():
            name = desc.name
            value = data.get(name)
            if value is None:
                continue
            vpath = "%s.%s" % (path, name)
            if isinstance(value, dict):
                _check_foreign_keys(desc.config_class, value, vpath)
            venues[name] = _convert(desc.config_class, value, raws.get(name), vpath, klines.get(name),
                                    types.MappingProxyType({}))
        obj = cls(venues)
        obj.check(data, path)
        return obj

    def check(self, data: Mapping, path: str) -> None:
        """Each venue lists symbols of its market (spot BASE/QUOTE, perpetual BASE/QUOTE:SETTLE),
        each once."""
        registry = _registry()
        for name, venue in self.items():
            vdata = data.get(name, {})
            market = registry.descriptor(name).market
            for i, sym in enumerate(venue.symbols):
                spath = "%s.%s.symbols[%d]" % (path, name, i)
                sline = getattr(vdata.get("symbols"), "item_lines", [None] * (i + 1))[i] if isinstance(vdata, dict) else None
                _check_symbol(sym, spath, sline)
                is_perp = ":" in sym
                if market == "perpetual" and not is_perp:
                    raise ConfigError("%s lists perpetuals like %s:%s, found spot symbol '%s'"
                                      % (name, sym, sym.split("/")[1], sym), path=spath, line=sline)
                if market == "spot" and is_perp:
                    raise ConfigError("%s is a spot venue: expected a spot symbol like '%s', found perpetual '%s'"
                                      % (name, sym.split(":")[0], sym), path=spath, line=sline)
            if len(set(venue.symbols)) != len(venue.symbols):
                raise ConfigError("a symbol is listed twice", path="%s.%s.symbols" % (path, name),
                                  line=_line_of(vdata, "symbols") if isinstance(vdata, dict) else None)


def _check_foreign_keys(cls, data: Mapping, path: str) -> None:
    """A key of ``data`` that ``cls`` lacks but another venue's config class has: an error naming
    the venue(s) that own it (a plain unknown key is left to :func:`_build` and its hint)."""
    own = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key in own:
            continue
        owners = [d.name for d in _registry().descriptors()
                  if d.config_class is not cls and any(f.name == key for f in _own_fields(d.config_class))]
        if owners:
            names = owners[0] if len(owners) == 1 else "%s and %s" % (", ".join(owners[:-1]), owners[-1])
            raise ConfigError("unknown key '%s' (a %s key)" % (key, names), path="%s.%s" % (path, key),
                              line=_line_of(data, key))


@section
class RouteConfig(Section):
    symbol: str = opt(doc="Spot symbol of the route, e.g. BTC/USDT (the perpetual is implied on futures venues).")
    venues: list[str] = opt(doc="Two or more venues quoting it, by their names under venues: two spot venues, or a spot and a perpetual venue.")
    name: str = opt("", doc="Route name (default: symbol and venues).")


@section
class ArbitrageConfig(Section):
    min_profit: Decimal = opt(Decimal("0.50"), doc="Minimum net profit per opportunity, in quote currency.", ge=0, reload=True)
    min_bps: Decimal = opt(Decimal("0"), doc="Minimum net profit in basis points of the buy cost.", ge=-10000, le=10000, reload=True)
    max_notional: Decimal = opt(Decimal("1000"), doc="Maximum quote spent on the buy leg of one opportunity.", gt=0, reload=True)
    max_book_age_ms: int = opt(5000, doc="Books older than this (exchange time or receive time) are not traded.", ge=1, le=600000, reload=True)
    slippage_bps: Decimal = opt(Decimal("0"), doc="Widen leg limit prices by this many bps beyond the worst level walked.", ge=0, le=1000, reload=True)
    size_to_balances: bool = opt(True, doc="Size opportunities to the free balances (less what trades in flight have reserved) as the executor's balance check takes them, so that one larger than a balance is traded smaller instead of refused. Off: sized by the books and max_notional only; the balance check refuses what does not fit.")
    routes: list[RouteConfig] = opt(factory=list, doc="Routes to evaluate on every book update.")


@section
class RiskConfig(Section):
    max_position: dict[str, Decimal] = opt(factory=dict, doc="Per-asset absolute position limit in base units, e.g. {BTC: 0.5}.", reload=True)
    max_notional_per_trade: Decimal = opt(Decimal("1000"), doc="Maximum quote value of one leg.", gt=0, reload=True)
    max_open_exposure: Decimal = opt(Decimal("5000"), doc="Maximum quote value of unhedged positions across routes.", gt=0, reload=True)
    daily_loss_limit: Decimal = opt(Decimal("100"), doc="Halt when today's realised loss exceeds this (quote currency).", gt=0, reload=True)
    error_rate_threshold: Decimal = opt(Decimal("0.01"), doc="Halt when failed orders / orders in the window exceed this.", gt=0, le=1, reload=True)
    error_window_s: int = opt(300, doc="Rolling window of the error-rate breaker.", ge=1, le=86400, reload=True)
    min_orders_for_breaker: int = opt(20, doc="Orders needed in the window before the error-rate breaker may trip.", ge=1, reload=True)
    stale_data_halt_ms: int = opt(10000, doc="Halt trading when any routed book has been stale this long.", ge=1, reload=True)
    route_cooldown_ms: int = opt(500, doc="Minimum time between trades on one route.", ge=0, reload=True)
    kill_switch_file: Optional[str] = opt(None, doc="If this file exists, trading halts (SIGUSR1 toggles too).", reload=True)


@section
class PaperConfig(Section):
    latency_ms: float = opt(5.0, doc="Simulated order latency.", ge=0, le=60000, reload=True)
    balances: dict[str, dict[str, Decimal]] = opt(factory=dict, doc="Virtual balances per venue and asset, e.g. {<venue>: {USDT: 10000, BTC: 0.1}}.")
    fees: dict[str, Decimal] = opt(factory=dict, doc="Paper taker fee rate per venue, e.g. {<venue>: 0.0005}; a venue not listed uses venues.<venue>.taker_fee.")


@section
class TradingConfig(Section):
    mode: Literal["paper", "live"] = opt("paper", doc="paper (default): fills simulated against our own books; live: real orders, needs credentials.")
    recover: bool = opt(True, doc="At start, rebuild positions, residuals, realised P&L per UTC day (the daily loss limit), the error-rate window and every order without a final record from the audit trail (log.audit.path), and reconcile those orders with their venues before the first trade. Off only where the venues start afresh with the node (the embedded simulator of the demo).")
    order_timeout_ms: int = opt(2000, doc="An order without a definitive answer by then is ambiguous and reconciled with the venue.", ge=10, le=60000, reload=True)
    leg_deadline_ms: int = opt(3000, doc="Deadline for both legs of a trade to reach a final state.", ge=10, le=60000, reload=True)
    max_balance_age_ms: int = opt(1000, doc="Balances older than this are refreshed before a trade.", ge=0, le=600000, reload=True)
    hedge_loss_cap: Decimal = opt(Decimal("5"), doc="Maximum loss (quote) accepted to hedge or unwind a one-leg fill.", ge=0, reload=True)
    hedge_attempts: int = opt(3, doc="IOC orders tried (hedge on the other venue first, then unwind on the filled leg's venue, alternating) to close a one-leg residual.", ge=1, le=20, reload=True)
    poll_interval_ms: int = opt(100, doc="While an order has no final state from the private stream, query it over REST this often.", ge=5, le=60000, reload=True)
    reconcile_timeout_ms: int = opt(30000, doc="After the leg deadline, keep reconciling an order this long inside the trade; then it is handed to a background reconciler and trading reduces until it is resolved.", ge=100, le=3600000, reload=True)
    not_found_grace_ms: int = opt(1000, doc="An ambiguous order the venue still does not know this long after it was sent is taken as never placed.", ge=0, le=600000, reload=True)
    max_opportunity_age_ms: int = opt(500, doc="An opportunity older than this when its orders would go out (e.g. after a balance refresh) is dropped: its prices are stale.", ge=1, le=600000, reload=True)
    warm_interval_ms: float = opt(2.0, doc="Keep the order path warm: this often (while no trade is in flight) the executor dry-runs its front half with the last opportunity (risk and balance checks, both order requests built and signed, nothing sent, audited or counted), so a trade after a quiet spell does not run from cold CPU caches; each dry run costs CPU, so the shorter the interval the more of a core it takes (perf/results/ has the cost). 0: off; otherwise at least 1 (the event loop's timers have 1 ms resolution), or at least 0.1 with node.busy_poll, where the polling loop runs the dry runs itself: warm within the last fraction of a millisecond when the frame comes.", ge=0, le=60000, off_or_ge=0.1, reload=True)
    max_inflight_trades: int = opt(1, doc="Trades executing at once (one per route at most); further opportunities are skipped and counted.", ge=1, le=64, reload=True)
    futures_margin_fraction: Decimal = opt(Decimal("1"), doc="Quote margin required per unit of futures notional in the balance check (1 = fully collateralised).", gt=0, le=1, reload=True)
    paper: PaperConfig = opt(factory=PaperConfig, doc="Paper-trading settings.")


@section
class SimUniverseConfig(Section):
    """``sim.universe``: a generated market of many pairs (off: the venues list ``venues.<v>.symbols``)."""

    enabled: bool = opt(False, doc="Serve a generated universe instead of the configured symbols: synthetic bases quoted in USDT, mid prices spread over decades, log-normal 24 h volumes, seeded by sim.seed (the same seed gives the same universe).")
    spot_pairs: int = opt(400, doc="Instruments listed on each spot venue at start.", ge=1, le=100000)
    common_pairs: int = opt(300, doc="How many of each spot venue's pairs every spot venue lists (the rest are the venue's own).", ge=0, le=100000)
    perpetuals: int = opt(100, doc="Perpetual contracts listed on each perpetual venue, on common bases (the most traded first).", ge=0, le=100000)
    listing_interval_s: float = opt(0.0, doc="Every this many seconds a new pair is listed on every venue (spot and perpetual) and its books start streaming; 0: off.", ge=0, le=86400)
    delisting_interval_s: float = opt(0.0, doc="Every this many seconds one common pair is delisted on every venue: shown halted in the instrument lists as each venue shows it, its books stop; 0: off.", ge=0, le=86400)
    frozen_assets: int = opt(0, doc="This many common bases have deposits or withdrawals disabled on one spot venue (its wallet endpoint shows it per chain/network).", ge=0, le=100000)
    volume_median: Decimal = opt(Decimal("200000"), doc="Median 24 h quote volume of a pair (USDT); volumes are log-normal around it.", gt=0)
    volume_sigma: float = opt(1.5, doc="Standard deviation of the log of the 24 h volumes.", ge=0, le=10)
    step_ms: dict[str, float] = opt(factory=dict, doc="Update period of every instrument of a venue, by venue name, e.g. {<venue>: 20}; a venue not named uses its own rates (the simulator venue's universe_step_ms). Each instrument starts at a random phase.")
    replay_steps: int = opt(32, doc="Each book generates this many diffs, then replays them backwards and forwards in a loop (fresh ids and times; frames rendered once per loop position and reused), until a fill or reset changes it; what lets one core push a market of thousands of books. 0: every diff is generated (and rendered) anew.", ge=0, le=100000)
    fast_pairs: int = opt(20, doc="On a venue with two rates (a fast and a slow aggregated stream), the most traded this many pairs update at the fast one.", ge=0, le=100000)

    def check(self, data, path):
        if self.common_pairs > self.spot_pairs:
            raise ConfigError("expected common_pairs <= spot_pairs (%d), found %d" % (self.spot_pairs, self.common_pairs),
                              path=path + ".common_pairs", line=_line_of(data, "common_pairs"))
        if self.perpetuals > self.common_pairs:
            raise ConfigError("expected perpetuals <= common_pairs (%d): perpetuals are listed on common bases, found %d"
                              % (self.common_pairs, self.perpetuals), path=path + ".perpetuals", line=_line_of(data, "perpetuals"))
        if self.frozen_assets > self.common_pairs:
            raise ConfigError("expected frozen_assets <= common_pairs (%d), found %d" % (self.common_pairs, self.frozen_assets),
                              path=path + ".frozen_assets", line=_line_of(data, "frozen_assets"))
        for name, ms in self.step_ms.items():
            if not 0 < ms <= 60000:
                raise ConfigError("expected a period in ms between 0 (excluded) and 60000, found %s" % ms,
                                  path=path + ".step_ms." + name, line=None)


@section
class _SimCommonConfig(Section):
    """The keys of ``sim:`` every simulated venue reads (:class:`SimConfig` adds the venues' own)."""

    enabled: bool = opt(False, doc="Start the embedded exchange simulator and point every venue at it.")
    seed: int = opt(1, doc="Seed of the deterministic market generator.")
    update_interval_ms: float = opt(10.0, doc="Book update period per venue and symbol.", gt=0, le=60000)
    dislocation_probability: float = opt(0.02, doc="Chance per update that a venue's price jumps away from the others (creates arbitrage).", ge=0, le=1)
    dislocation_bps: float = opt(30.0, doc="Size of a dislocation in basis points.", ge=0, le=10000)
    mid_prices: dict[str, Decimal] = opt(factory=dict, doc="Starting mid price per unified spot symbol, e.g. {BTC/USDT: 65000}.")
    futures_decimal_sizes: bool = opt(False, doc="Perpetual venues list contracts with fractional sizes, sent as decimal strings to a client that asks for them (the venue's decimal-size header).")
    balances: dict[str, dict[str, Decimal]] = opt(factory=dict, doc="Account balances per venue and asset on the simulator.")
    host: str = opt("127.0.0.1", doc="Bind address of every simulated venue (loopback by default).")
    base_port: int = opt(0, doc="0: each venue's WebSocket and REST servers take free ports; N: the venue with id i (by venue id) serves WebSocket on N+2i and REST on N+2i+1.", ge=0, le=65530)
    book_levels: int = opt(50, doc="Levels per side of each simulated book (keep <= the node's book_depth so a snapshot holds the whole book).", ge=2, le=1000)
    volatility_bps: float = opt(1.0, doc="Standard deviation of the mid price's random walk per update, in bps.", ge=0, le=1000)
    noise_bps: float = opt(0.3, doc="Per-venue jitter of the quoted mid per update, in bps.", ge=0, le=1000)
    half_spread_bps: float = opt(0.5, doc="Half the bid-ask spread of each simulated book, in bps (at least one tick).", ge=0, le=1000)
    level_spacing_bps: float = opt(0.5, doc="Typical gap between book levels, in bps.", ge=0, le=1000)
    level_notional: Decimal = opt(Decimal("3000"), doc="Typical quote value of one book level (sizes are log-normal around it).", gt=0)
    trade_probability: float = opt(0.3, doc="Chance per update that a taker trade eats (part of) the touch.", ge=0, le=1)
    dislocation_half_life_ms: float = opt(300.0, doc="Half life of a venue's price dislocation.", ge=0, le=3600000)
    capture: Optional[str] = opt(None, doc="Capture file (JSON Lines, optionally .gz; docs/design.md §3) to play back instead of generating market data; REST requests with captured answers get them.")
    capture_speed: float = opt(1.0, doc="Playback speed of sim.capture: 1 keeps the captured timing, 0 sends as fast as possible.", ge=0, le=1000000)
    capture_loop: bool = opt(False, doc="Start the capture again when it ends.")
    enforce_rate_limits: bool = opt(False, doc="Answer 429 (with Retry-After) beyond each venue's published REST limits per endpoint; the rate-limit headers of a venue that sends them always are.")
    universe: SimUniverseConfig = opt(factory=SimUniverseConfig, doc="Generated market of many pairs, listings and delistings on a schedule (off by default).")


@section
class SimConfig(SimVenueOptions, _SimCommonConfig):
    """``sim:``: the embedded simulator. The keys one simulated venue reads (its venue rules made
    adjustable) are declared with the simulator venues (:class:`SimVenueOptions`) and come after
    the common ones."""


@section
class StorageConfig(Section):
    enabled: bool = opt(True, doc="Keep the trade history (trades, orders, fills, fees, realised P&L) in an embedded SQLite database, fed from the audit file by its own thread, never on the trade path; read by `cexnode trades` and `cexnode pnl`. The audit file stays the source of truth: `cexnode db rebuild` rebuilds the database from it.")
    path: str = opt("", doc="SQLite database file (WAL mode; directories are created). Empty: trades.sqlite next to the audit log (log.audit.path), so logs/trades.sqlite by default.")
    poll_interval_ms: int = opt(500, doc="How often the database thread looks for new audit records.", ge=10, le=60000)


@section
class Config(Section):
    node: NodeConfig = opt(factory=NodeConfig, doc="Process: pinning, GC, timeouts.")
    log: LogConfig = opt(factory=LogConfig, doc="Logging ring and backends.")
    metrics: MetricsConfig = opt(factory=MetricsConfig, doc="Prometheus endpoint.")
    venues: VenuesConfig = opt(factory=VenuesConfig, doc="Venues to connect, by name (one section per venue).")
    arbitrage: ArbitrageConfig = opt(factory=ArbitrageConfig, doc="Opportunity thresholds and routes.")
    risk: RiskConfig = opt(factory=RiskConfig, doc="Risk limits.")
    trading: TradingConfig = opt(factory=TradingConfig, doc="Execution mode and timing.")
    sim: SimConfig = opt(factory=SimConfig, doc="Embedded exchange simulator.")
    storage: StorageConfig = opt(factory=StorageConfig, doc="Trade history database.")
    source: str = field(default="<config>", compare=False, repr=False, metadata={"doc": "", "internal": True})

    def check(self, data, path):
        """Routes name configured venues and the symbols they list; live mode has credentials;
        venue names under trading.paper and sim are registered venues; the warm-up interval fits
        the timer resolution."""
        registry = _registry()
        known = registry.names()
        adata = data.get("arbitrage", {})
        rdata = adata.get("routes", []) if isinstance(adata, dict) else []
        rlines = getattr(rdata, "item_lines", [])
        for i, route in enumerate(self.arbitrage.routes):
            rpath = "arbitrage.routes[%d]" % i
            rline = rlines[i] if i < len(rlines) else None
            _check_symbol(route.symbol, rpath + ".symbol", rline)
            if ":" in route.symbol:
                raise ConfigError("a route names the spot symbol (the perpetual is implied on futures venues), found '%s'"
                                  % route.symbol, path=rpath + ".symbol", line=rline)
            if len(route.venues) < 2 or len(set(route.venues)) != len(route.venues):
                raise ConfigError("expected at least two different venues, found %s" % list(route.venues),
                                  path=rpath + ".venues", line=rline)
            for j, vname in enumerate(route.venues):
                vpath = "%s.venues[%d]" % (rpath, j)
                if vname not in known:
                    hint = difflib.get_close_matches(vname, known, n=1)
                    raise ConfigError("unknown venue '%s'%s; known venues: %s" % (
                        vname, " (did you mean '%s'?)" % hint[0] if hint else "", ", ".join(known)), path=vpath, line=rline)
                venue = self.venues.get(vname)
                if venue is None or not venue.enabled:
                    raise ConfigError("route uses venue '%s', which is not configured (or not enabled) under venues"
                                      % vname, path=vpath, line=rline)
                perpetual = registry.descriptor(vname).market == "perpetual"
                want = route.symbol + ":" + route.symbol.split("/")[1] if perpetual else route.symbol
                if want not in venue.symbols:
                    raise ConfigError("route needs '%s' on %s, but venues.%s.symbols does not list it"
                                      % (want, vname, vname), path=vpath, line=rline)
        warm = self.trading.warm_interval_ms
        if 0 < warm < 1 and not self.node.busy_poll:
            tdata = data.get("trading", {})
            raise ConfigError("expected 0 (off) or a value >= 1, found %s: an interval under 1 ms needs node.busy_poll: "
                              "true (the event loop's timers have 1 ms resolution)" % warm,
                              path="trading.warm_interval_ms",
                              line=_line_of(tdata, "warm_interval_ms") if isinstance(tdata, dict) else None)
        if self.trading.mode == "live" and not self.sim.enabled:
            for name, venue in self.venues.enabled():
                if venue.api_key is None or venue.api_secret is None or not venue.api_key or not venue.api_secret:
                    vdata = data.get("venues", {}).get(name, {})
                    raise ConfigError("trading.mode is live, so venue %s needs api_key and api_secret "
                                      "(from ${ENV_VARS})" % name, path="venues.%s.api_key" % name,
                                      line=_line_of(vdata, "api_key") if isinstance(vdata, dict) else None)
        for vname in self.trading.paper.balances:
            _check_venue_name(vname, known, "trading.paper.balances.%s" % vname)
        for vname, rate in self.trading.paper.fees.items():
            _check_venue_name(vname, known, "trading.paper.fees.%s" % vname)
            if not (0 <= rate <= Decimal("0.05")):
                raise ConfigError("expected a fee rate between 0 and 0.05, found %s" % rate,
                                  path="trading.paper.fees.%s" % vname, line=None)
        for vname in self.sim.balances:
            _check_venue_name(vname, known, "sim.balances.%s" % vname)
        for sym in self.sim.mid_prices:
            _check_symbol(sym, "sim.mid_prices.%s" % sym, None)


# --------------------------------------------------------------------------------------------
# YAML → plain values with line numbers, duplicate keys rejected


class _Map(dict):
    """dict with the YAML line of each key (1-based) and of the mapping itself."""
    __slots__ = ("line", "key_lines", "raw")


class _Seq(list):
    __slots__ = ("line", "item_lines", "raw")


class _EnvStr(str):
    """A scalar that came (partly) from ${VAR} substitution: re-typed by the schema."""


def _substitute(text: str, line: int, path: str) -> str:
    def repl(m):
        name, default = m.group(1), m.group(2)
        val = os.environ.get(name)
        if val is None or (val == "" and default is not None):
            if default is None:
                raise ConfigError("environment variable ${%s} is not set (use ${%s:-default} for a default)" % (name, name), path=path, line=line)
            return default
        return val
    return _ENV_RE.sub(repl, text)


def _plain(node, path: str):
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = _Map()
        out.line, out.key_lines, out.raw = line, {}, {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise ConfigError("mapping keys must be plain strings", path=path, line=knode.start_mark.line + 1)
            key = knode.value
            kpath = "%s.%s" % (path, key) if path else key
            if key in out:
                raise ConfigError("duplicate key '%s' (first at line %d); YAML would silently keep only the last"
                                  % (key, out.key_lines[key]), path=kpath, line=knode.start_mark.line + 1)
            out.key_lines[key] = knode.start_mark.line + 1
            out[key], out.raw[key] = _plain(vnode, kpath)
        return out, None
    if isinstance(node, yaml.SequenceNode):
        out = _Seq()
        out.line, out.item_lines, out.raw = line, [], []
        for i, item in enumerate(node.value):
            out.item_lines.append(item.start_mark.line + 1)
            v, raw = _plain(item, "%s[%d]" % (path, i))
            out.append(v)
            out.raw.append(raw)
        return out, None
    # scalar: ${VAR} substitution happens in string scalars only; the schema re-types the result.
    raw = node.value
    if node.tag == "tag:yaml.org,2002:str" and "${" in raw:
        return _EnvStr(_substitute(raw, line, path)), raw
    return _LOADER.construct_object(node, deep=True), raw


class _NodeLoader(yaml.SafeLoader):
    pass


_LOADER = _NodeLoader("")
# libyaml's composer when PyYAML was built with it (same nodes and marks, several times faster).
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str):
    try:
        root = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        msg = " ".join(x for x in (e.context, e.problem) if x)
        raise ConfigError("YAML syntax error: %s" % msg, line=line) from None
    except yaml.YAMLError as e:
        raise ConfigError("YAML error: %s" % e) from None
    if root is None:
        raise ConfigError("the file is empty; expected a mapping with at least a 'venues' section")
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError("the top level must be a mapping of sections (node, log, venues, ...), found %s"
                          % _kind_of_node(root), line=root.start_mark.line + 1)
    value, _ = _plain(root, "")
    return value


def _kind_of_node(node):
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode):
        return "a scalar %r" % node.value
    return "something else"


# --------------------------------------------------------------------------------------------
# Validation (schema-driven)


def _describe(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean %s" % ("true" if v else "false")
    if isinstance(v, (int, float, Decimal)):
        return "number %s" % v
    if isinstance(v, str):
        return "string %r" % v
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0]) + " or null"
    if origin is list:
        return "a list of " + _type_name(typing.get_args(tp)[0]).replace("a ", "", 1)
    if origin is dict:
        return "a mapping of %s" % _type_name(typing.get_args(tp)[1])
    if dataclasses.is_dataclass(tp) or tp is VenuesConfig:
        return "a mapping (%s)" % tp.__name__.replace("Config", "")
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            Decimal: "a decimal number", Secret: "a string (secret)"}.get(tp, tp.__name__)


def _check_range(value, md, path, line):
    if md.get("ge") is not None and value < md["ge"]:
        raise ConfigError("expected a value >= %s, found %s" % (md["ge"], value), path=path, line=line)
    if md.get("gt") is not None and value <= md["gt"]:
        raise ConfigError("expected a value > %s, found %s" % (md["gt"], value), path=path, line=line)
    if md.get("le") is not None and value > md["le"]:
        raise ConfigError("expected a value <= %s, found %s" % (md["le"], value), path=path, line=line)
    if md.get("lt") is not None and value >= md["lt"]:
        raise ConfigError("expected a value < %s, found %s" % (md["lt"], value), path=path, line=line)
    if md.get("off_or_ge") is not None and value != 0 and value < md["off_or_ge"]:
        raise ConfigError("expected 0 (off) or a value >= %s, found %s" % (md["off_or_ge"], value), path=path, line=line)
    if md.get("pow2") and (value <= 0 or value & (value - 1)):
        raise ConfigError("expected a power of two, found %s" % value, path=path, line=line)


def _convert(tp, value, raw, path: str, line: int | None, md: Mapping):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, raw, path, line, md)
    if value is None:
        raise ConfigError("expected %s, found null" % _type_name(tp), path=path, line=line)
    if dataclasses.is_dataclass(tp) or tp is VenuesConfig:
        if not isinstance(value, dict):
            raise ConfigError("expected %s, found %s" % (_type_name(tp), _describe(value)), path=path, line=line)
        return VenuesConfig.build(value, path) if tp is VenuesConfig else _build(tp, value, path)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices or isinstance(value, bool):
            hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            raise ConfigError("expected one of %s, found %s%s" % (", ".join(map(str, choices)), _describe(value),
                              " (did you mean '%s'?)" % hint[0] if hint else ""), path=path, line=line)
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError("expected %s, found %s" % (_type_name(tp), _describe(value)), path=path, line=line)
        lines = getattr(value, "item_lines", [line] * len(value))
        raws = getattr(value, "raw", [None] * len(value))
        # tuples: a frozen config must not be mutable through its lists
        return tuple(_convert(item_tp, v, r, "%s[%d]" % (path, i), ln, md) for i, (v, r, ln) in enumerate(zip(value, raws, lines)))
    if origin is dict:
        ktp, vtp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError("expected %s, found %s" % (_type_name(tp), _describe(value)), path=path, line=line)
        klines = getattr(value, "key_lines", {})
        raws = getattr(value, "raw", {})
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise ConfigError("mapping keys must be non-empty strings", path=path, line=line)
            out[k] = _convert(vtp, v, raws.get(k), "%s.%s" % (path, k), klines.get(k, line), md)
        return types.MappingProxyType(out)
    # scalars
    from_env = isinstance(value, _EnvStr)
    if tp is bool:
        if from_env and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError("expected a boolean (true/false), found %s" % _describe(value), path=path, line=line)
        return value
    if tp is int:
        if from_env:
            try:
                value = int(value)
            except ValueError:
                raise ConfigError("expected an integer, found %s" % _describe(str(value)), path=path, line=line) from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError("expected an integer, found %s" % _describe(value), path=path, line=line)
        _check_range(value, md, path, line)
        return value
    if tp is float:
        if from_env:
            try:
                value = float(value)
            except ValueError:
                raise ConfigError("expected a number, found %s" % _describe(str(value)), path=path, line=line) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError("expected a number, found %s" % _describe(value), path=path, line=line)
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError("expected a finite number, found %s" % value, path=path, line=line)
        _check_range(value, md, path, line)
        return value
    if tp is Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError("expected a decimal number, found %s" % _describe(value), path=path, line=line)
        text = str(value) if from_env or isinstance(value, str) else (raw if raw is not None else str(value))
        try:
            d = Decimal(text.strip())
        except (InvalidOperation, ValueError):
            raise ConfigError("expected a decimal number, found %s" % _describe(value), path=path, line=line) from None
        if not d.is_finite():
            raise ConfigError("expected a finite decimal number, found %s" % text, path=path, line=line)
        _check_range(d, md, path, line)
        return d
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError("expected a string, found %s" % _describe(value), path=path, line=line)
        return str(value)
    if tp is Secret:
        if not isinstance(value, str) or isinstance(value, bool):
            raise ConfigError("expected a string (secret), found %s" % ("a non-string value" if value is not None else "null"),
                              path=path, line=line)
        if not from_env:
            # A literal secret in a file that gets committed is the classic leak. Refuse it.
            raise ConfigError("secrets must come from the environment: write ${ENV_VAR}, not a literal value",
                              path=path, line=line)
        return Secret(str(value))
    raise TypeError("unsupported schema type %r" % (tp,))


def _build(cls, data: Mapping, path: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    klines = getattr(data, "key_lines", {})
    raws = getattr(data, "raw", {})
    for key in data:
        if key not in fields:
            hint = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6)
            kpath = "%s.%s" % (path, key) if path else str(key)
            raise ConfigError("unknown key '%s'%s; allowed here: %s" % (
                key, " (did you mean '%s'?)" % hint[0] if hint else "", ", ".join(fields)),
                path=kpath, line=klines.get(key, getattr(data, "line", None)))
    kwargs = {}
    for name, f in fields.items():
        fpath = "%s.%s" % (path, name) if path else name
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], raws.get(name), fpath, klines.get(name), f.metadata)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError("missing required key '%s' (%s)" % (name, f.metadata.get("doc", "")),
                              path=fpath, line=getattr(data, "line", None))
    obj = cls(**kwargs)
    obj.check(data, path)
    return obj


def _line_of(data, key):
    return getattr(data, "key_lines", {}).get(key, getattr(data, "line", None))


def _check_venue_name(name: str, known: tuple[str, ...], path: str) -> None:
    if name not in known:
        raise ConfigError("unknown venue '%s'; known venues: %s" % (name, ", ".join(known)), path=path, line=None)


def _check_symbol(sym: str, path: str, line):
    if not _SYMBOL_RE.match(sym):
        raise ConfigError("expected a unified symbol like BTC/USDT (spot) or BTC/USDT:USDT (perpetual), found %r" % sym,
                          path=path, line=line)


# --------------------------------------------------------------------------------------------
# Public API


def load_config_text(text: str, source: str = "<config>") -> Config:
    try:
        data = _parse_yaml(text)
        if "venues" not in data:
            raise ConfigError("missing required section 'venues' (at least one of %s)" % ", ".join(_registry().names()),
                              path="venues", line=data.line)
        cfg = _build(Config, data, "")
        if not any(True for _ in cfg.venues.items()):
            raise ConfigError("expected at least one venue (%s)" % ", ".join(_registry().names()), path="venues",
                              line=_line_of(data, "venues"))
    except ConfigError as e:
        raise e.with_file(source) from None
    return dataclasses.replace(cfg, source=source)


def load_config(path: str | os.PathLike) -> Config:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError("file not found").with_file(path) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a YAML file").with_file(path) from None
    except OSError as e:
        raise ConfigError("cannot read the file: %s" % (e.strerror or e)).with_file(path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError("the file is not valid UTF-8 (byte %d)" % e.start, line=line).with_file(path) from None
    return load_config_text(text, source=path)


def redacted_dict(obj) -> Any:
    """Plain JSON-able structure of a config object with every secret shown as '***'."""
    if isinstance(obj, Secret):
        return "***"
    if isinstance(obj, VenuesConfig):   # every registered venue, null where not configured
        return {name: redacted_dict(obj.get(name)) for name in _venue_names(obj, obj)}
    if dataclasses.is_dataclass(obj):
        return {f.name: redacted_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.metadata.get("internal")}
    if isinstance(obj, Mapping):
        return {k: redacted_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redacted_dict(v) for v in obj]
    if isinstance(obj, Decimal):
        return str(obj)
    return obj


def _venue_names(a: VenuesConfig, b: VenuesConfig) -> list[str]:
    """The registered venues, then any venue either side holds that is no longer registered."""
    names = list(_registry().names())
    for name in (*a, *b):
        if name not in names:
            names.append(name)
    return names


def diff_reload(old: Config, new: Config) -> tuple[list[str], list[str]]:
    """Compare two configs: (reloadable changed paths, restart-needed changed paths). A venue
    added or removed is a restart; within a venue present on both sides, its class's fields are
    compared as any section's."""
    hot, cold = [], []

    def walk(a, b, path, reloadable):
        if isinstance(a, VenuesConfig) and isinstance(b, VenuesConfig):
            for name in _venue_names(a, b):
                walk(a.get(name), b.get(name), "%s.%s" % (path, name), reloadable)
            return
        if dataclasses.is_dataclass(a) and type(a) is type(b):
            for f in dataclasses.fields(a):
                if f.metadata.get("internal"):
                    continue
                walk(getattr(a, f.name), getattr(b, f.name), "%s.%s" % (path, f.name) if path else f.name,
                     reloadable or f.metadata.get("reload", False))
            return
        if a != b:
            (hot if reloadable else cold).append(path)

    walk(old, new, "", False)
    return hot, cold


def merge_reloadable(old: Config, new: Config) -> Config:
    """``old`` with every reload=True field taken from ``new`` (what SIGHUP applies); every other
    field, and which venues there are, stay as in ``old``."""

    def merge(a, b):
        if isinstance(a, VenuesConfig) and isinstance(b, VenuesConfig):
            merged = {name: merge(va, b.get(name)) for name, va in a.items()}
            return a if all(merged[n] is a[n] for n in merged) else VenuesConfig(merged)
        if not (dataclasses.is_dataclass(a) and type(a) is type(b)):
            return a
        changes = {}
        for f in dataclasses.fields(a):
            if f.metadata.get("internal"):
                continue
            va, vb = getattr(a, f.name), getattr(b, f.name)
            if f.metadata.get("reload"):
                if va != vb:
                    changes[f.name] = vb
            elif dataclasses.is_dataclass(va) or isinstance(va, VenuesConfig):
                m = merge(va, vb)
                if m is not va:
                    changes[f.name] = m
        return dataclasses.replace(a, **changes) if changes else a

    return merge(old, new)


# --------------------------------------------------------------------------------------------
# JSON Schema and the config reference (docs/configuration.md)


def _schema_of(tp, md=None) -> dict:
    md = md or {}
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _schema_of(args[0], md)
        return {"anyOf": [inner, {"type": "null"}]}
    if tp is VenuesConfig:
        # one property per registered venue, each with its own class's keys only
        props = {}
        for desc in _registry().descriptors():
            props[desc.name] = {"anyOf": [_schema_of(desc.config_class), {"type": "null"}],
                                "description": desc.title, "default": None}
        return {"type": "object", "additionalProperties": False, "properties": props}
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props, required = {}, []
        for f in dataclasses.fields(tp):
            if f.metadata.get("internal"):
                continue
            s = _schema_of(hints[f.name], f.metadata)
            s["description"] = f.metadata.get("doc", "")
            if f.metadata.get("reload"):
                s["x-reload"] = True
            if f.default is not dataclasses.MISSING:
                s["default"] = redacted_dict(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                s["default"] = redacted_dict(f.default_factory())
            else:
                required.append(f.name)
            props[f.name] = s
        out = {"type": "object", "additionalProperties": False, "properties": props}
        if required:
            out["required"] = required
        return out
    if origin is Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin is list:
        return {"type": "array", "items": _schema_of(typing.get_args(tp)[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(typing.get_args(tp)[1])}
    s: dict = {}
    if tp is bool:
        s = {"type": "boolean"}
    elif tp is int:
        s = {"type": "integer"}
    elif tp is float:
        s = {"type": "number"}
    elif tp is Decimal:
        s = {"type": ["number", "string"], "pattern": r"^-?\d+(\.\d+)?$"}
    elif tp is str:
        s = {"type": "string"}
    elif tp is Secret:
        s = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-.*)?\}", "x-secret": True}
    for k, j in (("ge", "minimum"), ("le", "maximum"), ("gt", "exclusiveMinimum"), ("lt", "exclusiveMaximum")):
        if md.get(k) is not None and tp in (int, float, Decimal):
            s[j] = float(md[k]) if isinstance(md[k], Decimal) else md[k]
    if md.get("off_or_ge") is not None:
        s["not"] = {"exclusiveMinimum": 0, "exclusiveMaximum": md["off_or_ge"]}
    return s


def json_schema() -> dict:
    s = _schema_of(Config)
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["title"] = "cexnode configuration"
    s["required"] = ["venues"]
    return s


def markdown_reference() -> str:
    """The config reference of docs/configuration.md, generated from the schema: one table per
    top-level section. ``venues`` is described as ``venues.<venue>`` with the keys every venue
    takes, then one section per registered venue with its description and only its own keys."""
    head = ["| key | type | default | reload | description |", "|---|---|---|---|---|"]
    out: list[str] = []

    def unwrap(tp):
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            return [a for a in typing.get_args(tp) if a is not type(None)][0]
        return tp

    def fields_of(tp, only=None):
        hints = typing.get_type_hints(tp)
        return [(f, hints[f.name]) for f in (only if only is not None else dataclasses.fields(tp))
                if not f.metadata.get("internal")]

    def walk(tp, prefix, rows, only=None):
        for f, ftp in fields_of(tp, only):
            key = prefix + f.name
            inner = unwrap(ftp)
            doc = f.metadata.get("doc", "")
            if dataclasses.is_dataclass(inner):
                rows.append("| `%s` | section | | | %s |" % (key, doc))
                walk(inner, key + ".", rows)
                continue
            if typing.get_origin(inner) is list and dataclasses.is_dataclass(typing.get_args(inner)[0]):
                rows.append("| `%s` | list | `[]` | | %s |" % (key, doc))
                walk(typing.get_args(inner)[0], key + "[].", rows)
                continue
            if f.default is not dataclasses.MISSING:
                d = redacted_dict(f.default)
                default = "`%s`" % ("null" if d is None else (str(d).lower() if isinstance(d, bool) else d))
            elif f.default_factory is not dataclasses.MISSING:
                default = "`%s`" % (redacted_dict(f.default_factory()),)
            else:
                default = "required"
            rows.append("| `%s` | %s | %s | %s | %s |" % (
                key, _type_name(ftp).replace("|", "\\|"), default, "yes" if f.metadata.get("reload") else "",
                doc.replace("|", "\\|")))

    for f, ftp in fields_of(Config):
        section = unwrap(ftp)
        if section is VenuesConfig:
            out += _venues_reference(f.name, f.metadata.get("doc", ""), head, walk)
            continue
        rows = list(head)
        out += ["## `%s`" % f.name, "", f.metadata.get("doc", ""), ""]
        walk(section, f.name + ".", rows)
        out += rows + [""]
    return "\n".join(out)


def _venues_reference(key: str, doc: str, head: list[str], walk) -> list[str]:
    """``venues.<venue>`` (the common keys, once), then ``venues.<name>`` per registered venue:
    its config class's docstring and the keys it adds."""
    descs = _registry().descriptors()
    out = ["## `%s.<venue>`" % key, "", doc, ""]
    out += ["- [`%s.%s`](#%s): %s" % (key, d.name, _anchor("%s.%s" % (key, d.name)), d.title) for d in descs]
    out += ["", "A venue is connected when its section is there and enabled. Every venue takes the keys "
            "below (`<venue>` is its name); the keys only one venue has are in its own section after them, "
            "and a key of another venue in a venue's section is an error naming the venue that owns it.", ""]
    rows = list(head)
    walk(VenueConfig, "%s.<venue>." % key, rows)
    out += rows + [""]
    for d in descs:
        out += ["### `%s.%s`" % (key, d.name), "", d.title + ".", ""]
        about = inspect.getdoc(d.config_class) or ""
        # a class without a docstring has the one dataclass() writes: its signature
        if about and d.config_class is not VenueConfig and not about.startswith(d.config_class.__name__ + "("):
            out += [about, ""]
        own = _own_fields(d.config_class)
        if own:
            rows = list(head)
            walk(d.config_class, "%s.%s." % (key, d.name), rows, only=own)
            out += rows + [""]
        else:
            out += ["No keys of its own.", ""]
    return out


def _anchor(heading: str) -> str:
    """GitHub's anchor of a ``## `code` `` heading: lower case, punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
