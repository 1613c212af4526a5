"""Venue frames with their decimals written out to 18 fraction digits (issue 20 item 2).

MEXC writes decimals zero-padded to 18 digits in several real payloads (reference
exchange-payloads/mexc: ``rest_exchange_info_symbol_2023.json`` "5.000000000000000000",
``rest_capital_config_getall*.json`` "24000000.000000000000000000"). These helpers take a real
sample frame and pad every price and size string the same way, so tests can check that trailing
zeros change nothing: the same events, the same mantissas, and the venue's strings kept verbatim.
"""
from __future__ import annotations

import json
import re

from cexnode.sim.venues.mexc_spot import proto as mp

PAD = 18
_DEC = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")
# Gate keys whose string values are prices or sizes (levels inherit the key of their list).
_GATE_KEYS = {"b", "a", "B", "A", "p", "s", "price", "amount", "size"}
# MEXC fields holding prices or sizes (versions and ids are digit strings too, never padded).
_MEXC_FIELDS = {"price", "quantity", "bidPrice", "bidQuantity", "askPrice", "askQuantity"}


def pad18(s: str) -> str:
    """``s`` with fraction digits up to 18 (an integer gets ".000000000000000000"); longer: unchanged."""
    if not _DEC.match(s):
        return s
    ip, _, fr = s.partition(".")
    return s if len(fr) >= PAD else ip + "." + fr.ljust(PAD, "0")


def strip_zeros(s: str) -> str:
    """The shortest spelling of a decimal string (what padding must not change)."""
    if _DEC.match(s) and "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _pad_json(x, key=None):
    if isinstance(x, dict):
        return {k: _pad_json(v, k) for k, v in x.items()}
    if isinstance(x, list):
        return [_pad_json(v, key) for v in x]
    if isinstance(x, str) and key in _GATE_KEYS:
        return pad18(x)
    return x


def pad_gate_frame(frame: bytes) -> bytes:
    """A Gate JSON frame with every price/size string padded to 18 decimals (numbers stay numbers)."""
    return json.dumps(_pad_json(json.loads(frame))).encode()


def _pad_msg(m) -> None:
    for fd, v in m.ListFields():
        if fd.message_type is not None:
            for sub in (v if fd.is_repeated else [v]):
                _pad_msg(sub)
        elif fd.name in _MEXC_FIELDS and v:
            setattr(m, fd.name, pad18(v))


def pad_mexc_frame(frame: bytes) -> bytes:
    """A MEXC push re-encoded by the official runtime with every price/quantity padded to 18 decimals."""
    m = mp.PushDataV3ApiWrapper.FromString(frame)
    _pad_msg(m)
    return m.SerializeToString()


def normalized(events: list[dict]) -> list:
    """Decode events with every string shortened by strip_zeros (compares values, not spellings)."""
    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return strip_zeros(x) if isinstance(x, str) else x
    return walk(events)


def has_18_decimals(events: list[dict]) -> bool:
    """Some string in the events is written with 18 fraction digits (the venue's spelling kept)."""
    return bool(re.search(r'\.[0-9]{18}"', json.dumps(events)))
