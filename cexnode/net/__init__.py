"""Networking, one job per module; nothing here names a venue (each venue's rules come from its
descriptor, :mod:`cexnode.adapters.registry`).

* ``ws.py``: public WebSocket feeds on picows (subscribe, message pacing, pings, watchdog, backoff,
  rotation);
* ``rest.py``: the REST manager, one per venue (the request path: pauses, rate limits, breaker,
  signing, retries, the classification of answers), over a transport chosen per request;
* ``transport.py``: the transport interface; ``pool.py``: keep-alive pooled connections (aiohttp);
  ``http1.py``: the kept-alive HTTP/1.1 order connection;
* ``ratelimit.py``: published limits, rolling windows, headroom, quota headers; ``breaker.py``: the
  circuit breaker; ``servertime.py``: the venue's clock; ``errors.py``: what the REST manager raises.
"""
