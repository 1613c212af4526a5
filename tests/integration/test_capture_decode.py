"""`decode`: capture frames -> normalized events (DESIGN §3), on the captures in
tests/resources/captures (gaps, full resets, malformed frames, a bad capture line, gzip)."""
from __future__ import annotations

import base64
import io
import os
import subprocess
import sys

import orjson
import pytest

from cexnode.capture.decode import decode_capture
from cexnode.capture.format import CaptureFormatError, CaptureWriter, read_capture
from reference import gate_ref, long_decimals, mexc_ref

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPS = os.path.join(ROOT, "tests", "resources", "captures")
CLEAN = os.path.join(CAPS, "spot_spot_clean.jsonl")
BAD = os.path.join(CAPS, "spot_spot.jsonl")
OBU = os.path.join(CAPS, "obu_spot_perp.jsonl.gz")


def _decode(venue, path):
    buf = io.StringIO()
    rc = decode_capture(venue, path, buf)
    return rc, [orjson.loads(x) for x in buf.getvalue().splitlines()]


def _reference(venue, path):
    """Events of the pure-Python reference decoders (orjson / hand-written protobuf reader)."""
    out = []
    for e in read_capture(path):
        if e.kind != "ws" or e.venue != venue:
            continue
        if venue == "mexc_spot":
            if e.binary:
                evs = mexc_ref.reference_decode(e.data)
                out.extend(evs if evs is not None else [{"type": "error"}])
            continue
        r = gate_ref.reference(e.data, venue, live=False)
        if r[0] == "events":
            out.extend({k: v for k, v in ev.items() if not k.startswith("_")} for ev in r[1])
        elif r[0] == "error":
            out.append({"type": "error"})
    return out


@pytest.mark.parametrize("venue,path", [("gateio_spot", CLEAN), ("mexc_spot", CLEAN), ("gateio_spot", OBU),
                                        ("gateio_futures", OBU)])
def test_decode_matches_reference_decoders(venue, path):
    rc, got = _decode(venue, path)
    assert rc == 0
    want = _reference(venue, path)
    assert len(got) == len(want) and len(got) > 3
    for g, w in zip(got, want):
        if w["type"] == "error":
            assert g["type"] == "error" and g["reason"]
        else:
            assert g == w


def test_decode_gate_spot_content():
    rc, ev = _decode("gateio_spot", CLEAN)
    assert rc == 0
    types = [e["type"] for e in ev]
    # 11 diffs incl. the stale one and the duplicate, one `full: true` reset, one truncated frame
    assert types.count("book_delta") == 11 and types.count("book_snapshot") == 1 and types.count("error") == 1
    assert ev[0] == {"venue": "gateio_spot", "symbol": "BTC_USDT", "type": "book_delta", "ts": 1763856000020,
                     "first": 95, "last": 99, "bids": [["29990.0", "1"]], "asks": []}
    snap = ev[types.index("book_snapshot")]
    assert snap["first"] == snap["last"] == 200 and snap["asks"] == [["29900.0", "0.3"], ["29910.0", "1"]]
    err = ev[types.index("error")]
    assert err["venue"] == "gateio_spot" and "json" in err["reason"]
    assert all(set(e) >= {"venue", "symbol", "type", "ts"} for e in ev)


def test_decode_mexc_binary_and_malformed():
    rc, ev = _decode("mexc_spot", CLEAN)
    assert rc == 0
    assert [e["type"] for e in ev].count("error") == 1
    deltas = [e for e in ev if e["type"] == "book_delta"]
    assert [(d["first"], d["last"]) for d in deltas][:2] == [(5001, 5001), (5002, 5002)]
    assert deltas[0]["bids"] == [["29998.00", "0.3"]] and deltas[0]["symbol"] == "BTCUSDT"


def test_decode_futures_sizes_are_contracts_gzip():
    rc, ev = _decode("gateio_futures", OBU)
    assert rc == 0
    full = [e for e in ev if e["type"] == "book_snapshot"]
    assert full and full[0]["bids"] == [["29999.9", "10000"]]
    assert any(e["type"] == "error" and "decimal" in e["reason"] for e in ev)


