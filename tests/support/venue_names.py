"""Where venue names may appear in the ``cexnode`` package: only in a venue's own places.

A venue is one package (``cexnode/adapters/<venue>/``), one simulator venue (``cexnode/sim/venues/``)
and one Cython parser (``cexnode/_core/parsers/<venue>.*``). Everything else (engine, net, capture,
execution, metrics, config, the CLI, the core's generic structures) looks venues up in the registry,
and its comments speak of "a venue", not of one by name.

Run as a script to list the offending lines: ``python tests/support/venue_names.py [paths...]``.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cexnode"

# The venues' names and the exchanges' names, in identifiers, strings and prose alike:
# mexc_spot, MexcSpotGateway, "Gate.io", gateio_futures, X-Gate-RateLimit-*, "Gate's".
# (``gateway``, ``aggregate``, ``delegate`` are not venue names.)
VENUE_WORD = re.compile(r"(?i)mexc|gate[._]?io|(?<![a-z])gate(?![a-z])")

TEXT_SUFFIXES = {".py", ".pyx", ".pxd", ".pyi", ".md", ".txt", ".yaml", ".yml", ".toml", ".cfg", ".h", ".c"}


def allowed(rel: str, venues: tuple[str, ...]) -> bool:
    """``rel``: path relative to the package root, with ``/``."""
    parts = rel.split("/")
    if parts[0] == "adapters" and len(parts) > 2 and parts[1] in venues:
        return True
    if parts[:2] == ["sim", "venues"]:
        return True
    if parts[:2] == ["_core", "parsers"] and len(parts) == 3 and parts[2].split(".")[0] in venues:
        return True
    return False


def package_venues(package: Path = PACKAGE) -> tuple[str, ...]:
    """Venue packages under cexnode/adapters (each directory with an ``__init__.py``)."""
    base = package / "adapters"
    if not base.is_dir():
        return ()
    return tuple(sorted(p.name for p in base.iterdir() if (p / "__init__.py").exists()))


def offences(paths: list[Path] | None = None, package: Path = PACKAGE) -> list[tuple[str, int, str]]:
    """(path relative to the repository, line number, line) of every venue name outside its places
    (``package``: the package root the places are relative to)."""
    venues = package_venues(package)
    out = []
    roots = paths or [package]
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            if f.suffix not in TEXT_SUFFIXES or "__pycache__" in f.parts:
                continue
            # generated C of the Cython modules is a build product, not source
            if f.suffix == ".c" and f.with_suffix(".pyx").exists():
                continue
            rel = f.resolve().relative_to(package.resolve()).as_posix()
            if allowed(rel, venues):
                continue
            for no, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if VENUE_WORD.search(line):
                    out.append((os.path.relpath(f, ROOT), no, line.strip()))
    return out


if __name__ == "__main__":
    found = offences([Path(a).resolve() for a in sys.argv[1:]] or None)
    for path, no, line in found:
        print("%s:%d: %s" % (path, no, line[:140]))
    print("%d line(s)" % len(found), file=sys.stderr)
    sys.exit(1 if found else 0)
