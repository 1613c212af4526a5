"""The Gate spot/futures parser tests' instruments and comparison helpers, shared by
tests/unit/test_parsers_gateio.py and tests/unit/test_parsers_gateio_fuzz.py."""
from cexnode._core import symbols as S
from cexnode._core.parsers.gateio_futures import GateFuturesParser
from cexnode._core.parsers.gateio_spot import GateSpotParser


def registry():
    r = S.SymbolRegistry()
    for vs, sym, tick, step in [("BTC_USDT", "BTC/USDT", "0.1", "0.000001"), ("ETH_USDT", "ETH/USDT", "0.01", "0.0001"),
                                ("ETC_ETH", "ETC/ETH", "0.000001", "0.001"), ("TLOS_BTC", "TLOS/BTC", "0.00000001", "0.001"),
                                ("GT_USDT", "GT/USDT", "0.0001", "0.01")]:
        r.add_instrument({"venue": "gateio_spot", "symbol": sym, "venue_symbol": vs, "tick": tick, "qty_step": step})
    # integer contracts (0.0001 BTC each) and decimal contracts (X-Gate-Size-Decimal, 0.01 ETH each)
    r.add_instrument({"venue": "gateio_futures", "symbol": "BTC/USDT:USDT", "venue_symbol": "BTC_USDT", "tick": "0.1",
                      "qty_step": "1", "quanto_multiplier": "0.0001"})
    r.add_instrument({"venue": "gateio_futures", "symbol": "ETH/USDT:USDT", "venue_symbol": "ETH_USDT", "tick": "0.01",
                      "qty_step": "0.1", "quanto_multiplier": "0.01", "size_decimals": 2})
    return r.freeze()


REG = registry()
SPOT = REG.map("gateio_spot")
FUT = REG.map("gateio_futures")


def instruments(m):
    out = {}
    for vs in m.venue_symbols():
        i = m.instrument(vs)
        out[vs] = dict(symbol=i["symbol"], symbol_id=i["symbol_id"], price_scale=i["price_scale"],
                       venue_qty_scale=i["venue_qty_scale"], qty_mult=i["qty_mult"])
    return out


INST = {"gateio_spot": instruments(SPOT), "gateio_futures": instruments(FUT)}
PARSERS = {"gateio_spot": (GateSpotParser, SPOT), "gateio_futures": (GateFuturesParser, FUT)}


def norm(events):
    """Error reasons differ between the parser and the reference; compare error-ness only."""
    return [dict(e, reason="*") if e.get("type") == "error" else e for e in events]
