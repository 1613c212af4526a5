"""RiskManager (states, breaker window, kill switch, daily loss, stale data) and PositionBook
(FIFO realised P&L, fees in quote/base/other assets, exposure, summary)."""
from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal

from hypothesis import given, strategies as st

from cexnode.execution import PositionBook, RiskManager
from cexnode.execution.gateway import Side
from support.scripted_venue import risk_cfg

D = Decimal
T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


def test_positions_fifo_realised_and_fees():
    clk = Clock()
    pb = PositionBook(clock_ns=clk)
    r = pb.apply_fill(route="r", venue="a", base="BTC", quote="USDT", side=Side.BUY, qty=D("1"), price=D("100"),
                      fee=D("0.1"), fee_asset="USDT")
    assert r == D("-0.1")
    pb.apply_fill(route="r", venue="a", base="BTC", quote="USDT", side=Side.BUY, qty=D("1"), price=D("110"))
    r = pb.apply_fill(route="r", venue="b", base="BTC", quote="USDT", side=Side.SELL, qty=D("1.5"), price=D("120"))
    assert r == D("20") + D("5")                        # FIFO: 1@100, then 0.5@110
    assert pb.position("BTC") == D("0.5") and pb.realised("r") == D("24.9")
    r = pb.apply_fill(route="r", venue="b", base="BTC", quote="USDT", side=Side.SELL, qty=D("1"), price=D("100"))
    assert r == D("-5") and pb.position("BTC") == D("-0.5")     # flipped short 0.5 @100
    r = pb.apply_fill(route="r", venue="a", base="BTC", quote="USDT", side=Side.BUY, qty=D("0.5"), price=D("90"),
                      fee=D("0.001"), fee_asset="BTC")
    # closes the short (+5), then the base fee is 0.001 BTC leaving: a new short lot at price 0
    assert r == D("5") and pb.position("BTC") == D("-0.001")
    pb.apply_fill(route="r", venue="a", base="BTC", quote="USDT", side=Side.BUY, qty=D("0.001"), price=D("90"),
                  fee=D("1"), fee_asset="GT")
    assert pb.position("BTC") == 0 and pb.other_fees == {"GT": D(1)}
    assert pb.realised() == D("24.9") - 5 + 5 - D("0.09")
    assert pb.venue_deltas[("a", "BTC")] == D("2.5")
    assert pb.daily_realised(T0) == pb.realised() and pb.daily_realised(T0 + 86400 * S) == 0
    rows = pb.summary_rows()
    assert rows[0]["route"] == "r" and rows[0]["position"] == "0.000" and rows[0]["fills"] == 6


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 10**6), st.integers(1, 10**6)), min_size=1, max_size=40))
def test_positions_match_cash_flow_when_flat(fills):
    """Whatever the order of fills, once flat the FIFO realised P&L equals the cash flow."""
    pb = PositionBook(clock_ns=Clock())
    cash = D(0)
    pos = D(0)
    for is_buy, q, p in fills:
        qty, px = D(q).scaleb(-4), D(p).scaleb(-2)
        pb.apply_fill(route="r", venue="v", base="X", quote="Q", side=Side.BUY if is_buy else Side.SELL,
                      qty=qty, price=px)
        cash += -qty * px if is_buy else qty * px
        pos += qty if is_buy else -qty
    if pos:
        pb.apply_fill(route="r", venue="v", base="X", quote="Q", side=Side.SELL if pos > 0 else Side.BUY,
                      qty=abs(pos), price=D(7))
        cash += pos * 7
    assert pb.position("X") == 0 and pb.realised() == cash


