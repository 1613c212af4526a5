"""Gate.io USDT futures v4 WebSocket parser (compiled; contract in gateio_futures.pxd)."""
from typing import Optional

from cexnode._core.feed import FeedSink
from cexnode._core.parsers.gateio_spot import GateParserBase
from cexnode._core.symbols import SymbolMap

VENUE: str

class GateFuturesParser(GateParserBase):
    def __init__(self, symbols: Optional[SymbolMap] = None, sink: Optional[FeedSink] = None) -> None: ...
