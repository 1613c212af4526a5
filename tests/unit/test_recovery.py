"""State rebuilt from the audit trail (cexnode/execution/recovery.py): the fold of a realistic audit
stream (tests/audit_stream.py: records written by the real AuditBackend from the real order objects)
equals the PositionBook that booked the same fills; orders without a final record are found; a
crash between ``order_final`` and ``fill_booked`` is booked at recovery; a checkpoint plus the tail
equals the whole fold; a checkpoint of another file is ignored; the error window is bounded."""
from decimal import Decimal

import orjson

from audit_stream import Stream, write_stream
from cexnode.execution.gateway import Side
from cexnode.execution.positions import PositionBook
from cexnode.execution.recovery import (AuditFold, checkpoint_path, fold_file, load_checkpoint, recover,
                                        split_symbol, write_checkpoint)


def _same_book(a: PositionBook, b: PositionBook):
    assert a.summary_rows() == b.summary_rows()
    assert a.daily == b.daily and a.venue_deltas == b.venue_deltas and a.positions() == b.positions()
    assert a.fill_count == b.fill_count and a.other_fees == b.other_fees


def test_fold_books_every_fill_as_the_executor_did(tmp_path):
    path = tmp_path / "audit.jsonl"
    booked, _ = write_stream(path)
    rec = recover(str(path))
    _same_book(rec.fold.positions, booked)
    assert rec.fold.open == {} and rec.fold.unbooked == {}
    assert rec.fold.bad_lines == 0                     # the torn line sealed after the crash is an
    f = AuditFold()                                    # order_ack: not parsed; a torn fill_booked is counted
    f.feed_line(b'{"ts":2,"seq":99,"event":"fill_booked","da')
    assert f.bad_lines == 1 and f.fills_booked == 0
    assert rec.offset == path.stat().st_size and not rec.from_checkpoint
    assert rec.fold.fills_booked == booked.fill_count


def test_orders_without_a_final_record_and_fills_not_yet_booked(tmp_path):
    path = tmp_path / "audit.jsonl"
    s = Stream(path, 1, PositionBook(), "q1w2e")
    s.start("live")
    s.trade(route="btc-ss", symbol="BTC/USDT", buy_venue="mexc_spot", sell_venue="gateio_spot", qty="0.01",
            buy_px="64810", sell_px="64995", buy_fill="0.01", sell_fill="0.01", buy_fee="0", buy_fee_asset="",
            sell_fee="0.64995", sell_fee_asset="USDT")
    # a second trade cut short by kill -9: both orders requested, the buy's final record written but
    # not its fill_booked, the sell with no answer at all
    s.trade_id += 1
    buy = s._req("cxq1w2e2b", "mexc_spot", "BTC/USDT", Side.BUY, Decimal("0.02"), Decimal("64800"), "btc-ss", "entry")
    sell = s._req("cxq1w2e2s", "gateio_spot", "BTC/USDT", Side.SELL, Decimal("0.02"), Decimal("64990"), "btc-ss",
                  "entry")
    s.audit("trade_start", dict(s._fields("btc-ss", "BTC/USDT", "mexc_spot", "gateio_spot", Decimal("0.02"),
                                          Decimal("64800"), Decimal("64990"), Decimal("3.8")),
                                tif="ioc", orders=[buy.audit_brief(), sell.audit_brief()]))
    s.audit("order_final", {"client_id": "cxq1w2e2b", "venue": "mexc_spot", "symbol": "BTC/USDT", "side": "buy",
                            "status": "filled", "qty": "0.02", "filled_qty": "0.02", "avg_price": "64800",
                            "fee": "0.00001", "fee_asset": "BTC", "order_id": "1", "reason": "", "result": "filled",
                            "trade_id": 2, "ambiguous": False, "purpose": "entry"})
    s.close()
    fold = recover(str(path)).fold
    assert list(fold.open) == ["cxq1w2e2s"]
    o = fold.open["cxq1w2e2s"]
    assert (o.venue, o.symbol, o.side, Decimal(o.qty), Decimal(o.price), o.trade_id, o.route) == \
        ("gateio_spot", "BTC/USDT", "sell", Decimal("0.02"), Decimal("64990"), 2, "btc-ss")
    assert list(fold.unbooked) == ["cxq1w2e2b"] and fold.unbooked["cxq1w2e2b"]["symbol"] == "BTC/USDT"
    assert [f for _, f in fold.outcomes] == [0, 0, 0]
    _same_book(fold.positions, s.positions)            # the unbooked fill is not in the book yet


