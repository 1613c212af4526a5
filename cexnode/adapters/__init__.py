"""Venue adapters, one package per venue (nautilus_trader layout).

Each ``cexnode.adapters.<venue>`` package exports ``DESCRIPTOR`` (:class:`~cexnode.adapters.descriptor.
VenueDescriptor`): everything venue-specific. The node looks venues up in
:mod:`cexnode.adapters.registry` and never branches on venue names.
"""
from __future__ import annotations

from typing import Any, Protocol

from cexnode.adapters.registry import UnknownVenueError, descriptor

__all__ = ["VenueAdapter", "UnknownVenueError", "create_adapter"]


class VenueAdapter(Protocol):
    """What the node needs from a venue: start (connect, load instruments, sync), stop, status."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict: ...


def create_adapter(name: str, venue_config: Any, context: Any) -> VenueAdapter:
    return descriptor(name).create_adapter(venue_config, context)
