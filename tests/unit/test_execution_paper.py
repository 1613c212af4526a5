"""PaperGateway against real cexnode._core Books, and the executor end to end in paper mode:
ArbEngine emits from the books -> Executor -> PaperGateways fill against the same books."""
from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

import pytest

from cexnode import log as clog
from cexnode._core.arb import ArbEngine
from cexnode._core.book import Book
from cexnode.execution import Executor, LegRules, PaperGateway, PositionBook, RiskManager
from cexnode.execution.gateway import OrderNotFound, OrderRequest, OrderStatus, Side
from support.scripted_venue import audit_events, log_cfg, risk_cfg, trading_cfg

D = Decimal
P, Q = 2, 6                 # BTC/USDT: price 0.01, qty 0.000001


def book(venue_id, bids, asks, in_sync=True):
    b = Book(0, venue_id)
    now = time.time_ns()
    b.py_apply(bids, asks, full=True, exch_ts_ms=now // 1_000_000, recv_ns=now)
    b.mark_in_sync(in_sync)
    return b


def m(x, s):
    return int(D(x).scaleb(s))


def req(side, qty, price, cid, sym="BTC/USDT", venue="gateio_spot"):
    return OrderRequest(client_id=cid, venue=venue, symbol=sym, side=side, qty_m=m(qty, Q), price_m=m(price, P),
                        qty_scale=Q, price_scale=P)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_paper_walks_levels_to_the_limit_and_remembers_taken_liquidity():
    bk = book(1, bids=[(m("99", P), m("1", Q))], asks=[(m("100", P), m("0.3", Q)), (m("101", P), m("0.5", Q)),
                                                         (m("105", P), m("9", Q))])
    gw = PaperGateway("gateio_spot", {"BTC/USDT": bk}, fee_rate=D("0.002"), latency_ms=0,
                      balances={"USDT": "1000", "BTC": "0.5"})

    async def main():
        a = await gw.place(req(Side.BUY, "1", "101", "a"))       # 0.3@100 + 0.5@101, rest cancelled
        b = await gw.place(req(Side.BUY, "0.2", "101", "b"))     # the same levels are gone
        bk.py_apply([], [(m("100", P), m("0.4", Q))])            # book changed: liquidity is back
        c = await gw.place(req(Side.BUY, "0.1", "100", "c"))
        return a, b, c

    a, b, c = run(main())
    sa = a.state
    assert sa.status is OrderStatus.CANCELLED and sa.filled_qty == D("0.8")
    assert sa.filled_quote == D("30") + D("50.5")
    assert sa.fee == (D("80.5") * D("0.002")) and sa.fee_asset == "USDT"
    assert b.state.status is OrderStatus.CANCELLED and b.state.filled_qty == 0
    assert c.state.status is OrderStatus.FILLED and c.state.avg_price == D(100)
    assert gw.free("BTC") == D("0.5") + D("0.8") + D("0.1")
    assert gw.free("USDT") == D(1000) - D("80.5") * D("1.002") - D(10) * D("1.002")


def test_paper_rejections_and_queries():
    bk = book(1, bids=[(m("99", P), m("1", Q))], asks=[(m("100", P), m("1", Q))])
    stale = book(1, bids=[(m("99", P), m("1", Q))], asks=[(m("100", P), m("1", Q))], in_sync=False)
    gw = PaperGateway("gateio_spot", {"BTC/USDT": bk, "ETH/USDT": stale}, latency_ms=0,
                      balances={"USDT": "50", "BTC": "0.1"})

    async def main():
        r = [await gw.place(req(Side.BUY, "1", "100", "a")),          # 100.1 USDT needed, 50 held
             await gw.place(req(Side.SELL, "0.2", "99", "b")),        # 0.2 BTC needed, 0.1 held
             await gw.place(req(Side.BUY, "0.1", "100", "c", sym="ETH/USDT")),
             await gw.place(req(Side.BUY, "0.1", "100", "d", sym="XRP/USDT")),
             await gw.place(req(Side.SELL, "0.1", "99", "e")),
             await gw.place(req(Side.SELL, "0.1", "99", "e"))]        # duplicate client id
        q = await gw.query("BTC/USDT", "e")
        with pytest.raises(OrderNotFound):
            await gw.query("BTC/USDT", "a")
        cx = await gw.cancel("BTC/USDT", "e")
        bal = await gw.balances()
        return r, q, cx, bal

    r, q, cx, bal = run(main())
    assert [x.state.reason for x in r[:4]] == ["insufficient_balance", "insufficient_balance", "book_unavailable",
                                               "unknown_symbol"]
    assert r[4].state.status is OrderStatus.FILLED and r[5].state.reason == "duplicate_client_id"
    assert q.status is OrderStatus.FILLED and cx.state.status is OrderStatus.FILLED
    assert bal["BTC"].free == 0 and bal["USDT"].free == D(50) + D("9.9") - D("9.9") * D("0.001")


def test_paper_futures_shorts_against_margin_and_latency():
    bk = book(2, bids=[(m("100", P), m("2", Q))], asks=[(m("101", P), m("2", Q))])
    gw = PaperGateway("gateio_futures", {"BTC/USDT:USDT": bk}, fee_rate=D("0.0005"), latency_ms=30,
                      balances={"USDT": "100"})

    async def main():
        t = time.monotonic()
        a = await gw.place(req(Side.SELL, "0.5", "100", "f1", sym="BTC/USDT:USDT", venue="gateio_futures"))
        dt = time.monotonic() - t
        b = await gw.place(req(Side.SELL, "1", "100", "f2", sym="BTC/USDT:USDT", venue="gateio_futures"))
        return a, dt, b

    a, dt, b = run(main())
    assert a.state.status is OrderStatus.FILLED and gw.free("BTC") == D("-0.5")
    assert dt >= 0.025
    assert b.state.reason == "insufficient_balance"     # 1.5 × 100 margin + fee needed, 99.975 held


# ------------------------------------------------------------------------------------------------
# end to end in paper mode

class Paper:
    """Books for mexc_spot and gateio_spot, an ArbEngine route over them, paper gateways, executor."""

    def __init__(self, tmp_path, mexc, gate, *, balances=None, trading=None, risk=None, fee="0.001"):
        self.audit_path = str(tmp_path / "audit.jsonl")
        self.mb = book(0, *mexc)
        self.gb = book(1, *gate)
        self.arb = ArbEngine(min_profit="0.5", max_notional="100000", max_book_age_ms=60000)
        legs = [dict(venue="mexc_spot", book=self.mb, taker_fee=D(fee), tick=1, step=1),
                dict(venue="gateio_spot", book=self.gb, taker_fee=D(fee), tick=1, step=1)]
        self.arb.add_route("btc", "BTC/USDT", P, Q, legs)
        bal = balances or {"mexc_spot": {"USDT": "100000", "BTC": "0"}, "gateio_spot": {"USDT": "0", "BTC": "2"}}
        self.gws = {"mexc_spot": PaperGateway("mexc_spot", {"BTC/USDT": self.mb}, fee_rate=D(fee), latency_ms=1,
                                              balances=bal["mexc_spot"]),
                    "gateio_spot": PaperGateway("gateio_spot", {"BTC/USDT": self.gb}, fee_rate=D(fee), latency_ms=1,
                                                balances=bal["gateio_spot"])}
        rules = {(v, "BTC/USDT"): LegRules(tick_m=1, step_m=1, taker_fee=D(fee)) for v in self.gws}
        self.positions = PositionBook()
        self.risk = RiskManager(risk or risk_cfg(max_position={"BTC": D(2)}), self.positions)
        self.ex = Executor(gateways=self.gws, risk=self.risk, positions=self.positions,
                           trading=trading or trading_cfg(), rules=rules)

    @contextlib.asynccontextmanager
    async def running(self):
        ls = clog.setup(log_cfg(self.audit_path))
        await ls.start()
        self.ex.start()
        try:
            yield self
        finally:
            await self.ex.stop()
            await ls.stop()


def test_paper_trade_realises_the_opportunity_profit(tmp_path):
    mexc = ([(m("64990", P), m("1", Q))], [(m("65000", P), m("0.03", Q)), (m("65010", P), m("0.04", Q)),
                                           (m("65400", P), m("1", Q))])
    gate = ([(m("65300", P), m("0.05", Q)), (m("65290", P), m("0.01", Q)), (m("64000", P), m("1", Q))],
            [(m("65310", P), m("1", Q))])
    h = Paper(tmp_path, mexc, gate)

    async def main():
        async with h.running():
            opps = h.arb.evaluate(h.gb, time.time_ns())
            assert opps and len(opps) == 1
            task = h.ex.submit(opps[0])                # the engine's call: no timer
            return opps[0], await task

    o, res = run(main())
    assert o.qty == D("0.06")
    assert res.status == "done" and res.buy_filled == res.sell_filled == o.qty
    # realised P&L equals the opportunity's net profit (exact up to the 80-digit average prices)
    assert abs(res.realised_pnl - o.net_profit) < D("1e-60")
    assert abs(h.positions.realised("btc") - o.net_profit) < D("1e-60")
    assert h.positions.position("BTC") == 0
    assert h.gws["mexc_spot"].free("BTC") == D("0.06") and h.gws["gateio_spot"].free("BTC") == D("1.94")
    ev = audit_events(h.audit_path)
    finals = [e for e in ev if e["event"] == "order_final"]
    assert sorted(e["data"]["status"] for e in finals) == ["filled", "filled"]
    # the same books do not trade twice: the paper venue remembers what was taken
    assert h.arb.evaluate(h.gb, time.time_ns()) is None


def test_paper_stale_book_at_hedge_time_unwinds_on_the_other_venue(tmp_path):
    mexc = ([(m("64990", P), m("1", Q))], [(m("65000", P), m("0.05", Q))])
    gate = ([(m("65300", P), m("0.05", Q))], [(m("65310", P), m("1", Q))])
    h = Paper(tmp_path, mexc, gate, trading=trading_cfg(hedge_loss_cap=D("10")))

    async def main():
        async with h.running():
            o = h.arb.evaluate(h.gb, time.time_ns())[0]
            h.gb.mark_in_sync(False)                   # gate's book drops out of sync before the orders
            return await h.ex.execute(o)

    res = run(main())
    # the sell on gate is rejected (paper cannot fill a book it does not have), the hedge there
    # too; the unwind sells the 0.05 BTC back on mexc at 64990 (loss 0.05×(65065 − 64925.01) = 7.0 < cap 10)
    assert res.status == "unwound", res
    assert h.positions.position("BTC") == 0
    assert D(-10) <= res.realised_pnl < 0
    assert [o.reason for o in res.orders if o.venue == "gateio_spot"] == ["book_unavailable", "book_unavailable"]


def test_build_paper_gateways_from_config():
    from cexnode.config import ConfigError, load_config_text
    from cexnode.execution import build_paper_gateways
    text = """
venues:
  mexc_spot: {taker_fee: 0.0005, symbols: [BTC/USDT]}
  gateio_spot: {taker_fee: 0.001, symbols: [BTC/USDT]}
trading:
  paper:
    latency_ms: 7
    fees: {mexc_spot: 0.002}
    balances: {gateio_spot: {USDT: 123.5}}
"""
    cfg = load_config_text(text)
    bk = book(0, [], [])
    gws = build_paper_gateways(cfg, {"mexc_spot": {"BTC/USDT": bk}})
    assert set(gws) == {"mexc_spot", "gateio_spot"}
    assert gws["mexc_spot"].fee_rate == D("0.002") and gws["gateio_spot"].fee_rate == D("0.001")
    assert gws["mexc_spot"].latency_ms == 7.0 and gws["gateio_spot"].free("USDT") == D("123.5")
    assert gws["mexc_spot"].books == {"BTC/USDT": bk}
    with pytest.raises(ConfigError, match="trading.paper.fees.mexc_spott"):
        load_config_text(text.replace("fees: {mexc_spot", "fees: {mexc_spott"))
    with pytest.raises(ConfigError, match="between 0 and 0.05"):
        load_config_text(text.replace("0.002}", "0.2}"))


def test_paper_partial_fill_when_liquidity_vanishes_after_decision(tmp_path):
    """The gate bid shrinks between the decision and the venue's match: the sell leg fills
    partly, the residual is hedged on gate's next level within the loss cap."""
    mexc = ([(m("64990", P), m("1", Q))], [(m("65000", P), m("0.05", Q))])
    gate = ([(m("65300", P), m("0.05", Q)), (m("65100", P), m("1", Q))], [(m("65310", P), m("1", Q))])
    h = Paper(tmp_path, mexc, gate)

    async def main():
        async with h.running():
            await h.ex.refresh_balances()
            o = h.arb.evaluate(h.gb, time.time_ns())[0]
            task = h.ex.submit(o)                                   # orders started, not yet matched
            h.gb.py_apply([(m("65300", P), m("0.02", Q))], [])      # someone else took 0.03 first
            return o, await task

    o, res = run(main())
    assert o.qty == D("0.05") and res.buy_filled == D("0.05") and res.sell_filled == D("0.02")
    assert res.status == "hedged" and h.positions.position("BTC") == 0
    hedge = [x for x in res.orders if x.venue == "gateio_spot"][-1]
    assert hedge.filled_qty == D("0.03") and hedge.avg_price == D("65100")
    # realised = opportunity profit minus the hedge's price give-up, fees included
    fee = D("0.001")
    want = (D("0.02") * D("65300") + D("0.03") * D("65100")) * (1 - fee) - D("0.05") * D("65000") * (1 + fee)
    assert abs(res.realised_pnl - want) < D("1e-60")


def test_paper_balance_too_low_rejects_before_sending(tmp_path):
    mexc = ([(m("64990", P), m("1", Q))], [(m("65000", P), m("0.05", Q))])
    gate = ([(m("65300", P), m("0.05", Q))], [(m("65310", P), m("1", Q))])
    h = Paper(tmp_path, mexc, gate, balances={"mexc_spot": {"USDT": "1000"}, "gateio_spot": {"BTC": "1"}})

    async def main():
        async with h.running():
            o = h.arb.evaluate(h.gb, time.time_ns())[0]
            return await h.ex.execute(o)

    res = run(main())
    assert (res.status, res.reason) == ("rejected", "balance")
    assert h.gws["mexc_spot"].placed == 0 and h.gws["gateio_spot"].placed == 0


def test_paper_asset_notional_gives_each_unlisted_base_its_worth_once_its_book_has_a_price():
    """``trading.paper.asset_notional``: a spot venue starts with that much quote value of every base
    asset ``balances`` does not name, priced at the book's mid once it has one; a listed balance wins,
    and a perpetual venue holds no base."""
    eth = book(1, bids=[(m("1999", P), m("5", Q))], asks=[(m("2001", P), m("5", Q))])
    sol = book(1, bids=[], asks=[], in_sync=False)
    btc = book(1, bids=[(m("99", P), m("1", Q))], asks=[(m("101", P), m("1", Q))])
    mids = {"ETH/USDT": D(2000), "SOL/USDT": None, "BTC/USDT": D(100)}
    gw = PaperGateway("gateio_spot", {"ETH/USDT": eth, "SOL/USDT": sol, "BTC/USDT": btc}, fee_rate=D("0.001"),
                      latency_ms=0, balances={"USDT": "1000", "BTC": "0.5"}, asset_notional=D("500"),
                      mid_price=mids.get)

    async def main():
        first = await gw.balances()
        mids["SOL/USDT"] = D(20)                       # its book got a price later
        second = await gw.balances()
        sold = await gw.place(req(Side.SELL, "0.25", "1999", "s", sym="ETH/USDT"))
        too_much = await gw.place(req(Side.SELL, "1", "1999", "t", sym="ETH/USDT"))
        return first, second, sold, too_much

    first, second, sold, too_much = run(main())
    assert first["ETH"].free == D("0.25") and "SOL" not in first and first["BTC"].free == D("0.5")
    assert second["SOL"].free == D(25) and second["ETH"].free == D("0.25")
    assert sold.state.status is OrderStatus.FILLED and gw.free("ETH") == 0
    assert too_much.state.status is OrderStatus.REJECTED and too_much.state.reason == "insufficient_balance"
    perp = PaperGateway("gateio_futures", {"ETH/USDT:USDT": eth}, latency_ms=0, balances={"USDT": "1000"},
                        asset_notional=D("500"), mid_price=lambda s: D(2000))
    assert "ETH" not in run(perp.balances())
