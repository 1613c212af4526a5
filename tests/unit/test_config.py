"""In-process checks of the config model: types, secrets, reload classification, schema."""
from __future__ import annotations

import dataclasses
import pickle
import re
from decimal import Decimal

import pytest

from cexnode.adapters import registry
from cexnode.adapters.base import VenueAdapter
from cexnode.adapters.descriptor import VenueDescriptor
from cexnode.config import (ConfigError, Secret, VenueConfig, diff_reload, json_schema, load_config_text,
                            markdown_reference, merge_reloadable, opt, redacted_dict, section)

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


def _common_keys() -> set[str]:
    return {f.name for f in dataclasses.fields(VenueConfig)}


def test_configuration_reference_documents_every_key_once():
    """Every leaf key of the schema has one row: the keys every venue takes once, under
    venues.<venue>; then each venue's section with only the keys that venue adds."""
    ref = markdown_reference()
    keys = re.findall(r"^\| `([^`]+)` \|", ref, re.M)
    assert len(keys) == len(set(keys))
    assert "venues.<venue>.taker_fee" in keys and "venues.<venue>.rest.timeout_s" in keys
    common = _common_keys()
    for desc in registry.descriptors():
        assert "### `venues.%s`" % desc.name in ref
        assert "- [`venues.%s`](#venues%s): " % (desc.name, desc.name) in ref
        own = [k.split(".", 2)[2] for k in keys if k.startswith("venues.%s." % desc.name)]
        assert not set(own) & common, (desc.name, set(own) & common)
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
        parts = k.split(".")
        if parts[0] == "venues" and parts[2].split("[")[0] in common:
            k = ".".join(["venues", "<venue>"] + parts[2:])
        expected.add(k)
    assert expected <= set(keys), sorted(expected - set(keys))


def test_reference_rows_of_one_venue_are_its_own_keys():
    """The MEXC keys appear under venues.mexc_spot only, the Gate futures keys under
    venues.gateio_futures only: no venue's section lists another's keys."""
    keys = set(re.findall(r"^\| `([^`]+)` \|", markdown_reference(), re.M))
    assert "venues.mexc_spot.recv_window_ms" in keys and "venues.gateio_futures.size_decimal" in keys
    assert "venues.gateio_spot.account" in keys and "venues.gateio_spot.ws_order_api" in keys
    for absent in ("venues.<venue>.recv_window_ms", "venues.gateio_futures.recv_window_ms",
                   "venues.gateio_spot.recv_window_ms", "venues.mexc_spot.size_decimal",
                   "venues.gateio_spot.size_decimal", "venues.mexc_spot.ws_order_api", "venues.mexc_spot.account",
                   "venues.gateio_futures.account", "venues.gateio_futures.taker_fee"):
        assert absent not in keys, absent


def test_per_venue_schema_has_only_its_keys():
    """Each venue's schema: the keys every venue takes plus its own, none of another venue's."""
    props = json_schema()["properties"]["venues"]["properties"]
    assert set(props) == set(registry.names())
    common = _common_keys()
    own = {name: set(p["anyOf"][0]["properties"]) - common for name, p in props.items()}
    assert own["mexc_spot"] == {"recv_window_ms", "listen_key_keepalive_s", "order_connection"}
    assert own["gateio_spot"] == {"ws_order_api", "account"}
    assert own["gateio_futures"] == {"ws_order_api", "user_id", "size_decimal"}
    for name, p in props.items():
        assert common <= set(p["anyOf"][0]["properties"]), name
        assert p["anyOf"][0]["additionalProperties"] is False
        assert p["description"] == registry.descriptor(name).title


@pytest.mark.parametrize("venue, key, value, owners", [
    ("mexc_spot", "size_decimal", "true", "gateio_futures"),
    ("mexc_spot", "ws_order_api", "false", "gateio_spot and gateio_futures"),
    ("gateio_spot", "recv_window_ms", "6000", "mexc_spot"),
    ("gateio_spot", "user_id", "'7'", "gateio_futures"),
    ("gateio_futures", "order_connection", "false", "mexc_spot"),
    ("gateio_futures", "account", "unified", "gateio_spot")])
