"""The node's Cython parsers read every public frame the simulator produces, with the diff's values
(one generator run, all channels and variants of the three venues, a ``full`` reset included)."""
from __future__ import annotations

from collections import Counter

from cexnode._core.parsers.gateio_futures import GateFuturesParser
from cexnode._core.parsers.gateio_spot import GateSpotParser
from cexnode._core.parsers.mexc_spot import MexcSpotParser
from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator

CHANNELS = {
    "gateio_spot": [("book", "100"), ("book", "20"), ("obu", "400"), ("obu", "50"), ("ticker", None), ("trades", None)],
    "gateio_futures": [("book", ("100", False)), ("book", ("100", True)), ("book", ("20", True)), ("obu", ("50", True)),
                       ("ticker", False), ("ticker", True), ("trades", False), ("trades", True)],
    "mexc_spot": [("book", "10ms"), ("limit", 5), ("ticker", "100ms"), ("trades", "10ms")],
}


def _num(s):
    from decimal import Decimal
    return Decimal(str(s))


def test_parsers_read_every_sim_frame_with_its_values():
    sim = ExchangeSimulator(SimConfig(seed=8, book_levels=20, futures_decimal_sizes=True), clock="manual", trading=False)
    parsers = {"gateio_spot": GateSpotParser(), "gateio_futures": GateFuturesParser(), "mexc_spot": MexcSpotParser()}
    seen = Counter()
    for i in range(200):
        for st, diff in sim.generator.step(1_700_000_000_000 + i):
            v = sim.venue(st.venue)
            if i == 100 and v.supports_full:
                diff = sim.generator.reset_book(st, 1_700_000_000_000 + i)
            inst = v.instruments[diff.symbol]
            for kind, variant in CHANNELS[st.venue]:
                for data, binary in v._frames_for(kind, diff, variant):
                    events = parsers[st.venue].decode(data, binary)
                    assert events and all(e["type"] != "error" for e in events), (st.venue, kind, events, data[:200])
                    # futures without X-Gate-Size-Decimal: sizes truncated toward zero (venue rule)
                    trunc = st.venue == "gateio_futures" and not (variant[1] if isinstance(variant, tuple) else variant)
                    size = (lambda q: inst.size(q).to_integral_value(rounding="ROUND_DOWN")) if trunc else inst.size
                    if kind in ("book", "obu") and st.venue != "mexc_spot":    # Gate: top-N view changes
                        want_b, want_a = v.view_changes(kind, diff, v.level_of(variant))
                    else:
                        want_b, want_a = diff.bids, diff.asks
                    for e in events:
                        seen[(st.venue, kind, e["type"])] += 1
                        if kind in ("book", "obu"):
                            assert (e["first"], e["last"]) == ((diff.last if diff.full and kind == "obu" else diff.first), diff.last)
                            assert e["type"] == ("book_snapshot" if diff.full else "book_delta")
                            assert [(_num(p), _num(q)) for p, q in e["bids"]] == [(inst.price(p), size(q)) for p, q in want_b]
                            assert [(_num(p), _num(q)) for p, q in e["asks"]] == [(inst.price(p), size(q)) for p, q in want_a]
    for venue, channels in CHANNELS.items():
        for kind, _ in channels:
            assert any(k[:2] == (venue, kind) for k in seen), (venue, kind)
    # one reset per book, seen on both book channels (20 and 100 levels)
    assert seen[("gateio_spot", "book", "book_snapshot")] == 2 * len(sim.venue("gateio_spot").instruments)
