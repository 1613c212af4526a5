# cexnode._core.parsers.json — a JSON struct cursor over const char* (pgproto style). THE CONTRACT.
#
# Inline, allocation-free helpers; every read is bounds-checked against `end`. The cursor walks the
# frame once: callers iterate objects/arrays with jc_obj_first/jc_obj_next and jc_arr_first/
# jc_arr_next and read scalars as JStr slices (raw text, escapes NOT decoded), skipping values they
# do not use with jc_skip (which validates them). On error a helper returns -1 and records the
# error code and position in the cursor; callers abandon the frame (cursor position unspecified).
#
# Validity is RFC 8259 as orjson enforces it (the reference the differential tests compare with):
#   * whitespace is only ' ', '\t', '\n', '\r'; a value may be surrounded by it; nothing else may
#     follow the top-level value;
#   * strings: no raw control character < 0x20; escapes \" \\ \/ \b \f \n \r \t \uXXXX only; a \u
#     high surrogate must be followed by a \u low surrogate and a lone low surrogate is invalid;
#     raw bytes must be strict UTF-8 (no overlongs, no encoded surrogates, <= U+10FFFF);
#   * numbers: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? (no limit on size; callers that need
#     an integer parse the token themselves, exactly, never through a double);
#   * literals true, false, null; nesting deeper than JSON_MAX_DEPTH is rejected.
# Duplicate object keys are not an error; parsers built on this cursor let the LAST one win (as
# orjson does).
from libc.stdint cimport int64_t, uint64_t, uint32_t
from libc.string cimport memcmp


cdef enum JsonKind:
    JK_NONE = 0          # absent (a field never seen)
    JK_STRING = 1        # JStr.p/n: the bytes between the quotes; JStr.esc: contains escapes
    JK_NUMBER = 2        # JStr.p/n: the number token
    JK_TRUE = 3
    JK_FALSE = 4
    JK_NULL = 5
    JK_OBJECT = 6        # JStr.p/n: the whole value text, '{' .. '}'
    JK_ARRAY = 7         # JStr.p/n: the whole value text, '[' .. ']'


cdef enum JsonError:
    JE_OK = 0
    JE_EOF = 1           # the text ends inside a value
    JE_SYNTAX = 2        # unexpected character
    JE_STRING = 3        # raw control character in a string / bad escape
    JE_UTF8 = 4          # invalid UTF-8 or unpaired surrogate escape
    JE_NUMBER = 5        # malformed number
    JE_DEPTH = 6         # nested deeper than JSON_MAX_DEPTH
    JE_TRAILING = 7      # bytes after the top-level value


cdef enum:
    JSON_MAX_DEPTH = 512


# Byte classes for the string scanner: 0 = plain ASCII byte copied as is; 1 = '"', '\\', a control
# character < 0x20 or a byte >= 0x80 (each needs a closer look). One table load per byte.
cdef extern from *:
    """
    static const unsigned char cexnode_json_special[256] = {
        1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
        0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
        1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
        1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
        1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1
    };
    """
    const unsigned char* cexnode_json_special


cdef struct JStr:
    const char* p
    Py_ssize_t n
    int kind             # JsonKind
    bint esc             # JK_STRING with at least one backslash escape
    bint is_int          # JK_NUMBER without fraction or exponent


cdef struct JsonCursor:
    const char* p        # next byte
    const char* end      # one past the last byte
    const char* start    # first byte of the frame (error offsets)
    int err              # JsonError of the first failure
    const char* err_at


cdef inline Py_ssize_t jc_diff(const void* a, const void* b) noexcept nogil:
    # a - b for a >= b in one buffer; through size_t so debug builds (overflowcheck) stay clean
    return <Py_ssize_t>(<size_t>a - <size_t>b)


cdef inline void jc_init(JsonCursor* c, const char* p, Py_ssize_t n) noexcept nogil:
    c.p = p
    c.end = p + n
    c.start = p
    c.err = JE_OK
    c.err_at = p


