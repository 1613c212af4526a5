"""Balance pushes carry the venue's clock (whole ms); the executor compares them with its own send
times. The gateways convert with the server-time offset, so a push observed before our last order
is never taken as fresh because the venue's clock runs ahead of ours (and one after it is not
dropped because it runs behind)."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from cexnode._core import feed
from cexnode.adapters.gateio_spot.execution import GateSpotGateway
from cexnode.adapters.mexc_spot.execution import MexcSpotGateway
from cexnode.config import Secret
from support.executor_harness import H, running

D = Decimal
URLS = dict(rest_url="http://127.0.0.1:9", ws_url="ws://127.0.0.1:9")


def _mexc(offset_ms: int) -> MexcSpotGateway:
    gw = MexcSpotGateway(api_key=Secret("k"), api_secret=Secret("s"), private_stream=False, **URLS)
    gw.server_clock.offset_ms = offset_ms
    return gw


def test_mexc_balance_push_is_stamped_on_our_clock():
    gw = _mexc(250)                                   # the venue's clock is 250 ms ahead of ours
    got = []
    gw.subscribe_balances(lambda venue, bals: got.append((venue, bals)))
    t_venue = 1_700_000_000_123
    gw.on_private(feed.MSG_BALANCE, {"asset": "USDT", "free": "10", "frozen": "1", "time": t_venue})
    venue, bals = got[-1]
    assert venue == "mexc_spot" and bals["USDT"].free == D(10) and bals["USDT"].locked == D(1)
    assert bals["USDT"].ts_ns == (t_venue - 250) * 1_000_000
    # no venue time: stamped now (ours)
    before = time.time_ns()
    gw.on_private(feed.MSG_BALANCE, {"asset": "BTC", "free": "2", "frozen": "0"})
    assert all(b.ts_ns >= before for b in got[-1][1].values())


def test_gate_balance_push_is_stamped_on_our_clock():
    gw = GateSpotGateway(api_key=Secret("k"), api_secret=Secret("s"), private_stream=False, ws_order_api=False,
                         **URLS)
    gw.server_clock.offset_ms = -300                  # the venue's clock is 300 ms behind ours
    got = []
    gw.subscribe_balances(lambda venue, bals: got.append(bals))
    gw.on_push("spot.balances", [{"currency": "USDT", "available": "5", "total": "6",
                                  "timestamp_ms": "1700000000123"}], None)
    assert got[-1]["USDT"].free == D(5) and got[-1]["USDT"].locked == D(1)
    assert got[-1]["USDT"].ts_ns == (1_700_000_000_123 + 300) * 1_000_000
    assert gw.local_ns(None) is None and gw.local_ns("x") is None and gw.local_ns(0) is None


def test_executor_freshness_with_a_venue_clock_ahead_of_ours(tmp_path):
    """Venue 250 ms ahead: a push the venue stamped 5 ms before our send (in true time) is stale;
    one stamped 5 ms after it is fresh. Without the conversion the first looked 245 ms newer than
    the send and was taken as the post-trade balance."""
    async def main():
        h = H(tmp_path)
        gw = _mexc(250)
        h.ex.gateways["mexc_spot"] = gw
        async with running(h):
            sent = h.ex.balances.order_sent("mexc_spot")      # as the executor marks a send
            sent_ms = sent // 1_000_000
            gw.on_private(feed.MSG_BALANCE, {"asset": "USDT", "free": "1", "frozen": "0", "time": sent_ms + 250 - 5})
            assert "mexc_spot" in h.ex.balances.stale(["mexc_spot"])          # before our order: not used
            gw.on_private(feed.MSG_BALANCE, {"asset": "USDT", "free": "2", "frozen": "0", "time": sent_ms + 250 + 5})
            assert h.ex.balances.stale(["mexc_spot"]) == []
            assert h.ex.balances.free("mexc_spot")["USDT"] == D(2)
    asyncio.run(asyncio.wait_for(main(), 20))
