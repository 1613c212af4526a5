"""Regenerate the generated sections of docs/: ``python scripts/update_docs.py``.

* docs/configuration.md, between ``config-reference:begin`` / ``config-reference:end``: the config
  reference from the schema (``python -m cexnode config schema --markdown`` prints the same);
* docs/benchmarks.md, between ``benchmarks:begin`` / ``benchmarks:end``: the table of
  perf/results/*.json (``python perf/summary.py --write`` writes only that one).

tests/unit/test_config.py and tests/unit/test_docs.py fail while either is stale.
"""
from __future__ import annotations

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG_DOC = ROOT / "docs" / "configuration.md"
CONFIG_BEGIN, CONFIG_END = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"


def splice(path: pathlib.Path, begin: str, end: str, body: str) -> None:
    text = path.read_text()
    i, j = text.index(begin) + len(begin), text.index(end)
    path.write_text(text[:i] + body + text[j:])


def main() -> int:
    sys.path[:0] = [str(ROOT), str(ROOT / "perf")]
    from cexnode.config import markdown_reference
    import summary

    splice(CONFIG_DOC, CONFIG_BEGIN, CONFIG_END, markdown_reference())
    summary.write_doc()
    print("updated %s and %s" % (CONFIG_DOC.relative_to(ROOT), summary.DOC.relative_to(ROOT)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
