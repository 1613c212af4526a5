"""Replay loops of a generated universe (``sim.universe.replay_steps``, cexnode/sim/replay.py) over
real sockets on 127.0.0.1: a client rebuilding a book from the REST snapshot and the stream (the
sequence-rule oracle, tests/support/sim_books.py) equals the true book after every step, through
loops of template-rendered pushes, the views of the N-level channels, and a fill that ends the
loop. The manual clock decides when the market moves; every wait is bounded."""
from __future__ import annotations

import aiohttp
import pytest

from cexnode.config import SimConfig, SimUniverseConfig
from cexnode.sim import ExchangeSimulator
from support.sim_books import (TIMEOUT, Follower, GateFutures20Client, GateFuturesClient, GateObuClient,
                               GateSpot20Client, GateSpotClient, MexcClient)
from support.sim_gateways import run

CHANNELS = [("gateio_spot", GateSpotClient), ("gateio_spot", GateSpot20Client), ("gateio_spot", GateObuClient),
            ("gateio_futures", GateFuturesClient), ("gateio_futures", GateFutures20Client),
            ("mexc_spot", MexcClient)]
LOOP = 4          # recorded steps: a loop is 2 x 4 pushes
DEPTH = {GateSpot20Client: 20, GateFutures20Client: 20}     # 20-level channels follow the top 20


def _sim(venue):
    uc = SimUniverseConfig(enabled=True, spot_pairs=3, common_pairs=3, perpetuals=3, replay_steps=LOOP,
                           step_ms={venue: 10.0})
    return ExchangeSimulator(SimConfig(seed=11, book_levels=30, universe=uc), clock="manual", trading=False)


@pytest.mark.parametrize("venue,client_cls", CHANNELS, ids=[c.__name__ for _, c in CHANNELS])
def test_client_follows_replayed_books_and_a_fill_ends_the_loop(venue, client_cls):
    async def main():
        sim = _sim(venue)
        v = sim.venue(venue)
        vsym = sorted(v.books)[0]
        depth = DEPTH.get(client_cls)
        async with sim, aiohttp.ClientSession() as session:
            client = client_cls(sim, venue, vsym, session)
            await client.connect()
            await client.ws.receive(timeout=TIMEOUT)          # the ack
            f = Follower(client)
            await f.resync()
            tops = []
            for step in range(1, 4 * 2 * LOOP + 1):
                sim.tick()
                await f.catch_up(v.book(vsym).last_id)
                f.assert_equal(v, vsym, depth)
                tops.append(v.book(vsym).top())
            # recorded, then back to the start and forth again: the book repeats every 2 x LOOP steps
            assert tops[LOOP - 1] == tops[3 * LOOP - 1] == tops[5 * LOOP - 1]
            assert tops[LOOP - 1] != tops[2 * LOOP - 1]
            # a fill takes the best bid: published as it is, and the loop ends there; the book goes
            # on from the fill and records a new loop
            best = v.book(vsym).best_bid()
            v.publish_change(vsym, bids=[(best[0], 0)])
            await f.catch_up(v.book(vsym).last_id)
            f.assert_equal(v, vsym, depth)
            after = []
            for _ in range(4 * LOOP):
                sim.tick()
                await f.catch_up(v.book(vsym).last_id)
                f.assert_equal(v, vsym, depth)
                after.append(v.book(vsym).top())
            assert after[LOOP - 1] not in tops
            assert after[LOOP - 1] == after[3 * LOOP - 1]

    run(main(), 60)
