"""The simulator names venues only in ``cexnode/sim/venues/``: the generic simulator (server, books,
generator, faults, playback, instruments, trading) asks the venue's class for what differs."""
from __future__ import annotations

from support.venue_names import PACKAGE, offences


def test_the_generic_simulator_names_no_venue():
    found = offences([PACKAGE / "sim"])
    assert found == [], "venue names outside cexnode/sim/venues/:\n" + "\n".join(
        "%s:%d: %s" % f for f in found)

