"""gateio_spot adapter package: urls, subscriptions, signing, market data (adapter.py), order entry."""
from __future__ import annotations

from cexnode.adapters.gateio_spot.adapter import GateSpotAdapter

Adapter = GateSpotAdapter


def create_adapter(name, venue_config, context):
    return GateSpotAdapter(name, venue_config, context)
