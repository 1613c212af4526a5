"""BookRouter: BookSync → Book → ArbEngine → callbacks, driven through its Python entries (py_depth,
snapshot) and through the real Gate spot parser; opportunities checked against tests/reference/arb_ref."""
from __future__ import annotations

import time
import weakref
from decimal import Decimal

import pytest

from cexnode._core.arb import ArbEngine
from cexnode._core.book import (APPLY_OK, RESYNC_GAP,
                                RESYNC_REQUESTED, SYNC_SNAPSHOT_DIFF, SYNC_STREAM_FULL)
from cexnode._core.feed import MSG_ACK
from cexnode._core.router import BookRouter
from reference import arb_ref as ref

MEXC, GATE, FUT = 0, 1, 2
P, Q = 2, 4           # price scale (cents), qty scale
SID = 7


def px(s):
    return int(Decimal(s).scaleb(P))


def qy(s):
    return int(Decimal(s).scaleb(Q))


def make(now_fixed=None, **params):
    arb = ArbEngine(**params)
    r = BookRouter(arb)
    bm = r.add_book(MEXC, SID, SYNC_SNAPSHOT_DIFF, 50)
    bg = r.add_book(GATE, SID, SYNC_STREAM_FULL, 50)
    legs = [dict(venue="mexc_spot", book=bm, taker_fee=Decimal("0.001"), tick=1, step=1),
            dict(venue="gateio_spot", book=bg, taker_fee=Decimal("0.002"), tick=1, step=1)]
    arb.add_route("r1", "BTC/USDT", P, Q, legs)
    opps, resyncs = [], []
    r.on_opportunities = opps.extend
    r.on_resync = lambda v, s, reason: resyncs.append((v, s, reason))
    if now_fixed is not None:
        r.set_now(now_fixed)
    return r, arb, bm, bg, opps, resyncs


def test_add_book_idempotent_and_rule_conflict():
    r = BookRouter()
    b = r.add_book(GATE, 3, SYNC_SNAPSHOT_DIFF, 20)
    assert r.add_book(GATE, 3, SYNC_SNAPSHOT_DIFF, 20) is b
    assert r.book(GATE, 3) is b and b.venue == GATE and b.symbol_id == 3 and b.depth == 20
    with pytest.raises(ValueError):
        r.add_book(GATE, 3, SYNC_STREAM_FULL)
    with pytest.raises(ValueError):
        r.add_book(9, 1)
    # growth keeps earlier books at their keys
    b2 = r.add_book(MEXC, 100)
    assert r.book(GATE, 3) is b and r.book(MEXC, 100) is b2
    assert r.book(FUT, 5, create=False) is None
    assert [k for k, _ in r.books()] == [(MEXC, 100), (GATE, 3)]
    assert r.all_in_sync() is False


def test_unrouted_depth_counted_not_applied():
    r = BookRouter()
    r.add_book(GATE, 1)
    assert r.py_depth(GATE, 2, 1, 1, [(100, 1)], [], True) == 0
    assert r.py_depth(MEXC, 1, 1, 1, [(100, 1)], [], True) == 0
    assert r.unrouted == 2 and r.depth_updates == 0


