"""End to end on loopback: DEALER traders -> Gateway -> engine -> FeedPublisher -> FeedClients.

Every FeedClient's local books (L2 levels and L3 queues) must equal the
engine's books, also across a restart of the publisher; time is the test's
FakeClock, every wait is bounded.
"""

from __future__ import annotations

import pytest
import zmq

from engine.exchange import Exchange
from engine.records import commands_to_records
from feeds import protocol as fp
from feeds.client import FeedClient
from feeds.publisher import FeedPublisher
from tests.conftest import make_instruments
from tests.feeds.conftest import LOOPBACK, EngineFlow, FeedVenue, GatewayFlow, engine_books, local_books, settle
from tests.gateway.conftest import OTHER, SYMBOL, FakeClock

SECOND = 10**9


@pytest.fixture
def fv():
    v = FeedVenue()
    yield v
    v.close()


def assert_books_equal_engine(fv: FeedVenue, feed, symbols=(SYMBOL, OTHER)) -> None:
    for s in symbols:
        book = feed.book(s)
        assert book is not None, s
        assert local_books(book) == engine_books(fv.engine, fv.instrument_of[s]), s
        assert book.l3_depth() == book.depth()


def test_every_feed_client_books_equal_the_engine_after_random_flow_from_dealer_traders(fv):
    feeds = [fv.feed([SYMBOL, OTHER]), fv.feed([SYMBOL]), fv.feed(None)]
    updates = []
    feeds[0].on_update = updates.append
    fv.settle(feeds[:1])
    flow = GatewayFlow(fv, seed=5)
    flow.run(rounds=25)
    fv.settle(feeds[:1] + feeds[2:])
    fv.settle(feeds[1:2], [SYMBOL])
    for f in (feeds[0], feeds[2]):
        assert_books_equal_engine(fv, f)
    assert_books_equal_engine(fv, feeds[1], [SYMBOL])
    assert feeds[1].book(OTHER) is None
    assert len(feeds[2].books) == len(fv.engine.instruments)
    assert any(isinstance(m, fp.OrderExecuted) for m in updates)
    assert any(isinstance(m, fp.Trade) for m in updates)
    assert fv.publisher.stats["l3_mismatch"] == 0
    top = feeds[0].book(SYMBOL).top
    bid, ask = fv.engine.best_bid(fv.instrument_of[SYMBOL]), fv.engine.best_ask(fv.instrument_of[SYMBOL])
    assert top[:3] == ((bid.price, bid.qty, bid.count) if bid else (0, 0, 0))
    assert top[3:] == ((ask.price, ask.qty, ask.count) if ask else (0, 0, 0))


def test_a_late_joiner_converges_and_follows_the_flow(fv):
    flow = GatewayFlow(fv, seed=9)
    flow.run(rounds=15)
    late = fv.feed([SYMBOL, OTHER])
    fv.settle([late])
    assert_books_equal_engine(fv, late)
    assert late.book(SYMBOL).seq == fv.publisher_seq(SYMBOL) > 0
    flow.run(rounds=10)
    fv.settle([late])
    assert_books_equal_engine(fv, late)
    assert late.stats["snapshots_installed"] >= 2


def test_a_subscriber_that_loses_messages_detects_the_gaps_and_resyncs(fv):
    lossy = fv.feed([SYMBOL, OTHER])
    fv.settle([lossy])
    seen = [0]

    def drop(msg) -> bool:
        seen[0] += 1
        return seen[0] % 29 == 0

    lossy.drop = drop
    flow = GatewayFlow(fv, seed=13)
    for _ in range(6):
        flow.run(rounds=4)
        for _ in range(20):
            lossy.poll(5)
    lossy.drop = None
    fv.clock.now += 1_100_000_000  # a heartbeat round tells it about a lost tail, if any
    fv.settle([lossy])
    assert lossy.stats["dropped_by_hook"] > 0
    assert lossy.stats["gaps"] > 0 and lossy.stats["snapshots_installed"] > 2
    assert_books_equal_engine(fv, lossy)


