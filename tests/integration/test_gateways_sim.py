"""Live gateways (MEXC spot, Gate spot, Gate futures) against the simulator's trading side over
127.0.0.1: signatures verified by the simulator, IOC fills / partial fills / rejections, cancel and
query, private-stream updates that agree with REST, balances, ambiguous outcomes reconciled with
query, Gate's WebSocket order API with REST fallback, MEXC listenKey keep-alive and rotation."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest

from cexnode.adapters.gateio_futures.execution import GateFuturesGateway
from cexnode.adapters.gateio_spot.execution import GateSpotGateway
from cexnode.adapters.live import VenueInstrument
from cexnode.adapters.mexc_spot.execution import MexcSpotGateway
from cexnode.execution.gateway import OrderNotFound, OrderRequest, OrderStatus, Outcome, Side, TimeInForce
from support.sim_gateways import (KEY, SECRET, VENUES, Session, cid, instruments, make_gateway, make_sim, order_at_touch,
                                  run, wait_for)


# -- signatures ------------------------------------------------------------------------------------

@pytest.mark.parametrize("venue", VENUES)
def test_signed_ioc_fills_and_the_stream_agrees_with_rest(venue):
    async def main():
        async with Session(venue) as s:
            gw = s.gw
            assert gw.server_clock.synced
            if venue != "mexc_spot":
                assert gw.session.ready.is_set() and gw.session.logged_in
            before = await gw.balances()
            o = order_at_touch(s.sim, venue, Side.BUY)
            ack = await gw.place(o)
            assert ack.outcome is Outcome.DEFINITIVE, ack
            assert ack.state is not None and ack.state.status is not OrderStatus.REJECTED, ack
            assert ack.order_id
            streamed = await s.stream_final(o.client_id)
            assert streamed.status is OrderStatus.FILLED
            assert streamed.filled_qty == o.qty and streamed.side is Side.BUY and streamed.symbol == o.symbol
            q = await gw.query(o.symbol, o.client_id)
            assert q.status is OrderStatus.FILLED and q.client_id == o.client_id
            assert q.filled_qty == streamed.filled_qty == o.qty
            assert q.avg_price == streamed.avg_price and q.avg_price <= o.price
            assert q.order_id == ack.order_id
            after = await gw.balances()
            quote = "USDT"
            if venue == "gateio_futures":
                pos0 = before["BTC"].free if "BTC" in before else 0
                assert after["BTC"].free - pos0 == o.qty          # the long position, in base units
            else:
                assert after["BTC"].total - before["BTC"].total == o.qty - (q.fee if q.fee_asset == "BTC" else 0)
                spent = before[quote].total - after[quote].total
                assert spent == q.filled_qty * q.avg_price + (q.fee if q.fee_asset == quote else 0)
            # a sell at the bid: the IOC fills too, the update stream keeps venue order
            o2 = order_at_touch(s.sim, venue, Side.SELL)
            ack2 = await gw.place(o2)
            assert ack2.definitive
            st2 = await s.stream_final(o2.client_id)
            assert st2.status is OrderStatus.FILLED and st2.side is Side.SELL
            assert (await gw.query(o2.symbol, o2.client_id)).filled_qty == o2.qty

    run(main())


@pytest.mark.parametrize("venue", VENUES)
def test_wrong_secret_is_a_definitive_rejection(venue):
    async def main():
        async with Session(venue, secret="not-the-secret", stream_start_timeout_s=0.5) as s:
            o = order_at_touch(s.sim, venue, Side.BUY)
            ack = await s.gw.place(o)
            assert ack.outcome is Outcome.DEFINITIVE
            assert ack.state.status is OrderStatus.REJECTED
            assert ack.error_code in ("700002", "INVALID_SIGNATURE"), ack
            assert not s.sim.trading.engine(venue).orders       # nothing was placed
            assert "not-the-secret" not in repr(ack) and "not-the-secret" not in str(s.gw.status())

    run(main())


# -- fills, rejections, cancel, query ---------------------------------------------------------------

@pytest.mark.parametrize("venue", VENUES)
def test_partial_fill_rejection_cancel_and_query(venue):
    async def main():
        async with Session(venue) as s:
            gw, sim = s.gw, s.sim
            faults = sim.venue(venue).faults
            # partial: IOC remainder cancelled, filled amount kept
            faults.partial_fill_next(Decimal("0.5"))
            o = order_at_touch(sim, venue, Side.BUY, fraction=Decimal(1))
            ack = await gw.place(o)
            assert ack.definitive
            st = await s.stream_final(o.client_id)
            q = await gw.query(o.symbol, o.client_id)
            assert st.status is q.status is OrderStatus.CANCELLED
            assert 0 < q.filled_qty < o.qty and q.filled_qty == st.filled_qty
            # rejection by the venue: definitive, reason carries the venue's code / label
            faults.reject_orders(1)
            o = order_at_touch(sim, venue, Side.BUY)
            ack = await gw.place(o)
            assert ack.definitive and ack.state.status is OrderStatus.REJECTED and ack.reason
            with pytest.raises(OrderNotFound):
                await gw.query(o.symbol, o.client_id)
            # a resting GTC order away from the touch: NEW, cancel -> CANCELLED, cancel again -> the final state
            o = order_at_touch(sim, venue, Side.BUY, levels_away=50, tif=TimeInForce.GTC)
            ack = await gw.place(o)
            assert ack.definitive and ack.state.status is OrderStatus.NEW, ack
            assert (await gw.query(o.symbol, o.client_id)).status is OrderStatus.NEW
            c = await gw.cancel(o.symbol, o.client_id)
            assert c.definitive and c.state.status is OrderStatus.CANCELLED and c.state.filled_qty == 0
            assert (await gw.query(o.symbol, o.client_id)).status is OrderStatus.CANCELLED
            c2 = await gw.cancel(o.symbol, o.client_id)
            assert c2.definitive and c2.state is not None and c2.state.status is OrderStatus.CANCELLED
            st = await s.stream_final(o.client_id)
            assert st.status is OrderStatus.CANCELLED
            # unknown client id
            with pytest.raises(OrderNotFound):
                await gw.query(o.symbol, "nosuchorder1")
            c3 = await gw.cancel(o.symbol, "nosuchorder2")
            assert c3.definitive and c3.state is None and c3.reason == "not_found"

    run(main())


@pytest.mark.parametrize("venue,ws_api", [("mexc_spot", False), ("gateio_spot", True), ("gateio_spot", False),
                                          ("gateio_futures", True), ("gateio_futures", False)])
def test_ambiguous_outcomes_are_reconciled_with_query(venue, ws_api):
    kw = {"ws_order_api": ws_api} if venue != "mexc_spot" else {}

    async def main():
        async with Session(venue, request_timeout_s=0.5, **kw) as s:
            gw, sim = s.gw, s.sim
            # orders written at once over the logged-in WebSocket API (the executor sends them second)
            assert getattr(gw, "fast_send", False) is (venue != "mexc_spot" and ws_api)
            faults = sim.venue(venue).faults
            faults.order_5xx(1)
            o = order_at_touch(sim, venue, Side.BUY)
            ack = await gw.place(o)
            assert ack.outcome is Outcome.AMBIGUOUS, ack
            q = await gw.query(o.symbol, o.client_id)          # it was executed after all
            assert q.status is OrderStatus.FILLED and q.filled_qty == o.qty
            faults.order_timeout(1)
            o = order_at_touch(sim, venue, Side.SELL)
            ack = await gw.place(o)
            assert ack.outcome is Outcome.AMBIGUOUS, ack
            q = await gw.query(o.symbol, o.client_id)
            assert q.status is OrderStatus.FILLED and q.filled_qty == o.qty
            assert gw.ambiguous == 2
            if venue != "mexc_spot":
                # both orders left on the transport under test
                assert gw.session.api_requests == (4 if ws_api else 0)      # 2 order_place + 2 order_status
                assert (gw.ws_orders, gw.rest_orders) == ((2, 0) if ws_api else (0, 2))

    run(main())


@pytest.mark.parametrize("venue", VENUES)
def test_fees_of_orders_reconciled_without_the_private_stream(venue):
    """With no private stream (down, stalled, or off) the fee of a filled order must still reach
    the executor: query (IOC filled) and cancel (GTC partly filled) states carry the venue's fee.
    MEXC's order answers have no commission: the gateway takes it from myTrades."""
    kw = {"private_stream": False}

    async def main():
        async with Session(venue, **kw) as s:
            gw, sim = s.gw, s.sim
            eng = sim.trading.engine(venue)

            def sim_order(cid_):
                return next(o for (k, c), o in eng.by_client.items() if c.endswith(cid_))

            o = order_at_touch(sim, venue, Side.BUY)
            ack = await gw.place(o)
            assert ack.definitive, ack
            q = await gw.query(o.symbol, o.client_id)
            so = sim_order(o.client_id)
            assert q.status is OrderStatus.FILLED and q.filled_qty == o.qty
            assert so.fee > 0 and (q.fee, q.fee_asset) == (so.fee, so.fee_asset), (q, so.fee, so.fee_asset)
            g = order_at_touch(sim, venue, Side.SELL, fraction=Decimal(3), tif=TimeInForce.GTC)
            ack = await gw.place(g)
            assert ack.definitive and ack.state.status is not OrderStatus.REJECTED, ack
            c = await gw.cancel(g.symbol, g.client_id)
            so = sim_order(g.client_id)
            assert c.definitive and c.state.status is OrderStatus.CANCELLED, c
            assert 0 < c.state.filled_qty < g.qty
            assert so.fee > 0 and (c.state.fee, c.state.fee_asset) == (so.fee, so.fee_asset), (c.state, so.fee)

    run(main())


