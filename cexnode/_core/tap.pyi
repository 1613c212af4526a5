"""A capture tap in front of a venue parser (compiled; contract in tap.pxd)."""
from typing import Optional, Protocol

from cexnode._core.feed import FeedParser

class FrameSink(Protocol):
    def ws(self, venue: str, data: bytes, binary: bool, t: int) -> None: ...

class FrameTap(FeedParser):
    inner: FeedParser
    capture_sink: FrameSink
    venue_name: str
    sink_errors: int
    last_sink_error: Optional[str]
    def __init__(self, inner: FeedParser, capture_sink: FrameSink, venue_name: str) -> None: ...