def test_key_of_another_venue_names_its_owner(env, venue, key, value, owners):
    text = GOOD.replace("venues:\n", "venues:\n  gateio_futures:\n    symbols: [BTC/USDT:USDT]\n")
    text = text.replace("  %s:\n" % venue, "  %s:\n    %s: %s\n" % (venue, key, value), 1)
    with pytest.raises(ConfigError) as ei:
        load_config_text(text, source="x.yaml")
    e = ei.value
    assert e.path == "venues.%s.%s" % (venue, key) and e.line is not None
    assert e.detail == "unknown key '%s' (a %s key)" % (key, owners)


def test_venue_keys_load_into_the_venues_class(env):
    text = GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0005\n    recv_window_ms: 7000\n").replace(
        "  gateio_spot:\n", "  gateio_spot:\n    account: unified\n")
    cfg = load_config_text(text)
    assert cfg.venues["mexc_spot"].recv_window_ms == 7000 and cfg.venues["gateio_spot"].account == "unified"
    assert type(cfg.venues["mexc_spot"]) is registry.descriptor("mexc_spot").config_class
    assert not hasattr(cfg.venues["gateio_spot"], "recv_window_ms")
    assert cfg.venues.get("gateio_futures") is None and cfg.venues.gateio_futures is None
    assert "gateio_spot" in cfg.venues and "gateio_futures" not in cfg.venues
    assert list(cfg.venues) == ["mexc_spot", "gateio_spot"]
    with pytest.raises(KeyError):
        cfg.venues["gateio_futures"]
    with pytest.raises(AttributeError):
        cfg.venues.kraken_spot


def test_plain_unknown_key_in_a_venue_keeps_its_hint(env):
    with pytest.raises(ConfigError) as ei:
        load_config_text(GOOD.replace("    taker_fee: 0.0005\n", "    recv_windw_ms: 1\n"))
    assert ei.value.path == "venues.mexc_spot.recv_windw_ms"
    assert "did you mean 'recv_window_ms'" in ei.value.detail


def test_unknown_venue_name_says_did_you_mean(env):
    with pytest.raises(ConfigError) as ei:
        load_config_text(GOOD.replace("  gateio_spot:\n", "  gateio_spt:\n"))
    assert ei.value.path == "venues.gateio_spt" and ei.value.line == 7
    assert "unknown venue 'gateio_spt' (did you mean 'gateio_spot'?)" in ei.value.detail


def test_reload_diff_and_merge_with_per_venue_classes(env):
    """What SIGHUP applies: a venue's reloadable key (taker_fee) is hot, its own keys are not
    (recv_window_ms needs a restart and stays); the merged config keeps each venue's class."""
    a = load_config_text(GOOD)
    b = load_config_text(GOOD.replace("    taker_fee: 0.0005\n", "    taker_fee: 0.0007\n    recv_window_ms: 9000\n")
                         .replace("  gateio_spot:\n", "  gateio_spot:\n    ws_order_api: false\n"))
    hot, cold = diff_reload(a, b)
    assert hot == ["venues.mexc_spot.taker_fee"]
    assert cold == ["venues.mexc_spot.recv_window_ms", "venues.gateio_spot.ws_order_api"]
    m = merge_reloadable(a, b)
    assert m.venues["mexc_spot"].taker_fee == Decimal("0.0007") and m.venues["mexc_spot"].recv_window_ms == 5000
    assert m.venues["gateio_spot"].ws_order_api is True
    assert type(m.venues["mexc_spot"]) is type(a.venues["mexc_spot"])
    assert diff_reload(m, b) == ([], cold)
    c = load_config_text(GOOD.replace("venues:\n", "venues:\n  gateio_futures:\n    symbols: [BTC/USDT:USDT]\n"))
    assert diff_reload(a, c) == ([], ["venues.gateio_futures"])
    assert list(merge_reloadable(a, c).venues) == ["mexc_spot", "gateio_spot"]


