"""REST manager (cexnode.net.rest) against a real aiohttp server on 127.0.0.1: keep-alive reuse,
rolling-window rate limits, Retry-After / 418 / Gate quota-header pauses, bounded retries, no
retry of 4xx or of non-idempotent requests (ambiguous instead), circuit breaker, timeouts,
signing per attempt, Prometheus export."""
from __future__ import annotations

import asyncio
import collections
import time

import pytest
from aiohttp import web
from prometheus_client import generate_latest

from cexnode.metrics import NodeMetrics, add_rest_sources
from cexnode.adapters.registry import descriptor
from cexnode.net.rest import (BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN, AmbiguousRequestError,
                              CircuitBreaker, CircuitOpenError, LimitRule, NotSentError, RateLimitedError, RestBusyError,
                              RestError, RestManager, RestPolicy, RestTimeoutError, RollingWindow, background_requests)
from cexnode.net.ratelimit import with_headroom


class Server:
    """A scriptable server: ``script[path]`` is a list of (status, headers, delay_s) answers, consumed
    in order (the last one repeats); every request is logged with its arrival time."""

    def __init__(self) -> None:
        self.script: dict[str, list] = {}
        self.log: list[tuple[float, str, str, dict]] = []
        self.runner = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.log.append((time.monotonic(), request.method, request.path_qs, dict(request.headers)))
        answers = self.script.get(request.path) or [(200, {}, 0.0)]
        status, headers, delay = answers.pop(0) if len(answers) > 1 else answers[0]
        if delay:
            await asyncio.sleep(delay)
        return web.json_response({"ok": status < 400, "path": request.path}, status=status, headers=headers)

    async def __aenter__(self) -> "Server":
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = "http://127.0.0.1:%d" % port
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()

    def hits(self, path: str) -> int:
        return sum(1 for _, _, pq, _ in self.log if pq.split("?")[0] == path)


