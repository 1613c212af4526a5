"""mexc_spot adapter package: urls, subscriptions, signing, market data (adapter.py), order entry."""
from __future__ import annotations

from cexnode.adapters.descriptor import VenueDescriptor, WsRules
from cexnode.adapters.mexc_spot import instruments, limits, signing, subscriptions, universe
from cexnode.adapters.mexc_spot.adapter import MexcSpotAdapter
from cexnode.adapters.mexc_spot.config import MexcSpotConfig

Adapter = MexcSpotAdapter

DESCRIPTOR = VenueDescriptor(
    name="mexc_spot",
    venue_id=0,
    market="spot",
    title="MEXC spot (API v3)",
    adapter_class=MexcSpotAdapter,
    config_class=MexcSpotConfig,
    sim_venue="cexnode.sim.venues.mexc_spot",
    ws=WsRules(max_subscriptions_per_connection=subscriptions.MAX_SUBSCRIPTIONS_PER_CONNECTION,
                  ping_interval_s=subscriptions.PING_INTERVAL_S,
                  max_connects_per_s=subscriptions.MAX_CONNECTS_PER_S, protocol_pings=False,
                  max_connection_age_s=subscriptions.MAX_CONNECTION_AGE_S,
                  default_rotation_age_s=subscriptions.MAX_CONNECTION_AGE_S - 1800.0,
                  max_client_messages_per_s=100),
    instrument_loader=instruments.load,
    rest_limits=limits.rest_limits,
    sign_hook=signing.rest_sign_hook,
    balance_request=limits.BALANCE_REQUEST,
    universe=universe.SOURCE,
)
