"""`replay`: the real Cython pipeline (parsers → BookRouter → BookSync → Book → ArbEngine) over the
test captures (gaps, `full` resets, obu gaps, malformed frames, REST resyncs incl. a failed answer):
exact output, byte-identical reruns (in process and via the CLI), and the same opportunities as a
pure-Python oracle (reference decoders + sync_ref.RefSync + arb_ref.RefEngine) on the same capture."""
from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
from collections import deque
from decimal import Decimal

import orjson
import pytest

from cexnode.capture.format import read_capture
from cexnode.capture.replay import Replay, replay_main
from cexnode.config import load_config
from cexnode.engine import route_symbol_on
from reference import arb_ref, gate_ref, mexc_ref, sync_ref

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPS = os.path.join(ROOT, "tests", "resources", "captures")
# REST paths of the venues' order-book snapshots and their symbol parameter (the oracle's own knowledge)
SNAPSHOT_PATHS = {
    "mexc_spot": ("/api/v3/depth", "symbol"),
    "gateio_spot": ("/api/v4/spot/order_book", "currency_pair"),
    "gateio_futures": ("/api/v4/futures/usdt/order_book", "contract"),
}
SPOT = (os.path.join(CAPS, "spot_spot.yaml"), os.path.join(CAPS, "spot_spot_clean.jsonl"))
OBU = (os.path.join(CAPS, "obu_spot_perp.yaml"), os.path.join(CAPS, "obu_spot_perp.jsonl.gz"))


def _replay(cfg_path, cap, dump=False):
    buf = io.StringIO()
    rc = replay_main(load_config(cfg_path), cap, dump_books=dump, out=buf)
    return rc, buf.getvalue()


def _lines(text):
    return [orjson.loads(x) for x in text.splitlines()]


def test_replay_spot_spot_output():
    rc, text = _replay(*SPOT, dump=True)
    assert rc == 0
    lines = _lines(text)
    opps = [x for x in lines if x["type"] == "opportunity"]
    resyncs = [x for x in lines if x["type"] == "resync"]
    books = [x for x in lines if x["type"] == "book"]
    summary = lines[-1]
    assert summary == {"type": "summary", "frames": 26, "errors": 2, "resyncs": 2, "opportunities": 6,
                       "snapshots": 4}
    assert [(r["venue"], r["reason"]) for r in resyncs] == [("gateio_spot", "gap"), ("mexc_spot", "gap")]
    # first dislocation: gate bid 30150 over mexc ask 30000.5, capped by max_notional 5000
    assert opps[0] == {"type": "opportunity", "route": "BTC/USDT mexc_spot/gateio_spot", "symbol": "BTC/USDT",
                       "buy_venue": "mexc_spot", "sell_venue": "gateio_spot", "qty": "0.1666",
                       "buy_price": "30000.5", "sell_price": "30150", "buy_vwap": "30000.5", "sell_vwap": "30150",
                       "net_profit": "17.38466835", "net_bps": "34.7826", "t": 1763856000090000000}
    # after the full reset the direction flips: buy on gate, sell on mexc
    assert [(o["buy_venue"], o["sell_venue"]) for o in opps[2:]] == [("gateio_spot", "mexc_spot")] * 4
    # nothing is emitted while a book is out of sync: no opportunity between a resync and its snapshot
    t_gap = resyncs[0]["t"]
    assert not [o for o in opps if t_gap <= o["t"] < 1763856000130000000]
    assert books == [
        {"type": "book", "venue": "mexc_spot", "symbol": "BTC/USDT", "in_sync": True, "last": 5011,
         "bids": [["29999.5", "0.7"], ["29999", "1"]], "asks": [["30000", "1"]]},
        {"type": "book", "venue": "gateio_spot", "symbol": "BTC/USDT", "in_sync": True, "last": 200,
         "bids": [["29890", "1"]], "asks": [["29900", "0.3"], ["29910", "1"]]}]


def test_replay_obu_spot_perp_gzip():
    rc, text = _replay(*OBU, dump=True)
    assert rc == 0
    lines = _lines(text)
    assert lines[-1] == {"type": "summary", "frames": 15, "errors": 1, "resyncs": 1, "opportunities": 3,
                         "snapshots": 0}
    opps = [x for x in lines if x["type"] == "opportunity"]
    assert {(o["route"], o["buy_venue"], o["sell_venue"]) for o in opps} == {
        ("btc-spot-perp", "gateio_spot", "gateio_futures")}
    # perp sizes are contracts × 0.0001 BTC in the book
    fut = [x for x in lines if x["type"] == "book" and x["venue"] == "gateio_futures"][0]
    assert fut["bids"][0] == ["30100", "0.24"] and fut["in_sync"] is True
    # the perp update while spot waits for its next full push produces nothing
    resync_t = [x["t"] for x in lines if x["type"] == "resync"][0]
    full_t = [o["t"] for o in opps if o["t"] > resync_t][0]
    assert not [o for o in opps if resync_t <= o["t"] < full_t] and full_t > resync_t


