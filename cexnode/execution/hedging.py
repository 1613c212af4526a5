"""Closing a one-leg residual: the hedge/unwind orders after a trade whose legs filled unequally.

When the buy leg filled more than the sell leg (or less), the difference is a position the trade
did not mean to take. :class:`ResidualCloser` closes it with IOC orders (docs/design.md §5, step 5 of the
executor): hedge first (on the other venue, completing the arbitrage), then unwind (reversing on
the filled leg's venue), alternating for ``trading.hedge_attempts`` orders. Each order's limit price
is the worst price at which the residual's total loss — against its entry price, fees included —
stays within what is left of ``trading.hedge_loss_cap`` (:func:`loss_capped_limit`); what each
fill lost is taken from the cap. A quantity below the venue's step, minimum quantity or minimum
notional is dust and not sent. The kill switch blocks hedging (``RiskManager.allows_hedge``).
Whatever cannot be closed is reported and stays in the positions, where it counts toward
``risk.max_position`` / ``risk.max_open_exposure``.

Each order is a :class:`~cexnode.execution.legs.Leg` of the trade, sent, settled, booked and audited
by the :class:`~cexnode.execution.legs.LegTracker` like an entry leg. Audit events written here:
``hedge_plan`` and ``order_request`` (written ahead: when they cannot be written the order is not
sent — ``orders_withdrawn`` — and trading halts), ``hedge_blocked``, ``hedge_impossible``,
``residual_dust``, ``residual_open``.

Restart: it holds no state between trades. A residual left open is in the positions, which are
restored from the audit trail's ``fill_booked`` records (:mod:`cexnode.execution.recovery`); a
hedge order cut off by a crash is an open order like any other (``LegTracker.adopt_open_orders``).
"""
from __future__ import annotations

import decimal
from decimal import Decimal
from typing import TYPE_CHECKING, Mapping

from cexnode._core.logring import Logger
from cexnode.config import TradingConfig
from cexnode.execution.audit import AuditFailed, AuditWriter
from cexnode.execution.gateway import Side, mantissa_to_decimal
from cexnode.execution.legs import Leg, LegRules, LegTracker, ioc_request, venue_symbol
from cexnode.execution.positions import DEC_CTX
from cexnode.execution.risk import RiskManager

if TYPE_CHECKING:
    from cexnode._core.arb import Opportunity

__all__ = ["ResidualCloser", "loss_capped_limit"]

_ZERO = Decimal(0)


def loss_capped_limit(side: Side, q: Decimal, entry_unit: Decimal, cap_left: Decimal, rules: LegRules,
                      P: int) -> tuple[int, Decimal]:
    """The limit price (mantissa at price scale ``P``, on the venue's tick) of an IOC order closing
    ``q`` of a residual whose entry value per unit, fee included, is ``entry_unit``, so that its loss
    stays within ``cap_left`` after the venue's taker fee; and the exact limit before rounding.

    SELL (a long residual): loss(p) = q×entry_unit − q×p×(1−fee) ≤ cap_left → p ≥ (q×entry_unit −
    cap)/(q×(1−fee)), rounded up to the tick, at least one tick. BUY (a short one): loss(p) =
    q×p×(1+fee) − q×entry_unit ≤ cap_left → p ≤ (q×entry_unit + cap)/(q×(1+fee)), rounded down:
    0 or less means no price keeps the loss within the cap."""
    fee = rules.taker_fee
    with decimal.localcontext(DEC_CTX):
        if side is Side.SELL:
            limit = (q * entry_unit - cap_left) / (q * (1 - fee))
            p_m = int((limit.scaleb(P) / rules.tick_m).to_integral_value(decimal.ROUND_CEILING)) * rules.tick_m
            p_m = max(p_m, rules.tick_m)
        else:
            limit = (q * entry_unit + cap_left) / (q * (1 + fee))
            p_m = int((limit.scaleb(P) / rules.tick_m).to_integral_value(decimal.ROUND_FLOOR)) * rules.tick_m
    return p_m, limit


