"""Venue decimal strings <-> int64 mantissas (compiled; contract in fixedpoint.pxd)."""

MAX_SCALE: int

def parse(s: str | bytes, scale: int) -> int:
    """Mantissa of ``s`` at ``scale``; ValueError naming the reason (empty, syntax, too precise, overflow, bad scale)."""

def format(mantissa: int, scale: int) -> str:
    """Canonical decimal string: no trailing zeros, no trailing '.', "0" for zero."""

def natural_scale_of(s: str | bytes) -> int:
    """Fraction digits up to the last non-zero one, capped at 18 (trailing zeros never raise the scale)."""

def error_code(s: str | bytes, scale: int) -> int:
    """Raw DecimalError code (0 ok, 1 empty, 2 syntax, 3 too precise, 4 overflow, 5 bad scale)."""

def bench_parse_fields(buf: bytes, scale: int, repeats: int) -> tuple[int, int]:
    """Parse every space-separated field ``repeats`` times in C; (fields_parsed, checksum)."""