@pytest.mark.parametrize("fault", ["late", "dropped"])
def test_mexc_final_push_before_its_deals_is_reported_with_its_fee(fault):
    """MEXC's orders and deals channels are not ordered with each other. A final order push that
    arrives before its deal (``late``) is held until the deal brings the fee; one whose deal never
    comes (``dropped``) is completed from myTrades after ``fee_wait_s``. Either way the one final
    update the executor sees carries the venue's fee, and no fee is counted twice."""
    async def main():
        async with Session("mexc_spot") as s:
            gw, sim = s.gw, s.sim
            eng = sim.trading.engine("mexc_spot")
            faults = sim.venue("mexc_spot").faults
            gw.fee_wait_s = 0.3
            if fault == "late":
                faults.private_deals_late(0.1)
            else:
                faults.private_deals_drop(1)
            o = order_at_touch(sim, "mexc_spot", Side.BUY)
            t0 = time.monotonic()
            assert (await gw.place(o)).definitive
            st = await s.stream_final(o.client_id)
            waited = time.monotonic() - t0
            so = next(x for (k, c), x in eng.by_client.items() if c.endswith(o.client_id))
            assert st.status is OrderStatus.FILLED and st.filled_qty == o.qty
            assert so.fee > 0 and (st.fee, st.fee_asset) == (so.fee, so.fee_asset), (st, so.fee)
            finals = [u for u in s.updates if u.client_id == o.client_id and u.is_final]
            assert len(finals) == 1 and finals[0].fee == so.fee
            assert gw.fee_waits == 1 and gw.fee_lookups == (1 if fault == "dropped" else 0)
            assert waited >= (0.3 if fault == "dropped" else 0.1)
            # the next order's pushes come in the usual order: reported at once, nothing held
            o2 = order_at_touch(sim, "mexc_spot", Side.SELL)
            assert (await gw.place(o2)).definitive
            st2 = await s.stream_final(o2.client_id)
            so2 = next(x for (k, c), x in eng.by_client.items() if c.endswith(o2.client_id))
            assert st2.fee == so2.fee > 0 and gw.fee_waits == 1 and gw.status()["held"] == 0
            # a late deal after the fee came from myTrades is not added again
            assert (await gw.query(o.symbol, o.client_id)).fee == so.fee

    run(main())