def test_states_and_reasons():
    clk = Clock()
    pb = PositionBook(clock_ns=clk)
    ages = {("a", "BTC/USDT"): 10.0}
    rm = RiskManager(risk_cfg(max_position={"BTC": D(1)}, max_open_exposure=D(1000)), pb,
                     book_ages_ms=lambda: ages, clock_ns=clk)
    assert rm.refresh() == "active" and rm.state_code == 0
    pb.apply_fill(route="r", venue="a", base="BTC", quote="USDT", side=Side.BUY, qty=D("1.5"), price=D(100))
    assert rm.refresh() == "reducing" and rm.reasons == {"position_limit"} and rm.state_code == 1
    pb.apply_fill(route="r", venue="a", base="BTC", quote="USDT", side=Side.SELL, qty=D("1.5"), price=D(100))
    assert rm.refresh() == "active"
    ages[("a", "BTC/USDT")] = 20000.0
    assert rm.refresh() == "halted" and rm.reasons == {"stale_data"} and rm.state_code == 2
    assert rm.allows_hedge()
    ages[("a", "BTC/USDT")] = 1.0
    assert rm.refresh() == "active"
    d = rm.check_trade(route="r", base="BTC", qty=D("0.5"), buy_price=D(100), sell_price=D(101))
    assert d.ok
    rm.toggle_kill_signal()
    assert rm.state == "halted" and not rm.allows_hedge()
    d = rm.check_trade(route="r", base="BTC", qty=D("0.5"), buy_price=D(100), sell_price=D(101))
    assert (d.ok, d.reason) == (False, "state_halted")
    rm.toggle_kill_signal()
    assert rm.state == "active" and rm.transitions == 6


def test_error_rate_window_minimum_sample_and_ageing():
    clk = Clock()
    rm = RiskManager(risk_cfg(min_orders_for_breaker=100, error_window_s=60, error_rate_threshold=D("0.01")),
                     PositionBook(clock_ns=clk), clock_ns=clk)
    rm.record_order(True)
    for _ in range(98):
        rm.record_order(False)
    assert rm.refresh() == "active"                  # 99 orders < minimum sample
    rm.record_order(False)
    assert rm.refresh() == "active"                  # 1/100 = 1 %: not above
    rm.record_order(True)
    assert rm.state == "halted" and "error_rate" in rm.reasons     # 2/101
    clk.t += 61 * S                                   # the window rolls past every order
    assert rm.refresh() == "active" and rm.window_orders == 0


def test_error_window_memory_is_bounded_by_its_seconds():
    """Outcomes are kept per second of the window, whatever the order rate: 10,000 orders in 3 s
    leave 3 entries, and the window still ages them second by second."""
    clk = Clock()
    rm = RiskManager(risk_cfg(min_orders_for_breaker=100, error_window_s=2, error_rate_threshold=D("0.5")),
                     PositionBook(clock_ns=clk), clock_ns=clk)
    for i in range(10_000):
        rm.record_order(i % 100 == 0)
        clk.t += 300_000                               # 0.3 ms apart: 3 s in all
    assert rm.window_orders == 10_000 and rm.window_failures == 100
    assert rm.status()["window_entries"] in (3, 4)      # one per second the orders fell in
    rm.refresh()                                       # now = start + 3 s: the first second has aged out
    assert 6000 <= rm.window_orders <= 6700, rm.window_orders
    clk.t += 3 * S
    assert rm.refresh() == "active" and rm.window_orders == 0 and rm.window_failures == 0


def test_daily_loss_clears_next_utc_day_and_cooldown():
    clk = Clock(T0 - T0 % (86400 * S) + 3600 * S)
    pb = PositionBook(clock_ns=clk)
    rm = RiskManager(risk_cfg(daily_loss_limit=D(10), route_cooldown_ms=500), pb, clock_ns=clk)
    pb.apply_fill(route="r", venue="a", base="BTC", quote="USDT", side=Side.BUY, qty=D(1), price=D(100), fee=D(11),
                  fee_asset="USDT")
    assert rm.refresh() == "halted" and "daily_loss" in rm.reasons
    clk.t += 86400 * S
    assert rm.refresh() == "active"
    rm.note_trade("r")
    d = rm.check_trade(route="r", base="ETH", qty=D(1), buy_price=D(1), sell_price=D(1))
    assert d.reason == "cooldown"
    clk.t += 500 * 1_000_000
    assert rm.check_trade(route="r", base="ETH", qty=D(1), buy_price=D(1), sell_price=D(1)).ok
    assert rm.rejections == {"cooldown": 1}