cdef inline int jc_fail(JsonCursor* c, int err) noexcept nogil:
    if c.err == JE_OK:
        c.err = err
        c.err_at = c.p
    return -1


cdef inline void jc_ws(JsonCursor* c) noexcept nogil:
    cdef char ch
    while c.p < c.end:
        ch = c.p[0]
        if ch == c' ' or ch == c'\n' or ch == c'\r' or ch == c'\t':
            c.p += 1
        else:
            return


cdef inline Py_ssize_t jc_offset(const JsonCursor* c) noexcept nogil:
    return jc_diff(c.err_at, c.start)


cdef inline int _jc_hex(char ch) noexcept nogil:
    if c'0' <= ch <= c'9':
        return ch - c'0'
    if c'a' <= ch <= c'f':
        return ch - c'a' + 10
    if c'A' <= ch <= c'F':
        return ch - c'A' + 10
    return -1


cdef inline int _jc_u4(const char* p) noexcept nogil:
    # 4 hex digits (caller checked they are in bounds) -> 0..0xffff, -1 when not hex
    cdef int a = _jc_hex(p[0]), b = _jc_hex(p[1]), d = _jc_hex(p[2]), e = _jc_hex(p[3])
    if a < 0 or b < 0 or d < 0 or e < 0:
        return -1
    return (a << 12) | (b << 8) | (d << 4) | e


cdef inline Py_ssize_t _jc_utf8_len(const unsigned char* p, const unsigned char* end) noexcept nogil:
    # Length of the strict UTF-8 sequence starting with a byte >= 0x80 at p, 0 when invalid.
    cdef unsigned char b0 = p[0], b1, b2, b3
    cdef Py_ssize_t left = jc_diff(end, p)
    if b0 < 0xC2 or b0 > 0xF4:
        return 0
    if left < 2:
        return 0
    b1 = p[1]
    if b0 < 0xE0:
        return 2 if (b1 & 0xC0) == 0x80 else 0
    if left < 3:
        return 0
    b2 = p[2]
    if (b2 & 0xC0) != 0x80:
        return 0
    if b0 < 0xF0:
        if b0 == 0xE0:
            if b1 < 0xA0 or b1 > 0xBF:
                return 0
        elif b0 == 0xED:
            if b1 < 0x80 or b1 > 0x9F:
                return 0
        elif (b1 & 0xC0) != 0x80:
            return 0
        return 3
    if left < 4:
        return 0
    b3 = p[3]
    if (b3 & 0xC0) != 0x80:
        return 0
    if b0 == 0xF0:
        if b1 < 0x90 or b1 > 0xBF:
            return 0
    elif b0 == 0xF4:
        if b1 < 0x80 or b1 > 0x8F:
            return 0
    elif (b1 & 0xC0) != 0x80:
        return 0
    return 4


cdef inline int jc_string(JsonCursor* c, JStr* out) noexcept nogil:
    # At '"'. Validates the string; out = the raw bytes between the quotes. Small enough to inline:
    # plain ASCII without escapes is the whole story on the wire; anything else takes the full path.
    cdef const char* p = c.p + 1
    cdef const char* end = c.end
    while p < end and not cexnode_json_special[<unsigned char>p[0]]:
        p += 1
    if p < end and p[0] == c'"':
        out.p = c.p + 1
        out.n = jc_diff(p, out.p)
        out.kind = JK_STRING
        out.esc = False
        out.is_int = False
        c.p = p + 1
        return 0
    return _jc_string_full(c, out)