# -- balances ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("venue", ["mexc_spot", "gateio_spot"])
def test_balance_pushes_follow_fills(venue):
    async def main():
        async with Session(venue, balances={"USDT": "100000", "BTC": "1"}) as s:
            gw = s.gw
            b0 = await gw.balances()
            assert b0["USDT"].free == Decimal(100000) and b0["BTC"].free == Decimal(1)
            assert all(b.ts_ns > 0 for b in b0.values())
            s.balance_pushes.clear()
            o = order_at_touch(s.sim, venue, Side.BUY)
            assert (await gw.place(o)).definitive
            await s.stream_final(o.client_id)
            await wait_for(lambda: any(b["BTC"].free > 1 for _, b in s.balance_pushes if "BTC" in b), 5,
                           "a balance push with the bought BTC")
            venue_, pushed = s.balance_pushes[-1]
            assert venue_ == venue and set(pushed) >= {"USDT", "BTC"}
            rest = await gw.balances()
            await wait_for(lambda: s.balance_pushes[-1][1]["USDT"].free == rest["USDT"].free, 3, "pushes settle")
            assert s.balance_pushes[-1][1]["BTC"].free == rest["BTC"].free

    run(main())


# -- Gate WebSocket order API and REST fallback -----------------------------------------------------------

@pytest.mark.parametrize("venue", ["gateio_spot", "gateio_futures"])
def test_gate_ws_order_api_with_rest_fallback(venue):
    async def main():
        async with Session(venue) as s:
            gw = s.gw
            o = order_at_touch(s.sim, venue, Side.BUY)
            ack = await gw.place(o)
            assert ack.definitive and gw.ws_orders == 1 and gw.rest_orders == 0
            assert ack.state.status is OrderStatus.FILLED            # the WS API answers with the order
            # the WS API connection goes down: the next order goes over REST
            s.sim.venue(venue).faults.drop_connections()
            await wait_for(lambda: not gw.session.api_ready, 3, "the WS API connection to drop")
            o2 = order_at_touch(s.sim, venue, Side.SELL)
            ack2 = await gw.place(o2)
            assert ack2.definitive and ack2.state.status is OrderStatus.FILLED, ack2
            assert gw.rest_orders == 1 and gw.rest_fallbacks >= 1
            # reconnected and logged in again: back on the WS API; the stream reports the order
            await wait_for(lambda: gw.session.api_ready and gw.session.ready.is_set(), 5, "reconnect + login")
            o3 = order_at_touch(s.sim, venue, Side.BUY)
            assert (await gw.place(o3)).definitive and gw.ws_orders == 2
            st = await s.stream_final(o3.client_id)
            assert st.status is OrderStatus.FILLED and st.filled_qty == o3.qty

    run(main())


