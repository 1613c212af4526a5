"""Unmodified third-party clients against the simulator: ccxt (REST) and ccxt.pro (WebSocket).

ccxt (pinned in constraints.txt) drives each venue the way a user would: ``mexc`` spot, ``gate``
spot and ``gate`` swap (USDT-settled). Nothing of ccxt is patched; the only changes are:

* ``exchange.urls['api']`` pointed at the simulator's 127.0.0.1 REST and WebSocket URLs (Gate:
  every REST section at the spot venue except ``futures``; MEXC: the contract API's base at the
  MEXC venue, which answers ccxt's futures contract list with no contracts);
* ``enableRateLimit: False`` (the simulator is local) and, for Gate, the user id (ccxt's ``uid``
  credential, which its futures private channels need; the simulator gives the key the same user
  id on spot and futures, as Gate does);
* Gate's documented ``options.fetchMarkets.types = ['spot', 'swap']`` and
  ``options.swap.fetchMarkets.settlementCurrencies = ['usdt']``: the simulator serves Gate spot and
  USDT perpetuals only, so ccxt is told not to ask for delivery, options or BTC-settled contracts.
  Everything else ccxt calls at start-up is served: ``/spot/currencies``, ``/margin/currency_pairs``,
  ``/account/detail`` (Gate), signed ``/capital/config/getall`` (MEXC ``fetchCurrencies``).

Per venue: ``load_markets``, ``fetch_order_book`` (REST, equal to the true book at its id),
``watch_order_book`` (WebSocket; Gate equal to the true book at a paused checkpoint, MEXC see
below), ``fetch_balance`` (equal to the simulator's account), an IOC limit order that fills, a
resting limit order and ``cancel_order``, ``fetch_my_trades``, ``watch_orders`` /
``watch_my_trades``; Gate also places an order over its WebSocket API (``create_order_ws``: the
``*.login`` ccxt signs over ``req_param`` ``{}``), MEXC answers ccxt's lower-case ``ping``.
Every request is signed by ccxt and verified by the simulator exactly as the venue does.

ccxt's MEXC book is not compared with the true book: ccxt keeps ``fromVersion`` as the book's
nonce and drops a push whose ``fromVersion`` is below it, so the push spanning the snapshot id
(``fromVersion <= lastUpdateId < toVersion``, the venue's bridging push; likely at 100 ms, where a
push spans ~20 versions) is lost with its levels and the book can even cross. That is ccxt's rule,
the same against the venue; the test checks that diffs keep arriving and their levels are venue
prices.
"""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import ccxt.pro as ccxtpro
import pytest

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator

KEY, SECRET = "ccxt-test-key", "ccxt-test-secret"
GATE_UID = 7000001
T = 10.0                   # bound of every single await
D = Decimal


def dec(x) -> Decimal:
    return D(str(x))


async def w(aw, t: float = T):
    return await asyncio.wait_for(aw, t)


async def wait_until(pred, t: float = T, what: str = "condition") -> None:
    deadline = time.monotonic() + t
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.01)


def make_sim(venues: dict) -> ExchangeSimulator:
    sim = ExchangeSimulator(SimConfig(seed=31, book_levels=20), venues=venues)
    bal = {"USDT": "100000", "BTC": "2"}
    if "mexc_spot" in venues:
        sim.trading.add_account("mexc_spot", KEY, SECRET, bal)
    if "gateio_spot" in venues:
        sim.trading.add_account("gateio_spot", KEY, SECRET, bal, uid=GATE_UID)
        sim.trading.add_account("gateio_futures", KEY, SECRET, {"USDT": "100000"}, uid=GATE_UID)
    return sim


def mexc_client(sim) -> ccxtpro.mexc:
    u = sim.urls["mexc_spot"]
    ex = ccxtpro.mexc({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False})
    ex.urls["api"]["spot"] = {"public": u.rest, "private": u.rest}
    ex.urls["api"]["contract"] = {"public": u.rest + "/api/v1/contract", "private": u.rest + "/api/v1/private"}
    ex.urls["api"]["ws"] = {"spot": u.ws, "swap": u.ws}
    return ex


def gate_client(sim) -> ccxtpro.gate:
    spot, fut = sim.urls["gateio_spot"], sim.urls["gateio_futures"]
    ex = ccxtpro.gate({"apiKey": KEY, "secret": SECRET, "uid": str(GATE_UID), "enableRateLimit": False,
                       "options": {"fetchMarkets": {"types": ["spot", "swap"]},
                                   "swap": {"fetchMarkets": {"settlementCurrencies": ["usdt"]}}}})
    for access in ("public", "private"):
        for section in ex.urls["api"][access]:
            ex.urls["api"][access][section] = (fut.rest if section == "futures" else spot.rest) + "/api/v4"
    ex.urls["api"]["spot"] = spot.ws
    ex.urls["api"]["swap"] = {"usdt": fut.ws, "btc": fut.ws}
    return ex


