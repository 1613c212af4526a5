"""cexnode._core.logring: the ring itself, the JSON encoder, levels, loggers, the C-level API."""
import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cexnode._core import logring as lr
from cexnode.log import get_logger


@pytest.fixture
def ring():
    """A private active ring for the test; the previous one is restored afterwards."""
    lr.set_levels("debug", {})
    r = lr.LogRing(1024)
    old = lr.activate_ring(r)
    r.drain(0)                 # records other tests left in the previous ring moved here
    yield r
    while len(r):              # a drain may append a drop report: leave nothing for the restored ring
        r.drain(0)
    lr.activate_ring(old)
    lr.set_levels("info", {})


def lines(batch):
    return [orjson.loads(x) for x in batch.jsonl(0, False).splitlines()]


def test_capacity_must_be_power_of_two():
    with pytest.raises(ValueError):
        lr.LogRing(1000)
    assert lr.LogRing(1 << 10).capacity == 1024


def test_fifo_order_and_counters(ring):
    lg = get_logger("t.fifo", ["t"])
    for i in range(300):
        lg.info("m", i=i)
    assert len(ring) == 300 and ring.accepted == 300
    b1 = ring.drain(100)
    b2 = ring.drain(0)
    got = [rec["i"] for rec in lines(b1) + lines(b2)]
    assert got == list(range(300))
    assert ring.drained == 300 and len(ring) == 0 and ring.dropped == 0


def test_overfill_drops_newest_counts_exactly_and_reports_once():
    r = lr.LogRing(16)
    for i in range(16 + 7):
        r.push_log(lr.INFO, 0, "m", {"i": i})
    assert r.accepted == 16 and r.dropped == 7 and r.pending_drops == 7
    b = r.drain(4)                      # room again -> exactly one drop report appended
    assert [rec["i"] for rec in lines(b)] == [0, 1, 2, 3]
    assert r.pending_drops == 0 and len(r) == 13
    rest = lines(r.drain(0))
    assert [rec.get("i") for rec in rest[:12]] == list(range(4, 16))
    report = rest[12]
    assert report["msg"] == lr.DROPS_MSG and report["level"] == "warning"
    assert report["dropped"] == 7 and report["dropped_total"] == 7
    assert len(rest) == 13
    assert len(r.drain(0)) == 0          # one report only


def test_closed_ring_rejects_and_counts_separately():
    r = lr.LogRing(8)
    r.close()
    assert not r.push_log(lr.INFO, 0, "m")
    assert r.rejected == 1 and r.dropped == 0 and r.accepted == 0


def test_levels_per_logger_hierarchical(ring):
    lr.set_levels("warning", {"t.lv": "debug", "t.lv.quiet": "error"})
    a = get_logger("t.lv.sub", ["t"])
    q = get_logger("t.lv.quiet.x", ["t"])
    o = get_logger("t.other", ["t"])
    a.debug("a-debug")
    q.warning("q-warning")
    q.error("q-error")
    o.info("o-info")
    o.warning("o-warning")
    assert [x["msg"] for x in lines(ring.drain(0))] == ["a-debug", "q-error", "o-warning"]
    lr.set_levels("debug", {})          # reload takes effect on existing loggers
    o.debug("o-debug")
    assert [x["msg"] for x in lines(ring.drain(0))] == ["o-debug"]


def test_record_shape_context_tags_and_reserved_names(ring):
    lg = get_logger("t.shape", ["venue_x", "public", "ws"]).with_context(route="r1")
    lg.warning("hello", msg="shadow", level=3, n=5)
    (rec,) = lines(ring.drain(0))
    assert rec["logger"] == "t.shape" and rec["tags"] == ["venue_x", "public", "ws"]
    assert rec["level"] == "warning" and rec["msg"] == "hello"
    assert rec["route"] == "r1" and rec["n"] == 5
    assert rec["_msg"] == "shadow" and rec["_level"] == 3
    assert isinstance(rec["ts"], int) and abs(rec["ts"] - lr.wall_ns()) < 10 ** 10


def test_child_logger_extends_tags():
    p = get_logger("t.parent", ["mexc_spot", "private"])
    c = p.child("ws", ["ws", "connection"])
    assert c.name == "t.parent.ws" and c.tags == ("mexc_spot", "private", "ws", "connection")
    assert get_logger("t.parent", ["mexc_spot", "private"]) is p


