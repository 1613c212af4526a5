"""The simulated venues, by venue name: which protocol serves a venue in the simulator.

A venue's simulator is the :class:`~cexnode.sim.server.SimVenue` subclass that a module exports as
``SIM_VENUE``. The module of venue ``name`` is, in this order of precedence:

1. the class given to :func:`register` (a test's or a plug-in's venue, no module needed);
2. the module its descriptor names (``VenueDescriptor.sim_venue``, :mod:`cexnode.adapters.registry`);
3. ``cexnode.sim.venues.<name>`` (a simulated venue without an adapter package).

The simulator serves each venue under its own name, so a venue that speaks an existing protocol
under a new name needs no new protocol code: its descriptor names that protocol's module, or one
module in ``cexnode/sim/venues/`` exports the protocol's class, or a test registers it.

Read when a simulator is built and when a capture is loaded, never per message.
"""
from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import TYPE_CHECKING

from cexnode.adapters import registry as venue_registry
from cexnode.sim import venues as venue_modules

if TYPE_CHECKING:  # pragma: no cover
    from cexnode.sim.server import SimVenue

__all__ = ["UnknownSimVenueError", "names", "venue_class", "find", "register", "unregister"]

_lock = threading.Lock()
_registered: dict[str, "type[SimVenue]"] = {}
_loaded: dict[str, "type[SimVenue]"] = {}       # module path -> its SIM_VENUE


class UnknownSimVenueError(KeyError):
    """A venue name the simulator has no protocol for."""

    def __str__(self) -> str:  # KeyError quotes its argument; this is a sentence
        return str(self.args[0]) if self.args else ""


def register(name: str, venue_class: "type[SimVenue]") -> "type[SimVenue]":
    """Serve venue ``name`` with ``venue_class`` (before a descriptor's module, if there is one)."""
    if not name:
        raise ValueError("a simulated venue needs a name")
    with _lock:
        _registered[name] = venue_class
    return venue_class


def unregister(name: str) -> None:
    with _lock:
        _registered.pop(name, None)


def _package_modules() -> tuple[str, ...]:
    """Venue modules of ``cexnode.sim.venues`` (shared protocol code starts with ``_``)."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(venue_modules.__path__) if not m.name.startswith("_")))


def names() -> tuple[str, ...]:
    """Every venue the simulator can serve: the registered venues (by venue id) that have a
    simulator, then modules of ``cexnode.sim.venues`` without a descriptor (by name), then venues
    added with :func:`register` alone (in the order they were added)."""
    modules = _package_modules()
    with _lock:
        registered = list(_registered)
    out = [d.name for d in venue_registry.descriptors()
           if d.sim_venue or d.name in modules or d.name in registered]
    seen = set(out)
    out += [n for n in modules if n not in seen]
    seen.update(out)
    out += [n for n in registered if n not in seen]
    return tuple(out)


def _module_class(module_path: str) -> "type[SimVenue]":
    cls = _loaded.get(module_path)
    if cls is None:
        module = importlib.import_module(module_path)
        cls = getattr(module, "SIM_VENUE", None)
        if cls is None:
            raise RuntimeError("simulator venue module %s exports no SIM_VENUE" % module_path)
        _loaded[module_path] = cls
    return cls


def find(name: str) -> "type[SimVenue] | None":
    """The protocol class serving venue ``name``, or None when the simulator has none."""
    with _lock:
        cls = _registered.get(name)
    if cls is not None:
        return cls
    try:
        path = venue_registry.descriptor(name).sim_venue
    except venue_registry.UnknownVenueError:
        path = ""
    if not path and name in _package_modules():
        path = "%s.%s" % (venue_modules.__name__, name)
    return _module_class(path) if path else None


def venue_class(name: str) -> "type[SimVenue]":
    """The protocol class serving venue ``name``; :class:`UnknownSimVenueError` naming the venues
    the simulator serves when there is none."""
    cls = find(name)
    if cls is None:
        raise UnknownSimVenueError("the simulator has no venue %r; it serves %s" % (name, ", ".join(names())))
    return cls
