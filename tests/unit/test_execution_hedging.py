"""ResidualCloser (cexnode/execution/hedging.py): a one-leg residual hedged or unwound within the loss
cap — the limit-price rule on its own (exact and as a property), and whole closings through the real
LegTracker on PaperGateways over real Books."""
from __future__ import annotations

from decimal import Decimal

from hypothesis import given, strategies as st

from cexnode.execution.gateway import Side
from cexnode.execution.hedging import loss_capped_limit
from cexnode.execution.legs import LegRules
from cexnode.execution.positions import DEC_CTX
from executor_parts import ROUTE, SYM, Opp, Rig, run_logged

D = Decimal
P = 2


def rules(fee="0.001", tick=1):
    return LegRules(tick_m=tick, step_m=1, taker_fee=D(fee))


def test_limit_prices_keep_the_loss_within_the_cap():
    # long 0.5 bought at 100 (fee 0.001): sell at ≥ (0.5×100.1 − 5)/(0.5×0.999) = 90.19..., up to the tick
    p_m, limit = loss_capped_limit(Side.SELL, D("0.5"), D("100.1"), D(5), rules(), P)
    assert p_m == 9020 and D("90.19") < limit < D("90.20")
    # short 0.5 sold at 99 (fee 0.001): buy back at ≤ (0.5×98.901 + 5)/(0.5×1.001) = 108.79..., down to the tick
    p_m, limit = loss_capped_limit(Side.BUY, D("0.5"), D("98.901"), D(5), rules(), P)
    assert p_m == 10879 and D("108.79") < limit < D("108.80")
    assert loss_capped_limit(Side.BUY, D("0.5"), D(100), D(5), rules(tick=5), P)[0] == 10985     # 109.89 → 109.85
    # no price keeps a buy-back within a cap already overspent
    assert loss_capped_limit(Side.BUY, D(1), D(1), D(-5), rules(), P)[0] <= 0
    # a sell is never limited below one tick
    assert loss_capped_limit(Side.SELL, D(1), D(1), D(1000), rules(tick=7), P)[0] == 7


@given(side=st.sampled_from([Side.SELL, Side.BUY]), q=st.integers(1, 10**6), entry=st.integers(1, 10**8),
       cap=st.integers(0, 10**6), fee_bp=st.integers(0, 100), tick=st.integers(1, 50))
def test_limit_price_is_the_worst_on_the_tick_within_the_cap(side, q, entry, cap, fee_bp, tick):
    """At the limit the loss is within the cap; one tick worse it is not (unless clamped at one tick)."""
    qd, ed, capd, fee = D(q).scaleb(-4), D(entry).scaleb(-2), D(cap).scaleb(-2), D(fee_bp).scaleb(-4)
    p_m, _ = loss_capped_limit(side, qd, ed, capd, rules(fee, tick), P)
    assert p_m % tick == 0

    def loss(pm):
        p = D(pm).scaleb(-P)
        with_fee = qd * p * (1 - fee) if side is Side.SELL else qd * p * (1 + fee)
        return DEC_CTX.subtract(qd * ed, with_fee) if side is Side.SELL else DEC_CTX.subtract(with_fee, qd * ed)

    eps = D("1e-40")
    if side is Side.SELL:
        assert p_m >= tick and loss(p_m) <= capd + eps
        if p_m > tick:
            assert loss(p_m - tick) > capd - eps
    elif p_m > 0:
        assert loss(p_m) <= capd + eps and loss(p_m + tick) > capd - eps


def test_a_long_residual_is_hedged_on_the_other_venue(tmp_path):
    rig = Rig(tmp_path)
    rig.set_book("gateio_spot", asks=(("100.6", "1"),))              # no bids: the sell entry is rejected

    async def body():
        buy = await rig.entry(1, "mexc_spot", Side.BUY, "0.5", "100")
        sell = await rig.entry(1, "gateio_spot", Side.SELL, "0.5", "101")
        rig.set_book("gateio_spot", asks=(("100.6", "1"),), bids=(("100.5", "1"),))
        legs = [buy, sell]
        return await rig.residuals.close(1, Opp(), buy, sell, buy.filled - sell.filled, legs, "BTC", "USDT"), legs

    (status, left), legs = run_logged(rig, body)
    assert (status, left) == ("hedged", 0) and rig.positions.position("BTC") == 0
    hedge = legs[2]
    assert hedge.req.purpose == "hedge" and hedge.req.venue == "gateio_spot" and hedge.req.side is Side.SELL
    assert hedge.req.price == D("90.20") and hedge.state.avg_price == D("100.5") and hedge.req.client_id == "cxt1h1"
    plans = [e["data"] for e in rig.events() if e["event"] == "hedge_plan"]
    assert [(p["kind"], p["limit_price"], D(p["entry_unit"]), p["loss_cap_left"]) for p in plans] == \
        [("hedge", "90.20", D("100.1"), "5")]


