"""Node: build → start → run → stop, on uvloop.

* build: every component is constructed from the config without I/O (fast, deterministic);
* start: components start in order, each within ``node.start_timeout_s``; a failure stops the
  failed component (what it had started) and what already started (reverse order), and exits 1;
* run: until SIGINT/SIGTERM or ``--duration``; SIGHUP reloads the non-critical settings;
  a second SIGINT/SIGTERM forces an immediate exit;
* stop: reverse order within ``node.stop_timeout_s`` in total; logs are drained last.

Process policy applied before the loop starts: CPU pinning (``node.cpu_affinity``) and the GC
policy (``gc.freeze()`` after warm-up, optional thresholds); once started, optionally a busy-polling
loop (``node.busy_poll``: :class:`BusyPoll`).
"""
from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import sys
import time
from typing import Callable, Optional

import uvloop

from cexnode.component import Component, NodeContext
from cexnode.config import Config, ConfigError, GcConfig, diff_reload, load_config, merge_reloadable
from cexnode.engine import Engine
from cexnode.log import LogSystem, setup
from cexnode.metrics import MetricsServer, NodeMetrics
from cexnode.sim import run_standalone
from cexnode.sim.component import SimComponent
from cexnode.storage.feeder import TradeDBComponent

log = logging.getLogger("cexnode.node")

EXIT_OK, EXIT_RUNTIME = 0, 1


# ------------------------------------------------------------------------------------------
# process policy


def apply_cpu_affinity(cpus: Optional[tuple[int, ...]]) -> Optional[set[int]]:
    """Pin to ``cpus``; warn (never crash) about CPUs that do not exist or are not permitted."""
    if not cpus:
        return None
    if not hasattr(os, "sched_setaffinity"):
        log.warning("cpu_affinity is set but this platform has no sched_setaffinity; not pinned")
        return None
    allowed = os.sched_getaffinity(0)
    wanted = set(cpus)
    bad = sorted(wanted - allowed)
    good = wanted & allowed
    if bad:
        log.warning("node.cpu_affinity: CPU(s) %s do not exist or are not permitted (allowed: %s)",
                    bad, sorted(allowed))
    if not good:
        log.warning("node.cpu_affinity: no usable CPU left; the process is not pinned")
        return None
    try:
        os.sched_setaffinity(0, good)
    except OSError as e:
        log.warning("node.cpu_affinity: sched_setaffinity(%s) failed: %s; not pinned", sorted(good), e)
        return None
    log.info("pinned to CPU(s) %s", sorted(good))
    return good


def apply_gc_policy(gc_cfg: GcConfig) -> None:
    if gc_cfg.thresholds is not None:
        gc.set_threshold(*gc_cfg.thresholds)
    if gc_cfg.disable:
        gc.disable()


def freeze_gc() -> None:
    """After warm-up: move every object alive now to the permanent generation."""
    gc.collect()
    gc.freeze()
    log.info("gc frozen after warm-up (%d objects)", gc.get_freeze_count())


class BusyPoll:
    """Keeps the event loop from sleeping (``node.busy_poll``).

    One callback that re-schedules itself with ``call_soon``: the loop always has a ready callback,
    so each iteration polls its sockets with a zero timeout instead of blocking in epoll. A frame is
    then read by a CPU that is already running, not one woken from idle, whose first system calls
    after a sleep are slower (``perf/bench_execution.py`` runs the order path with and without busy
    polling; its results are in ``perf/results/``). The cost is one core at 100%: use it with
    ``cpu_affinity`` on an isolated core. uvloop releases the GIL while it polls, so the audit syncer thread still runs.
    ``poll``, when given, runs on every turn: the node passes the executor's ``warm_poll``, which
    keeps the order path warm at intervals under the loop's 1 ms timer resolution.
    """

    __slots__ = ("loop", "spins", "poll", "_handle", "_on")

    def __init__(self, loop: asyncio.AbstractEventLoop, poll: Optional[Callable[[], None]] = None) -> None:
        self.loop = loop
        self.spins = 0
        self.poll = poll            # called on every turn (the executor's warm_poll); must not raise
        self._on = True
        self._handle = loop.call_soon(self._spin)
        log.info("busy polling: the event loop never sleeps (one core at 100%%)")

    def _spin(self) -> None:
        if self._on:
            self.spins += 1
            if self.poll is not None:
                self.poll()
            self._handle = self.loop.call_soon(self._spin)

    def stop(self) -> None:
        self._on = False
        self._handle.cancel()


