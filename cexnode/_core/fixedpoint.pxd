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


cdef inline int natural_scale(const char* p, Py_ssize_t n) noexcept nogil:
    # The scale a decimal needs when no instrument gives one (decode's raw mode): its fraction
    # digits up to the last non-zero one, capped at MAX_SCALE. Trailing zeros are exact, so they
    # never raise the scale: "41.847400000000000000" is 4 (at 18 it would overflow int64), "2.0"
    # and "7" are 0. Syntax is not checked here; parse_decimal checks the whole string at any scale.
    cdef Py_ssize_t i = 0, end = n
    while i < n and p[i] != c'.':
        i += 1
    if i >= n:
        return 0
    while end > i + 1 and p[end - 1] == c'0':
        end -= 1
    end -= i + 1
    return <int>end if end < MAX_SCALE else MAX_SCALE
cdef Py_ssize_t format_decimal(int64_t mantissa, int scale, char* buf) noexcept nogil  # returns length
