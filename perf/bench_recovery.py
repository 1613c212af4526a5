"""Recovery from the audit trail at start (issue 21): how long a restart takes to rebuild its state.

recovery   an audit file of ``--mb`` MB (default 1,024; 64 with --quick) of realistic executor
           records (a filled trade, a hedged one-leg trade and rejections, repeated with fresh
           ids and times) is folded by cexnode.execution.recovery.recover:
           * ``median_ns`` (the headline): with the checkpoint the node keeps current
             (log.audit.checkpoint_interval_s, default 60 s), i.e. the checkpoint plus the
             records written after it (the tail: ``tail_mb``, a minute of a busy node's records);
           * ``full_fold_s``: without a checkpoint, the whole file (first start on an old file,
             or a checkpoint that does not match it).
           Target: ready to trade within 30 s of start with a 1 GB audit file.
Run: ``python perf/run.py --only recovery`` (writes perf/results/recovery.json).
"""
from __future__ import annotations

import os
import tempfile
import time

import orjson

TAIL_MB = 4


def _write_history(path: str, target_bytes: int) -> int:
    """Append realistic records until the file holds ``target_bytes``; returns the trade count."""
    t = time.time_ns() - 3_600_000_000_000
    seq = 0
    trades = 0
    with open(path, "ab") as f:
        while f.tell() < target_bytes:
            lines = []
            for k in range(200):
                trades += 1
                tid = trades
                cb, cs, ch = "cxbench%xb" % tid, "cxbench%xs" % tid, "cxbench%xh1" % tid
                one_leg = k % 5 == 0
                recs = [
                    ("trade_rejected", {"trade_id": tid, "route": "btc", "symbol": "BTC/USDT", "buy_venue": "mexc_spot",
                                        "sell_venue": "gateio_spot", "qty": "0.01", "reason": "balance",
                                        "detail": "mexc_spot USDT: need 650.2"}),
                    ("trade_start", {"trade_id": tid, "route": "btc", "symbol": "BTC/USDT", "buy_venue": "mexc_spot",
                                     "sell_venue": "gateio_spot", "qty": "0.01", "buy_price": "65000.1",
                                     "sell_price": "65100.2", "net_profit": "0.9", "tif": "ioc",
                                     "orders": [{"client_id": cb, "venue": "mexc_spot", "symbol": "BTC/USDT", "side": "buy",
                                                 "qty": "0.01", "price": "65000.1"},
                                                {"client_id": cs, "venue": "gateio_spot", "symbol": "BTC/USDT",
                                                 "side": "sell", "qty": "0.01", "price": "65100.2"}]}),
                ]
                for cid, venue, side, px, filled in ((cb, "mexc_spot", "buy", "65000.1", "0.01"),
                                                     (cs, "gateio_spot", "sell", "65100.2",
                                                      "0" if one_leg else "0.01")):
                    state = {"client_id": cid, "venue": venue, "symbol": "BTC/USDT", "side": side,
                             "status": "filled" if filled != "0" else "cancelled", "qty": "0.01",
                             "filled_qty": filled, "avg_price": px if filled != "0" else None, "fee": "0.00325",
                             "fee_asset": "USDT", "order_id": "9%d" % tid, "reason": ""}
                    recs += [("order_update", dict(state, known=True)),
                             ("order_ack", {"client_id": cid, "venue": venue, "outcome": "definitive",
                                            "order_id": "9%d" % tid, "latency_us": 450, "state": state,
                                            "trade_id": tid, "rt_us": 470}),
                             ("order_final", dict(state, result="filled" if filled != "0" else "unfilled",
                                                  trade_id=tid, ambiguous=False, purpose="entry"))]
                    if filled != "0":
                        recs.append(("fill_booked", {"client_id": cid, "route": "btc", "venue": venue, "side": side,
                                                     "qty": filled, "price": px, "fee": "0.00325", "fee_asset": "USDT",
                                                     "realised": "-0.00325"}))
                if one_leg:
                    recs += [("hedge_plan", {"trade_id": tid, "kind": "hedge", "venue": "gateio_spot", "side": "sell",
                                             "qty": "0.01", "limit_price": "64990", "residual": "0.01"}),
                             ("order_request", {"client_id": ch, "venue": "gateio_spot", "symbol": "BTC/USDT",
                                                "side": "sell", "qty": "0.01", "price": "64990", "tif": "ioc",
                                                "route": "btc", "purpose": "hedge", "reduce_only": False,
                                                "trade_id": tid}),
                             ("order_final", {"client_id": ch, "venue": "gateio_spot", "symbol": "BTC/USDT",
                                              "side": "sell", "status": "filled", "qty": "0.01", "filled_qty": "0.01",
                                              "avg_price": "64995", "fee": "0.0065", "fee_asset": "USDT",
                                              "order_id": "8%d" % tid, "reason": "", "result": "filled",
                                              "trade_id": tid, "ambiguous": False, "purpose": "hedge"}),
                             ("fill_booked", {"client_id": ch, "route": "btc", "venue": "gateio_spot", "side": "sell",
                                              "qty": "0.01", "price": "64995", "fee": "0.0065", "fee_asset": "USDT",
                                              "realised": "-0.0565"})]
                recs.append(("trade_done", {"trade_id": tid, "route": "btc", "status": "hedged" if one_leg else "done",
                                            "orders": [cb, cs]}))
                for ev, data in recs:
                    seq += 1
                    t += 50_000
                    lines.append(orjson.dumps({"ts": t, "seq": seq, "run": "bench", "pid": 1, "event": ev,
                                               "logger": "execution.executor", "tags": ["execution", "trading"],
                                               "data": data}))
            f.write(b"\n".join(lines) + b"\n")
    return trades


def bench_recovery(quick: bool):
    from cexnode.execution.recovery import recover, write_checkpoint

    mb = int(os.environ.get("CEXNODE_RECOVERY_MB", "64" if quick else "1024"))
    with tempfile.TemporaryDirectory(prefix="cexnode-recovery-") as d:
        path = os.path.join(d, "audit.jsonl")
        t0 = time.monotonic()
        _write_history(path, (mb - TAIL_MB) << 20)
        head = os.path.getsize(path)
        gen_s = time.monotonic() - t0
        # the checkpoint as the node's checkpointer leaves it, then a busy minute's records after it
        cp = recover(path, use_checkpoint=False)
        write_checkpoint(path, cp.fold, cp.offset)
        trades = _write_history(path, head + (TAIL_MB << 20))
        size = os.path.getsize(path)
        full = recover(path, use_checkpoint=False)
        runs = [recover(path) for _ in range(3 if quick else 5)]
        assert all(r.from_checkpoint for r in runs)
        assert runs[0].fold.positions.summary_rows() == full.fold.positions.summary_rows()
        secs = sorted(r.seconds for r in runs)
    return {
        "name": "recovery", "median_ns": secs[len(secs) // 2] * 1e9, "p99_ns": secs[-1] * 1e9,
        "target_ns": 30e9,
        "level": "start-up state rebuild from the audit trail: checkpoint + %d MB tail of a %d MB file" % (TAIL_MB, mb),
        "audit_mb": round(size / 2 ** 20, 1), "tail_mb": TAIL_MB, "records": full.fold.records,
        "full_fold_s": round(full.seconds, 3), "first_fold_s": round(cp.seconds, 3),
        "generate_s": round(gen_s, 1), "trades_in_tail": trades, "samples": len(secs),
    }


bench_recovery.bench_name = "recovery"

BENCHMARKS = [bench_recovery]
