"""Feed test helpers: random order flow (engine commands or gateway messages), book comparisons, a publisher
bench over an engine, a venue.

``FeedVenue`` runs an engine over the default listing behind a Gateway whose
``on_events`` goes to a FeedPublisher (and into ``history``, so that
``restart_publisher`` can start a new publisher on the same endpoints from the
same engine state); both use ``venue.clock`` (the test drives it). Every
socket binds 127.0.0.1 on a port ZeroMQ picks; every wait is bounded in count
and time.
"""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest
import zmq

from engine.codes import EventKind, OrderType, PackageEventKind, SelfTradePrevention, Side, TimeInForce
from engine.exchange import Exchange
from engine.listing import load_listing
from engine.records import (
    EVENT_DTYPE,
    AdvanceTime,
    Cancel,
    Halt,
    MassCancel,
    MassQuote,
    Modify,
    NewOrder,
    QuoteEntry,
    Resume,
    commands_to_records,
)
from feeds import protocol as fp
from feeds.client import FeedClient, LocalBook, snapshot_books
from feeds.publisher import FeedPublisher
from gateway import protocol as p
from gateway.config import GatewayConfig
from gateway.server import Gateway
from tests.conftest import make_instruments
from tests.gateway.conftest import ANCHOR_NS, OTHER, SYMBOL, Client, FakeClock

LOOPBACK = "tcp://127.0.0.1:*"
RESULT_FIELDS = {"status": "status", "surplus": "price", "accepted": "qty", "not_accepted": "leaves",
                 "paradoxically_rejected": "cum", "ir_cost": "trade_id", "gap_ppm": "count"}  # AUCTION_RESULT's
_EV = {name: i for i, name in enumerate(EVENT_DTYPE.names)}


# ------------------------------------------------------------- the truth


def engine_books(engine, instrument: int) -> tuple:
    """(bids, asks, bid orders, ask orders) of the engine: L2 as (price, qty, count), L3 as (id, price, qty)."""
    bids, asks = engine.depth(instrument, 1 << 30)
    l2 = ([(lv.price, lv.qty, lv.count) for lv in bids], [(lv.price, lv.qty, lv.count) for lv in asks])
    l3 = tuple([(o.order_id, o.price, o.leaves) for o in engine.book_orders(instrument, side)] for side in (0, 1))
    return (*l2, *l3)


def local_books(book: LocalBook) -> tuple:
    bids, asks = book.depth()
    return bids, asks, book.queue(0), book.queue(1)


def snapshot_book(pub: FeedPublisher, symbol: str) -> LocalBook:
    """The publisher's book of one instrument, as its snapshot service describes it."""
    return snapshot_books(pub.snapshot(fp.SnapshotRequest(0, [symbol]))[:-1])[symbol]


def publisher_books(pub: FeedPublisher, instrument: int) -> tuple:
    return local_books(snapshot_book(pub, pub.symbols[instrument]))


# ------------------------------------------------------ engine-level flow


