"""Each venue's subscribe and unsubscribe frames of a book, as the adapters build them (no network):
the unsubscribe is the venue's documented request for the same stream (tests/resources samples),
and both carry the book's request id, which stays the book's for life; a book added later, or
again after its removal, gets a fresh one, and the default ack reader maps an echoed id back to
its book (a removed book's id is forgotten: tests/integration/test_feed_dynamic.py)."""
from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from cexnode.adapters.base import VenueAdapter
from cexnode.adapters.registry import descriptor
from cexnode.component import NodeContext
from cexnode.config import load_config_text
from cexnode.metrics import NodeMetrics

RES = Path(__file__).resolve().parents[1] / "resources"

YAML = """
node: {name: t}
log: {console: {enabled: false}, audit: {path: "%(audit)s", fsync: never}}
metrics: {port: 0}
venues:
  %(venue)s: {symbols: [], book_depth: 100}
"""


def adapter(tmp_path, venue):
    cfg = load_config_text(YAML % {"audit": tmp_path / "a.jsonl", "venue": venue})
    return descriptor(venue).create_adapter(getattr(cfg.venues, venue), NodeContext(metrics=NodeMetrics()))


@pytest.mark.parametrize("venue,book", [("gateio_spot", "BTC_USDT"), ("gateio_futures", "BTC_USDT")])
def test_gate_unsubscribe_is_the_subscribe_request_with_its_event_turned(tmp_path, venue, book):
    a = adapter(tmp_path, venue)
    sub = orjson.loads(a.subscription_messages([book])[0])
    unsub = orjson.loads(a.unsubscription_messages([book])[0])
    sample = json.loads((RES / venue / "ws_subscribe_request.json").read_text())
    assert set(sample) <= set(sub) and sub["channel"] == sample["channel"] and sub["event"] == "subscribe"
    assert sub["payload"] == sample["payload"]           # book_depth 100: the sample's stream
    assert unsub["event"] == "unsubscribe"
    assert {k: v for k, v in unsub.items() if k not in ("event", "time")} == \
        {k: v for k, v in sub.items() if k not in ("event", "time")}
    assert unsub["id"] == sub["id"] == a.request_id(book)


def test_mexc_unsubscribe_names_the_depth_topic_like_the_documented_request(tmp_path):
    a = adapter(tmp_path, "mexc_spot")
    sub = orjson.loads(a.subscription_messages(["BTCUSDT"])[0])
    unsub = orjson.loads(a.unsubscription_messages(["BTCUSDT"])[0])
    sample = json.loads((RES / "mexc" / "ws_unsubscribe_request.json").read_text())
    assert unsub["method"] == sample["method"] == "UNSUBSCRIPTION" and sub["method"] == "SUBSCRIPTION"
    assert unsub["params"] == sub["params"] and len(unsub["params"]) == 1
    assert unsub["params"][0].endswith("@BTCUSDT") and ".pb@" in unsub["params"][0]
    assert unsub["id"] == sub["id"] == a.request_id("BTCUSDT")


@pytest.mark.parametrize("venue", ["mexc_spot", "gateio_spot", "gateio_futures"])
def test_request_ids_are_the_books_for_life_and_fresh_for_a_new_book(tmp_path, venue):
    a = adapter(tmp_path, venue)
    first = [orjson.loads(m)["id"] for m in a.subscription_messages(["A_1", "B_1", "C_1"])]
    assert first == [1, 2, 3]
    # built again (a re-send, an unsubscribe): the same ids, whatever the order asked in
    assert [orjson.loads(m)["id"] for m in a.subscription_messages(["C_1", "A_1"])] == [3, 1]
    assert a.request_id("D_1") == 4
    # the default ack reader (the fallback behind the venue's own): an echoed id names its book
    assert VenueAdapter.subscription_symbols(a, {"id": 2}) == ["B_1"]
    assert VenueAdapter.subscription_symbols(a, {"id": 99}) == []
