"""FrameTap (cexnode._core.tap): the capture tap a recording node puts in front of a venue parser."""
from __future__ import annotations

from cexnode._core.parsers.gateio_spot import GateSpotParser
from cexnode._core.tap import FrameTap


class _Sink:
    def __init__(self, fail: bool = False) -> None:
        self.frames: list = []
        self.fail = fail

    def ws(self, venue, data, binary=False, t=None):
        if self.fail:
            raise OSError("disk full")
        self.frames.append((venue, data, binary, t))


def test_each_frame_goes_to_the_sink_then_to_the_parser_with_its_receive_time():
    inner, sink = GateSpotParser(), _Sink()
    tap = FrameTap(inner, sink, "venue-a")
    assert tap.venue == inner.venue
    tap.feed_bytes(b'{"time":1,"channel":"spot.pong","event":"","result":null}', False, 111)
    tap.feed_bytes(b"{not json", False, 222)
    tap.feed_bytes(b"\x01\x02", True, 333)
    assert sink.frames == [("venue-a", b'{"time":1,"channel":"spot.pong","event":"","result":null}', False, 111),
                           ("venue-a", b"{not json", False, 222), ("venue-a", b"\x01\x02", True, 333)]
    assert inner.frames == 3 and inner.errors >= 1 and tap.frames == 3
    assert tap.sink_errors == 0 and tap.last_sink_error is None


def test_a_failing_sink_is_counted_and_the_parser_still_gets_the_frame():
    inner = GateSpotParser()
    tap = FrameTap(inner, _Sink(fail=True), "venue-a")
    tap.feed_bytes(b"{not json", False, 1)
    assert inner.frames == 1 and inner.errors == 1
    assert tap.sink_errors == 1 and "disk full" in tap.last_sink_error
