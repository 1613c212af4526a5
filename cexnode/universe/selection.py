"""Which routes to trade, from the venues' instrument lists, 24 h tickers and wallet status.

:func:`select` is pure: the same inputs give the same universe, whatever their order. Its rules,
in the order they apply:

1. **Candidates.** Spot-spot: ``BASE/QUOTE`` listed on two spot venues (one route per pair of
   venues, named in venue-name order). Spot-perpetual: ``BASE/QUOTE`` on a spot venue and the
   linear perpetual ``BASE/QUOTE:QUOTE`` (settled in the quote asset) on a perpetual venue, named
   (spot venue, perpetual venue). Perpetuals settled in another asset form no route.
2. **Filters.** Both legs tradable; quote asset in ``quote_assets``; both legs' asset class in
   ``asset_classes``; no leg marked a leveraged token (``exclude_leveraged``); ``include`` (when
   given) names the route; ``exclude`` does not.
3. **Volume.** A route's volume is the *smallest* 24 h quote volume of its two legs: an opportunity
   needs depth on both sides, and the thinner leg is what fills. A leg without a ticker counts 0.
   Routes below ``min_quote_volume`` are left out.
4. **Frozen transfers.** Every asset a leg holds (spot: base and quote; perpetual: the settle
   asset, its margin) must be depositable *and* withdrawable on that leg's venue. A leg whose
   inventory can neither be refilled nor taken out runs dry or piles up after a few trades, and a
   venue where an asset is sealed in or out prices it apart from the others: its spread does not
   close, so it is not arbitrage. One direction is not enough: the spread that a one-way transfer
   leaves open is the one that needs the missing direction to close. Venues that publish no
   transfer status are not judged; a venue that publishes some but not an asset's counts that
   asset as unable to move. Such routes are marked ``frozen`` and, with ``skip_frozen_transfers``,
   left out of the routes to trade (listed in ``Universe.frozen``).
5. **Rank and cap.** Routes by volume, highest first; ties by symbol, then venues, so that the
   order is total. The first ``max_routes`` are traded (0: all).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Iterable, Optional

from cexnode.universe.records import AssetTransfer, Listing, Route, Ticker24h, Universe, UniverseRules

__all__ = ["select", "diff", "held_assets", "removal_reason"]

_ZERO = Decimal(0)


def _index_listings(listings: Iterable[Listing]) -> dict[tuple[str, str], Listing]:
    out: dict[tuple[str, str], Listing] = {}
    for li in listings:
        key = (li.venue, li.symbol)
        if key in out:
            # a venue's list names each instrument once; refusing the list keeps the previous
            # universe rather than guessing which of the two entries is the instrument
            raise ValueError("%s lists %s twice (%r and %r)" % (li.venue, li.symbol, out[key].venue_symbol,
                                                                 li.venue_symbol))
        out[key] = li
    return out


def _index_tickers(tickers: Iterable[Ticker24h]) -> dict[tuple[str, str], Ticker24h]:
    out: dict[tuple[str, str], Ticker24h] = {}
    for t in tickers:
        key = (t.venue, t.symbol)
        if key in out:
            raise ValueError("two 24 h tickers for %s on %s" % (t.symbol, t.venue))
        out[key] = t
    return out


def held_assets(leg: Listing) -> tuple[str, ...]:
    """The assets a leg holds inventory of: base and quote on spot, the settle asset (margin) on a
    perpetual."""
    if leg.market == "spot":
        return (leg.base, leg.quote)
    assert leg.settle is not None
    return (leg.settle,)


def _blocked(legs: tuple[Listing, Listing], transfers: dict[tuple[str, str], AssetTransfer],
             judged: set[str]) -> tuple[str, ...]:
    out = set()
    for leg in legs:
        if leg.venue not in judged:
            continue
        for asset in held_assets(leg):
            t = transfers.get((leg.venue, asset))
            if t is None or not t.can_deposit:
                out.add("%s deposit %s" % (asset, leg.venue))
            if t is None or not t.can_withdraw:
                out.add("%s withdraw %s" % (asset, leg.venue))
    return tuple(sorted(out))


def _named(names: tuple[str, ...], route_symbol: str, legs: tuple[Listing, Listing]) -> bool:
    return route_symbol in names or any(leg.settle is not None and leg.symbol in names for leg in legs)


def _candidates(by_key: dict[tuple[str, str], Listing], rules: UniverseRules) -> list[tuple[str, tuple[Listing, Listing]]]:
    spot: dict[str, list[Listing]] = {}
    perp: dict[str, list[Listing]] = {}
    for li in by_key.values():
        if li.market == "spot":
            spot.setdefault(li.spot_symbol, []).append(li)
        elif li.settle == li.quote:
            perp.setdefault(li.spot_symbol, []).append(li)
    out: list[tuple[str, tuple[Listing, Listing]]] = []
    for sym, spots in spot.items():
        spots = sorted(spots, key=lambda li: li.venue)
        if rules.spot_spot:
            for i, a in enumerate(spots):
                for b in spots[i + 1:]:
                    out.append(("spot_spot", (a, b)))
        if rules.spot_perp:
            for a in spots:
                for p in sorted(perp.get(sym, ()), key=lambda li: li.venue):
                    out.append(("spot_perp", (a, p)))
    return out


def select(listings: Iterable[Listing], tickers: Iterable[Ticker24h], transfers: Iterable[AssetTransfer],
           rules: Optional[UniverseRules] = None) -> Universe:
    """The routes to trade (module docstring). ValueError when a venue lists an instrument twice,
    or gives two tickers for one or two transfer statuses for one asset (the caller keeps the
    universe it has)."""
    rules = rules or UniverseRules()
    by_key = _index_listings(listings)
    tick = _index_tickers(tickers)
    wallet: dict[tuple[str, str], AssetTransfer] = {}
    for t in transfers:
        if (t.venue, t.asset) in wallet:
            raise ValueError("two transfer statuses for %s on %s" % (t.asset, t.venue))
        wallet[(t.venue, t.asset)] = t
    judged = {venue for venue, _ in wallet}
    quotes = set(rules.quote_assets)
    classes = set(rules.asset_classes)
    kept: list[Route] = []
    for kind, legs in _candidates(by_key, rules):
        a, b = legs
        sym = a.spot_symbol
        if not (a.tradable and b.tradable):
            continue
        if quotes and a.quote not in quotes:
            continue
        if a.asset_class not in classes or b.asset_class not in classes:
            continue
        ticks = [tick.get((leg.venue, leg.symbol)) for leg in legs]
        if rules.exclude_leveraged and any(t is not None and t.leveraged for t in ticks):
            continue
        if rules.include and not _named(rules.include, sym, legs):
            continue
        if rules.exclude and _named(rules.exclude, sym, legs):
            continue
        volume = min(t.quote_volume if t is not None else _ZERO for t in ticks)
        if volume < rules.min_quote_volume:
            continue
        because = _blocked(legs, wallet, judged)
        kept.append(Route(symbol=sym, venues=(a.venue, b.venue), kind=kind, legs=legs,  # type: ignore[arg-type]
                          quote_volume=volume, frozen=bool(because), frozen_because=because))
    kept.sort(key=lambda r: (-r.quote_volume, r.symbol, r.venues))
    frozen: tuple[Route, ...] = ()
    if rules.skip_frozen_transfers:
        frozen = tuple(r for r in kept if r.frozen)
        kept = [r for r in kept if not r.frozen]
    if rules.max_routes:
        kept = kept[:rules.max_routes]
    return Universe(routes=tuple(kept), frozen=frozen)


def diff(old: Universe, new: Universe) -> tuple[tuple[Route, ...], tuple[Route, ...]]:
    """``(added, removed)`` between two reads: routes of ``new`` that ``old`` did not trade, and
    routes of ``old`` that ``new`` does not. A route is the same across reads when its symbol and
    venues are (``Route.key``); a delisted, halted or newly frozen leg, or a fall below the volume
    floor or out of the top ``max_routes``, removes it. Each by key order."""
    old_keys, new_keys = old.keys(), new.keys()
    added = tuple(sorted((r for r in new.routes if r.key not in old_keys), key=lambda r: r.key))
    removed = tuple(sorted((r for r in old.routes if r.key not in new_keys), key=lambda r: r.key))
    return added, removed


def removal_reason(route: Route, new: Universe, listings: Iterable[Listing]) -> str:
    """Why ``route`` (a ``removed`` route of :func:`diff`) left, for the log and the metric label:
    ``delisted`` (a leg's instrument is gone from ``listings``, the new read), ``halted`` (listed
    but not tradable), ``frozen`` (its transfers are), else ``filtered`` (volume, rank or rules)."""
    listed = {(li.venue, li.symbol): li for li in listings}
    for leg in route.legs:
        li = listed.get((leg.venue, leg.symbol))
        if li is None:
            return "delisted"
        if not li.tradable:
            return "halted"
    if any(r.key == route.key for r in new.frozen):
        return "frozen"
    return "filtered"
