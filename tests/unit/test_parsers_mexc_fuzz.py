"""Differential fuzzing: MexcSpotParser vs the official protobuf runtime (tests/reference/mexc_ref.py).

Generated frames are written field by field by a test-side writer: any field order, unknown fields
of every wire type (varint, fixed32, fixed64, length-delimited, nested groups) in the wrapper, the
bodies and the items, duplicated scalars (last wins), bodies split into several occurrences (the
runtime merges them), a different oneof member before the real body, absent sides / fields, and
decimals that are sometimes invalid. They are valid protobuf, so we must agree with the reference
EXACTLY: same events, or both reject. Mutated and truncated frames: identical events, or an error
counted by the parser; never a crash, never a value the reference does not produce.

Normal profile: a few thousand cases; CEXNODE_LONG=1: >= 100,000 per venue (generated + mutated).
"""
import os
import random

from hypothesis import given, settings, strategies as st

from cexnode._core import feed as F
from cexnode._core.parsers.mexc_spot import CollectSink, MexcSpotParser
from reference.mexc_ref import (MEMBERS, f_fixed32, f_fixed64, f_group, f_len, f_varint, reference_decode,
                                reference_sink_events, runtime_member, tag, varint)
from support.mexc_parsers import INST, MAP

LONG = bool(os.environ.get("CEXNODE_LONG"))
N_GEN = 5_000 if LONG else 400
N_MUT_HYP = 5_000 if LONG else 250
N_RANDOM = 60_000 if LONG else 3_000      # each: one generated + one mutated frame
N_MUT_LOOP = 100_000 if LONG else 6_000

SYMBOLS = ["BTCUSDT", "MXUSDT", "DOGEUSDT"]          # DOGEUSDT is not listed: ignored in live mode
COUNTS = {"gen": 0, "gen_err": 0, "mut": 0, "mut_err": 0, "mut_stricter": 0}


# ---- one generator, two sources of randomness (hypothesis for shrinking, random for volume) ----------

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

    def binary(self, n):
        return bytes(self.r.randrange(256) for _ in range(self.r.randint(0, n)))

    def text(self, alphabet, n):
        return "".join(self.choice(alphabet) for _ in range(self.r.randint(0, n)))


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
        return self.d.draw(st.permutations(items)) if len(items) > 1 else items

    def binary(self, n):
        return self.d.draw(st.binary(max_size=n))

    def text(self, alphabet, n):
        return self.d.draw(st.text(alphabet, max_size=n))


BAD_DECIMALS = ["", "-1", "1e5", " 1", "1.", ".5", "+1", "0x10", "1,5", "\u0661", "99999999999999999999",
                "1.0000000000000000000000", "-0", "0", "00.10", "1\u00e9"]