async def settled(sim) -> None:
    """Pause the market and let every push already due go out (MEXC batches up to 100 ms)."""
    sim.pause()
    await asyncio.sleep(0.15)


def assert_book_equals(ob, v, symbol, n: int = 10) -> None:
    bids, asks, last = v.true_book(symbol, n)
    assert [(dec(p), dec(q)) for p, q in ob["bids"][:n]] == bids
    assert [(dec(p), dec(q)) for p, q in ob["asks"][:n]] == asks


def assert_balances(bal, sim, venue: str) -> None:
    """ccxt's balances equal the simulator's account (futures: the wallet total and what is
    available after position and order margin)."""
    acct = sim.trading.account(venue, KEY)
    if venue == "gateio_futures":
        assert dec(bal["total"]["USDT"]) == acct.balance("USDT").available
        assert dec(bal["free"]["USDT"]) == sim.trading.engine(venue).futures_available(acct, "USDT")
        return
    for asset, b in acct.balances.items():
        if b.available or b.locked:
            assert dec(bal["free"][asset]) == b.available and dec(bal["used"][asset]) == b.locked, asset


async def keep_watching(watch, symbol) -> None:
    """Keep a ccxt.pro ``watch_*`` subscribed; what it parses lands in ccxt's caches
    (``exchange.orders`` / ``exchange.myTrades``), which the test reads."""
    while True:
        await watch(symbol)


def cached(ex, attr: str) -> list:
    return list(getattr(ex, attr) or [])