class ResidualCloser:
    """Hedges or unwinds a trade's one-leg residual within the loss cap (module docstring).

    Parameters
    ----------
    trading
        The ``trading`` config section (``hedge_attempts``, ``hedge_loss_cap``, ``leg_deadline_ms``);
        the executor sets a reloaded one (``Executor.reconfigure``).
    rules
        ``{(venue, venue unified symbol): LegRules}``, the executor's (it sets reloaded ones).
    risk
        The node's RiskManager (the kill switch blocks hedging).
    legs
        The executor's LegTracker: each order is one of its legs.
    audit, log
        The executor's AuditWriter and logger.
    prefix
        The executor's client-id prefix (unique per run).
    """

    def __init__(self, *, trading: TradingConfig, rules: Mapping[tuple[str, str], LegRules], risk: RiskManager,
                 legs: LegTracker, audit: AuditWriter, log: Logger, prefix: str):
        self.trading = trading
        self.rules = rules
        self.risk = risk
        self.legs = legs
        self.log = log
        self.prefix = prefix
        self._audit, self._audit_soft = audit.write, audit.write_soft

    async def close(self, trade_id: int, opp: Opportunity, buy: Leg, sell: Leg, residual: Decimal, legs: list[Leg],
                    base: str, quote: str) -> tuple[str, Decimal]:
        """Hedge/unwind ``residual`` (+: long extra base to sell; −: short to buy back) within the
        loss cap. Every order sent is appended to ``legs`` (the trade's). Returns (status, residual
        left): hedged, unwound, residual or unreconciled."""
        tr = self.trading
        P, Q = opp.price_scale, opp.qty_scale
        if residual > 0:      # bought more than sold: SELL the rest; entry = buy leg's cost per unit
            side = Side.SELL
            entry_leg = buy
            plan = [(opp.sell_venue, "hedge"), (opp.buy_venue, "unwind")]
        else:                 # sold more than bought: BUY back; entry = sell leg's proceeds per unit
            side = Side.BUY
            entry_leg = sell
            plan = [(opp.buy_venue, "hedge"), (opp.sell_venue, "unwind")]
        est = entry_leg.state
        erules = self.rules[(entry_leg.req.venue, entry_leg.req.symbol)]
        with decimal.localcontext(DEC_CTX):
            # per-unit entry value incl. its fee: what the residual cost (long) or brought (short)
            if side is Side.SELL:
                entry_unit = est.avg_price * (1 + erules.taker_fee)
            else:
                entry_unit = est.avg_price * (1 - erules.taker_fee)
        cap_left = Decimal(tr.hedge_loss_cap)
        used = set()
        status = "residual"
        n = 0
        for attempt in range(tr.hedge_attempts):
            venue, kind = plan[attempt % 2]
            if residual == 0:
                break
            if not self.risk.allows_hedge():
                self._audit_soft("hedge_blocked", {"trade_id": trade_id, "reason": "kill_switch",
                                                   "residual": str(residual)})
                break
            sym = venue_symbol(venue, opp.symbol)
            rules = self.rules[(venue, sym)]
            with decimal.localcontext(DEC_CTX):
                r_m = int(abs(residual).scaleb(Q).to_integral_value(decimal.ROUND_FLOOR))
                q_m = r_m // rules.step_m * rules.step_m
                if q_m <= 0 or q_m < rules.min_qty_m:
                    self._audit_soft("residual_dust", {"trade_id": trade_id, "venue": venue, "residual": str(residual)})
                    continue
                q = mantissa_to_decimal(q_m, Q)
                fee = rules.taker_fee
                p_m, limit = loss_capped_limit(side, q, entry_unit, cap_left, rules, P)
                if side is Side.BUY and p_m <= 0:
                    self._audit_soft("hedge_impossible", {"trade_id": trade_id, "venue": venue, "limit": str(limit)})
                    continue
                if q * mantissa_to_decimal(p_m, P) < rules.min_notional:
                    self._audit_soft("residual_dust", {"trade_id": trade_id, "venue": venue,
                                                       "residual": str(residual), "why": "min_notional"})
                    continue
            n += 1
            cid = "cx%s%x%s%d" % (self.prefix, trade_id, "h" if kind == "hedge" else "u", n)
            leg = self.legs.new(trade_id, ioc_request(cid, venue, sym, side, q_m, p_m, Q, P, opp.route, kind),
                                base, quote)
            legs.append(leg)
            try:        # written ahead: when they cannot be, the order is not sent (trading halts)
                self._audit("hedge_plan", {"trade_id": trade_id, "kind": kind, "venue": venue, "side": side.value,
                                           "qty": str(q), "limit_price": str(mantissa_to_decimal(p_m, P)),
                                           "residual": str(residual), "entry_unit": str(entry_unit),
                                           "loss_cap_left": str(cap_left)})
                self._audit("order_request", dict(leg.req.audit_fields(), trade_id=trade_id))
            except AuditFailed as e:
                legs.remove(leg)
                self.legs.withdraw(trade_id, (leg,), e)
                break
            await self.legs.send(leg)
            await self.legs.settle(leg, leg.sent_ns + tr.leg_deadline_ms * 1_000_000)
            self.legs.finish(leg)
            if leg.unreconciled:
                return "unreconciled", residual
            f = leg.filled
            if f > 0:
                used.add(kind)
                with decimal.localcontext(DEC_CTX):
                    st = leg.state
                    if side is Side.SELL:
                        loss = f * entry_unit - f * st.avg_price * (1 - fee)
                        residual -= f
                    else:
                        loss = f * st.avg_price * (1 + fee) - f * entry_unit
                        residual += f
                    cap_left -= max(loss, _ZERO)
        if residual == 0:
            status = "unwound" if "unwind" in used else "hedged"
        else:
            self._audit_soft("residual_open", {"trade_id": trade_id, "route": opp.route, "asset": base,
                                               "residual": str(residual), "loss_cap_left": str(cap_left)})
            self.log.error("residual position left open", trade_id=trade_id, route=opp.route,
                           residual=str(residual))
        return status, residual
