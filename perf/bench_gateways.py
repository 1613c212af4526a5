"""Live order entry on loopback: ``OrderGateway.place`` from call to DEFINITIVE answer, against the
simulator's trading side in the same process (signature built by the gateway, verified by the
simulator, order matched, answer parsed into an OrderState).

* ``gateway_place_roundtrip``: median/p99 per transport, side by side in one run — Gate spot
  through the WebSocket order API (the main number), Gate spot over REST, Gate futures through the
  WebSocket order API, MEXC spot over REST. Orders are IOC limit buys priced below the bid: they
  never fill, so every sample sees the same book and balances. The seeds budget "<20 ms per order"
  end to end, which the network dominates; the target here is the client + simulator share on
  loopback: under 1 ms. REST goes through the venue's RestManager with its rate limits off (they
  would be what is measured: Gate spot allows 10 orders/s per market).
"""
from __future__ import annotations

import itertools
import time
from decimal import Decimal

from _timing import summarize

KEY, SECRET = "bench-key", "bench-secret"


def gateway_place_roundtrip(quick: bool) -> dict:
    import uvloop

    from cexnode.adapters.gateio_futures.execution import GateFuturesGateway
    from cexnode.adapters.gateio_spot.execution import GateSpotGateway
    from cexnode.adapters.live import VenueInstrument
    from cexnode.adapters.mexc_spot.execution import MexcSpotGateway
    from cexnode.config import Secret, SimConfig
    from cexnode.execution.gateway import OrderRequest, OrderStatus, Side, TimeInForce
    from cexnode.net.rest import RestManager
    from cexnode.sim import ExchangeSimulator

    n = 300 if quick else 2000
    ids = itertools.count(1)
    symbols = {"mexc_spot": "BTC/USDT", "gateio_spot": "BTC/USDT", "gateio_futures": "BTC/USDT:USDT"}

    def order(sim, venue) -> OrderRequest:
        v = sim.venue(venue)
        si = v.instrument(symbols[venue])
        bid = v.book(symbols[venue]).best_bid()[0]
        price = si.price(bid - 20)                 # below the bid: an IOC that never fills
        # one step, or enough steps for twice the venue's minimum notional (and its minimum size)
        per_step = si.base_qty(1) * price
        steps = max(1, int(si.min_qty.scaleb(si.size_decimals)), int((si.min_notional * 2 + 10) / per_step) + 1)
        qty = si.base_qty(steps)
        qs, ps = max(0, -qty.as_tuple().exponent), max(0, -price.as_tuple().exponent)
        return OrderRequest(client_id="b%d" % next(ids), venue=venue, symbol=symbols[venue], side=Side.BUY,
                            qty_m=int(qty.scaleb(qs)), price_m=int(price.scaleb(ps)), qty_scale=qs, price_scale=ps,
                            tif=TimeInForce.IOC)

    async def measure(sim, venue, cls, **kw) -> list[float]:
        urls = sim.urls[venue]
        si = sim.venue(venue).instrument(symbols[venue])
        inst = {symbols[venue]: VenueInstrument(symbol=symbols[venue], venue_symbol=si.venue_symbol,
                                                multiplier=si.multiplier)}
        # the venues' published REST limits are off here (Gate spot: 10 orders/s per market would be
        # all this measures); the WS order API path has no client-side limit either way
        rest = RestManager(urls.rest, venue=venue, limits=[])
        gw = cls(rest_url=urls.rest, ws_url=urls.ws, api_key=Secret(KEY), api_secret=Secret(SECRET),
                 time_sync_interval_s=0, instruments=inst, rest=rest, **kw)
        await gw.start()
        try:
            for _ in range(50):                      # warm-up (connections, caches)
                await gw.place(order(sim, venue))
            out = []
            pc = time.perf_counter_ns
            for _ in range(n):
                o = order(sim, venue)
                t0 = pc()
                ack = await gw.place(o)
                out.append(pc() - t0)
                assert ack.definitive and ack.state.status is not OrderStatus.REJECTED, ack
            return out
        finally:
            await gw.stop()
            await rest.close()

    async def main():
        sim = ExchangeSimulator(SimConfig(seed=3, book_levels=20), venues={v: [s] for v, s in symbols.items()},
                                clock="manual")
        async with sim:
            for v in symbols:
                sim.trading.add_account(v, KEY, SECRET, {"USDT": Decimal(10) ** 9, "BTC": Decimal(10) ** 4})
            return {
                "gate_spot_ws_api": await measure(sim, "gateio_spot", GateSpotGateway, ws_order_api=True),
                "gate_spot_rest": await measure(sim, "gateio_spot", GateSpotGateway, ws_order_api=False),
                "gate_futures_ws_api": await measure(sim, "gateio_futures", GateFuturesGateway, ws_order_api=True),
                "mexc_spot_rest": await measure(sim, "mexc_spot", MexcSpotGateway),
            }

    res = uvloop.run(main())
    out = summarize(res["gate_spot_ws_api"])
    out.update(name="gateway_place_roundtrip", target_ns=1_000_000, orders_per_path=n,
               paths={k: {kk: round(vv) for kk, vv in summarize(v).items()} for k, v in res.items()},
               ratio_rest_over_ws_api=round(summarize(res["gate_spot_rest"])["median_ns"] / out["median_ns"], 2),
               note="median/p99 = Gate spot via the WebSocket order API; client (gateway) + simulator in one process "
                    "on 127.0.0.1, IOC orders that never fill")
    return out


BENCHMARKS = [gateway_place_roundtrip]
