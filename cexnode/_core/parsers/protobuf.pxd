# cexnode._core.parsers.protobuf — protobuf wire-format reader (inline, header-only). THE CONTRACT.
#
# A struct cursor over const char* (asyncpg pgproto style): no Python objects, no allocation, every
# read bounds-checked against `end`. Helpers return 0 (PB_OK) or a negative PbError; the cursor
# position after an error is unspecified (callers abandon the frame).
#
# Semantics follow the official runtime (upb, protobuf 7.x), checked by the differential tests:
#   * varint values: at most 10 bytes; bits beyond 64 dropped (int64 -1 is 10 bytes of ff..01);
#   * tags: at most 5 bytes and <= UINT32_MAX; field number 0 is malformed;
#   * lengths: at most 5 bytes, < INT32_MAX, and within the enclosing message;
#   * wire types 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32, 3/4 groups (skipped as a whole,
#     end tag must match, nesting bounded by PB_MAX_GROUP_DEPTH); 6 and 7 are malformed, and an
#     END_GROUP outside a group is malformed;
#   * int32 fields take the low 32 bits of the varint; bool is "varint != 0"; sint* are zigzag.
# Parsers built on it accept any field order and duplicate fields (last scalar wins, repeated fields
# accumulate, a repeated embedded message field may also arrive packed-free in any interleaving).
# proto3 string fields must be valid UTF-8 (the runtime rejects the message otherwise):
# pb_utf8_valid is the same strict check (no overlongs, no surrogates, <= U+10FFFF).
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef extern from "cexnode_debug.h":
    void CEXNODE_ASSERT(bint) nogil


cdef enum PbWireType:
    PB_VARINT = 0
    PB_FIXED64 = 1
    PB_LEN = 2
    PB_START_GROUP = 3
    PB_END_GROUP = 4
    PB_FIXED32 = 5

cdef enum PbError:
    PB_OK = 0
    PB_ERR_TRUNCATED = -1        # varint / fixed / length runs past the end of the message
    PB_ERR_VARINT = -2           # varint longer than 10 bytes (5 for tags and lengths)
    PB_ERR_LENGTH = -3           # length-delimited field longer than what is left
    PB_ERR_WIRETYPE = -4         # wire type 6/7, or END_GROUP outside a group / not matching
    PB_ERR_FIELD_ZERO = -5       # field number 0 (or tag above UINT32_MAX)
    PB_ERR_GROUP_DEPTH = -6      # groups nested deeper than PB_MAX_GROUP_DEPTH
    PB_ERR_WRONG_TYPE = -7       # a known field arrived with a wire type its schema does not allow
    PB_ERR_UTF8 = -8             # proto3 string field that is not valid UTF-8

cdef enum:
    PB_MAX_GROUP_DEPTH = 32


cdef struct PbCursor:
    const char* p                # next byte to read
    const char* end              # one past the last byte of the current message
    const char* start            # first byte of the whole frame (error offsets only)


cdef inline void pb_init(PbCursor* c, const char* p, Py_ssize_t n) noexcept nogil:
    c.p = p
    c.end = p + n
    c.start = p


cdef inline void pb_sub(PbCursor* c, const PbCursor* parent, const char* p, Py_ssize_t n) noexcept nogil:
    # A cursor over an embedded message (p, n) that came from pb_read_len on `parent`.
    c.p = p
    c.end = p + n
    c.start = parent.start


cdef inline bint pb_more(const PbCursor* c) noexcept nogil:
    return c.p < c.end


# Pointer differences go through size_t: end >= p >= start always holds, and the debug build's
# overflow checks do not apply to pointer arithmetic.
cdef inline Py_ssize_t pb_offset(const PbCursor* c) noexcept nogil:
    return <Py_ssize_t>(<size_t>c.p - <size_t>c.start)


cdef inline Py_ssize_t pb_left(const PbCursor* c) noexcept nogil:
    return <Py_ssize_t>(<size_t>c.end - <size_t>c.p)


cdef inline int pb_read_varint(PbCursor* c, uint64_t* out) noexcept nogil:
    cdef const uint8_t* p = <const uint8_t*>c.p
    cdef const uint8_t* end = <const uint8_t*>c.end
    cdef uint64_t v
    cdef uint64_t b
    cdef int shift
    if p < end and p[0] < 0x80:            # one-byte fast path (tags, small lengths, tradeType)
        out[0] = p[0]
        c.p += 1
        return PB_OK
    v = 0
    shift = 0
    while shift < 70:
        if p >= end:
            return PB_ERR_TRUNCATED
        b = p[0]
        p += 1
        if shift < 57:
            v |= (b & 0x7f) << shift
        elif shift < 64:                   # the 10th byte: only its low bit fits (rest dropped)
            v |= (b & 1) << shift
        if b < 0x80:
            out[0] = v
            c.p = <const char*>p
            return PB_OK
        shift += 7
    return PB_ERR_VARINT                   # 10 bytes with the continuation bit still set


cdef inline int _pb_read_varint_max5(PbCursor* c, uint64_t* out) noexcept nogil:
    # tags and lengths: at most 5 bytes (the runtime rejects longer encodings even when non-minimal)
    cdef const uint8_t* p = <const uint8_t*>c.p
    cdef const uint8_t* end = <const uint8_t*>c.end
    cdef uint64_t v = 0
    cdef uint64_t b
    cdef int i
    for i in range(5):
        if p >= end:
            return PB_ERR_TRUNCATED
        b = p[0]
        p += 1
        v |= (b & 0x7f) << (7 * i)
        if b < 0x80:
            out[0] = v
            c.p = <const char*>p
            return PB_OK
    return PB_ERR_VARINT


