"""The MEXC parser tests' samples, instruments and frame builder, shared by
tests/unit/test_parsers_mexc.py and tests/unit/test_parsers_mexc_fuzz.py."""
import json
import pathlib

from cexnode._core import symbols as S
from cexnode.sim.venues.mexc_spot import proto as mp

RES = pathlib.Path(__file__).resolve().parents[1] / "resources" / "mexc"
PUSHES = sorted(p.name[: -len(".pb.hex")] for p in RES.glob("*.pb.hex"))
MARKET = [n for n in PUSHES if n.startswith("ws_push")]
PRIVATE = [n for n in PUSHES if n.startswith("ws_private")]


def sample(name):
    return bytes.fromhex((RES / (name + ".pb.hex")).read_text().strip()), json.loads((RES / (name + ".decoded.json")).read_text())


def registry():
    r = S.SymbolRegistry()
    for vs, sym, tick, step in [("BTCUSDT", "BTC/USDT", "0.01", "0.000001"), ("BTCUSDC", "BTC/USDC", "0.01", "0.000001"),
                                ("MXUSDT", "MX/USDT", "0.0001", "0.01")]:
        r.add_instrument({"venue": "mexc_spot", "symbol": sym, "venue_symbol": vs, "tick": tick, "qty_step": step})
    return r.freeze()


REG = registry()
MAP = REG.map("mexc_spot")


def instruments(m=MAP):
    out = {}
    for vs in m.venue_symbols():
        i = m.instrument(vs)
        out[vs] = dict(name=i["symbol"], symbol_id=i["symbol_id"], price_scale=i["price_scale"],
                       venue_qty_scale=i["venue_qty_scale"], qty_mult=i["qty_mult"])
    return out


INST = instruments()


AGGRE_CH = "spot@public.aggre.depth.v3.api.pb@10ms@BTCUSDT"


def depth_frame(bids=(("100.5", "1"),), asks=(), first="10", last="12", **kw):
    body = {"bids": [{"price": p, "quantity": q} for p, q in bids],
            "asks": [{"price": p, "quantity": q} for p, q in asks], "fromVersion": first, "toVersion": last}
    return mp.encode_push(AGGRE_CH, "BTCUSDT", "publicAggreDepths", body, send_time=1, **kw)
