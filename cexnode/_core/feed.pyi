"""Typed market-data events and the parser/sink base classes (compiled; contract in feed.pxd)."""
from typing import Optional

from cexnode._core.symbols import SymbolMap

FRAME_DEPTH: int
FRAME_BBO: int
FRAME_TRADE: int
FRAME_MESSAGE: int
FRAME_IGNORED: int
FRAME_ERROR: int
MSG_ACK: int
MSG_PONG: int
MSG_ERROR: int
MSG_ORDER: int
MSG_FILL: int
MSG_BALANCE: int
MSG_API_RESPONSE: int
MSG_OTHER: int

class FeedSink:
    def __init__(self) -> None: ...

class FeedParser:
    venue: int
    symbols: Optional[SymbolMap]
    sink: FeedSink
    frames: int
    bytes_in: int
    errors: int
    ignored: int
    depth_updates: int
    last_error: Optional[str]
    def __init__(self, venue: int, symbols: Optional[SymbolMap] = None, sink: Optional[FeedSink] = None) -> None: ...
    def feed_bytes(self, frame: bytes, binary: bool = False, recv_ns: int = 0) -> int: ...
    def set_symbols(self, symbol_map: SymbolMap) -> None: ...
