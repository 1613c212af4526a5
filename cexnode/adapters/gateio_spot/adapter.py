"""Gate.io spot v4 market data: currency pairs, ``order_book?with_id=true`` snapshots and the
``spot.order_book_update`` stream (U/u rule, ``full: true`` resets; exchange-payloads README)."""
from __future__ import annotations

from typing import Any

from cexnode._core.parsers.gateio_spot import GateSpotParser
from cexnode.adapters.base import VenueAdapter
from cexnode.adapters.gateio_spot.execution import GateSpotGateway
from cexnode.adapters.gateio_spot import instruments, subscriptions, urls


class GateSpotAdapter(VenueAdapter):
    production_ws_url = urls.WS_URL
    production_rest_url = urls.REST_URL

    async def venue_load_instruments(self, registry: Any, symbols: list[str]) -> int:
        pairs = await self.rest_get_json(urls.CURRENCY_PAIRS)
        return instruments.load(registry, pairs, only=set(symbols), venue=self.name)

    def instrument_entries(self, payload: Any) -> list:
        return instruments.listing(payload, venue=self.name)

    @staticmethod
    def make_parser(symbol_map: Any, sink: Any) -> Any:
        return GateSpotParser(symbol_map, sink)

    def book_depth(self) -> int:
        return subscriptions.snapshot_limit(int(self.config.book_depth))

    async def venue_fetch_snapshot(self, venue_symbol: str) -> tuple[int, list, list]:
        body = await self.rest_get_json(urls.ORDER_BOOK, {"currency_pair": venue_symbol, "with_id": "true",
                                                          "limit": str(self.book_depth())})
        return int(body["id"]), body.get("bids") or [], body.get("asks") or []

    def subscription_messages(self, venue_symbols: list[str]) -> list[bytes]:
        return [subscriptions.book_subscription(vs, self.book_depth(), req_id=self.request_id(vs))
                for vs in venue_symbols]

    def unsubscription_messages(self, venue_symbols: list[str]) -> list[bytes]:
        return [subscriptions.book_unsubscription(vs, self.book_depth(), req_id=self.request_id(vs))
                for vs in venue_symbols]

    def subscription_symbols(self, msg: Any) -> list[str]:
        # Gate echoes the request's payload: [pair, interval]
        payload = msg.get("payload") if isinstance(msg, dict) else None
        if msg.get("channel") == subscriptions.CHANNEL_BOOK and isinstance(payload, list) and payload:
            return [str(payload[0])]
        return []

    def ping_message(self) -> bytes:
        return subscriptions.ping_message()

    # -- live order entry (cexnode.adapters.live) ---------------------------------------------------------
    def make_gateway(self, common: dict) -> Any:
        return GateSpotGateway(ws_order_api=self.config.ws_order_api, account=self.config.account, **common)
