"""MEXC spot v3 market data: exchangeInfo, ``/api/v3/depth`` snapshots (lastUpdateId) and the
protobuf ``publicAggreDepths`` stream (fromVersion/toVersion rule; exchange-payloads README)."""
from __future__ import annotations

from typing import Any

from cexnode._core.parsers.mexc_spot import MexcSpotParser
from cexnode.adapters.base import VenueAdapter
from cexnode.adapters.mexc_spot.execution import MexcSpotGateway
from cexnode.adapters.mexc_spot import instruments, subscriptions, urls


class MexcSpotAdapter(VenueAdapter):
    production_ws_url = urls.WS_URL
    production_rest_url = urls.REST_URL

    async def venue_load_instruments(self, registry: Any, symbols: list[str]) -> int:
        info = await self.rest_get_json(urls.EXCHANGE_INFO)
        return instruments.load(registry, info, only=set(symbols), venue=self.name)

    def instrument_entries(self, payload: Any) -> list:
        return instruments.listing(payload, venue=self.name)

    async def signed_get_json(self, path: str) -> Any:
        gw = self.gateway
        if gw is None:
            return None
        ans = await gw.signed("GET", path)
        if ans.status != 200:
            raise RuntimeError("%s %s: HTTP %d" % (self.name, path, ans.status))
        return ans.json()

    @staticmethod
    def make_parser(symbol_map: Any, sink: Any) -> Any:
        return MexcSpotParser(symbol_map, sink)

    async def venue_fetch_snapshot(self, venue_symbol: str) -> tuple[int, list, list]:
        limit = min(max(int(self.config.book_depth), 5), 5000)
        body = await self.rest_get_json(urls.DEPTH, {"symbol": venue_symbol, "limit": str(limit)})
        return int(body["lastUpdateId"]), body.get("bids") or [], body.get("asks") or []

    def subscription_messages(self, venue_symbols: list[str]) -> list[bytes]:
        # one topic per request so that the per-connection limit (30) can split them
        return [subscriptions.subscribe_message([subscriptions.depth_topic(vs)], req_id=self.request_id(vs))
                for vs in venue_symbols]

    def unsubscription_messages(self, venue_symbols: list[str]) -> list[bytes]:
        return [subscriptions.unsubscribe_message([subscriptions.depth_topic(vs)], req_id=self.request_id(vs))
                for vs in venue_symbols]

    def subscription_symbols(self, msg: Any) -> list[str]:
        # MEXC names the topics in both the ack and the rejection ("... [t1,t2].  Reason: Blocked!")
        topics = msg.get("topics") if isinstance(msg, dict) else None
        prefix = subscriptions.depth_topic("")
        return [t[len(prefix):] for t in topics or () if isinstance(t, str) and t.startswith(prefix)]

    def is_subscription_reject(self, msg: Any) -> bool:
        # MEXC answers a rejection with code 0 and says why in the text ("... Reason: Blocked!",
        # "Maximum subscriptions exceeded!")
        if super().is_subscription_reject(msg):
            return True
        text = str(msg.get("msg") or msg.get("reason") or "") if isinstance(msg, dict) else str(msg)
        return "Blocked" in text

    def ping_message(self) -> bytes:
        return subscriptions.ping_message()

    # -- live order entry (cexnode.adapters.live) ---------------------------------------------------------
    def make_gateway(self, common: dict) -> Any:
        return MexcSpotGateway(recv_window_ms=self.config.recv_window_ms, order_connection=self.config.order_connection,
                               listen_key_keepalive_s=self.config.listen_key_keepalive_s, **common)