def test_a_failed_hedge_is_followed_by_an_unwind_charged_to_the_cap(tmp_path):
    rig = Rig(tmp_path)
    rig.set_book("gateio_spot", asks=(("100.6", "1"),))              # no bids on the hedge venue at all

    async def body():
        buy = await rig.entry(2, "mexc_spot", Side.BUY, "0.5", "100")
        sell = await rig.entry(2, "gateio_spot", Side.SELL, "0.5", "101")
        legs = [buy, sell]
        return await rig.residuals.close(2, Opp(), buy, sell, D("0.5"), legs, "BTC", "USDT"), legs

    (status, left), legs = run_logged(rig, body)
    assert (status, left) == ("unwound", 0) and rig.positions.position("BTC") == 0
    assert [(l.req.purpose, l.req.venue) for l in legs[2:]] == [("hedge", "gateio_spot"), ("unwind", "mexc_spot")]
    assert legs[3].state.avg_price == D(99)
    assert rig.legs.orders_by_result[("gateio_spot", "rejected")] == 2   # the entry and the hedge


def test_a_short_residual_is_bought_back(tmp_path):
    rig = Rig(tmp_path)
    rig.set_book("mexc_spot", bids=(("99", "1"),))                    # no asks: the buy entry is rejected

    async def body():
        buy = await rig.entry(3, "mexc_spot", Side.BUY, "0.5", "100")
        sell = await rig.entry(3, "gateio_spot", Side.SELL, "0.5", "99")
        legs = [buy, sell]
        return await rig.residuals.close(3, Opp(), buy, sell, buy.filled - sell.filled, legs, "BTC", "USDT"), legs

    (status, left), legs = run_logged(rig, body)
    assert (status, left) == ("unwound", 0) and rig.positions.position("BTC") == 0
    unwind = legs[3]
    assert unwind.req.side is Side.BUY and unwind.req.venue == "gateio_spot" and unwind.req.price == D("108.79")
    plans = [e["data"] for e in rig.events() if e["event"] == "hedge_plan"]
    assert [D(p["entry_unit"]) for p in plans] == [D("98.901")] * 2


def test_what_cannot_be_closed_within_the_cap_is_reported_open(tmp_path):
    rig = Rig(tmp_path)
    rig.set_book("gateio_spot", asks=(("100.6", "1"),))

    async def body():
        buy = await rig.entry(4, "mexc_spot", Side.BUY, "0.5", "100")
        sell = await rig.entry(4, "gateio_spot", Side.SELL, "0.5", "101")
        rig.set_book("mexc_spot", asks=(("100", "1"),), bids=(("80", "1"),))   # only below the loss limit
        legs = [buy, sell]
        return await rig.residuals.close(4, Opp(), buy, sell, D("0.5"), legs, "BTC", "USDT"), legs

    (status, left), legs = run_logged(rig, body)
    assert (status, left) == ("residual", D("0.5")) and rig.positions.position("BTC") == D("0.5")
    assert [l.req.purpose for l in legs[2:]] == ["hedge", "unwind", "hedge"]          # hedge_attempts 3
    assert all(l.filled == 0 for l in legs[2:])
    opened = [e["data"] for e in rig.events() if e["event"] == "residual_open"]
    assert opened == [{"trade_id": 4, "route": ROUTE, "asset": "BTC", "residual": "0.5",
                       "loss_cap_left": "5"}]


def test_the_kill_switch_blocks_hedging_and_dust_is_not_sent(tmp_path):
    rig = Rig(tmp_path)
    rig.set_book("gateio_spot", asks=(("100.6", "1"),))

    async def body():
        buy = await rig.entry(5, "mexc_spot", Side.BUY, "0.5", "100")
        sell = await rig.entry(5, "gateio_spot", Side.SELL, "0.5", "101")
        rig.risk.set_condition("kill_switch", True, "signal")
        blocked = await rig.residuals.close(5, Opp(), buy, sell, D("0.5"), [], "BTC", "USDT")
        rig.risk.set_condition("kill_switch", False)
        for v in ("mexc_spot", "gateio_spot"):                          # 1 BTC steps: 0.5 is dust on both
            rig.rules[(v, SYM)] = LegRules(tick_m=1, step_m=10_000, taker_fee=D("0.001"))
        dust = await rig.residuals.close(5, Opp(), buy, sell, D("0.5"), [], "BTC", "USDT")
        return blocked, dust

    blocked, dust = run_logged(rig, body)
    assert blocked == ("residual", D("0.5")) and dust == ("residual", D("0.5"))
    ev = rig.events()
    assert [e["data"]["reason"] for e in ev if e["event"] == "hedge_blocked"] == ["kill_switch"]
    assert [e["data"]["venue"] for e in ev if e["event"] == "residual_dust"] == \
        ["gateio_spot", "mexc_spot", "gateio_spot"]
    assert not [e for e in ev if e["event"] == "hedge_plan"]
    assert [e["data"]["purpose"] for e in ev if e["event"] == "order_request"] == ["entry", "entry"]
