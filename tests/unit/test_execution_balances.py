"""BalanceBook (cexnode/execution/balances.py): the executor's fresh-balance cache, the reservations
of the trades in flight and the free balances the arbitrage stage sizes to — against PaperGateways
(the real paper venue: its balances answer as a venue's would)."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from cexnode.config import TradingConfig
from cexnode.execution import PaperGateway
from cexnode.execution.balances import BalanceBook
from cexnode.execution.gateway import Balance, GatewayError
from cexnode.log import get_logger

D = Decimal
MS = 1_000_000


class Clock:
    """A wall clock the test moves (ns)."""

    def __init__(self, t: int = 1_700_000_000_000 * MS):
        self.t = t

    def __call__(self) -> int:
        return self.t


def book(clock, *, max_age_ms=1000, latency_ms=0.0, timeout_ms=2000, a=None, b=None):
    gws = {"mexc_spot": PaperGateway("mexc_spot", {}, latency_ms=latency_ms, clock_ns=clock,
                                     balances=a or {"USDT": "1000", "BTC": "0"}),
           "gateio_spot": PaperGateway("gateio_spot", {}, latency_ms=latency_ms, clock_ns=clock,
                                       balances=b or {"USDT": "500", "BTC": "2"})}
    tr = TradingConfig(max_balance_age_ms=max_age_ms, order_timeout_ms=timeout_ms)
    return BalanceBook(gateways=gws, trading=tr, log=get_logger("test.balances"), clock_ns=clock)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_fetched_balances_are_fresh_for_max_age_and_dropped_at_a_send():
    clock = Clock()
    bb = book(clock)
    assert bb.stale(["mexc_spot", "gateio_spot"]) == ["mexc_spot", "gateio_spot"]      # nothing fetched yet
    assert bb.free("mexc_spot") == {} and bb.free_of("mexc_spot", "USDT") == 0 and bb.free_balances("mexc_spot") is None
    run(bb.fetch(["mexc_spot", "gateio_spot"]))
    assert bb.stale(["mexc_spot", "gateio_spot"]) == []
    assert bb.free("gateio_spot") == {"USDT": D(500), "BTC": D(2)} and bb.free_of("gateio_spot", "ETH") == 0
    assert bb.cached("mexc_spot")[1] == clock.t                 # as fresh as the request's start
    clock.t += 1000 * MS
    assert bb.stale(["mexc_spot"]) == []                        # exactly max_balance_age_ms old: still fresh
    clock.t += 1
    assert bb.stale(["mexc_spot", "gateio_spot"]) == ["mexc_spot", "gateio_spot"]
    run(bb.fetch(["mexc_spot"]))
    sent = bb.order_sent("mexc_spot")
    assert sent == clock.t == bb.last_sent_ns("mexc_spot") and bb.last_sent_ns("gateio_spot") == 0
    assert bb.cached("mexc_spot") is None and bb.stale(["mexc_spot"]) == ["mexc_spot"]
    # the cache is gone, the last observation stands for sizing
    assert bb.free_of("mexc_spot", "USDT") == 0 and bb.free_balances("mexc_spot") == {"USDT": D(1000), "BTC": D(0)}


def test_max_balance_age_zero_always_fetches():
    clock = Clock()
    bb = book(clock, max_age_ms=0)
    run(bb.fetch(["mexc_spot"]))
    assert bb.stale(["mexc_spot"]) == ["mexc_spot"] and bb.free_of("mexc_spot", "USDT") == D(1000)


def test_a_push_observed_before_our_last_send_is_ignored():
    clock = Clock()
    bb = book(clock)
    sent = bb.order_sent("mexc_spot")
    bb.on_balances("mexc_spot", {"USDT": Balance(asset="USDT", free=D(7), ts_ns=sent)})     # not after the send
    assert bb.cached("mexc_spot") is None and bb.free_balances("mexc_spot") is None
    bb.on_balances("mexc_spot", {"USDT": Balance(asset="USDT", free=D(8), ts_ns=sent + 1)})
    assert bb.cached("mexc_spot")[1] == sent + 1 and bb.free("mexc_spot") == {"USDT": D(8)}
    assert bb.stale(["mexc_spot"]) == []
    # a push without venue timestamps is as fresh as its arrival
    clock.t += 5 * MS
    bb.on_balances("gateio_spot", {"BTC": Balance(asset="BTC", free=D(1))})
    assert bb.cached("gateio_spot")[1] == clock.t


def test_reservations_are_taken_per_trade_and_released_with_it():
    clock = Clock()
    bb = book(clock)
    run(bb.fetch(["mexc_spot", "gateio_spot"]))
    bb.reserve(1, "mexc_spot", "gateio_spot", (("USDT", D("100.1")), ("BTC", D(1))))
    bb.reserve(2, "mexc_spot", "gateio_spot", (("USDT", D("50.05")), ("BTC", D("0.5"))))
    bb.reserve(3, "gateio_spot", "mexc_spot", (("USDT", D("20")), ("BTC", D("0.1"))))
    assert bb.reserved("mexc_spot") == {"USDT": D("150.15"), "BTC": D("0.1")}
    assert bb.reserved_by_venue() == {"mexc_spot": {"USDT": D("150.15"), "BTC": D("0.1")},
                                      "gateio_spot": {"BTC": D("1.5"), "USDT": D(20)}}
    # the balance check's one-asset form and the whole map agree; a reservation may exceed the balance
    for v in ("mexc_spot", "gateio_spot"):
        for a in ("USDT", "BTC", "ETH"):
            assert bb.free_of(v, a) == bb.free(v).get(a, D(0)), (v, a)
    assert bb.free_of("mexc_spot", "USDT") == D("849.85") and bb.free_of("mexc_spot", "BTC") == D("-0.1")
    assert bb.free_balances("gateio_spot") == {"USDT": D(480), "BTC": D("0.5")}
    assert bb.reserved_note(["mexc_spot", "mexc_spot"]) == \
        " (after reserving for trades in flight: mexc_spot USDT 150.15, mexc_spot BTC 0.1)"
    bb.release(2)
    assert bb.reserved("mexc_spot") == {"USDT": D("100.1"), "BTC": D("0.1")}
    bb.release(2)                                               # twice: nothing more goes
    assert bb.reserved("gateio_spot") == {"BTC": D(1), "USDT": D(20)}
    bb.release(1)
    bb.release(3)
    assert bb.reserved_by_venue() == {} and bb.reserved_note(["mexc_spot", "gateio_spot"]) == ""
    assert bb.free("mexc_spot") == {"USDT": D(1000), "BTC": D(0)}


def test_free_listeners_hear_every_change_of_the_free_balances():
    clock = Clock()
    bb = book(clock)
    heard: list = []

    def boom(venue, free):
        raise RuntimeError("listener bug")

    bb.add_free_listener(boom)                                  # a failing listener does not stop the others
    unsub = bb.add_free_listener(lambda v, f: heard.append((v, f)))
    run(bb.fetch(["mexc_spot"]))
    assert heard == [("mexc_spot", {"USDT": D(1000), "BTC": D(0)})]
    bb.reserve(7, "mexc_spot", "gateio_spot", (("USDT", D(10)), ("BTC", D(1))))
    assert heard[1:] == [("mexc_spot", {"USDT": D(990), "BTC": D(0)}), ("gateio_spot", None)]
    bb.order_sent("mexc_spot")                                  # not a change of what was observed
    assert len(heard) == 3
    bb.on_balances("mexc_spot", {"USDT": Balance(asset="USDT", free=D(900), ts_ns=clock.t + 1)})
    assert heard[3] == ("mexc_spot", {"USDT": D(890)})
    bb.release(7)
    assert heard[4:] == [("mexc_spot", {"USDT": D(900)}), ("gateio_spot", None)]
    unsub()
    unsub()                                                     # idempotent
    bb.release(7)
    run(bb.fetch(["gateio_spot"]))
    assert len(heard) == 6


def test_a_venue_that_does_not_answer_in_time_fails_the_fetch():
    clock = Clock()
    bb = book(clock, latency_ms=500, timeout_ms=20)
    with pytest.raises(GatewayError, match="balances of mexc_spot unavailable"):
        run(bb.fetch(["mexc_spot"]))
    assert bb.cached("mexc_spot") is None and bb.free_balances("mexc_spot") is None
