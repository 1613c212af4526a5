"""cexnode._core — every compiled (Cython) module of the hot path.

There is deliberately no pure-Python fallback: the pure-Python reference implementations used as
test oracles live in ``tests/``. If the extensions are missing the node cannot run, and says so.
"""

import importlib.machinery
import pathlib


class CoreNotBuiltError(ImportError):
    pass


def _check_built() -> None:
    here = pathlib.Path(__file__).parent
    pyx = sorted(here.rglob("*.pyx"))
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    missing = [
        str(p.relative_to(here)) for p in pyx
        if not any(p.with_suffix("").with_name(p.stem + s).exists() for s in suffixes)
    ]
    if missing:
        raise CoreNotBuiltError(
            "cexnode's Cython extensions are not built (missing: %s). Run `make build` "
            "(or `make test` / `make demo`, which build first)." % ", ".join(missing)
        )


_check_built()
