"""Pure-Python reference of the universe selection rules (``cexnode/universe/selection.py``'s
module docstring) — the oracle for ``cexnode.universe.select``.

Written from the rules, by brute force and without shared code: every ordered pair of listings is
tried as a route, lookups are linear scans, and a route's rank is the number of routes that beat
it. Slow and obvious on purpose.
"""
from __future__ import annotations

from decimal import Decimal


def _ticker(tickers, venue, symbol):
    found = [t for t in tickers if t.venue == venue and t.symbol == symbol]
    return found[0] if found else None


def _beats(a, b):
    """Route ``a`` ranks before route ``b``: more volume; on equal volume the smaller symbol, then
    the smaller venue names."""
    if a["volume"] != b["volume"]:
        return a["volume"] > b["volume"]
    if a["symbol"] != b["symbol"]:
        return a["symbol"] < b["symbol"]
    return a["venues"] < b["venues"]


def _named(names, symbol, legs):
    for n in names:
        if n == symbol:
            return True
        for leg in legs:
            if leg.market == "perpetual" and n == "%s/%s:%s" % (leg.base, leg.quote, leg.settle):
                return True
    return False


def _frozen_because(legs, transfers):
    reasons = []
    for leg in legs:
        if not any(t.venue == leg.venue for t in transfers):
            continue                     # the venue publishes no transfer status: not judged
        assets = [leg.base, leg.quote] if leg.market == "spot" else [leg.settle]
        for asset in assets:
            recs = [t for t in transfers if t.venue == leg.venue and t.asset == asset]
            dep = bool(recs) and recs[0].can_deposit
            wd = bool(recs) and recs[0].can_withdraw
            if not dep:
                reasons.append("%s deposit %s" % (asset, leg.venue))
            if not wd:
                reasons.append("%s withdraw %s" % (asset, leg.venue))
    return tuple(sorted(set(reasons)))


def select_ref(listings, tickers, transfers, rules):
    """``(traded, frozen_left_out)``: lists of dicts ``symbol, venues, kind, volume, frozen,
    because``, each in rank order."""
    routes = []
    for x in listings:
        for y in listings:
            if x is y or x.market != "spot" or x.base != y.base or x.quote != y.quote:
                continue
            if y.market == "spot":
                if not rules.spot_spot or not x.venue < y.venue:
                    continue
                kind = "spot_spot"
            else:
                if not rules.spot_perp or y.settle != y.quote:
                    continue
                kind = "spot_perp"
            symbol = "%s/%s" % (x.base, x.quote)
            legs = (x, y)
            if not x.tradable or not y.tradable:
                continue
            if rules.quote_assets and x.quote not in rules.quote_assets:
                continue
            if x.asset_class not in rules.asset_classes or y.asset_class not in rules.asset_classes:
                continue
            tx = _ticker(tickers, x.venue, x.symbol)
            ty = _ticker(tickers, y.venue, y.symbol)
            if rules.exclude_leveraged and ((tx is not None and tx.leveraged) or (ty is not None and ty.leveraged)):
                continue
            if rules.include and not _named(rules.include, symbol, legs):
                continue
            if _named(rules.exclude, symbol, legs):
                continue
            vx = tx.quote_volume if tx is not None else Decimal(0)
            vy = ty.quote_volume if ty is not None else Decimal(0)
            volume = vx if vx < vy else vy
            if volume < rules.min_quote_volume:
                continue
            because = _frozen_because(legs, transfers)
            routes.append(dict(symbol=symbol, venues=(x.venue, y.venue), kind=kind, volume=volume,
                               frozen=bool(because), because=because))
    ranked = [None] * len(routes)
    for r in routes:
        ranked[sum(1 for o in routes if _beats(o, r))] = r
    left_out = []
    if rules.skip_frozen_transfers:
        left_out = [r for r in ranked if r["frozen"]]
        ranked = [r for r in ranked if not r["frozen"]]
    if rules.max_routes:
        ranked = ranked[:rules.max_routes]
    return ranked, left_out
