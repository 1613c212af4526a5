"""Books and subscriptions that come and go while a venue runs, against the embedded simulator over
real sockets on 127.0.0.1 (:mod:`support.adapter_rig`): subscriptions spread over connections within
the venue's per-connection limit (the feed's ``connection_stats()`` and the simulator's connections
agree), connections opened at the venue's pace, subscriptions added to and removed from a running
feed (the simulator sees the unsubscribe; a connection left with none is closed), books added to a
running adapter that sync and equal the simulator's true books, books removed that get no more
frames, stable request ids, an adapter that starts with no book, and a start-up of hundreds of books
with the venue's REST limits enforced (no 429). Every wait is bounded."""
from __future__ import annotations

import asyncio

import pytest

from cexnode.adapters.registry import descriptor
from support.adapter_rig import AdapterRig, spot_symbols
from support.node_books import wait_until

MEXC = "mexc_spot"
GATE = "gateio_spot"
MEXC_PER_CONN = descriptor(MEXC).ws.max_subscriptions_per_connection


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 90))


def _sim_conns(rig: AdapterRig) -> list:
    return [c for c in rig.sim_venue().connections if c.subscriptions]


def test_75_books_spread_over_three_connections_of_at_most_30_opened_at_the_venues_pace(tmp_path):
    syms = spot_symbols(75)

    async def main():
        async with AdapterRig(tmp_path, MEXC, syms, syms) as rig:
            starting = asyncio.ensure_future(rig.start())
            a = rig.adapter
            # the books of the first connection fetch their snapshots while the others wait their turn
            assert await wait_until(lambda: a.snapshots > 0 or starting.done(), 10)
            assert a.snapshots > 0 and a.feed.connects < 3, (a.snapshots, a.feed.connects)
            await starting
            f = rig.adapter.feed
            stats = f.connection_stats()
            assert len(stats) == 3 and all(s["connected"] for s in stats), stats
            assert [len(g) for g in f.groups] == [30, 30, 15]
            sim = _sim_conns(rig)
            assert sorted(len(c.subscriptions) for c in sim) == [15, 30, 30]
            assert await wait_until(lambda: all(s["frames"] > 0 for s in f.connection_stats()), 10), \
                f.connection_stats()
            # connection-open pacing: each connect waited its turn, 1 / rate apart
            rate = descriptor(MEXC).ws.max_connects_per_s
            assert rate > 0
            turns = list(f.connect_times)
            assert len(turns) == 3
            assert all(b - a >= 1.0 / rate - 1e-9 for a, b in zip(turns, turns[1:])), turns
            opened = sorted(c.connected_at for c in sim)
            assert opened[-1] - opened[0] >= 2 / rate * 0.9, opened     # the server saw them spread too
            await rig.books_equal_truth(syms[::7])

    run(main())


