"""MEXC spot v3 WebSocket parser (compiled; contract in mexc_spot.pxd)."""
from typing import Any, Optional

from cexnode._core.feed import FeedParser, FeedSink
from cexnode._core.symbols import SymbolMap

VENUE: str

class MexcSpotParser(FeedParser):
    messages: int
    def __init__(self, symbols: Optional[SymbolMap] = None, sink: Optional[FeedSink] = None) -> None: ...
    def decode(self, frame: bytes, binary: bool, recv_ns: int = 0) -> list[dict[str, Any]]: ...
    def bench_feed(self, frames: list[bytes], repeats: int, binary: bool = True) -> int: ...

def classify_control(id_: Any, code: Any, msg: Any) -> tuple[int, dict[str, Any]]: ...

class CollectSink(FeedSink):
    events: list[tuple[Any, ...]]
    def __init__(self) -> None: ...

class BookSyncSink(FeedSink):
    syncs: dict[int, Any]
    results: Optional[list[int]]
    def __init__(self, syncs: dict[int, Any]) -> None: ...
