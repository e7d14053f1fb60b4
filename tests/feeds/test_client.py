"""End to end on loopback: DEALER traders -> Gateway -> engine -> FeedPublisher -> FeedClients.

Every FeedClient's local books (L2 levels and L3 queues) must equal the
engine's books; time is the test's FakeClock, every wait is bounded.
"""

from __future__ import annotations

import pytest

from feeds import protocol as fp
from tests.feeds.conftest import FeedVenue, GatewayFlow, engine_books, local_books
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
