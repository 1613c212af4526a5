"""What Gate spot and Gate USDT futures share: the v4 WebSocket envelope and request handling.

The package holds the Gate v4 protocol both venues speak: this module (public WebSocket and REST
helpers), :mod:`.trading` (signed REST, private channels, WebSocket order API) and :mod:`.auth`
(signatures). ``gateio_spot`` and ``gateio_futures`` are its two venues.

Envelopes (exchange-payloads README, "Gate spot / Message envelopes"):

* request ``{"time","id"?,"channel","event":"subscribe"|"unsubscribe","payload":[...],"auth"?}``
* ack ``{"time","time_ms","id"?,"conn_id","trace_id","channel","event","payload":[echo],
  "result":{"status":"success"},"requestId"}``
* error ``... "error":{"code":1..4,"message"},"result":{"status":"fail"}`` — 1 invalid body,
  2 invalid argument, 3 server error, 4 auth failure
* ``<prefix>.ping`` → ``<prefix>.pong`` with ``event: ""`` and ``result: null``

REST boolean query flags (``with_id`` on the order books): ``true`` / ``false`` (absent = false).
Any other spelling is refused with 400 ``{"label":"INVALID_PARAM_VALUE","message":"Invalid request
parameter `with_id` value: True"}``, never ignored: the one piece of evidence (gateapi-python #71,
2021; reference rest_error_invalid_param_with_id.json) is Gate refusing ``with_id=False`` as the
official SDK sends it (a Python bool through urllib3), with the maintainer's "the server only accepts
lowercase boolean"; nothing later shows the venue changed. ``sim.gate_python_bools: true`` accepts
``True``/``False`` instead, for running that SDK against the simulator.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import orjson
from aiohttp import web

from ...books import BookDiff, TrueBook
from ...server import SimConnection, SimVenue
from .trading import GateTrading

__all__ = ["GateVenue", "SubError"]


class SubError(Exception):
    """A subscription request the venue refuses: ``code`` (1..4) and message."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class GateVenue(SimVenue):
    """Gate v4 WebSocket request handling; subclasses define the channels and wire shapes.

    ``ws_handlers`` (the trading side's hook) are looked up by the request's ``channel``
    (``"spot.orders"``, ``"spot.login"``, ``"spot.order_place"``, ``"futures.orders"``...) and called as
    ``handler(conn, msg)`` for every request on that channel (subscribe, unsubscribe, ``api``...);
    ``msg`` is the parsed JSON dict. The handler answers itself (``conn.send_json(...)``;
    :meth:`gate_ack` and :meth:`gate_error` build the envelopes).
    """

    prefix = "spot"
    supports_full = True
    max_connections = 300           # Gate: 300 WebSocket connections per IP
    rest_rate_limit = (200, 10.0)   # Gate public endpoints: 200 requests per 10 s per endpoint and IP
    BOOK_KINDS = ("book", "obu")
    OBU_LEVELS = ("400", "50")
    trading_class = GateTrading

    # ---------------------------------------------------------------- capture playback
    @classmethod
    def is_control_frame(cls, text: bytes) -> bool:
        """Subscribe/unsubscribe acks, pongs and error answers (pushes carry ``event: update|all``)."""
        try:
            m = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(m, dict):
            return False
        ch, ev = m.get("channel", ""), m.get("event")
        return (ev in ("subscribe", "unsubscribe") or (isinstance(ch, str) and ch.endswith(".pong"))
                or bool(m.get("error")))

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._trace = 0
        # top-N views of the N-level streams: (kind, vsym, N) -> [bids, asks, memo key, memo changes]
        self._views: dict[tuple, list] = {}
        self._stale: set[str] = set()          # books whose views replayed pushes left behind

    # ---------------------------------------------------------------- N-level views
    @staticmethod
    def level_of(variant: Any) -> int:
        """Book depth of a subscription variant: ``"100"`` or ``("100", decimal_sizes)``."""
        return int(variant[0] if isinstance(variant, tuple) else variant)

    def subscribe(self, conn: SimConnection, kind: str, vsym: str, variant: Any = None) -> bool:
        if kind in self.BOOK_KINDS:
            level = self.level_of(variant)
            others = self.subs.get((kind, vsym), {})
            if not any(self.level_of(v) == level for c, v in others.items() if c is not conn):
                # a new view chain starts here: the next push is relative to the book now
                self._views[(kind, vsym, level)] = self._new_view(vsym, level)
        return super().subscribe(conn, kind, vsym, variant)

    def render_frames(self, symbol: str, n: int, kind: str = "book", variant: Any = None) -> list:
        # Like a new subscription, the frames' view chain starts from the book now (the state a
        # client took with true_book / the REST snapshot just before): without it the first frame
        # carried the whole view with no deletions, and a client kept levels the venue no longer had.
        if kind in self.BOOK_KINDS:
            vsym = self.venue_symbol(symbol)
            level = self.level_of(variant if variant is not None else self.DEFAULT_BOOK_VARIANT)
            if (kind, vsym, level) not in self._views:
                self._views[(kind, vsym, level)] = self._new_view(vsym, level)
        return super().render_frames(symbol, n, kind, variant)

    def _new_view(self, vsym: str, level: int) -> list:
        """``[bids, asks, memo key, memo changes, whole]``: the top-``level`` view of the book now;
        ``whole``: each side has at most ``level`` levels, so the view is the whole book."""
        book = self.books[vsym]
        b, a = book.top(level)
        return [dict(b), dict(a), None, None, len(book.bids) <= level and len(book.asks) <= level]

    _VIEW_LEVELS = (20, 50, 100, 400)

    # A replayed push comes from a template, not from view_changes, so the views of its book fall
    # behind; they are brought up to the book only when a push is rendered again: before a
    # template is rendered (from the book before that diff) and when the loop ends (before the
    # change that ends it).
    def after_replay(self, diff: BookDiff) -> None:
        self._stale.add(diff.symbol)

    def loop_ended(self, vsym: str) -> None:
        if vsym in self._stale:
            self._stale.discard(vsym)
            self._rebuild_views(vsym, self.books[vsym])

    def before_render(self, replay: tuple, diff: BookDiff) -> None:
        if diff.symbol not in self._stale:
            return
        self._stale.discard(diff.symbol)
        loop, pos = replay
        # the book before this diff: its levels at the sizes the loop's mirror position sets
        bids, asks, _ = loop.steps[len(loop.steps) - 1 - pos]
        before = TrueBook(diff.symbol, 0)
        book = self.books[diff.symbol]
        before.set_levels(list(book.bids.items()), list(book.asks.items()))
        before.set_levels(bids, asks)
        self._rebuild_views(diff.symbol, before)

    def _rebuild_views(self, vsym: str, book: TrueBook) -> None:
        for kind in self.BOOK_KINDS:
            for level in self._VIEW_LEVELS:
                if (kind, vsym, level) in self._views:
                    b, a = book.top(level)
                    self._views[(kind, vsym, level)] = [dict(b), dict(a), None, None,
                                                        len(book.bids) <= level and len(book.asks) <= level]

    def view_changes(self, kind: str, diff: BookDiff, level: int) -> tuple[list, list]:
        """Changes of the top-``level`` view that ``diff`` causes (Gate's 20/50/100/400-level
        streams push what changed inside their depth, and levels entering it), best first.

        Each publish advances the view once (memoised per diff for all variants of one depth), so
        a REST snapshot with ``limit = level`` at id S equals the view after the push with ``u = S``.
        A ``full`` diff returns the whole top-``level`` book and restarts the chain. While the
        whole book fits in the view (before and after the diff) the view's changes are the diff's
        own, taken without reading the book.
        """
        key = (kind, diff.symbol, level)
        book = self.books[diff.symbol]
        if diff.full:
            self._views[key] = self._new_view(diff.symbol, level)
            return book.top(level)
        view = self._views.get(key)
        memo = (diff.symbol, diff.first, diff.last)
        if view is not None and view[2] == memo:
            return view[3]
        if view is not None and view[4] and len(book.bids) <= level and len(book.asks) <= level \
                and _distinct(diff.bids) and _distinct(diff.asks):
            changes = (_apply_changes(view[0], diff.bids, True), _apply_changes(view[1], diff.asks, False))
            view[2], view[3] = memo, changes
            return changes
        b, a = book.top(level)
        nb, na = dict(b), dict(a)
        if view is None:            # no chain (cannot happen for subscribed views): send the view
            changes = (b, a)
        else:
            ob, oa = view[0], view[1]
            cb = [(p, q) for p, q in b if ob.get(p) != q]
            cb += [(p, 0) for p in ob if p not in nb]
            ca = [(p, q) for p, q in a if oa.get(p) != q]
            ca += [(p, 0) for p in oa if p not in na]
            cb.sort(key=lambda x: -x[0])
            ca.sort(key=lambda x: x[0])
            changes = (cb, ca)
        self._views[key] = [nb, na, memo, changes, len(book.bids) <= level and len(book.asks) <= level]
        return changes

    # ---------------------------------------------------------------- envelopes
    def _envelope(self, conn: SimConnection, msg: dict) -> dict:
        now = time.time()
        self._trace += 1
        trace = "%032x" % (self._trace * 0x9E3779B97F4A7C15 & (1 << 128) - 1)
        out: dict = {"time": int(now), "time_ms": int(now * 1000)}
        if msg.get("id") is not None:
            out["id"] = msg["id"]
        out["conn_id"] = conn.conn_id
        out["trace_id"] = trace
        out["channel"] = msg.get("channel", "")
        out["event"] = msg.get("event", "")
        if "payload" in msg:
            out["payload"] = msg["payload"]
        return out

    def gate_ack(self, conn: SimConnection, msg: dict, result: Any = None) -> None:
        """Send the success ack of ``msg`` (``result`` defaults to ``{"status": "success"}``)."""
        out = self._envelope(conn, msg)
        out["result"] = {"status": "success"} if result is None else result
        out["requestId"] = out["trace_id"]
        conn.send_json(out)

    def gate_error(self, conn: SimConnection, msg: dict, code: int, message: str) -> None:
        """Send the error answer of ``msg``: ``error: {code, message}``, ``result: {status: fail}``."""
        out = self._envelope(conn, msg)
        out["error"] = {"code": code, "message": message}
        out["result"] = {"status": "fail"}
        conn.send_json(out)

    # ---------------------------------------------------------------- requests
    def on_text(self, conn: SimConnection, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError:
            self.gate_error(conn, {}, 1, "invalid request body")
            return
        channel = msg.get("channel")
        handler = self.ws_handlers.get(channel) if isinstance(channel, str) else None
        if handler is not None:
            self._run_handler(handler, conn, msg)
            return
        if channel == self.prefix + ".ping":
            out = self._envelope(conn, msg)
            out.pop("payload", None)
            out.pop("trace_id", None)
            out["channel"] = self.prefix + ".pong"
            out["event"] = ""
            if self.prefix == "spot":
                out["error"] = None
            out["result"] = None
            conn.send_json(out)
            return
        event = msg.get("event")
        if event not in ("subscribe", "unsubscribe"):
            self.gate_error(conn, msg, 1, "invalid event: %r" % (event,))
            return
        payload = msg.get("payload")
        if not isinstance(payload, list) or not all(isinstance(x, str) for x in payload):
            self.gate_error(conn, msg, 2, "payload must be a list of strings")
            return
        if event == "subscribe" and self.faults.rejecting:
            self.gate_error(conn, msg, 2, "subscription rejected")
            return
        try:
            subs = self._parse_sub(conn, channel, payload)
        except SubError as e:
            self.gate_error(conn, msg, e.code, e.message)
            return
        if event == "unsubscribe":
            for kind, vsym, _ in subs:
                self.unsubscribe(conn, kind, vsym)
                conn.subscriptions.discard((channel, vsym))
            self.gate_ack(conn, msg)
            return
        for kind, vsym, variant in subs:
            if kind == "obu" and conn in self.subs.get((kind, vsym), {}):
                # Gate: a duplicate obu subscription is an error (sample ws_subscribe_error.json)
                self.gate_error(conn, msg, 2, "Alert sub ob.%s.%s" % (vsym, variant[0] if isinstance(variant, tuple) else variant))
                return
        for kind, vsym, variant in subs:
            self.subscribe(conn, kind, vsym, variant)
            conn.subscriptions.add((channel, vsym))
        self.gate_ack(conn, msg)
        for kind, vsym, variant in subs:
            if kind == "obu":       # the first obu push is always the full book (its top N)
                b = self.books[vsym]
                full = BookDiff(vsym, b.last_id, b.last_id, *b.top(self.level_of(variant)), ts_ms=b.ts_ms, full=True)
                for data, binary in self._frames_for("obu", full, variant):
                    conn.send_frame(data, binary)

    def _parse_sub(self, conn: SimConnection, channel: Any, payload: list) -> list[tuple[str, str, Any]]:  # pragma: no cover
        raise NotImplementedError

    def _pair(self, name: str) -> str:
        if name not in self.instruments:
            raise SubError(2, "unknown currency pair: %s" % name)
        return name

    def _obu(self, payload: list, variant_of) -> list:
        out = []
        for item in payload:
            parts = item.split(".")
            if len(parts) != 3 or parts[0] != "ob" or parts[2] not in self.OBU_LEVELS:
                raise SubError(2, "invalid argument: %s" % item)
            out.append(("obu", self._pair(parts[1]), variant_of(parts[2])))
        return out

    # ---------------------------------------------------------------- wallet (/spot/currencies)
    # chain of a currency's one simulated network (stablecoins on ETH, coins on their own chain)
    _CHAINS = {"USDT": "ETH", "USDC": "ETH"}

    @property
    def wallet_venue(self) -> str:
        # one Gate wallet funds spot and futures: the spot venue's when the simulator serves one
        for name, v in self.sim.venues.items():
            if isinstance(v, GateVenue) and v.market == "spot":
                return name
        return self.name

    def _currency_info(self, cur: str) -> dict:
        # the 2026 shape of rest_currencies.json / rest_currency_btc.json. The per-chain flags are
        # the authoritative ones; the deprecated coin-level ones say the same. A delisted coin
        # takes no deposits and is not traded, withdrawals stay open (STPT, BBC in that sample).
        chain = self._CHAINS.get(cur, cur)
        dep, wd = self.transfer_status(cur)
        delisted = self.asset_delisted(cur)
        return {"currency": cur, "name": cur, "delisted": delisted, "withdraw_disabled": not wd,
                "withdraw_delayed": False, "deposit_disabled": not dep, "trade_disabled": delisted, "fixed_rate": "",
                "chain": chain, "category": [],
                "chains": [{"name": chain, "addr": "", "withdraw_disabled": not wd, "withdraw_delayed": False,
                            "deposit_disabled": not dep}]}

    def _currency_names(self) -> list[str]:
        venues = {self.name, self.wallet_venue}
        return sorted({c for n in venues for i in self.sim.venues[n].instruments.values() for c in (i.base, i.quote)})

    async def _currencies(self, request: web.Request) -> web.Response:
        return self.json_response([self._currency_info(c) for c in self._currency_names()])

    async def _currency(self, request: web.Request) -> web.Response:
        cur = request.match_info["currency"]
        if cur not in self._currency_names():
            return self.json_response({"label": "INVALID_CURRENCY", "message": "Invalid currency: %s" % cur},
                                      status=400)
        return self.json_response(self._currency_info(cur))

    def _add_wallet_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/api/v4/spot/currencies", self._currencies)
        router.add_get("/api/v4/spot/currencies/{currency}", self._currency)

    @staticmethod
    def volume_str(v) -> str:
        return format(v, "f") if v is not None else "0"

    # ---------------------------------------------------------------- REST helpers
    def rest_error(self, status: int, text: str, headers: Optional[dict] = None) -> web.Response:
        label = {429: "TOO_MANY_REQUESTS", 400: "INVALID_PARAM_VALUE"}.get(status, "SERVER_ERROR")
        return self.json_response({"label": label, "message": text}, status=status, headers=headers)

    def _rate_limit_headers(self, limit: int, remain: int, reset_ms: int) -> dict:
        # Gate reports its per-endpoint quota on every response (README "REST rate limits and headers")
        return {"X-Gate-RateLimit-Requests-Remain": str(remain), "X-Gate-RateLimit-Limit": str(limit),
                "X-Gate-RateLimit-Reset-Timestamp": str(reset_ms)}

    def retry_after_s(self, headers: dict) -> int:
        # until the window resets, as the quota headers say
        return max(1, int(headers.get("X-Gate-RateLimit-Reset-Timestamp", 0)) // 1000 - int(time.time()))

    def bad_request(self, label: str, message: str) -> web.Response:
        return self.json_response({"label": label, "message": message}, status=400)

    # Gate documents boolean query flags as booleans and has accepted only the lower-case
    # spellings: `with_id=False` (gateapi-python's urllib3 rendering of a Python bool) was refused
    # with INVALID_PARAM_VALUE "Invalid request parameter `with_id` value: False" (gateapi-python
    # #71, 2021; rest_error_invalid_param_with_id.json), and no later evidence shows otherwise.
    # The simulator refuses them the same way, never silently treating them as absent;
    # `sim.gate_python_bools` accepts True/False instead (a deliberate, configurable choice).
    _PY_BOOLS = {"True": True, "False": False}

    def bool_param(self, request: web.Request, name: str) -> tuple[bool, Optional[web.Response]]:
        """``(value, None)`` of an optional boolean query flag (absent: False), or ``(False, error)``."""
        raw = request.query.get(name)
        if raw is None or raw in ("true", "false"):
            return raw == "true", None
        if self.sim.cfg.gate_python_bools and raw in self._PY_BOOLS:
            return self._PY_BOOLS[raw], None
        return False, self.bad_request("INVALID_PARAM_VALUE", "Invalid request parameter `%s` value: %s" % (name, raw))

    @staticmethod
    def _limit(request: web.Request, default: int, maximum: int) -> int:
        raw = request.query.get("limit")
        if raw is None:
            return default
        n = int(raw)
        if n < 1 or n > maximum:
            raise ValueError("limit must be between 1 and %d" % maximum)
        return n



def _distinct(levels: list) -> bool:
    """No price twice among a diff's levels (a diff's changes; a caller's list could repeat one)."""
    return len({p for p, _ in levels}) == len(levels)


def _apply_changes(side: dict, levels: list, best_high: bool) -> list:
    """Apply a diff's levels (distinct prices) to a whole-book view side; the real changes, best first."""
    out = []
    for p, q in levels:
        if side.get(p, 0) != q:
            if q:
                side[p] = q
            else:
                del side[p]
            out.append((p, q))
    out.sort(reverse=best_high)
    return out
