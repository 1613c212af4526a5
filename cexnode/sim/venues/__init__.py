"""The simulated venues: one place per venue, the same roles as ``cexnode.adapters``.

A simulated venue is a :class:`cexnode.sim.server.SimVenue` subclass, exported by its module as
``SIM_VENUE`` and found by venue name through :mod:`cexnode.sim.registry` (the venue descriptor's
``sim_venue`` names the module). The class says everything the generic simulator (server, books,
generator, faults, playback, matching) needs to know about the venue; the ``SimVenue`` docstring
lists it: market kind, symbol naming and precision (``make_instrument``), WebSocket requests and
channels and how a book diff is written on them, REST routes, errors and limits, capture control
frames, and the trading side's protocol class (signed REST, private streams, order API).

* ``mexc_spot/`` — MEXC spot v3: ``public`` (streams, REST), ``trading`` (order API, listenKeys,
  private pushes), ``auth`` (signatures), ``proto`` (protobuf push encoder, also the tests' oracle).
* ``_gate/`` — the Gate v4 protocol that Gate spot and Gate USDT futures share: WebSocket envelope
  and requests, ``trading`` (signed REST, private channels, WebSocket order API), ``auth``.
* ``gateio_spot``, ``gateio_futures`` — the two Gate venues: channels, wire shapes, REST, instruments.

A new venue that speaks one of these protocols under another name needs no code here: its
descriptor's ``sim_venue`` names the protocol's module (or a test calls
``cexnode.sim.registry.register(name, cls)``). A venue with a protocol of its own is one module or
package here exporting ``SIM_VENUE``.
"""
