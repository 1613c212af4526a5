"""A realistic audit stream for the trade-database tests: the executor's event sequence (see
cexnode/execution/executor.py) with records built by the real order objects' ``audit_fields`` /
``audit_brief``, written by the real ``AuditBackend``, and P&L booked by the real PositionBook.
tests/ is on sys.path through tests/conftest.py."""
from __future__ import annotations

import os
from decimal import Decimal

from cexnode.execution.gateway import OrderAck, OrderRequest, OrderState, OrderStatus, Outcome, Side
from cexnode.execution.positions import PositionBook
from cexnode.log import get_logger
from cexnode.log.backends import AuditBackend

D = Decimal
P, Q = 2, 6


class Stream:
    """Writes the records of one executor (one process) into ``path``; ``pid`` stands in for
    the process id so that one file can hold two runs as after a restart."""

    def __init__(self, path, pid: int, positions: PositionBook, prefix: str):
        self.be = AuditBackend(str(path), "never")
        self.be.open()
        self.be._pid = pid              # after open(), which records the writing process's pid
        self.log = get_logger("execution.executor", ["execution", "trading"])
        self.positions = positions
        self.prefix = prefix
        self.trade_id = 0
        self.expected_trades: list[dict] = []       # what the database should say per sent trade

    def close(self):
        self.be.close()

    def audit(self, event, data):
        return self.be.write_event(self.log, event, data)

    def start(self, mode="paper"):
        self.audit("executor_start", {"venues": ["gateio_futures", "gateio_spot", "mexc_spot"], "mode": mode})

    def _fields(self, route, symbol, bv, sv, qty, bp, sp, net):
        return {"trade_id": self.trade_id, "route": route, "symbol": symbol, "buy_venue": bv, "sell_venue": sv,
                "qty": str(qty), "buy_price": str(bp), "sell_price": str(sp), "net_profit": str(net),
                "t": 1_700_000_000_000_000_000}

    def rejected(self, route="btc-ss", reason="balance", detail="mexc_spot USDT 10 < 650"):
        self.trade_id += 1
        self.audit("trade_rejected", dict(self._fields(route, "BTC/USDT", "mexc_spot", "gateio_spot", D("0.01"),
                                                       D("65000"), D("65100"), D("0.3")), reason=reason, detail=detail))

    def _req(self, cid, venue, symbol, side, qty, price, route, purpose):
        return OrderRequest(client_id=cid, venue=venue, symbol=symbol, side=side, qty_m=int(D(qty).scaleb(Q)),
                            price_m=int(D(price).scaleb(P)), qty_scale=Q, price_scale=P, route=route, purpose=purpose)

    def _fill(self, req, filled, avg, fee, fee_asset, trade_id, purpose):
        """ack, fill, final and booking of one order, as _await_ack/_apply_state/_finish_leg write them."""
        status = OrderStatus.FILLED if filled == req.qty else (OrderStatus.CANCELLED)
        st = OrderState(client_id=req.client_id, venue=req.venue, symbol=req.symbol, side=req.side, status=status,
                        qty=req.qty, filled_qty=filled, avg_price=avg if filled else None, fee=fee,
                        fee_asset=fee_asset, order_id="oid-" + req.client_id)
        ack = OrderAck(client_id=req.client_id, venue=req.venue, outcome=Outcome.DEFINITIVE, state=st,
                       order_id=st.order_id, latency_ns=420_000)
        self.audit("order_ack", dict(ack.audit_fields(), trade_id=trade_id, rt_us=430))
        if filled:
            self.audit("order_fill", {"client_id": req.client_id, "venue": req.venue, "source": "ack",
                                      "filled_qty": str(filled), "avg_price": str(avg)})
        result = "filled" if filled == req.qty else ("partial" if filled else "unfilled")
        self.audit("order_final", dict(st.audit_fields(), result=result, trade_id=trade_id, ambiguous=False,
                                       purpose=purpose))
        pnl = D(0)
        if filled:
            base, quote = req.symbol.split(":")[0].split("/")
            pnl = self.positions.apply_fill(route=req.route, venue=req.venue, base=base, quote=quote, side=req.side,
                                            qty=filled, price=avg, fee=fee, fee_asset=fee_asset)
            self.audit("fill_booked", {"client_id": req.client_id, "route": req.route, "venue": req.venue,
                                       "side": req.side.value, "qty": str(filled), "price": str(avg), "fee": str(fee),
                                       "fee_asset": fee_asset, "realised": str(pnl)})
        # a private-stream update arriving after the order was settled (known: False)
        self.audit("order_update", dict(OrderState(client_id=req.client_id, venue=req.venue, symbol=req.symbol,
                                                   side=req.side, status=OrderStatus.NEW, qty=req.qty).audit_fields(),
                                        known=False))
        return st, pnl

    def trade(self, *, route, symbol, buy_venue, sell_venue, qty, buy_px, sell_px, buy_fill, sell_fill, buy_fee,
              buy_fee_asset, sell_fee, sell_fee_asset, hedge=None):
        """One sent trade: trade_start with both entry orders, their outcomes, an optional hedge
        (venue, fill price) of the residual, trade_done."""
        self.trade_id += 1
        tid = self.trade_id
        qty, buy_px, sell_px = D(qty), D(buy_px), D(sell_px)
        bsym = symbol + ":USDT" if buy_venue == "gateio_futures" else symbol
        ssym = symbol + ":USDT" if sell_venue == "gateio_futures" else symbol
        buy = self._req("cx%s%xb" % (self.prefix, tid), buy_venue, bsym, Side.BUY, qty, buy_px, route, "entry")
        sell = self._req("cx%s%xs" % (self.prefix, tid), sell_venue, ssym, Side.SELL, qty, sell_px, route, "entry")
        net = qty * (sell_px - buy_px)
        self.audit("trade_start", dict(self._fields(route, symbol, buy_venue, sell_venue, qty, buy_px, sell_px, net),
                                       tif="ioc", orders=[buy.audit_brief(), sell.audit_brief()]))
        orders = [buy.client_id, sell.client_id]
        _, p1 = self._fill(buy, D(buy_fill), buy_px, D(buy_fee), buy_fee_asset, tid, "entry")
        _, p2 = self._fill(sell, D(sell_fill), sell_px, D(sell_fee), sell_fee_asset, tid, "entry")
        realised = p1 + p2
        residual = D(buy_fill) - D(sell_fill)
        status = "done"
        if residual and hedge is not None:
            venue, px = hedge
            side = Side.SELL if residual > 0 else Side.BUY
            self.audit("hedge_plan", {"trade_id": tid, "kind": "hedge", "venue": venue, "side": side.value,
                                      "qty": str(abs(residual)), "limit_price": str(px), "residual": str(residual),
                                      "entry_unit": str(buy_px), "loss_cap_left": "5"})
            h = self._req("cx%s%xh1" % (self.prefix, tid), venue, symbol, side, abs(residual), D(px), route, "hedge")
            self.audit("order_request", dict(h.audit_fields(), trade_id=tid))
            _, p3 = self._fill(h, abs(residual), D(px), D(0), "", tid, "hedge")
            realised += p3
            orders.append(h.client_id)
            residual = D(0)
            status = "hedged"
        self.audit("trade_done", {"trade_id": tid, "route": route, "status": status, "buy_filled": str(D(buy_fill)),
                                  "sell_filled": str(D(sell_fill)), "residual": str(residual),
                                  "realised_pnl": str(realised), "expected_pnl": str(net), "orders": orders,
                                  "unreconciled": [], "duration_us": 5123})
        self.expected_trades.append({"trade_id": tid, "route": route, "status": status, "realised": realised,
                                     "orders": orders})
        return tid


