"""The universe's neutral records: what a venue lists, trades, and lets move in and out.

A venue package turns its own REST payloads into these (``cexnode/adapters/<venue>/universe.py``);
:mod:`cexnode.universe.selection` reads nothing else. All are immutable and compare by value.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Literal, Optional

__all__ = ["Market", "RouteKind", "Listing", "Ticker24h", "AssetTransfer", "UniverseRules", "Route",
           "Universe", "UniverseSource", "CRYPTO"]

Market = Literal["spot", "perpetual"]
RouteKind = Literal["spot_spot", "spot_perp"]

#: the asset class of an ordinary crypto instrument (venues also list tokenized stocks and indices)
CRYPTO = "crypto"


def _check_part(what: str, value: str) -> None:
    if not value or any(c in value for c in "/: \t\r\n"):
        raise ValueError("%s %r must be non-empty, without '/', ':' or spaces" % (what, value))


@dataclass(frozen=True)
class Listing:
    """One instrument as a venue's instrument list shows it."""

    #: venue name (the registry's ``VenueDescriptor.name``)
    venue: str
    base: str
    quote: str
    #: settle asset of a perpetual; None on spot
    settle: Optional[str]
    market: Market
    #: the venue's own string for it (``BTCUSDT``, ``BTC_USDT``)
    venue_symbol: str
    #: trading is enabled through the API, on both sides (the venue's status fields; its universe
    #: module says which ones count)
    tradable: bool
    #: ``crypto`` unless the venue marks it otherwise (a tokenized stock, an index): those follow
    #: other markets' hours and prices and are left out unless ``UniverseRules.asset_classes`` has them
    asset_class: str = CRYPTO

    def __post_init__(self) -> None:
        _check_part("base", self.base)
        _check_part("quote", self.quote)
        if self.market == "spot":
            if self.settle is not None:
                raise ValueError("a spot listing has no settle asset (%s %s)" % (self.venue, self.venue_symbol))
        elif self.market == "perpetual":
            _check_part("settle", self.settle or "")
        else:
            raise ValueError("market must be spot or perpetual, found %r" % (self.market,))
        if not self.venue_symbol:
            raise ValueError("venue_symbol must be non-empty")

    @property
    def symbol(self) -> str:
        """Unified symbol: ``BASE/QUOTE`` (spot), ``BASE/QUOTE:SETTLE`` (perpetual), as docs/design.md §3."""
        head = self.base + "/" + self.quote
        return head if self.settle is None else head + ":" + self.settle

    @property
    def spot_symbol(self) -> str:
        """``BASE/QUOTE``: the economic instrument routes are named by."""
        return self.base + "/" + self.quote


@dataclass(frozen=True)
class Ticker24h:
    """A venue's 24-hour volume of one instrument, in its quote asset."""

    venue: str
    #: unified symbol of the listing (the perpetual's for a perpetual)
    symbol: str
    quote_volume: Decimal
    #: the venue marks the instrument a leveraged token: its price follows a rebalanced basket the
    #: venue manages, so its spread to another venue's token of the same name is not arbitrage
    leveraged: bool = False


@dataclass(frozen=True)
class AssetTransfer:
    """Whether an asset can come into and go out of a venue's wallet (any chain or network).

    Venues publish these flags per chain; a venue's universe module folds them as: ``can_deposit``
    when at least one chain takes deposits, ``can_withdraw`` when at least one chain pays out.
    Whether the chains of two venues match is not checked (venues name chains differently), so
    "can move" is necessary, not sufficient.
    """

    venue: str
    asset: str
    can_deposit: bool
    can_withdraw: bool


