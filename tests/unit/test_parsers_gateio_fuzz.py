"""Differential fuzzing: Gate spot/futures parsers vs the orjson reference (tests/reference/gate_ref.py).

Frames are generated as Python objects (market pushes with valid and invalid values, control frames,
private pushes, API responses, unknown channels) and re-serialised by a test-side writer with random
key order, whitespace, escapes (keys included), extra fields and duplicate keys. Generated frames are
valid JSON and must give EXACTLY the reference's result, in raw decode mode (venue strings) and in
live mode (sink tuples at the instrument's scales). Mutated frames (byte flips, insertions,
deletions, truncations, duplicated slices) must also agree: identical events, or an error counted
by the parser where the reference errors too; never a crash, never a different value.
The JSON cursor alone is also compared with orjson on the same texts.

Normal profile: a few thousand cases; CEXNODE_LONG=1: >= 100,000 per venue (generated + mutated).
"""
import os
import random

import orjson
from hypothesis import given, settings, strategies as st

from cexnode._core import feed as F
from cexnode._core.parsers import json as J
from cexnode._core.parsers.recording import RecordingSink
from reference.gate_ref import reference_decode, reference_sink_events
from support.gate_parsers import INST, PARSERS, norm

LONG = bool(os.environ.get("CEXNODE_LONG"))
N_HYP = 3_000 if LONG else 200
N_RANDOM = 55_000 if LONG else 1_500      # per venue, each: one generated + one mutated frame
COUNTS = {}


# ---- randomness: one generator, two sources (hypothesis for shrinking, random for volume) ------------------

class RandomDraw:
    def __init__(self, rng):
        self.r = rng

    def int(self, a, b):
        return self.r.randint(a, b)

    def choice(self, seq):
        return seq[self.r.randrange(len(seq))]

    def p(self, prob):
        return self.r.random() < prob

    def shuffle(self, items):
        self.r.shuffle(items)
        return items


class HypothesisDraw(RandomDraw):
    def __init__(self, data):
        self.d = data

    def int(self, a, b):
        return self.d.draw(st.integers(a, b))

    def choice(self, seq):
        return seq[self.d.draw(st.integers(0, len(seq) - 1))]

    def p(self, prob):
        return self.d.draw(st.integers(0, 999)) < prob * 1000

    def shuffle(self, items):
        return list(self.d.draw(st.permutations(items))) if len(items) > 1 else items


# ---- the writer: any valid JSON text for a Python value ----------------------------------------------------

WS = ["", "", "", " ", "\n", "\t", "\r\n  ", "  "]
SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _ws(d):
    return d.choice(WS) if d.p(0.3) else ""


