"""Gate.io USDT-settled futures v4 WebSocket parser (contract in gateio_futures.pxd)."""
cimport cython
from cexnode._core.feed cimport FeedParser, FeedSink
from cexnode._core.symbols cimport SymbolMap
from cexnode._core.parsers.gateio_spot cimport GateParserBase

VENUE = "gateio_futures"


@cython.final
cdef class GateFuturesParser(GateParserBase):
    """Gate.io USDT futures v4 frames -> typed events (see gateio_futures.pxd, gateio_spot.pxd).

    Parameters
    ----------
    symbols : SymbolMap or None
        The gateio_futures map (instrument scales, quanto multipliers). None: raw mode, only for
        :meth:`decode` (sizes stay contracts, as the venue sends them).
    sink : FeedSink, optional
        Receiver of the events (default: a no-op sink).
    """

    def __init__(self, SymbolMap symbols=None, FeedSink sink=None):
        # events carry the map's venue id; raw mode (no map) has none (-1)
        FeedParser.__init__(self, symbols.venue if symbols is not None else -1, symbols, sink)
        self._venue_name = symbols.venue_label if symbols is not None else VENUE
        self._futures = True
