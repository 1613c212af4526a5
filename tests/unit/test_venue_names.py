"""Venue names appear only in a venue's own places (tests/support/venue_names.py): its package
``cexnode/adapters/<venue>/``, the simulated venues ``cexnode/sim/venues/`` and its Cython parser
``cexnode/_core/parsers/<venue>.*``. Everything else looks venues up in the registry."""
from __future__ import annotations

from pathlib import Path

from support import venue_names


def test_no_venue_name_outside_the_venues_own_places():
    found = venue_names.offences()
    assert not found, "venue names outside adapters/<venue>/, sim/venues/, _core/parsers/<venue>.*:\n" + "\n".join(
        "%s:%d: %s" % f for f in found[:40])


def test_the_check_finds_a_venue_name_where_it_does_not_belong(tmp_path):
    # the rule itself: identifiers, strings and prose alike; a gateway is not a venue
    assert venue_names.VENUE_WORD.search('VENUE = "gateio_spot"')
    assert venue_names.VENUE_WORD.search("# MEXC closes the connection after 24 h")
    assert venue_names.VENUE_WORD.search("X-Gate-RateLimit-Reset-Timestamp")
    assert venue_names.VENUE_WORD.search("Gate's obu stream")
    assert not venue_names.VENUE_WORD.search("the order gateway aggregates delegated requests")
    venues = venue_names.package_venues()
    assert len(venues) >= 3
    v = venues[0]
    assert venue_names.allowed("adapters/%s/adapter.py" % v, venues)
    assert venue_names.allowed("sim/venues/anything.py", venues)
    assert venue_names.allowed("_core/parsers/%s.pyx" % v, venues)
    assert not venue_names.allowed("_core/parsers/json.pxd", venues)
    assert not venue_names.allowed("adapters/base.py", venues)
    assert not venue_names.allowed("engine.py", venues)
    # and a file outside those places is reported with its line, one inside them is not
    pkg = tmp_path / "cexnode"
    (pkg / "adapters" / "somevenue").mkdir(parents=True)
    (pkg / "adapters" / "somevenue" / "__init__.py").write_text("# MEXC-like rules live here\n")
    (pkg / "generic.py").write_text("x = 1\n# rotate before MEXC's limit\n")
    found = venue_names.offences(package=pkg)
    assert [(Path(p).name, n) for p, n, _ in found] == [("generic.py", 2)]