class EngineFlow:
    """Random engine commands over some instruments; learns live orders from the events (``observe``)."""

    def __init__(self, seed: int, instruments: list[tuple[int, int, int]], firms: int = 3, ts: int = 1):
        self.rng = random.Random(seed)
        self.instruments = instruments  # (id, mid price, increment)
        self.firms = firms
        self.ts = ts
        self.clid = 0
        self.live: dict[int, int] = {}  # order id -> firm

    def batch(self, n: int) -> list:
        rng, out = self.rng, []
        for _ in range(n):
            self.ts += rng.randrange(0, 1000)
            firm = rng.randrange(self.firms)
            inst, mid, inc = rng.choice(self.instruments)
            side = rng.randrange(2)
            price = mid + inc * rng.randint(-6, 6)
            r = rng.random()
            self.clid += 1
            if r < 0.45:
                tif = rng.choice([TimeInForce.GTC] * 6 + [TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD])
                post = int(tif in (TimeInForce.GTC, TimeInForce.GTD) and rng.random() < 0.2)
                out.append(NewOrder(self.ts, firm, self.clid, inst, side, price, rng.randint(1, 20), OrderType.LIMIT,
                                    tif, post, rng.choice(list(SelfTradePrevention)),
                                    self.ts + rng.randint(1, 200_000) if tif == TimeInForce.GTD else 0))
            elif r < 0.5:
                out.append(NewOrder(self.ts, firm, self.clid, inst, side, 0, rng.randint(1, 30), OrderType.MARKET,
                                    TimeInForce.IOC))
            elif r < 0.68 and self.live:
                oid = rng.choice(list(self.live))
                out.append(Cancel(self.ts, self.live[oid], oid))
            elif r < 0.86 and self.live:
                oid = rng.choice(list(self.live))
                out.append(Modify(self.ts, self.live[oid], oid, price, rng.randint(1, 25)))
            elif r < 0.92:
                k = inc * rng.randint(1, 4)
                out.append(MassQuote(self.ts, firm, self.clid, [
                    QuoteEntry(inst, mid - k, rng.choice([0, 5, 10]), mid + k, rng.choice([0, 5, 10]))]))
            elif r < 0.94:
                out.append(MassCancel(self.ts, firm, rng.choice([-1, inst])))
            elif r < 0.96:
                out.append((Halt if rng.random() < 0.5 else Resume)(self.ts, inst))
            else:
                self.ts += rng.randint(0, 100_000)
                out.append(AdvanceTime(self.ts))
        return out

    def observe(self, records) -> None:
        for ev in records.tolist():
            kind, oid = ev[_EV["kind"]], ev[_EV["order_id"]]
            if kind == EventKind.ACCEPTED:
                self.live[oid] = ev[_EV["firm"]]
            elif kind == EventKind.CANCELLED or (kind == EventKind.FILL and ev[_EV["leaves"]] == 0):
                self.live.pop(oid, None)