def dec_str(d, max_int, max_frac):
    if d.p(0.03):
        return d.choice(BAD_DECIMALS)
    i = d.int(0, max_int)
    # mostly within the instruments' scales (price 2-4, qty 4-8 decimals); sometimes beyond
    f = d.text("0123456789", max_frac if d.p(0.05) else max_frac // 3)
    if d.p(0.05):
        f += "0" * d.int(1, 12)          # trailing zeros beyond the scale are exact
    return str(i) if not f else "%d.%s" % (i, f)


def unknown_field(d, numbers):
    f = d.choice(numbers)
    k = d.int(0, 4)
    if k == 0:
        return f_varint(f, d.int(-(2**63), 2**64 - 1))
    if k == 1:
        return f_fixed32(f, d.int(0, 2**32 - 1))
    if k == 2:
        return f_fixed64(f, d.int(0, 2**64 - 1))
    if k == 3:
        return f_len(f, d.binary(12))
    return f_group(f, f_varint(1, d.int(0, 2**40)) + f_group(2, f_len(3, d.binary(6))))


def message(d, fields, unknown_numbers):
    """Already-encoded fields + 0..2 unknown ones, shuffled."""
    parts = [x for x in fields if x]
    parts += [unknown_field(d, unknown_numbers) for _ in range(d.int(0, 2))]
    return b"".join(d.shuffle(parts))


def str_field(d, number, make, p_absent=0.1, p_dup=0.1):
    # absent, present, or preceded by a different earlier value (the last one wins)
    if d.p(p_absent):
        return b""
    out = f_len(number, make())
    if d.p(p_dup):
        out = f_len(number, make()) + out
    return out


def version(d):
    if d.p(0.95):
        return str(d.int(0, 10**12))
    return d.choice(["", "x", "-1", "1.0", "99999999999999999999", "9223372036854775807", "\u0661"])


def depth_body(d, limit):
    px = lambda: dec_str(d, 10**6, 6)
    q = lambda: dec_str(d, 10**4, 12)
    fields = []
    for _ in range(d.int(0, 5)):
        it = message(d, [str_field(d, 1, px, 0.01), str_field(d, 2, q, 0.01)], [3, 4, 9, 100])
        fields.append(f_len(d.choice([1, 2]), it))
    if d.p(0.9):
        first = d.int(0, 10**12)
        v1 = lambda: str(first)
        v2 = (lambda: str(first + (d.int(0, 10) if d.p(0.97) else -1)))
    else:
        v1 = v2 = lambda: version(d)
    fields.append(str_field(d, 3, lambda: "spot@public.aggre.depth.v3.api.pb@10ms"))
    fields.append(str_field(d, 4, v1, 0.01))
    if limit:
        fields.append(f_varint(5, d.int(0, 2**63)) if d.p(0.5) else b"")
        unknown = [6, 7, 15, 16, 2047]
    else:
        fields.append(str_field(d, 5, v2, 0.01))
        fields.append(f_varint(6, d.int(0, 2**63)) if d.p(0.5) else b"")
        unknown = [7, 8, 15, 16, 2047]
    return message(d, fields, unknown)


def deals_body(d):
    deals = []
    for _ in range(d.int(0, 4)):
        fields = [str_field(d, 1, lambda: dec_str(d, 10**6, 6), 0.01),
                  str_field(d, 2, lambda: dec_str(d, 10**4, 12), 0.01),
                  f_varint(3, d.choice([1, 2] * 40 + [0, 3, -1, 2**32 + 1])),
                  f_varint(4, d.int(0, 2**45)) if d.p(0.7) else b"",
                  str_field(d, 5, lambda: d.choice([str(d.int(0, 10**19)), d.text("0123456789x\u00e9", 5)]), 0.4)]
        deals.append(f_len(1, message(d, fields, [6, 7, 20])))
    deals.append(str_field(d, 2, lambda: "spot@public.aggre.deals.v3.api.pb@10ms"))
    return message(d, deals, [3, 4, 30])


def ticker_fields(d, with_version):
    fields = []
    for k in (1, 3):                    # a side: both present, both absent (empty side), rarely half
        empty = d.p(0.12)
        fields.append(str_field(d, k, lambda: dec_str(d, 10**6, 6), 1.0 if empty else 0.01))
        fields.append(str_field(d, k + 1, lambda: dec_str(d, 10**4, 12), 1.0 if empty else 0.01))
    if with_version:
        fields.append(str_field(d, 5, lambda: version(d), 0.4))
        fields.append(f_varint(6, d.int(0, 2**50)) if d.p(0.5) else b"")
    return fields


def ticker_body(d, batch):
    if not batch:
        return message(d, ticker_fields(d, True), [7, 8, 100])
    items = [f_len(1, message(d, ticker_fields(d, False), [5, 6, 7])) for _ in range(d.int(0, 3))]
    # the batch's own version (2) and lastOrderCreateTime (3), official schema 2026-06
    items += [str_field(d, 2, lambda: version(d), 0.5), f_varint(3, d.int(0, 2**50)) if d.p(0.3) else b""]
    return message(d, items, [4, 5, 9])


BODIES = {313: ("aggre.depth.v3.api.pb@10ms@{s}", lambda d: depth_body(d, False)),
          303: ("limit.depth.v3.api.pb@{s}@5", lambda d: depth_body(d, True)),
          314: ("aggre.deals.v3.api.pb@10ms@{s}", deals_body),
          315: ("aggre.bookTicker.v3.api.pb@10ms@{s}", lambda d: ticker_body(d, False)),
          311: ("bookTicker.batch.v3.api.pb@{s}", lambda d: ticker_body(d, True))}
# 301..315 are all oneof members of the official wrapper (never unknown fields)
WRAPPER_UNKNOWN = [2, 7, 8, 100, 300, 316, 317, 1000, 2**29 - 1]


def push_frame(d):
    body_no = d.choice(sorted(BODIES))
    topic, make_body = BODIES[body_no]
    sym = d.choice(SYMBOLS)
    channel = "spot@public." + topic.format(s=sym)
    body = make_body(d)
    segs = [body]
    if body and d.p(0.3):               # the runtime merges repeated occurrences of the body field
        k = d.choice(_boundaries(body))
        segs = [body[:k], body[k:]]
    body_fields = [f_len(body_no, x) for x in segs]
    if d.p(0.15):                       # another oneof member first: cleared by the real body
        other = d.choice([b for b in sorted(MEMBERS) if b != body_no])
        body_fields.insert(0, f_len(other, runtime_member(d, other) if d.p(0.5) else f_varint(20, d.int(0, 9))))
    if d.p(0.05):                       # another member last: it IS the body (the runtime keeps the last)
        other = d.choice([b for b in sorted(MEMBERS) if b != body_no])
        body_fields.append(f_len(other, runtime_member(d, other)))
    others = [str_field(d, 1, lambda: channel, 0.05),
              str_field(d, 3, lambda: d.choice([sym, sym, sym, ""]), 0.3),
              f_varint(5, d.int(0, 2**45)) if d.p(0.5) else b"",
              f_varint(6, d.int(0, 2**45)) if d.p(0.8) else b"",
              f_len(4, "123") if d.p(0.2) else b""]
    others += [unknown_field(d, WRAPPER_UNKNOWN) for _ in range(d.int(0, 3))]
    out = d.shuffle([x for x in others if x])
    pos = 0
    for bf in body_fields:              # body occurrences keep their relative order
        pos = d.int(pos, len(out))
        out.insert(pos, bf)
        pos += 1
    return b"".join(out)


def _boundaries(body):
    """Offsets between the top-level fields of a well-formed message."""
    out, i = [0], 0
    while i < len(body):
        i = _skip_one(body, i)
        out.append(i)
    return out


def _rv(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def _skip_one(b, i):
    t, i = _rv(b, i)
    wt = t & 7
    if wt == 0:
        return _rv(b, i)[1]
    if wt in (1, 5):
        return i + (8 if wt == 1 else 4)
    if wt == 2:
        n, i = _rv(b, i)
        return i + n
    while True:                         # group: until its END_GROUP
        t2, j = _rv(b, i)
        if t2 & 7 == 4:
            return j
        i = _skip_one(b, i)


# ---- the comparisons --------------------------------------------------------------------------------

RAW = MexcSpotParser()
SINK = CollectSink()
LIVE = MexcSpotParser(MAP, SINK)


def check(frame, generated):
    """Compare raw decode and live sink events with the reference. Returns True when we rejected."""
    ours = RAW.decode(frame, True)
    ref = reference_decode(frame)
    we_reject = len(ours) == 1 and ours[0]["type"] == "error"
    if we_reject:
        if ref is not None:
            if generated:
                raise AssertionError("rejected a frame the reference accepts: %s\n%s" % (ours[0]["reason"], frame.hex()))
            COUNTS["mut_stricter"] += 1      # e.g. a known field with a wrong wire type
    else:
        assert ours == ref, frame.hex()
    del SINK.events[:]
    errors = LIVE.errors
    r = LIVE.feed_bytes(frame, True, 11)
    ref_live = reference_sink_events(frame, INST, 11)
    if r == F.FRAME_ERROR:
        assert LIVE.errors == errors + 1 and [e[0] for e in SINK.events] == ["error"]   # nothing delivered
        if ref_live is not None and generated:
            raise AssertionError("live rejected a frame the reference accepts: %s\n%s" % (LIVE.last_error, frame.hex()))
        return True
    # private pushes reach on_message (checked in test_parsers_mexc.py); market events must match
    assert [e for e in SINK.events if e[0] != "message"] == ref_live, frame.hex()
    return we_reject


@settings(max_examples=N_GEN)
@given(st.data())
def test_generated_frames_agree_with_runtime(data):
    COUNTS["gen"] += 1
    COUNTS["gen_err"] += check(push_frame(HypothesisDraw(data)), True)


def mutate(rng, frame):
    b = bytearray(frame)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        if not b:
            b.append(rng.randrange(256))
        elif op < 0.35:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op < 0.55:
            b[rng.randrange(len(b))] = rng.choice([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x1A, 0x13, 0x14])
        elif op < 0.7:
            del b[rng.randrange(len(b)):]
        elif op < 0.85:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        else:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 4)]
    return bytes(b)