def test_kill_file_and_sigusr1(tmp_path):
    f = tmp_path / "kill"
    rm = RiskManager(risk_cfg(kill_switch_file=str(f)), PositionBook())
    assert rm.refresh() == "active"
    f.write_text("")
    assert rm.refresh() == "halted" and rm.kill_file_present
    f.unlink()
    assert rm.refresh() == "active"

    async def main():
        loop = asyncio.get_running_loop()
        rm.install_signal_handler(loop)
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            for _ in range(100):
                await asyncio.sleep(0.005)
                if rm.kill_signal:
                    break
            return rm.state
        finally:
            rm.remove_signal_handler(loop)

    assert asyncio.run(main()) == "halted" and "kill_switch" in rm.reasons


def test_balance_check_spot_and_futures():
    rm = RiskManager(risk_cfg(), PositionBook())
    kw = dict(buy_venue="mexc_spot", sell_venue="gateio_spot", base="BTC", quote="USDT", qty=D("0.5"),
              buy_price=D(100), sell_price=D(101), buy_fee=D("0.001"), sell_fee=D("0.001"))
    assert rm.check_balances(buy_free={"USDT": D("50.05")}, sell_free={"BTC": D("0.5")}, sell_is_futures=False, **kw).ok
    d = rm.check_balances(buy_free={"USDT": D("50.04")}, sell_free={"BTC": D("0.5")}, sell_is_futures=False, **kw)
    assert (d.ok, d.reason) == (False, "balance") and "mexc_spot USDT" in d.detail
    d = rm.check_balances(buy_free={"USDT": D(100)}, sell_free={"BTC": D("0.4")}, sell_is_futures=False, **kw)
    assert not d.ok and "gateio_spot BTC" in d.detail
    # futures sell leg: quote margin (fraction 0.2) instead of base
    assert rm.check_balances(buy_free={"USDT": D(100)}, sell_free={"USDT": D("10.1505")}, sell_is_futures=True,
                             margin_fraction=D("0.2"), **kw).ok
    assert not rm.check_balances(buy_free={"USDT": D(100)}, sell_free={"USDT": D("10.1504")}, sell_is_futures=True,
                                 margin_fraction=D("0.2"), **kw).ok


def test_book_ages_source():
    from cexnode._core.book import Book
    from cexnode.execution import book_ages
    clk = Clock()
    fresh, old, never = Book(0, 0), Book(0, 1), Book(0, 2)
    fresh.py_apply([(1, 1)], [(2, 1)], full=True, recv_ns=T0 - 5_000_000)
    fresh.mark_in_sync(True)
    old.py_apply([(1, 1)], [(2, 1)], full=True, recv_ns=T0 - 20 * S)
    old.mark_in_sync(True)
    src = book_ages({("mexc_spot", "X"): fresh, ("gateio_spot", "X"): old, ("gateio_futures", "X"): never}, clk)
    assert src() == {("mexc_spot", "X"): 5.0, ("gateio_spot", "X"): 20000.0, ("gateio_futures", "X"): None}
    rm = RiskManager(risk_cfg(stale_data_halt_ms=10000), PositionBook(clock_ns=clk), book_ages_ms=src, clock_ns=clk)
    assert rm.refresh() == "halted" and set(rm.stale_books) == {("gateio_spot", "X"), ("gateio_futures", "X")}


_big_dec = st.builds(lambda m, e: Decimal(m).scaleb(-e), st.integers(0, 10**40), st.integers(0, 18))


@given(_big_dec, _big_dec, _big_dec, _big_dec, _big_dec, st.booleans(), st.booleans(), _big_dec)
def test_balance_needs_exact_at_80_digits(qty, bpx, spx, bfee, sfee, bfut, sfut, margin):
    """balance_needs (DEC_CTX's operations) == the same formulas evaluated inside
    localcontext(DEC_CTX), for sizes and prices far beyond the default context's 28 digits."""
    import decimal

    from cexnode.execution.positions import DEC_CTX
    from cexnode.execution.risk import balance_needs

    got = balance_needs(base="B", quote="Q", qty=qty, buy_price=bpx, sell_price=spx, buy_fee=bfee, sell_fee=sfee,
                        buy_is_futures=bfut, sell_is_futures=sfut, margin_fraction=margin)
    with decimal.localcontext(DEC_CTX):
        buy = ("Q", qty * bpx * ((margin if bfut else 1) + bfee))
        sell = ("Q", qty * spx * (margin + sfee)) if sfut else ("B", qty)
    assert got == (buy, sell)
    assert str(got[0][1]) == str(buy[1])          # the same digits, not only an equal value


