"""Protobuf wire-format reader (contract and inline helpers in protobuf.pxd).

The hot helpers are inline in the .pxd; this module holds the error texts and two Python entry
points used by the tests to check the reader against the official runtime.
"""
from libc.stdint cimport uint32_t, uint64_t

_TEXT = {
    PB_ERR_TRUNCATED: "truncated: value runs past the end of the message",
    PB_ERR_VARINT: "malformed varint (too many bytes)",
    PB_ERR_LENGTH: "length-delimited field longer than the bytes left",
    PB_ERR_WIRETYPE: "invalid wire type or unmatched END_GROUP",
    PB_ERR_FIELD_ZERO: "invalid tag (field number 0 or above 2**29-1)",
    PB_ERR_GROUP_DEPTH: "groups nested too deep",
    PB_ERR_WRONG_TYPE: "known field with a wrong wire type",
    PB_ERR_UTF8: "string field is not valid UTF-8",
}


cdef str pb_error_text(int err):
    return _TEXT.get(err, "protobuf error %d" % err)


def error_text(int err):
    """Reason text for a PbError code."""
    return pb_error_text(err)


def walk(bytes data):
    """Schema-less walk of one message: ``[(field, wire_type, value), ...]``.

    value: int for varint/fixed (unsigned), bytes for length-delimited, None for a skipped group.
    Raises ValueError(reason) on malformed input. Test aid: the same inline helpers as the parsers.
    """
    cdef PbCursor c
    cdef uint32_t f
    cdef int wt, r
    cdef uint64_t v
    cdef uint32_t v32
    cdef const char* d
    cdef Py_ssize_t n
    out = []
    pb_init(&c, <const char*>data, len(data))
    while pb_more(&c):
        r = pb_read_tag(&c, &f, &wt)
        if r == PB_OK:
            if wt == PB_VARINT:
                r = pb_read_varint(&c, &v)
                if r == PB_OK:
                    out.append((f, wt, v))
            elif wt == PB_FIXED64:
                r = pb_read_fixed64(&c, &v)
                if r == PB_OK:
                    out.append((f, wt, v))
            elif wt == PB_FIXED32:
                r = pb_read_fixed32(&c, &v32)
                if r == PB_OK:
                    out.append((f, wt, v32))
            elif wt == PB_LEN:
                r = pb_read_len(&c, &d, &n)
                if r == PB_OK:
                    out.append((f, wt, d[:n]))
            else:
                r = pb_skip(&c, f, wt)
                if r == PB_OK:
                    out.append((f, wt, None))
        if r != PB_OK:
            raise ValueError("%s at offset %d" % (pb_error_text(r), pb_offset(&c)))
    return out


def packed_varints(bytes data):
    """Decode a packed repeated varint payload (the bytes of one PB_LEN field)."""
    cdef PbCursor c
    cdef uint64_t v
    cdef int r
    out = []
    pb_init(&c, <const char*>data, len(data))
    while pb_more(&c):
        r = pb_read_varint(&c, &v)
        if r != PB_OK:
            raise ValueError(pb_error_text(r))
        out.append(v)
    return out


def zigzag64(uint64_t v):
    return pb_zigzag64(v)


def utf8_valid(bytes data):
    return pb_utf8_valid(<const char*>data, len(data))
