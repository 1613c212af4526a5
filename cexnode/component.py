"""What the node starts and stops (:class:`Component`) and what its components share (:class:`NodeContext`).

Every part of the node (log system, metrics server, trade database, embedded simulator, engine,
venue adapters) is a :class:`Component`: built from the config without I/O, then started in order
and stopped in reverse by :class:`cexnode.node.Node`.

Components find each other through the node's :class:`NodeContext`, one typed attribute per
collaborator. The node creates the metrics when it builds the context; the others are set by the
component that owns them (the metrics server sets ``readiness``, the simulator ``sim`` at build and
``sim_urls`` once it listens, the engine ``engine``) and stay None until then (or in a node without
that component). Readers test for None where the collaborator is optional.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Protocol, Union

from cexnode.config import Config
from cexnode.metrics import NodeMetrics, ReadinessRegistry

if TYPE_CHECKING:       # both import this module (their components subclass Component): a real cycle
    from cexnode.engine import Engine
    from cexnode.sim.server import ExchangeSimulator, VenueUrls

__all__ = ["Component", "CallbackComponent", "NodeContext", "CaptureTap"]


class Component:
    """Base of everything the node starts and stops. Subclasses override start/stop."""

    name = "component"

    async def start(self) -> None:  # pragma: no cover - trivial
        pass

    async def stop(self) -> None:  # pragma: no cover - trivial
        pass

    def apply_reload(self, cfg: Config) -> None:
        """Take the reloadable settings of a new, validated config (SIGHUP)."""


class CallbackComponent(Component):
    def __init__(self, name: str, start: Callable | None = None, stop: Callable | None = None,
                 reload: Callable[[Config], None] | None = None):
        self.name = name
        self._start, self._stop, self._reload = start, stop, reload

    async def start(self) -> None:
        if self._start is not None:
            r = self._start()
            if asyncio.iscoroutine(r):
                await r

    async def stop(self) -> None:
        if self._stop is not None:
            r = self._stop()
            if asyncio.iscoroutine(r):
                await r

    def apply_reload(self, cfg: Config) -> None:
        if self._reload is not None:
            self._reload(cfg)


class CaptureTap(Protocol):
    """The recording hook of the feed listener and the REST client (:class:`cexnode.capture.CaptureWriter`)."""

    def ws(self, venue: str, data: Union[bytes, bytearray, memoryview, str], binary: bool = False,
           t: Optional[int] = None) -> None: ...

    def rest(self, venue: str, method: str, path: str, query: str, status: int, body: Union[str, bytes],
             t: Optional[int] = None) -> None: ...


@dataclass(slots=True, eq=False)
class NodeContext:
    """The collaborators the node's components share (module docstring).

    Slotted: setting a collaborator the context does not know (a misspelt name) raises
    AttributeError instead of publishing it where nobody reads it.
    """

    #: the node's metric series (built with the node: every component may register series)
    metrics: NodeMetrics
    #: the /readyz checks (set by the metrics component)
    readiness: Optional[ReadinessRegistry] = None
    #: venues, books, routes and the executor (set by the engine when it is built)
    engine: Optional["Engine"] = None
    #: the embedded simulator (set by the simulator component when it is built, ``sim.enabled``)
    sim: Optional["ExchangeSimulator"] = None
    #: venue name -> where its simulated venue listens (set once the simulator has started); adapters
    #: without a configured URL use these
    sim_urls: Optional[Mapping[str, "VenueUrls"]] = None
    #: records what the feeds and REST clients receive (None: nothing is recorded)
    capture: Optional[CaptureTap] = None