def test_subscriptions_added_and_removed_on_a_running_feed(tmp_path):
    """At the feed's level (no book behind the extra streams): added subscriptions fill the group with
    room, then a new connection; removed ones are unsubscribed on the connection that held them and a
    connection left with none is closed."""
    start, extra = spot_symbols(45), spot_symbols(30, "X")

    async def main():
        async with AdapterRig(tmp_path, MEXC, start, [*start, *extra]) as rig:
            await rig.start()
            f, a = rig.adapter.feed, rig.adapter
            assert [len(g) for g in f.groups] == [30, 15]
            vss = [rig.sim_venue().venue_symbol(s) for s in extra]
            subs = a.subscription_messages(vss)
            f.add_subscriptions(subs)
            assert [len(g) for g in f.groups] == [30, 30, 15]
            assert await wait_until(lambda: all(rig.sim_subscribed(vs) == 1 for vs in vss), 10), \
                [vs for vs in vss if rig.sim_subscribed(vs) != 1]
            assert await wait_until(lambda: f.connected and len(_sim_conns(rig)) == 3, 10)
            assert all(len(c.subscriptions) <= MEXC_PER_CONN for c in _sim_conns(rig))
            assert f.subscriptions_added == 30
            # the last group (the new connection's 15) leaves: unsubscribed, then its connection closes
            last = f.groups[2]
            gone = [vs for vs, m in zip(vss, subs) if m in last]
            assert len(gone) == 15
            f.remove_subscriptions(list(last), a.unsubscription_messages(gone))
            assert f.groups[2] == []
            assert await wait_until(lambda: all(rig.sim_subscribed(vs) == 0 for vs in gone), 10)
            assert await wait_until(lambda: len(rig.sim_venue().connections) == 2, 10), \
                len(rig.sim_venue().connections)
            assert f.connected and f.connections_closed_idle == 1
            st = f.status()
            assert (st["connections"], st["subscriptions"], st["subscriptions_removed"]) == (2, 60, 15), st
            assert f.connection_stats()[2]["connected"] is False
            # partly emptied group 1: its connection stays, only the unsubscribed stream stops
            keep = [vs for vs, m in zip(vss, subs) if m in f.groups[1] and vs not in gone]
            one = keep[0]
            f.remove_subscriptions([subs[vss.index(one)]], a.unsubscription_messages([one]))
            assert await wait_until(lambda: rig.sim_subscribed(one) == 0, 10)
            assert all(rig.sim_subscribed(vs) == 1 for vs in keep[1:])
            # a new subscription fills the room left in group 1 before the empty group 2 reopens
            f.add_subscriptions([subs[vss.index(one)]])
            assert [len(g) for g in f.groups] == [30, 30, 0]
            assert await wait_until(lambda: rig.sim_subscribed(one) == 1, 10)
            assert len(rig.sim_venue().connections) == 2
            # re-sent on reconnect: the venue drops the connections, the feed resubscribes the groups
            rig.sim_venue().close_connections(1012)
            assert await wait_until(lambda: f.reconnects >= 2 and f.connected
                                    and all(rig.sim_subscribed(vs) == 1 for vs in keep), 15), f.status()
            assert all(rig.sim_subscribed(vs) == 0 for vs in gone)
            # removed and added back in the same breath: the unsubscribe then the subscribe go out, the
            # connection stays
            closed = f.connections_closed_idle
            g1 = list(f.groups[1])
            g1_vs = [rig.sim_venue().venue_symbol(s) for s in [*start, *extra]
                     if a.subscription_messages([rig.sim_venue().venue_symbol(s)])[0] in g1]
            assert len(g1_vs) == 30
            f.remove_subscriptions(g1, a.unsubscription_messages(g1_vs))
            f.add_subscriptions(g1)
            assert [len(g) for g in f.groups] == [30, 30, 0]
            connects = f.connects
            assert await wait_until(lambda: all(rig.sim_subscribed(vs) == 1 for vs in g1_vs), 10)
            frames1 = f.connection_stats()[1]["frames"]
            assert await wait_until(lambda: f.connection_stats()[1]["frames"] >= frames1 + 100, 10)
            assert (f.connections_closed_idle, f.connects) == (closed, connects)     # the same connection
            assert len(rig.sim_venue().connections) == 2
            assert all(rig.sim_subscribed(vs) == 1 for vs in g1_vs)
            # the emptied group's connection closed, then the group reopens for new subscriptions
            f.remove_subscriptions(g1, a.unsubscription_messages(g1_vs))
            assert await wait_until(lambda: f.connections_closed_idle == closed + 1
                                    and len(rig.sim_venue().connections) == 1, 10)
            f.add_subscriptions(g1)
            assert await wait_until(lambda: f.connected and all(rig.sim_subscribed(vs) == 1 for vs in g1_vs), 10)
            assert [len(g) for g in f.groups] == [30, 30, 0] and len(rig.sim_venue().connections) == 2

    run(main())


