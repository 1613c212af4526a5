"""The simulator's matching engine: IOC against the true book (partial / complete), resting GTC orders
filled by later crossing orders and by the market walking through them, price-time priority, exact
balances and fees, FOK/POC, futures contracts, positions and PnL."""
from __future__ import annotations

from decimal import Decimal

import pytest

from cexnode.config import SimConfig
from cexnode.sim import ExchangeSimulator
from cexnode.sim.trading import Reject


def make(venues=None):
    sim = ExchangeSimulator(SimConfig(seed=7, book_levels=10), clock="manual",
                            venues=venues or {"gateio_spot": ["BTC/USDT"], "gateio_futures": ["BTC/USDT:USDT"]})
    return sim


def test_ioc_partial_takes_book_up_to_limit_and_publishes():
    sim = make()
    v = sim.venue("gateio_spot")
    eng = sim.trading.engine("gateio_spot")
    a = sim.trading.add_account("gateio_spot", "a", "s", {"USDT": "1000000", "BTC": "0"})
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    asks = book.top()[1]
    (p0, q0), (p1, q1), (p2, q2) = asks[:3]
    last_id = book.last_id
    published = []
    v.publish_hook_test = True
    orig = v.publish_change
    v.publish_change = lambda *args, **kw: published.append(orig(*args, **kw)) or published[-1]
    o = eng.place(a, "BTC_USDT", "buy", q0 + q1 + q2, p1, tif="ioc", client_id="x")
    # levels p0 and p1 consumed completely, p2 untouched (above the limit): IOC remainder cancelled
    assert o.filled == q0 + q1 and o.status == "cancelled" and o.finish_as == "ioc"
    assert p0 not in book.asks and p1 not in book.asks and book.asks[p2] == q2
    assert book.last_id == last_id + 1 and len(published) == 1
    d = published[0]
    assert d.asks == [(p0, 0), (p1, 0)] and [(t.price, t.size, t.taker_buy) for t in d.trades] == [(p0, q0, True), (p1, q1, True)]
    cost = inst.size(q0) * inst.price(p0) + inst.size(q1) * inst.price(p1)
    assert o.filled_quote == cost
    fee = (inst.size(q0) + inst.size(q1)) * v.taker_fee        # buyer pays the fee in base
    assert a.balances["BTC"].available == inst.size(q0 + q1) - fee
    assert a.balances["USDT"].available == Decimal(1000000) - cost and a.balances["USDT"].locked == 0
    assert o.fee == fee and o.fee_asset == "BTC"