def test_config_show_lists_every_venue(env):
    """redacted_dict (config show): every registered venue, null where not configured."""
    shown = redacted_dict(load_config_text(GOOD))["venues"]
    assert list(shown) == list(registry.names())
    assert shown["gateio_futures"] is None and shown["mexc_spot"]["recv_window_ms"] == 5000
    assert "recv_window_ms" not in shown["gateio_spot"]


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


def test_a_registered_venue_brings_its_config_class(env):
    """The venues a config may name, their classes and the reference come from the registry: a
    venue registered from outside the package is loaded with its own class, its key is foreign on
    the other venues, and the reference gets its section."""
    @section
    class PlugSpotConfig(VenueConfig):
        """A plug-in venue."""
        plug_mode: str = opt("a", doc="The plug-in's own key.")

    desc = VenueDescriptor(name="plug_spot", venue_id=97, market="spot", title="Plug spot",
                           adapter_class=VenueAdapter, config_class=PlugSpotConfig)
    registry.register(desc)
    try:
        text = GOOD.replace("venues:\n", "venues:\n  plug_spot:\n    plug_mode: b\n    symbols: [BTC/USDT]\n")
        cfg = load_config_text(text)
        assert isinstance(cfg.venues["plug_spot"], PlugSpotConfig) and cfg.venues["plug_spot"].plug_mode == "b"
        with pytest.raises(ConfigError) as ei:
            load_config_text(GOOD.replace("    taker_fee: 0.0005\n", "    plug_mode: b\n"))
        assert ei.value.path == "venues.mexc_spot.plug_mode" and "(a plug_spot key)" in ei.value.detail
        with pytest.raises(ConfigError) as ei:
            load_config_text(text.replace("plug_spot:\n    plug_mode: b\n    symbols: [BTC/USDT]",
                                          "plug_spot:\n    symbols: [BTC/USDT:USDT]"))
        assert ei.value.path == "venues.plug_spot.symbols[0]" and "spot venue" in ei.value.detail
        ref = markdown_reference()
        assert "### `venues.plug_spot`" in ref and "| `venues.plug_spot.plug_mode` |" in ref
    finally:
        registry.unregister("plug_spot")
    assert "plug_spot" not in markdown_reference()


def test_two_routes_of_one_name_are_refused_naming_the_second(env):
    twice = GOOD + "    - {symbol: BTC/USDT, venues: [gateio_spot, mexc_spot], name: 'BTC/USDT mexc_spot/gateio_spot'}\n"
    with pytest.raises(ConfigError) as ei:
        load_config_text(twice, source="x.yaml")
    assert ei.value.path == "arbitrage.routes[1].name" and "arbitrage.routes[0]" in str(ei.value)
    load_config_text(twice.replace("name: 'BTC/USDT mexc_spot/gateio_spot'", "name: reversed"))


@pytest.mark.parametrize("key, value, path", [
    ("include", "[BTCUSDT]", "arbitrage.universe.include"),
    ("exclude", "['BTC/']", "arbitrage.universe.exclude"),
    ("max_routes", "-1", "arbitrage.universe.max_routes"),
    ("refresh_interval_s", "-5", "arbitrage.universe.refresh_interval_s"),
])
def test_universe_rules_are_checked_naming_the_key(env, key, value, path):
    text = GOOD.replace("  min_profit: 0.1\n", "  min_profit: 0.1\n  universe: {enabled: true, %s: %s}\n" % (key, value))
    with pytest.raises(ConfigError) as ei:
        load_config_text(text)
    assert ei.value.path == path, str(ei.value)
    ok = load_config_text(GOOD.replace("  min_profit: 0.1\n", "  min_profit: 0.1\n  universe: {enabled: true, include: [ETH/USDT]}\n"))
    assert ok.arbitrage.universe.rules().include == ("ETH/USDT",)