cdef inline int _jc_string_full(JsonCursor* c, JStr* out) noexcept nogil:
    cdef const char* p = c.p + 1
    cdef const char* end = c.end
    cdef unsigned char ch
    cdef int u, v
    cdef Py_ssize_t k
    out.esc = False
    out.kind = JK_STRING
    out.is_int = False
    while p < end:
        ch = <unsigned char>p[0]
        if not cexnode_json_special[ch]:
            p += 1
            continue
        if ch == c'"':
            out.p = c.p + 1
            out.n = jc_diff(p, out.p)
            c.p = p + 1
            return 0
        if ch == c'\\':
            out.esc = True
            if p + 1 >= end:
                c.p = p
                return jc_fail(c, JE_EOF)
            ch = <unsigned char>p[1]
            if ch == c'u':
                if jc_diff(end, p) < 6:
                    c.p = p
                    return jc_fail(c, JE_EOF)
                u = _jc_u4(p + 2)
                if u < 0:
                    c.p = p
                    return jc_fail(c, JE_STRING)
                if 0xDC00 <= u <= 0xDFFF:
                    c.p = p
                    return jc_fail(c, JE_UTF8)
                if 0xD800 <= u <= 0xDBFF:
                    if jc_diff(end, p) < 12 or p[6] != c'\\' or p[7] != c'u':
                        c.p = p
                        return jc_fail(c, JE_UTF8)
                    v = _jc_u4(p + 8)
                    if v < 0xDC00 or v > 0xDFFF:
                        c.p = p
                        return jc_fail(c, JE_UTF8)
                    p += 12
                else:
                    p += 6
                continue
            if not (ch == c'"' or ch == c'\\' or ch == c'/' or ch == c'b' or ch == c'f' or ch == c'n'
                    or ch == c'r' or ch == c't'):
                c.p = p
                return jc_fail(c, JE_STRING)
            p += 2
            continue
        if ch < 0x20:
            c.p = p
            return jc_fail(c, JE_STRING)
        if ch >= 0x80:
            k = _jc_utf8_len(<const unsigned char*>p, <const unsigned char*>end)
            if k == 0:
                c.p = p
                return jc_fail(c, JE_UTF8)
            p += k
            continue
        p += 1
    c.p = p
    return jc_fail(c, JE_EOF)


cdef inline int jc_number(JsonCursor* c, JStr* out) noexcept nogil:
    cdef const char* p = c.p
    cdef const char* end = c.end
    cdef const char* s
    out.kind = JK_NUMBER
    out.esc = False
    out.is_int = True
    if p < end and p[0] == c'-':
        p += 1
    if p >= end:
        c.p = p
        return jc_fail(c, JE_EOF)
    if p[0] == c'0':
        p += 1
    elif c'1' <= p[0] <= c'9':
        p += 1
        while p < end and c'0' <= p[0] <= c'9':
            p += 1
    else:
        c.p = p
        return jc_fail(c, JE_NUMBER)
    if p < end and p[0] == c'.':
        out.is_int = False
        p += 1
        s = p
        while p < end and c'0' <= p[0] <= c'9':
            p += 1
        if p == s:
            c.p = p
            return jc_fail(c, JE_NUMBER if p < end else JE_EOF)
    if p < end and (p[0] == c'e' or p[0] == c'E'):
        out.is_int = False
        p += 1
        if p < end and (p[0] == c'+' or p[0] == c'-'):
            p += 1
        s = p
        while p < end and c'0' <= p[0] <= c'9':
            p += 1
        if p == s:
            c.p = p
            return jc_fail(c, JE_NUMBER if p < end else JE_EOF)
    out.p = c.p
    out.n = jc_diff(p, c.p)
    c.p = p
    return 0


cdef inline int _jc_lit(JsonCursor* c, const char* lit, Py_ssize_t n) noexcept nogil:
    if jc_diff(c.end, c.p) < n:
        if memcmp(c.p, lit, <size_t>jc_diff(c.end, c.p)) == 0:
            return jc_fail(c, JE_EOF)
        return jc_fail(c, JE_SYNTAX)
    if memcmp(c.p, lit, <size_t>n) != 0:
        return jc_fail(c, JE_SYNTAX)
    c.p += n
    return 0