@pytest.mark.parametrize("case", [SPOT, OBU])
def test_replay_deterministic_in_process_and_cli(case, tmp_path):
    cfg, cap = case
    a = _replay(cfg, cap, dump=True)[1]
    b = _replay(cfg, cap, dump=True)[1]
    assert a == b and a
    cli = [sys.executable, "-m", "cexnode", "replay", "--config", cfg, "--capture", cap, "--dump-books"]
    r1 = subprocess.run(cli, cwd=ROOT, capture_output=True, timeout=60)
    r2 = subprocess.run(cli, cwd=ROOT, capture_output=True, timeout=60)
    assert r1.returncode == 0 and r1.stdout == r2.stdout and r1.stdout.decode() == a, r1.stderr
    # a copy elsewhere under another name gives the same bytes
    cp = tmp_path / os.path.basename(cap)
    shutil.copy(cap, cp)
    assert _replay(cfg, str(cp), dump=True)[1] == a


def test_replay_bad_inputs_exit_2(tmp_path, capsys):
    cfg, _ = SPOT
    assert _replay(cfg, os.path.join(CAPS, "spot_spot.jsonl"))[0] == 2
    assert "spot_spot.jsonl:34" in capsys.readouterr().err
    assert _replay(cfg, str(tmp_path / "missing.jsonl"))[0] == 2
    # no instrument info in the capture and none in the config
    p = tmp_path / "noinfo.jsonl"
    p.write_bytes(b"".join(line for line in open(SPOT[1], "rb") if b"exchangeInfo" not in line))
    assert _replay(cfg, str(p))[0] == 2
    err = capsys.readouterr().err
    assert "mexc_spot" in err and "instruments" in err
    r = subprocess.run([sys.executable, "-m", "cexnode", "replay", "--config", cfg, "--capture", str(p)],
                       cwd=ROOT, capture_output=True, timeout=60)
    assert r.returncode == 2 and b"Traceback" not in r.stderr


def test_replay_instruments_from_config(tmp_path):
    """Instruments given in the config instead of the capture: same output as from the capture."""
    cfg_text = open(SPOT[0]).read()
    cfg_text = cfg_text.replace("    symbols: [BTC/USDT]\n  gateio_spot:", """    symbols: [BTC/USDT]
    instruments:
      - {symbol: BTC/USDT, venue_symbol: BTCUSDT, tick: "0.01", step: "0.000001", min_qty: "0", min_notional: "1"}
  gateio_spot:""")
    cfg_text = cfg_text.replace("    symbols: [BTC/USDT]\narbitrage:", """    symbols: [BTC/USDT]
    instruments:
      - {symbol: BTC/USDT, venue_symbol: BTC_USDT, tick: "0.1", step: "0.0001", min_qty: "0.0001", min_notional: "1"}
arbitrage:""")
    p = tmp_path / "cfg.yaml"
    p.write_text(cfg_text)
    cap = tmp_path / "cap.jsonl"
    cap.write_bytes(b"".join(line for line in open(SPOT[1], "rb")
                             if b"exchangeInfo" not in line and b"currency_pairs" not in line))
    rc, text = _replay(str(p), str(cap), dump=True)
    assert rc == 0
    assert text == _replay(*SPOT, dump=True)[1]


# ------------------------------------------------------------------------------------------------------
# pure-Python oracle of the whole replay: reference decoders + RefSync + RefEngine (Decimal arithmetic)

