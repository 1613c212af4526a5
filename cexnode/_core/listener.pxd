# cexnode._core.listener — the picows listener of a public market-data connection. THE CONTRACT; review first.
#
# docs/design.md §1: "Python never sees a market-data frame". One FeedListener per WebSocket connection
# (cexnode.net.ws.WsFeed creates them through picows ws_connect). For every complete TEXT/BINARY
# frame, on_ws_frame hands frame.payload_ptr / payload_size straight to the venue's
# FeedParser.feed (a cdef call through the vtable, no bytes object) with recv_ns = CLOCK_REALTIME
# ns read in C right there (logring.now_ns: the clock the router's tick-to-decision uses).
#
# Per data frame there is no Python work: C counters, the last-frame clock for the watchdog, the
# parser call, and one integer compare for the optional first-data notification.
#
# Control frames:
#   * PING: counted in `pings` and answered here with a PONG (WsFeed connects with
#     enable_auto_pong=False: picows' auto-pong would swallow the frame before on_ws_frame).
#   * PONG: counted in `pongs`, both through on_ws_frame and through is_user_specific_pong (which
#     picows asks instead while its auto-ping waits for a pong).
#   * CLOSE: the close code/reason are kept (close_code, close_reason), the close is answered and the
#     transport disconnected; on_ws_disconnected follows.
#   * Fragmented messages (fin=0 / CONTINUATION; venues do not send them): reassembled in a Python
#     bytearray (cold path) and fed as one frame once complete.
#
# Owner notifications (cold path, a Python object set in `owner`; None = nobody is told):
#   owner._on_ws_connected(listener)            the WebSocket handshake completed
#   owner._on_ws_first_data(listener)           data_frames reached `notify_data_frames` (once; 0 = off)
#   owner._on_ws_disconnected(listener)         the connection ended (either side, any reason)
#   owner._on_ws_frame_error(listener, exc)     the sink raised while handling a frame (the frame is
#                                               counted in `errors`; the stream goes on)
#
# current_listener() is the listener whose frame is being parsed right now (None outside a feed
# call): lets a Python message handler called from inside the parser (venue error acks) know which
# connection the frame came on, without any per-frame Python call.
#
# Lifetime: the frame buffer is valid only inside on_ws_frame (picows reuses its read buffer);
# the parser never keeps it (feed.pxd).
cimport cython
from libc.stdint cimport int64_t, uint64_t
from picows.picows cimport WSFrame, WSListener, WSTransport
from cexnode._core.feed cimport FeedParser


@cython.final
cdef class FeedListener(WSListener):
    cdef:
        FeedParser _parser
        public object owner                 # see "Owner notifications"
        readonly int index                  # connection slot of the owner (WsFeed group index)
        readonly int generation             # owner's connection generation (rotation / reconnect)
        readonly WSTransport transport      # None before connect
        # counters (C fields)
        readonly uint64_t frames            # every frame received, control frames included
        readonly uint64_t data_frames       # TEXT/BINARY messages handed to the parser
        readonly uint64_t bytes_in          # payload bytes of data frames
        readonly uint64_t pings
        readonly uint64_t pongs
        readonly uint64_t errors            # sink exceptions while feeding
        readonly uint64_t fragments         # CONTINUATION / non-final frames (reassembled)
        # clocks (CLOCK_REALTIME ns; 0 = never)
        readonly int64_t connected_ns
        readonly int64_t last_frame_ns      # any frame (the watchdog's input)
        readonly int64_t last_data_ns
        readonly int64_t disconnected_ns
        # state
        readonly bint connected
        readonly int close_code             # from the peer's CLOSE frame, -1 = none received
        readonly str close_reason
        public uint64_t notify_data_frames  # call owner._on_ws_first_data once data_frames == this
        bint _notified
        bint _binary_frag                   # opcode of the message being reassembled
        bytearray _frag                     # None unless reassembling

    # Feed one complete message (ptr valid only during the call). Returns the FrameResult, -1 when
    # the sink raised (the exception is reported to the owner and cleared here, so callers see -1
    # only as a count: errors += 1).
    cdef int _feed(self, const char* buf, Py_ssize_t n, bint binary, int64_t now) noexcept
