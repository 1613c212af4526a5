# cexnode._core.listener — see listener.pxd (the contract).
cimport cython
from libc.stdint cimport int64_t, uint64_t
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport, WSCloseCode
from cexnode._core.feed cimport FeedParser
from cexnode._core.logring cimport now_ns

cdef FeedListener _current = None


def current_listener():
    """The listener whose frame is being parsed right now (None outside a feed call)."""
    return _current


@cython.final
cdef class FeedListener(WSListener):
    """picows listener of one public connection: frames go zero-copy to ``parser`` (listener.pxd)."""

    def __init__(self, FeedParser parser, object owner=None, int index=0, int generation=0):
        if parser is None:
            raise TypeError("FeedListener needs a FeedParser")
        self._parser = parser
        self.owner = owner
        self.index = index
        self.generation = generation
        self.transport = None
        self.close_code = -1
        self.close_reason = None
        self.notify_data_frames = 0
        self._frag = None

    @property
    def parser(self):
        return self._parser

    cpdef on_ws_connected(self, WSTransport transport):
        self.transport = transport
        self.connected = True
        self.connected_ns = now_ns()
        self.last_frame_ns = self.connected_ns
        if self.owner is not None:
            self.owner._on_ws_connected(self)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self.connected = False
        self.disconnected_ns = now_ns()
        self._frag = None
        if self.owner is not None:
            self.owner._on_ws_disconnected(self)

    cdef int _feed(self, const char* buf, Py_ssize_t n, bint binary, int64_t now) noexcept:
        global _current
        cdef int r
        self.data_frames += 1
        self.bytes_in += <uint64_t>n
        self.last_data_ns = now
        _current = self
        try:
            r = self._parser.feed(buf, n, binary, now)
        except BaseException as e:
            r = -1
            self.errors += 1
            try:
                if self.owner is not None:
                    self.owner._on_ws_frame_error(self, e)
            except BaseException:
                pass
        _current = None
        if self.data_frames == self.notify_data_frames and not self._notified:
            self._notified = True
            try:
                if self.owner is not None:
                    self.owner._on_ws_first_data(self)
            except BaseException as e:
                self.errors += 1
        return r

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef int64_t now = now_ns()
        cdef WSMsgType mt = frame.msg_type
        self.frames += 1
        self.last_frame_ns = now
        if mt == WSMsgType.BINARY or mt == WSMsgType.TEXT:
            if frame.fin:
                self._feed(frame.payload_ptr, frame.payload_size, mt == WSMsgType.BINARY, now)
            else:                               # first fragment of a fragmented message (cold)
                self.fragments += 1
                self._binary_frag = mt == WSMsgType.BINARY
                self._frag = bytearray(frame.payload_ptr[:frame.payload_size])
            return
        if mt == WSMsgType.CONTINUATION:
            self.fragments += 1
            if self._frag is None:
                return                          # continuation without a start: protocol noise, drop
            self._frag += frame.payload_ptr[:frame.payload_size]
            if frame.fin:
                data = bytes(self._frag)
                self._frag = None
                self._feed(data, len(data), self._binary_frag, now)
            return
        if mt == WSMsgType.PING:
            # answered here: with picows' enable_auto_pong the listener would never see (or count) it
            self.pings += 1
            if transport is not None:
                transport.send_pong(frame.get_payload_as_bytes())
            return
        if mt == WSMsgType.PONG:
            self.pongs += 1                     # a pong picows' auto-ping did not wait for
            return
        if mt == WSMsgType.CLOSE:
            self.close_code = <int>frame.get_close_code()
            self.close_reason = frame.get_close_reason()
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

    cpdef is_user_specific_pong(self, WSFrame frame):
        # picows asks this (instead of calling on_ws_frame) for every frame while its auto-ping
        # waits for a pong: count that pong too, and as a frame for the watchdog
        if frame.msg_type == WSMsgType.PONG:
            self.frames += 1
            self.pongs += 1
            self.last_frame_ns = now_ns()
            return True
        return False

    def status(self) -> dict:
        return {"index": self.index, "generation": self.generation, "connected": self.connected,
                "frames": self.frames, "data_frames": self.data_frames, "bytes": self.bytes_in,
                "pings": self.pings, "pongs": self.pongs, "errors": self.errors,
                "fragments": self.fragments, "close_code": self.close_code}