def _str(d, s, esc_p):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in SHORT and (o < 0x20 or ch in '"\\') and d.p(0.5):
            out.append(SHORT[ch])
        elif o < 0x20 or ch in '"\\' or (esc_p and d.p(esc_p)):
            if o >= 0x10000:
                o -= 0x10000
                out.append("\\u%04x\\u%04X" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
            elif ch == "/" and d.p(0.5):
                out.append("\\/")
            else:
                out.append(("\\u%04x" if d.p(0.5) else "\\u%04X") % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dumps(d, v, esc_p=0.0):
    if isinstance(v, dict):
        items = d.shuffle(list(v.items()))
        if items and d.p(0.05):                 # a duplicate key whose first value is junk: last wins
            k = d.choice(items)[0]
            items.insert(0, (k, d.choice([1, "x", None, [], {"a": [1]}])))
        parts = [_ws(d) + _str(d, k, esc_p) + _ws(d) + ":" + _ws(d) + dumps(d, x, esc_p) + _ws(d) for k, x in items]
        return "{" + ",".join(parts) + (_ws(d) if not parts else "") + "}"
    if isinstance(v, list):
        return "[" + ",".join(_ws(d) + dumps(d, x, esc_p) + _ws(d) for x in v) + "]"
    if isinstance(v, str):
        return _str(d, v, esc_p)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return d.choice([repr(v), "%.17g" % v if "e" not in repr(v) else repr(v)])
    return str(v)


# ---- frame generators ---------------------------------------------------------------------------------

WEIRD_DEC = ["", "-1", "0", "1e3", "+1", " 1", "1.", ".5", "abc", "00.10", "-0", "99999999999999999999",
             "9223372036854775807", "1.0000000000000000001", "0.000000000000000000001", "1.5000000000000000000000",
             "１", "0x10", "1,5", "-0.0"]
WEIRD_ANY = [1, -1, 1.5, 2.0, None, True, False, [], {}, 2**63, 2**64 + 5, -(2**63), "12", "", "x", [1, 2]]
SYMS = ["BTC_USDT", "ETH_USDT", "DOGE_USDT", "BTC_USDT", "ETH_USDT"]


def g_dec(d, max_int=100_000, max_dec=4, neg=False):
    if d.p(0.06):
        return d.choice(WEIRD_DEC)
    ip = d.int(0, max_int) if d.p(0.9) else d.int(0, 10**12)
    nd = d.int(0, max_dec)
    s = str(ip) + ("." + "".join(str(d.int(0, 9)) for _ in range(nd)) if nd else "")
    if d.p(0.1):
        s += "0" * d.int(1, 6)
        if "." not in s:
            s = s[:1] + "." + s[1:] if len(s) > 1 else s
    if neg and d.p(0.5):
        s = "-" + s
    return s


def g_size(d, futures, neg=False):
    if futures and d.p(0.5):
        if d.p(0.05):
            return d.choice(WEIRD_ANY)
        v = d.int(0, 100_000)
        return -v if neg and d.p(0.5) else v
    return g_dec(d, 1000, 6 if not futures else 3, neg)


def g_id(d, lo=1, hi=10**11):
    r = d.int(0, 99)
    if r < 85:
        return d.int(lo, hi)
    if r < 93:
        return str(d.int(lo, hi))
    return d.choice(WEIRD_ANY + ["-5", "1.0", "99999999999999999999"])


def g_level(d, futures, obu):
    px, q = g_dec(d, 100_000, 2), g_size(d, futures and not obu)
    if d.p(0.03):
        return d.choice([[px], [px, q, "1"], px, None, {"p": px}, [1, q]])
    if (futures and not obu and d.p(0.9)) or d.p(0.05):
        lv = {"p": px, "s": q}
        if d.p(0.1):
            lv["x"] = d.choice(WEIRD_ANY)
        return lv
    return [px, q]


def g_depth(d, futures, obu):
    U = d.int(1, 10**11)
    u = U + d.int(0, 30) if d.p(0.95) else U - 1
    sym = d.choice(SYMS)
    r = {"t": d.int(1, 2 * 10**12), "s": ("ob.%s.%s" % (sym, d.choice(["400", "50", "20"]))) if obu else sym,
         "U": U, "u": u, "b": [g_level(d, futures, obu) for _ in range(d.int(0, 5))],
         "a": [g_level(d, futures, obu) for _ in range(d.int(0, 5))]}
    if d.p(0.2):
        r["full"] = True if d.p(0.7) else d.choice([False, 1, "true", None])
    if obu and r.get("full") is True and d.p(0.7):
        del r["U"]
    for k in ("t", "U", "u", "s", "b", "a"):
        if k in r and d.p(0.02):
            del r[k]
        elif k in r and d.p(0.02):
            r[k] = d.choice(WEIRD_ANY) if k != "s" else d.choice(["ob.BTC_USDT", "ob..1", "BTC_USDT", "ob.X.4a", 5])
        elif k in r and k in ("U", "u", "t") and d.p(0.05):
            r[k] = str(r[k])
    if d.p(0.3):
        r.update(e="depthUpdate", E=d.int(1, 2 * 10**9), l=d.choice(["100", "20"]))
    return r


def g_ticker(d, futures):
    r = {"t": g_id(d), "u": g_id(d), "s": d.choice(SYMS), "b": g_dec(d, 100_000, 2), "B": g_size(d, futures),
         "a": g_dec(d, 100_000, 2), "A": g_size(d, futures)}
    if d.p(0.1):
        r["b"], r["B"] = "", d.choice([0, "0", "", "1", 0.0])
    if d.p(0.05):
        r["a"], r["A"] = "", d.choice([0, "0", ""])
    for k in list(r):
        if d.p(0.03):
            del r[k]
    return r


def g_trade(d, futures):
    t = {"id": g_id(d), "create_time": d.int(1, 2 * 10**9), "price": g_dec(d, 100_000, 2)}
    if futures:
        t.update(size=g_size(d, True, neg=True), contract=d.choice(SYMS),
                 create_time_ms=d.int(1, 2 * 10**12) if d.p(0.8) else "%d.%d" % (d.int(1, 10**12), d.int(0, 999)))
    else:
        t.update(amount=g_size(d, False), currency_pair=d.choice(SYMS),
                 side=d.choice(["buy", "sell", "buy", "sell", "BUY", 1]),
                 create_time_ms=("%d.%d" % (d.int(1, 10**12), d.int(0, 9999))) if d.p(0.8) else d.int(1, 10**12))
        if d.p(0.2):
            t.update(id_market=d.int(1, 10**8), range="1-2")
    for k in list(t):
        if d.p(0.03):
            del t[k]
        elif k in ("create_time_ms", "create_time") and d.p(0.02):
            t[k] = d.choice(WEIRD_ANY + ["1.", ".1", "1e3"])
    return t


def g_frame(d, venue):
    futures = venue == "gateio_futures"
    pre = "futures." if futures else "spot."
    kind = d.int(0, 99)
    top = {"time": d.int(1, 2 * 10**9), "time_ms": d.int(1, 2 * 10**12)}
    if kind < 30:
        obu = d.p(0.35)
        top.update(channel=pre + ("obu" if obu else "order_book_update"), event="update", result=g_depth(d, futures, obu))
    elif kind < 45:
        top.update(channel=pre + "book_ticker", event="update", result=g_ticker(d, futures))
    elif kind < 62:
        n = d.int(0, 4)
        res = [g_trade(d, futures) for _ in range(n)]
        if not futures and n == 1 and d.p(0.6):
            res = res[0]
        top.update(channel=pre + "trades", event="update", result=res)
    elif kind < 68:
        top.update(channel=pre + d.choice(["orders", "usertrades", "balances"]), event="update",
                   result=[{"id": d.choice([1, 58828270140012048, "399123456"]), "size": -1, "amount": "1", "text": "t-x"}
                           for _ in range(d.int(0, 2))] if d.p(0.9) else d.choice([{"id": 1}, 5, None]))
    elif kind < 76:
        ok = d.p(0.6)
        top.update(channel=pre + d.choice(["obu", "order_book_update", "trades", "orders"]),
                   event=d.choice(["subscribe", "unsubscribe"]), payload=["BTC_USDT", "100ms"],
                   result={"status": "success" if ok else "fail"}, conn_id="06a3248d8f02479a")
        if not ok or d.p(0.1):
            top["error"] = {"code": d.int(1, 4), "message": "Alert sub ob.BTC_USDT.400"}
    elif kind < 80:
        top.update(channel=pre + "pong", event="", result=None, error=None)
    elif kind < 85:
        top = {"request_id": "r-%d" % d.int(1, 9), "ack": d.p(0.5),
               "header": {"status": d.choice(["200", "400"]), "channel": pre + "order_place", "event": "api"},
               "data": {"result": {"id": d.choice([1, 58828270140012048]), "text": "t-1"}}}
    elif kind < 92:
        top.update(channel=d.choice([pre + "tickers", pre + "candlesticks", "spot.order_book_update",
                                     "futures.order_book_update", pre + "order_book"]),
                   event=d.choice(["update", "all"]), result=g_depth(d, futures, False))
    else:
        top.update(channel=pre + d.choice(["order_book_update", "book_ticker", "trades", "obu"]),
                   event=d.choice(["update", "all", "", None, 5]), result=d.choice(WEIRD_ANY))
    if "channel" in top:
        if d.p(0.1):
            del top["event"]
        if d.p(0.1):
            top["error"] = None
        if d.p(0.1):
            top["id"] = None
        if d.p(0.02):
            del top["channel"]
    if d.p(0.1):
        top["extra"] = {"nested": [1, 2.5e10, {"deep": [None, True, "é😀"]}], "big": 2**70}
    return dumps(d, top, esc_p=0.05 if d.p(0.15) else 0.0).encode("utf-8")


PUNCT = b'{}[]",:0123456789.-eE \\ntruefalsnul'


def mutate(d, frame):
    b = bytearray(frame)
    for _ in range(d.int(1, 3)):
        op = d.int(0, 5)
        if not b:
            b = bytearray(b"{")
        i = d.int(0, len(b) - 1)
        if op == 0:
            b[i] = d.int(0, 255)
        elif op == 1:
            b[i] = PUNCT[d.int(0, len(PUNCT) - 1)]
        elif op == 2:
            b.insert(i, PUNCT[d.int(0, len(PUNCT) - 1)])
        elif op == 3:
            del b[i:i + d.int(1, 4)]
        elif op == 4:
            b = b[:i]
        else:
            j = d.int(i, min(len(b), i + 12))
            b[i:i] = b[i:j]
    return bytes(b)


# ---- the comparison ---------------------------------------------------------------------------------------

def check(venue, frame, tag):
    cls, m = PARSERS[venue]
    c = COUNTS.setdefault((venue, tag), {"n": 0, "err": 0})
    c["n"] += 1
    raw = cls().decode(frame)
    assert norm(raw) == norm(reference_decode(frame, venue)), frame
    mapped = cls(m).decode(frame)
    assert norm(mapped) == norm(reference_decode(frame, venue, INST[venue])), frame
    sink = RecordingSink()
    p = cls(m, sink)
    r = p.feed_bytes(frame, False, 7)
    got = [e[:3] if e[0] == "message" else (e[:2] if e[0] == "error" else e) for e in sink.events]
    ref = reference_sink_events(frame, venue, INST[venue], 7)
    assert got == ref, frame
    if ref and ref[0][0] == "error":
        c["err"] += 1
        assert r == F.FRAME_ERROR and p.errors == 1 and p.last_error
    else:
        assert p.errors == 0
    # the JSON cursor alone vs orjson (numbers beyond a double are RFC-valid: orjson rejects them)
    try:
        want = orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        if "infinity" not in str(e):
            assert J.scan(frame) is not None
    else:
        assert J.scan(frame) is None and J.loads(frame) == want


def test_generated_frames_are_valid_json():
    d = RandomDraw(random.Random(1))
    for venue in PARSERS:
        for _ in range(200):
            orjson.loads(g_frame(d, venue))


@settings(max_examples=N_HYP)
@given(st.data())
def test_fuzz_hypothesis_spot(data):
    d = HypothesisDraw(data)
    f = g_frame(d, "gateio_spot")
    check("gateio_spot", f, "gen")
    check("gateio_spot", mutate(d, f), "mut")


@settings(max_examples=N_HYP)
@given(st.data())
def test_fuzz_hypothesis_futures(data):
    d = HypothesisDraw(data)
    f = g_frame(d, "gateio_futures")
    check("gateio_futures", f, "gen")
    check("gateio_futures", mutate(d, f), "mut")


def _volume(venue, seed):
    d = RandomDraw(random.Random(seed))
    for _ in range(N_RANDOM):
        f = g_frame(d, venue)
        check(venue, f, "gen")
        check(venue, mutate(d, f), "mut")
    gen, mut = COUNTS[(venue, "gen")], COUNTS[(venue, "mut")]
    # the generator must exercise both outcomes, and mutations must mostly produce errors
    assert 0.05 * gen["n"] < gen["err"] < 0.6 * gen["n"], gen
    assert mut["err"] > 0.3 * mut["n"], mut
    if LONG:
        assert gen["n"] + mut["n"] >= 100_000, (gen, mut)


def test_fuzz_volume_spot():
    _volume("gateio_spot", 11)


def test_fuzz_volume_futures():
    _volume("gateio_futures", 12)


def test_zz_report_counts(capsys):
    """Not a check of its own beyond non-emptiness: prints the case counts (-s) for the report."""
    assert COUNTS
    with capsys.disabled():
        for (venue, tag), c in sorted(COUNTS.items()):
            print("\n%s %s: %d cases, %d errors" % (venue, tag, c["n"], c["err"]), end="")