def test_decode_bad_capture_line_reported_and_goes_on(capsys):
    rc, ev = _decode("gateio_spot", BAD)
    assert rc == 2
    assert ev[-1]["type"] == "error" and "spot_spot.jsonl:34" in ev[-1]["reason"]
    assert len(ev) == len(_decode("gateio_spot", CLEAN)[1]) + 1
    assert "not capture entries" in capsys.readouterr().err


def test_capture_writer_roundtrip(tmp_path):
    for name in ("c.jsonl", "c.jsonl.gz"):
        p = str(tmp_path / name)
        with CaptureWriter(p, clock=iter(range(100, 200)).__next__) as w:
            w.ws("gateio_spot", b'{"a":1}')
            w.ws("mexc_spot", memoryview(b"\x00\x01\xff"), binary=True)
            w.rest("gateio_spot", "get", "/api/v4/spot/order_book", "currency_pair=BTC_USDT", 200, b'{"id":1}')
            w.record("gateio_futures", "ws", "text", '{"b":2}', t=5)
        es = list(read_capture(p))
        assert [(e.t, e.venue, e.kind) for e in es] == [(100, "gateio_spot", "ws"), (101, "mexc_spot", "ws"),
                                                        (102, "gateio_spot", "rest"), (5, "gateio_futures", "ws")]
        assert es[0].data == b'{"a":1}' and not es[0].binary
        assert es[1].data == b"\x00\x01\xff" and es[1].binary
        assert es[2].method == "GET" and es[2].params() == {"currency_pair": "BTC_USDT"} and es[2].body == '{"id":1}'
        raw = open(p, "rb").read() if not name.endswith(".gz") else None
        if raw is not None:
            assert orjson.loads(raw.splitlines()[1])["data"] == base64.b64encode(b"\x00\x01\xff").decode()


@pytest.mark.parametrize("line,what", [
    (b'{"t":1,"venue":"x","kind":"ws","op":"text","data":""}', "venue"),
    (b'{"t":-1,"venue":"mexc_spot","kind":"ws","op":"text","data":""}', '"t"'),
    (b'{"t":1,"venue":"mexc_spot","kind":"ws","op":"binary","data":"!!"}', "base64"),
    (b'{"t":1,"venue":"mexc_spot","kind":"rest","path":"/x","status":200}', "body"),
    (b'{"t":1,"venue":"mexc_spot","kind":"udp"}', "kind"),
    (b'[1]', "object"),
])
def test_read_capture_rejects_with_line(tmp_path, line, what):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"t":1,"venue":"mexc_spot","kind":"ws","op":"text","data":"{}"}\n\n' + line + b"\n")
    with pytest.raises(CaptureFormatError) as ei:
        list(read_capture(str(p)))
    assert ei.value.lineno == 3 and what in str(ei.value) and "bad.jsonl:3" in str(ei.value)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "cexnode", *args], cwd=ROOT, capture_output=True, timeout=60)


def test_decode_cli_exit_codes_and_bytes():
    a = _cli("decode", "--venue", "gateio_spot", CLEAN)
    b = _cli("decode", "--venue", "gateio_spot", CLEAN)
    assert a.returncode == 0 and a.stdout == b.stdout and a.stderr == b""
    buf = io.StringIO()
    decode_capture("gateio_spot", CLEAN, buf)
    assert a.stdout.decode() == buf.getvalue()
    bad = _cli("decode", "--venue", "gateio_spot", BAD)
    assert bad.returncode == 2 and b"spot_spot.jsonl:34" in bad.stderr and b"Traceback" not in bad.stderr
    missing = _cli("decode", "--venue", "mexc_spot", os.path.join(CAPS, "nope.jsonl"))
    assert missing.returncode == 2 and b"not found" in missing.stderr
    badvenue = _cli("decode", "--venue", "kraken", CLEAN)
    assert badvenue.returncode == 2


# ---- decimals written out to 18 fraction digits (issue 20 item 2) ----------------------------------