@settings(max_examples=N_MUT_HYP)
@given(st.data(), st.integers(0, 2**32 - 1))
def test_mutated_frames_never_disagree(data, seed):
    COUNTS["mut"] += 1
    COUNTS["mut_err"] += check(mutate(random.Random(seed), push_frame(HypothesisDraw(data))), False)


def test_random_generated_and_mutated_volume():
    """The same generator driven by random.Random: high volume, generated + mutated per case."""
    rng = random.Random(5)
    d = RandomDraw(rng)
    gen_rej = mut_rej = 0
    for _ in range(N_RANDOM):
        f = push_frame(d)
        gen_rej += check(f, True)
        mut_rej += check(mutate(rng, f), False)
    # both outcomes exercised: most generated frames are valid, most mutations are not
    assert N_RANDOM // 20 < gen_rej < N_RANDOM // 2 and mut_rej > N_RANDOM // 2, (gen_rej, mut_rej)
    COUNTS["gen"] += N_RANDOM
    COUNTS["gen_err"] += gen_rej
    COUNTS["mut"] += N_RANDOM
    COUNTS["mut_err"] += mut_rej


def _seed_frames():
    from support.mexc_parsers import MARKET, sample, depth_frame
    frames = [sample(n)[0] for n in MARKET]
    frames += [depth_frame(bids=[("100.5", "1"), ("100.25", "0")], asks=[("101", "2")], first="5", last="9")]
    return frames


def test_mutation_loop():
    """Cheap high-volume mutation loop over the samples (deterministic seed)."""
    rng = random.Random(20261123)
    seeds = _seed_frames()
    rejected = accepted = 0
    for _ in range(N_MUT_LOOP):
        f = mutate(rng, rng.choice(seeds))
        if check(f, False):
            rejected += 1
        else:
            accepted += 1
    # both outcomes must be exercised (a mutation loop that only ever errors proves little)
    assert rejected > N_MUT_LOOP // 20 and accepted > N_MUT_LOOP // 20, (rejected, accepted)
    COUNTS["mut"] += N_MUT_LOOP
    COUNTS["mut_err"] += rejected


def test_case_counts():
    # runs after the tests above in file order; in the long profile the total is >= 100,000
    total = COUNTS["gen"] + COUNTS["mut"]
    assert COUNTS["gen"] > 0 and total >= (100_000 if LONG else 3_000), COUNTS
    print("mexc differential cases:", COUNTS)
