"""gateio_futures adapter package: urls, subscriptions, signing, market data (adapter.py), order entry."""
from __future__ import annotations

from cexnode.adapters.descriptor import VenueDescriptor, WsRules
from cexnode.adapters.gateio_futures import instruments, limits, subscriptions, universe
from cexnode.adapters.gateio_futures.adapter import GateFuturesAdapter
from cexnode.adapters.gateio_futures.config import GateFuturesConfig
from cexnode.adapters.gateio_spot.signing import rest_sign_hook

Adapter = GateFuturesAdapter

DESCRIPTOR = VenueDescriptor(
    name="gateio_futures",
    venue_id=2,
    market="perpetual",
    title="Gate.io USDT-settled perpetual futures (API v4)",
    adapter_class=GateFuturesAdapter,
    config_class=GateFuturesConfig,
    sim_venue="cexnode.sim.venues.gateio_futures",
    ws=WsRules(max_subscriptions_per_connection=subscriptions.MAX_SUBSCRIPTIONS_PER_CONNECTION,
                  ping_interval_s=subscriptions.PING_INTERVAL_S,
                  max_connects_per_s=subscriptions.MAX_CONNECTS_PER_S),
    instrument_loader=instruments.load,
    full_book_frame=subscriptions.is_full_book_frame,
    rest_limits=limits.rest_limits,
    sign_hook=rest_sign_hook,
    rest_quota_reader=limits.read_quota_headers,
    universe=universe.SOURCE,
)