# Reads one scalar (string, number, literal) into out; an object/array is skipped (validated) and
# out covers its whole text with kind JK_OBJECT/JK_ARRAY. At a value (whitespace already skipped).
cdef inline int jc_value(JsonCursor* c, JStr* out) noexcept nogil:
    cdef char ch
    if c.p < c.end:
        ch = c.p[0]
        if ch == c'"':
            return jc_string(c, out)
        if ch == c'-' or (c'0' <= ch <= c'9'):
            return jc_number(c, out)
    return _jc_value_full(c, out)


cdef inline int _jc_value_full(JsonCursor* c, JStr* out) noexcept nogil:
    cdef char ch
    cdef const char* s
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    ch = c.p[0]
    out.esc = False
    out.is_int = False
    if ch == c'"':
        return jc_string(c, out)
    if ch == c'{' or ch == c'[':
        s = c.p
        if jc_skip(c, 0) < 0:
            return -1
        out.p = s
        out.n = jc_diff(c.p, s)
        out.kind = JK_OBJECT if ch == c'{' else JK_ARRAY
        return 0
    out.p = c.p
    if ch == c't':
        out.kind = JK_TRUE
        out.n = 4
        return _jc_lit(c, "true", 4)
    if ch == c'f':
        out.kind = JK_FALSE
        out.n = 5
        return _jc_lit(c, "false", 5)
    if ch == c'n':
        out.kind = JK_NULL
        out.n = 4
        return _jc_lit(c, "null", 4)
    if ch == c'-' or (c'0' <= ch <= c'9'):
        return jc_number(c, out)
    return jc_fail(c, JE_SYNTAX)


# Validates and skips one value (at the value). Recursion bounded by JSON_MAX_DEPTH.
cdef inline int jc_skip(JsonCursor* c, int depth) noexcept nogil:
    cdef JStr tmp
    cdef char ch, close
    cdef int r
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    ch = c.p[0]
    if ch == c'"':
        return jc_string(c, &tmp)
    if ch == c'-' or (c'0' <= ch <= c'9'):
        return jc_number(c, &tmp)
    if ch == c'{' or ch == c'[':
        if depth >= JSON_MAX_DEPTH:
            return jc_fail(c, JE_DEPTH)
        close = c'}' if ch == c'{' else c']'
        c.p += 1
        jc_ws(c)
        if c.p < c.end and c.p[0] == close:
            c.p += 1
            return 0
        while True:
            if ch == c'{':
                if c.p >= c.end:
                    return jc_fail(c, JE_EOF)
                if c.p[0] != c'"':
                    return jc_fail(c, JE_SYNTAX)
                if jc_string(c, &tmp) < 0:
                    return -1
                jc_ws(c)
                if c.p >= c.end:
                    return jc_fail(c, JE_EOF)
                if c.p[0] != c':':
                    return jc_fail(c, JE_SYNTAX)
                c.p += 1
                jc_ws(c)
            if jc_skip(c, depth + 1) < 0:
                return -1
            jc_ws(c)
            if c.p >= c.end:
                return jc_fail(c, JE_EOF)
            if c.p[0] == c',':
                c.p += 1
                jc_ws(c)
                continue
            if c.p[0] == close:
                c.p += 1
                return 0
            return jc_fail(c, JE_SYNTAX)
    return jc_value(c, &tmp)


# Objects: jc_obj_first at '{' (whitespace before it skipped) -> 1 with the first key read and the
# cursor at its value (':' and whitespace consumed; c.p < c.end), 0 for '{}' (consumed), -1 error.
# jc_obj_next after a value -> 1 next key as above, 0 at '}' (consumed), -1 error.
cdef inline int _jc_key(JsonCursor* c, JStr* key) noexcept nogil:
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    if c.p[0] != c'"':
        return jc_fail(c, JE_SYNTAX)
    if jc_string(c, key) < 0:
        return -1
    jc_ws(c)
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    if c.p[0] != c':':
        return jc_fail(c, JE_SYNTAX)
    c.p += 1
    jc_ws(c)
    if c.p >= c.end:                        # 1 always leaves the cursor on a byte of the value
        return jc_fail(c, JE_EOF)
    return 1