def test_c_level_event_names_and_bench_helper(ring):
    ev = lr.define_event("book resync", "symbol_id", "seq", "age_s")
    lg = get_logger("t.cevent", ["t"])
    assert lr.emit_event(lr.WARNING, lg.id, ev, 7, 123456789012, 0.25) == 1
    lr.set_levels("error", {})
    assert lr.emit_event(lr.WARNING, lg.id, ev, 1, 2, 3.0) == 0      # filtered by level
    lr.set_levels("debug", {})
    (rec,) = lines(ring.drain(0))
    assert rec["msg"] == "book resync" and rec["symbol_id"] == 7 and rec["seq"] == 123456789012
    assert rec["age_s"] == 0.25
    samples = lr.bench_log_event(lg.id, ev, 3, 64)
    assert len(samples) == 3 and all(s > 0 for s in samples)
    assert len(ring) == 0                  # the bench used a private ring


def test_metric_counter_timer_records_are_not_text(ring):
    lg = get_logger("t.metrics", ["t"])
    lg.metric("g", 2.5, {"venue": "a"})
    lg.counter("c", 3)
    with lg.timer("blk") as t:
        pass
    assert t.elapsed_us >= 0
    b = ring.drain(0)
    assert b.jsonl(0, False) == b""
    mask, maxlvl, idx = b.summary()
    assert idx == [0, 1, 2]
    assert b.metric(0) == (lr.KIND_METRIC, "g", 2.5, {"venue": "a"})
    assert b.metric(1) == (lr.KIND_COUNTER, "c", 3, None)
    k, name, dur, tags = b.metric(2)
    assert k == lr.KIND_TIMER and name == "blk" and dur >= 0


def test_timer_logs_failure(ring):
    lg = get_logger("t.timerfail", ["t"])
    with pytest.raises(KeyError):
        with lg.timer("op"):
            raise KeyError("x")
    b = ring.drain(0)
    (rec,) = lines(b)
    assert rec["msg"] == "op failed" and rec["level"] == "error" and "KeyError" in rec["exception"]


def test_activate_ring_migrates_pending_records():
    lr.set_levels("debug", {})
    a, b = lr.LogRing(8), lr.LogRing(4)
    old = lr.activate_ring(a)
    try:
        lg = get_logger("t.migrate", ["t"])
        for i in range(6):
            lg.info("m", i=i)
        lr.activate_ring(b)
        assert b.accepted == 4 and b.dropped == 2
        assert [x["i"] for x in lines(b.drain(0))[:4]] == [0, 1, 2, 3]
    finally:
        while len(b):               # b's drop report, appended by the drain: not for the restored ring
            b.drain(0)
        lr.activate_ring(old)
        lr.set_levels("info", {})


def test_hot_histogram():
    h = lr.HotHistogram([10, 100, 1000])
    for v in (1, 10, 11, 100, 5000):
        h.observe(v)
    bounds, counts, total, count = h.snapshot()
    assert bounds == [10, 100, 1000] and counts == [2, 2, 0, 1] and count == 5 and total == 5122


class _Secret:
    __cexnode_secret__ = True

    def __repr__(self):
        return "LEAKED"

    __str__ = __repr__


def test_secrets_redacted_by_key_and_by_type(ring):
    lr.set_redact_keys(["pin_code"])
    try:
        lg = get_logger("t.secret", ["t"]).with_context(token="LEAKED")
        lg.info("s", api_key="LEAKED", API_SECRET="LEAKED", PIN_CODE="LEAKED", creds=_Secret(),
                nested={"password": "LEAKED", "list": [_Secret(), {"signature": "LEAKED"}]}, ok="fine")
        raw = ring.drain(0).jsonl(0, False)
        assert b"LEAKED" not in raw
        rec = orjson.loads(raw)
        assert rec["api_key"] == rec["API_SECRET"] == rec["PIN_CODE"] == rec["creds"] == rec["token"] == "***"
        assert rec["nested"] == {"password": "***", "list": ["***", {"signature": "***"}]}
        assert rec["ok"] == "fine"
    finally:
        lr.set_redact_keys([])


def _redact_ref(v):
    """The former redact: a full copy (dicts, lists; tuples and sets as lists)."""
    if lr.is_secret(v):
        return "***"
    if isinstance(v, dict):
        return {k: "***" if lr.is_secret_key(k) else _redact_ref(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_redact_ref(x) for x in v]
    return v


def _has_secret(v):
    if lr.is_secret(v):
        return True
    if isinstance(v, dict):
        return any(lr.is_secret_key(k) or _has_secret(x) for k, x in v.items())
    if isinstance(v, (list, tuple, set, frozenset)):
        return any(_has_secret(x) for x in v)
    return False


_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=3), st.builds(_Secret))
_tree = st.recursive(_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.tuples(kids, kids),
    st.dictionaries(st.sampled_from(["a", "b", "api_key", "ok", "signature", "n"]), kids, max_size=4)), max_leaves=20)