def test_a_lost_tail_is_found_by_the_next_heartbeat(fv):
    f = fv.feed([SYMBOL])
    fv.settle([f], [SYMBOL])
    f.drop = lambda m: not isinstance(m, fp.Heartbeat)
    flow = GatewayFlow(fv, seed=2)
    flow.run(rounds=2)
    for _ in range(20):
        f.poll(5)
    assert f.book(SYMBOL).seq < fv.publisher_seq(SYMBOL)
    f.drop = None
    fv.clock.now += 1_100_000_000
    fv.settle([f], [SYMBOL])
    assert f.stats["gaps"] == 1
    assert_books_equal_engine(fv, f, [SYMBOL])


def test_heartbeats_let_a_subscriber_detect_a_dead_feed_and_recover(fv):
    feed_clock = FakeClock(0)
    f = fv.feed([SYMBOL], clock=feed_clock, heartbeat_timeout_s=3.0)
    fv.settle([f], [SYMBOL])
    for _ in range(10):
        f.poll(5)
    feed_clock.now += 2 * SECOND
    f.poll(5)
    assert not f.dead
    feed_clock.now += 2 * SECOND  # 4 s without a message: the publisher's clock stood still, so no heartbeats
    requests = f.stats["snapshot_requests"]
    for _ in range(5):
        f.poll(5)
    assert f.dead and f.stats["dead"] == 1 and not f.synced
    assert f.stats["snapshot_requests"] == requests + 1  # it resyncs (the snapshot service may still answer)
    fv.clock.now += 1_100_000_000  # the feed speaks again
    fv.settle([f], [SYMBOL])
    assert not f.dead and f.stats["revived"] == 1
    assert_books_equal_engine(fv, f, [SYMBOL])


def test_subscribers_whose_publisher_restarts_resync_from_the_new_session_and_equal_the_engine(fv):
    feeds = [fv.feed([SYMBOL, OTHER]), fv.feed(None)]
    fv.settle(feeds)
    flow = GatewayFlow(fv, seed=17)
    flow.run(rounds=10)
    fv.settle(feeds)
    old = fv.publisher.session
    fv.restart_publisher(while_down=lambda: flow.run(rounds=5))
    flow.run(rounds=10)
    fv.settle(feeds)
    assert fv.publisher.session > old
    for f in feeds:
        assert f.stats["publisher_restarts"] == 1, f.stats
        assert_books_equal_engine(fv, f)
    assert len(feeds[1].books) == len(fv.engine.instruments)


def trade(engine, pub: FeedPublisher, flow: EngineFlow, batches: int) -> list:
    """Run batches of random commands through engine and publisher; the event records (copies)."""
    out = []
    for _ in range(batches):
        engine.process_batch(commands_to_records(flow.batch(8)))
        flow.observe(engine.last_events)
        pub.on_events(engine.last_events)
        out.append(engine.last_events.copy())
    return out


def assert_engine_books(client: FeedClient, engine, symbols: list[str]) -> None:
    for i, s in enumerate(symbols):
        assert local_books(client.book(s)) == engine_books(engine, i), s


def close_all(client: FeedClient, pub: FeedPublisher, ctx: zmq.Context) -> None:
    client.close()
    pub.stop()
    ctx.destroy(linger=0)


def test_a_restarted_publisher_whose_seqs_start_over_below_the_subscriber_is_detected_by_its_session():
    """A venue restarted without its journal: a fresh engine, a new publisher on the same endpoints, seqs from
    1 again. Seqs alone would make the subscriber drop every new message as already seen."""
    clock, ctx = FakeClock(10**9), zmq.Context()
    engine = Exchange(make_instruments(), 3)
    pub = FeedPublisher(engine.instruments, LOOPBACK, LOOPBACK, clock=clock).start()
    client = FeedClient(pub.endpoint, pub.snapshot_endpoint, None, clock=clock, ctx=ctx).connect()
    symbols = [ins.symbol for ins in engine.instruments]
    try:
        trade(engine, pub, EngineFlow(23, [(0, 2000, 1), (1, 2000, 5)]), 60)
        settle(pub, [client], symbols)
        seqs_before = [pub.seq(s) for s in symbols]
        pub.stop()
        engine = Exchange(make_instruments(), 3)
        pub = FeedPublisher(engine.instruments, pub.endpoint, pub.snapshot_endpoint, clock=clock).start()
        trade(engine, pub, EngineFlow(29, [(0, 2000, 1)]), 5)
        assert pub.seq(symbols[0]) < seqs_before[0]
        settle(pub, [client], symbols)
        assert client.stats["publisher_restarts"] == 1
        assert_engine_books(client, engine, symbols)
    finally:
        close_all(client, pub, ctx)


