"""In-process checks of the config model: types, secrets, reload classification, schema."""
from __future__ import annotations

import dataclasses
import pickle
import re
from decimal import Decimal

import pytest

from cexnode.config import (VENUES, ConfigError, Secret, diff_reload, json_schema, load_config_text,
                            markdown_reference, redacted_dict)

GOOD = """\
venues:
  mexc_spot:
    taker_fee: 0.0005
    api_key: ${CX_UNIT_KEY}
    api_secret: ${CX_UNIT_SECRET:-fallback-secret}
    symbols: [BTC/USDT]
  gateio_spot:
    symbols: [BTC/USDT]
arbitrage:
  min_profit: 0.1
  routes:
    - {symbol: BTC/USDT, venues: [mexc_spot, gateio_spot]}
"""


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("CX_UNIT_KEY", "key-123")
    monkeypatch.delenv("CX_UNIT_SECRET", raising=False)


def test_decimals_are_exact_and_config_frozen(env):
    cfg = load_config_text(GOOD)
    assert cfg.venues.mexc_spot.taker_fee == Decimal("0.0005")
    assert cfg.arbitrage.min_profit == Decimal("0.1")  # not 0.1000000000000000055...
    assert isinstance(cfg.venues.mexc_spot.symbols, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.arbitrage.min_profit = Decimal(1)  # type: ignore[misc]


def test_secret_never_renders(env):
    cfg = load_config_text(GOOD)
    key = cfg.venues.mexc_spot.api_key
    assert key.get() == "key-123"
    assert cfg.venues.mexc_spot.api_secret.get() == "fallback-secret"
    for text in (repr(cfg), str(cfg), "%s" % key, "{}".format(key), f"{key!r}", str(redacted_dict(cfg))):
        assert "key-123" not in text and "fallback-secret" not in text
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


def test_error_carries_path_and_line(env):
    with pytest.raises(ConfigError) as ei:
        load_config_text(GOOD.replace("min_profit: 0.1", "min_profit: -1"), source="x.yaml")
    e = ei.value
    assert e.path == "arbitrage.min_profit" and e.line == 10 and e.file == "x.yaml"
    assert str(e).startswith("config error in x.yaml:10 at key 'arbitrage.min_profit'")


def test_diff_reload_classifies(env):
    a = load_config_text(GOOD)
    b = load_config_text(GOOD.replace("min_profit: 0.1", "min_profit: 0.7").replace("taker_fee: 0.0005", "taker_fee: 0.0007"))
    hot, cold = diff_reload(a, b)
    assert hot == ["venues.mexc_spot.taker_fee", "arbitrage.min_profit"] and cold == []
    c = load_config_text(GOOD.replace("symbols: [BTC/USDT]\n  gateio_spot", "symbols: [BTC/USDT, ETH/USDT]\n  gateio_spot"))
    hot, cold = diff_reload(a, c)
    assert hot == [] and cold == ["venues.mexc_spot.symbols"]


def test_merge_keeps_critical_fields(env):
    from cexnode.node import _merge_reloadable
    a = load_config_text(GOOD)
    b = load_config_text(GOOD.replace("min_profit: 0.1", "min_profit: 0.7").replace(
        "symbols: [BTC/USDT]\n  gateio_spot", "symbols: [BTC/USDT, ETH/USDT]\n  gateio_spot"))
    m = _merge_reloadable(a, b)
    assert m.arbitrage.min_profit == Decimal("0.7")
    assert m.venues.mexc_spot.symbols == ("BTC/USDT",)


def test_schema_marks_reloadable_and_secrets():
    s = json_schema()
    venue = s["properties"]["venues"]["properties"]["mexc_spot"]["anyOf"][0]["properties"]
    assert venue["taker_fee"]["x-reload"] is True
    assert "x-reload" not in venue["symbols"]
    assert venue["api_key"]["anyOf"][0]["x-secret"] is True


def test_configuration_reference_is_current():
    """docs/configuration.md carries the generated reference between its markers, as generated now."""
    import pathlib
    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    begin, end = "<!-- config-reference:begin -->\n", "<!-- config-reference:end -->"
    assert doc.count(begin) == 1 and doc.count(end) == 1
    table = doc.split(begin, 1)[1].split(end, 1)[0]
    assert table == markdown_reference(), \
        "docs/configuration.md config reference is stale: run `python scripts/update_docs.py`"


def test_configuration_reference_documents_every_key_once():
    """Every leaf key of the schema has one row; the venue keys are described once, under
    venues.<venue>, with every venue named."""
    ref = markdown_reference()
    keys = re.findall(r"^\| `([^`]+)` \|", ref, re.M)
    assert len(keys) == len(set(keys))
    assert "venues.<venue>.taker_fee" in keys and "venues.<venue>.rest.timeout_s" in keys
    assert not any(k.startswith(("venues.mexc_spot.", "venues.gateio_spot.", "venues.gateio_futures.")) for k in keys)
    for venue in VENUES:
        assert "- `venues.%s`: " % venue in ref
    schema = json_schema()

    def leaves(node, prefix):
        node = node.get("anyOf", [node])[0]
        if node.get("type") == "object" and "properties" in node:
            for name, sub in node["properties"].items():
                yield from leaves(sub, prefix + name + ".")
        elif node.get("type") == "array" and node["items"].get("type") == "object" and "properties" in node["items"]:
            yield from leaves(node["items"], prefix[:-1] + "[].")
        else:
            yield prefix[:-1]

    expected = set()
    for k in leaves(schema, ""):
        for venue in VENUES:
            k = k.replace("venues.%s." % venue, "venues.<venue>.")
        expected.add(k)
    assert expected <= set(keys), sorted(expected - set(keys))


@pytest.mark.parametrize("busy, value, error", [
    (False, 0, None), (False, 1, None), (False, 2.5, None),
    (False, 0.25, "expected 0 (off) or a value >= 1, found 0.25: an interval under 1 ms needs node.busy_poll: true"),
    (False, 0.999, "expected 0 (off) or a value >= 1, found 0.999"),
    (True, 0.25, None), (True, 0.1, None), (True, 2, None),
    (True, 0.05, "expected 0 (off) or a value >= 0.1, found 0.05")])
def test_warm_interval_is_off_or_at_least_the_timer_resolution(env, busy, value, error):
    """uvloop's timers have 1 ms resolution: without busy polling a 0.25 ms interval would dry-run
    the order path on every loop iteration, so it is refused, naming the key; with node.busy_poll
    the polling loop times the dry runs itself, down to 0.1 ms; 0 (off) is always allowed."""
    text = GOOD + "trading:\n  warm_interval_ms: %s\n" % value + ("node: {busy_poll: true}\n" if busy else "")
    if error is None:
        assert load_config_text(text).trading.warm_interval_ms == value
        return
    with pytest.raises(ConfigError) as ei:
        load_config_text(text, source="x.yaml")
    assert ei.value.path == "trading.warm_interval_ms" and ei.value.line is not None
    assert error in str(ei.value)
    s = json_schema()["properties"]["trading"]["properties"]["warm_interval_ms"]
    assert s["not"] == {"exclusiveMinimum": 0, "exclusiveMaximum": 0.1} and s["minimum"] == 0


@pytest.mark.parametrize("value, error", [
    (None, None), (0, None), (0.5, None), (300, None),
    (0.05, "expected 0 (off) or a value >= 0.1, found 0.05"),
    (-1, ">= 0"), (100000, "<= 86400")])
def test_book_audit_interval_is_off_or_a_sane_period(env, value, error):
    """venues.<venue>.book_audit_interval_s: 300 s by default, 0 turns the audits off, anything
    else from 0.1 s to a day; a bad value names the key and the line."""
    text = GOOD if value is None else GOOD.replace("    symbols: [BTC/USDT]\narbitrage",
                                                   "    symbols: [BTC/USDT]\n    book_audit_interval_s: %s\narbitrage"
                                                   % value)
    if error is None:
        cfg = load_config_text(text)
        assert cfg.venues.gateio_spot.book_audit_interval_s == (300 if value is None else value)
        assert cfg.venues.mexc_spot.book_audit_interval_s == 300
        return
    with pytest.raises(ConfigError) as ei:
        load_config_text(text, source="x.yaml")
    assert ei.value.path == "venues.gateio_spot.book_audit_interval_s" and ei.value.line is not None
    assert error in str(ei.value)
