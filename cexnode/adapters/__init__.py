"""Venue adapters, one package per venue (nautilus_trader layout), registered by name.

The node never branches on venue names: it asks :func:`create_adapter` for the factory registered
under the configured name. Each venue package registers itself in :data:`VENUE_PACKAGES`.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol

from cexnode.config import VENUES


class VenueAdapter(Protocol):
    """What the node needs from a venue: start (connect, load instruments, sync), stop, status."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict: ...


AdapterFactory = Callable[..., VenueAdapter]

# venue name -> module that defines `create_adapter(name, venue_config, context) -> VenueAdapter`
VENUE_PACKAGES: dict[str, str] = {
    "mexc_spot": "cexnode.adapters.mexc_spot",
    "gateio_spot": "cexnode.adapters.gateio_spot",
    "gateio_futures": "cexnode.adapters.gateio_futures",
}
assert tuple(VENUE_PACKAGES) == VENUES


class UnknownVenueError(KeyError):
    pass


def adapter_factory(name: str) -> AdapterFactory:
    try:
        module = VENUE_PACKAGES[name]
    except KeyError:
        raise UnknownVenueError("unknown venue %r; known venues: %s" % (name, ", ".join(VENUE_PACKAGES))) from None
    return importlib.import_module(module).create_adapter


def create_adapter(name: str, venue_config: Any, context: Any) -> VenueAdapter:
    return adapter_factory(name)(name, venue_config, context)
