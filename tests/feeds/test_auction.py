"""The call auction on the feed: a ``Market`` (engine plus package auction) feeding a FeedPublisher.

An auction's AuctionPrice messages reach a subscriber on the instruments' topics and its
AuctionResult on the AUCTION channel, each with contiguous seqs; the books (rebuilt from the feed,
and the publisher's) equal the engine's after the auction's fills; the private PACKAGE_* events are
never published; snapshots and FeedClients (early, late, lossy) know the last auction.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import zmq

from engine.auction.market import Market, package_records, run_auction_record
from engine.auction.orders import Alternative, Leg
from engine.codes import EventKind, Liquidity, PackageEventKind, Side
from engine.exchange import Exchange
from engine.records import EVENT_DTYPE, MassCancel, NewOrder, Resume, commands_to_records
from feeds import protocol as fp
from feeds.client import FeedClient
from feeds.fold import Fold
from feeds.publisher import FeedPublisher
from tests.conftest import make_instruments
from tests.feeds.conftest import (
    LOOPBACK,
    RESULT_FIELDS,
    Bench,
    EngineFlow,
    engine_books,
    local_books,
    publisher_books,
    replay,
    settle,
)
from tests.gateway.conftest import FakeClock

PROVIDER, BUYER, URGENT, MAKER = 3, 4, 5, 6
PRIVATE = range(PackageEventKind.PACKAGE_ACCEPTED, PackageEventKind.PACKAGE_UNFILLED + 1)


def solve_us(auction: int, indicative: int) -> int:
    """The venue's (made-up) solve time of an auction, in microseconds."""
    return 1000 * auction + indicative


def auction_flow(run, seed: int = 5) -> dict[str, np.ndarray]:
    """Random book flow on hours 0-2, then clean books with resting bids of 6 GPUs at 130 (hour 0, 4 of them fill
    in the auction) and 4 at 120 (hour 1, all fill); packages: a provider's block of 12 GPUs x hours 0-1 (min
    2,000 total), a buyer's 8 x hours 0-1 (max 2,400), an unfillable bid on hour 2; a final auction; a new
    offer and an indicative run.

    ``run(commands or records) -> events``; returns the events of each stage."""
    flow = EngineFlow(seed, [(0, 2000, 1), (1, 2000, 5), (2, 2000, 1)])
    for _ in range(30):
        flow.observe(run(flow.batch(8)))
    ts = flow.ts + 1
    run([*(Resume(ts, i) for i in range(3)), *(MassCancel(ts, firm) for firm in range(flow.firms)),
         NewOrder(ts, MAKER, 1, 0, Side.BUY, 130, 6), NewOrder(ts, MAKER, 2, 1, Side.BUY, 120, 4)])
    out = {"packages": run(np.concatenate([
        package_records(ts, PROVIDER, 1, Side.SELL, [Alternative([Leg(0, 12), Leg(1, 12)], 2000)]),
        package_records(ts, BUYER, 1, Side.BUY, [Alternative([Leg(0, 8), Leg(1, 8)], 2400)]),
        package_records(ts, URGENT, 1, Side.BUY, [Alternative([Leg(2, 2)], 10)])]))}
    out["final"] = run(run_auction_record(ts + 1, 5000, 0))
    out["indicative"] = run(np.concatenate([
        package_records(ts + 2, PROVIDER, 2, Side.SELL, [Alternative([Leg(0, 2)], 100)]),
        run_auction_record(ts + 2, 5000, 0, indicative=True)]))
    return out


def of(ev: np.ndarray, kind: int) -> np.ndarray:
    return ev[ev["kind"] == kind]


@pytest.fixture
def market_bench():
    b = Bench(Market(Exchange(make_instruments(), 8)), auction_solve_us=solve_us)
    yield b
    b.close()


