"""Gate.io USDT futures v4 market data: contracts (quanto_multiplier), ``order_book?with_id=true``
snapshots with ``limit`` equal to the WS level, and ``futures.order_book_update`` ({p,s} levels in
contracts; the parser and the snapshot reader convert to base quantity)."""
from __future__ import annotations

from typing import Any

from cexnode._core.parsers.gateio_futures import GateFuturesParser
from cexnode.adapters.base import VenueAdapter
from cexnode.adapters.gateio_futures.execution import GateFuturesGateway
from cexnode.adapters.gateio_futures import instruments, subscriptions, urls


class GateFuturesAdapter(VenueAdapter):
    production_ws_url = urls.WS_URL
    production_rest_url = urls.REST_URL

    async def venue_load_instruments(self, registry: Any, symbols: list[str]) -> int:
        contracts = await self.rest_get_json(urls.CONTRACTS)
        return instruments.load(registry, contracts, only=set(symbols), settle="USDT",
                                size_decimal=bool(self.config.size_decimal), venue=self.name)

    def instrument_entries(self, payload: Any) -> list:
        return instruments.listing(payload, settle="USDT", size_decimal=bool(self.config.size_decimal), venue=self.name)

    def instrument_spec(self, ic: Any) -> dict:
        # a contract's size is in contracts: the config gives base units per contract
        return dict(super().instrument_spec(ic), quanto_multiplier=str(ic.multiplier))

    @staticmethod
    def make_parser(symbol_map: Any, sink: Any) -> Any:
        return GateFuturesParser(symbol_map, sink)

    def book_depth(self) -> int:
        return subscriptions.book_level(int(self.config.book_depth))

    async def venue_fetch_snapshot(self, venue_symbol: str) -> tuple[int, list, list]:
        body = await self.rest_get_json(urls.ORDER_BOOK, {"contract": venue_symbol, "with_id": "true",
                                                          "limit": str(self.book_depth())})

        def levels(side: Any) -> list:
            return [(lv["p"], lv["s"]) if isinstance(lv, dict) else (lv[0], lv[1]) for lv in side or ()]

        return int(body["id"]), levels(body.get("bids")), levels(body.get("asks"))

    def subscription_messages(self, venue_symbols: list[str]) -> list[bytes]:
        return [subscriptions.book_subscription(vs, self.book_depth(), req_id=self.request_id(vs))
                for vs in venue_symbols]

    def unsubscription_messages(self, venue_symbols: list[str]) -> list[bytes]:
        return [subscriptions.book_unsubscription(vs, self.book_depth(), req_id=self.request_id(vs))
                for vs in venue_symbols]

    def subscription_symbols(self, msg: Any) -> list[str]:
        # Gate echoes the request's payload: [contract, interval, level]
        payload = msg.get("payload") if isinstance(msg, dict) else None
        if msg.get("channel") == subscriptions.CHANNEL_BOOK and isinstance(payload, list) and payload:
            return [str(payload[0])]
        return []

    def market_data_headers(self) -> dict:
        # decimal sizes: without the header Gate sends contract sizes truncated to integers
        return dict([urls.SIZE_DECIMAL_HEADER]) if self.config.size_decimal else {}

    def ping_message(self) -> bytes:
        return subscriptions.ping_message()

    # -- live order entry (cexnode.adapters.live) ---------------------------------------------------------
    def make_gateway(self, common: dict) -> Any:
        return GateFuturesGateway(ws_order_api=self.config.ws_order_api, user_id=self.config.user_id,
                                  size_decimal=self.config.size_decimal, **common)
