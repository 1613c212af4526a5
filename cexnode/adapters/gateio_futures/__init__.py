"""gateio_futures adapter package: urls, subscriptions, signing, market data (adapter.py), order entry."""
from __future__ import annotations

from cexnode.adapters.gateio_futures.adapter import GateFuturesAdapter

Adapter = GateFuturesAdapter


def create_adapter(name, venue_config, context):
    return GateFuturesAdapter(name, venue_config, context)
