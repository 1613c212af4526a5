"""Build: one extension per ``cexnode/_core/**/*.pyx`` (uvloop/asyncpg style).

Compiler directives live here and only here. ``CEXNODE_DEBUG=1`` builds with bounds, overflow,
None and initialisation checks on, plus the C macro ``CEXNODE_DEBUG`` that enables debug-only
invariant checks in the ``.pxd`` helpers. Generated C goes to ``build/cython`` (never the source
tree). Cython warnings are errors.

``CEXNODE_BUILD_ONLY=book,fixedpoint`` (developer aid) limits the build to modules whose dotted
name contains one of the given words.
"""
import os
import pathlib
import sys

from setuptools import Extension, setup

ROOT = pathlib.Path(__file__).parent.resolve()
DEBUG = os.environ.get("CEXNODE_DEBUG", "") not in ("", "0")


def _extensions():
    from Cython.Build import cythonize
    from Cython.Compiler import Options

    Options.warning_errors = True
    Options.docstrings = True

    directives = {
        "language_level": 3,
        "boundscheck": False,
        "wraparound": False,
        "initializedcheck": False,
        "cdivision": True,
        "embedsignature": True,
        "warn.undeclared": False,
        "warn.unreachable": True,
        "warn.maybe_uninitialized": False,
    }
    macros = [("NPY_NO_DEPRECATED_API", "0")]
    cflags = ["-O2", "-fno-strict-aliasing"]
    if DEBUG:
        directives.update(
            boundscheck=True,
            initializedcheck=True,
            overflowcheck=True,
            nonecheck=True,
        )
        macros.append(("CEXNODE_DEBUG", "1"))
        cflags = ["-O0", "-g3"]
    else:
        macros.append(("CEXNODE_DEBUG", "0"))
        cflags.append("-DNDEBUG")

    only = [w for w in os.environ.get("CEXNODE_BUILD_ONLY", "").split(",") if w]
    exts = []
    for pyx in sorted((ROOT / "cexnode" / "_core").rglob("*.pyx")):
        rel = pyx.relative_to(ROOT)
        name = ".".join(rel.with_suffix("").parts)
        if only and not any(w in name for w in only):
            continue
        exts.append(
            Extension(
                name,
                [str(rel)],
                include_dirs=[str(ROOT / "cexnode" / "_core" / "include")],
                define_macros=macros,
                extra_compile_args=cflags,
            )
        )
    build_dir = "build/cython-debug" if DEBUG else "build/cython"
    return cythonize(
        exts,
        compiler_directives=directives,
        build_dir=build_dir,
        nthreads=int(os.environ.get("CEXNODE_JOBS", "2")),
        quiet=True,
        # Rebuild when the debug flag flips: the .c differs per mode (separate build_dir).
        force=os.environ.get("CEXNODE_FORCE", "") not in ("", "0"),
    )


setup(ext_modules=_extensions() if "clean" not in sys.argv else [])