# ------------------------------------------------------------------------------------------


class Node:
    """The node's lifecycle. ``components`` are started in order and stopped in reverse."""

    def __init__(self, cfg: Config, *, config_path: str | None = None, duration: float | None = None,
                 trading: bool = True):
        self.cfg = cfg
        self.config_path = config_path
        self.duration = duration
        self.trading = trading          # False: the engine builds no executor (``cexnode scan``)
        self.components: list[Component] = []
        self.started: list[Component] = []
        self._stop_event: asyncio.Event | None = None
        self._busy_poll: BusyPoll | None = None
        self._signals = 0
        self.exit_code = EXIT_OK
        self.context = NodeContext(metrics=NodeMetrics(node_name=cfg.node.name))
        self.components = build_components(self)

    # -- signals --------------------------------------------------------------------------
    def _on_stop_signal(self, signame: str) -> None:
        self._signals += 1
        if self._signals > 1:
            sys.stderr.write("cexnode: second %s, forcing exit\n" % signame)
            sys.stderr.flush()
            os._exit(EXIT_RUNTIME)
        log.info("%s received: stopping (send again to force)", signame)
        self.request_stop()

    def request_stop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()

    def _on_sighup(self) -> None:
        self.reload()

    def reload(self) -> bool:
        """Validate the config file again and apply the reloadable settings. False if rejected."""
        if not self.config_path:
            log.warning("SIGHUP: no config file to reload")
            return False
        try:
            new = load_config(self.config_path)
        except ConfigError as e:
            log.error("config reload rejected, the running config stays: %s", e)
            return False
        hot, cold = diff_reload(self.cfg, new)
        if cold:
            log.warning("config reload: %s changed but needs a restart; those changes are NOT applied",
                        ", ".join(cold))
        if not hot:
            log.info("config reload: no reloadable setting changed")
            return True
        # Keep the critical part of the running config; take only reloadable fields.
        merged = _merge_reloadable(self.cfg, new)
        self.cfg = merged
        for comp in self.components:
            try:
                comp.apply_reload(merged)
            except Exception:
                log.exception("component %s failed to apply the reload", comp.name)
        log.info("config reloaded: %s", ", ".join(hot))
        return True

    # -- lifecycle --------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
            loop.add_signal_handler(sig, self._on_stop_signal, name)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        t0 = time.monotonic()
        try:
            if not await self._start_all():
                return EXIT_RUNTIME
            if self.cfg.node.gc.freeze_after_warmup:
                loop.call_later(self.cfg.node.gc.warmup_s, freeze_gc)
            if self.cfg.node.busy_poll:
                ex = self.context.engine.executor if self.context.engine is not None else None
                if ex is not None:              # the order-path warm-up runs from the polling loop
                    ex.busy_warm = True
                self._busy_poll = BusyPoll(loop, ex.warm_poll if ex is not None else None)
            log.info("node %s running (%d components) in %.0f ms", self.cfg.node.name,
                     len(self.started), (time.monotonic() - t0) * 1e3)
            try:
                await asyncio.wait_for(self._stop_event.wait(), self.duration)
            except asyncio.TimeoutError:
                log.info("duration of %.1f s reached: stopping", self.duration)
        finally:
            if self._busy_poll is not None:
                self._busy_poll.stop()
                self._busy_poll = None
            await self._stop_all()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        return self.exit_code

    async def _start_all(self) -> bool:
        timeout = self.cfg.node.start_timeout_s
        for comp in self.components:
            try:
                await asyncio.wait_for(comp.start(), timeout)
            except asyncio.TimeoutError:
                log.error("component %s did not start within %.1f s (node.start_timeout_s)", comp.name, timeout)
                self.exit_code = EXIT_RUNTIME
                await self._stop_failed(comp)
                return False
            except Exception as e:
                log.error("component %s failed to start: %s: %s", comp.name, type(e).__name__, e)
                self.exit_code = EXIT_RUNTIME
                await self._stop_failed(comp)
                return False
            self.started.append(comp)
        return True

    async def _stop_failed(self, comp: Component) -> None:
        """A component whose start failed may have started parts (connections, sessions, tasks):
        its stop() releases them, bounded like any stop."""
        try:
            await asyncio.wait_for(comp.stop(), self.cfg.node.stop_timeout_s)
        except Exception as e:
            log.warning("component %s: stop after its failed start: %s: %s", comp.name, type(e).__name__, e)

    async def _stop_all(self) -> None:
        deadline = time.monotonic() + self.cfg.node.stop_timeout_s
        while self.started:
            comp = self.started.pop()
            left = max(0.05, deadline - time.monotonic())
            try:
                await asyncio.wait_for(comp.stop(), left)
            except asyncio.TimeoutError:
                log.error("component %s did not stop in time (node.stop_timeout_s)", comp.name)
                self.exit_code = EXIT_RUNTIME
            except Exception as e:
                log.error("component %s failed to stop cleanly: %s: %s", comp.name, type(e).__name__, e)
                self.exit_code = EXIT_RUNTIME