@pytest.mark.parametrize("venue", [MEXC, GATE, "gateio_futures"])
def test_books_added_and_removed_on_a_running_adapter(tmp_path, venue):
    perp = descriptor(venue).is_perpetual
    start, extra = spot_symbols(3, perpetual=perp), spot_symbols(4, "N", perpetual=perp)

    async def main():
        async with AdapterRig(tmp_path, venue, start, [*start, *extra]) as rig:
            await rig.start()
            a = rig.adapter
            old_ids = {s: a.request_id(rig.venue_symbol(s)) for s in start}
            newer = await rig.map_with(extra)
            a.add_books(newer, rig.ids(extra))
            assert set(a.books) == set(rig.ids([*start, *extra]))
            assert await wait_until(lambda: all(a.books[i].in_sync for i in rig.ids(extra)), 20), a.status()
            assert a.unsubscribed_books() == [] and a.status()["awaiting_ack"] == 0     # each ack came
            await rig.books_equal_truth([*start, *extra])
            new_ids = {s: a.request_id(rig.venue_symbol(s)) for s in extra}
            assert len(set(new_ids.values()) | set(old_ids.values())) == 7       # one id per book
            assert min(new_ids.values()) > max(old_ids.values())

            # remove one started with and one added: unsubscribed, their frames stop reaching the router
            gone = [start[1], extra[2]]
            gone_vs = [rig.venue_symbol(s) for s in gone]
            a.remove_books(rig.ids(gone))
            assert not set(rig.ids(gone)) & set(a.books)
            assert all(rig.router.book(a.venue_id, i, create=False) is None for i in rig.ids(gone))
            assert await wait_until(lambda: all(rig.sim_subscribed(vs) == 0 for vs in gone_vs), 10)
            f = a.feed
            frames = f.frames
            assert await wait_until(lambda: f.frames >= frames + 50, 10)       # what was in flight is read
            def dropped():      # frames the router got for books it does not (or no longer) hold
                return rig.router.unrouted, rig.router.counters(a.venue_id)["removed_book_msgs"]
            before = dropped()
            frames = f.frames
            assert await wait_until(lambda: f.frames >= frames + 100, 10)
            assert dropped() == before
            live = [s for s in [*start, *extra] if s not in gone]
            await rig.books_equal_truth(live)
            assert a.status()["books"] == 5 and (a.books_added, a.books_removed) == (4, 2)

            # added again: a fresh request id, and a rejection names that book alone
            rig.sim_venue().faults.reject_subscriptions(True)
            a.add_books(newer, rig.ids([extra[2]]))
            vs = rig.venue_symbol(extra[2])
            assert a.request_id(vs) > max(new_ids.values())
            assert await wait_until(lambda: a.unsubscribed_books() == [vs], 10), a.unsubscribed_books()
            rig.sim_venue().faults.reject_subscriptions(False)
            sid = rig.ids([extra[2]])[0]
            assert await wait_until(lambda: a.unsubscribed_books() == [] and a.books[sid].in_sync, 20), a.status()
            await rig.books_equal_truth([extra[2]])

    run(main())


def test_an_adapter_without_books_starts_and_takes_books_later(tmp_path):
    extra = spot_symbols(2, "L")

    async def main():
        async with AdapterRig(tmp_path, GATE, [], extra) as rig:
            await rig.start()
            a = rig.adapter
            assert a.books == {} and a.connected
            assert a.feed.connection_stats() == [] and len(rig.sim_venue().connections) == 0
            a.add_books(await rig.map_with(extra), rig.ids(extra))
            assert await wait_until(lambda: len(a.books) == 2 and all(b.in_sync for b in a.books.values()), 20), \
                a.status()
            await rig.books_equal_truth(extra)
            assert len(rig.sim_venue().connections) == 1

    run(main())


def test_hundreds_of_books_start_within_the_venues_rest_limits(tmp_path):
    """250 books on a venue allowing 200 snapshot requests per 10 s, against the simulator answering
    429 beyond that: the fetches wait for the limit's room (they reached it), every book syncs, and no
    request was refused."""
    syms = spot_symbols(250)

    async def main():
        async with AdapterRig(tmp_path, GATE, syms, syms, update_interval_ms=1000, enforce_rate_limits=True,
                              start_timeout_s=60) as rig:
            await rig.start()
            a = rig.adapter
            assert await wait_until(lambda: all(b.in_sync for b in a.books.values()), 40), \
                sum(b.in_sync for b in a.books.values())
            assert len(a.books) == 250 and a.snapshots == 250
            rest = a.rest.stats()
            assert rest["rate_limit_waits"] > 0, rest            # the limit was reached, and kept to
            assert rest["rate_limited"] == 0 and a.snapshot_errors == 0, rest
            await rig.books_equal_truth(syms[::37])

    run(main())


def test_a_rotated_connection_holds_the_subscriptions_as_they_are_now(tmp_path):
    """Books added and removed, then the connection rotates (age limit): the replacement subscribes
    the current set, the removed book's stream is not back, and no book resyncs."""
    start, extra = spot_symbols(3), spot_symbols(2, "M")

    async def main():
        async with AdapterRig(tmp_path, MEXC, start, [*start, *extra]) as rig:
            await rig.start()
            a, f = rig.adapter, rig.adapter.feed
            a.add_books(await rig.map_with(extra), rig.ids(extra))
            a.remove_books(rig.ids([start[0]]))
            live = [*start[1:], *extra]
            assert await wait_until(lambda: all(a.books[i].in_sync for i in rig.ids(live)), 20), a.status()
            resyncs = a.resync_requests
            f.max_connection_age_s = 0.5            # read live by the keep-alive loop
            assert await wait_until(lambda: f.rotations >= 2, 15), f.status()
            f.max_connection_age_s = 0.0
            assert await wait_until(lambda: len(rig.sim_venue().connections) == 1, 10)
            (conn,) = rig.sim_venue().connections
            held = {t.rsplit("@", 1)[1] for t in conn.subscriptions}
            assert held == {rig.venue_symbol(s) for s in live}
            assert a.resync_requests == resyncs
            await rig.books_equal_truth(live)

    run(main())
