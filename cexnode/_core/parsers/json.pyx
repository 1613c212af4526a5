"""JSON struct cursor (inline helpers and contract in json.pxd).

This module holds the cold parts: error texts, decoding a string slice to ``str``, and building
Python objects for control frames (acks, errors, private pushes). ``loads`` / ``scan`` are Python
entry points used by the tests to check the cursor against orjson.
"""
from libc.stdint cimport int64_t
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.unicode cimport PyUnicode_DecodeUTF8

_TEXT = {
    JE_EOF: "unexpected end of text",
    JE_SYNTAX: "unexpected character",
    JE_STRING: "control character or bad escape in a string",
    JE_UTF8: "invalid UTF-8 or unpaired surrogate",
    JE_NUMBER: "malformed number",
    JE_DEPTH: "nested too deep",
    JE_TRAILING: "bytes after the JSON value",
}

cdef object _U64_LIMIT = 2 ** 64
cdef object _I64_MIN = -(2 ** 63)


cdef str jc_error_text(int err):
    return _TEXT.get(err, "json error %d" % err)


cdef str jc_str(const char* p, Py_ssize_t n, bint esc):
    cdef char* tmp
    cdef Py_ssize_t m
    if not esc:
        return PyUnicode_DecodeUTF8(p, n, NULL)
    tmp = <char*>PyMem_Malloc(n + 1)
    if tmp == NULL:
        raise MemoryError()
    try:
        m = jc_unescape(p, n, tmp)
        return PyUnicode_DecodeUTF8(tmp, m, NULL)
    finally:
        PyMem_Free(tmp)


cdef object _number(const JStr* s):
    cdef int64_t v
    cdef bytes text = s.p[:s.n]
    if s.is_int:
        if jc_int64(s.p, s.n, &v) == 0:
            return v
        iv = int(text)
        if _I64_MIN <= iv < _U64_LIMIT:          # orjson: u64 range stays an int
            return iv
    return float(text)                           # orjson: other numbers are doubles


cdef object jc_to_py(JsonCursor* c, int depth):
    # Returns the value, or None with c.err set on a JSON error (callers check c.err).
    cdef JStr s
    cdef JStr key
    cdef int r
    cdef dict d
    cdef list a
    cdef object v
    if c.p >= c.end:
        jc_fail(c, JE_EOF)
        return None
    if depth >= JSON_MAX_DEPTH and (c.p[0] == c'{' or c.p[0] == c'['):
        jc_fail(c, JE_DEPTH)
        return None
    if c.p[0] == c'{':
        d = {}
        r = jc_obj_first(c, &key)
        while r == 1:
            k = jc_str(key.p, key.n, key.esc)
            v = jc_to_py(c, depth + 1)
            if c.err != JE_OK:
                return None
            d[k] = v
            r = jc_obj_next(c, &key)
        return d if r == 0 else None
    if c.p[0] == c'[':
        a = []
        r = jc_arr_first(c)
        while r == 1:
            v = jc_to_py(c, depth + 1)
            if c.err != JE_OK:
                return None
            a.append(v)
            r = jc_arr_next(c)
        return a if r == 0 else None
    if jc_value(c, &s) < 0:
        return None
    if s.kind == JK_STRING:
        return jc_str(s.p, s.n, s.esc)
    if s.kind == JK_NUMBER:
        return _number(&s)
    if s.kind == JK_TRUE:
        return True
    if s.kind == JK_FALSE:
        return False
    return None


class JsonDecodeError(ValueError):
    """Invalid JSON text (``loads``): message names the problem and the byte offset."""


def loads(bytes text):
    """Parse a whole JSON text with the cursor into Python objects (tests: compared with orjson).

    Raises
    ------
    JsonDecodeError
        With the reason and the byte offset.
    """
    cdef JsonCursor c
    jc_init(&c, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
    jc_ws(&c)
    v = jc_to_py(&c, 0)
    if c.err == JE_OK:
        jc_end(&c)
    if c.err != JE_OK:
        raise JsonDecodeError("json: %s at offset %d" % (jc_error_text(c.err), jc_offset(&c)))
    return v


def scan(bytes text):
    """Validate a whole JSON text with ``jc_skip`` only; returns None or the error text (tests)."""
    cdef JsonCursor c
    jc_init(&c, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
    jc_ws(&c)
    if jc_skip(&c, 0) == 0:
        jc_end(&c)
    if c.err != JE_OK:
        return "json: %s at offset %d" % (jc_error_text(c.err), jc_offset(&c))
    return None
