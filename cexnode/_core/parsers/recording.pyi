"""FeedSinks visible from Python (compiled; contract in recording.pxd)."""
from typing import Any, Optional

from cexnode._core.feed import FeedSink

class RecordingSink(FeedSink):
    events: list[tuple[Any, ...]]
    def __init__(self) -> None: ...

class BookSyncSink(FeedSink):
    syncs: dict[int, Any]
    results: Optional[list[int]]
    events: list[tuple[Any, ...]]
    record: bool
    def __init__(self, syncs: dict[int, Any], record: bool = False) -> None: ...
