"""Audit-log completeness check shared by the executor unit tests (ScriptedVenue) and the live
integration tests (simulator): tests/ is on sys.path through tests/conftest.py."""
from __future__ import annotations

from decimal import Decimal

import orjson

FINAL = {"filled", "cancelled", "rejected"}


def read_audit(path) -> list[dict]:
    with open(path, "rb") as f:
        return [orjson.loads(x) for x in f.read().splitlines()]


def audit_events(path) -> list[dict]:
    """Only the executor's explicit audit events (not the trading-tagged log records)."""
    return [r for r in read_audit(path) if "event" in r]


def withdrawn(ev: list[dict]) -> set[str]:
    """Client ids whose request record could not be written when it was made (the audit file
    failed): never sent (``orders_withdrawn``), though the record may reach the file later."""
    return {c for e in ev if e["event"] == "orders_withdrawn" for c in e["data"]["client_ids"]}


def requested(ev: list[dict]) -> dict[str, int]:
    """client id -> seq of the audit record requesting it (trade_start carries both entry orders);
    withdrawn requests left out."""
    reqs = {}
    for e in ev:
        if e["event"] == "order_request":
            reqs[e["data"]["client_id"]] = e["seq"]
        elif e["event"] == "trade_start":
            for o in e["data"]["orders"]:
                reqs[o["client_id"]] = e["seq"]
    for cid in withdrawn(ev):
        reqs.pop(cid, None)
    return reqs


def check_audit(ev: list[dict], *, sent=None, allow_unreconciled=()) -> dict[str, dict]:
    """Every order request has an answer (ack) and exactly one final state recorded after it, every
    fill is booked once after its final, trades start and end in pairs, seqs are unique and
    increase; withdrawn requests (never sent) need no answer; ``sent``
    (client ids the venues received), when given, equals the requested ones.
    Returns client id -> the ``order_final`` data."""
    names = [e["event"] for e in ev]
    reqs = requested(ev)
    if sent is not None:
        assert set(sent) == set(reqs), (set(sent) ^ set(reqs))
    finals = {}
    for cid, req_seq in reqs.items():
        mine = [e for e in ev if e["data"] and e["data"].get("client_id") == cid and e["seq"] != req_seq]
        assert mine and mine[0]["seq"] > req_seq, (cid, [e["event"] for e in mine])
        assert any(e["event"] == "order_ack" for e in mine), cid
        if cid in allow_unreconciled:
            continue
        fin = [e for e in mine if e["event"] == "order_final"]
        assert len(fin) == 1 and fin[0]["data"]["status"] in FINAL, (cid, [e["event"] for e in mine])
        assert fin[0]["seq"] > [e for e in mine if e["event"] == "order_ack"][0]["seq"]
        booked = [e for e in mine if e["event"] == "fill_booked" and not e["data"].get("late")]
        if Decimal(fin[0]["data"]["filled_qty"]) != 0:
            assert len(booked) == 1 and booked[0]["data"]["qty"] == fin[0]["data"]["filled_qty"], cid
            assert booked[0]["seq"] > fin[0]["seq"]
        else:
            assert not booked, cid
        finals[cid] = fin[0]["data"]
    # a trade whose entry orders were withdrawn never started: it has no trade_done
    unsent = {e["data"]["trade_id"] for e in ev
              if e["event"] == "orders_withdrawn" and e["data"]["record"] == "trade_start"}
    starts = [e for e in ev if e["event"] == "trade_start" and e["data"].get("trade_id") not in unsent]
    assert len(starts) == names.count("trade_done")
    seqs = [e["seq"] for e in ev]
    assert seqs == sorted(set(seqs))            # unique and increasing
    return finals
