"""REST round trip on loopback against the simulator in the same process (uvloop).

* ``rest_roundtrip``: one ``GET /api/v3/depth?symbol=BTCUSDT&limit=100`` (a real snapshot answer,
  ~100 levels a side) from call to parsed-ready bytes, through :class:`cexnode.net.rest.RestManager`
  on its pooled keep-alive connection — the main number — side by side in one run with two peers:
  plain aiohttp on a keep-alive session (what the manager's limits/breaker/metrics cost) and aiohttp
  opening a new connection per request (``force_close``: what keep-alive saves). The manager's
  connection-reuse rate is reported (the seeds promise > 95 %). The venue's rate limits are off for
  the manager here (``limits=[]``): this measures the client, not MEXC's 500 / 10 s quota. The seeds
  budget "< 50 ms" end to end, which the network dominates; the target here is the client +
  simulator share on loopback: under 1 ms.
"""
from __future__ import annotations

import time

from _timing import summarize


def rest_roundtrip(quick: bool) -> dict:

    import aiohttp
    import uvloop

    from cexnode.config import SimConfig
    from cexnode.net.rest import RestManager, RestPolicy
    from cexnode.sim import ExchangeSimulator

    n = 300 if quick else 3000
    warm = 50
    path, params = "/api/v3/depth", {"symbol": "BTCUSDT", "limit": "100"}

    async def main() -> dict:
        sim = ExchangeSimulator(SimConfig(seed=1), venues={"mexc_spot": ["BTC/USDT"]}, clock="manual",
                                trading=False)
        async with sim:
            base = sim.urls["mexc_spot"].rest.rstrip("/")
            url = base + path
            mgr = RestManager(base, venue="mexc_spot", policy=RestPolicy(timeout_s=5), limits=[])

            async def via_manager():
                r = await mgr.request("GET", path, params=params)
                assert r.status == 200 and len(r.body) > 1000

            keep = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=60))

            async def via_aiohttp():
                async with keep.get(url, params=params) as r:
                    body = await r.read()
                assert r.status == 200 and len(body) > 1000

            fresh = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))

            async def via_new_connection():
                async with fresh.get(url, params=params) as r:
                    body = await r.read()
                assert r.status == 200 and len(body) > 1000

            try:
                # interleave the peers in rounds so drift hits all three alike
                res: dict[str, list[float]] = {"manager": [], "aiohttp_keepalive": [], "aiohttp_new_connection": []}
                rounds = 5
                per = max(1, n // rounds)
                for _ in range(rounds):
                    for name, fn in (("manager", via_manager), ("aiohttp_keepalive", via_aiohttp),
                                     ("aiohttp_new_connection", via_new_connection)):
                        for _ in range(warm // 5):
                            await fn()
                        pc = time.perf_counter_ns
                        for _ in range(per):
                            t0 = pc()
                            await fn()
                            res[name].append(pc() - t0)
                st = mgr.stats()
            finally:
                await mgr.close()
                await keep.close()
                await fresh.close()
        return {"res": res, "stats": st}

    out = uvloop.run(main())
    res, st = out["res"], out["stats"]
    peers = {k: summarize(v) for k, v in res.items()}
    main_ = peers["manager"]
    return {
        "name": "rest_roundtrip",
        "median_ns": main_["median_ns"],
        "p99_ns": main_["p99_ns"],
        "target_ns": 1_000_000,
        "median_us": round(main_["median_ns"] / 1000, 1),
        "requests_per_path": main_["samples"],
        "reuse_rate": st["reuse_rate"],
        "reuse_target": 0.95,
        "reuse_met": st["reuse_rate"] > 0.95,
        "connections_created": st["connections_created"],
        "paths": peers,
        "ratio_new_connection_vs_manager": round(peers["aiohttp_new_connection"]["median_ns"] / main_["median_ns"], 2),
        "ratio_manager_vs_plain_aiohttp": round(main_["median_ns"] / peers["aiohttp_keepalive"]["median_ns"], 3),
        "note": "GET /api/v3/depth (100 levels) to the simulator in the same process on 127.0.0.1, uvloop; "
                "manager rate limits off",
    }


BENCHMARKS = [rest_roundtrip]