def _oracle(cfg_path, cap_path):
    cfg = load_config(cfg_path)
    entries = list(read_capture(cap_path))
    rp = Replay(cfg, entries)            # only for the instrument specs (registry) of the capture
    asyncio.run(rp.build())
    node = rp.engine
    insts = {}
    for (venue, symbol), _ in node.books.items():
        smap = node.registry.map(venue)
        insts[(venue, symbol)] = smap.instrument(symbol)
    a = cfg.arbitrage
    eng = arb_ref.RefEngine(arb_ref.RefParams(min_profit=Decimal(str(a.min_profit)), min_bps=Decimal(str(a.min_bps)),
                                              max_notional=Decimal(str(a.max_notional)),
                                              max_book_age_ms=a.max_book_age_ms,
                                              slippage_bps=Decimal(str(a.slippage_bps))))
    vsym = {}
    syncs, refbooks, mult = {}, {}, {}
    for (venue, symbol), inst in insts.items():
        rule = sync_ref.STREAM_FULL if rp.transport.book_sync_rule(node.adapters[venue]) == 1 else sync_ref.SNAPSHOT_DIFF
        syncs[(venue, symbol)] = sync_ref.RefSync(rule, depth=getattr(cfg.venues, venue).book_depth)
        refbooks[(venue, symbol)] = arb_ref.RefBook(venue, [], [], False)
        vsym[(venue, node.registry.map(venue).venue_symbol(symbol))] = symbol
        mult[(venue, symbol)] = Decimal(inst["qty_mult"]).scaleb(inst["venue_qty_scale"] - inst["qty_scale"])
    for r in a.routes:
        legs = []
        for venue in r.venues:
            sym = route_symbol_on(venue, r.symbol)
            inst = insts[(venue, sym)]
            sc = lambda m, s: Decimal(m).scaleb(-s)  # noqa: E731
            legs.append(arb_ref.RefLeg(venue, refbooks[(venue, sym)], Decimal(str(getattr(cfg.venues, venue).taker_fee)),
                                       sc(inst["tick"], inst["price_scale"]), sc(inst["step"], inst["qty_scale"]),
                                       sc(inst["min_qty"], inst["qty_scale"]),
                                       sc(inst["min_notional"], inst["price_scale"])))
        p, q = node.registry.scales(r.symbol)
        eng.add_route(arb_ref.RefRoute(r.name or "%s %s" % (r.symbol, "/".join(r.venues)), r.symbol, p, q, legs))

    out = []
    resyncs = []

    def refresh(key):
        s, b = syncs[key], refbooks[key]
        b.bids = sorted(s.book.bids.items(), key=lambda x: -x[0])
        b.asks = sorted(s.book.asks.items())
        b.in_sync, b.exch_ts_ms, b.recv_ns, b.version = s.in_sync, s.book.exch_ts_ms, s.book.recv_ns, s.book.version

    def apply(key, fn, now):
        s = syncs[key]
        v0, n0 = s.book.version, len(s.calls)
        res = fn()
        refresh(key)
        if len(s.calls) > n0:
            resyncs.append((key[0], now))
            if s.rule == sync_ref.SNAPSHOT_DIFF and key not in pending:
                pending.append(key)
        if res == sync_ref.OK and s.book.version != v0 and s.in_sync:
            got = eng.on_book_update(refbooks[key], now)
            out.extend(got or [])

    pending = deque(k for k, s in syncs.items() if s.rule == sync_ref.SNAPSHOT_DIFF)
    answers = {}

    def serve(now):
        for _ in range(len(pending)):
            key = pending.popleft()
            q = answers.get(key)
            done = False
            while q and not done:
                e = q.popleft()
                if e.status != 200:
                    continue
                body = orjson.loads(e.body)
                last = int(body["lastUpdateId"] if e.venue == "mexc_spot" else body["id"])
                lv = lambda side: [((Decimal(str(x["p"])), Decimal(str(x["s"])) * mult[key]) if isinstance(x, dict)  # noqa: E731
                                    else (Decimal(x[0]), Decimal(x[1]) * mult[key])) for x in side or ()]
                t = max(e.t, now)
                d = sync_ref.Diff(last, last, lv(body.get("bids")), lv(body.get("asks")), True, 0, t)
                apply(key, lambda: syncs[key].snapshot(d), t)
                done = True
            if not done:
                pending.append(key)

    for e in entries:
        if e.kind == "rest":
            path, param = SNAPSHOT_PATHS[e.venue]
            if e.path == path and (e.venue, e.params().get(param)) in vsym:
                answers.setdefault((e.venue, vsym[(e.venue, e.params()[param])]), deque()).append(e)
        elif any(v == e.venue for v, _ in syncs):
            if e.venue == "mexc_spot":
                evs = mexc_ref.reference_decode(e.data) if e.binary else []
            else:
                r = gate_ref.reference(e.data, e.venue, live=False)
                evs = r[1] if r[0] == "events" else []
            for ev in evs or []:
                if ev["type"] not in ("book_delta", "book_snapshot"):
                    continue
                name = ev["symbol"]
                if (e.venue, name) not in vsym:
                    continue
                key = (e.venue, vsym[(e.venue, name)])
                m = mult[key]
                d = sync_ref.Diff(ev["first"], ev["last"], [(Decimal(p), Decimal(q) * m) for p, q in ev["bids"]],
                                  [(Decimal(p), Decimal(q) * m) for p, q in ev["asks"]],
                                  ev["type"] == "book_snapshot", ev["ts"], e.t)
                apply(key, lambda: syncs[key].update(d), e.t)
        serve(e.t)
    return [dict(type="opportunity", **o) for o in out], resyncs


