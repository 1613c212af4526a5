"""Execution: order-entry interface, paper venue, risk, positions and the two-leg executor.

See docs/design.md §5. The engine builds one :class:`Executor` with a gateway per venue
(:class:`PaperGateway` in paper mode, the venue adapters in live mode), a :class:`RiskManager`
and a :class:`PositionBook`, and calls ``Executor.submit(opportunity)`` on every emission.
"""
from cexnode.execution.executor import Executor, LegRules, TradeResult, venue_symbol
from cexnode.execution.gateway import (Balance, GatewayError, OrderAck, OrderGateway, OrderNotFound, OrderRequest,
                                       OrderState, OrderStatus, Outcome, Side, TimeInForce)
from cexnode.execution.paper import PaperGateway, build_paper_gateways
from cexnode.execution.positions import PositionBook
from cexnode.execution.risk import (ACTIVE, HALTED, REDUCING, RiskDecision, RiskManager,
                                    RoutedBooks, book_ages)

__all__ = [
    "Executor", "LegRules", "TradeResult", "venue_symbol", "Balance", "GatewayError", "OrderAck", "OrderGateway",
    "OrderNotFound", "OrderRequest", "OrderState", "OrderStatus", "Outcome", "Side", "TimeInForce", "PaperGateway",
    "build_paper_gateways",
    "PositionBook", "RiskManager", "RiskDecision", "RoutedBooks", "book_ages", "ACTIVE", "REDUCING", "HALTED",
]