@given(_tree)
def test_redact_matches_a_full_copy_and_copies_only_what_changes(v):
    """redact == the copying reference for any nesting; a dict or list with no secret anywhere
    inside is returned itself (copy on write), and the input is never modified."""
    before = repr(v)
    out = lr.redact(v)
    assert out == _redact_ref(v)
    assert repr(v) == before
    if isinstance(v, (dict, list)) and not _has_secret(v) and not _has_tuple_or_set(v):
        assert out is v


def _has_tuple_or_set(v):
    if isinstance(v, (tuple, set, frozenset)):
        return True
    if isinstance(v, dict):
        return any(_has_tuple_or_set(x) for x in v.values())
    if isinstance(v, list):
        return any(_has_tuple_or_set(x) for x in v)
    return False


def test_encoder_awkward_values(ring):
    lg = get_logger("t.awkward", ["t"])
    big = 10 ** 30
    lg.info("quote\"back\\slash\nnew\x01ctl é 日本 \U0001F600", big=big, neg=-(2 ** 63), f=0.1, e=1e-7,
            inf=math.inf, nan=math.nan, b=True, n=None, t=(1, 2), s={"x"}, d=b"bytes", sur="a\ud800b")
    raw = ring.drain(0).jsonl(0, False)
    rec = orjson.loads(raw) if b"1000000000000000000000000000000" not in raw else None
    import json
    rec = json.loads(raw)
    assert rec["msg"] == "quote\"back\\slash\nnew\x01ctl é 日本 \U0001F600"
    assert rec["big"] == big and rec["neg"] == -(2 ** 63) and rec["f"] == 0.1 and rec["e"] == 1e-7
    assert rec["inf"] == "inf" and rec["nan"] == "nan" and rec["b"] is True and rec["n"] is None
    assert rec["t"] == [1, 2] and rec["s"] == ["x"] and rec["d"] == "b'bytes'"
    assert rec["sur"] == "a\\ud800b"


_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
_values = st.recursive(_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                       max_leaves=6)
_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda k: k not in lr.RESERVED_KEYS and not lr.is_secret_key(k))


@given(msg=st.text(max_size=40), fields=st.dictionaries(_keys, _values, max_size=4))
def test_encoder_roundtrips_through_json(msg, fields):
    r = lr.LogRing(4)
    r.push_log(lr.INFO, 0, msg, dict(fields))
    rec = orjson.loads(r.drain(0).jsonl(0, False))
    assert rec["msg"] == msg
    for k, v in fields.items():
        assert rec[k] == lr.redact(v)


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=12))
def test_drop_episodes_counted_exactly_and_reported_once_each(rounds):
    """Pushes and partial drains interleaved: every accepted record comes out once, in order; each
    overflow episode is reported by exactly one warning carrying its exact drop count, emitted when
    there is room again; dropped == attempts - accepted at every point."""
    r = lr.LogRing(16)
    i = attempts = taken = fails = 0
    expected = []                     # drop count of each episode, by our own bookkeeping
    out = []

    def drain(n):
        nonlocal fails
        batch = lines(r.drain(n))
        if fails and r.pending_drops == 0:         # room again: the episode was reported
            expected.append(fails)
            fails = 0
        assert r.pending_drops == fails
        return batch

    for n_push, n_drain in rounds:
        for _ in range(n_push):
            attempts += 1
            ok = bool(r.push_log(lr.INFO, 0, "m", {"i": i}))
            taken += ok
            fails += not ok
            i += 1
        assert taken + r.dropped == attempts            # every refused record is counted
        assert r.pending_drops == fails
        out += drain(n_drain)
    out += drain(0)
    out += drain(0)                   # a report appended by the previous drain, if any
    assert len(r) == 0 and r.pending_drops == 0
    got = [rec["i"] for rec in out if "i" in rec]
    reports = [rec for rec in out if rec["msg"] == lr.DROPS_MSG]
    assert len(got) == taken == r.accepted - len(reports)   # reports are ring records too
    assert got == sorted(set(got))                         # once each, in order
    assert sum(rec["dropped"] for rec in reports) == r.dropped == attempts - len(got)
    assert all(rec["dropped"] > 0 and rec["level"] == "warning" for rec in reports)
    assert [rec["dropped_total"] for rec in reports] == \
        [sum(x["dropped"] for x in reports[:k + 1]) for k in range(len(reports))]
    assert [rec["dropped"] for rec in reports] == expected    # one warning per episode, exact count
