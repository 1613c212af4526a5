"""gateio_futures adapter package (urls, subscriptions, signing, REST client, private streams, order entry)."""
from __future__ import annotations

from cexnode.adapters.base import BaseVenueAdapter


class Adapter(BaseVenueAdapter):
    venue = "gateio_futures"


def create_adapter(name, venue_config, context):
    return Adapter(name, venue_config, context)
