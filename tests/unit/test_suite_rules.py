"""House rules of the test suite itself, checked on the source (ast, nothing imported or run).

A test module never imports another test module (nor a conftest.py): helpers two modules share
live in a support module (tests/support/, tests/reference/, tests/audit_check.py ...) or in a
conftest.py fixture. Importing a test module ties one file's tests to another file's helpers, and
to pytest's import mode (under --import-mode=importlib a test module is not importable by name)."""
from __future__ import annotations

import ast
import pathlib
import textwrap

TESTS = pathlib.Path(__file__).resolve().parents[1]


def suite_module_names() -> set[str]:
    """Every module name pytest collects from tests/ (test_*.py) plus conftest."""
    return {p.stem for p in TESTS.rglob("test_*.py")} | {"conftest"}


def forbidden_imports(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, dotted name) of every import of a module in ``names``, at any depth: ``import
    test_x``, ``import tests.unit.test_x``, ``from test_x import y``, ``from .test_x import y``,
    ``from tests.unit import test_x``, ``from . import test_x``, and ``importlib.import_module`` /
    ``__import__`` of a literal name. Function-local imports count too."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if names & set(a.name.split("."))]
        elif isinstance(node, ast.ImportFrom):
            mod = "." * node.level + (node.module or "")
            if names & set((node.module or "").split(".")):
                found.append((node.lineno, mod))
            found += [(node.lineno, mod + ("" if mod.endswith(".") else ".") + a.name)
                      for a in node.names if a.name in names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            fn = node.func
            called = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
            if called in ("import_module", "__import__") and names & set(node.args[0].value.split(".")):
                found.append((node.lineno, node.args[0].value))
    return found


def test_no_test_module_imports_another():
    names = suite_module_names()
    files = sorted(TESTS.rglob("*.py"))
    assert len(names) > 30 and len(files) > len(names)          # the scan saw the suite
    bad = ["%s:%d imports %s" % (p.relative_to(TESTS), line, mod)
           for p in files for line, mod in forbidden_imports(p.read_text(), names)]
    assert bad == [], "move the shared helpers into tests/support (or a conftest fixture):\n" + "\n".join(bad)


def test_the_check_finds_every_import_form():
    # (indented, so that a grep for import lines in tests/ does not find these samples)
    names = {"test_a", "conftest"}
    src = textwrap.dedent("""
        import test_a
        import tests.unit.test_a as t
        from test_a import H
        from .test_a import H
        from tests.unit import test_a, test_b
        from . import test_a
        from conftest import fixture
        import importlib
        importlib.import_module("test_a")
        __import__("unit.test_a")

        def later():
            from test_a import running
        """)
    assert sorted(line for line, _ in forbidden_imports(src, names)) == [2, 3, 4, 5, 6, 7, 8, 10, 11, 14]
    allowed = textwrap.dedent("""
        import test_b
        from support.executor_harness import H
        from support import sim_gateways as gs
        from reference.sync_ref import RefSync
        from audit_check import check_audit
        from hypothesis import strategies as st
        """)
    assert forbidden_imports(allowed, names) == []
