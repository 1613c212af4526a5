# cexnode._core.fixedpoint — venue decimal strings <-> int64 mantissas at a fixed scale. THE CONTRACT.
#
# value = mantissa / 10**scale, exactly. Parsing never truncates: more significant decimals than the
# scale allows, overflow, or anything that is not a plain decimal ([-]digits[.digits]; no exponent,
# no spaces, no leading '+') is an error. Trailing zeros beyond the scale are exact and accepted
# ("1.50000" at scale 2 -> 150). Formatting gives the canonical string: no trailing zeros, no
# trailing '.', "0" for zero, "-" only for negative values.
from libc.stdint cimport int64_t

cdef enum:
    MAX_SCALE = 18
    FORMAT_BUF = 32          # enough for any int64 at any scale plus sign and '.'

cdef enum DecimalError:
    DEC_OK = 0
    DEC_EMPTY = 1
    DEC_SYNTAX = 2           # not [-]digits[.digits]
    DEC_TOO_PRECISE = 3      # a non-zero digit beyond `scale`
    DEC_OVERFLOW = 4         # does not fit int64 at `scale`
    DEC_BAD_SCALE = 5        # scale < 0 or > MAX_SCALE

cdef int64_t[19] POW10       # POW10[i] = 10**i, i in 0..18

cdef DecimalError parse_decimal(const char* p, Py_ssize_t n, int scale, int64_t* out) noexcept nogil
cdef Py_ssize_t format_decimal(int64_t mantissa, int scale, char* buf) noexcept nogil  # returns length