cdef inline int pb_read_tag(PbCursor* c, uint32_t* field, int* wire_type) noexcept nogil:
    cdef uint64_t v
    cdef int r
    if c.p < c.end and (<const uint8_t*>c.p)[0] < 0x80:     # fields 1..15: one byte
        v = (<const uint8_t*>c.p)[0]
        c.p += 1
    else:
        r = _pb_read_varint_max5(c, &v)
        if r != PB_OK:
            return r
        if v > 0xFFFFFFFFULL:
            return PB_ERR_FIELD_ZERO
    field[0] = <uint32_t>(v >> 3)
    wire_type[0] = <int>(v & 7)
    if (v >> 3) == 0:
        return PB_ERR_FIELD_ZERO
    if wire_type[0] > 5:
        return PB_ERR_WIRETYPE
    return PB_OK


cdef inline int pb_read_len(PbCursor* c, const char** data, Py_ssize_t* n) noexcept nogil:
    # After a PB_LEN tag: the payload (data, n) inside the current message; the cursor moves past it.
    cdef uint64_t v
    cdef int r = _pb_read_varint_max5(c, &v)
    if r != PB_OK:
        return r
    if v >= 0x7FFFFFFFULL or <uint64_t>pb_left(c) < v:
        return PB_ERR_LENGTH
    data[0] = c.p
    n[0] = <Py_ssize_t>v
    c.p += <Py_ssize_t>v
    return PB_OK


cdef inline int pb_read_fixed64(PbCursor* c, uint64_t* out) noexcept nogil:
    if pb_left(c) < 8:
        return PB_ERR_TRUNCATED
    memcpy(out, c.p, 8)                    # little-endian hosts only (x86-64 / aarch64)
    c.p += 8
    return PB_OK


cdef inline int pb_read_fixed32(PbCursor* c, uint32_t* out) noexcept nogil:
    if pb_left(c) < 4:
        return PB_ERR_TRUNCATED
    memcpy(out, c.p, 4)
    c.p += 4
    return PB_OK


cdef inline int64_t pb_zigzag64(uint64_t v) noexcept nogil:
    return <int64_t>(v >> 1) ^ -<int64_t>(v & 1)


cdef inline int32_t pb_zigzag32(uint32_t v) noexcept nogil:
    return <int32_t>(v >> 1) ^ -<int32_t>(v & 1)


cdef inline int pb_skip(PbCursor* c, uint32_t field, int wire_type) noexcept nogil:
    # Skip the value of a field whose tag was just read (unknown fields of every wire type).
    cdef uint64_t v
    cdef const char* d
    cdef Py_ssize_t n
    cdef uint32_t stack[PB_MAX_GROUP_DEPTH]
    cdef int depth
    cdef int r
    cdef uint32_t f
    cdef int wt
    if wire_type == PB_VARINT:
        return pb_read_varint(c, &v)
    if wire_type == PB_LEN:
        return pb_read_len(c, &d, &n)
    if wire_type == PB_FIXED64:
        if pb_left(c) < 8:
            return PB_ERR_TRUNCATED
        c.p += 8
        return PB_OK
    if wire_type == PB_FIXED32:
        if pb_left(c) < 4:
            return PB_ERR_TRUNCATED
        c.p += 4
        return PB_OK
    if wire_type != PB_START_GROUP:
        return PB_ERR_WIRETYPE             # END_GROUP with no group open
    # A group: fields until the END_GROUP of the same number; nested groups kept on a small stack.
    stack[0] = field
    depth = 1
    while depth > 0:
        if c.p >= c.end:
            return PB_ERR_TRUNCATED
        r = pb_read_tag(c, &f, &wt)
        if r != PB_OK:
            return r
        if wt == PB_END_GROUP:
            if f != stack[depth - 1]:
                return PB_ERR_WIRETYPE
            depth -= 1
        elif wt == PB_START_GROUP:
            if depth >= PB_MAX_GROUP_DEPTH:
                return PB_ERR_GROUP_DEPTH
            stack[depth] = f
            depth += 1
        else:
            r = pb_skip(c, f, wt)
            if r != PB_OK:
                return r
    return PB_OK


cdef inline bint pb_utf8_valid(const char* s, Py_ssize_t n) noexcept nogil:
    # Strict UTF-8 (RFC 3629): what the runtime requires of proto3 string fields.
    cdef const uint8_t* p = <const uint8_t*>s
    cdef Py_ssize_t i = 0
    cdef uint8_t b, b1
    cdef uint64_t w
    while i < n:
        if i + 8 <= n:                      # ASCII fast path, 8 bytes at a time
            memcpy(&w, p + i, 8)
            if (w & 0x8080808080808080ULL) == 0:
                i += 8
                continue
        b = p[i]
        if b < 0x80:
            i += 1
            continue
        if b < 0xC2:
            return False                    # continuation byte first, or overlong 2-byte lead
        if b < 0xE0:
            if i + 1 >= n or (p[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
            continue
        if b < 0xF0:
            if i + 2 >= n:
                return False
            b1 = p[i + 1]
            if (b1 & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80:
                return False
            if b == 0xE0 and b1 < 0xA0:
                return False                # overlong
            if b == 0xED and b1 >= 0xA0:
                return False                # surrogates
            i += 3
            continue
        if b < 0xF5:
            if i + 3 >= n:
                return False
            b1 = p[i + 1]
            if (b1 & 0xC0) != 0x80 or (p[i + 2] & 0xC0) != 0x80 or (p[i + 3] & 0xC0) != 0x80:
                return False
            if b == 0xF0 and b1 < 0x90:
                return False                # overlong
            if b == 0xF4 and b1 >= 0x90:
                return False                # above U+10FFFF
            i += 4
            continue
        return False
    return True


# Reason text for a PbError (error path only; Python object).
cdef str pb_error_text(int err)