@pytest.mark.parametrize("venue", ["gateio_spot", "gateio_futures"])
def test_gate_rest_only_mode(venue):
    kw = {"account": "unified"} if venue == "gateio_spot" else {}

    async def main():
        async with Session(venue, ws_order_api=False, **kw) as s:
            o = order_at_touch(s.sim, venue, Side.BUY)
            ack = await s.gw.place(o)
            assert ack.definitive and ack.state.status is OrderStatus.FILLED
            assert s.gw.rest_orders == 1 and s.gw.ws_orders == 0
            if venue == "gateio_spot":       # the configured account type reaches the venue
                placed = next(x for x in s.sim.trading.engine(venue).orders.values() if x.client_id.endswith(o.client_id))
                assert placed.extra["account"] == "unified"
            st = await s.stream_final(o.client_id)       # the private channels still report it
            assert st.filled_qty == o.qty

    run(main())


def test_futures_sizes_are_contracts():
    async def main():
        async with Session("gateio_futures") as s:
            inst = s.inst["BTC/USDT:USDT"]
            si = s.sim.venue("gateio_futures").instrument("BTC/USDT:USDT")
            assert inst.multiplier == si.multiplier and inst.venue_symbol == si.venue_symbol
            o = order_at_touch(s.sim, "gateio_futures", Side.SELL)
            ack = await s.gw.place(o)
            assert ack.definitive and ack.state.side is Side.SELL and ack.state.qty == o.qty
            orders = s.sim.trading.engine("gateio_futures").orders
            placed = next(x for x in orders.values() if x.client_id.endswith(o.client_id))
            assert placed.side == "sell" and si.base_qty(placed.qty) == o.qty
            # a quantity that is not a whole number of contracts is refused before sending
            bad = OrderRequest(client_id=cid(), venue="gateio_futures", symbol="BTC/USDT:USDT", side=Side.BUY,
                               qty_m=int((inst.multiplier / 2).scaleb(10)), qty_scale=10, price_m=o.price_m,
                               price_scale=o.price_scale)
            ack = await s.gw.place(bad)
            assert ack.definitive and ack.state.status is OrderStatus.REJECTED and ack.reason == "qty_not_whole_contracts"
            assert len(orders) == 1

    run(main())