RES = os.path.join(ROOT, "tests", "resources")
LONG_SAMPLES = {
    "gateio_spot": ["ws_order_book_update.json", "ws_book_ticker.json", "ws_trades.json", "ws_obu_full.json",
                    "ws_obu_update.json"],
    "gateio_futures": ["ws_order_book_update.json", "ws_book_ticker.json", "ws_book_ticker_decimal.json",
                       "ws_trades_decimal.json", "ws_obu_update.doc.json"],
    "mexc_spot": sorted(n for n in os.listdir(os.path.join(RES, "mexc")) if n.startswith("ws_push") and n.endswith(".pb.hex")),
}


def _long_capture(tmp_path, venue, pad):
    """A capture of the venue's real samples, decimals padded to 18 digits when ``pad``."""
    path = str(tmp_path / ("%s_%s.jsonl" % (venue, "long" if pad else "plain")))
    with CaptureWriter(path, clock=iter(range(1000, 2000)).__next__) as w:
        for name in LONG_SAMPLES[venue]:
            if venue == "mexc_spot":
                frame = bytes.fromhex(open(os.path.join(RES, "mexc", name)).read().strip())
                w.ws(venue, long_decimals.pad_mexc_frame(frame) if pad else frame, binary=True)
            else:
                frame = open(os.path.join(RES, venue, name), "rb").read()
                w.ws(venue, long_decimals.pad_gate_frame(frame) if pad else frame)
    return path


@pytest.mark.parametrize("venue", sorted(LONG_SAMPLES))
def test_decode_18_decimal_frames_gives_events_not_errors(tmp_path, venue):
    """`decode` used to check a decimal at its count of fraction digits: "62383.560000000000000000"
    at scale 18 overflows int64 and the frame became an error. Trailing zeros must not raise the
    scale: the same events as the unpadded frames, with the venue's strings kept as sent."""
    rc, plain = _decode(venue, _long_capture(tmp_path, venue, False))
    rc_long, long_ = _decode(venue, _long_capture(tmp_path, venue, True))
    assert rc == rc_long == 0
    assert len(plain) >= len(LONG_SAMPLES[venue]) and not [e for e in plain if e["type"] == "error"]
    assert [e for e in long_ if e["type"] == "error"] == []
    assert long_decimals.normalized(long_) == long_decimals.normalized(plain)
    assert long_decimals.has_18_decimals(long_) and not long_decimals.has_18_decimals(plain)
    assert long_ == _reference(venue, _long_capture(tmp_path, venue, True))


def test_decode_issue_20_string():
    """The frame from the report: "41.847400000000000000" decodes, kept verbatim."""
    frame = mexc_ref.f_len(1, "spot@public.aggre.depth.v3.api.pb@10ms@MXUSDT") + mexc_ref.f_len(
        313, mexc_ref.f_len(2, mexc_ref.f_len(1, "41.847400000000000000") + mexc_ref.f_len(2, "1.000000000000000000"))
        + mexc_ref.f_len(4, "7") + mexc_ref.f_len(5, "7"))
    from cexnode.capture.decode import raw_parser
    ev = raw_parser("mexc_spot").decode(frame, True)
    assert ev == [{"venue": "mexc_spot", "symbol": "MXUSDT", "type": "book_delta", "ts": 0, "first": 7, "last": 7,
                   "bids": [["41.847400000000000000", "1.000000000000000000"]], "asks": []}]
    gate = b'{"channel":"spot.book_ticker","event":"update","result":{"t":1,"u":2,"s":"MX_USDT",' \
           b'"b":"41.847400000000000000","B":"1.000000000000000000","a":"41.9","A":"2"}}'
    ev = raw_parser("gateio_spot").decode(gate, False)
    assert [(e["type"], e["bid"], e["bid_qty"]) for e in ev] == [("bbo", "41.847400000000000000", "1.000000000000000000")]
    # a value that needs 18 significant decimals and does not fit int64 there is still an error
    big = gate.replace(b"41.847400000000000000", b"41.847400000000000001")
    assert [e["type"] for e in raw_parser("gateio_spot").decode(big, False)] == ["error"]