cdef inline int jc_obj_first(JsonCursor* c, JStr* key) noexcept nogil:
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    if c.p[0] != c'{':
        return jc_fail(c, JE_SYNTAX)
    c.p += 1
    jc_ws(c)
    if c.p < c.end and c.p[0] == c'}':
        c.p += 1
        return 0
    return _jc_key(c, key)


cdef inline int jc_obj_next(JsonCursor* c, JStr* key) noexcept nogil:
    jc_ws(c)
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    if c.p[0] == c',':
        c.p += 1
        jc_ws(c)
        return _jc_key(c, key)
    if c.p[0] == c'}':
        c.p += 1
        return 0
    return jc_fail(c, JE_SYNTAX)


# Arrays: jc_arr_first at '[' -> 1 with the cursor at the first element, 0 for '[]', -1 error;
# jc_arr_next after an element -> 1 at the next element, 0 at ']' (consumed), -1 error. A 1 always
# leaves c.p < c.end (callers may peek at c.p[0]).
cdef inline int jc_arr_first(JsonCursor* c) noexcept nogil:
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    if c.p[0] != c'[':
        return jc_fail(c, JE_SYNTAX)
    c.p += 1
    jc_ws(c)
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    if c.p[0] == c']':
        c.p += 1
        return 0
    return 1


cdef inline int jc_arr_next(JsonCursor* c) noexcept nogil:
    jc_ws(c)
    if c.p >= c.end:
        return jc_fail(c, JE_EOF)
    if c.p[0] == c',':
        c.p += 1
        jc_ws(c)
        if c.p >= c.end:                    # 1 always leaves the cursor on a byte of the element
            return jc_fail(c, JE_EOF)
        return 1
    if c.p[0] == c']':
        c.p += 1
        return 0
    return jc_fail(c, JE_SYNTAX)


# After the top-level value: only whitespace may follow.
cdef inline int jc_end(JsonCursor* c) noexcept nogil:
    jc_ws(c)
    if c.p != c.end:
        return jc_fail(c, JE_TRAILING)
    return 0


# ---- decoding escapes (input already validated by jc_string) ----------------------------------------

# Writes the UTF-8 bytes of the validated string s (raw, between the quotes) to out (capacity >= s.n:
# decoding never grows a string); returns the decoded length.
cdef inline Py_ssize_t jc_unescape(const char* p, Py_ssize_t n, char* out) noexcept nogil:
    cdef Py_ssize_t i = 0, k = 0
    cdef char ch
    cdef uint32_t u, v
    while i < n:
        ch = p[i]
        if ch != c'\\':
            out[k] = ch
            k += 1
            i += 1
            continue
        ch = p[i + 1]
        if ch == c'u':
            u = <uint32_t>_jc_u4(p + i + 2)
            i += 6
            if 0xD800 <= u <= 0xDBFF:
                v = <uint32_t>_jc_u4(p + i + 2)
                i += 6
                u = 0x10000 + ((u - 0xD800) << 10) + (v - 0xDC00)
            if u < 0x80:
                out[k] = <char>u
                k += 1
            elif u < 0x800:
                out[k] = <char>(0xC0 | (u >> 6))
                out[k + 1] = <char>(0x80 | (u & 0x3F))
                k += 2
            elif u < 0x10000:
                out[k] = <char>(0xE0 | (u >> 12))
                out[k + 1] = <char>(0x80 | ((u >> 6) & 0x3F))
                out[k + 2] = <char>(0x80 | (u & 0x3F))
                k += 3
            else:
                out[k] = <char>(0xF0 | (u >> 18))
                out[k + 1] = <char>(0x80 | ((u >> 12) & 0x3F))
                out[k + 2] = <char>(0x80 | ((u >> 6) & 0x3F))
                out[k + 3] = <char>(0x80 | (u & 0x3F))
                k += 4
            continue
        if ch == c'b':
            out[k] = c'\b'
        elif ch == c'f':
            out[k] = c'\f'
        elif ch == c'n':
            out[k] = c'\n'
        elif ch == c'r':
            out[k] = c'\r'
        elif ch == c't':
            out[k] = c'\t'
        else:
            out[k] = ch            # " \ /
        k += 1
        i += 2
    return k