def test_an_auction_reaches_a_subscriber_in_sequence_and_the_books_stay_equal_to_the_engine(market_bench):
    b = market_bench
    stages = auction_flow(b.run)
    final, indicative = stages["final"], stages["indicative"]
    fills = of(final, EventKind.FILL)
    assert (fills["liquidity"] == Liquidity.AUCTION).all()  # the auction filled the resting bids, one in part
    clearing = of(final, PackageEventKind.AUCTION_PRICE)["price"].tolist()
    assert fills[["instrument", "price", "qty", "leaves"]].tolist() == [(0, clearing[0], 4, 2), (1, clearing[1], 4, 0)]
    msgs = b.drain()
    symbols = b.pub.symbols
    # every instrument's messages, auction prices included, have contiguous seqs and rebuild the engine's book
    for i, sym in enumerate(symbols):
        full = replay(msgs, sym)
        assert local_books(full) == engine_books(b.engine, i) == publisher_books(b.pub, i)
        assert full.seq == b.pub.seq(sym)
    assert b.pub.stats["fold_errors"] == b.pub.stats["l3_mismatch"] == 0
    # a resting order filled by the auction is executed in L3 (no Trade: the volume is in AuctionPrice)
    final_seqs = set(final["seq"].tolist())
    assert [(m.order_id, m.qty, m.leaves, m.trade_id) for m in msgs
            if type(m) is fp.OrderExecuted and m.event_seq in final_seqs] == fills[
        ["order_id", "qty", "leaves", "trade_id"]].tolist()
    assert not [m for m in msgs if type(m) is fp.Trade and m.event_seq in final_seqs]
    # one AuctionPrice per cleared instrument, on its topic, final then indicative
    events = np.concatenate([of(final, PackageEventKind.AUCTION_PRICE), of(indicative, PackageEventKind.AUCTION_PRICE)])
    assert [(m.symbol, m.event_seq, m.auction, m.indicative, m.price, m.qty) for m in msgs
            if type(m) is fp.AuctionPrice] == [(symbols[i], *rest) for i, *rest in events[
                ["instrument", "seq", "order_id", "side", "price", "qty"]].tolist()]
    # the results on the AUCTION channel: seq 1, 2; the venue's solve times
    results = [m for m in msgs if type(m) is fp.AuctionResult]
    assert [(m.symbol, m.seq) for m in results] == [(fp.AUCTION_SYMBOL, 1), (fp.AUCTION_SYMBOL, 2)]
    for m, ev in zip(results, (final, indicative), strict=True):
        (e,) = of(ev, PackageEventKind.AUCTION_RESULT)
        assert (m.event_seq, m.auction, m.indicative) == (e["seq"], e["order_id"], e["side"])
        assert {f: getattr(m, f) for f in RESULT_FIELDS} == {f: int(e[col]) for f, col in RESULT_FIELDS.items()}
        assert m.solve_us == solve_us(m.auction, m.indicative)
    assert [(r.auction, r.indicative) for r in results] == [(1, 0), (2, 1)] and results[0].accepted >= 1
    # nothing derived from a private event
    private = {int(e["seq"]) for ev in stages.values() for e in ev if e["kind"] in PRIVATE}
    assert private and not private & {m.event_seq for m in msgs}
    # the snapshot knows the last auction: per instrument its last prices, and the last results
    snap = b.pub.snapshot(fp.SnapshotRequest(1))
    last = {(m.symbol, m.indicative): m for m in msgs if type(m) in (fp.AuctionPrice, fp.AuctionResult)}
    for m in snap:
        if type(m) is fp.SnapshotInstrument:
            assert (m.auction, m.indicative) == (last.get((m.symbol, 0)), last.get((m.symbol, 1)))
    (tape,) = [m for m in snap if type(m) is fp.SnapshotAuction]
    assert (tape.seq, tape.result, tape.indicative) == (2, *results)
    assert not [m for m in b.pub.snapshot(fp.SnapshotRequest(2, [symbols[0]])) if type(m) is fp.SnapshotAuction]


def test_private_package_events_alone_publish_nothing():
    rng = random.Random(3)
    ev = np.zeros(200, EVENT_DTYPE)
    for k, e in enumerate(ev):
        e["seq"], e["kind"], e["instrument"] = k + 1, rng.choice(PRIVATE), rng.randrange(-1, 3)
        for f in ("side", "firm", "order_id", "client_order_id", "price", "qty", "leaves", "cum", "trade_id"):
            e[f] = rng.randrange(0, 3 if f == "side" else 10_000)
    fold = Fold(3)
    assert len(fold.run(ev)) == 0 and fold.g.tolist()[2:] == [0, 0] and not fold.seqs.any()


def test_feed_clients_early_late_and_lossy_know_the_last_auction():
    clock, ctx = FakeClock(10**9), zmq.Context()
    market = Market(Exchange(make_instruments(), 8))
    pub = FeedPublisher(market.instruments, LOOPBACK, LOOPBACK, clock=clock, auction_solve_us=solve_us).start()
    symbols = [ins.symbol for ins in market.instruments]
    channels = [*symbols, fp.AUCTION_SYMBOL]
    early = FeedClient(pub.endpoint, pub.snapshot_endpoint, None, clock=clock, ctx=ctx).connect()
    lossy = FeedClient(pub.endpoint, pub.snapshot_endpoint, [symbols[0], fp.AUCTION_SYMBOL], clock=clock,
                       ctx=ctx).connect()
    lossy.drop = lambda m: type(m) is fp.AuctionResult and m.seq == 1  # the final result is lost
    clients = [early, lossy]
    seen: list = []
    early.on_update = seen.append

    def run(commands) -> np.ndarray:
        market.process_batch(commands if isinstance(commands, np.ndarray) else commands_to_records(commands))
        ev = market.last_events.copy()
        pub.on_events(ev)
        return ev

    try:
        settle(pub, clients, [symbols[0]])
        auction_flow(run)
        late = FeedClient(pub.endpoint, pub.snapshot_endpoint, None, clock=clock, ctx=ctx).connect()
        clients.append(late)
        settle(pub, [early, late], channels)
        settle(pub, [lossy], [symbols[0], fp.AUCTION_SYMBOL])
        assert lossy.stats["gaps"] >= 1  # noticed with the indicative result (seq 2 after 0)
        snap = pub.snapshot(fp.SnapshotRequest(1))
        (tape,) = [m for m in snap if type(m) is fp.SnapshotAuction]
        prices = {m.symbol: (m.auction, m.indicative) for m in snap if type(m) is fp.SnapshotInstrument}
        for c in clients:
            assert (c.auction_result(), c.auction_result(indicative=True)) == (tape.result, tape.indicative)
            want = symbols if c.symbols is None else [symbols[0]]
            assert c.auction_prices() == {s: prices[s][0] for s in want if prices[s][0] is not None}
            assert c.auction_prices(indicative=True) == {s: prices[s][1] for s in want if prices[s][1] is not None}
            for s in want:
                assert local_books(c.book(s)) == engine_books(market, symbols.index(s))
        assert tape.result.solve_us == 1000 and tape.indicative.solve_us == 2001
        assert [type(m) for m in seen if type(m) is fp.AuctionResult] == [fp.AuctionResult] * 2
        assert early.auction_prices()  # the final auction cleared some hours
    finally:
        for c in clients:
            c.close()
        pub.stop()
        ctx.destroy(linger=0)
