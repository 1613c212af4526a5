"""The venue registry: every ``cexnode.adapters.<venue>`` package that exports ``DESCRIPTOR``.

Discovered on first use (not at import, so that ``cexnode.config`` and the venue packages can
import each other's modules freely), ordered by venue id. :func:`register` adds a venue that lives
outside the package (tests build a fake venue this way); :func:`unregister` takes it out again.

Nothing here is consulted per message: the engine, config loader and CLI ask once at start.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
import threading

import cexnode.adapters as pkg
from cexnode.adapters.descriptor import VenueDescriptor

__all__ = ["UnknownVenueError", "descriptors", "descriptor", "names", "by_id", "register", "unregister",
           "spot_names", "perpetual_names"]

_lock = threading.Lock()
_by_name: dict[str, VenueDescriptor] = {}
_discovered = False


class UnknownVenueError(KeyError):
    """A venue name no package registers."""

    def __str__(self) -> str:  # KeyError quotes its argument; this is a sentence
        return str(self.args[0]) if self.args else ""


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    with _lock:
        if _discovered:
            return
        found: dict[str, VenueDescriptor] = {}
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.ispkg:
                continue
            module = importlib.import_module("%s.%s" % (pkg.__name__, mod.name))
            desc = getattr(module, "DESCRIPTOR", None)
            if isinstance(desc, VenueDescriptor):
                if desc.name != mod.name:
                    raise RuntimeError("venue package %s exports a descriptor named %r" % (mod.name, desc.name))
                found[desc.name] = desc
        for desc in found.values():
            _add(desc)
        _discovered = True


def _add(desc: VenueDescriptor) -> None:
    other = _by_name.get(desc.name)
    if other is not None and other is not desc:
        raise ValueError("venue %r is registered twice" % desc.name)
    for d in _by_name.values():
        if d.venue_id == desc.venue_id and d.name != desc.name:
            raise ValueError("venue id %d of %r is taken by %r" % (desc.venue_id, desc.name, d.name))
    _by_name[desc.name] = desc


def register(desc: VenueDescriptor) -> VenueDescriptor:
    """Add a venue defined outside ``cexnode.adapters`` (a plug-in or a test's fake venue)."""
    _discover()
    with _lock:
        _add(desc)
    return desc


def unregister(name: str) -> None:
    _discover()
    with _lock:
        _by_name.pop(name, None)


def descriptors() -> tuple[VenueDescriptor, ...]:
    """Every registered venue, by venue id."""
    _discover()
    return tuple(sorted(_by_name.values(), key=lambda d: d.venue_id))


def names() -> tuple[str, ...]:
    return tuple(d.name for d in descriptors())


def spot_names() -> tuple[str, ...]:
    return tuple(d.name for d in descriptors() if d.market == "spot")


def perpetual_names() -> tuple[str, ...]:
    return tuple(d.name for d in descriptors() if d.market == "perpetual")


def descriptor(name: str) -> VenueDescriptor:
    _discover()
    try:
        return _by_name[name]
    except KeyError:
        known = names()
        hint = difflib.get_close_matches(name, known, n=1)
        raise UnknownVenueError("unknown venue %r%s; known venues: %s" % (
            name, " (did you mean %r?)" % hint[0] if hint else "", ", ".join(known))) from None


def by_id(venue_id: int) -> VenueDescriptor:
    for d in descriptors():
        if d.venue_id == venue_id:
            return d
    raise UnknownVenueError("no venue has id %d" % venue_id)
