# cexnode._core.parsers.gateio_futures — Gate.io USDT-settled futures v4 WebSocket parser. THE CONTRACT.
#
# The engine is GateParserBase (gateio_spot.pxd: classification, order of checks, raw mode, errors);
# this parser reads the "futures." channels:
#   futures.order_book_update  levels {"p": price, "s": size} (s absolute contracts, 0 deletes), U/u
#   futures.obu                levels [price, size] string arrays, s = "ob.<CONTRACT>.<level>"
#   futures.book_ticker        B/A integers, or strings with X-Gate-Size-Decimal; b "" = empty side
#   futures.trades             array; `size` signed (+ taker buy, - taker sell), never 0; `contract`
#   futures.orders / usertrades / balances -> on_message (ids exact at any size, e.g. > 2**53)
# Sizes are contracts: JSON integers, or decimal strings (X-Gate-Size-Decimal: 1, possibly
# fractional). They are parsed at Instrument.venue_qty_scale (0 for integer contracts) and multiplied
# by Instrument.qty_mult (quanto_multiplier at qty_scale) -> exact BASE quantity in every struct. A
# fractional size on an integer-contract instrument is "too precise": FRAME_ERROR, never truncated.
cimport cython
from cexnode._core.parsers.gateio_spot cimport GateParserBase


@cython.final
cdef class GateFuturesParser(GateParserBase):
    pass
