"""Gate.io v4 WebSocket parsers: shared engine + spot (compiled; contract in gateio_spot.pxd)."""
from typing import Any, Optional

from cexnode._core.feed import FeedParser, FeedSink
from cexnode._core.symbols import SymbolMap

VENUE: str

class GateParserBase(FeedParser):
    messages: int
    def decode(self, frame: bytes, binary: bool = False, recv_ns: int = 0) -> list[dict[str, Any]]:
        """Normalized events of one frame (docs/design.md §3) read with the same Cython cursor as ``feed``.

        ``book_snapshot``/``book_delta`` (``first``, ``last``, ``bids``, ``asks``: ``[price, size]``
        venue decimal strings, sizes in venue units, futures contracts), ``bbo`` (``bid``,
        ``bid_qty``, ``ask``, ``ask_qty``: None for an empty side; ``seq``), ``trade`` (``price``,
        ``qty``, ``side``, ``id``), or one ``error`` with ``reason``. Control frames and private
        pushes give ``[]``. Raw mode (no SymbolMap): venue symbols, decimals checked at their own
        decimals; with a map: unified symbols, unlisted symbols give ``[]``.
        """
    def bench_feed(self, frames: list[bytes], repeats: int) -> int: ...

class GateSpotParser(GateParserBase):
    def __init__(self, symbols: Optional[SymbolMap] = None, sink: Optional[FeedSink] = None) -> None: ...

def classify_control(obj: dict[str, Any], venue: str = ...) -> tuple[int, dict[str, Any]]: ...
def normalize_private(channel: str, item: Any, venue: str = ...) -> tuple[int, dict[str, Any]]: ...