def test_checkpoint_plus_tail_equals_the_whole_fold(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_stream(path)
    lines = path.read_bytes().splitlines(keepends=True)
    half = sum(len(x) for x in lines[: len(lines) // 2])
    part = AuditFold()
    assert fold_file(str(path), part, 0) == path.stat().st_size
    first = AuditFold()
    off = fold_file(str(path), first, 0, chunk=97)     # small chunks: lines cut across reads
    assert off == path.stat().st_size and first.to_dict() == part.to_dict()
    # a checkpoint at a line boundary in the middle, then the tail
    mid = AuditFold()
    with open(path, "rb") as f:
        for line in f.read(half).splitlines():
            mid.feed_line(line)
    write_checkpoint(str(path), mid, half)
    got = load_checkpoint(str(path))
    assert got is not None and got[1] == half
    assert orjson.dumps(got[0].to_dict()) == orjson.dumps(mid.to_dict())
    rec = recover(str(path))
    assert rec.from_checkpoint and orjson.dumps(rec.fold.to_dict()) == orjson.dumps(part.to_dict())
    _same_book(rec.fold.positions, part.positions)


def test_a_checkpoint_of_another_history_is_ignored(tmp_path):
    path = tmp_path / "audit.jsonl"
    write_stream(path)
    fold = recover(str(path)).fold
    write_checkpoint(str(path), AuditFold(), path.stat().st_size)     # claims an empty history
    other = tmp_path / "other.jsonl"
    other.write_bytes(b'{"ts":5,"seq":1,"event":"executor_start","data":{}}\n' + path.read_bytes())
    cp = checkpoint_path(str(path))
    (tmp_path / "other.jsonl.checkpoint").write_bytes(open(cp, "rb").read())
    assert load_checkpoint(str(other)) is None                         # its first bytes differ
    path.write_bytes(path.read_bytes()[:100])                          # the file got shorter
    assert load_checkpoint(str(path)) is None
    (tmp_path / "x.checkpoint").write_bytes(b"not json")
    assert load_checkpoint(str(path), str(tmp_path / "x.checkpoint")) is None
    assert fold.records > 0


def test_error_window_keeps_only_recent_outcomes():
    f = AuditFold(window_s=10)
    for i in range(100):
        f.feed({"event": "order_final", "ts": i * 1_000_000_000,
                "data": {"client_id": "c%d" % i, "result": "rejected" if i % 3 == 0 else "filled",
                         "filled_qty": "0"}})
    assert [ts // 1_000_000_000 for ts, _ in f.outcomes] == list(range(89, 100))
    assert sum(x for _, x in f.outcomes_since(95 * 1_000_000_000)) == 2    # 96 and 99 failed


def test_split_symbol():
    assert split_symbol("BTC/USDT") == ("BTC", "USDT") and split_symbol("ETH/USDT:USDT") == ("ETH", "USDT")


def test_position_book_dump_and_load_round_trip(tmp_path):
    booked, _ = write_stream(tmp_path / "a.jsonl")
    again = PositionBook.load(orjson.loads(orjson.dumps(booked.dump())))
    _same_book(again, booked)
    # the loaded book goes on booking exactly as the original (FIFO lots restored)
    for pb in (booked, again):
        pb.apply_fill(route="btc-sp", venue="gateio_spot", base="BTC", quote="USDT", side=Side.SELL,
                      qty=Decimal("0.004"), price=Decimal("65100"), ts_ns=1_700_000_000_000_000_000)
    _same_book(again, booked)