# -- MEXC listenKey ------------------------------------------------------------------------------------

def test_mexc_listen_key_keepalive_and_rotation():
    async def main():
        async with Session("mexc_spot", listen_key_keepalive_s=0.2) as s:
            stream = s.gw.stream
            key = stream.listen_key
            assert key and stream.connected.is_set()
            await wait_for(lambda: stream.keepalives >= 2, 3, "keep-alives")
            # the venue forgets the key: the keep-alive fails, a new key is made and subscribed
            vt = s.sim.trading.venue("mexc_spot")
            vt.protocol._expire(key)
            await wait_for(lambda: stream.listen_key not in (None, key) and stream.connected.is_set(), 5, "rotation")
            o = order_at_touch(s.sim, "mexc_spot", Side.BUY)
            assert (await s.gw.place(o)).definitive
            st = await s.stream_final(o.client_id)
            assert st.status is OrderStatus.FILLED

    run(main())


# -- the node in live mode -------------------------------------------------------------------------------

LIVE_YAML = """
node: {name: live, status_interval_s: 0, start_timeout_s: 20}
log:
  console: {enabled: false}
  audit: {path: "%(audit)s", fsync: never}
metrics: {port: 0}
sim:
  enabled: true
  seed: 11
  update_interval_ms: 5
  dislocation_probability: 0.05
  dislocation_bps: 60
  mid_prices: {BTC/USDT: 65000}
  balances:
    mexc_spot: {USDT: 100000, BTC: 2}
    gateio_spot: {USDT: 100000, BTC: 2}
    gateio_futures: {USDT: 100000}
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT], api_key: "${CX_GW_KEY}", api_secret: "${CX_GW_SECRET}", time_sync_interval_s: 0.5}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT], api_key: "${CX_GW_KEY}", api_secret: "${CX_GW_SECRET}"}
  gateio_futures: {taker_fee: 0.0005, symbols: [BTC/USDT:USDT], api_key: "${CX_GW_KEY}", api_secret: "${CX_GW_SECRET}"}
arbitrage:
  min_profit: 0.01
  max_notional: 2000
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot], name: btc-ss}
    - {symbol: BTC/USDT, venues: [gateio_spot, gateio_futures], name: btc-sp}
risk:
  max_position: {BTC: 10}
  max_notional_per_trade: 5000
  max_open_exposure: 100000
  daily_loss_limit: 100000
  route_cooldown_ms: 0
trading:
  mode: live
  # MEXC allows 2 GET /api/v3/account per second (the REST manager uses 90 percent of it: 1 per 0.56 s), and its private
  # stream pushes changes only: a REST refresh per trade would queue behind that limit
  max_balance_age_ms: 5000
"""


def test_node_in_live_mode_trades_through_the_gateways(tmp_path, monkeypatch):
    from cexnode.config import load_config_text
    from cexnode.node import Node

    monkeypatch.setenv("CX_GW_KEY", "node-key")
    monkeypatch.setenv("CX_GW_SECRET", "node-secret-value")
    cfg = load_config_text(LIVE_YAML % {"audit": tmp_path / "audit.jsonl"})
    node = Node(cfg, duration=None)

    async def main():
        runner = asyncio.get_running_loop().create_task(node.run())
        try:
            await wait_for(lambda: node.context.engine is not None and node.context.engine.executor is not None
                           and node.context.engine.books_in_sync() == (3, 3)
                           and all(a.gateway is not None and a.gateway.started
                                   for a in node.context.engine.adapters.values()), 30,
                           lambda: "engine up, books in sync, gateways started: %r %r" % (
                               node.context.engine.failed, [(n, a.gateway is not None and a.gateway.started)
                                                            for n, a in node.context.engine.adapters.items()]))
            engine = node.context.engine
            sim = node.context.sim
            gws = {n: a.gateway for n, a in engine.adapters.items()}
            assert {n: type(g).__name__ for n, g in gws.items()} == {
                "mexc_spot": "MexcSpotGateway", "gateio_spot": "GateSpotGateway", "gateio_futures": "GateFuturesGateway"}
            assert all(g.started and g.server_clock.synced for g in gws.values())
            assert engine.executor.gateways == gws
            await wait_for(lambda: sum(engine.executor.trades_by_status.values()) >= 2, 30,
                           "trades through the live gateways")
            placed = sum(g.placed for g in gws.values())
            assert placed >= 2
            sim_orders = sum(len(sim.trading.engine(v).orders) for v in gws)
            assert sim_orders >= 1                   # they reached the venues, signatures verified
            await wait_for(lambda: engine.executor.inflight == 0, 10, "trades settle")
            url = next(c.server.url for c in node.components if c.name == "metrics")
            async with aiohttp.ClientSession() as http:
                async with http.get(url + "/metrics") as r:
                    text = await r.text()
            assert 'cexnode_gateway_orders_total{transport="ws_api",venue="gateio_spot"}' in text or \
                'cexnode_gateway_orders_total{venue="gateio_spot",transport="ws_api"}' in text, text[:2000]
            assert 'cexnode_gateway_stream_connected{venue="mexc_spot"} 1.0' in text
            return engine, gws
        finally:
            node.request_stop()
            await asyncio.wait_for(runner, 20)

    engine, gws = asyncio.run(asyncio.wait_for(main(), 90))
    assert node.exit_code == 0
    assert not engine.executor.unreconciled
    assert all(not g.started for g in gws.values())           # stopped with the adapters
    audit = (tmp_path / "audit.jsonl").read_text()
    assert "node-secret-value" not in audit and "node-key" not in audit