def test_ioc_complete_and_sell_fee_in_quote():
    sim = make()
    v = sim.venue("gateio_spot")
    eng = sim.trading.engine("gateio_spot")
    a = sim.trading.add_account("gateio_spot", "a", "s", {"USDT": "0", "BTC": "1"})
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    bp, bq = book.best_bid()
    q = max(1, bq // 2)
    o = eng.place(a, "BTC_USDT", "sell", q, bp, tif="ioc")
    assert o.finish_as == "filled" and o.status == "closed" and book.bids[bp] == bq - q
    quote = inst.size(q) * inst.price(bp)
    assert a.balances["USDT"].available == quote - quote * v.taker_fee
    assert a.balances["BTC"].available == Decimal(1) - inst.size(q) and a.balances["BTC"].locked == 0


def test_resting_order_price_time_priority_and_maker_fills():
    sim = make()
    v = sim.venue("gateio_spot")
    eng = sim.trading.engine("gateio_spot")
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    mk = [sim.trading.add_account("gateio_spot", k, "s", {"BTC": "10", "USDT": "0"}) for k in ("m1", "m2", "m3")]
    taker = sim.trading.add_account("gateio_spot", "t", "s", {"USDT": "10000000"})
    bp, _ = book.best_bid()
    ap, _ = book.best_ask()
    assert ap - bp >= 1
    px = ap - 1 if ap - 1 > bp else ap          # inside the spread when there is room (never crosses the bids)
    worse = px + 5
    o_worse = eng.place(mk[2], "BTC_USDT", "sell", 1000, worse, tif="gtc")
    o1 = eng.place(mk[0], "BTC_USDT", "sell", 1000, px, tif="gtc")
    o2 = eng.place(mk[1], "BTC_USDT", "sell", 1000, px, tif="gtc")
    assert o1.is_open and o2.is_open and mk[0].balances["BTC"].locked == inst.size(1000)
    # a taker for 1500 at px: o1 (first at the best price) fills completely, then o2 partially
    t = eng.place(taker, "BTC_USDT", "buy", 1500, px, tif="ioc")
    assert t.filled == 1500 and o1.filled == 1000 and o1.status == "closed" and o2.filled == 500 and o2.is_open
    assert o_worse.filled == 0
    assert [f.role for f in o1.fills] == ["maker"] and [f.role for f in t.fills] == ["taker", "taker"]
    q1 = inst.size(1000) * inst.price(px)
    assert mk[0].balances["USDT"].available == q1 - q1 * v.maker_fee
    assert mk[0].balances["BTC"].locked == 0 and mk[1].balances["BTC"].locked == inst.size(500)
    # the account's own crossing buy does not trade against its own resting sell (no self-trade)
    mk[1].balances["USDT"].available = Decimal(100000)
    eng.place(mk[1], "BTC_USDT", "buy", 100, px, tif="ioc")
    assert o2.filled == 500 and o2.is_open


def test_market_walks_through_resting_orders():
    sim = make()
    v = sim.venue("gateio_spot")
    eng = sim.trading.engine("gateio_spot")
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    a = sim.trading.add_account("gateio_spot", "a", "s", {"USDT": "10000000"})
    bp, _ = book.best_bid()
    o = eng.place(a, "BTC_USDT", "buy", 2000, bp - 10, tif="gtc")
    assert o.is_open and o.filled == 0
    # the generated market moves down: an ask appears at our bid price, then below it
    d = v.publish_change("BTC_USDT", bids=[(p, 0) for p in list(book.bid_px) if p >= bp - 10],
                         asks=[(bp - 10, 1500)])
    assert o.filled == 1500 and o.is_open and all(f.role == "maker" and f.price == bp - 10 for f in o.fills)
    assert (bp - 10) not in book.asks            # the crossing liquidity was consumed and published
    v.publish_change("BTC_USDT", asks=[(bp - 12, 700)])
    assert o.filled == 2000 and o.status == "closed" and book.asks[bp - 12] == 200
    cost = inst.size(2000) * inst.price(bp - 10)
    assert a.balances["USDT"].available == Decimal(10000000) - cost and a.balances["USDT"].locked == 0
    assert a.balances["BTC"].available == inst.size(2000) * (1 - v.maker_fee)
    assert not book.crossed or book.best_bid()[0] < book.best_ask()[0]


def test_generator_ticks_fill_a_resting_order_eventually():
    sim = make({"gateio_spot": ["BTC/USDT"]})
    v = sim.venue("gateio_spot")
    eng = sim.trading.engine("gateio_spot")
    book = v.book("BTC_USDT")
    a = sim.trading.add_account("gateio_spot", "a", "s", {"USDT": "10000000"})
    o = eng.place(a, "BTC_USDT", "buy", 100, book.best_bid()[0], tif="gtc")     # joins the best bid
    for _ in range(3000):
        sim.tick()
        if not o.is_open:
            break
    assert o.status == "closed" and o.filled == 100
    assert all(b < book.best_ask()[0] for b in book.bid_px)


def test_fok_and_poc_and_rejects():
    sim = make()
    v = sim.venue("gateio_spot")
    eng = sim.trading.engine("gateio_spot")
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    a = sim.trading.add_account("gateio_spot", "a", "s", {"USDT": "10000000", "BTC": "0"})
    ap, aq = book.best_ask()
    before = dict(book.asks)
    o = eng.place(a, "BTC_USDT", "buy", aq + 1, ap, tif="fok")
    assert o.filled == 0 and o.finish_as == "fok" and dict(book.asks) == before
    assert a.balances["USDT"].available == Decimal(10000000) and a.balances["USDT"].locked == 0
    o = eng.place(a, "BTC_USDT", "buy", 100, ap, tif="poc")
    assert o.filled == 0 and o.finish_as == "poc"
    with pytest.raises(Reject) as e:
        eng.place(a, "BTC_USDT", "sell", 1000, ap, tif="gtc")
    assert e.value.kind == "balance"
    with pytest.raises(Reject) as e:
        eng.place(a, "BTC_USDT", "buy", 1, 1, tif="gtc")      # 1e-6 BTC at 0.1: below the minimum notional
    assert e.value.kind in ("min_notional", "min_qty")
    with pytest.raises(Reject):
        eng.place(a, "NOPE", "buy", 1, 1)


def test_futures_contracts_positions_pnl_and_margin():
    sim = make()
    v = sim.venue("gateio_futures")
    eng = sim.trading.engine("gateio_futures")
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    a = sim.trading.add_account("gateio_futures", "f", "s", {"USDT": "100000"})
    bp, bq = book.best_bid()
    n = min(bq, 7)
    o = eng.place(a, "BTC_USDT", "sell", n, bp, tif="ioc")
    assert o.filled == n and a.positions["BTC_USDT"].size == -n
    entry = inst.price(bp)
    notional = inst.base_qty(n) * entry                       # contracts × quanto_multiplier × price
    fee1 = notional * v.taker_fee
    assert a.positions["BTC_USDT"].entry_price == entry
    assert a.balances["USDT"].available == Decimal(100000) - fee1
    pm, om = eng.futures_margins(a, "USDT")
    assert pm == notional / 10 and om == 0
    # close with a buy at the ask: realised PnL = contracts × multiplier × (entry − exit)
    ap, aq = book.best_ask()
    m = min(aq, n)
    o2 = eng.place(a, "BTC_USDT", "buy", m, ap, tif="ioc")
    exit_px = inst.price(ap)
    pnl = inst.base_qty(m) * (entry - exit_px)
    fee2 = inst.base_qty(m) * exit_px * v.taker_fee
    assert o2.filled == m and a.positions["BTC_USDT"].size == -n + m
    assert a.balances["USDT"].available == Decimal(100000) - fee1 + pnl - fee2
    assert a.positions["BTC_USDT"].realised_pnl == pnl - fee1 - fee2
    # margin: an order needing more than the available margin is refused
    with pytest.raises(Reject) as e:
        eng.place(a, "BTC_USDT", "buy", 10 ** 9, ap, tif="gtc")
    assert e.value.kind == "balance"
    # reduce-only that would increase the position is refused
    with pytest.raises(Reject):
        eng.place(a, "BTC_USDT", "sell", 1, bp, tif="ioc", reduce_only=True)


def test_partial_fill_fault_caps_the_next_order():
    sim = make()
    v = sim.venue("gateio_spot")
    eng = sim.trading.engine("gateio_spot")
    book = v.book("BTC_USDT")
    a = sim.trading.add_account("gateio_spot", "a", "s", {"USDT": "10000000"})
    ap, aq = book.best_ask()
    q = max(200, min(aq, 1000))
    v.faults.partial_fill_next("0.5")
    o = eng.place(a, "BTC_USDT", "buy", q, ap, tif="ioc")
    assert o.filled == q // 2 and o.finish_as == "ioc"
    ap, aq = book.best_ask()
    o = eng.place(a, "BTC_USDT", "buy", min(aq, 100), ap, tif="ioc")
    assert o.filled == min(aq, 100)                           # the fault was used once


def test_futures_closing_order_needs_no_new_margin():
    sim = make()
    v = sim.venue("gateio_futures")
    eng = sim.trading.engine("gateio_futures")
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    bp, bq = book.best_bid()
    n = min(bq, 5)
    # just enough for the short's margin and fee
    need = inst.base_qty(n) * inst.price(bp) / 10 + inst.base_qty(n) * inst.price(bp) * v.taker_fee
    a = sim.trading.add_account("gateio_futures", "f", "s", {"USDT": str(need)})
    eng.place(a, "BTC_USDT", "sell", n, bp, tif="ioc")
    assert a.positions["BTC_USDT"].size == -n and eng.futures_available(a, "USDT") == 0
    with pytest.raises(Reject):                                   # opening more: no margin left
        eng.place(a, "BTC_USDT", "sell", 1, bp, tif="gtc")
    o = eng.place(a, "BTC_USDT", "buy", n, book.best_ask()[0] + 100, tif="gtc")   # closing: accepted
    assert o.filled > 0


# ---- property: random order flow keeps every account's books exact ---------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_OPS = st.lists(st.one_of(
    st.tuples(st.just("place"), st.integers(0, 2), st.sampled_from(["buy", "sell"]), st.integers(1, 40000),
              st.integers(-30, 30), st.sampled_from(["gtc", "ioc", "fok", "poc"])),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("tick"), st.integers(1, 5)),
), min_size=1, max_size=40)


