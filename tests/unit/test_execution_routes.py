"""Routes wired and unwired while the node runs, on the execution side: the executor's leg rules
(``Executor.add_route_rules`` / ``remove_route``), the stale-data check's books
(``RoutedBooks``) and the paper venues' books (``PaperGateway.add_book`` / ``remove_book``)."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from cexnode._core.book import Book
from cexnode.execution import Executor, PaperGateway, PositionBook, RiskManager, RoutedBooks
from cexnode.execution.gateway import OrderRequest, OrderStatus, Side, TimeInForce
from audit_check import check_audit
from support.executor_harness import RULES, H, running
from support.scripted_venue import Opp, risk_cfg, trading_cfg

D = Decimal
ROUTE = "BTC/USDT mexc-gate"
S = 1_000_000_000
T0 = 1_700_000_000 * S


def opp(route=ROUTE, qty="0.5", buy="100", sell="101"):
    return Opp(route=route, symbol="BTC/USDT", buy_venue="mexc_spot", sell_venue="gateio_spot",
               qty_m=int(D(qty) * 10000), buy_price_m=int(D(buy) * 100), sell_price_m=int(D(sell) * 100))


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def bare(tmp_path, **kw) -> H:
    """The harness's two scripted venues under an executor that starts with no route at all."""
    h = H(tmp_path, **kw)
    h.ex = Executor(gateways={"mexc_spot": h.a, "gateio_spot": h.b}, risk=h.risk, positions=h.positions,
                    trading=trading_cfg(), rules={})
    return h


def test_a_route_added_at_run_time_trades(tmp_path):
    h = bare(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),))

    async def main():
        async with running(h):
            before = await h.ex.execute(opp())          # no rules yet: refused, nothing sent
            h.ex.add_route_rules(RULES, route=ROUTE)
            after = await h.ex.execute(opp())
            return before, after

    before, after = run(main())
    assert before.status == "rejected" and before.reason == "not_configured"
    assert after.status == "done" and after.buy_filled == after.sell_filled == D("0.5")
    assert [r.purpose for r in h.a.placed] == ["entry"] and [r.purpose for r in h.b.placed] == ["entry"]
    check_audit(h.events(), sent={r.client_id for r in h.a.placed + h.b.placed})


def test_a_removed_route_skips_new_opportunities_while_its_trade_in_flight_is_hedged(tmp_path):
    """The sell leg is refused while the route is being removed: its hedge still goes out (the
    route's rules stay while it is in flight), a new opportunity of it is skipped and counted,
    and only once the trade has ended are its rules dropped and the release called."""
    h = bare(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),))
    h.a.latency_s = h.b.latency_s = 0.05
    h.b.script.append("reject")
    released = []

    async def main():
        async with running(h):
            h.ex.add_route_rules(RULES, route=ROUTE)
            await h.ex.refresh_balances()
            task = h.ex.submit(opp())
            assert task is not None and h.ex.inflight == 1
            h.ex.remove_route(ROUTE, on_released=lambda: released.append(dict(h.ex.rules)))
            mid = (list(released), h.ex.releasing(ROUTE), h.ex.submit(opp()), dict(h.ex.skipped))
            res = await task
            return mid, res

    (released_mid, releasing, second, skipped), res = run(main())
    assert released_mid == [] and releasing and second is None
    assert skipped == {"route_removed": 1}
    assert res.status == "hedged" and res.residual == 0 and h.positions.position("BTC") == 0
    assert [r.purpose for r in h.b.placed] == ["entry", "hedge"]
    assert released == [{}]                             # called once, after the trade, rules gone
    assert h.ex.rules == {} and not h.ex.releasing(ROUTE) and h.ex.removed_routes == [ROUTE]
    assert h.ex.trades_by_status[(ROUTE, "hedged")] == 1
    assert {r["route"] for r in h.ex.summary_rows()} == {ROUTE}     # the removed route's trade stays
    check_audit(h.events(), sent={r.client_id for r in h.a.placed + h.b.placed})


def test_rules_held_by_another_route_stay_and_a_route_added_again_trades(tmp_path):
    h = bare(tmp_path, a_asks=(("100", "5"),), b_bids=(("101", "5"),))
    released = []

    async def main():
        async with running(h):
            h.ex.add_route_rules(RULES, route="one")
            h.ex.add_route_rules(RULES, route="two")
            h.ex.remove_route("one", on_released=lambda: released.append("one"))
            kept = dict(h.ex.rules)
            skipped = h.ex.submit(opp(route="one"))
            two = await h.ex.execute(opp(route="two"))
            h.ex.remove_route("two", on_released=lambda: released.append("two"))
            gone = dict(h.ex.rules)
            h.ex.add_route_rules(RULES, route="one")       # listed again
            task = h.ex.submit(opp(route="one"))
            return kept, skipped, two, gone, await task

    kept, skipped, two, gone, again = run(main())
    assert kept == RULES and skipped is None and two.status == "done"
    assert released == ["one", "two"] and gone == {}
    assert again.status == "done" and h.ex.removed_routes == ["two"]
    assert h.ex.skipped == {"route_removed": 1}


