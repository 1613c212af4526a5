"""L2 order book and venue sequence sync (compiled; contract in book.pxd)."""
from typing import Callable, Iterable, Optional

SYNC_SNAPSHOT_DIFF: int
SYNC_STREAM_FULL: int
APPLY_OK: int
APPLY_STALE: int
APPLY_BUFFERED: int
APPLY_RESYNC: int
APPLY_IGNORED: int
RESYNC_NONE: int
RESYNC_GAP: int
RESYNC_CROSSED: int
RESYNC_BUFFER_OVERFLOW: int
RESYNC_SNAPSHOT_STALE: int
RESYNC_REQUESTED: int
RESYNC_LEVEL_CAP: int
DEFAULT_MAX_LEVELS: int
APPLY_NAMES: dict[int, str]
RESYNC_NAMES: dict[int, str]

Levels = Iterable[tuple[int, int]]

class Book:
    symbol_id: int
    venue: int
    depth: int
    max_levels: int
    overflowed: bool
    last_id: int
    exch_ts_ms: int
    recv_ns: int
    version: int
    in_sync: bool
    def __init__(self, symbol_id: int = 0, venue: int = 0, depth: int = 400,
                 max_levels: int = ...) -> None: ...
    def top(self, n: Optional[int] = None) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]: ...
    def best_bid(self) -> Optional[tuple[int, int]]: ...
    def best_ask(self) -> Optional[tuple[int, int]]: ...
    def counts(self) -> tuple[int, int]: ...
    @property
    def crossed(self) -> bool: ...
    def py_set_level(self, is_bid: bool, px: int, qty: int) -> bool: ...
    def py_apply(self, bids: Levels = ..., asks: Levels = ..., full: bool = False, first_id: int = 0,
                 last_id: int = 0, exch_ts_ms: int = 0, recv_ns: int = 0) -> int: ...
    def py_clear(self) -> None: ...
    def mark_in_sync(self, flag: bool = True) -> None: ...
    def bench_apply(self, updates: list[tuple[Levels, Levels]], repeats: int) -> int: ...

class BookSync:
    book: Book
    rule: int
    buffer_limit: int
    buffer_level_limit: int
    resync_reason: int
    resyncs: int
    applied: int
    stale_dropped: int
    ignored: int
    buffer_dropped: int
    level_cap_resyncs: int
    def __init__(self, book: Book, rule: int = ..., buffer_limit: int = 1024,
                 on_resync: Optional[Callable[["BookSync", int], object]] = None,
                 buffer_level_limit: int = 262144) -> None: ...
    def request_resync(self, reason: int = ...) -> None: ...
    def py_update(self, first: int, last: int, bids: Levels = ..., asks: Levels = ..., full: bool = False,
                  exch_ts_ms: int = 0, recv_ns: int = 0) -> int: ...
    def py_snapshot(self, last_id: int, bids: Levels = ..., asks: Levels = ..., exch_ts_ms: int = 0,
                    recv_ns: int = 0) -> int: ...
    def set_on_resync(self, on_resync: Optional[Callable[["BookSync", int], object]]) -> None: ...
    @property
    def awaiting_snapshot(self) -> bool: ...
    @property
    def buffered(self) -> int: ...
    def buffered_ids(self) -> list[tuple[int, int]]: ...
    def bench_updates(self, updates: list[tuple[Levels, Levels]], repeats: int) -> int: ...