class LogComponent(Component):
    """The log ring's flusher and backends: started first, stopped last (drains every record)."""

    name = "log"

    def __init__(self, node: Node) -> None:
        self.system: LogSystem = setup(node.cfg.log, registry=node.context.metrics.registry)
        self.node = node

    async def start(self) -> None:
        await self.system.start()

    async def stop(self) -> None:
        await self.system.stop()
        if self.system.write_failures:
            # the audit (or log) file could not be written during the run: said on stderr when it
            # happened (path, errno); trading halted; the run is a runtime failure
            self.node.exit_code = EXIT_RUNTIME

    def apply_reload(self, cfg: Config) -> None:
        self.system.reconfigure(cfg.log)


class MetricsComponent(Component):
    """Prometheus /metrics, /healthz, /readyz on loopback (``metrics`` section)."""

    name = "metrics"

    def __init__(self, node: Node) -> None:
        self.server = MetricsServer(node.cfg.metrics, node.context.metrics)
        node.context.readiness = self.server.readiness

    async def start(self) -> None:
        await self.server.start()
        if self.server.port is not None:
            log.info("metrics on %s/metrics", self.server.url)

    async def stop(self) -> None:
        await self.server.stop()


def build_components(node: Node) -> list[Component]:
    """Construct every component from the config, in start order, without any I/O.

    Order: log system (first up, last down, so nothing is lost), metrics, the trade database
    (``storage``), the embedded simulator when ``sim.enabled``, then the venues (from
    the venue registry by name, :mod:`cexnode.adapters.registry`).
    """
    cfg = node.cfg
    comps: list[Component] = [LogComponent(node), MetricsComponent(node)]
    if cfg.storage.enabled:
        comps.append(TradeDBComponent(node))     # stops after the executor's last record
    if cfg.sim.enabled:
        comps.append(SimComponent(node))         # before the venues: they take its URLs
    if cfg.venues.enabled():
        comps.append(Engine(node, trading=node.trading))   # venues (from the registry by name), books, arb, executor
    return comps


def _merge_reloadable(old: Config, new: Config) -> Config:
    """``old`` with every reload=True field taken from ``new`` (critical fields stay)."""
    return merge_reloadable(old, new)


# ------------------------------------------------------------------------------------------
# entry points used by __main__


def _setup_bootstrap_logging() -> None:
    """Lifecycle messages before (and besides) the log ring: plain lines on stderr."""
    root = logging.getLogger("cexnode")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        root.addHandler(h)
        root.setLevel(logging.INFO)
        root.propagate = False


def _new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop()


def run_node(cfg: Config, *, config_path: str | None = None, duration: float | None = None) -> int:
    _setup_bootstrap_logging()
    apply_cpu_affinity(cfg.node.cpu_affinity)
    apply_gc_policy(cfg.node.gc)
    node = Node(cfg, config_path=config_path, duration=duration)
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(node.run())


def run_sim(cfg: Config, *, duration: float | None = None) -> int:
    _setup_bootstrap_logging()
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(run_standalone(cfg, duration))