def test_rules_given_at_construction_outlive_route_removal(tmp_path):
    h = H(tmp_path)                                   # RULES held by no route
    h.ex.add_route_rules(RULES, route=ROUTE)
    h.ex.remove_route(ROUTE)
    assert h.ex.rules == RULES and h.ex.removed_routes == [ROUTE]


def test_route_churn_leaves_nothing_behind(tmp_path):
    """Many routes wired, traded and removed: no rules, nothing releasing, no cooldown left of
    them; their trades are still counted."""
    h = bare(tmp_path, a_asks=(("100", "50"),), b_bids=(("101", "50"),), b_bal={"USDT": "10000", "BTC": "10"})
    h.risk.cfg = risk_cfg(route_cooldown_ms=60_000, max_position={"BTC": D(100)})
    names = ["r%d" % i for i in range(20)]

    async def main():
        async with running(h):
            for name in names:
                h.ex.add_route_rules(RULES, route=name)
                res = await h.ex.execute(opp(route=name, qty="0.1"))
                assert res.status == "done" and h.risk.in_cooldown(name), res
                h.ex.remove_route(name)

    run(main())
    assert h.ex.rules == {} and h.ex.status()["routes_releasing"] == []
    assert not any(h.risk.in_cooldown(n) for n in names)
    assert h.ex.removed_routes == names
    assert sum(n for (r, st), n in h.ex.trades_by_status.items() if st == "done") == len(names)


# -- the stale-data check's books --------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self):
        return self.t


def synced_book(sid: int, recv_ns: int) -> Book:
    b = Book(0, sid)
    b.py_apply([(1, 1)], [(2, 1)], full=True, recv_ns=recv_ns)
    b.mark_in_sync(True)
    return b


def test_routed_books_follow_routes_and_a_new_book_waits_for_its_first_sync():
    clk = Clock()
    fresh, other = synced_book(0, T0 - 5_000_000), synced_book(1, T0 - 5_000_000)
    syncing = Book(0, 2)                              # wired while the node runs, snapshot not in yet
    rb = RoutedBooks(clk)
    rm = RiskManager(risk_cfg(stale_data_halt_ms=10000), PositionBook(clock_ns=clk), book_ages_ms=rb, clock_ns=clk)
    rb.add(("a", "X"), fresh)
    rb.add(("b", "X"), other)
    rb.add(("b", "X"), other)                         # a second route on the same book
    rb.add(("c", "Y"), syncing, pending=True)
    assert rb() == {("a", "X"): 5.0, ("b", "X"): 5.0} and rb.pending == [("c", "Y")]
    assert rm.refresh() == "active"                   # the syncing book halts nothing
    syncing.py_apply([(1, 1)], [(2, 1)], full=True, recv_ns=T0 - 1_000_000)
    syncing.mark_in_sync(True)
    assert rb()[("c", "Y")] == 1.0 and rb.pending == []
    syncing.mark_in_sync(False)                       # from its first sync on, watched as any other
    assert rm.refresh() == "halted" and rm.stale_books == [("c", "Y")]
    assert rb.remove(("c", "Y")) is True              # its route unwired: it no longer halts
    assert rm.refresh() == "active"
    clk.t += 20 * S                                   # every book stale now
    assert rb.remove(("b", "X")) is False and ("b", "X") in rb     # one route still on it
    assert rm.refresh() == "halted" and set(rm.stale_books) == {("a", "X"), ("b", "X")}
    assert rb.remove(("b", "X")) is True and rb.remove(("a", "X")) is True
    assert len(rb) == 0 and rm.refresh() == "active"
    # added at start (not pending): out of sync before its first update counts as stale
    rb.add(("d", "Z"), Book(0, 3))
    assert rb() == {("d", "Z"): None} and rm.refresh() == "halted"


# -- the paper venues' books -------------------------------------------------------------------------

def order(symbol: str, cid: str) -> OrderRequest:
    return OrderRequest(client_id=cid, venue="mexc_spot", symbol=symbol, side=Side.BUY, qty_m=1000, price_m=200,
                        qty_scale=4, price_scale=2, tif=TimeInForce.IOC)


def test_paper_gateway_books_added_and_removed():
    gw = PaperGateway("mexc_spot", {}, latency_ms=0, balances={"USDT": "1000"})
    b = Book(0, 1)
    now = time.time_ns()
    b.py_apply([(100, 10000)], [(200, 10000)], full=True, recv_ns=now)
    b.mark_in_sync(True)

    async def main():
        unknown = await gw.place(order("ETH/USDT", "o1"))
        gw.add_book("ETH/USDT", b)
        filled = await gw.place(order("ETH/USDT", "o2"))
        gw.remove_book("ETH/USDT")
        gone = await gw.place(order("ETH/USDT", "o3"))
        return unknown, filled, gone, await gw.query("ETH/USDT", "o2")

    unknown, filled, gone, queried = run(main())
    assert unknown.state.status is OrderStatus.REJECTED and unknown.reason == "unknown_symbol"
    assert filled.state.status is OrderStatus.FILLED and filled.state.filled_qty == D("0.1")
    assert gone.state.status is OrderStatus.REJECTED and gone.reason == "unknown_symbol"
    assert queried.status is OrderStatus.FILLED          # answered orders stay queryable