@settings(max_examples=40)
@given(ops=_OPS)
def test_random_order_flow_invariants(ops):
    sim = make({"gateio_spot": ["BTC/USDT"]})
    v = sim.venue("gateio_spot")
    eng = sim.trading.engine("gateio_spot")
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    start = {"USDT": Decimal(50000), "BTC": Decimal(1)}
    accts = [sim.trading.add_account("gateio_spot", "a%d" % i, "s", start) for i in range(3)]
    for op in ops:
        if op[0] == "place":
            _, ai, side, qty, off, tif = op
            ref = book.best_ask()[0] if side == "buy" else book.best_bid()[0]
            try:
                eng.place(accts[ai], "BTC_USDT", side, qty, max(1, ref + off), tif=tif)
            except Reject as e:
                assert e.kind in ("balance", "min_notional", "min_qty")
        elif op[0] == "cancel":
            opens = [o for o in eng.orders.values() if o.is_open]
            if opens:
                eng.cancel(opens[op[1] % len(opens)])
        else:
            sim.tick(op[1])
        assert not book.crossed
        for a in accts:
            opens = [o for o in eng.orders.values() if o.account is a and o.is_open]
            assert a.balances["USDT"].locked == sum((o.reserved for o in opens if o.is_buy), Decimal(0))
            assert a.balances["BTC"].locked == sum((o.reserved for o in opens if not o.is_buy), Decimal(0))
            # every balance is the start plus the account's own fills, exactly
            usdt, btc = start["USDT"], start["BTC"]
            for o in eng.orders.values():
                if o.account is not a:
                    continue
                assert 0 <= o.filled <= o.qty and (o.status != "closed" or o.filled == o.qty)
                for f in o.fills:
                    if o.is_buy:
                        usdt -= f.quote
                        btc += inst.size(f.qty) - f.fee
                    else:
                        usdt += f.quote - f.fee
                        btc -= inst.size(f.qty)
            assert a.balances["USDT"].total == usdt and a.balances["BTC"].total == btc
            assert a.balances["USDT"].available >= 0 and a.balances["BTC"].available >= 0
        # resting orders never stay crossed with the true book
        for o in eng.orders.values():
            if o.is_open:
                assert (o.price < book.best_ask()[0]) if o.is_buy else (o.price > book.best_bid()[0])


