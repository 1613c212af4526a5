"""Venue decimal strings <-> int64 mantissas at a fixed scale (see fixedpoint.pxd, the contract).

``parse_decimal`` is the hot-path parser used by the wire parsers: one pass over the bytes, no
Python objects, no floating point. ``parse`` / ``format`` are the Python-facing wrappers.
"""
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from cpython.mem cimport PyMem_Malloc, PyMem_Free

cdef extern from "cexnode_debug.h":
    void CEXNODE_ASSERT(bint) nogil

cdef int _i
POW10[0] = 1
for _i in range(1, 19):
    POW10[_i] = POW10[_i - 1] * 10

cdef uint64_t _POS_LIMIT = <uint64_t>9223372036854775807ULL      # INT64_MAX
cdef uint64_t _NEG_LIMIT = <uint64_t>9223372036854775808ULL      # -INT64_MIN

globals()["MAX_SCALE"] = <int>MAX_SCALE

_REASONS = {
    DEC_EMPTY: "empty: no characters",
    DEC_SYNTAX: "syntax: not a plain decimal ([-]digits[.digits])",
    DEC_TOO_PRECISE: "too precise: more significant decimals than the scale allows",
    DEC_OVERFLOW: "overflow: does not fit int64 at this scale",
    DEC_BAD_SCALE: "bad scale: outside 0..18",
}


cdef DecimalError parse_decimal(const char* p, Py_ssize_t n, int scale, int64_t* out) noexcept nogil:
    # One pass. Precedence when several problems exist: BAD_SCALE, EMPTY, SYNTAX (whole string is
    # checked), TOO_PRECISE, OVERFLOW. The magnitude is accumulated in uint64 so INT64_MIN parses.
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef bint overflow = False
    cdef bint too_precise = False
    cdef uint64_t mag = 0
    cdef uint64_t limit
    cdef uint64_t d
    cdef int frac = 0
    cdef Py_ssize_t start
    cdef char c
    if scale < 0 or scale > MAX_SCALE:
        return DEC_BAD_SCALE
    if n <= 0:
        return DEC_EMPTY
    if p[0] == c'-':
        neg = True
        i = 1
    limit = _NEG_LIMIT if neg else _POS_LIMIT
    start = i
    while i < n:
        c = p[i]
        if c < c'0' or c > c'9':
            break
        d = <uint64_t>(c - c'0')
        if not overflow:
            if mag > (limit - d) // 10:
                overflow = True
            else:
                mag = mag * 10 + d
        i += 1
    if i == start:
        return DEC_SYNTAX                       # no integer digit ("", "-", ".5", "+1", " 1")
    if i < n:
        if p[i] != c'.':
            return DEC_SYNTAX
        i += 1
        start = i
        while i < n:
            c = p[i]
            if c < c'0' or c > c'9':
                return DEC_SYNTAX
            d = <uint64_t>(c - c'0')
            if frac < scale:
                frac += 1
                if not overflow:
                    if mag > (limit - d) // 10:
                        overflow = True
                    else:
                        mag = mag * 10 + d
            elif d != 0:
                too_precise = True
            i += 1
        if i == start:
            return DEC_SYNTAX                   # "1." has no fraction digit
    if too_precise:
        return DEC_TOO_PRECISE
    if overflow:
        return DEC_OVERFLOW
    if frac < scale:
        d = <uint64_t>POW10[scale - frac]
        if mag > limit // d:
            return DEC_OVERFLOW
        mag *= d
    if neg and mag:
        out[0] = -<int64_t>(mag - 1) - 1        # exact for mag == 2**63; no unsigned wrap
    else:
        out[0] = <int64_t>mag
    return DEC_OK


cdef Py_ssize_t format_decimal(int64_t mantissa, int scale, char* buf) noexcept nogil:
    # Canonical: no trailing zeros, no trailing '.', "0" for zero, '-' only for negative values.
    # Writes a NUL after the text (at most 22 bytes + NUL, FORMAT_BUF is 32).
    cdef char tmp[24]
    cdef int nd = 0
    cdef uint64_t mag
    cdef Py_ssize_t k = 0
    cdef int int_digits, j, frac_end
    CEXNODE_ASSERT(scale >= 0 and scale <= MAX_SCALE)
    if scale < 0:
        scale = 0
    elif scale > MAX_SCALE:
        scale = MAX_SCALE
    if mantissa < 0:
        mag = <uint64_t>(-(mantissa + 1)) + 1  # |INT64_MIN| without a wrapping negation
        buf[k] = c'-'
        k += 1
    else:
        mag = <uint64_t>mantissa
    if mag == 0:
        buf[0] = c'0'
        buf[1] = 0
        return 1
    while mag:                                  # tmp holds the digits least significant first
        tmp[nd] = <char>(c'0' + <int>(mag % 10))
        mag //= 10
        nd += 1
    # strip trailing (least significant) zeros inside the fraction
    frac_end = 0
    while frac_end < scale and tmp[frac_end] == c'0':
        frac_end += 1
    int_digits = nd - scale
    if int_digits > 0:
        j = nd - 1
        while j >= scale:
            buf[k] = tmp[j]
            k += 1
            j -= 1
    else:
        buf[k] = c'0'
        k += 1
    if frac_end < scale:
        buf[k] = c'.'
        k += 1
        j = scale - 1
        while j >= frac_end:
            buf[k] = tmp[j] if j < nd else c'0'
            k += 1
            j -= 1
    buf[k] = 0
    return k