def test_a_new_publisher_with_an_older_session_is_ignored_until_the_feed_is_dead_then_adopted():
    """The restarted publisher's clock went back: its session looks older than the books', its messages like
    leftovers of a replaced publisher. They are ignored (and do not keep the feed alive), so the feed is soon
    dead; a dead feed adopts whichever session speaks next."""
    clock, feed_clock, ctx = FakeClock(10**9), FakeClock(0), zmq.Context()
    engine = Exchange(make_instruments(), 3)
    pub = FeedPublisher(engine.instruments, LOOPBACK, LOOPBACK, clock=clock, session=2000).start()
    client = FeedClient(pub.endpoint, pub.snapshot_endpoint, None, clock=feed_clock, heartbeat_timeout_s=3.0,
                        ctx=ctx).connect()
    symbols = [ins.symbol for ins in engine.instruments]
    try:
        flow = EngineFlow(31, [(0, 2000, 1), (2, 2000, 1)])
        history = trade(engine, pub, flow, 30)
        settle(pub, [client], symbols)
        pub.stop()
        pub = FeedPublisher(engine.instruments, pub.endpoint, pub.snapshot_endpoint, clock=clock, session=1000).bind()
        for records in history:
            pub.on_events(records)
        pub.start()
        trade(engine, pub, flow, 10)
        for _ in range(400):
            if client.stats["stale_session"]:
                break
            pub.heartbeat(force=True)
            client.poll(5)
        assert client.stats["stale_session"] > 0 and client.session == 2000 and not client.dead
        feed_clock.now += 4 * SECOND
        client.poll(5)
        assert client.dead
        settle(pub, [client], symbols)
        assert client.session == 1000 and client.stats["publisher_restarts"] == 0
        assert_engine_books(client, engine, symbols)
    finally:
        close_all(client, pub, ctx)


def test_a_snapshot_request_outstanding_across_a_restart_is_answered_by_the_new_session_and_converges():
    """The old publisher never answers (it stops); the request is sent again and the new publisher answers it,
    maybe before any of its feed messages arrive: either way the client ends on the new session's books."""
    clock, ctx = FakeClock(10**9), zmq.Context()
    engine = Exchange(make_instruments(), 3)
    old = FeedPublisher(engine.instruments, LOOPBACK, LOOPBACK, clock=clock).bind()  # no thread: no snapshots
    client = FeedClient(old.endpoint, old.snapshot_endpoint, None, snapshot_timeout_s=0.2, heartbeat_timeout_s=60,
                        ctx=ctx).connect()
    symbols = [ins.symbol for ins in engine.instruments]
    pub = old
    try:
        for _ in range(200):
            old.heartbeat(force=True)
            client.poll(10)
            if client.session is not None:
                break
        assert client.session == old.session and not client.synced
        history = trade(engine, old, EngineFlow(37, [(0, 2000, 1), (1, 2000, 5)]), 20)
        old.stop()
        pub = FeedPublisher(engine.instruments, old.endpoint, old.snapshot_endpoint, clock=clock).bind()
        for records in history:
            pub.on_events(records)
        pub.start()
        settle(pub, [client], symbols)
        assert client.stats["publisher_restarts"] == 1 and client.stats["snapshot_timeouts"] >= 1
        assert_engine_books(client, engine, symbols)
    finally:
        close_all(client, pub, ctx)
