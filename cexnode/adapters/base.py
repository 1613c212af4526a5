"""Shared adapter plumbing: the lifecycle every venue adapter has."""
from __future__ import annotations

import logging

from cexnode.node import Component


class BaseVenueAdapter(Component):
    """Lifecycle and status common to the venue adapters.

    The market-data and order-entry parts (instrument loading, REST snapshots, WebSocket feeds,
    private streams) are added per venue package; until a venue package provides them, the
    adapter starts, reports ``connected: False`` and warns once, so that the node still boots.
    """

    venue = ""

    def __init__(self, name: str, venue_config, context: dict):
        self.name = name
        self.config = venue_config
        self.context = context
        self.log = logging.getLogger("cexnode.adapters." + name)
        self.connected = False

    async def start(self) -> None:
        self.log.warning("%s: live market data is not implemented yet (networking/adapters issue); "
                         "the venue stays disconnected", self.name)

    async def stop(self) -> None:
        self.connected = False

    def status(self) -> dict:
        return {"venue": self.name, "connected": self.connected, "symbols": list(self.config.symbols)}
