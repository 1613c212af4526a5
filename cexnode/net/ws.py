"""Public WebSocket feeds on picows: connect, subscribe, pings, watchdog, reconnect, rotation.

Every data frame goes zero-copy from picows to the venue's Cython parser through
:class:`cexnode._core.listener.FeedListener` (``FeedParser.feed(ptr, n, binary, recv_ns)``, the
receive time read from a C clock): no Python code runs per market-data frame. This module only
does the cold work around the connections. The venue's rules (``VenueDescriptor.ws``: subscriptions
per connection, application ping, protocol pings, connection age, client message rate) come from
the caller (:mod:`cexnode.adapters.base`); nothing here names a venue.

* subscribe on every (re)connect, one connection per group of ``max_subscriptions`` messages
  (a venue that caps subscriptions per connection);
* subscriptions added and removed while the feed runs (:meth:`WsFeed.add_subscriptions`,
  :meth:`WsFeed.remove_subscriptions`): an added one joins a group with room, else a new group whose
  connection opens; on a live connection the (un)subscribe frames go out within the connection's
  message budget; a removed one is not re-sent on reconnect, and a connection left with no
  subscription is closed (a venue may close an idle connection itself);
* connections open at most ``max_connects_per_s`` per second (starts, reconnects, rotations, new
  groups), a venue's limit on new connections;
* application pings (the venue's ping message every ``ping_interval_s``) plus protocol pings through
  picows' auto-ping (a missing pong disconnects), off for a venue that does not answer them;
* a watchdog: a connection with no frame for ``watchdog_s`` is closed and reconnected;
* reconnect with exponential backoff and jitter (``backoff_initial_s`` doubling up to
  ``backoff_max_s``; reset once a connection stayed up ``healthy_reset_s``), then resubscribe and
  ``on_reconnected(index)`` so the owner resyncs every book;
* rotation before a venue's connection age limit (``max_connection_age_s``): the replacement
  connection is opened and subscribed, and once its first data frame arrived the old one is closed.
  During the overlap both feed the same parser: every diff arrives twice and the book sync drops
  the second copy (``APPLY_STALE``), so there is no gap and no resync;
* rejected subscriptions (a venue error ack): the adapter hands venue errors to
  :meth:`WsFeed.on_venue_error`, which counts them (``subscription_rejects``), logs, and re-sends that
  connection's subscriptions with backoff (same schedule as reconnects) until accepted. The books of
  the rejected symbols get no diffs meanwhile: the adapter (``adapters.base``) takes them out of sync
  at once (not ready, never traded) and fetches their snapshots only once the venue acknowledges the
  subscription;
* a venue's limit on client messages per connection (``max_messages_per_s``; more closes the
  connection): subscriptions, re-sent subscriptions and application pings of a connection are paced
  to that many per 2 s (``_RATE_WINDOW_S``). A re-send that does not fit waits.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from typing import Any, Callable, Optional

from picows import WSCloseCode, WSMsgType, ws_connect

from cexnode._core.listener import FeedListener, current_listener
from cexnode.log import get_logger

__all__ = ["WsFeed", "subscription_rejected"]

# Protocol ping after this long without incoming data, unless the caller says otherwise.
_PROTOCOL_PING_S = 15.0
# The venue counts messages as they arrive, and arrival can lag sending (a loaded host, a
# retransmit): a connection's budget of messages per second is spread over this many seconds, so
# messages sent up to a second apart never land in one of the venue's one-second windows together.
_RATE_WINDOW_S = 2.0


class _Conn:
    """One live connection of a group (cold bookkeeping around the C listener)."""

    __slots__ = ("listener", "transport", "index", "generation", "opened_at", "first_data", "subscribed_at",
                 "sent", "subs", "outbox")

    def __init__(self, listener: Any, transport: Any, index: int, generation: int) -> None:
        self.listener = listener
        self.transport = transport
        self.index = index
        self.generation = generation
        self.opened_at = time.monotonic()
        self.first_data = asyncio.Event()
        self.subscribed_at = 0.0
        self.sent: deque = deque()             # monotonic times of the client messages in the rate window
        self.subs: set = set()                 # subscribe messages this connection sent (or will send)
        self.outbox: deque = deque()           # (un)subscribe frames waiting for the message budget


class WsFeed:
    """One venue's public stream over one or more picows connections.

    Parameters
    ----------
    url, parser
        Where to connect and the venue's FeedParser (frames are fed to it from C).
    subscriptions
        Subscription messages sent on every (re)connect; split across connections when
        ``max_subscriptions`` (per connection, 0 = unlimited) requires it.
    venue
        Venue name (logs and metrics).
    headers
        Extra handshake headers (venue options).
    ping_message, ping_interval_s
        Application-level keep-alive (the venue's ping message), sent on every connection.
    protocol_ping_s
        Protocol ping after this long without incoming data (picows auto-ping; no pong within the
        same time disconnects). None: 15 s; 0: off (a venue that does not answer protocol pings).
    watchdog_s
        A connection without any frame this long is closed and reconnected.
    backoff_initial_s, backoff_max_s, healthy_reset_s
        Reconnect delay: doubles from ``backoff_initial_s`` up to ``backoff_max_s``, jittered
        ×[0.5, 1.5); back to the initial delay after a connection stayed up ``healthy_reset_s``.
    connect_timeout_s
        Handshake timeout of each connect, and how long :meth:`start` waits for every group.
    max_connection_age_s
        Rotate a connection older than this: replacement first, then close. None or 0: never (the
        caller gives the venue's rotation age where it has an age limit).
    on_reconnected
        Called with the connection index after a reconnect: the owner resyncs its books.
    max_messages_per_s
        The venue's limit on client messages per connection and second; the feed sends at most
        that many per ``_RATE_WINDOW_S`` (2 s). None or 0: no limit.
    is_subscription_reject
        ``(venue error message) -> bool``: is it the rejection of a subscription (re-sent with
        backoff)? Default :func:`subscription_rejected`.
    max_connects_per_s
        The venue's limit on new connections per second: every connect (start, reconnect, rotation,
        a new group) waits for its turn, ``1 / max_connects_per_s`` apart. None or 0: no limit.
    """

    def __init__(self, url: str, parser: Any, subscriptions: list[bytes], *, venue: str = "",
                 headers: Optional[dict] = None, max_subscriptions: int = 0,
                 ping_message: Optional[Callable[[], bytes]] = None, ping_interval_s: float = 10.0,
                 protocol_ping_s: Optional[float] = None,
                 watchdog_s: float = 30.0, backoff_initial_s: float = 0.05, backoff_max_s: float = 5.0,
                 healthy_reset_s: float = 30.0, connect_timeout_s: float = 10.0,
                 max_connection_age_s: Optional[float] = None,
                 on_reconnected: Optional[Callable[[int], Any]] = None,
                 max_messages_per_s: Optional[int] = None,
                 is_subscription_reject: Optional[Callable[[Any], bool]] = None,
                 max_connects_per_s: Optional[float] = None) -> None:
        self.url = url
        self.parser = parser
        self.venue = venue
        self.headers = dict(headers) if headers else None
        self.ping_message = ping_message
        self.ping_interval_s = ping_interval_s
        if protocol_ping_s is None:
            protocol_ping_s = _PROTOCOL_PING_S
        self.protocol_ping_s = float(protocol_ping_s)
        self.watchdog_s = watchdog_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.healthy_reset_s = healthy_reset_s
        self.connect_timeout_s = connect_timeout_s
        self.max_connection_age_s = float(max_connection_age_s or 0.0)
        self.on_reconnected = on_reconnected
        self.max_messages_per_s = int(max_messages_per_s or 0)
        self.max_connects_per_s = float(max_connects_per_s or 0.0)
        self.is_subscription_reject = is_subscription_reject or subscription_rejected
        if 0 < self.max_messages_per_s <= max_subscriptions:   # a group and a ping must fit the budget
            raise ValueError("%s: %d subscription messages per connection do not fit %d client messages per second"
                             % (venue, max_subscriptions, self.max_messages_per_s))
        # subscriptions per group: the venue's cap, else what fits the message budget with a ping
        # (a whole group is sent at once on every connect), else unlimited (0)
        self.group_capacity = max_subscriptions if max_subscriptions > 0 else max(self.max_messages_per_s - 1, 0)
        n = self.group_capacity or max(len(subscriptions), 1)
        self.groups: list[list[bytes]] = [subscriptions[i:i + n] for i in range(0, len(subscriptions), n)]
        self.log = get_logger("net.ws." + venue, [venue, "public", "ws"])
        self._tasks: list[Optional[asyncio.Task]] = []
        self._conns: list[Optional[_Conn]] = [None] * len(self.groups)
        self._extra: set = set()                     # listeners of connections being replaced / opened
        self._ready = [asyncio.Event() for _ in self.groups]     # set once the group's connection subscribed
        self._resub: list[Optional[asyncio.Task]] = [None] * len(self.groups)
        self._resub_delay = [backoff_initial_s] * len(self.groups)
        self._drains: list[Optional[asyncio.Task]] = [None] * len(self.groups)
        # removed while a group's replacement connection opened: (group, subscription) -> its unsubscribe
        self._rotating_unsubs: dict[tuple[int, bytes], bytes] = {}
        self._gen = 0
        self._stopping = False
        self._started = False
        self._next_connect_at = 0.0                  # monotonic time of the next connect's turn
        self.connect_times: deque = deque(maxlen=256)   # monotonic turn of each recent connect
        # counters (status(), metrics)
        self.connects = 0
        self.reconnects = 0
        self.disconnects = 0
        self.watchdog_trips = 0
        self.errors = 0                  # failed connects + sink exceptions
        self.frame_errors = 0
        self.app_pings = 0
        self.rotations = 0
        self.rotation_failures = 0
        self.subscription_rejects = 0
        self.resubscribes = 0
        self.subscriptions_added = 0     # at run time (add_subscriptions)
        self.subscriptions_removed = 0
        self.connections_closed_idle = 0     # closed because their last subscription left
        # per connection index: data frames, bytes, pings, pongs of its listeners already gone
        self._dead = [[0, 0, 0, 0] for _ in self.groups]

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Connect every group and subscribe; returns once all are connected (raises on timeout).
        Connects are paced (``max_connects_per_s``): the wait allows for that. No subscription:
        returns at once (groups come with :meth:`add_subscriptions`)."""
        self._stopping = False
        self._started = True
        n = len(self.groups)
        for e in self._ready:
            e.clear()
        self._tasks = [None] * n
        for i in range(n):
            if self.groups[i]:
                self._start_group(i)
        waits = [self._ready[i].wait() for i in range(n) if self.groups[i]]
        pacing = len(waits) / self.max_connects_per_s if self.max_connects_per_s > 0 else 0.0
        try:
            await asyncio.wait_for(asyncio.gather(*waits), self.connect_timeout_s + pacing)
        except BaseException:
            await self.stop()
            raise

    async def wait_sent(self, msg: bytes) -> None:
        """Returns once the subscription ``msg`` went out: its group's connection opened and sent
        the group's subscriptions (at once for a message in no group). A book's snapshot waits for
        this rather than for every connection of a venue whose connects are paced."""
        for i, g in enumerate(self.groups):
            if msg in g:
                await self._ready[i].wait()
                return

    def _start_group(self, i: int) -> None:
        t = self._tasks[i]
        if t is None or t.done():
            self._tasks[i] = asyncio.get_running_loop().create_task(self._run(i))

    def _new_group(self) -> int:
        self.groups.append([])
        self._conns.append(None)
        self._resub.append(None)
        self._resub_delay.append(self.backoff_initial_s)
        self._drains.append(None)
        self._dead.append([0, 0, 0, 0])
        self._ready.append(asyncio.Event())
        self._tasks.append(None)
        return len(self.groups) - 1

    # ------------------------------------------------------------------ subscriptions at run time
    def add_subscriptions(self, msgs: list[bytes]) -> None:
        """Subscribe ``msgs`` (one subscription each): each joins the first group with room, else a
        new group. A group with a live connection sends them within its message budget; a group
        without a running connection gets one (paced like every connect); all of them are re-sent
        on every reconnect. Before :meth:`start` they only join the groups."""
        cap = self.group_capacity
        added: dict[int, list[bytes]] = {}
        i = 0
        for m in msgs:
            while i < len(self.groups) and cap > 0 and len(self.groups[i]) >= cap:
                i += 1
            if i == len(self.groups):
                self._new_group()
            self.groups[i].append(m)
            added.setdefault(i, []).append(m)
        self.subscriptions_added += len(msgs)
        if not self._started or self._stopping:
            return
        for i, ms in added.items():
            t = self._tasks[i]
            if t is None or t.done():
                self._start_group(i)        # its connect sends the whole group
                continue
            c = self._conns[i]
            if c is None:
                continue                    # reconnecting: the connect sends the whole group
            for m in ms:
                if m not in c.subs:
                    c.subs.add(m)
                    c.outbox.append(m)
            self._kick(i)

    def remove_subscriptions(self, sub_msgs: list[bytes], unsub_msgs: list[bytes]) -> None:
        """Take the subscriptions ``sub_msgs`` out of their groups (never re-sent) and send
        ``unsub_msgs[k]`` (the venue's unsubscribe of ``sub_msgs[k]``) on the connection that holds
        it, within its message budget; one not sent yet is simply dropped. A connection left with no
        subscription is closed once its frames are out."""
        if len(sub_msgs) != len(unsub_msgs):
            raise ValueError("one unsubscribe message per subscription")
        touched = set()
        for s, u in zip(sub_msgs, unsub_msgs):
            for i, g in enumerate(self.groups):
                if s in g:
                    g.remove(s)
                    break
            else:
                continue
            self.subscriptions_removed += 1
            touched.add(i)
            if any(lst.index == i for lst in self._extra):
                self._rotating_unsubs[(i, s)] = u   # the replacement being opened may hold it
            c = self._conns[i]
            if c is None or s not in c.subs:
                continue
            c.subs.discard(s)
            try:
                c.outbox.remove(s)          # never sent: nothing to undo
            except ValueError:
                c.outbox.append(u)
        for i in touched:
            self._kick(i)

    def _kick(self, i: int) -> None:
        """Start group ``i``'s sender of queued frames (one at a time)."""
        if not self._started or self._stopping:
            return
        t = self._drains[i]
        if t is None or t.done():
            self._drains[i] = asyncio.get_running_loop().create_task(self._drain(i))

    async def _drain(self, i: int) -> None:
        """Send group ``i``'s queued (un)subscribe frames within the message budget, leaving room
        for a ping (a group left with no subscription is closed by its supervisor once they are out)."""
        while not self._stopping:
            c = self._conns[i]
            if c is None or not c.listener.connected or not c.outbox:
                break                       # none (a reconnect sends the whole group) or all out
            wait = self._send_wait(c, 2)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            m = c.outbox.popleft()
            try:
                self._send(c, m)
            except Exception as e:
                self.log.warning("subscription send failed", venue=self.venue, conn=i, error=repr(e)[:200])
                break                       # the connection is going: its reconnect resubscribes

    async def stop(self) -> None:
        """Close every connection and end every task (idempotent)."""
        self._stopping = True
        self._started = False
        tasks = [t for t in (*self._tasks, *self._resub, *self._drains) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        self._resub = [None] * len(self.groups)
        self._drains = [None] * len(self.groups)
        listeners = [c.listener for c in self._conns if c is not None] + list(self._extra)
        for lst in listeners:
            self._close_listener(lst)
            self._retire(lst)               # counters stay monotonic after a stop
        self._conns = [None] * len(self.groups)   # retired: counted once, in _dead
        self._extra.clear()
        for lst in listeners:
            tr = lst.transport
            if tr is not None:
                try:
                    await asyncio.wait_for(tr.wait_disconnected(), 2.0)
                except (asyncio.TimeoutError, Exception):
                    pass

    @property
    def connected(self) -> bool:
        """Every group with subscriptions has its connection up."""
        return all(c is not None and c.listener.connected for c, g in zip(self._conns, self.groups) if g)

    # ------------------------------------------------------------------ listener callbacks (cold)
    def _on_ws_connected(self, listener: Any) -> None:
        pass

    def _on_ws_first_data(self, listener: Any) -> None:
        for c in list(self._conns):
            if c is not None and c.listener is listener:
                c.first_data.set()

    def _on_ws_disconnected(self, listener: Any) -> None:
        self.disconnects += 1

    def _on_ws_frame_error(self, listener: Any, exc: BaseException) -> None:
        self.frame_errors += 1
        self.errors += 1
        self.log.error("frame handling failed", venue=self.venue, conn=listener.index, error=repr(exc)[:200])

    # ------------------------------------------------------------------ connections
    async def _connect(self, i: int) -> _Conn:
        """Open one connection for group ``i`` (in its turn) and send its subscriptions."""
        await self._connect_turn()
        self._gen += 1
        gen = self._gen
        pp = self.protocol_ping_s
        kw: dict = {}
        if self.headers:
            kw["extra_headers"] = self.headers
        transport, listener = await asyncio.wait_for(
            ws_connect(lambda: FeedListener(self.parser, self, i, gen), self.url,
                       websocket_handshake_timeout=self.connect_timeout_s,
                       enable_auto_ping=pp > 0, auto_ping_idle_timeout=pp if pp > 0 else 10,
                       auto_ping_reply_timeout=pp if pp > 0 else 10,
                       enable_auto_pong=False,       # the FeedListener answers pings (and counts them)
                       max_frame_size=64 * 1024 * 1024, logger_name="ws." + (self.venue or "feed"), **kw),
            self.connect_timeout_s)
        conn = _Conn(listener, transport, i, gen)
        listener.notify_data_frames = 1
        for m in self.groups[i]:
            self._send(conn, m)
        conn.subs.update(self.groups[i])
        conn.subscribed_at = time.monotonic()
        self.connects += 1
        return conn

    async def _connect_turn(self) -> None:
        """Wait until this connect may go: connects are ``1 / max_connects_per_s`` apart."""
        rate = self.max_connects_per_s
        now = time.monotonic()
        if rate <= 0:
            self.connect_times.append(now)
            return
        at = max(now, self._next_connect_at)
        self._next_connect_at = at + 1.0 / rate
        self.connect_times.append(at)
        if at > now:
            await asyncio.sleep(at - now)

    def _send(self, conn: _Conn, msg: bytes) -> None:
        """Send one client (text) message on ``conn``, counted against the venue's message budget."""
        conn.transport.send(WSMsgType.TEXT, msg)
        if self.max_messages_per_s > 0:
            conn.sent.append(time.monotonic())

    def _send_wait(self, conn: _Conn, n: int) -> float:
        """Seconds until ``n`` more client messages fit ``conn``'s budget (0: they fit now)."""
        limit = self.max_messages_per_s
        if limit <= 0:
            return 0.0
        sent = conn.sent
        now = time.monotonic()
        while sent and sent[0] <= now - _RATE_WINDOW_S:
            sent.popleft()
        over = len(sent) + n - limit               # messages that must leave the window first
        if over <= 0:
            return 0.0
        return sent[min(over, len(sent)) - 1] + _RATE_WINDOW_S - now

    def _forget_rotating_unsubs(self, i: int) -> None:
        for k in [k for k in self._rotating_unsubs if k[0] == i]:
            del self._rotating_unsubs[k]

    def _close_listener(self, listener: Any, code: int = 1000) -> None:
        tr = listener.transport
        if tr is None or tr.is_disconnected:
            return
        try:
            if not tr.is_close_frame_sent:
                tr.send_close(WSCloseCode(code))
            tr.disconnect(graceful=True)
        except Exception:
            tr.disconnect(graceful=False)

    def _retire(self, listener: Any) -> None:
        d = self._dead[listener.index]
        d[0] += listener.data_frames
        d[1] += listener.bytes_in
        d[2] += listener.pings
        d[3] += listener.pongs

    async def _run(self, i: int) -> None:
        """Supervisor of group ``i``: connect, keep alive, reconnect with backoff, rotate; ends when
        the group has no subscription left (:meth:`add_subscriptions` starts a new one)."""
        delay = self.backoff_initial_s
        first = True
        while not self._stopping and self.groups[i]:
            conn: Optional[_Conn] = None
            try:
                conn = await self._connect(i)
                self._conns[i] = conn
                self._resub_delay[i] = self.backoff_initial_s     # a fresh connection subscribes afresh
                self._ready[i].set()
                if not first:
                    self.reconnects += 1
                    self.log.warning("reconnected: resubscribed", venue=self.venue, conn=i)
                    if self.on_reconnected is not None:
                        self.on_reconnected(i)
                first = False
                conn = await self._keep(i, conn)        # returns the connection that went down
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.errors += 1
                self.log.warning("connection failed", venue=self.venue, conn=i, error=repr(e)[:200])
            finally:
                c = self._conns[i]
                if c is not None and not self._stopping:     # stop() closes what is left itself
                    self._close_listener(c.listener)
                    self._retire(c.listener)
                    self._conns[i] = None
            if self._stopping or not self.groups[i]:
                break
            up_for = time.monotonic() - conn.opened_at if conn is not None else 0.0
            if up_for >= self.healthy_reset_s:
                delay = self.backoff_initial_s          # healthy for a while: reset the backoff
            wait = delay * (0.5 + random.random())
            self.log.warning("disconnected; reconnecting", venue=self.venue, conn=i, in_s=round(wait, 3),
                             close_code=conn.listener.close_code if conn is not None else None,
                             close_reason=conn.listener.close_reason if conn is not None else None)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self.backoff_max_s)

    async def _keep(self, i: int, conn: _Conn) -> _Conn:
        """Pings, watchdog and rotation of group ``i`` until its connection goes down."""
        loop = asyncio.get_running_loop()
        last_ping = loop.time()
        # One waiter per connection, reused by every step: a fresh shielded wait_disconnected() per
        # step would leave a pending task behind each time the step timed out (for the life of the
        # connection: unbounded growth on a long-lived node).
        down: Optional[asyncio.Future] = None
        down_of: Any = None
        try:
            while True:
                lst = conn.listener
                if lst.transport is None or lst.transport.is_disconnected or not lst.connected:
                    return conn
                if not self.groups[i] and not conn.outbox:
                    # the last subscription left and its unsubscribe is out: nothing to keep open
                    self.connections_closed_idle += 1
                    self.log.info("connection without subscriptions: closing", venue=self.venue, conn=i)
                    self._close_listener(lst)
                    return conn
                if down_of is not lst:
                    if down is not None:
                        down.cancel()
                    down, down_of = asyncio.ensure_future(lst.transport.wait_disconnected()), lst
                now = loop.time()
                # short steps: settings are read live, and a silent stream is seen within wd / 4
                step = min(max(self.watchdog_s / 4, 0.01), 0.25)
                if self.ping_message is not None:
                    step = min(step, max(last_ping + self.ping_interval_s - now, self._send_wait(conn, 1), 0.001))
                age_limit = self.max_connection_age_s
                if age_limit > 0:
                    step = min(step, max(conn.opened_at + age_limit - time.monotonic(), 0.001))
                done, _ = await asyncio.wait((down,), timeout=step)
                if done:
                    return conn
                if self.ping_message is not None and loop.time() >= last_ping + self.ping_interval_s \
                        and self._send_wait(conn, 1) == 0:
                    try:
                        self._send(conn, self.ping_message())
                        self.app_pings += 1
                    except Exception as e:
                        self.log.warning("ping failed", venue=self.venue, conn=i, error=repr(e)[:200])
                    last_ping = loop.time()
                silent_s = (time.time_ns() - lst.last_frame_ns) / 1e9
                # the setting as it is now, not as it was before the wait: a watchdog_s lowered or
                # raised meanwhile (the wait can last far longer than its step on a loaded loop)
                # applies at once
                if silent_s > self.watchdog_s:
                    self.watchdog_trips += 1
                    self.log.warning("stream silent: closing", venue=self.venue, conn=i, silent_s=round(silent_s, 3))
                    self._close_listener(lst, 1001)
                    return conn
                if age_limit > 0 and time.monotonic() - conn.opened_at >= age_limit:
                    conn = await self._rotate(i, conn)
        finally:
            if down is not None:
                down.cancel()

    async def _rotate(self, i: int, old: _Conn) -> _Conn:
        """Open and subscribe the replacement, wait for its first data frame, then close ``old``."""
        self.log.info("rotating connection (age limit)", venue=self.venue, conn=i,
                      age_s=round(time.monotonic() - old.opened_at, 3))
        new: Optional[_Conn] = None
        try:
            new = await self._connect(i)
            self._extra.add(new.listener)
            ok = new.listener.data_frames > 0
            if not ok:
                deadline = time.monotonic() + max(self.watchdog_s, 1.0)
                while time.monotonic() < deadline and not self._stopping:
                    if new.listener.data_frames > 0:
                        ok = True
                        break
                    if old.listener.transport is None or old.listener.transport.is_disconnected:
                        ok = new.listener.connected     # old one died meanwhile: take the new one
                        break
                    await asyncio.sleep(0.002)
            if not ok:
                raise TimeoutError("replacement connection sent no data")
        except asyncio.CancelledError:
            if new is not None:
                self._extra.discard(new.listener)
                self._close_listener(new.listener)
            raise
        except Exception as e:
            self.rotation_failures += 1
            self.log.warning("rotation failed; keeping the old connection", venue=self.venue, conn=i,
                             error=repr(e)[:200])
            if new is not None:
                self._extra.discard(new.listener)
                self._close_listener(new.listener)
                self._retire(new.listener)
            self._forget_rotating_unsubs(i)
            old.opened_at = time.monotonic() - max(self.max_connection_age_s - min(60.0, self.max_connection_age_s / 10), 0)
            return old
        self._extra.discard(new.listener)
        self._conns[i] = new
        # the group changed while the replacement opened (it subscribed the group as it was then)
        group = set(self.groups[i])
        for m in self.groups[i]:
            if m not in new.subs:
                new.subs.add(m)
                new.outbox.append(m)
        for m in [m for m in new.subs if m not in group]:
            new.subs.discard(m)
            u = self._rotating_unsubs.get((i, m))
            if u is not None:
                new.outbox.append(u)
        self._forget_rotating_unsubs(i)
        self._kick(i)
        self._close_listener(old.listener, 1000)
        self._retire(old.listener)
        self.rotations += 1
        self.log.info("rotated connection", venue=self.venue, conn=i)
        return new

    # ------------------------------------------------------------------ venue errors
    def on_venue_error(self, msg: Any) -> bool:
        """A venue error frame reached the adapter (called from inside the parser, i.e. during the
        frame of the connection it came on). A subscription rejection is counted, logged and that
        connection's subscriptions are re-sent with backoff. Returns True when it was one."""
        if not self.is_subscription_reject(msg):
            return False
        self.subscription_rejects += 1
        lst = current_listener()
        idx = lst.index if lst is not None else -1
        self.log.error("subscription rejected; retrying with backoff", venue=self.venue, conn=idx,
                       msg=str(msg)[:300])
        targets = [idx] if 0 <= idx < len(self.groups) else list(range(len(self.groups)))
        loop = asyncio.get_running_loop()
        for i in targets:
            t = self._resub[i]
            if (t is None or t.done()) and not self._stopping:
                self._resub[i] = loop.create_task(self._resubscribe(i))
        return True

    async def _resubscribe(self, i: int) -> None:
        delay = self._resub_delay[i]
        await asyncio.sleep(delay * (0.5 + random.random()))
        self._resub_delay[i] = min(delay * 2, self.backoff_max_s)
        while True:
            c = self._conns[i]
            if c is None or self._stopping or not c.listener.connected:
                return                               # a reconnect subscribes anyway
            # the whole group, within the connection's message budget: the retries of a rejected
            # group come faster than the budget refills (a group as large as the budget allows, every retry)
            wait = self._send_wait(c, len(self.groups[i]))
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        group = self.groups[i]
        queued = set(group)
        c.outbox = deque(m for m in c.outbox if m not in queued)     # the whole group goes now
        for m in group:
            self._send(c, m)
        c.subs.update(group)
        self.resubscribes += 1

    # ------------------------------------------------------------------ status
    def listeners(self) -> list:
        """The current connections' listeners (per group; None while reconnecting)."""
        return [c.listener if c is not None else None for c in self._conns]

    def _live_listeners(self, i: int) -> list:
        c = self._conns[i]
        return ([c.listener] if c is not None else []) + [lst for lst in self._extra if lst.index == i]

    def connection_stats(self) -> list[dict]:
        """Per connection index (one per subscription group): counters over every connection that
        served it (data ``frames``, ``bytes``, protocol ``pings``/``pongs`` received, monotonic
        across reconnects and rotations) and the current connection's state (``connected``,
        ``age_s`` since it opened, ``last_frame_age_s``; None while reconnecting)."""
        out = []
        now_ns = time.time_ns()
        for i in range(len(self.groups)):
            frames, nbytes, pings, pongs = self._dead[i]
            for lst in self._live_listeners(i):
                frames += lst.data_frames
                nbytes += lst.bytes_in
                pings += lst.pings
                pongs += lst.pongs
            c = self._conns[i]
            up = c is not None and c.listener.connected
            out.append({"connection": i, "frames": frames, "bytes": nbytes, "pings": pings, "pongs": pongs,
                        "connected": up, "age_s": time.monotonic() - c.opened_at if up else None,
                        "last_frame_age_s": (now_ns - c.listener.last_frame_ns) / 1e9
                        if up and c.listener.last_frame_ns else None})
        return out

    @property
    def frames(self) -> int:
        return sum(c["frames"] for c in self.connection_stats())

    @property
    def bytes(self) -> int:
        return sum(c["bytes"] for c in self.connection_stats())

    def status(self) -> dict:
        conns = self.connection_stats()
        return {"connected": self.connected, "connections": sum(1 for g in self.groups if g),
                "subscriptions": sum(len(g) for g in self.groups), "connects": self.connects,
                "reconnects": self.reconnects, "disconnects": self.disconnects,
                "frames": sum(c["frames"] for c in conns), "bytes": sum(c["bytes"] for c in conns), "pings": sum(c["pings"] for c in conns), "pongs": sum(c["pongs"] for c in conns),
                "watchdog_trips": self.watchdog_trips, "errors": self.errors,
                "frame_errors": self.frame_errors, "app_pings": self.app_pings, "rotations": self.rotations,
                "rotation_failures": self.rotation_failures, "subscription_rejects": self.subscription_rejects,
                "resubscribes": self.resubscribes, "subscriptions_added": self.subscriptions_added,
                "subscriptions_removed": self.subscriptions_removed,
                "connections_closed_idle": self.connections_closed_idle}


def subscription_rejected(msg: Any) -> bool:
    """The default test of a venue error frame for a rejected subscription: an error ack of a
    ``subscribe`` event, or an error text about subscriptions. A venue package adds the shapes of
    its own (``VenueAdapter.is_subscription_reject``)."""
    if isinstance(msg, dict):
        if msg.get("event") == "subscribe" and msg.get("error"):
            return True
        return "subscri" in str(msg.get("msg") or msg.get("reason") or "").lower()
    return False
