"""cexnode._core.listener.FeedListener on its own (picows test frames, no socket): data frames reach
the parser with their C receive time and C counters move, fragmented messages are reassembled,
control frames are counted, a sink exception is counted and reported to the owner without raising,
current_listener() names the listener during the parser call, the first-data notification fires once."""
from __future__ import annotations

import time

import orjson
from picows import WSMsgType
from picows.picows import _make_test_ws_frame

from cexnode._core import feed as feedmod
from cexnode._core.listener import FeedListener, current_listener


def _pipeline():
    from cexnode._core.parsers.gateio_spot import GateSpotParser
    from cexnode._core.router import BookRouter
    from cexnode._core.symbols import SymbolRegistry

    reg = SymbolRegistry()
    reg.add_instruments([{"venue": "gateio_spot", "symbol": "BTC/USDT", "venue_symbol": "BTC_USDT", "tick": "0.1",
                          "qty_step": "0.0001", "min_qty": "0.0001", "min_notional": "1"}])
    reg.freeze()
    router = BookRouter(None)
    sid = reg.map("gateio_spot").id_of("BTC_USDT")
    book = router.add_book(1, sid, 0, 100)
    router.snapshot(1, sid, 100, [(6500000, 10000)], [(6500100, 10000)], recv_ns=time.time_ns())
    return router, GateSpotParser(reg.map("gateio_spot"), router), book


def _diff(u: int, bid: str) -> bytes:
    return orjson.dumps({"time": 1, "time_ms": 1000, "channel": "spot.order_book_update", "event": "update",
                         "result": {"t": 1000, "e": "depthUpdate", "E": 1, "s": "BTC_USDT", "U": u, "u": u,
                                    "b": [[bid, "1"]], "a": []}})


class Owner:
    def __init__(self):
        self.first = []
        self.errors = []

    def _on_ws_first_data(self, lst):
        self.first.append(lst.data_frames)

    def _on_ws_frame_error(self, lst, exc):
        self.errors.append(exc)


def test_frames_counters_fragments_controls_and_errors():
    router, parser, book = _pipeline()
    owner = Owner()
    lst = FeedListener(parser, owner, 3, 7)
    lst.notify_data_frames = 1
    assert (lst.index, lst.generation, lst.connected, lst.close_code) == (3, 7, False, -1)
    seen = []
    router.set_message_handler(1, lambda kind, msg: seen.append((kind, current_listener())))

    t0 = time.time_ns()
    f = _diff(101, "6500.1")
    lst.on_ws_frame(None, _make_test_ws_frame(WSMsgType.TEXT, f, True, False))
    assert book.last_id == 101 and (65001, 1000000) in book.top(5)[0]
    assert lst.data_frames == 1 and lst.frames == 1 and lst.bytes_in == len(f)
    assert t0 <= lst.last_data_ns <= time.time_ns() and lst.last_frame_ns == lst.last_data_ns
    assert owner.first == [1]

    # fragmented message: TEXT fin=0 + CONTINUATION fin=1 -> one parser call
    g = _diff(102, "6500.2")
    lst.on_ws_frame(None, _make_test_ws_frame(WSMsgType.TEXT, g[:40], False, False))
    assert book.last_id == 101 and lst.data_frames == 1
    lst.on_ws_frame(None, _make_test_ws_frame(WSMsgType.CONTINUATION, g[40:], True, False))
    assert book.last_id == 102 and lst.data_frames == 2 and lst.fragments == 2
    assert owner.first == [1]                   # notified once

    # control frames are counted, never parsed
    lst.on_ws_frame(None, _make_test_ws_frame(WSMsgType.PING, b"x", True, False))
    lst.on_ws_frame(None, _make_test_ws_frame(WSMsgType.PONG, b"x", True, False))
    assert (lst.pings, lst.pongs, lst.data_frames, lst.frames) == (1, 1, 2, 5)

    # a message frame: the handler runs inside the parser call and sees this listener
    lst.on_ws_frame(None, _make_test_ws_frame(WSMsgType.TEXT, b'{"time":1,"channel":"spot.pong","event":"","result":null}',
                                              True, False))
    assert seen and seen[-1] == (feedmod.MSG_PONG, lst)
    assert current_listener() is None

    # the sink raises: counted, owner told, nothing escapes, the stream goes on
    def boom(kind, msg):
        raise RuntimeError("handler bug")
    router.set_message_handler(1, boom)
    lst.on_ws_frame(None, _make_test_ws_frame(WSMsgType.TEXT, b'{"time":1,"channel":"spot.pong","event":"","result":null}',
                                              True, False))
    assert lst.errors == 1 and len(owner.errors) == 1 and isinstance(owner.errors[0], RuntimeError)
    lst.on_ws_frame(None, _make_test_ws_frame(WSMsgType.TEXT, _diff(103, "6500.3"), True, False))
    assert book.last_id == 103
    st = lst.status()
    assert st["data_frames"] == lst.data_frames == 5 and st["errors"] == 1


def test_needs_a_parser():
    import pytest

    with pytest.raises(TypeError):
        FeedListener(None)
