"""Gate.io USDT-settled futures v4 WebSocket parser (contract in gateio_futures.pxd)."""
cimport cython
from cexnode._core.feed cimport FeedParser, FeedSink
from cexnode._core.symbols cimport SymbolMap, VENUE_GATEIO_FUTURES
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
        if symbols is not None and symbols.venue != VENUE_GATEIO_FUTURES:
            raise ValueError("GateFuturesParser needs the gateio_futures SymbolMap")
        FeedParser.__init__(self, VENUE_GATEIO_FUTURES, symbols, sink)
        self._futures = True
