"""The embedded simulator as a node component (``sim.enabled: true``, e.g. ``configs/demo.yaml``).

Integration (node side, ``cexnode/node.py`` ``build_components``): after metrics and before the
venues, ``if cfg.sim.enabled: comps.append(SimComponent(node))``. Building does no network I/O;
``start()`` binds the servers and publishes where they listen in ``node.context``
(:class:`~cexnode.component.NodeContext`):

* ``context.sim`` — the :class:`~cexnode.sim.server.ExchangeSimulator` (set at build time);
* ``context.sim_urls`` — ``{venue: VenueUrls(ws, rest)}`` (set by ``start()``).

Adapters whose ``ws_url``/``rest_url`` are empty read ``context.sim_urls[venue]`` when they
start (they start after this component), instead of the production URLs.
"""
from __future__ import annotations

import logging
from typing import Any

from cexnode.component import Component, NodeContext

from .server import ExchangeSimulator

__all__ = ["SimComponent"]

log = logging.getLogger("cexnode.sim")


class SimComponent(Component):
    """Starts/stops the embedded :class:`ExchangeSimulator` built from the node's config."""

    name = "sim"

    def __init__(self, node: Any):
        self.context: NodeContext = node.context
        self.sim = ExchangeSimulator(node.cfg)
        self.context.sim = self.sim

    async def start(self) -> None:
        await self.sim.start()
        self.context.sim_urls = self.sim.urls
        for line in self.sim.describe():
            log.info("%s", line)

    async def stop(self) -> None:
        await self.sim.stop()

    def apply_reload(self, cfg: Any) -> None:
        """The simulated venues charge the reloaded ``venues.<v>.taker_fee`` / ``maker_fee`` (they
        were built from them; every fill reads them)."""
        for name, venue in self.sim.venues.items():
            vcfg = getattr(cfg.venues, name, None)
            if vcfg is not None:
                venue.taker_fee, venue.maker_fee = vcfg.taker_fee, vcfg.maker_fee