@pytest.mark.parametrize("case", [SPOT, OBU])
def test_replay_equals_pure_python_oracle(case):
    rc, text = _replay(*case)
    assert rc == 0
    lines = _lines(text)
    want_opps, want_resyncs = _oracle(*case)
    assert [x for x in lines if x["type"] == "opportunity"] == want_opps and want_opps
    assert [(x["venue"], x["t"]) for x in lines if x["type"] == "resync"] == want_resyncs


def _random_capture(path, seed):
    """A random two-venue stream (Gate spot diffs + MEXC protobuf diffs) around one mid price with
    random gaps, duplicates, `full` resets, malformed frames, late/failed snapshot answers."""
    import importlib.util
    import random

    spec = importlib.util.spec_from_file_location("make_captures", os.path.join(CAPS, "make_captures.py"))
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    rng = random.Random(seed)
    c = mc.Cap()
    c.rest("gateio_spot", "/api/v4/spot/currency_pairs/BTC_USDT", "", mc.GATE_PAIR)
    c.rest("mexc_spot", "/api/v3/exchangeInfo", "", mc.MEXC_INFO)
    ids = {"g": 100, "m": 5000}
    mids = {"g": 30000.0, "m": 30000.0}

    def levels(mid, tick, n):
        bids = [["%.*f" % (tick, mid - 0.5 - k * rng.choice((0.5, 1, 2))), "%.4f" % rng.uniform(0, 0.3)] for k in range(n)]
        asks = [["%.*f" % (tick, mid + 0.5 + k * rng.choice((0.5, 1, 2))), "%.4f" % rng.uniform(0, 0.3)] for k in range(n)]
        for lv in bids + asks:
            if rng.random() < 0.2:
                lv[1] = "0"
        return bids, asks

    def snap(v):
        b, a = levels(mids[v], 1 if v == "g" else 2, 8)
        b = [x for x in b if x[1] != "0"]
        a = [x for x in a if x[1] != "0"]
        if v == "g":
            c.rest("gateio_spot", "/api/v4/spot/order_book", "currency_pair=BTC_USDT&limit=100&with_id=true",
                   {"id": ids["g"], "current": 1, "update": 1, "bids": b, "asks": a},
                   status=200 if rng.random() > 0.1 else 503)
        else:
            c.rest("mexc_spot", "/api/v3/depth", "symbol=BTCUSDT&limit=1000",
                   {"lastUpdateId": ids["m"], "bids": b, "asks": a})

    snap("g")
    snap("m")
    for _ in range(300):
        v = rng.choice("gm")
        mids[v] += rng.uniform(-40, 40) if rng.random() < 0.1 else rng.uniform(-2, 2)
        r = rng.random()
        first = ids[v] + 1
        if r < 0.04:
            first += rng.randint(2, 5)                      # gap
        elif r < 0.07:
            first = ids[v]                                  # duplicate / overlap
        last = first + rng.randint(0, 2)
        b, a = levels(mids[v], 1 if v == "g" else 2, rng.randint(1, 4))
        if v == "g":
            if rng.random() < 0.03:
                mc.gate_diff(c, last, last, [x for x in b if x[1] != "0"], [x for x in a if x[1] != "0"], full=True)
            elif rng.random() < 0.02:
                c.text("gateio_spot", '{"channel":"spot.order_book_update","event":"update","result":{"s":')
            else:
                mc.gate_diff(c, first, last, b, a)
        else:
            if rng.random() < 0.02:
                c.binary("mexc_spot", b"\x0a\x03ab")
            else:
                mc.mexc_diff(c, first, last, [[p, q.rstrip("0").rstrip(".") or "0"] for p, q in b],
                             [[p, q.rstrip("0").rstrip(".") or "0"] for p, q in a])
        ids[v] = max(ids[v], last)
        if r < 0.06 or rng.random() < 0.02:
            snap(v)                                         # a (possibly late or early) snapshot answer
    c.lines.sort(key=lambda x: x["t"])
    data = b"".join(orjson.dumps(x) + b"\n" for x in c.lines)
    with open(path, "wb") as fh:
        fh.write(data)


@pytest.mark.parametrize("seed", range(8))
def test_replay_random_captures_equal_oracle(tmp_path, seed):
    cap = str(tmp_path / ("r%d.jsonl" % seed))
    _random_capture(cap, seed)
    rc, text = _replay(SPOT[0], cap)
    assert rc == 0
    lines = _lines(text)
    want_opps, want_resyncs = _oracle(SPOT[0], cap)
    assert [x for x in lines if x["type"] == "opportunity"] == want_opps
    assert [(x["venue"], x["t"]) for x in lines if x["type"] == "resync"] == want_resyncs
    assert lines[-1]["frames"] > 250 and lines[-1]["resyncs"] > 0 and lines[-1]["snapshots"] > 0
    assert _replay(SPOT[0], cap)[1] == text