@settings(max_examples=30)
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("place"), st.integers(0, 1), st.sampled_from(["buy", "sell"]), st.integers(1, 60),
              st.integers(-20, 20), st.sampled_from(["gtc", "ioc"]), st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("tick"), st.integers(1, 5)),
), min_size=1, max_size=40))
def test_random_futures_flow_invariants(ops):
    sim = make({"gateio_futures": ["BTC/USDT:USDT"]})
    v = sim.venue("gateio_futures")
    eng = sim.trading.engine("gateio_futures")
    inst, book = v.instrument("BTC_USDT"), v.book("BTC_USDT")
    accts = [sim.trading.add_account("gateio_futures", "f%d" % i, "s", {"USDT": "3000"}) for i in range(2)]
    for op in ops:
        if op[0] == "place":
            _, ai, side, qty, off, tif, reduce = op
            ref = book.best_ask()[0] if side == "buy" else book.best_bid()[0]
            try:
                eng.place(accts[ai], "BTC_USDT", side, qty, max(1, ref + off), tif=tif, reduce_only=reduce)
            except Reject as e:
                assert e.kind in ("balance", "position")
        elif op[0] == "cancel":
            opens = [o for o in eng.orders.values() if o.is_open]
            if opens:
                eng.cancel(opens[op[1] % len(opens)])
        else:
            sim.tick(op[1])
        for a in accts:
            pos = a.position("BTC_USDT")
            signed = sum((f.qty if o.is_buy else -f.qty) for o in eng.orders.values() if o.account is a for f in o.fills)
            assert pos.size == signed
            # wallet = start + realised PnL - fees, exactly
            assert a.balances["USDT"].available == Decimal(3000) + pos.realised_pnl
            fees = sum((f.fee for o in eng.orders.values() if o.account is a for f in o.fills), Decimal(0))
            assert all(f.fee == f.quote * (v.taker_fee if f.role == "taker" else v.maker_fee)
                       for o in eng.orders.values() if o.account is a for f in o.fills)
            assert fees >= 0
            pm, om = eng.futures_margins(a, "USDT")
            assert om == sum((o.reserved for o in eng.orders.values() if o.account is a and o.is_open), Decimal(0))
            assert pm == inst.base_qty(abs(pos.size)) * pos.entry_price / a.leverage
            assert (pos.size == 0) == (pos.entry_price == 0)