# -- server time -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("venue", VENUES)
def test_server_time_sync_makes_a_skewed_clock_sign_valid_requests(venue):
    import time as _time

    skew_ns = 120 * 10**9              # our clock 2 minutes ahead: outside MEXC's recvWindow and Gate's 60 s

    async def main():
        sim = make_sim(venue)
        async with sim:
            sim.trading.add_account(venue, KEY, SECRET)
            inst = await instruments(sim, venue)
            gw = make_gateway(sim, venue, inst, ws_order_api=False) if venue != "mexc_spot" else \
                make_gateway(sim, venue, inst)
            gw._clock = gw.server_clock._clock = lambda: _time.time_ns() + skew_ns
            try:
                o = order_at_touch(sim, venue, Side.BUY)
                ack = await gw.place(o)           # not synced yet: the venue refuses the timestamp
                assert ack.definitive and ack.state.status is OrderStatus.REJECTED
                assert ack.error_code in ("700003", "REQUEST_EXPIRED"), ack
                await gw.server_clock.sync()
                assert abs(gw.server_clock.offset_ms + skew_ns // 10**6) < 500
                ack = await gw.place(order_at_touch(sim, venue, Side.BUY))
                assert ack.definitive and ack.state.status is not OrderStatus.REJECTED, ack
            finally:
                await gw.stop()

    run(main())


def test_server_clock_keeps_the_fastest_sample_and_resyncs():
    from cexnode.net.servertime import ServerClock

    now = [1_000_000_000_000]              # ns
    answers = iter([(5_000, 2_000), (1_000, 2_000), (9_000, 2_000)] * 10)   # (rtt µs, server offset ms)

    async def fetch():
        rtt_us, off_ms = next(answers)
        t_mid = now[0] + rtt_us * 500
        now[0] += rtt_us * 1000
        return t_mid // 1_000_000 + off_ms

    async def main():
        c = ServerClock(fetch, interval_s=0.05, samples=3, clock_ns=lambda: now[0])
        await c.start()
        assert c.synced and c.offset_ms == 2000 and c.rtt_ms == 1.0
        assert c.now_ms() == now[0] // 1_000_000 + 2000
        await asyncio.sleep(0.2)
        assert c.syncs >= 3                 # periodic re-sync
        await c.stop()

    run(main())


# -- venue payloads -> OrderState (reference samples) ---------------------------------------------------------

def test_reference_payloads_map_to_states():
    import orjson
    from pathlib import Path

    ref = Path(__file__).resolve().parents[1] / "resources"   # verbatim copies of the reference samples
    spot = GateSpotGateway(rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1/", api_key="k", api_secret="s",
                           instruments={"BTC/USDT": VenueInstrument(symbol="BTC/USDT", venue_symbol="BTC_USDT")})
    body = orjson.loads((ref / "gateio_spot" / "rest_order_create_response.doc.json").read_bytes())
    st = spot.state_from_order(body, spot.instrument("BTC/USDT"))
    assert st.client_id == "abc123" and st.status is OrderStatus.FILLED and st.filled_qty == Decimal("0.001")
    assert st.avg_price == Decimal("63469.3") and st.fee == Decimal("0.00000022") and st.fee_asset == "BTC"
    push = orjson.loads((ref / "gateio_spot" / "ws_orders.doc.json").read_bytes())["result"][0]
    st = spot.state_from_order(push, spot.instrument("BTC/USDT"))
    assert st.client_id == "testtext" and st.status is OrderStatus.NEW and st.side is Side.SELL
    assert spot.state_from_order(dict(push, text="apiv4"), None) is None        # not ours
    fut = GateFuturesGateway(rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1/", api_key="k", api_secret="s",
                             instruments={"BTC/USDT:USDT": VenueInstrument(symbol="BTC/USDT:USDT", venue_symbol="BTC_USDT",
                                                                           multiplier=Decimal("0.0001"))})
    item = orjson.loads((ref / "gateio_futures" / "ws_orders.json").read_bytes())["result"][0]
    st = fut.state_from_order(dict(item, text="t-f1"), fut.instrument("BTC/USDT:USDT"))
    assert st.order_id == "58828270140012048"                # > 2**53, exact
    assert st.status is OrderStatus.NEW and st.qty == Decimal("0.0001") and st.side is Side.BUY
    done = dict(item, text="t-f2", size=-3, left=-1, status="finished", finish_as="ioc", fill_price="93000.5")
    st = fut.state_from_order(done, fut.instrument("BTC/USDT:USDT"))
    assert st.side is Side.SELL and st.status is OrderStatus.CANCELLED
    assert st.qty == Decimal("0.0003") and st.filled_qty == Decimal("0.0002") and st.avg_price == Decimal("93000.5")
    assert st.fee == Decimal("0.0002") * Decimal("93000.5") * Decimal("0.0005")
    filled = dict(done, text="t-f3", left=0, finish_as="filled")
    assert fut.state_from_order(filled, fut.instrument("BTC/USDT:USDT")).status is OrderStatus.FILLED
    # MEXC REST order and cancel answers
    mx = MexcSpotGateway(rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1/ws", api_key="k", api_secret="s")
    cancel = orjson.loads((ref / "mexc" / "rest_order_cancel_response.json").read_bytes())
    st = mx._state_from_rest("LTC/BTC", cancel)
    assert st.status is OrderStatus.CANCELLED and st.client_id == "cancelMyOrder1" and st.filled_qty == 0
    assert st.avg_price is None
    st = mx._state_from_rest("X/Y", {"clientOrderId": "c1", "origQty": "2", "executedQty": "1",
                                     "cummulativeQuoteQty": "3.5", "status": "PARTIALLY_CANCELED", "side": "SELL"})
    assert st.status is OrderStatus.CANCELLED and st.avg_price == Decimal("3.5") and st.side is Side.SELL


# -- more ambiguity: REST path and a connection cut under a WS API request -----------------------------------

@pytest.mark.parametrize("venue", ["gateio_spot", "gateio_futures"])
@pytest.mark.parametrize("ws_api", [False, True])
def test_gate_order_lost_with_the_connection_is_ambiguous(venue, ws_api):
    async def main():
        async with Session(venue, ws_order_api=ws_api, request_timeout_s=1.0) as s:
            s.sim.venue(venue).faults.order_timeout(1, drop=True)
            o = order_at_touch(s.sim, venue, Side.BUY)
            ack = await s.gw.place(o)
            assert ack.outcome is Outcome.AMBIGUOUS, ack
            if ws_api:
                assert s.gw.session.api_lost == 1 or "no answer" in ack.reason
            q = await s.gw.query(o.symbol, o.client_id)      # REST while the WS API reconnects
            assert q.status is OrderStatus.FILLED and q.filled_qty == o.qty

    run(main())


# -- private streams through disconnects and stalls ------------------------------------------------------

@pytest.mark.parametrize("venue", VENUES)
def test_private_stream_reconnects_and_stalled_pushes_arrive_late(venue):
    async def main():
        async with Session(venue) as s:
            gw = s.gw
            conn = gw.stream if venue == "mexc_spot" else gw.session
            ready = conn.connected if venue == "mexc_spot" else conn.ready
            assert conn.connects == 1
            s.sim.venue(venue).faults.drop_connections()
            await wait_for(lambda: conn.connects == 2 and ready.is_set(), 5, "private stream reconnect")
            assert gw.stream_reconnects >= 1
            o = order_at_touch(s.sim, venue, Side.BUY)
            assert (await gw.place(o)).definitive
            st = await s.stream_final(o.client_id)
            assert st.status is OrderStatus.FILLED
            # pushes held by the venue: REST knows first, the stream catches up later, in order
            s.sim.venue(venue).faults.private_stream_stall(1.0)
            o2 = order_at_touch(s.sim, venue, Side.SELL)
            assert (await gw.place(o2)).definitive
            assert (await gw.query(o2.symbol, o2.client_id)).status is OrderStatus.FILLED
            assert s.final_update(o2.client_id) is None          # still held by the venue
            st2 = await s.stream_final(o2.client_id, timeout=3)
            assert st2.filled_qty == o2.qty
            fills = [u.filled_qty for u in s.updates if u.client_id == o2.client_id]
            assert fills == sorted(fills)                       # cumulative, never backwards

    run(main())


# -- state rules -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status,finish_as,filled,want", [
    ("open", "open", "0", OrderStatus.NEW), ("open", "open", "0.5", OrderStatus.PARTIALLY_FILLED),
    ("open", "_new", "0", OrderStatus.NEW), ("open", "_update", "0.3", OrderStatus.PARTIALLY_FILLED),
    ("closed", "filled", "1", OrderStatus.FILLED), ("finished", "filled", "1", OrderStatus.FILLED),
    ("cancelled", "cancelled", "0", OrderStatus.CANCELLED), ("closed", "ioc", "0.4", OrderStatus.CANCELLED),
    ("finished", "ioc", "0", OrderStatus.CANCELLED), ("closed", "stp", "0", OrderStatus.CANCELLED),
    ("closed", "poc", "0", OrderStatus.CANCELLED), ("closed", "fok", "0", OrderStatus.CANCELLED),
    ("finished", "reduce_only", "0", OrderStatus.CANCELLED),
])
def test_gate_finish_as_mapping(status, finish_as, filled, want):
    from cexnode.adapters.gateio_spot.execution import finish_status

    assert finish_status(status, finish_as, Decimal(filled), Decimal(1)) is want


