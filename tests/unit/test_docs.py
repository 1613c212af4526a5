"""The documentation a user reads first: README.md and docs/*.md.

README is short and starts with the two set-up commands; every relative link in the documentation
resolves to a file of this repository (and to a heading, when it names one); the generated
benchmark table is the one perf/summary.py makes from perf/results/ (the config reference has its
own check in test_config.py).
"""
from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED_DOCS = [README, *DOCS]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose(text: str) -> str:
    """The text without fenced code blocks (a link-like string in code is not a link)."""
    return _FENCE.sub("", text)


def _links(text: str) -> list[str]:
    return [m.group(1) for m in _LINK.finditer(_prose(text))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def _anchors(path: pathlib.Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", _prose(path.read_text()), re.M):
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else "%s-%d" % (slug, n))
    return out


def test_readme_is_short():
    lines = README.read_text().splitlines()
    assert len(lines) < 200, "README.md has %d lines: move reference material to docs/" % len(lines)


def test_readme_starts_with_the_two_setup_commands():
    """Before anything else (the title aside): one code block with exactly `make demo` and `make test`."""
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines) and (not lines[i].strip() or (i == 0 and lines[i].startswith("# "))):
        i += 1
    assert i < len(lines) and lines[i].startswith("```"), "README must start with the set-up commands: %r" % lines[i:i + 1]
    j = lines.index("```", i + 1)
    commands = [ln.split("#", 1)[0].strip() for ln in lines[i + 1:j]]
    assert [c for c in commands if c] == ["make demo", "make test"]


def test_readme_never_points_outside_the_repository():
    text = README.read_text()
    assert "../" not in text, "README.md mentions a path outside the repository"
    for target in _links(text):
        assert not target.startswith(("/", "file:")), target


@pytest.mark.parametrize("doc", LINKED_DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    """Every relative link names an existing file or folder inside the repository and, with a
    #fragment, a heading of that file."""
    bad = []
    links = _links(doc.read_text())
    for target in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):          # http:, https:, mailto:
            continue
        path, _, frag = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if ROOT not in dest.parents and dest != ROOT:
            bad.append("%s: outside the repository" % target)
        elif not dest.exists():
            bad.append("%s: no such file" % target)
        elif frag and (dest.is_dir() or frag not in _anchors(dest)):
            bad.append("%s: no heading #%s in %s" % (target, frag, dest.relative_to(ROOT)))
    assert not bad, "%s:\n  %s" % (doc.relative_to(ROOT), "\n  ".join(bad))


def test_docs_never_point_outside_the_repository():
    for doc in DOCS:
        assert "../shared" not in doc.read_text(), doc


def test_readme_links_every_doc():
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in _links(README.read_text())}
    assert set(DOCS) <= linked, sorted(str(d.relative_to(ROOT)) for d in set(DOCS) - linked)


def test_link_checker_sees_links_and_anchors(tmp_path):
    """The checker itself: links in prose are found, links in code blocks are not, and anchors
    follow GitHub's rules (punctuation dropped, duplicates numbered)."""
    doc = tmp_path / "x.md"
    doc.write_text("# A `b` c, d\n\n## Tail\n\n## Tail\n\nsee [x](y.md#tail-1) and [`z`](w/)\n\n"
                   "```\n[no](not-a-link.md)\n```\n")
    assert _links(doc.read_text()) == ["y.md#tail-1", "w/"]
    assert _anchors(doc) == {"a-b-c-d", "tail", "tail-1"}


def test_benchmark_table_is_current():
    spec = importlib.util.spec_from_file_location("perf_summary", ROOT / "perf" / "summary.py")
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)
    text = summary.DOC.read_text()
    assert text.count(summary.BEGIN) == 1 and text.count(summary.END) == 1
    block = text.split(summary.BEGIN, 1)[1].split(summary.END, 1)[0]
    assert block == summary.table(), "docs/benchmarks.md is stale: run `python perf/summary.py --write`"
