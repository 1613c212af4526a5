# cexnode._core.tap — a capture tap in front of a venue parser. THE CONTRACT; review first.
#
# `cexnode record` is the live node with a tap on its feed listener: the listener feeds a FrameTap,
# the tap hands a copy of each frame to a capture sink (`sink.ws(venue, data, binary, recv_ns)`,
# cexnode.capture.format.CaptureWriter) and then the frame, untouched and with the same receive
# time, to the venue's parser. Only a recording node builds one: a node that does not record gives
# the listener its parser directly, so the live hot path has no tap at all.
#
# The copy (one bytes object per frame) is the price of recording: the listener's buffer is valid
# only inside the call. A sink that raises does not stop the market data: the error is counted in
# `sink_errors`, its text kept in `last_sink_error`, and the frame still goes to the parser.
from libc.stdint cimport int64_t, uint64_t
from cexnode._core.feed cimport FeedParser


cdef class FrameTap(FeedParser):
    cdef:
        readonly FeedParser inner       # the venue's parser (gets every frame after the sink)
        readonly object capture_sink    # .ws(venue name, bytes, binary, recv_ns)
        readonly str venue_name         # the capture's venue label
        readonly uint64_t sink_errors
        readonly str last_sink_error

    # feed() (FeedParser's, overridden): the sink, then inner.feed with the same arguments
    # set_symbols() (FeedParser's, overridden): swaps the inner parser's map too