def test_order_states_never_go_backwards_and_final_is_sticky():
    from cexnode.execution.gateway import OrderState

    gw = MexcSpotGateway(rest_url="http://127.0.0.1:1", ws_url="ws://127.0.0.1:1/ws", api_key="k", api_secret="s")

    def st(status, filled, oid=""):
        return OrderState(client_id="c1", venue="mexc_spot", symbol="BTC/USDT", side=Side.BUY, status=status,
                          qty=Decimal(1), filled_qty=Decimal(filled), order_id=oid)

    assert gw._remember(st(OrderStatus.NEW, 0, "o1")).status is OrderStatus.NEW
    assert gw._remember(st(OrderStatus.PARTIALLY_FILLED, "0.5")).order_id == "o1"     # id kept
    assert gw._remember(st(OrderStatus.NEW, 0)).filled_qty == Decimal("0.5")         # late, older: ignored
    assert gw._remember(st(OrderStatus.FILLED, 1)).status is OrderStatus.FILLED
    assert gw._remember(st(OrderStatus.PARTIALLY_FILLED, 1)).status is OrderStatus.FILLED   # final sticks
    assert gw._order_ids == {"o1": "c1"}


def test_balance_poll_publishes_fresh_rest_balances():
    async def main():
        async with Session("gateio_spot", balance_poll_s=0.1, balances={"USDT": "5000", "BTC": "1"}) as s:
            await wait_for(lambda: len(s.balance_pushes) >= 3, 3, "three polls")
            stamps = [b["USDT"].ts_ns for _, b in s.balance_pushes[-3:]]
            assert stamps == sorted(stamps) and len(set(stamps)) == 3
            assert s.balance_pushes[-1][1]["USDT"].free == Decimal(5000)
        assert s.gw._poll_task is None                      # stopped with the gateway

    run(main())