def test_audit_log_on_a_full_disk_halts_and_never_raises(capfd):
    """The audit file cannot be written (/dev/full: ENOSPC): a risk change that would be audited
    neither raises to its caller (a trade's task, a venue callback, the ticker) nor goes unnoticed:
    risk halts with reason ``audit`` besides the reason raised."""
    import types

    from cexnode import log as clog

    ns = types.SimpleNamespace
    cfg = ns(level="info", ring_capacity=4096, flush_interval_ms=5, batch_size=1024, loggers={}, redact_keys=[],
             console=ns(enabled=False, level="info", color="never"),
             file=ns(enabled=False, path="", level="debug", max_bytes=1 << 20, rotate_daily=False),
             audit=ns(path="/dev/full", fsync="always"))

    async def main():
        ls = clog.setup(cfg, bridge_stdlib=False)
        await ls.start()
        try:
            rm = RiskManager(risk_cfg(), PositionBook(), clock_ns=Clock())
            rm.set_condition("unreconciled", True, "o1")       # audited: fails
            first = (rm.state, set(rm.reasons))
            rm.toggle_kill_signal()                            # and again
            return first, (rm.state, set(rm.reasons)), rm.audit_errors, ls.write_failures
        finally:
            await ls.stop()

    first, second, n_errors, failures = asyncio.run(asyncio.wait_for(main(), 10))
    assert first == ("halted", {"unreconciled", "audit"})
    assert second == ("halted", {"unreconciled", "audit", "kill_switch"})
    assert n_errors == 3 and failures == 3
    err = capfd.readouterr().err
    errors = [ln for ln in err.splitlines() if "ERROR" in ln]
    assert len(errors) == 2 and "/dev/full cannot be written (write: [Errno 28]" in errors[0]   # once
    assert "still cannot be written at stop" in errors[1] and "Traceback" not in err   # what it held: on stderr


def test_stale_data_scope_venue_halts_only_when_a_venues_routed_books_are_all_stale():
    """``risk.stale_data_scope: venue``: one quiet or halted book of a venue that streams its other
    books does not halt (its routes read fresh books only); the venue's every book stale does, and
    clears when one of them is fresh again. ``book`` (the default) halts on any."""
    from cexnode._core.book import Book
    from cexnode.execution import book_ages
    clk = Clock()

    def synced(venue, age_ms):
        b = Book(0, venue)
        b.py_apply([(1, 1)], [(2, 1)], full=True, recv_ns=T0 - int(age_ms * 1_000_000))
        b.mark_in_sync(True)
        return b

    books = {("mexc_spot", "A"): synced(0, 5), ("mexc_spot", "B"): synced(0, 20000),
             ("gateio_spot", "A"): synced(1, 5), ("gateio_spot", "B"): synced(1, 5)}
    def src():                                   # the books as they are at each refresh
        return book_ages(books, clk)()
    by_venue = RiskManager(risk_cfg(stale_data_halt_ms=10000, stale_data_scope="venue"), PositionBook(clock_ns=clk),
                           book_ages_ms=src, clock_ns=clk)
    by_book = RiskManager(risk_cfg(stale_data_halt_ms=10000), PositionBook(clock_ns=clk), book_ages_ms=src, clock_ns=clk)
    assert by_venue.refresh() == "active" and by_venue.stale_books == []
    assert by_book.refresh() == "halted" and by_book.stale_books == [("mexc_spot", "B")]
    books[("mexc_spot", "A")] = synced(0, 30000)               # now every MEXC book is stale
    assert by_venue.refresh() == "halted" and set(by_venue.stale_books) == {("mexc_spot", "A"), ("mexc_spot", "B")}
    books[("mexc_spot", "A")] = synced(0, 1)                   # one streams again: the feed is alive
    assert by_venue.refresh() == "active" and "stale_data" not in by_venue.reasons
