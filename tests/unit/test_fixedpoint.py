"""cexnode._core.fixedpoint against the Decimal oracle (tests/reference/fixedpoint_ref.py)."""
import pytest
from hypothesis import given, settings, strategies as st

from cexnode._core import fixedpoint as fp
from reference.fixedpoint_ref import (DEC_BAD_SCALE, DEC_EMPTY, DEC_OK, DEC_OVERFLOW, DEC_SYNTAX,
                                      DEC_TOO_PRECISE, INT64_MAX, INT64_MIN, format_ref, natural_scale_ref,
                                      parse_ref)

N = settings(max_examples=3_000, derandomize=True, deadline=None)
scales = st.integers(0, 18)


def check(s, scale):
    code, val = parse_ref(s, scale)
    assert fp.error_code(s, scale) == code, (s, scale)
    if code == DEC_OK:
        assert fp.parse(s, scale) == val
    else:
        with pytest.raises(ValueError):
            fp.parse(s, scale)


@N
@given(st.text(alphabet="0123456789.-+e ", max_size=25), st.integers(-1, 19))
def test_parse_any_text_matches_decimal(s, scale):
    check(s, scale)
    check(s.encode(), scale)


@N
@given(st.booleans(), st.text("0123456789", min_size=1, max_size=22),
       st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=24)), scales)
def test_parse_plain_decimals_matches_decimal(neg, ip, fr, scale):
    s = ("-" if neg else "") + ip + ("" if fr is None else "." + fr)
    check(s, scale)


@N
@given(st.integers(INT64_MIN, INT64_MAX), scales, st.integers(0, 6))
def test_format_canonical_and_round_trip(m, scale, extra_zeros):
    text = fp.format(m, scale)
    assert text == format_ref(m, scale)
    assert fp.parse(text, scale) == m
    if "." in text:
        assert fp.parse(text + "0" * extra_zeros, scale) == m   # trailing zeros are exact


@pytest.mark.parametrize("s,scale,want", [
    ("1.50000", 2, 150), ("0", 0, 0), ("-0", 3, 0), ("-0.000", 3, 0), ("00012.3400", 4, 123400),
    ("9223372036854775807", 0, INT64_MAX), ("-9223372036854775808", 0, INT64_MIN),
    ("9.223372036854775807", 18, INT64_MAX), ("29291.4", 8, 2929140000000), ("0.0001778", 7, 1778),
    (b"61759.73", 2, 6175973),
])
def test_parse_examples(s, scale, want):
    assert fp.parse(s, scale) == want


@pytest.mark.parametrize("s,scale,code,word", [
    ("", 2, DEC_EMPTY, "empty"), ("-", 2, DEC_SYNTAX, "syntax"), ("1.", 2, DEC_SYNTAX, "syntax"),
    (".5", 2, DEC_SYNTAX, "syntax"), ("+1", 2, DEC_SYNTAX, "syntax"), ("1e5", 2, DEC_SYNTAX, "syntax"),
    (" 1", 2, DEC_SYNTAX, "syntax"), ("1 ", 2, DEC_SYNTAX, "syntax"), ("1.2.3", 5, DEC_SYNTAX, "syntax"),
    ("--1", 0, DEC_SYNTAX, "syntax"), ("１", 0, DEC_SYNTAX, "syntax"),
    ("1.234", 2, DEC_TOO_PRECISE, "too precise"), ("0.0000001", 6, DEC_TOO_PRECISE, "too precise"),
    ("9223372036854775808", 0, DEC_OVERFLOW, "overflow"), ("-9223372036854775809", 0, DEC_OVERFLOW, "overflow"),
    ("10", 18, DEC_OVERFLOW, "overflow"), ("1", 19, DEC_BAD_SCALE, "bad scale"), ("1", -1, DEC_BAD_SCALE, "bad scale"),
])
def test_parse_errors_name_the_reason(s, scale, code, word):
    assert fp.error_code(s, scale) == code
    with pytest.raises(ValueError, match=word):
        fp.parse(s, scale)


def test_format_examples_and_errors():
    assert fp.format(150, 2) == "1.5"
    assert fp.format(0, 18) == "0"
    assert fp.format(-1, 3) == "-0.001"
    assert fp.format(INT64_MIN, 18) == "-9.223372036854775808"
    assert fp.format(1000, 0) == "1000"
    assert fp.format(1000, 3) == "1"
    with pytest.raises(ValueError, match="scale"):
        fp.format(1, 19)
    with pytest.raises(TypeError):
        fp.parse(1.5, 2)


# ---- trailing zeros (issue 20 item 2): "41.847400000000000000" is 41.8474 at every scale ----------

plain = st.builds(lambda neg, ip, fr: ("-" if neg else "") + ip + ("" if fr is None else "." + fr),
                  st.booleans(), st.text("0123456789", min_size=1, max_size=20),
                  st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=20)))


def _pad(s, k):
    """``s`` with k trailing fractional zeros (a '.' added to an integer)."""
    if k == 0:
        return s
    return s + ("0" * k if "." in s else "." + "0" * k)


def _outcome(s, scale):
    code = fp.error_code(s, scale)
    return code, (fp.parse(s, scale) if code == DEC_OK else None)


@N
@given(plain, st.integers(1, 24), st.integers(-1, 19))
def test_trailing_zeros_parse_like_without_them_at_every_scale(s, k, scale):
    padded = _pad(s, k)
    assert _outcome(padded, scale) == _outcome(s, scale) == parse_ref(padded, scale) == parse_ref(s, scale)


