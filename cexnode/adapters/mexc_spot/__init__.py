"""mexc_spot adapter package: urls, subscriptions, signing, market data (adapter.py), order entry."""
from __future__ import annotations

from cexnode.adapters.mexc_spot.adapter import MexcSpotAdapter

Adapter = MexcSpotAdapter


def create_adapter(name, venue_config, context):
    return MexcSpotAdapter(name, venue_config, context)