def run(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


FAST = RestPolicy(timeout_s=2.0, max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05, breaker_failures=50)


def test_keep_alive_reuses_one_connection():
    async def main():
        async with Server() as srv:
            m = RestManager(srv.url, venue="gateio_spot", policy=FAST)
            for i in range(60):
                r = await m.request("GET", "/api/v4/spot/time", params={"i": i})
                assert r.status == 200 and r.json()["ok"]
            await m.close()
            return m
    m = run(main())
    assert m.requests == 60
    assert m.connections_created == 1
    assert m.reuse_rate >= 0.95 and m.stats()["reuse_rate"] >= 0.95


def test_rolling_window_never_exceeds_the_limit_in_any_window():
    w = RollingWindow(5, 1.0)
    t, booked = 0.0, []
    for i in range(40):
        t = w.earliest(t + (0.01 if i % 7 else 0.3))
        w.book(t)
        booked.append(t)
    assert booked == sorted(booked)
    for i, a in enumerate(booked):
        assert sum(1 for b in booked if a <= b < a + 1.0) <= 5
    # throughput is not thrown away: 40 requests at 5/s take about 8 s, not more
    assert booked[-1] - booked[0] < 8.5


def test_rate_limit_delays_never_drops_and_server_sees_the_limit():
    async def main():
        async with Server() as srv:
            rule = LimitRule(name="endpoint", limit=3, window_s=0.3)
            m = RestManager(srv.url, venue="x", policy=RestPolicy(limit_headroom=1.0), limits=[rule])
            t0 = time.monotonic()
            rs = await asyncio.gather(*(m.request("GET", "/a") for _ in range(10)))
            el = time.monotonic() - t0
            # another endpoint has its own window: not delayed
            t1 = time.monotonic()
            await m.request("GET", "/b")
            el_b = time.monotonic() - t1
            await m.close()
            return srv.log, rs, el, el_b, m
    log, rs, el, el_b, m = run(main())
    assert all(r.status == 200 for r in rs) and len(rs) == 10
    times = [t for t, _, pq, _ in log if pq == "/a"]
    assert len(times) == 10
    for a in times:                       # tolerance: arrival jitter on the server side
        assert sum(1 for b in times if a <= b < a + 0.2) <= 3
    assert el >= 0.85                     # 10 at 3 per 0.3 s: the 10th waits 3 windows
    assert el_b < 0.25
    assert m.waits["/a"] >= 6 and m.wait_s["/a"] > 0


@pytest.mark.parametrize("limit,window_s", [(2, 1.0), (1, 1.0), (10, 1.0), (500, 10.0), (3, 0.3)])
def test_headroom_keeps_the_rate_and_never_exceeds_the_published_limit(limit, window_s):
    """0.9 of a published limit is 0.9 of its rate (MEXC's 2 account requests/s: 1.8/s, not 1/s
    from truncation), and no published window ever sees more than ``limit``."""
    lim, win = with_headroom(limit, window_s, 0.9)
    assert lim / win == pytest.approx(0.9 * limit / window_s)
    w = RollingWindow(lim, win)
    t, booked = 0.0, []
    for _ in range(3 * limit + 5):        # as fast as allowed
        t = w.earliest(t)
        w.book(t)
        booked.append(t)
    for a in booked:
        assert sum(1 for b in booked if a <= b < a + window_s - 1e-9) <= limit
    in_3_windows = sum(1 for b in booked if b < 3 * window_s - 1e-9)
    assert 0.85 * 3 * limit <= in_3_windows <= 3 * limit


def test_free_now_is_earliest_le_now():
    """RollingWindow.free_now(now) (the order path's admission) == earliest(now, 1) <= now, over
    random histories of bookings at, before and after ``now`` (reservations ahead of time)."""
    import copy
    import random

    rnd = random.Random(11)
    for _ in range(3000):
        w = RollingWindow(rnd.randint(1, 5), rnd.choice((0.5, 1.0, 2.0)))
        t = 0.0
        for _ in range(rnd.randint(0, 12)):
            t += rnd.choice((0.0, 0.01, 0.2, 0.7, 1.5))
            w.book(t + rnd.choice((0.0, 0.0, 0.3)), rnd.randint(1, 2))
        now = t + rnd.choice((-0.1, 0.0, 0.05, 0.5, 1.0, 3.0))
        a, b = copy.deepcopy(w), copy.deepcopy(w)
        assert a.free_now(now) == (b.earliest(now, 1) <= now)
        assert list(a._times) == list(b._times)          # the same slots expired, nothing booked


def test_published_venue_limits():
    mexc = descriptor("mexc_spot").rest_limits()
    assert any(r.limit == 500 and r.window_s == 10 and r.per == "endpoint" for r in mexc)
    assert any(r.limit == 2 and r.window_s == 1 and r.matches("GET", "/api/v3/account") for r in mexc)
    gate = descriptor("gateio_spot").rest_limits()
    assert any(r.limit == 200 and r.window_s == 10 for r in gate)
    place = [r for r in gate if r.matches("POST", "/api/v4/spot/orders") and r.per == "market"]
    assert place and place[0].limit == 10 and place[0].window_s == 1
    cancel = [r for r in gate if r.matches("DELETE", "/api/v4/spot/orders/123")]
    assert cancel and cancel[0].limit == 200


def test_background_requests_use_only_spare_room_never_wait_and_are_never_retried():
    async def main():
        async with Server() as srv:
            srv.script["/flaky"] = [(503, {}, 0), (503, {}, 0), (200, {}, 0)]
            limits = [LimitRule(name="endpoint", limit=10, window_s=60.0)]
            pol = RestPolicy(timeout_s=2.0, max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05,
                             breaker_failures=50, limit_headroom=1.0)
            m = RestManager(srv.url, venue="x", policy=pol, limits=limits)
            out = {}
            with background_requests():
                out["spare"] = (await m.request("GET", "/depth")).status        # 1 of 10 used
            for _ in range(4):
                await m.request("GET", "/depth")                               # the node's own: 5 of 10
            t0 = time.monotonic()
            with background_requests():
                with pytest.raises(RestBusyError):
                    await m.request("GET", "/depth")                           # would pass half the window
            out["busy_s"] = time.monotonic() - t0
            out["hits_busy"] = srv.hits("/depth")
            t0 = time.monotonic()
            for _ in range(5):                                                 # the rest is the node's, at once
                await m.request("GET", "/depth")
            out["node_s"] = time.monotonic() - t0
            m.pause("/paused", 5.0)
            with background_requests():
                with pytest.raises(RestBusyError):
                    await m.request("GET", "/paused")
                with pytest.raises(RestError) as e:
                    await m.request("GET", "/flaky")                           # 503: not retried
            out["flaky_status"] = e.value.status
            out["flaky_hits"] = srv.hits("/flaky")
            out["after"] = (await m.request("GET", "/flaky")).status          # outside: retried as usual
            out["flaky_hits_after"] = srv.hits("/flaky")
            await m.close()
            return m, out
    m, out = run(main())
    assert out["spare"] == 200
    assert out["hits_busy"] == 5 and out["busy_s"] < 0.1            # nothing sent, nothing waited
    assert out["node_s"] < 1.0                                       # the node's requests kept their room
    assert out["flaky_status"] == 503 and out["flaky_hits"] == 1
    assert out["after"] == 200 and out["flaky_hits_after"] == 3
    assert m.refused[("/depth", "background_busy")] == 1 and m.refused[("/paused", "background_busy")] == 1


def test_429_retry_after_is_honoured_then_retried():
    async def main():
        async with Server() as srv:
            srv.script["/depth"] = [(429, {"Retry-After": "1"}, 0), (429, {"Retry-After": "1"}, 0), (200, {}, 0)]
            m = RestManager(srv.url, venue="mexc_spot", policy=FAST)
            t0 = time.monotonic()
            r = await m.request("GET", "/depth")
            el = time.monotonic() - t0
            await m.close()
            return srv, r, el, m
    srv, r, el, m = run(main())
    assert r.status == 200
    assert el >= 1.95                     # two Retry-After: 1 waits
    times = [t for t, _, pq, _ in srv.log if pq == "/depth"]
    assert len(times) == 3 and times[1] - times[0] >= 0.95 and times[2] - times[1] >= 0.95
    assert m.rate_limited[("/depth", "429")] == 2 and m.retries == 2
    assert m.breaker("/depth").state == BREAKER_CLOSED


def test_429_pause_applies_to_concurrent_requests_and_long_pause_fails_fast():
    async def main():
        async with Server() as srv:
            srv.script["/p"] = [(429, {"Retry-After": "60"}, 0), (200, {}, 0)]
            m = RestManager(srv.url, venue="mexc_spot", policy=RestPolicy(max_retry_wait_s=5, max_attempts=3))
            with pytest.raises(RateLimitedError) as ei:
                await m.request("GET", "/p")
            assert ei.value.retry_in_s > 50
            with pytest.raises(RateLimitedError):
                await m.request("GET", "/p")          # nothing sent while paused
            r = await m.request("GET", "/other")    # other endpoints go on
            await m.close()
            return srv, m, r
    srv, m, r = run(main())
    assert srv.hits("/p") == 1 and r.status == 200
    assert m.refused[("/p", "rate_limited")] == 2


def test_418_pauses_the_whole_venue():
    async def main():
        async with Server() as srv:
            srv.script["/x"] = [(418, {"Retry-After": "1"}, 0), (200, {}, 0)]
            m = RestManager(srv.url, venue="mexc_spot", policy=FAST)
            with pytest.raises(RestError):
                await m.request("POST", "/x")        # not idempotent: not retried
            t0 = time.monotonic()
            await m.request("GET", "/y")
            el = time.monotonic() - t0
            await m.close()
            return el, m
    el, m = run(main())
    assert el >= 0.9
    assert m.rate_limited[("/x", "418")] == 1


def test_gate_quota_headers_pause_until_reset():
    async def main():
        async with Server() as srv:
            # built first: the venue's rules are looked up in the registry (its first use imports
            # every venue package), and the reset below is only 700 ms away
            m = RestManager(srv.url, venue="gateio_spot", policy=FAST)
            reset_ms = int(time.time() * 1000) + 700
            srv.script["/api/v4/spot/order_book"] = [
                (200, {"X-Gate-RateLimit-Requests-Remain": "0", "X-Gate-RateLimit-Limit": "200",
                       "X-Gate-RateLimit-Reset-Timestamp": str(reset_ms)}, 0), (200, {}, 0)]
            await m.request("GET", "/api/v4/spot/order_book")
            t0 = time.monotonic()
            await m.request("GET", "/api/v4/spot/order_book")
            await m.close()
            return time.monotonic() - t0, m
    el, m = run(main())
    assert el >= 0.5
    assert m.quota_remaining["/api/v4/spot/order_book"] == 0
    assert m.waits["/api/v4/spot/order_book"] == 1


def test_5xx_retries_are_bounded_and_4xx_never_retried():
    async def main():
        async with Server() as srv:
            srv.script["/bad"] = [(503, {}, 0)]
            srv.script["/client"] = [(400, {}, 0)]
            srv.script["/flaky"] = [(502, {}, 0), (500, {}, 0), (200, {}, 0)]
            m = RestManager(srv.url, venue="x", policy=FAST)
            with pytest.raises(RestError) as e5:
                await m.request("GET", "/bad")
            with pytest.raises(RestError) as e4:
                await m.request("GET", "/client")
            r = await m.request("GET", "/flaky")
            await m.close()
            return srv, m, e5.value, e4.value, r
    srv, m, e5, e4, r = run(main())
    assert e5.status == 503 and srv.hits("/bad") == 3          # max_attempts
    assert e4.status == 400 and srv.hits("/client") == 1
    assert r.status == 200 and srv.hits("/flaky") == 3
    assert m.by_status[("/bad", "503")] == 3 and m.retries_by["/bad"] == 2


def test_post_is_never_retried_blindly():
    async def main():
        async with Server() as srv:
            srv.script["/api/v3/order"] = [(503, {}, 0)]
            srv.script["/slow"] = [(200, {}, 1.0)]
            m = RestManager(srv.url, venue="mexc_spot", policy=RestPolicy(timeout_s=0.3, max_attempts=4))
            with pytest.raises(AmbiguousRequestError) as a5:
                await m.request("POST", "/api/v3/order", body={"x": 1})
            with pytest.raises(AmbiguousRequestError) as at:
                await m.request("POST", "/slow")
            with pytest.raises(RestError):
                srv.script["/api/v3/order"] = [(400, {}, 0)]
                await m.request("POST", "/api/v3/order")
            await m.close()
            dead = RestManager("http://127.0.0.1:1", venue="x", policy=RestPolicy(timeout_s=1))
            with pytest.raises(NotSentError):
                await dead.request("POST", "/api/v3/order")
            await dead.close()
            return srv, a5.value, at.value
    srv, a5, at = run(main())
    assert srv.hits("/api/v3/order") == 2 and srv.hits("/slow") == 1
    assert a5.status == 503 and at.status == 0


def test_get_timeouts_are_retried_then_succeed_or_raise():
    async def main():
        async with Server() as srv:
            srv.script["/t"] = [(200, {}, 0.5), (200, {}, 0.5), (200, {}, 0)]
            srv.script["/never"] = [(200, {}, 0.5)]
            m = RestManager(srv.url, venue="x", policy=RestPolicy(timeout_s=0.15, max_attempts=3, backoff_base_s=0.01,
                                                                  breaker_failures=50))
            r = await m.request("GET", "/t")
            with pytest.raises(RestTimeoutError):
                await m.request("GET", "/never")
            with pytest.raises(asyncio.TimeoutError):    # RestTimeoutError is a TimeoutError too
                await m.request("GET", "/never")
            await m.close()
            return m, r
    m, r = run(main())
    assert r.status == 200 and m.by_status[("/t", "timeout")] == 2
    assert m.by_status[("/never", "timeout")] == 6


def test_circuit_breaker_opens_fails_fast_then_half_open_probe_closes():
    async def main():
        async with Server() as srv:
            srv.script["/e"] = [(503, {}, 0)]
            pol = RestPolicy(max_attempts=1, breaker_failures=3, breaker_cooldown_s=0.3, breaker_cooldown_max_s=1.0)
            m = RestManager(srv.url, venue="x", policy=pol)
            for _ in range(3):
                with pytest.raises(RestError):
                    await m.request("GET", "/e")
            b = m.breaker("/e")
            assert b.state == BREAKER_OPEN and b.opens == 1
            with pytest.raises(CircuitOpenError) as co:
                await m.request("GET", "/e")
            assert 0 < co.value.retry_in_s <= 0.3
            assert srv.hits("/e") == 3                       # fail fast: nothing sent
            await asyncio.sleep(0.35)
            with pytest.raises(RestError):                  # the probe fails: open again, longer
                await m.request("GET", "/e")
            assert b.state == BREAKER_OPEN and b.opens == 2 and b.cooldown == pytest.approx(0.6)
            srv.script["/e"] = [(200, {}, 0)]
            await asyncio.sleep(0.65)
            r = await m.request("GET", "/e")
            assert b.state == BREAKER_CLOSED and r.status == 200
            await m.close()
            return srv, m
    srv, m = run(main())
    assert srv.hits("/e") == 5 and m.refused[("/e", "circuit_open")] == 1


def test_breaker_half_open_lets_one_probe_at_a_time():
    now = [0.0]
    b = CircuitBreaker(failures=1, cooldown_s=1.0, clock=lambda: now[0])
    b.failure()
    assert b.state == BREAKER_OPEN and not b.allow()
    now[0] = 1.0
    assert b.allow() and b.state == BREAKER_HALF_OPEN
    assert not b.allow()            # a second caller waits for the probe
    b.release()                     # probe cancelled
    assert b.allow()
    b.success()
    assert b.state == BREAKER_CLOSED and b.allow() and b.allow()


def test_signing_hook_runs_per_attempt_with_the_exact_query():
    calls = []

    def sign(method, path, query, body):
        calls.append((method, path, query, body))
        return query + "&signature=s%d" % len(calls), {"X-KEY": "k"}

    async def main():
        async with Server() as srv:
            srv.script["/api/v3/openOrders"] = [(500, {}, 0), (200, {}, 0)]
            m = RestManager(srv.url, venue="mexc_spot", policy=FAST, signer=sign)
            m.server_time_offset_ms = 1500
            assert abs(m.server_now_ms() - (time.time_ns() // 1_000_000 + 1500)) < 100
            await m.request("GET", "/api/v3/openOrders", params={"symbol": "BTCUSDT", "a": "x y"}, signed=True)
            await m.close()
            return srv
    srv = run(main())
    assert [c[2] for c in calls] == ["symbol=BTCUSDT&a=x+y"] * 2
    assert [pq for _, _, pq, _ in srv.log] == ["/api/v3/openOrders?symbol=BTCUSDT&a=x+y&signature=s1",
                                               "/api/v3/openOrders?symbol=BTCUSDT&a=x+y&signature=s2"]
    assert all(h.get("X-KEY") == "k" for _, _, _, h in srv.log)


def test_metrics_exported():
    async def main():
        async with Server() as srv:
            srv.script["/api/v3/depth"] = [(429, {"Retry-After": "0"}, 0), (503, {}, 0), (200, {}, 0)]
            m = RestManager(srv.url, venue="mexc_spot", policy=FAST)
            await m.request("GET", "/api/v3/depth")
            await m.close()
            return m
    m = run(main())
    nm = NodeMetrics()
    add_rest_sources(nm, lambda: [m])
    text = generate_latest(nm.registry).decode()
    assert 'cexnode_rest_requests_total{endpoint="/api/v3/depth",status="429",venue="mexc_spot"} 1.0' in text
    assert 'cexnode_rest_requests_total{endpoint="/api/v3/depth",status="503",venue="mexc_spot"} 1.0' in text
    assert 'cexnode_rest_requests_total{endpoint="/api/v3/depth",status="200",venue="mexc_spot"} 1.0' in text
    assert 'cexnode_rest_retries_total{endpoint="/api/v3/depth",venue="mexc_spot"} 2.0' in text
    assert 'cexnode_rest_rate_limited_total{endpoint="/api/v3/depth",status="429",venue="mexc_spot"} 1.0' in text
    assert 'cexnode_rest_breaker_state{endpoint="/api/v3/depth",venue="mexc_spot"} 0.0' in text
    assert 'cexnode_rest_connection_reuse_ratio{venue="mexc_spot"}' in text
    assert 'cexnode_rest_request_microseconds_count{endpoint="/api/v3/depth",venue="mexc_spot"} 3.0' in text


def test_capture_hook_sees_every_answer_and_server_time_sync():
    seen = []

    class Cap:
        def rest(self, venue, method, path, query, status, body):
            seen.append((venue, method, path, query, status, orjson_loads(body)["path"]))

    async def main():
        async with Server() as srv:
            srv.script["/api/v4/spot/order_book"] = [(503, {}, 0), (200, {}, 0)]
            m = RestManager(srv.url, venue="gateio_spot", policy=FAST, capture=Cap())
            await m.request("GET", "/api/v4/spot/order_book", params={"currency_pair": "BTC_USDT", "limit": 100})
            # a venue clock 5 s ahead of ours
            off = await m.sync_server_time("/api/v4/spot/time", lambda _j: time.time_ns() // 1_000_000 + 5000)
            await m.close()
            return off, m
    off, m = run(main())
    assert seen[:2] == [("gateio_spot", "GET", "/api/v4/spot/order_book", "currency_pair=BTC_USDT&limit=100", 503,
                         "/api/v4/spot/order_book"),
                        ("gateio_spot", "GET", "/api/v4/spot/order_book", "currency_pair=BTC_USDT&limit=100", 200,
                         "/api/v4/spot/order_book")]
    assert len(seen) == 5                       # + 3 time samples
    assert 4900 <= off <= 5100 and m.server_time_offset_ms == off


def orjson_loads(b):
    import orjson
    return orjson.loads(b)


def test_new_connections_are_counted_when_the_server_closes_them():
    async def main():
        async with Server() as srv:
            srv.script["/c"] = [(200, {"Connection": "close"}, 0)]
            m = RestManager(srv.url, venue="x", policy=FAST)
            for _ in range(5):
                await m.request("GET", "/c")
            for _ in range(5):
                await m.request("GET", "/k")         # keep-alive again
            await m.close()
            return m
    m = run(main())
    assert m.connections_created == 6
    assert m.connections_reused == 4 and m.reuse_rate == 0.4


def test_encode_query_equals_urlencode():
    """The REST manager's query encoder joins plain keys and values directly: the same string as
    urlencode for any input (random keys/values over plain and special characters, ints)."""
    import random
    from urllib.parse import urlencode

    from cexnode.net.rest import encode_query

    rnd = random.Random(7)
    alphabet = "abcXYZ019_.~- &=+/%é?#"
    for _ in range(5000):
        pairs = [("".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 6))),
                  "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 8))) if rnd.random() < 0.8
                  else rnd.randrange(-5, 1000)) for _ in range(rnd.randrange(0, 5))]
        want = urlencode([(k, v if isinstance(v, str) else str(v)) for k, v in pairs])
        assert encode_query(pairs) == want
        d = dict(pairs)
        assert encode_query(d) == urlencode([(k, v if isinstance(v, str) else str(v)) for k, v in d.items()])
    assert encode_query({"symbol": "BTCUSDT", "quantity": "0.01"}) == "symbol=BTCUSDT&quantity=0.01"


# -- the order path: send_now + answer ----------------------------------------------------------------------

ORDER = "/api/v3/order"


async def _lane_manager(srv, **pol):
    policy = RestPolicy(**dict(dict(timeout_s=0.3, breaker_failures=50), **pol))
    m = RestManager(srv.url, venue="mexc_spot", policy=policy)
    assert await m.open_order_connection([("POST", ORDER), ("GET", ORDER)])
    return m


async def _outcome(coro):
    try:
        r = await coro
        return ("ok", r.status)
    except (RestError, AmbiguousRequestError) as e:
        return (type(e).__name__, getattr(e, "status", None))


def test_send_now_and_answer_classify_as_request_does():
    """Differential: every kind of answer to an order, through request() on one manager and through
    send_now()+answer() on another, gives the same outcome and the same books (status counters,
    breaker, pauses, on-wire count); the fast path writes in the caller's call."""
    script = [(200, {}, 0), (400, {}, 0), (429, {"Retry-After": "0"}, 0), (503, {}, 0), (200, {}, 0.6), (201, {}, 0)]

    async def main():
        out = {}
        async with Server() as srv:
            for mode in ("request", "send_now"):
                m = await _lane_manager(srv)
                got = []
                for answer in script:
                    srv.script[ORDER] = [answer]
                    await asyncio.sleep(0.05)                    # the lane reconnected after a timeout
                    for _ in range(100):
                        if m.order_connection.ready:
                            break
                        await asyncio.sleep(0.02)
                    if mode == "request":
                        got.append(await _outcome(m.request("POST", ORDER, query="symbol=X&side=BUY")))
                    else:
                        oc = m.order_connection
                        n0 = oc.requests
                        sent = m.send_now("POST", ORDER, "symbol=X&side=BUY")
                        assert sent is not None and oc.requests == n0 + 1 and not oc.ready   # written: in flight
                        got.append(await _outcome(m.answer(sent)))
                out[mode] = (got, dict(m.by_status), m._on_wire, m.breaker(ORDER).consecutive, m.requests,
                             dict(m.rate_limited), m.order_connection.connects, m.order_connection_requests)
                await m.close()
            return out

    out = run(main())
    assert out["request"] == out["send_now"]
    got = out["send_now"][0]
    assert got == [("ok", 200), ("RestError", 400), ("RestError", 429), ("AmbiguousRequestError", 503),
                   ("AmbiguousRequestError", 0), ("ok", 201)]
    assert out["send_now"][6] == 2          # the unanswered request: the connection was renewed


def test_send_now_goes_only_when_the_request_can_go_at_once():
    async def main():
        async with Server() as srv:
            srv.script[ORDER] = [(200, {}, 0.2)]
            m = await _lane_manager(srv)
            oc = m.order_connection
            win = m._windows_for("POST", ORDER, None)
            assert win, "the venue's endpoint limit applies to orders"
            booked = lambda: [len(w._times) for w in win]
            # not an order route, or idempotent (retries belong to request()): never
            assert m.send_now("POST", "/other", "") is None and m.send_now("GET", ORDER, "") is None
            # a full rate window: nothing booked, nothing written (request() would wait its turn)
            b0 = booked()
            saved = [collections.deque(w._times) for w in win]
            for w in win:
                w.book(time.monotonic(), w.limit)
            full = booked()
            assert m.send_now("POST", ORDER, "a=1") is None and booked() == full and oc.requests == 0
            for w, t in zip(win, saved):
                w._times = t
            assert booked() == b0
            # the breaker open: refused, nothing written, the refusal counted
            brk = m.breaker(ORDER)
            for _ in range(brk.failures):
                brk.failure()
            with pytest.raises(CircuitOpenError):
                m.send_now("POST", ORDER, "a=1")
            assert oc.requests == 0 and m.refused[(ORDER, "circuit_open")] == 1 and srv.hits(ORDER) == 0
            brk.success()
            # one in flight: the connection is busy, the next cannot go at once
            sent = m.send_now("POST", ORDER, "a=1")
            assert sent is not None and m.send_now("POST", ORDER, "a=2") is None
            assert booked() == [n + 1 for n in b0]           # one booking per request written
            assert (await m.answer(sent)).status == 200
            # the caller giving up (cancelled) frees the connection for the next order
            sent = m.send_now("POST", ORDER, "a=3")
            t = asyncio.get_running_loop().create_task(m.answer(sent))
            await asyncio.sleep(0.05)
            t.cancel()
            with pytest.raises(asyncio.CancelledError):
                await t
            for _ in range(100):
                if oc.ready:
                    break
                await asyncio.sleep(0.02)
            assert oc.ready and oc.connects == 2 and m.breaker(ORDER).probing is False
            await m.close()
            return srv

    srv = run(main())
    assert srv.hits(ORDER) == 2


# -- a venue's REST rules come from its descriptor ------------------------------------------------------------

def _fake_quota(headers):
    left = headers.get("X-Fake-Quota-Left")
    if left is None:
        return None
    return int(left), int(headers["X-Fake-Quota-Reset-Ms"]) if "X-Fake-Quota-Reset-Ms" in headers else None


@pytest.fixture
def fake_venue():
    """A venue registered only by its descriptor: 2 requests per 0.5 s on every endpoint, and a quota
    header of its own."""
    from cexnode.adapters.base import VenueAdapter
    from cexnode.adapters.descriptor import VenueDescriptor
    from cexnode.adapters.registry import register, unregister
    from cexnode.config import VenueConfig

    desc = VenueDescriptor(name="fake_rest_venue", venue_id=241, market="spot", title="fake", adapter_class=VenueAdapter,
                           config_class=VenueConfig,
                           rest_limits=lambda: [LimitRule(name="endpoint", limit=2, window_s=0.5)],
                           rest_quota_reader=_fake_quota)
    register(desc)
    try:
        yield desc
    finally:
        unregister(desc.name)


def test_a_registered_venue_s_published_limits_reach_its_manager(fake_venue):
    """A manager built for a venue applies the rules of the venue's descriptor: the server never
    sees more than 2 requests in any 0.5 s; an unregistered name has no limits (all at once)."""
    async def main():
        async with Server() as srv:
            pol = RestPolicy(limit_headroom=1.0)
            m = RestManager(srv.url, venue="fake_rest_venue", policy=pol)
            t0 = time.monotonic()
            await asyncio.gather(*(m.request("GET", "/a") for _ in range(6)))
            limited = time.monotonic() - t0
            free = RestManager(srv.url, venue="unregistered", policy=pol)
            await asyncio.gather(*(free.request("GET", "/b") for _ in range(6)))
            await m.close()
            await free.close()
            return srv.log, limited, free, m
    log, limited, free, m = run(main())
    times = [t for t, _, pq, _ in log if pq == "/a"]
    assert len(times) == 6
    for a in times:
        assert sum(1 for b in times if a <= b < a + 0.4) <= 2
    assert limited >= 0.95                              # 6 at 2 per 0.5 s: the last pair waits 2 windows
    assert m.waits["/a"] >= 4
    assert sum(free.waits.values()) == 0 and len([1 for _, _, pq, _ in log if pq == "/b"]) == 6   # no limits


def test_a_venue_s_quota_header_hook_pauses_the_endpoint_until_its_reset(fake_venue):
    """The descriptor's quota reader sees every answer: no request left pauses that endpoint (only
    that one) until the reset time the venue gave."""
    async def main():
        async with Server() as srv:
            m = RestManager(srv.url, venue="fake_rest_venue", policy=FAST)
            reset_ms = int(time.time() * 1000) + 1200
            srv.script["/q"] = [(200, {"X-Fake-Quota-Left": "0", "X-Fake-Quota-Reset-Ms": str(reset_ms)}, 0),
                                (200, {"X-Fake-Quota-Left": "7"}, 0)]
            await m.request("GET", "/q")
            paused = m.paused_for("/q")
            t0 = time.monotonic()
            await m.request("GET", "/other")
            other = time.monotonic() - t0
            t0 = time.monotonic()
            await m.request("GET", "/q")
            waited = time.monotonic() - t0
            left = dict(m.quota_remaining)
            await m.close()
            return paused, other, waited, left, m
    paused, other, waited, left, m = run(main())
    assert 0.5 < paused <= 1.25
    assert other < 0.5                       # another endpoint is not paused
    assert waited >= paused - 0.1 - other    # this one waited for the reset
    assert left == {"/q": 7} and m.waits["/q"] == 1


# -- the transport is an interface -------------------------------------------------------------------------

class Recorded:
    """A transport that answers from a list, as a replay from a recording would
    (:class:`cexnode.net.transport.Transport`): each item an answer ``(status, headers, body)`` or an
    exception raised instead."""

    ready = True

    def __init__(self, answers) -> None:
        self.answers = list(answers)
        self.sent: list[tuple] = []
        self.connections_created = 0
        self.closed = False

    def send(self, method, target, headers=None, body=b""):
        self.sent.append((method, target, dict(headers or {}), body))
        return self.answers.pop(0)

    async def answer(self, sent, timeout_s):
        if isinstance(sent, BaseException):
            raise sent
        return sent

    async def close(self):
        self.closed = True


def test_the_request_path_runs_over_any_transport():
    """No socket: the manager's retries, signing and classification work the same over a transport
    that answers from a list (what a replay transport does)."""
    from cexnode.net.transport import NotWrittenError, TransportLostError

    def sign(method, path, query, body):
        return query + "&sig=1", {"X-Sig": "1"}

    async def main():
        tr = Recorded([(503, {}, b"{}"), (200, {}, b'{"ok": true}'),       # GET: retried once
                       NotWrittenError("ClientConnectorError"),             # POST: not sent
                       TransportLostError("ServerDisconnectedError"),       # POST: ambiguous
                       asyncio.TimeoutError()])                             # POST: ambiguous
        m = RestManager("http://replay.invalid", venue="x", policy=FAST, transport=tr)
        out = {"get": (await m.request("GET", "/p", params={"a": 1}, sign=sign)).json()}
        for name in ("not_sent", "lost", "timeout"):
            try:
                await m.request("POST", "/o", body={"q": 1})
            except (NotSentError, AmbiguousRequestError) as e:
                out[name] = type(e).__name__
        await m.close()
        return tr, m, out
    tr, m, out = run(main())
    assert out == {"get": {"ok": True}, "not_sent": "NotSentError", "lost": "AmbiguousRequestError",
                   "timeout": "AmbiguousRequestError"}
    assert [s[1] for s in tr.sent[:2]] == ["/p?a=1&sig=1"] * 2 and tr.sent[0][2] == {"X-Sig": "1"}
    assert tr.sent[2][2]["Content-Type"] == "application/json" and tr.sent[2][3] == b'{"q":1}'
    assert m.by_status[("/p", "503")] == 1 and m.by_status[("/o", "connect_error")] == 1
    assert m.by_status[("/o", "transport_error")] == 1 and m.by_status[("/o", "timeout")] == 1
    assert m.retries == 1 and tr.closed