class Bench:
    """An engine (by default an ``Exchange`` over ``tests.conftest.make_instruments``), a bound publisher fed its
    events, and one SUB that has everything (subscription confirmed by a heartbeat)."""

    def __init__(self, engine=None, **publisher_kw):
        self.engine = Exchange(make_instruments(), 3) if engine is None else engine
        self.clock = FakeClock(10**9)
        self.pub = FeedPublisher(self.engine.instruments, LOOPBACK, LOOPBACK, clock=self.clock,
                                 **publisher_kw).bind()
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(self.pub.endpoint)
        for _ in range(200):
            self.pub.heartbeat(force=True)
            if self.sub.poll(20):
                break
        else:
            raise AssertionError("subscription never arrived")
        self.drain()

    def run(self, commands) -> np.ndarray:
        """Process commands (a list of engine commands, or COMMAND_DTYPE records) and publish the events."""
        self.engine.process_batch(commands if isinstance(commands, np.ndarray) else commands_to_records(commands))
        events = self.engine.last_events.copy()
        self.pub.on_events(events)
        return events

    def drain(self, timeout: float = 5.0) -> list:
        """Every feed message published so far but heartbeats."""
        want = {s: self.pub.seq(s) for s in (*self.pub.symbols, fp.AUCTION_SYMBOL)}
        got, seen = [], {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(seen.get(s, 0) < q for s, q in want.items() if q) \
                or self.sub.poll(0):
            if not self.sub.poll(50):
                continue
            topic, frame = self.sub.recv_multipart()
            for m in fp.feed_frame_decoder.decode(frame):
                assert topic == fp.topic(m.symbol) and m.session == self.pub.session
                if not isinstance(m, fp.Heartbeat):
                    got.append(m)
                    seen[m.symbol] = m.seq
        return got

    def close(self):
        self.pub.stop()
        self.ctx.destroy(linger=0)


@pytest.fixture
def bench():
    b = Bench()
    yield b
    b.close()


# ---------------------------------------------------------------- venue


def settle(publisher: FeedPublisher, feeds, symbols, timeout: float = 10.0) -> None:
    """Poll the feeds until each is synced, in the publisher's session, at its seq of every symbol
    (AssertionError if not)."""
    deadline = time.monotonic() + timeout
    rounds = 0
    while time.monotonic() < deadline:
        for f in feeds:
            f.poll(5)
        if all(f.synced and f.session == publisher.session and all(
                f.channel(s) is not None and f.channel(s).seq == publisher.seq(s) for s in symbols) for f in feeds):
            return
        rounds += 1
        if rounds % 100 == 0:  # a heartbeat round reveals a lost tail (e.g. published before a SUB was live)
            publisher.heartbeat(force=True)
    state = [(f.stats, f.session, {s: getattr(f.channel(s), "seq", None) for s in symbols}) for f in feeds]
    raise AssertionError(f"feeds did not converge to session {publisher.session}: {state}")



class FeedVenue:
    def __init__(self, firms=("ALPHA", "BETA", "GAMMA")):
        self.clock = FakeClock(ANCHOR_NS + 5 * 10**9)
        self.engine = Exchange(load_listing(None).instruments(ANCHOR_NS), len(firms))
        self.history: list = []  # every batch of event records the engine produced
        self._publisher_lock = threading.Lock()  # the gateway's thread calls on_events
        self.publisher: FeedPublisher | None = FeedPublisher(self.engine.instruments, LOOPBACK, LOOPBACK,
                                                             clock=self.clock).start()
        self.gateway = Gateway(GatewayConfig.for_tests(firms=list(firms)), self.engine, clock=self.clock,
                               on_events=self.on_events).start()
        self.ctx = zmq.Context()
        self.traders: list[Client] = []
        self.feeds: list[FeedClient] = []
        self.symbols = [SYMBOL, OTHER]
        self.instrument_of = self.gateway.instrument_of

    def on_events(self, records) -> None:
        with self._publisher_lock:
            self.history.append(records.copy())
            if self.publisher is not None:
                self.publisher.on_events(records)

    def restart_publisher(self, while_down=None) -> None:
        """Stop the publisher, run ``while_down()`` (the market goes on without a feed), then start a new
        publisher on the same endpoints, fed the engine's whole event history first (as ``cx serve`` after
        a journal recovery)."""
        with self._publisher_lock:
            old, self.publisher = self.publisher, None
        old.stop()
        if while_down is not None:
            while_down()
        with self._publisher_lock:
            new = FeedPublisher(self.engine.instruments, old.endpoint, old.snapshot_endpoint, clock=self.clock).bind()
            for records in self.history:
                new.on_events(records)
            self.publisher = new.start()

    def publish_auction(self, prices: dict[str, tuple[int, int]], number: int, indicative: int = 0,
                        **result: int) -> None:
        """Hand the publisher an auction's AUCTION_PRICE and AUCTION_RESULT events as the engine's Market would
        (docs/auction.md), after the engine's last event: ``prices`` symbol -> (price, volume); ``result``: the
        AuctionResult's fields by their feed names (status 1 unless given)."""
        with self._publisher_lock:
            seq = max((int(r["seq"][-1]) for r in self.history if len(r)), default=0)
        ev = np.zeros(len(prices) + 1, EVENT_DTYPE)
        ev["seq"] = np.arange(seq + 1, seq + 2 + len(prices))
        ev["ts"], ev["order_id"], ev["side"], ev["instrument"] = self.clock.now, number, indicative, -1
        ev["kind"][:-1] = PackageEventKind.AUCTION_PRICE
        for k, symbol in enumerate(sorted(prices, key=self.instrument_of.get)):
            ev[k]["instrument"] = self.instrument_of[symbol]
            ev[k]["price"], ev[k]["qty"] = prices[symbol]
        ev[-1]["kind"], ev[-1]["status"] = PackageEventKind.AUCTION_RESULT, 1
        for name, value in result.items():
            ev[-1][RESULT_FIELDS[name]] = value
        self.on_events(ev)

    def trader(self, firm: str) -> Client:
        c = Client(self.ctx, self.gateway.endpoint)
        self.traders.append(c)
        reply = c.logon("feeds", firm)
        assert isinstance(reply, p.LogonAccepted), reply
        return c

    def feed(self, symbols=None, **kw) -> FeedClient:
        kw.setdefault("clock", self.clock)
        f = FeedClient(self.publisher.endpoint, self.publisher.snapshot_endpoint, symbols, ctx=self.ctx, **kw)
        self.feeds.append(f.connect())
        return f

    def publisher_seq(self, symbol: str) -> int:
        return self.publisher.seq(symbol)

    def settle(self, feeds, symbols=None, timeout: float = 10.0) -> None:
        settle(self.publisher, feeds, symbols or self.symbols, timeout)

    def close(self) -> None:
        for f in self.feeds:
            f.close()
        for c in self.traders:
            c.close()
        self.gateway.stop()
        if self.publisher is not None:
            self.publisher.stop()
        self.ctx.destroy(linger=0)


class GatewayFlow:
    """Random order-entry messages from a few DEALER traders; ``run(n)`` waits until the gateway processed them."""

    def __init__(self, venue: FeedVenue, seed: int, firms=("ALPHA", "BETA", "GAMMA")):
        self.venue = venue
        self.rng = random.Random(seed)
        self.traders = [venue.trader(f) for f in firms]
        self.live: list[set[int]] = [set() for _ in firms]
        self.clid = 0
        self.mids = {SYMBOL: 2000, OTHER: 3000}

    def _learn(self, i: int, msgs: list) -> None:
        for m in msgs:
            if isinstance(m, p.Accepted):
                self.live[i].add(m.order_id)
            elif isinstance(m, p.Cancelled) or (isinstance(m, p.Executed) and m.leaves == 0):
                self.live[i].discard(m.order_id)

    def message(self, i: int):
        rng = self.rng
        sym = rng.choice(list(self.mids))
        mid = self.mids[sym]
        side = Side(rng.randrange(2))
        price = mid + rng.randint(-6, 6)
        self.clid += 1
        r = rng.random()
        if r < 0.5 or not self.live[i]:
            tif = rng.choice([TimeInForce.GTC] * 6 + [TimeInForce.IOC, TimeInForce.FOK])
            return p.NewOrder(self.clid, sym, side, rng.randint(1, 20), price, tif=tif,
                              stp=rng.choice(list(SelfTradePrevention)))
        if r < 0.55:
            return p.NewOrder(self.clid, sym, side, rng.randint(1, 30), 0, ord_type=OrderType.MARKET,
                              tif=TimeInForce.IOC)
        if r < 0.75:
            return p.Cancel(rng.choice(sorted(self.live[i])))
        if r < 0.93:
            return p.Modify(rng.choice(sorted(self.live[i])), price, rng.randint(1, 25))
        k = rng.randint(1, 4)
        return p.MassQuote(self.clid, [p.QuoteEntry(sym, mid - k, rng.choice([0, 5]), mid + k, rng.choice([0, 5]))])

    def run(self, rounds: int, per_round: int = 5) -> None:
        for _ in range(rounds):
            for i, t in enumerate(self.traders):
                for _ in range(per_round):
                    t.send(self.message(i))
            for i, t in enumerate(self.traders):
                # the gateway answers a trader in order: an unknown-order cancel marks the end of its round
                t.send(p.Cancel(0))
                self._learn(i, t.until(lambda m: isinstance(m, p.CancelRejected) and m.order_id == 0, 5.0))


def replay(messages: list, symbol: str) -> LocalBook:
    """A book rebuilt from seq 1 by applying one instrument's feed messages (AssertionError on a gap)."""
    b = LocalBook(symbol, 0, 0)
    for m in messages:
        if m.symbol != symbol or isinstance(m, fp.Heartbeat):
            continue
        assert m.seq == b.seq + 1, (m, b.seq)
        b.apply(m)
    return b
