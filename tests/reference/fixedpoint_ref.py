"""Oracle for cexnode._core.fixedpoint, written with Python's Decimal (exact, huge precision)."""
from __future__ import annotations

import decimal
import re

DEC_OK, DEC_EMPTY, DEC_SYNTAX, DEC_TOO_PRECISE, DEC_OVERFLOW, DEC_BAD_SCALE = range(6)
MAX_SCALE = 18
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1

_PLAIN = re.compile(rb"-?[0-9]+(\.[0-9]+)?")
_CTX = decimal.Context(prec=100_000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def parse_ref(s: str | bytes, scale: int) -> tuple[int, int | None]:
    """(error code, mantissa or None), precedence: bad scale, empty, syntax, too precise, overflow."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    if not 0 <= scale <= MAX_SCALE:
        return DEC_BAD_SCALE, None
    if not b:
        return DEC_EMPTY, None
    if _PLAIN.fullmatch(b) is None:
        return DEC_SYNTAX, None
    m = _CTX.multiply(decimal.Decimal(b.decode("ascii")), decimal.Decimal(10) ** scale)
    if m != m.to_integral_value():
        return DEC_TOO_PRECISE, None
    v = int(m)
    if not INT64_MIN <= v <= INT64_MAX:
        return DEC_OVERFLOW, None
    return DEC_OK, v


def format_ref(mantissa: int, scale: int) -> str:
    d = _CTX.divide(decimal.Decimal(mantissa), decimal.Decimal(10) ** scale)
    if d == 0:
        return "0"
    return format(d.normalize(_CTX), "f")


def natural_scale_ref(s: str | bytes) -> int:
    """The scale a decimal needs without an instrument (decode's raw mode): the exponent of its
    exact value, i.e. fraction digits without trailing zeros, capped at MAX_SCALE."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    _, dot, frac = b.partition(b".")
    return min(len(frac.rstrip(b"0")), MAX_SCALE) if dot else 0