@N
@given(plain, st.integers(0, 24))
def test_natural_scale_ignores_trailing_zeros_and_matches_the_oracle(s, k):
    padded = _pad(s, k)
    n = fp.natural_scale_of(padded)
    assert n == fp.natural_scale_of(s) == natural_scale_ref(padded) == natural_scale_ref(s)
    assert n == fp.natural_scale_of(padded.encode())
    # the scale decode uses never makes a representable value too precise, and is the least one
    if parse_ref(s, 18)[0] == DEC_OK and n < 18:
        assert parse_ref(padded, n)[0] in (DEC_OK, DEC_OVERFLOW)
        assert n == 0 or parse_ref(padded, n - 1)[0] == DEC_TOO_PRECISE


@N
@given(st.text(alphabet="0123456789.-+e ", max_size=25))
def test_natural_scale_of_any_text_matches_the_oracle(s):
    assert fp.natural_scale_of(s) == natural_scale_ref(s)


@pytest.mark.parametrize("s,scale", [
    # 18-decimal strings as MEXC writes them (reference exchange-payloads/mexc: exchangeInfo 2023,
    # capital/config/getall) and the one from issue 20
    ("41.847400000000000000", 4), ("24000000.000000000000000000", 0), ("0.000100000000000000", 4),
    ("5.000000000000000000", 0), ("0.001000000000000000", 3), ("7", 0), ("2.0", 0),
    ("0.1234567890123456789", 18)])
def test_natural_scale_examples(s, scale):
    assert fp.natural_scale_of(s) == scale
    code = fp.error_code(s, scale)
    assert code == (DEC_TOO_PRECISE if len(s.rstrip("0").partition(".")[2]) > 18 else DEC_OK)


def test_long_decimal_from_issue_20_at_every_scale():
    for scale in range(19):
        code, val = parse_ref("41.8474", scale)
        assert _outcome("41.847400000000000000", scale) == (code, val)
    assert fp.parse("41.847400000000000000", 8) == 4184740000
    assert fp.error_code("41.847400000000000000", 18) == DEC_OVERFLOW      # 41.8474e18 > int64


def test_bench_helper_counts_and_checks():
    n, checksum = fp.bench_parse_fields(b"1.5 2.25  -3", 2, 10)
    assert n == 30 and checksum == 10 * (150 + 225 - 300)
    with pytest.raises(ValueError):
        fp.bench_parse_fields(b"1.5 x", 2, 1)


def _sample_strings():
    """Every decimal string in the venue samples (tests/resources/core): prices, sizes, fees, ..."""
    import json
    import pathlib
    import re

    out = set()

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, str) and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", x):
            out.add(x)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            out.add(repr(x))
    for p in (pathlib.Path(__file__).resolve().parents[1] / "resources" / "core").rglob("*.json"):
        walk(json.loads(p.read_text()))
    return sorted(out)


def test_real_sample_strings_match_decimal_at_every_scale():
    strings = _sample_strings()
    assert len(strings) > 100 and "0.0001778" in strings and "115765.1" in strings
    for s in strings:
        for scale in range(0, 19):
            check(s, scale)
            check(s.encode(), scale)
            code, val = parse_ref(s, scale)
            if code == DEC_OK:
                assert fp.format(val, scale) == format_ref(val, scale)


@settings(max_examples=2_500, derandomize=True, deadline=None)
@given(st.integers(0, 2 ** 64 - 1))
def test_ten_thousand_cases_each_vs_decimal(seed):
    """2,500 seeds x 4 = 10,000 cases of each kind vs the Decimal oracle (cheaper than drawing
    them one by one through hypothesis): any text, plain decimals near the int64 edge, format."""
    import random

    rnd = random.Random(seed)
    for _ in range(4):
        s = "".join(rnd.choice("0123456789.-+e ") for _ in range(rnd.randrange(0, 26)))
        check(s, rnd.randrange(-1, 20))
        ip = "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(1, 23)))
        fr = "".join(rnd.choice("0123456789") for _ in range(rnd.randrange(0, 25)))
        check(("-" if rnd.random() < 0.5 else "") + ip + ("." + fr if fr else ""), rnd.randrange(0, 19))
        m = rnd.choice([rnd.randint(INT64_MIN, INT64_MAX), rnd.randint(-10 ** 6, 10 ** 6),
                        INT64_MIN + rnd.randrange(3), INT64_MAX - rnd.randrange(3)])
        scale = rnd.randrange(0, 19)
        text = fp.format(m, scale)
        assert text == format_ref(m, scale) and fp.parse(text, scale) == m


@N
@given(st.integers(0, 10**30), scales)
def test_order_text_matches_the_decimal_formatting_it_replaced(m, scale):
    """OrderRequest.qty_text / price_text (mantissa_text: C formatting, Decimal beyond int64) give
    the adapters' former text, fmt_decimal(mantissa_to_decimal(m, scale)), for any mantissa."""
    from cexnode.adapters.live import fmt_decimal
    from cexnode.execution.gateway import OrderRequest, Side, mantissa_text, mantissa_to_decimal

    want = fmt_decimal(mantissa_to_decimal(m, scale))
    assert mantissa_text(m, scale) == want
    o = OrderRequest(client_id="c", venue="v", symbol="B/Q", side=Side.BUY, qty_m=m, price_m=m, qty_scale=scale,
                     price_scale=scale)
    assert o.qty_text == o.price_text == want
    assert o.audit_brief()["qty"] == want
