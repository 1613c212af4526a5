"""What a venue is, in one object: :class:`VenueDescriptor`.

Each venue package ``cexnode.adapters.<venue>`` exports ``DESCRIPTOR``, a :class:`VenueDescriptor`
that holds everything venue-specific the rest of the node needs: name and id, market kind, its
config class, the market-data adapter (instrument loader, snapshot reader, subscriptions), the
Cython parser factory, REST rate limits, headers and signing, WebSocket rules, the order gateway
and its simulator venue. The node (engine, net, capture, execution, metrics, the CLI) looks venues
up in :mod:`cexnode.adapters.registry` and never names one.

The registry is read when the node starts (config load, engine wiring), never per message.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional

from cexnode.universe.records import UniverseSource

if TYPE_CHECKING:  # pragma: no cover
    from cexnode.adapters.base import VenueAdapter

__all__ = ["VenueDescriptor", "WsRules", "MarketKind"]

MarketKind = Literal["spot", "perpetual"]


@dataclass(frozen=True)
class WsRules:
    """The venue's public WebSocket rules (``cexnode.net.ws`` applies them)."""

    #: subscriptions one connection may hold (0: no limit); streams are spread over connections
    max_subscriptions_per_connection: int = 0
    #: application-level keep-alive period (0: the venue has none)
    ping_interval_s: float = 0.0
    #: False where the venue does not answer WebSocket protocol pings
    protocol_pings: bool = True
    #: the venue closes connections older than this (0: never); the node rotates before it
    max_connection_age_s: float = 0.0
    #: default rotation age when ``venues.<v>.max_connection_age_s`` is 0 (0: never rotate)
    default_rotation_age_s: float = 0.0
    #: client messages per second one connection may send (0: no limit); more closes it
    max_client_messages_per_s: int = 0
    #: new connections per second the node opens (0: no limit): a venue's connection-rate limit,
    #: which matters once hundreds of books spread over many connections open at start-up
    max_connects_per_s: float = 0.0


@dataclass(frozen=True)
class VenueDescriptor:
    """Everything venue-specific (module docstring). Immutable; one per venue package."""

    #: config key and log/metric label, e.g. the package name
    name: str
    #: dense id used by the Cython core (books, routes, symbol maps); stable across runs and captures
    venue_id: int
    #: "spot" lists BASE/QUOTE; "perpetual" lists BASE/QUOTE:SETTLE
    market: MarketKind
    #: one line for docs and ``--help``, e.g. "Example spot (API v4)"
    title: str
    #: the market-data adapter class (a :class:`cexnode.adapters.base.VenueAdapter` subclass):
    #: instrument loader, snapshot reader, subscriptions, order gateway factory
    adapter_class: "type[VenueAdapter]"
    #: ``venues.<name>`` config class (a :class:`cexnode.config.VenueConfig` subclass)
    config_class: type
    #: the simulator venue module (``cexnode.sim.venues.<name>``), imported only by the simulator
    sim_venue: str = ""
    ws: WsRules = field(default_factory=WsRules)
    #: ``() -> list[cexnode.net.ratelimit.LimitRule]``: the venue's published REST limits
    rest_limits: Optional[Callable[[], list]] = None
    #: ``(signer, manager) -> Signer``: how a signed REST request is signed (live mode)
    sign_hook: Optional[Callable[[Any, Any], Callable]] = None
    #: ``(registry, payload, only=None) -> int``: adds the venue's REST instrument listing (the
    #: parsed answer or its text) to a :class:`~cexnode._core.symbols.SymbolRegistry`, rows it
    #: cannot read going to ``registry.rejected``; the venue package's ``instruments.load``. The
    #: adapter's ``venue_load_instruments`` fetches the listing and calls it with its options.
    instrument_loader: Optional[Callable[..., int]] = None
    #: ``(frame bytes) -> bool``: True for a frame of a stream that pushes whole books (no REST
    #: snapshot needed); a replay gives such a venue's books the stream-full sync rule. None: the
    #: venue has no such stream
    full_book_frame: Optional[Callable[[bytes], bool]] = None
    #: ``headers -> (remaining, reset_ms) | None``: the venue's quota headers on a REST answer
    #: (:data:`cexnode.net.ratelimit.QuotaReader`); the REST manager pauses an endpoint with none left
    rest_quota_reader: Optional[Callable[[Any], Optional[tuple]]] = None
    #: ``(method, path)`` of the REST request a balance refresh makes, when a published limit of
    #: its own spaces it (the engine warns if that spacing exceeds ``trading.order_timeout_ms``)
    balance_request: Optional[tuple[str, str]] = None
    #: where the venue's instrument list, 24 h tickers and wallet status come from and how they
    #: read (``arbitrage.universe``: :mod:`cexnode.universe`); None: the venue takes part in
    #: explicit routes only
    universe: Optional[UniverseSource] = None

    @property
    def is_perpetual(self) -> bool:
        return self.market == "perpetual"

    def create_adapter(self, venue_config: Any, context: Any) -> "VenueAdapter":
        return self.adapter_class(self.name, venue_config, context)
