"""gateio_spot adapter package: urls, subscriptions, signing, market data (adapter.py), order entry."""
from __future__ import annotations

from cexnode.adapters.descriptor import VenueDescriptor, WsRules
from cexnode.adapters.gateio_spot import instruments, limits, signing, subscriptions, universe
from cexnode.adapters.gateio_spot.adapter import GateSpotAdapter
from cexnode.adapters.gateio_spot.config import GateSpotConfig

Adapter = GateSpotAdapter

DESCRIPTOR = VenueDescriptor(
    name="gateio_spot",
    venue_id=1,
    market="spot",
    title="Gate.io spot (API v4)",
    adapter_class=GateSpotAdapter,
    config_class=GateSpotConfig,
    sim_venue="cexnode.sim.venues.gateio_spot",
    ws=WsRules(max_subscriptions_per_connection=subscriptions.MAX_SUBSCRIPTIONS_PER_CONNECTION,
                  ping_interval_s=subscriptions.PING_INTERVAL_S,
                  max_connects_per_s=subscriptions.MAX_CONNECTS_PER_S),
    instrument_loader=instruments.load,
    full_book_frame=subscriptions.is_full_book_frame,
    rest_limits=limits.rest_limits,
    sign_hook=signing.rest_sign_hook,
    rest_quota_reader=limits.read_quota_headers,
    universe=universe.SOURCE,
)