def test_remove_book_drops_it_and_counts_its_later_frames():
    t0 = 1_700_000_000_000_000_000
    r, arb, bm, bg, opps, resyncs = make(now_fixed=t0, min_profit="0.01")
    other = r.add_book(MEXC, SID + 1, SYNC_SNAPSHOT_DIFF, 50)
    assert r.n_books == 3
    # a book a route still reads is refused, and stays
    with pytest.raises(RuntimeError, match="r1"):
        r.remove_book(MEXC, SID)
    assert r.book(MEXC, SID, create=False) is bm and r.n_books == 3
    assert arb.remove_route("r1")
    assert r.remove_book(MEXC, SID) is True
    assert r.remove_book(MEXC, SID) is False and r.remove_book(FUT, 3) is False
    assert r.n_books == 2
    assert [k for k, _ in r.books()] == [(MEXC, SID + 1), (GATE, SID)]
    assert r.book(MEXC, SID, create=False) is None and r.book_sync(MEXC, SID) is None
    # later frames for it: counted apart from unrouted ones, dropped, the others unaffected
    version = bm.version
    assert r.py_depth(MEXC, SID, 11, 12, [(px("100"), qy("1"))], [], recv_ns=t0) == 0
    assert r.py_depth(MEXC, SID, 13, 13, [(px("100"), qy("1"))], [], recv_ns=t0) == 0
    assert r.py_depth(MEXC, SID + 2, 1, 1, [(px("100"), qy("1"))], [], True, recv_ns=t0) == 0
    assert r.counters(MEXC)["removed_book_msgs"] == 2 and r.unrouted == 1 and r.depth_updates == 0
    assert bm.version == version and resyncs == []
    with pytest.raises(KeyError):
        r.snapshot(MEXC, SID, 10, [(px("99"), qy("2"))], [(px("101"), qy("2"))])
    assert r.snapshot(MEXC, SID + 1, 10, [(px("99"), qy("2"))], [(px("101"), qy("2"))]) == APPLY_OK
    assert other.in_sync
    # a relisting: a fresh book at the same key; its frames are routed again
    again = r.add_book(MEXC, SID, SYNC_SNAPSHOT_DIFF, 50)
    assert again is not bm and not again.in_sync and again.version == 0 and r.n_books == 3
    assert r.snapshot(MEXC, SID, 10, [(px("99"), qy("2"))], [(px("101"), qy("2"))], recv_ns=t0) == APPLY_OK
    r.py_depth(MEXC, SID, 11, 11, [(px("99.5"), qy("1"))], [], recv_ns=t0)
    assert again.in_sync and again.best_bid() == (px("99.5"), qy("1")) and r.depth_updates == 1
    assert r.counters(MEXC)["removed_book_msgs"] == 2
    # and a route on it works as before
    arb.add_route("r1", "BTC/USDT", P, Q, [dict(venue="mexc_spot", book=again, taker_fee="0.001", tick=1, step=1),
                                           dict(venue="gateio_spot", book=bg, taker_fee="0.002", tick=1, step=1)])
    r.py_depth(GATE, SID, 1, 1, [(px("102.00"), qy("1"))], [(px("102.50"), qy("1"))], True,
               exch_ts_ms=t0 // 1_000_000, recv_ns=t0)
    assert [(o.route, o.buy_venue) for o in opps] == [("r1", "mexc_spot")]


def test_removed_books_are_freed():
    r = BookRouter(ArbEngine())
    refs = [weakref.ref(r.add_book(v, sid, SYNC_SNAPSHOT_DIFF, 20)) for v in (MEXC, GATE) for sid in range(50)]
    for sid in range(50):
        r.snapshot(MEXC, sid, 1, [(px("99"), qy("1"))], [(px("100"), qy("1"))])
    shadow = weakref.ref(r.audit_begin(MEXC, 4).book)
    assert all(w() is not None for w in refs)
    for v in (MEXC, GATE):
        for sid in range(0, 50, 2):
            assert r.remove_book(v, sid)
    assert r.audit_pending(MEXC) is None and shadow() is None     # its audit ended with it
    assert r.n_books == 50 and len(r.books()) == 50
    for k, w in enumerate(refs):
        sid = k % 50
        assert (w() is None) == (sid % 2 == 0), (k, sid)
    # growing the key space after removals keeps both the books and the removed marks
    r.add_book(GATE, 500)
    assert r.py_depth(MEXC, 0, 2, 2, [(px("99"), qy("1"))], []) == 0
    assert r.counters(MEXC)["removed_book_msgs"] == 1 and r.book(MEXC, 1, create=False).in_sync


def test_snapshot_diff_flow_resync_and_callbacks():
    t0 = 1_700_000_000_000_000_000
    r, arb, bm, bg, opps, resyncs = make(now_fixed=t0)
    # diffs before the snapshot are buffered, then replayed on the snapshot
    assert r.py_depth(MEXC, SID, 11, 12, [(px("100"), qy("1"))], [], recv_ns=t0) == 0
    assert r.book_sync(MEXC, SID).buffered == 1
    assert r.snapshot(MEXC, SID, 10, [(px("99"), qy("2"))], [(px("101"), qy("2"))], recv_ns=t0) == APPLY_OK
    assert bm.in_sync and bm.last_id == 12 and bm.best_bid() == (px("100"), qy("1"))
    # gap -> one resync callback, book out of sync
    r.py_depth(MEXC, SID, 20, 21, [(px("98"), qy("1"))], [], recv_ns=t0)
    assert not bm.in_sync and resyncs == [(MEXC, SID, RESYNC_GAP)]
    r.py_depth(MEXC, SID, 22, 22, [(px("98"), qy("1"))], [], recv_ns=t0)
    assert resyncs == [(MEXC, SID, RESYNC_GAP)]          # reported once per episode
    assert r.resyncs == 1 and r.counters(MEXC)["resyncs"] == 1
    # per-venue handler takes precedence
    got = []
    r.set_resync_handler(MEXC, lambda sid, reason: got.append((sid, reason)))
    r.snapshot(MEXC, SID, 22, [(px("99"), qy("2"))], [(px("101"), qy("2"))], recv_ns=t0)
    assert bm.in_sync
    r.request_resync(MEXC, SID)
    assert got == [(SID, RESYNC_REQUESTED)] and len(resyncs) == 1 and not bm.in_sync
    assert opps == []


def test_opportunity_emitted_immediately_and_matches_oracle():
    t0 = 1_700_000_000_000_000_000
    r, arb, bm, bg, opps, _ = make(now_fixed=t0, min_profit="0.01")
    r.snapshot(MEXC, SID, 5, [(px("99.00"), qy("3"))], [(px("100.00"), qy("2")), (px("100.50"), qy("1"))], recv_ns=t0)
    assert opps == []          # one leg only
    # gate obu full push: bid well above mexc ask -> opportunity right inside the call
    seen_inside = []
    r.on_opportunities = lambda lst: (seen_inside.append(r.depth_updates), opps.extend(lst))
    r.py_depth(GATE, SID, 1, 1, [(px("101.00"), qy("1.5")), (px("100.80"), qy("1"))], [(px("101.50"), qy("1"))],
               True, exch_ts_ms=t0 // 1_000_000, recv_ns=t0)
    assert seen_inside == [r.depth_updates] and len(opps) == 1
    o = opps[0]
    assert (o.buy_venue, o.sell_venue, o.t) == ("mexc_spot", "gateio_spot", t0)
    # oracle on the same books
    def rb(book, venue):
        b, a = book.top()
        return ref.RefBook(venue, [(Decimal(p).scaleb(-P), Decimal(q).scaleb(-Q)) for p, q in b],
                           [(Decimal(p).scaleb(-P), Decimal(q).scaleb(-Q)) for p, q in a],
                           True, book.exch_ts_ms, book.recv_ns, book.version)
    rm, rg = rb(bm, "mexc_spot"), rb(bg, "gateio_spot")
    eng = ref.RefEngine(ref.RefParams(min_profit=Decimal("0.01")))
    tick, step = Decimal(1).scaleb(-P), Decimal(1).scaleb(-Q)
    eng.add_route(ref.RefRoute("r1", "BTC/USDT", P, Q, [ref.RefLeg("mexc_spot", rm, Decimal("0.001"), tick, step),
                                                         ref.RefLeg("gateio_spot", rg, Decimal("0.002"), tick, step)]))
    want = eng.on_book_update(rg, t0)
    assert want is not None and [o.json_fields() for o in opps] == want
    # same books unchanged: no second emission; the counters moved
    assert r.opportunities == 1 and r.evaluations >= 2


def test_stale_and_unchanged_updates_do_not_evaluate():
    t0 = 1_700_000_000_000_000_000
    r, arb, bm, bg, opps, _ = make(now_fixed=t0)
    r.snapshot(MEXC, SID, 5, [(px("99"), qy("1"))], [(px("100"), qy("1"))], recv_ns=t0)
    ev = r.evaluations
    assert r.py_depth(MEXC, SID, 3, 5, [(px("98"), qy("1"))], [], recv_ns=t0) == 0   # stale
    assert r.evaluations == ev
    r.py_depth(MEXC, SID, 6, 6, [(px("98"), qy("0"))], [], recv_ns=t0)                # delete absent: no change
    assert r.evaluations == ev and bm.last_id == 6
    r.py_depth(MEXC, SID, 7, 7, [(px("98"), qy("1"))], [], recv_ns=t0)
    assert r.evaluations == ev + 1


def test_live_clock_records_tick_to_decision():
    r, arb, bm, bg, opps, _ = make()
    assert r.quantile(0.5) is None and r.last_tick_to_decision_ns == -1
    now = time.time_ns()
    r.snapshot(MEXC, SID, 5, [(px("99"), qy("1"))], [(px("100"), qy("1"))], recv_ns=now)
    for i in range(10):
        r.py_depth(MEXC, SID, 6 + i, 6 + i, [(px("98"), qy(str(i + 1)))], [], recv_ns=time.time_ns())
    assert r.latency_samples() == 11
    assert 0 <= r.quantile(0.5) <= r.quantile(0.99) < 1_000_000_000
    assert r.tick_to_decision.quantile(0.5) == r.quantile(0.5)
    assert r.tick_to_decision_hist.count == 11
    assert not r.clock_fixed


def test_messages_and_parse_errors_routed():
    r = BookRouter()
    seen, per_venue, errs = [], [], []
    r.message_handler = lambda v, k, m: seen.append((v, k, m))
    r.parse_error_handler = lambda v, reason: errs.append((v, reason))
    r.py_message(GATE, MSG_ACK, {"a": 1})
    r.set_message_handler(MEXC, lambda k, m: per_venue.append((k, m)))
    r.py_message(MEXC, MSG_ACK, {"b": 2})
    r.py_parse_error(FUT, "bad frame")
    assert seen == [(GATE, MSG_ACK, {"a": 1})] and per_venue == [(MSG_ACK, {"b": 2})]
    assert errs == [(FUT, "bad frame")]
    assert r.counters(GATE)["messages"] == 1 and r.counters(FUT)["parse_errors"] == 1


def test_request_resync_venue_and_all_in_sync():
    t0 = 10**18
    r = BookRouter()
    r.set_now(t0)
    r.add_book(GATE, 1)
    r.add_book(GATE, 2)
    r.add_book(MEXC, 1)
    for v, s in ((GATE, 1), (GATE, 2), (MEXC, 1)):
        r.snapshot(v, s, 1, [(1, 1)], [(2, 1)])
    assert r.all_in_sync()
    r.request_resync_venue(GATE)
    assert not r.book(GATE, 1).in_sync and not r.book(GATE, 2).in_sync and r.book(MEXC, 1).in_sync
    assert not r.all_in_sync()


def test_real_gate_parser_into_router():
    from cexnode._core.parsers.gateio_spot import GateSpotParser
    from cexnode._core.symbols import SymbolRegistry

    reg = SymbolRegistry()
    reg.add_instruments([{"venue": "gateio_spot", "symbol": "ETH/USDT", "venue_symbol": "ETH_USDT",
                          "tick": "0.01", "qty_step": "0.0001"}])
    reg.freeze()
    smap = reg.map("gateio_spot")
    sid = smap.id_of("ETH_USDT")
    inst = smap.instrument(sid)
    r = BookRouter()
    r.set_now(10**18)
    r.add_book(GATE, sid)
    parser = GateSpotParser(smap, r)
    r.snapshot(GATE, sid, 100, [(300000, 10**inst["qty_scale"])], [(300100, 10**inst["qty_scale"])])
    frame = (b'{"time":1,"time_ms":1000,"channel":"spot.order_book_update","event":"update","result":'
             b'{"t":1000,"s":"ETH_USDT","U":101,"u":102,"b":[["3000.5","2"]],"a":[]}}')
    parser.feed_bytes(frame, False, 10**18)
    b = r.book(GATE, sid)
    assert b.in_sync and b.last_id == 102
    assert b.best_bid()[0] == 3000 * 10**inst["price_scale"] + 5 * 10**(inst["price_scale"] - 1)
    assert r.depth_updates == 1
    parser.feed_bytes(b'{"channel":"spot.order_book_update","event":"update","result":{', False, 10**18)
    assert r.counters(GATE)["parse_errors"] == 1 and b.last_id == 102


def test_register_metrics_series_and_latency_histogram():
    from prometheus_client import generate_latest

    from cexnode.metrics import NodeMetrics

    m = NodeMetrics(node_name="t")
    r, arb, bm, bg, opps, _ = make()
    r.register_metrics(m)
    now = time.time_ns()
    r.snapshot(MEXC, SID, 5, [(px("99"), qy("1"))], [(px("100"), qy("1"))], recv_ns=now)
    r.py_depth(MEXC, SID, 6, 6, [(px("98"), qy("1"))], [], recv_ns=time.time_ns())
    r.py_message(GATE, MSG_ACK, {})
    text = generate_latest(m.registry).decode()
    assert 'cexnode_router_depth_updates_total{venue="mexc_spot"} 1.0' in text
    assert 'cexnode_router_messages_total{venue="gateio_spot"} 1.0' in text
    assert "cexnode_router_evaluations_total 2.0" in text
    assert m.tick_to_decision().count == 2