# Key / short string comparison with a literal, decoding escapes when present (a key may be escaped).
# The fast path is small enough to inline (memcmp of a constant length becomes a few compares).
cdef inline bint jc_eq(const JStr* s, const char* lit, Py_ssize_t n) noexcept nogil:
    if not s.esc:
        return s.n == n and memcmp(s.p, lit, <size_t>n) == 0
    return _jc_eq_esc(s, lit, n)


cdef inline bint _jc_eq_esc(const JStr* s, const char* lit, Py_ssize_t n) noexcept nogil:
    cdef char buf[400]
    cdef Py_ssize_t m
    if s.n > 6 * n or s.n > 400:          # each decoded byte takes at most 6 raw bytes (\u0041)
        return False
    m = jc_unescape(s.p, s.n, buf)
    return m == n and memcmp(buf, lit, <size_t>n) == 0


# Exact integer value of a JK_NUMBER token (is_int) that fits int64; 0 ok, -1 otherwise.
cdef inline int jc_int64(const char* p, Py_ssize_t n, int64_t* out) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef bint neg = False
    cdef uint64_t mag = 0, limit, d
    if 0 < n <= 18 and p[0] != c'-':              # cannot overflow: no checks per digit
        while i < n:
            if p[i] < c'0' or p[i] > c'9':
                return -1
            mag = mag * 10 + <uint64_t>(p[i] - c'0')
            i += 1
        out[0] = <int64_t>mag
        return 0
    if n > 0 and p[0] == c'-':
        neg = True
        i = 1
    if i >= n:
        return -1
    limit = <uint64_t>9223372036854775808ULL if neg else <uint64_t>9223372036854775807ULL
    while i < n:
        if p[i] < c'0' or p[i] > c'9':
            return -1
        d = <uint64_t>(p[i] - c'0')
        if mag > (limit - d) // 10:
            return -1
        mag = mag * 10 + d
        i += 1
    if neg:
        out[0] = (-<int64_t>(mag - 1) - 1) if mag > 0 else 0     # no unsigned wrap (debug builds check)
    else:
        out[0] = <int64_t>mag
    return 0


# An integer token that orjson (and Python's json into a 64-bit slot) keeps as an integer:
# -2**63 <= v < 2**64. Larger integer tokens become doubles there, so callers that mirror orjson's
# types treat them as non-integers.
cdef inline bint jc_is_int64_or_uint64(const JStr* s) noexcept nogil:
    cdef Py_ssize_t i = 0, nd
    cdef const char* lim
    if s.kind != JK_NUMBER or not s.is_int:
        return False
    if s.n > 0 and s.p[0] == c'-':
        i = 1
        lim = "9223372036854775808"
    else:
        lim = "18446744073709551615"
    nd = s.n - i
    if nd < 19 or (i == 1 and nd == 19 and memcmp(s.p + 1, lim, 19) <= 0):
        return True
    if i == 0 and (nd == 19 or (nd == 20 and memcmp(s.p, lim, 20) <= 0)):
        return True
    return False


# Python objects for the control path (cold): the value at the cursor as dict/list/str/int/float/
# bool/None, exactly as orjson would build it (integers outside [-2**63, 2**64) become floats like
# orjson's). Defined in json.pyx.
cdef object jc_to_py(JsonCursor* c, int depth)
cdef str jc_error_text(int err)
cdef str jc_str(const char* p, Py_ssize_t n, bint esc)     # a JStr's decoded text as str