cdef inline const char* _as_chars(object s, Py_ssize_t* n) except NULL:
    cdef const char* p
    if isinstance(s, bytes):
        n[0] = PyBytes_GET_SIZE(s)
        return PyBytes_AS_STRING(s)
    if isinstance(s, str):
        return PyUnicode_AsUTF8AndSize(s, n)
    raise TypeError("parse() takes str or bytes, not %s" % type(s).__name__)


def parse(s, int scale):
    """Parse a plain decimal string into its int64 mantissa at ``scale``.

    Parameters
    ----------
    s : str or bytes
        ``[-]digits[.digits]``; no exponent, spaces or '+'.
    scale : int
        Decimals of the mantissa, 0..18. ``parse("1.50", 2) == 150``.

    Raises
    ------
    ValueError
        Naming the reason: empty, syntax, too precise (would truncate), overflow, bad scale.
    """
    cdef Py_ssize_t n = 0
    cdef const char* p = _as_chars(s, &n)
    cdef int64_t out = 0
    cdef DecimalError err = parse_decimal(p, n, scale, &out)
    if err != DEC_OK:
        raise ValueError("cannot parse %r at scale %d: %s" % (s, scale, _REASONS[err]))
    return out


def format(int64_t mantissa, int scale):
    """Canonical decimal string of ``mantissa / 10**scale`` ("1.5", "0", "-0.001")."""
    cdef char buf[FORMAT_BUF]
    cdef Py_ssize_t n
    if scale < 0 or scale > MAX_SCALE:
        raise ValueError("scale %d outside 0..%d" % (scale, MAX_SCALE))
    n = format_decimal(mantissa, scale, buf)
    return buf[:n].decode("ascii")


def natural_scale_of(s):
    """The scale ``s`` needs without an instrument: fraction digits up to the last non-zero one,
    capped at 18 (``"41.847400000000000000"`` -> 4). Syntax is not checked."""
    cdef Py_ssize_t n = 0
    cdef const char* p = _as_chars(s, &n)
    return natural_scale(p, n)


def error_code(s, int scale):
    """The raw ``DecimalError`` code of ``parse_decimal`` (0 = ok) — for tests and diagnostics."""
    cdef Py_ssize_t n = 0
    cdef const char* p = _as_chars(s, &n)
    cdef int64_t out = 0
    return <int>parse_decimal(p, n, scale, &out)


def bench_parse_fields(bytes buf, int scale, Py_ssize_t repeats):
    """Benchmark helper: parse every space-separated field of ``buf`` ``repeats`` times in C.

    Returns ``(fields_parsed, checksum)``; the caller times the call. Raises ValueError if a field
    does not parse (so the benchmark measures successful parses only).
    """
    cdef const char* p = PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef Py_ssize_t nf = 0, i = 0, j, r, k
    cdef Py_ssize_t* starts
    cdef Py_ssize_t* lens
    cdef int64_t v = 0
    cdef int64_t checksum = 0
    cdef DecimalError err
    # count fields
    while i < n:
        while i < n and p[i] == c' ':
            i += 1
        if i < n:
            nf += 1
        while i < n and p[i] != c' ':
            i += 1
    if nf == 0:
        return 0, 0
    starts = <Py_ssize_t*>PyMem_Malloc(nf * sizeof(Py_ssize_t))
    lens = <Py_ssize_t*>PyMem_Malloc(nf * sizeof(Py_ssize_t))
    if starts == NULL or lens == NULL:
        PyMem_Free(starts)
        PyMem_Free(lens)
        raise MemoryError()
    try:
        i = 0
        k = 0
        while i < n:
            while i < n and p[i] == c' ':
                i += 1
            if i >= n:
                break
            j = i
            while j < n and p[j] != c' ':
                j += 1
            starts[k] = i
            lens[k] = j - i
            k += 1
            i = j
        for k in range(nf):
            if parse_decimal(p + starts[k], lens[k], scale, &v) != DEC_OK:
                raise ValueError("field %d does not parse at scale %d" % (k, scale))
        with nogil:
            for r in range(repeats):
                for k in range(nf):
                    err = parse_decimal(p + starts[k], lens[k], scale, &v)
                    checksum += v + <int64_t>err
    finally:
        PyMem_Free(starts)
        PyMem_Free(lens)
    return nf * repeats, checksum