def write_stream(path, positions: PositionBook | None = None) -> tuple[PositionBook, list[dict]]:
    """Two runs (pids 4242 and 4343) in one audit file: spot-spot and spot-perp trades, a hedged
    one-leg fill, a base-asset fee, a rejection, a trading-tagged log line and a torn line sealed
    after a crash. Returns the PositionBook that booked the same fills and the sent trades."""
    pos = positions or PositionBook()
    s = Stream(path, 4242, pos, "a1b2c")
    s.start()
    s.trade(route="btc-ss", symbol="BTC/USDT", buy_venue="mexc_spot", sell_venue="gateio_spot", qty="0.01",
            buy_px="64810", sell_px="64995", buy_fill="0.01", sell_fill="0.01", buy_fee="0.000005",
            buy_fee_asset="BTC", sell_fee="0.64995", sell_fee_asset="USDT")
    s.rejected()
    s.trade(route="btc-sp", symbol="BTC/USDT", buy_venue="gateio_spot", sell_venue="gateio_futures", qty="0.02",
            buy_px="65005", sell_px="65200", buy_fill="0.02", sell_fill="0", buy_fee="1.3001", buy_fee_asset="USDT",
            sell_fee="0", sell_fee_asset="", hedge=("gateio_spot", "64990"))
    s.close()
    with open(path, "ab") as f:      # a trading-tagged log record (the flusher appends them) and a torn line
        f.write(b'{"ts":1,"level":"info","logger":"execution.executor","msg":"trade finished"}\n')
        f.write(b'{"ts":2,"seq":99,"event":"order_ack","da\n')
    s2 = Stream(path, 4343, pos, "a1b2d")
    s2.start()
    s2.trade(route="eth-ss", symbol="ETH/USDT", buy_venue="gateio_spot", sell_venue="mexc_spot", qty="0.5",
             buy_px="3190", sell_px="3201.5", buy_fill="0.5", sell_fill="0.5", buy_fee="1.595", buy_fee_asset="USDT",
             sell_fee="0.80", sell_fee_asset="USDT")
    s2.close()
    return pos, s.expected_trades + s2.expected_trades


def file_size(path) -> int:
    return os.path.getsize(path)
