"""The live gateways against the simulator's trading side: a simulator with one registered account
per venue and a started gateway (``Session``), orders priced at the touch, bounded waits. Shared by
tests/integration/test_gateways_sim.py and tests/integration/test_order_path.py."""
from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import aiohttp

from cexnode.adapters.gateio_futures import instruments as gate_futures_instruments
from cexnode.adapters.gateio_futures.execution import GateFuturesGateway
from cexnode.adapters.gateio_spot import instruments as gate_spot_instruments
from cexnode.adapters.gateio_spot.execution import GateSpotGateway
from cexnode.adapters.live import VenueInstrument, instruments_from_symbol_map
from cexnode.adapters.mexc_spot import instruments as mexc_instruments
from cexnode.adapters.mexc_spot.execution import MexcSpotGateway
from cexnode.config import Secret, SimConfig
from cexnode.execution.gateway import OrderGateway, OrderRequest, Side, TimeInForce
from cexnode.sim import ExchangeSimulator

VENUES = ["mexc_spot", "gateio_spot", "gateio_futures"]
SYMBOL = {"mexc_spot": "BTC/USDT", "gateio_spot": "BTC/USDT", "gateio_futures": "BTC/USDT:USDT"}
KEY, SECRET = "test-key-1", "test-secret-1"
_ids = itertools.count(1)


def run(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def cid() -> str:
    return "t%d" % next(_ids)


def make_sim(venue: str) -> ExchangeSimulator:
    return ExchangeSimulator(SimConfig(seed=11, book_levels=10), venues={venue: [SYMBOL[venue]]}, clock="manual")


async def instruments(sim: ExchangeSimulator, venue: str) -> dict[str, VenueInstrument]:
    """The gateway's instruments as the adapter builds them: the venue's instrument REST endpoint
    -> SymbolRegistry -> SymbolMap (futures multiplier from quanto_multiplier)."""
    from cexnode._core.symbols import SymbolRegistry

    reg = SymbolRegistry()
    rest = sim.urls[venue].rest
    async with aiohttp.ClientSession() as s:
        if venue == "mexc_spot":
            async with s.get(rest + "/api/v3/exchangeInfo") as r:
                mexc_instruments.load(reg, await r.json(), only={SYMBOL[venue]})
        elif venue == "gateio_spot":
            async with s.get(rest + "/api/v4/spot/currency_pairs") as r:
                gate_spot_instruments.load(reg, await r.json(), only={SYMBOL[venue]})
        else:
            async with s.get(rest + "/api/v4/futures/usdt/contracts") as r:
                gate_futures_instruments.load(reg, await r.json(), settle="USDT", only={SYMBOL[venue]})
    reg.freeze()
    return instruments_from_symbol_map(reg.map(venue))


def make_gateway(sim: ExchangeSimulator, venue: str, inst: dict, *, secret: str = SECRET, **kw):
    urls = sim.urls[venue]
    common = dict(rest_url=urls.rest, ws_url=urls.ws, api_key=Secret(KEY), api_secret=Secret(secret),
                  request_timeout_s=kw.pop("request_timeout_s", 2.0), time_sync_interval_s=0,
                  stream_start_timeout_s=kw.pop("stream_start_timeout_s", 3.0), instruments=inst)
    common.update(kw)
    cls = {"mexc_spot": MexcSpotGateway, "gateio_spot": GateSpotGateway, "gateio_futures": GateFuturesGateway}[venue]
    return cls(**common)


def order_at_touch(sim, venue: str, side: Side, *, levels_away: int = 0, fraction: Decimal = Decimal("0.5"),
                   tif: TimeInForce = TimeInForce.IOC, client_id: str = "") -> OrderRequest:
    """An order priced at the touch of the opposite side (or ``levels_away`` ticks off it, not
    crossing), sized ``fraction`` of the touch level in whole venue steps, at least one step."""
    v = sim.venue(venue)
    si = v.instrument(SYMBOL[venue])
    book = v.book(SYMBOL[venue])
    px_t, sz_t = book.best_ask() if side is Side.BUY else book.best_bid()
    if levels_away:
        bb, ba = book.best_bid(), book.best_ask()
        px_t = (bb[0] - levels_away) if side is Side.BUY else (ba[0] + levels_away)
    steps = max(1, int(sz_t * fraction))
    qty = si.base_qty(steps)            # base units (futures: contracts x multiplier)
    price = si.price(px_t)
    qs = max(0, -qty.as_tuple().exponent)
    ps = max(0, -price.as_tuple().exponent)
    return OrderRequest(client_id=client_id or cid(), venue=venue, symbol=SYMBOL[venue], side=side,
                        qty_m=int(qty.scaleb(qs)), price_m=int(price.scaleb(ps)), qty_scale=qs, price_scale=ps, tif=tif)


async def wait_for(pred, timeout: float = 5.0, what: str = "condition"):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("timed out waiting for " + (what() if callable(what) else what))
        await asyncio.sleep(0.01)


class Session:
    """A simulator with one registered account and a started gateway; collects stream updates."""

    def __init__(self, venue: str, *, secret: str = SECRET, balances=None, **gw_kw):
        self.venue = venue
        self.secret = secret
        self.balances_init = balances
        self.gw_kw = gw_kw
        self.updates: list = []
        self.balance_pushes: list = []

    async def __aenter__(self):
        self.sim = make_sim(self.venue)
        await self.sim.__aenter__()
        self.sim.trading.add_account(self.venue, KEY, SECRET, self.balances_init)
        self.inst = await instruments(self.sim, self.venue)
        self.gw = make_gateway(self.sim, self.venue, self.inst, secret=self.secret, **self.gw_kw)
        assert isinstance(self.gw, OrderGateway)
        self.gw.subscribe_orders(self.updates.append)
        self.gw.subscribe_balances(lambda v, b: self.balance_pushes.append((v, b)))
        await self.gw.start()
        return self

    async def __aexit__(self, *exc):
        await self.gw.stop()
        await self.sim.__aexit__(*exc)

    def final_update(self, client_id: str):
        for st in reversed(self.updates):
            if st.client_id == client_id and st.is_final:
                return st
        return None

    async def stream_final(self, client_id: str, timeout: float = 5.0):
        await wait_for(lambda: self.final_update(client_id) is not None, timeout, "final stream update of " + client_id)
        return self.final_update(client_id)
