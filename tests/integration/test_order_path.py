"""The order path against the simulator over 127.0.0.1: MEXC orders over the REST manager's
dedicated kept-alive order connection (cexnode.net.http1), started eagerly the way the executor
starts them (cexnode.execution.eager.start_eager from a plain callback: the request is on the wire
before the loop runs anything else), the pooled client while that connection is busy or down, a
connection lost after the request left (ambiguous, never rejected; reconnected), and the
executor's warm-up (Executor.warm: a dry run with no side effect anywhere)."""
from __future__ import annotations

import asyncio
import os
import select
import socket
import stat
import time
from decimal import Decimal

import pytest

from cexnode.execution.eager import start_eager
from cexnode.execution.gateway import OrderStatus, Outcome, Side, TimeInForce
from support import live_node as lt
from support import sim_gateways as gs

VENUE = "mexc_spot"
SYM = gs.SYMBOL[VENUE]
ORDER_PATH = "/api/v3/order"
# an accepted order's ack: NEW from the answer, or what the private stream already said about it
ACCEPTED = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)


def run(coro, timeout: float = 25.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def from_callback(fn):
    """``fn()`` called from a plain loop callback (no Task: the executor's book-update call);
    returns what it returned."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def cb():
        try:
            done.set_result(fn())
        except BaseException as e:       # pragma: no cover - reported to the test
            done.set_exception(e)

    loop.call_soon(cb)
    return await done


def server_side_peek(client_transport, timeout: float = 2.0) -> bytes:
    """What the server side of ``client_transport``'s TCP connection has received and not yet
    read (MSG_PEEK on a dup of its socket, found by its addresses; nothing is consumed and the
    event loop does not run). The server is in this process: the simulator."""
    sockname = client_transport.get_extra_info("sockname")
    peername = client_transport.get_extra_info("peername")
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            dup = os.dup(fd)
        except (OSError, ValueError):
            continue
        try:
            s = socket.socket(fileno=dup)
        except OSError:
            os.close(dup)
            continue
        try:               # never change the blocking mode: it is shared with the simulator's fd
            if s.family != socket.AF_INET or s.type != socket.SOCK_STREAM:
                continue
            try:
                if s.getsockname() != peername or s.getpeername() != sockname:
                    continue
            except OSError:
                continue
            ready, _, _ = select.select([s], [], [], timeout)
            return s.recv(1 << 16, socket.MSG_PEEK) if ready else b""
        finally:
            s.close()
    raise AssertionError("the server side of %r -> %r not found" % (sockname, peername))


def sim_order(sim, client_id: str):
    eng = sim.trading.engine(VENUE)
    return eng.by_client.get((gs.KEY, client_id))


def sim_filled(sim, client_id: str) -> Decimal:
    """Base quantity the simulator filled of our order ``client_id``."""
    return sim.venue(VENUE).instrument(SYM).size(sim_order(sim, client_id).filled)


def lane_of(gw):
    rest = gw._rest
    return rest, rest.order_connection


# -- orders and cancels over the order connection ----------------------------------------------------

def test_orders_and_cancels_go_over_one_kept_alive_order_connection():
    async def main():
        async with gs.Session(VENUE) as s:
            gw, sim = s.gw, s.sim
            assert gw.eager_place and gw.order_connection
            rest, oc = lane_of(gw)
            assert oc is not None and oc.connected and oc.ready and oc.connects == 1
            assert rest.order_routes == frozenset({("POST", ORDER_PATH), ("DELETE", ORDER_PATH)})
            n_sim = sim.venue(VENUE).rest_requests[ORDER_PATH]
            acks = []
            for side in (Side.BUY, Side.SELL, Side.BUY):
                o = gs.order_at_touch(sim, VENUE, side)
                ack = await gw.place(o)
                acks.append((o, ack))
                # the simulator verified the signature and placed it
                assert ack.outcome is Outcome.DEFINITIVE, ack
                assert ack.state.status in ACCEPTED and ack.order_id, ack
                so = sim_order(sim, o.client_id)
                assert so is not None and so.filled == so.qty          # IOC at the touch: filled
            assert rest.order_connection_requests == 3 and oc.requests == 3
            assert oc.connects == 1 and oc.losses == 0 and oc.busy == 0     # one connection, kept alive
            assert sim.venue(VENUE).rest_requests[ORDER_PATH] == n_sim + 3
            for o, ack in acks:                      # the private stream agrees
                st = await s.stream_final(o.client_id)
                assert st.status is OrderStatus.FILLED and st.filled_qty == o.qty
            # a query (GET) is not an order route: the pool
            q = await gw.query(SYM, acks[0][0].client_id)
            assert q.status is OrderStatus.FILLED and rest.order_connection_requests == 3
            # a resting order and its cancel (DELETE) over the order connection
            g = gs.order_at_touch(sim, VENUE, Side.BUY, levels_away=50, tif=TimeInForce.GTC)
            ack = await gw.place(g)
            assert ack.definitive and ack.state.status is OrderStatus.NEW, ack
            assert sim_order(sim, g.client_id).is_open
            c = await gw.cancel(SYM, g.client_id)
            assert c.definitive and c.state.status is OrderStatus.CANCELLED and c.state.filled_qty == 0, c
            assert not sim_order(sim, g.client_id).is_open
            assert rest.order_connection_requests == 5 and oc.requests == 5 and oc.connects == 1
            assert gw.ambiguous == 0 and gw.rejected == 0
            assert rest.stats()["order_connection"]["order_requests"] == 5

    run(main())


def test_a_wrong_signature_over_the_order_connection_is_refused_by_the_venue():
    """The simulator checks signatures of requests written by the order connection too."""
    async def main():
        async with gs.Session(VENUE, secret="not-the-secret", stream_start_timeout_s=0.5) as s:
            rest, oc = lane_of(s.gw)
            o = gs.order_at_touch(s.sim, VENUE, Side.BUY)
            ack = await s.gw.place(o)
            assert ack.definitive and ack.state.status is OrderStatus.REJECTED and ack.error_code == "700002", ack
            assert rest.order_connection_requests == 1 and oc.connects == 1
            assert sim_order(s.sim, o.client_id) is None
            assert oc.ready                          # a 4xx answer leaves the connection usable

    run(main())


# -- started eagerly: on the wire before the loop runs anything else -------------------------------------

def test_eager_place_from_a_callback_is_on_the_wire_before_the_loop_runs_another_callback():
    async def main():
        async with gs.Session(VENUE) as s:
            gw, sim = s.gw, s.sim
            rest, oc = lane_of(gw)
            loop = asyncio.get_running_loop()
            o = gs.order_at_touch(sim, VENUE, Side.BUY)
            n_sim = sim.venue(VENUE).rest_requests[ORDER_PATH]
            seen = {}

            def on_book_update():                     # what the executor's callback does
                loop.call_soon(seen.setdefault, "other callback ran", True)   # scheduled ahead of the order
                r0, oc0 = rest.order_connection_requests, oc.requests
                assert asyncio.current_task() is None
                fut = start_eager(gw.place(o))
                # synchronously, before start_eager's caller returns to the loop:
                seen["in_call"] = dict(
                    lane=rest.order_connection_requests - r0, requests=oc.requests - oc0,
                    pending=oc._pending is not None, unsent=oc._proto.transport.get_write_buffer_size(),
                    other="other callback ran" in seen, done=fut.done(),
                    at_server=server_side_peek(oc._proto.transport),
                    sim_handled=sim.venue(VENUE).rest_requests[ORDER_PATH] - n_sim)
                return fut

            fut = await from_callback(on_book_update)
            c = seen["in_call"]
            assert c["lane"] == 1 and c["requests"] == 1 and c["pending"]
            assert c["unsent"] == 0                   # every byte handed to the kernel in the call
            assert not c["other"] and not c["done"] and c["sim_handled"] == 0
            # the whole signed request is already in the server's receive buffer
            req = c["at_server"]
            assert req.startswith(b"POST " + ORDER_PATH.encode() + b"?"), req[:200]
            assert b"newClientOrderId=" + o.client_id.encode() in req and b"&signature=" in req
            assert req.endswith(b"\r\n\r\n")          # no body: the complete request
            assert isinstance(fut, asyncio.Task)
            ack = await fut
            assert ack.outcome is Outcome.DEFINITIVE and ack.state.status in ACCEPTED and ack.order_id, ack
            so = sim_order(sim, o.client_id)
            assert so is not None and so.filled == so.qty
            assert seen.get("other callback ran") and oc.connects == 1
            # a cancel of an unknown order started the same way: its DELETE goes over the connection too
            r0 = rest.order_connection_requests
            fut = await from_callback(lambda: start_eager(gw.cancel(SYM, "nosuchorder9")))
            assert rest.order_connection_requests == r0 + 1
            c = await fut
            assert c.definitive and c.state is None and c.reason == "not_found"

    run(main())


# -- the pooled client while the order connection is busy or down -------------------------------------------

def test_busy_order_connection_falls_back_to_the_pool_also_when_started_eagerly():
    async def main():
        async with gs.Session(VENUE, request_timeout_s=1.0) as s:
            gw, sim = s.gw, s.sim
            rest, oc = lane_of(gw)
            sim.venue(VENUE).faults.order_timeout(1)          # executed, never answered: in flight
            o1 = gs.order_at_touch(sim, VENUE, Side.BUY)
            t1 = await from_callback(lambda: start_eager(gw.place(o1)))
            assert rest.order_connection_requests == 1 and oc._pending is not None and not oc.ready
            await gs.wait_for(lambda: sim_order(sim, o1.client_id) is not None, 3, "o1 at the venue")
            # busy: the next order goes over the pool, awaited from a task ...
            o2 = gs.order_at_touch(sim, VENUE, Side.SELL)
            ack2 = await gw.place(o2)
            assert ack2.definitive and ack2.state.status in ACCEPTED, ack2
            # ... and started eagerly outside any task (aiohttp needs one: the sleep(0) guard)
            o3 = gs.order_at_touch(sim, VENUE, Side.BUY)
            t3 = await from_callback(lambda: start_eager(gw.place(o3)))
            assert not t3.done()
            ack3 = await t3
            assert ack3.definitive and ack3.state.status in ACCEPTED, ack3
            assert rest.order_connection_requests == 1 and oc.requests == 1
            assert rest.order_connection_fallbacks == 2          # o2 and o3: counted as sent by the pool
            for o in (o2, o3):
                assert sim_filled(sim, o.client_id) == o.qty
            # the unanswered one: ambiguous at the request timeout; the connection is opened again
            ack1 = await t1
            assert ack1.outcome is Outcome.AMBIGUOUS and ack1.state.status is OrderStatus.UNKNOWN, ack1
            await gs.wait_for(lambda: oc.ready and oc.connects == 2, 5, "the order connection re-opened")
            q = await gw.query(SYM, o1.client_id)             # it was executed
            assert q.status is OrderStatus.FILLED and q.filled_qty == o1.qty
            o4 = gs.order_at_touch(sim, VENUE, Side.SELL)
            assert (await gw.place(o4)).definitive and rest.order_connection_requests == 2

    run(main())


def test_order_connection_down_falls_back_to_the_pool_also_when_started_eagerly():
    async def main():
        async with gs.Session(VENUE) as s:
            gw, sim = s.gw, s.sim
            rest, oc = lane_of(gw)
            o = gs.order_at_touch(sim, VENUE, Side.BUY)

            def down_then_place():
                oc.abandon("test: down")              # closed now; it reconnects in the background
                assert not oc.connected and not oc.ready
                return start_eager(gw.place(o))

            fut = await from_callback(down_then_place)
            ack = await fut
            assert ack.definitive and ack.state.status in ACCEPTED, ack
            assert rest.order_connection_requests == 0 and oc.requests == 0
            assert sim_filled(sim, o.client_id) == o.qty
            # and from a task while it is down
            oc.abandon("test: down again")
            o2 = gs.order_at_touch(sim, VENUE, Side.SELL)
            ack2 = await gw.place(o2)
            assert ack2.definitive and ack2.state.status in ACCEPTED and rest.order_connection_requests == 0
            # back up: orders use it again
            await gs.wait_for(lambda: oc.ready, 5, "the order connection back")
            assert oc.connects >= 2
            o3 = gs.order_at_touch(sim, VENUE, Side.BUY)
            assert (await gw.place(o3)).definitive and rest.order_connection_requests == 1

    run(main())


def test_without_order_connection_it_is_never_opened():
    async def main():
        async with gs.Session(VENUE, order_connection=False) as s:
            gw, sim = s.gw, s.sim
            rest = gw._rest
            assert rest.order_connection is None and rest.order_routes == frozenset()
            o = gs.order_at_touch(sim, VENUE, Side.BUY)
            assert (await gw.place(o)).definitive
            o2 = gs.order_at_touch(sim, VENUE, Side.SELL)
            fut = await from_callback(lambda: start_eager(gw.place(o2)))   # eager: the pool behind sleep(0)
            ack2 = await fut
            assert ack2.definitive and ack2.state.status in ACCEPTED, ack2
            g = gs.order_at_touch(sim, VENUE, Side.BUY, levels_away=50, tif=TimeInForce.GTC)
            assert (await gw.place(g)).definitive
            assert (await gw.cancel(SYM, g.client_id)).state.status is OrderStatus.CANCELLED
            assert rest.order_connection is None and rest.order_connection_requests == 0
            assert rest.stats()["order_connection"] is None
            for x in (o, o2):
                assert sim_filled(sim, x.client_id) == x.qty
        assert s.gw._rest is None or s.gw._rest.order_connection is None

    run(main())


# -- the connection lost after the request left ------------------------------------------------------------

@pytest.mark.parametrize("eager", [False, True])
def test_connection_dropped_after_the_request_is_ambiguous_and_reconnected(eager):
    async def main():
        async with gs.Session(VENUE, request_timeout_s=2.0) as s:
            gw, sim = s.gw, s.sim
            rest, oc = lane_of(gw)
            sim.venue(VENUE).faults.order_timeout(1, drop=True)     # executed, then the connection is cut
            o = gs.order_at_touch(sim, VENUE, Side.BUY)
            t0 = time.monotonic()
            if eager:
                ack = await (await from_callback(lambda: start_eager(gw.place(o))))
            else:
                ack = await gw.place(o)
            assert time.monotonic() - t0 < 1.5             # from the loss, not the timeout
            assert rest.order_connection_requests == 1
            assert ack.outcome is Outcome.AMBIGUOUS, ack               # never rejected: it may have executed
            assert ack.state.status is OrderStatus.UNKNOWN and ack.error_code == "ambiguous"
            assert gw.ambiguous == 1 and gw.rejected == 0
            assert oc.losses == 1
            await gs.wait_for(lambda: oc.ready and oc.connects == 2, 5, "the order connection re-established")
            q = await gw.query(SYM, o.client_id)                      # the venue did execute it
            assert q.status is OrderStatus.FILLED and q.filled_qty == o.qty
            o2 = gs.order_at_touch(sim, VENUE, Side.SELL)
            ack2 = await gw.place(o2)
            assert ack2.definitive and ack2.state.status in ACCEPTED, ack2
            assert rest.order_connection_requests == 2 and oc.connects == 2     # on the new connection

    run(main())


def test_caller_timing_out_place_does_not_wedge_the_order_connection():
    async def main():
        async with gs.Session(VENUE, request_timeout_s=0.5) as s:
            gw, sim = s.gw, s.sim
            rest, oc = lane_of(gw)
            sim.venue(VENUE).faults.order_timeout(1)            # never answered
            o = gs.order_at_touch(sim, VENUE, Side.BUY)
            sent = time.monotonic()
            t = await from_callback(lambda: start_eager(gw.place(o)))
            # the executor's _await_ack: the same timeout, counted from when the order was started
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(t, 0.5 - (time.monotonic() - sent))
            # the request was given up: the connection must be usable again (abandoned, reconnected)
            await gs.wait_for(lambda: oc.ready, 1.5, lambda: "the order connection usable again (pending=%r, "
                              "connects=%d)" % (oc._pending, oc.connects))
            o2 = gs.order_at_touch(sim, VENUE, Side.SELL)
            assert (await gw.place(o2)).definitive and rest.order_connection_requests == 2

    run(main())


# -- the executor's warm-up ---------------------------------------------------------------------------------

def _snapshot(lv) -> dict:
    ex, risk = lv.ex, lv.risk
    gws = {v: lv.engine.adapters[v].gateway for v in lt.VENUES}
    rests = {v: gws[v]._rest for v in lt.VENUES}
    snap = dict(
        risk_checks=risk.checks, risk_rejections=dict(risk.rejections), risk_state=risk.state,
        risk_reasons=set(risk.reasons), risk_transitions=risk.transitions,
        last_trade=dict(risk._last_trade_ns), window=(risk.window_orders, risk.window_failures),
        audit_events=ex.audit_events, audit_errors=ex.audit_errors, audit_bytes=lv.audit_path.read_bytes(),
        opportunities=ex.opportunities, skipped=dict(ex.skipped), legs=ex.legs.open_client_ids(), retired=ex.legs.retired_count,
        results=len(ex.results), inflight=ex.inflight, orders_by_result=dict(ex.orders_by_result),
        trades_by_status=dict(ex.trades_by_status), unreconciled=set(ex.unreconciled),
        balances={v: ex.balances.cached(v) for v in lt.VENUES}, sent_at={v: ex.balances.last_sent_ns(v) for v in lt.VENUES},
        positions=dict(lv.engine.positions.positions()), fills=lv.engine.positions.fill_count,
        venue_deltas=dict(lv.engine.positions.venue_deltas),
        placed={v: (g.placed, g.ambiguous, g.rejected) for v, g in gws.items()},
        sim_orders={v: len(lv.sim.trading.engine(v).orders) for v in lt.VENUES},
        sim_rest={v: sum(lv.sim.venue(v).rest_requests.values()) for v in lt.VENUES},
        rest={v: (r.requests, dict(r.by_status), r.order_connection_requests, r._on_wire,
                  {k: tuple(w._times) for k, w in r._windows.items()})
              for v, r in rests.items()},
        lane=(lambda oc: (oc.requests, oc.pings, oc.busy, oc.connects))(rests["mexc_spot"].order_connection),
        gate_api=gws["gateio_spot"].session.api_requests,
    )
    return snap


def test_warm_has_no_side_effects(tmp_path, monkeypatch):
    async def main():
        async with lt.Live(tmp_path, monkeypatch) as lv:
            ex = lv.ex
            assert ex.trading.warm_interval_ms > 0 and ex._warm_handle is not None
            # nothing submitted yet: nothing to warm with (the background tick did not warm either)
            assert ex._warm_opp is None and ex.warm() is False and ex.warmups == 0
            mexc = lv.engine.adapters["mexc_spot"].gateway
            assert mexc._rest.order_connection is not None and mexc._rest.order_connection.connected
            res = await lv.trade("mexc_spot")
            assert res.status == "done", res
            assert ex._warm_opp is not None and ex.opportunities >= 1
            assert mexc._rest.order_connection_requests >= 1          # the MEXC leg went over the order connection
            await lt.wait_for(lambda: ex.inflight == 0 and not ex.legs.open_client_ids(), 10, "the trade settled")
            await asyncio.sleep(0.3)                                  # late pushes and log records are in
            before = _snapshot(lv)
            w0, e0 = ex.warmups, ex.warm_errors
            for _ in range(300):
                assert ex.warm() is True
            assert ex.warmups == w0 + 300                            # no loop step in between: all ours
            await asyncio.sleep(0.3)                                  # the background tick warms too
            assert ex.warmups > w0 + 300 + 10 and ex.warm_errors == e0 == 0
            after = _snapshot(lv)
            diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            assert not diff, diff
            # and the node still trades normally afterwards
            res2 = await lv.trade("gateio_spot")
            assert res2.status == "done", res2
            # operators see the order connection and the warm-up on /metrics
            text = await lv.scrape()
            rest = mexc._rest
            assert 'cexnode_rest_order_connection_up{venue="mexc_spot"} 1.0' in text
            assert ('cexnode_rest_order_connection_requests_total{venue="mexc_spot",via="connection"} %.1f'
                    % rest.order_connection_requests) in text
            assert ('cexnode_rest_order_connection_requests_total{venue="mexc_spot",via="pool"} %.1f'
                    % rest.order_connection_fallbacks) in text
            assert 'cexnode_rest_order_connection_events_total{event="connect",venue="mexc_spot"} 1.0' in text \
                or 'cexnode_rest_order_connection_events_total{venue="mexc_spot",event="connect"} 1.0' in text
            assert 'cexnode_executor_warmups_total{result="ok"}' in text
            return lv
    lv = lt.run(main())
    lt.check_end(lv)