def far_below(inst, ticks: int) -> float:
    """A buy price 5 % under ``ticks``: out of reach of the simulated market for the test's life."""
    return float(inst.price_str(ticks - ticks // 20))


async def exercise(ex, sim, venue: str, symbol: str, amount_steps: int, private_subscribed, params=None):
    """The common flow; returns (IOC order, resting order) as ccxt parsed them."""
    params = params or {}
    v = sim.venue(venue)
    inst = v.instrument(symbol)

    markets = await w(ex.load_markets())
    m = markets[symbol]
    assert m["active"] and m["id"] == inst.venue_symbol
    assert dec(m["precision"]["price"]) == inst.tick and dec(m["precision"]["amount"]) == inst.step

    # REST book at a still moment: exactly the true book, with its id
    await settled(sim)
    ob = await w(ex.fetch_order_book(symbol, 20))
    assert ob["nonce"] == v.book(symbol).last_id
    assert_book_equals(ob, v, symbol)
    sim.resume()

    # WebSocket book: snapshot + diffs, current at a still moment
    ob = await w(ex.watch_order_book(symbol), 15)
    assert ob["bids"] and ob["asks"] and ob["bids"][0][0] < ob["asks"][0][0]
    first_nonce = ob["nonce"]
    await asyncio.sleep(0.3)                  # a few more pushes (MEXC: ccxt's default @100ms)
    await settled(sim)
    last = v.book(symbol).last_id
    if venue == "mexc_spot":
        # diffs kept coming after the snapshot and their levels are venue prices (see the module
        # docstring for why ccxt's book is not compared with the true book)
        book = ex.orderbooks[symbol]
        assert first_nonce < book["nonce"] <= last            # ccxt's nonce: the last push's fromVersion
        assert book["bids"] and book["asks"]
        assert all(inst.ticks_of(repr(p)) > 0 for p, _ in book["bids"][:20] + book["asks"][:20])
    else:
        await wait_until(lambda: ex.orderbooks[symbol]["nonce"] == last, what="ccxt's book at id %d" % last)
        assert_book_equals(ex.orderbooks[symbol], v, symbol)
    sim.resume()

    assert_balances(await w(ex.fetch_balance(params)), sim, venue)

    # private streams first, so that the orders' pushes find them subscribed
    watchers = [asyncio.ensure_future(keep_watching(ex.watch_orders, symbol)),
                asyncio.ensure_future(keep_watching(ex.watch_my_trades, symbol))]
    try:
        await wait_until(private_subscribed, what="private subscriptions")

        # IOC at the best ask for less than the level: fills completely as taker
        sim.pause()
        ask_ticks, ask_size = v.book(symbol).best_ask()
        qty = min(amount_steps, ask_size)
        ioc = await w(ex.create_order(symbol, "limit", "buy", float(inst.size_str(qty)),
                                      float(inst.price_str(ask_ticks)), {"timeInForce": "IOC"}))
        sim.resume()
        ioc = await w(ex.fetch_order(ioc["id"], symbol))
        assert ioc["status"] == "closed" and dec(ioc["filled"]) == inst.size(qty)
        await wait_until(lambda: any(o["id"] == ioc["id"] and o["status"] == "closed" for o in cached(ex, "orders")),
                         what="watch_orders: the IOC closed")
        await wait_until(lambda: sum(dec(t["amount"]) for t in cached(ex, "myTrades") if t["order"] == ioc["id"])
                         == inst.size(qty), what="watch_my_trades: the IOC's fills")
        mine = [t for t in cached(ex, "myTrades") if t["order"] == ioc["id"]]
        assert all(dec(t["price"]) == inst.price(ask_ticks) and t["side"] == "buy" for t in mine)

        # resting limit far below the market, then cancelled; both states pushed
        bid_ticks = v.book(symbol).best_bid()[0]
        rest = await w(ex.create_order(symbol, "limit", "buy", float(inst.size_str(qty)), far_below(inst, bid_ticks)))
        got = await w(ex.fetch_order(rest["id"], symbol))
        assert got["status"] == "open" and dec(got["remaining"]) == inst.size(qty)
        await wait_until(lambda: any(o["id"] == rest["id"] and o["status"] == "open" for o in cached(ex, "orders")),
                         what="watch_orders: the resting order open")
        await w(ex.cancel_order(rest["id"], symbol))
        got = await w(ex.fetch_order(rest["id"], symbol))
        assert got["status"] == "canceled" and dec(got["filled"]) == 0
        await wait_until(lambda: any(o["id"] == rest["id"] and o["status"] == "canceled" for o in cached(ex, "orders")),
                         what="watch_orders: the resting order cancelled")
    finally:
        for t in watchers:
            t.cancel()

    # REST history of fills
    hist = await w(ex.fetch_my_trades(symbol, int(time.time() * 1000) - 60_000))
    fills = [t for t in hist if t["order"] == ioc["id"]]
    assert fills and sum(dec(t["amount"]) for t in fills) == inst.size(qty)
    assert all(dec(t["price"]) == inst.price(ask_ticks) for t in fills)

    assert_balances(await w(ex.fetch_balance(params)), sim, venue)
    return ioc, rest


def run(coro):
    asyncio.run(asyncio.wait_for(coro, 60))


def test_mexc_spot_with_ccxt():
    async def main():
        sim = make_sim({"mexc_spot": ["BTC/USDT"]})
        async with sim:
            ex = mexc_client(sim)
            v = sim.venue("mexc_spot")
            try:
                def subscribed():
                    return all(any(t in c.subscriptions for c in v.connections)
                               for t in ("spot@private.orders.v3.api.pb", "spot@private.deals.v3.api.pb"))
                await exercise(ex, sim, "mexc_spot", "BTC/USDT", 1000, subscribed)
                # ccxt's keep-alive is {"method":"ping"}: the venue's PONG keeps its connection alive
                client = ex.client(sim.urls["mexc_spot"].ws)
                before = client.lastPong
                await w(client.send(ex.ping(client)))
                await wait_until(lambda: client.lastPong != before, what="PONG to ccxt's ping")
            finally:
                await ex.close()

    run(main())


@pytest.mark.parametrize("symbol,venue,steps", [("BTC/USDT", "gateio_spot", 1000),
                                                ("BTC/USDT:USDT", "gateio_futures", 2)])
def test_gate_with_ccxt(symbol, venue, steps):
    async def main():
        sim = make_sim({"gateio_spot": ["BTC/USDT"], "gateio_futures": ["BTC/USDT:USDT"]})
        async with sim:
            ex = gate_client(sim)
            v = sim.venue(venue)
            channel = ("futures" if venue == "gateio_futures" else "spot")
            try:
                def subscribed():
                    return all(any(ch in c.user_data.get("gate_private", {}) for c in v.connections)
                               for ch in (channel + ".orders", channel + ".usertrades"))
                params = {"type": "swap"} if venue == "gateio_futures" else {}
                await exercise(ex, sim, venue, symbol, steps, subscribed, params)
                # the WebSocket order API: ccxt logs in signing over req_param "{}", then places
                inst = v.instrument(symbol)
                sim.pause()
                ask_ticks, ask_size = v.book(symbol).best_ask()
                qty = min(steps, ask_size)
                o = await w(ex.create_order_ws(symbol, "limit", "buy", float(inst.size_str(qty)),
                                               float(inst.price_str(ask_ticks)), {"timeInForce": "IOC"}))
                sim.resume()
                assert o["status"] == "closed" and dec(o["filled"]) == inst.size(qty)
                assert sim.trading.engine(venue).orders[int(o["id"])].filled == qty
            finally:
                await ex.close()

    run(main())
