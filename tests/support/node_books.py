"""Waiting on a running node, and the simulator's true books in the node's units: shared by the
tests that run the node on the embedded simulator and compare its books with the venue's."""
from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any, Callable


async def wait_until(pred: Callable[[], Any], timeout: float, step: float = 0.02) -> bool:
    """Poll ``pred`` until it is true or ``timeout`` seconds passed; its last value decides."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())


def true_levels(venue_obj: Any, symbol: str, inst: dict, n: int = 20) -> tuple[tuple[list, list], int]:
    """The simulated venue's top ``n`` levels of ``symbol`` as the node's books hold them (price and
    base-quantity mantissas at the instrument's scales), and the book's last update id."""
    bids, asks, last_id = venue_obj.true_book(symbol, n)
    ps, vqs, mult = inst["price_scale"], inst["venue_qty_scale"], inst["qty_mult"]

    def conv(side):
        return [(int(Decimal(p).scaleb(ps)), int(Decimal(q).scaleb(vqs)) * mult) for p, q in side]

    return (conv(bids), conv(asks)), last_id