@dataclass(frozen=True)
class UniverseRules:
    """What :func:`cexnode.universe.select` keeps (the ``arbitrage.universe`` config section)."""

    #: quote assets routes may have (empty: any)
    quote_assets: tuple[str, ...] = ("USDT",)
    #: a route's volume is the smallest 24 h quote volume of its legs (both legs must be liquid);
    #: routes below this are left out. A leg without a ticker has no known volume: 0.
    min_quote_volume: Decimal = Decimal(0)
    #: unified symbols to consider (empty: all). ``BTC/USDT`` names every route of that instrument,
    #: ``BTC/USDT:USDT`` its spot-perpetual routes only
    include: tuple[str, ...] = ()
    #: unified symbols never to trade (same matching as ``include``); wins over ``include``
    exclude: tuple[str, ...] = ()
    #: most routes to trade, the highest volume first (0: no limit)
    max_routes: int = 0
    #: form spot-spot routes (BASE/QUOTE on two spot venues)
    spot_spot: bool = True
    #: form spot-perpetual routes (BASE/QUOTE spot with the BASE/QUOTE:QUOTE perpetual)
    spot_perp: bool = True
    #: leave out routes whose assets cannot move between the venues (``Route.frozen``)
    skip_frozen_transfers: bool = True
    #: asset classes routes may have (see ``Listing.asset_class``)
    asset_classes: tuple[str, ...] = (CRYPTO,)
    #: leave out instruments a venue marks as leveraged tokens (``Ticker24h.leveraged``)
    exclude_leveraged: bool = True

    def __post_init__(self) -> None:
        if self.max_routes < 0:
            raise ValueError("max_routes must be >= 0, found %d" % self.max_routes)
        if self.min_quote_volume < 0:
            raise ValueError("min_quote_volume must be >= 0, found %s" % self.min_quote_volume)
        for what in ("include", "exclude"):
            for name in getattr(self, what):
                head, _, settle = name.partition(":")
                base, slash, quote = head.partition("/")
                if not slash or not base or not quote or "/" in quote or (":" in name and not settle):
                    raise ValueError("%s: %r is not a unified symbol (BASE/QUOTE or BASE/QUOTE:SETTLE)"
                                     % (what, name))


@dataclass(frozen=True)
class Route:
    """A route the universe found: one economic instrument on two venues."""

    #: ``BASE/QUOTE`` (the spot symbol, as ``arbitrage.routes[].symbol``)
    symbol: str
    #: spot-spot: the two spot venues by name; spot-perpetual: (spot venue, perpetual venue)
    venues: tuple[str, str]
    kind: RouteKind
    #: the legs' listings, in ``venues`` order
    legs: tuple[Listing, Listing]
    #: the smallest 24 h quote volume of the legs (what ranks and filters routes)
    quote_volume: Decimal
    #: an asset of the route cannot move in or out of a leg's venue: the spread cannot be closed
    #: by moving inventory, so it is not arbitrage
    frozen: bool = False
    #: why, one ``"<asset> <deposit|withdraw> <venue>"`` per blocked flag (sorted)
    frozen_because: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, tuple[str, str]]:
        """What identifies a route across reads (volume and frozen state change; the route stays)."""
        return (self.symbol, self.venues)

    @property
    def name(self) -> str:
        return "%s %s" % (self.symbol, "/".join(self.venues))


@dataclass(frozen=True)
class Universe:
    """What :func:`cexnode.universe.select` found."""

    #: the routes to trade, by rank (highest volume first)
    routes: tuple[Route, ...] = ()
    #: routes left out because their transfers are frozen (``skip_frozen_transfers``), by rank
    frozen: tuple[Route, ...] = ()

    def keys(self) -> frozenset:
        return frozenset(r.key for r in self.routes)


@dataclass(frozen=True)
class UniverseSource:
    """Where a venue's universe inputs come from and how they read (one per venue package).

    Paths are the venue's REST paths (GET). The parsers take the decoded JSON body; tickers are
    matched to listings by the venue symbol, so they take the venue's listings too.
    """

    instruments_path: str
    tickers_path: str
    parse_listings: Callable[[object], list[Listing]]
    parse_tickers: Callable[[object, list[Listing]], list[Ticker24h]]
    #: the venue's wallet (deposit/withdraw status) endpoint; "" where the venue has none
    transfers_path: str = ""
    #: the transfers endpoint needs a signed request (API keys)
    transfers_signed: bool = False
    parse_transfers: Optional[Callable[[object], list[AssetTransfer]]] = None
