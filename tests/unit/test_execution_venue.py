"""Tests of the TEST-ONLY ScriptedVenue itself (tests/support/scripted_venue.py): its matching must
be right for the executor tests to mean anything."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from cexnode.execution.gateway import GatewayError, OrderNotFound, OrderRequest, OrderStatus, Side
from support.scripted_venue import ScriptedVenue

D = Decimal


def _req(side, qty, price, cid="c1"):
    return OrderRequest(client_id=cid, venue="gateio_spot", symbol="BTC/USDT", side=side, qty_m=int(D(qty) * 10000),
                        price_m=int(D(price) * 100), qty_scale=4, price_scale=2)


def test_scripted_venue_matches_ioc_against_levels_and_consumes_liquidity():
    v = ScriptedVenue("gateio_spot", "BTC/USDT", asks=[("100", "0.5"), ("101", "1")], bids=[("99", "2")],
                      balances={"USDT": "1000", "BTC": "1"}, fee_rate="0.001")

    async def main():
        a = await v.place(_req(Side.BUY, "1", "100.5", "c1"))
        b = await v.place(_req(Side.BUY, "1", "101", "c2"))
        c = await v.place(_req(Side.SELL, "5", "99", "c3"))
        return a, b, c

    a, b, c = asyncio.run(main())
    assert a.state.status is OrderStatus.CANCELLED and a.state.filled_qty == D("0.5") and a.state.avg_price == D(100)
    assert b.state.status is OrderStatus.FILLED and b.state.avg_price == D(101)
    assert c.state.status is OrderStatus.REJECTED and c.state.reason == "insufficient_balance"   # 2.5 BTC < 5
    assert v.asks == [] and v.free["BTC"] == D("2.5")
    assert v.free["USDT"] == D(1000) - D(50) - D("0.05") - D(101) - D("0.101")


def test_scripted_venue_faults():
    v = ScriptedVenue("gateio_spot", "BTC/USDT", asks=[("100", "1")], balances={"USDT": "1000"})
    v.script.extend(["5xx_filled", "lost_error"])

    async def main():
        with pytest.raises(GatewayError):
            await v.place(_req(Side.BUY, "0.1", "100", "a"))
        with pytest.raises(GatewayError):
            await v.place(_req(Side.BUY, "0.1", "100", "b"))
        st = await v.query("BTC/USDT", "a")
        with pytest.raises(OrderNotFound):
            await v.query("BTC/USDT", "b")
        return st

    st = asyncio.run(main())
    assert st.status is OrderStatus.FILLED and st.filled_qty == D("0.1")
