"""``FeedPublisher``: turns the engine's event records into market data (PUB) and serves snapshots (ROUTER).

It reads events, never a book: ``on_events(records)`` (pass it as the
Gateway's ``on_events``) folds each batch into the publisher's OWN books, one
per instrument, and publishes what changed (see ``feeds.protocol`` for the
messages, topics and sequencing).

How L3 is derived from the events (docs/matching-rules.md, *Event order*):
* the publisher keeps every resting order (id, side, price, leaves) and each
  level's FIFO queue; an ``Accepted`` order, or a non-in-place ``Replaced``
  one, is the *incoming* order, out of the book;
* a maker ``Fill``, a ``Cancelled`` of a resting order and an in-place
  ``Replaced`` (same price, leaves not increased) change a resting order and
  are followed by the ``BookLevel`` of its level, which then equals the
  publisher's level exactly (orders and quantity);
* a ``BookLevel`` showing one order more than the publisher's level, with the
  incoming order's leaves more quantity, at its side and price, is the
  incoming order starting to rest: ``OrderAdded`` at the queue's tail;
* a ``Cancelled`` of the incoming order (IOC, STP, market protection) and
  taker fills change no queue. A ``BookLevel`` that fits neither case is
  counted in ``stats["l3_mismatch"]`` (never seen in tests; L2 still follows
  the event).

Invariants: per instrument, messages get seq 1, 2, 3, ... in event order;
after each message the publisher's L2 (from ``BookLevel``) and L3 queues equal
the engine's book at that event; a snapshot is taken under the same lock as
the fold, so it is the book exactly at the seq it names. The publisher must see
the engine's events from its start (or from a journal replay): an event about
an order it never saw is counted in ``stats["fold_errors"]`` and skipped, and
an instrument's status before its first ``InstrumentStatusChanged`` is
inferred from ``open_ns`` and the clock.

Threads: ``on_events`` runs in the caller's thread (the gateway loop);
``poll(timeout_ms)`` serves snapshot requests and sends heartbeats (at most one
per instrument per ``heartbeat_ns`` of ``clock``) and runs in the owner's
thread, or in the publisher's own thread after ``start()``. A lock serialises
the fold, the PUB socket and snapshots; the ROUTER is used only by ``poll``.

Never blocks the engine: the PUB socket drops for a subscriber whose queue
(``sndhwm`` messages) is full; the subscriber sees a seq gap and resyncs.

Costs per event: O(1) dict work plus O(log levels) for the top of book; a
snapshot is O(levels + orders) of the requested instruments; a heartbeat round
is O(instruments).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import msgspec
import zmq
from sortedcontainers import SortedDict

from engine.codes import EventKind, InstrumentStatus, Liquidity
from engine.records import EVENT_DTYPE
from feeds import protocol as fp

log = logging.getLogger("cx.feeds")

_EV = {name: i for i, name in enumerate(EVENT_DTYPE.names)}
_SEQ, _TS, _KIND, _SIDE, _REASON, _LIQ, _STATUS, _INST, _COUNT = (
    _EV[k] for k in ("seq", "ts", "kind", "side", "reason", "liquidity", "status", "instrument", "count"))
_OID, _PRICE, _QTY, _LEAVES, _TID = (_EV[k] for k in ("order_id", "price", "qty", "leaves", "trade_id"))
_NOBLOCK = int(zmq.NOBLOCK)
_MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
SNAPSHOT_FRAME = 1000  # snapshot messages per reply frame at most
MAX_REQUESTS_PER_POLL = 64


class _Level:
    """One price level of the publisher's L3 book: FIFO of order ids, and their total leaves."""

    __slots__ = ("queue", "qty")

    def __init__(self):
        self.queue: dict[int, None] = {}  # insertion-ordered: queue order
        self.qty = 0


class _Book:
    """What the publisher knows of one instrument, rebuilt from events only."""

    __slots__ = ("symbol", "seq", "status", "levels", "queues", "orders", "top", "open_ns", "topics")

    def __init__(self, symbol: str, open_ns: int):
        self.symbol = symbol
        self.seq = 0
        self.status = -1  # unknown until an InstrumentStatusChanged; see status_at
        self.open_ns = open_ns
        self.levels = (SortedDict(), SortedDict())  # per side: price -> (qty, count), from BookLevel
        self.queues: tuple[dict[int, _Level], dict[int, _Level]] = ({}, {})  # per side: price -> _Level
        self.orders: dict[int, list] = {}  # order id -> [side, price, leaves]
        self.top = (0, 0, 0, 0, 0, 0)
        self.topics = {cls: fp.topic(ch, symbol) for cls, ch in fp.CHANNEL_OF.items()}  # message class -> topic

    def status_at(self, now: int) -> int:
        if self.status >= 0:
            return self.status
        return InstrumentStatus.PRE_OPEN if now < self.open_ns else InstrumentStatus.OPEN

    def add(self, oid: int, side: int, price: int, leaves: int) -> None:
        lv = self.queues[side].get(price)
        if lv is None:
            lv = self.queues[side][price] = _Level()
        lv.queue[oid] = None
        lv.qty += leaves
        self.orders[oid] = [side, price, leaves]

    def reduce(self, oid: int, by: int) -> list:
        o = self.orders[oid]
        side, price = o[0], o[1]
        o[2] -= by
        lv = self.queues[side][price]
        lv.qty -= by
        if o[2] == 0:
            del self.orders[oid]
            del lv.queue[oid]
            if not lv.queue:
                del self.queues[side][price]
        return o

    def compute_top(self) -> tuple:
        bids, asks = self.levels
        bp, (bq, bc) = bids.peekitem(-1) if bids else (0, (0, 0))
        ap, (aq, ac) = asks.peekitem(0) if asks else (0, (0, 0))
        return (bp, bq, bc, ap, aq, ac)


class FeedPublisher:
    def __init__(self, instruments, endpoint: str = "tcp://127.0.0.1:5556",
                 snapshot_endpoint: str = "tcp://127.0.0.1:5557", clock=time.time_ns,
                 heartbeat_ns: int = 10**9, sndhwm: int = 100_000, ctx: zmq.Context | None = None):
        """``instruments``: the engine's instrument list (ids = positions). Endpoints may use port ``*``."""
        self.books = [_Book(ins.symbol, ins.open_ns) for ins in instruments]
        self.by_symbol = {b.symbol: b for b in self.books}
        self.endpoint_requested, self.snapshot_endpoint_requested = endpoint, snapshot_endpoint
        self.endpoint = self.snapshot_endpoint = ""
        self.clock = clock
        self.heartbeat_ns = heartbeat_ns
        self.sndhwm = sndhwm
        self.stats: Counter[str] = Counter()
        self.last_event_seq = 0
        self.last_ts = 0
        self._last_heartbeat_ns: int | None = None
        self._incoming: list | None = None  # [order id, instrument, side, price, leaves] of the order being matched
        self._lock = threading.Lock()
        self._own_ctx = ctx is None
        self._ctx = ctx
        self._pub = self._router = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._encode = fp.encoder.encode
        self.published = 0  # sequenced messages handed to the PUB socket
        self._send = None

    # ------------------------------------------------------------ lifecycle

    def bind(self) -> FeedPublisher:
        if self._ctx is None:
            self._ctx = zmq.Context()
        pub = self._pub = self._ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, self.sndhwm)
        pub.bind(self.endpoint_requested)
        self._send = pub.send
        self.endpoint = pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        r = self._router = self._ctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.LINGER, 0)
        r.setsockopt(zmq.SNDHWM, 1_000_000)
        r.setsockopt(zmq.MAXMSGSIZE, 1 << 16)
        r.bind(self.snapshot_endpoint_requested)
        self.snapshot_endpoint = r.getsockopt(zmq.LAST_ENDPOINT).decode()
        log.info("feed on %s, snapshots on %s", self.endpoint, self.snapshot_endpoint)
        return self

    def start(self) -> FeedPublisher:
        """Bind, then serve snapshots and heartbeats from a background thread."""
        if self._pub is None:
            self.bind()
        self._thread = threading.Thread(target=self.run, name="cx-feeds", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        while not self._stop.is_set():
            self.poll(20)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        for s in (self._pub, self._router):
            if s is not None:
                s.close(linger=0)
        self._pub = self._router = None
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    # ------------------------------------------------------------ publishing

    def _publish(self, b: _Book, cls, *fields) -> None:
        """Next seq of book ``b``; fields after (symbol, seq, event_seq, ts). Sent at once, never blocking."""
        b.seq += 1
        send = self._send
        try:
            send(b.topics[cls], _MORE_NOBLOCK)
            send(self._encode(cls(b.symbol, b.seq, self.last_event_seq, self.last_ts, *fields)), _NOBLOCK)
            self.published += 1
        except zmq.Again:  # PUB drops rather than blocks; counted if the socket ever says so
            self.stats["dropped"] += 1

    def on_events(self, records) -> None:
        """Fold a batch of EVENT_DTYPE records into the books and publish. O(events)."""
        rows = records.tolist()
        with self._lock:
            for ev in rows:
                try:
                    self._event(ev)
                except (KeyError, IndexError):  # an order or level it never saw: never take the caller down
                    self.stats["fold_errors"] += 1
                    log.exception("feed could not fold event %s", ev)

    def _event(self, ev: tuple) -> None:
        kind = ev[_KIND]
        self.last_event_seq, self.last_ts = ev[_SEQ], ev[_TS]
        if kind == EventKind.REJECTED or kind == EventKind.CANCEL_REJECTED:
            return
        b = self.books[ev[_INST]]
        if kind == EventKind.BOOK_LEVEL:
            self._book_level(b, ev)
        elif kind == EventKind.ACCEPTED:
            self._incoming = [ev[_OID], ev[_INST], ev[_SIDE], ev[_PRICE], ev[_QTY]]
        elif kind == EventKind.FILL:
            oid = ev[_OID]
            if ev[_LIQ] == Liquidity.MAKER:
                o = b.reduce(oid, ev[_QTY])
                self._publish(b, fp.OrderExecuted, oid, o[0], o[1], ev[_QTY], ev[_LEAVES], ev[_TID])
            elif self._incoming is not None and self._incoming[0] == oid:
                self._incoming[4] = ev[_LEAVES]
        elif kind == EventKind.TRADE:
            self._publish(b, fp.Trade, ev[_TID], ev[_SIDE], ev[_PRICE], ev[_QTY])
        elif kind == EventKind.CANCELLED:
            oid = ev[_OID]
            if oid in b.orders:
                o = b.orders[oid]
                side, price, leaves = o
                b.reduce(oid, leaves)
                self._publish(b, fp.OrderDeleted, oid, side, price, leaves, ev[_REASON])
            elif self._incoming is not None and self._incoming[0] == oid:
                self._incoming = None
        elif kind == EventKind.REPLACED:
            oid, price, leaves = ev[_OID], ev[_PRICE], ev[_LEAVES]
            o = b.orders[oid]
            side = o[0]
            if price == o[1] and leaves <= o[2]:
                by = o[2] - leaves
                o[2] = leaves  # in place (leaves > 0), queue position kept
                b.queues[side][price].qty -= by
                self._publish(b, fp.OrderReduced, oid, side, price, by, leaves)
            else:
                b.reduce(oid, o[2])
                self._incoming = [oid, ev[_INST], side, price, leaves]
                self._publish(b, fp.OrderReplaced, oid, side, price, leaves)
        elif kind == EventKind.INSTRUMENT_STATUS:
            b.status = ev[_STATUS]
            self._publish(b, fp.InstrumentStatus, ev[_STATUS])

    def _book_level(self, b: _Book, ev: tuple) -> None:
        side, price, qty, count = ev[_SIDE], ev[_PRICE], ev[_QTY], ev[_COUNT]
        lv = b.queues[side].get(price)
        have_count, have_qty = (len(lv.queue), lv.qty) if lv is not None else (0, 0)
        inc = self._incoming
        if (count, qty) != (have_count, have_qty):
            if (inc is not None and inc[1] == ev[_INST] and inc[2] == side and inc[3] == price
                    and count == have_count + 1 and qty == have_qty + inc[4]):
                b.add(inc[0], side, price, inc[4])
                self._incoming = None
                self._publish(b, fp.OrderAdded, inc[0], side, price, inc[4])
            else:
                self.stats["l3_mismatch"] += 1
                log.warning("L3 book of %s disagrees with BookLevel %s", b.symbol, ev)
        levels = b.levels[side]
        if qty == 0:
            levels.pop(price, None)
        else:
            levels[price] = (qty, count)
        self._publish(b, fp.LevelUpdate, side, price, qty, count)
        top = b.compute_top()
        if top != b.top:
            b.top = top
            self._publish(b, fp.TopOfBook, *top)

    # ------------------------------------------------- heartbeats, snapshots

    def heartbeat(self, now: int | None = None, force: bool = False) -> bool:
        """One Heartbeat per instrument if ``heartbeat_ns`` passed since the last round. O(instruments)."""
        now = self.clock() if now is None else now
        last = self._last_heartbeat_ns
        if not force and last is not None and now - last < self.heartbeat_ns:
            return False
        self._last_heartbeat_ns = now
        with self._lock:
            pub, enc = self._pub, self._encode
            for b in self.books:
                msg = fp.Heartbeat(b.symbol, b.seq, self.last_event_seq, now)
                try:
                    pub.send(b.topics[fp.Heartbeat], _MORE_NOBLOCK)
                    pub.send(enc(msg), _NOBLOCK)
                except zmq.Again:
                    self.stats["dropped"] += 1
            self.stats["heartbeat_rounds"] += 1
        return True

    def poll(self, timeout_ms: int = 0) -> int:
        """Serve the snapshot requests that arrive within ``timeout_ms`` and send a heartbeat round if due.

        Returns how many requests were served (at most MAX_REQUESTS_PER_POLL)."""
        served = 0
        if self._router.poll(timeout_ms):
            for _ in range(MAX_REQUESTS_PER_POLL):
                try:
                    frames = self._router.recv_multipart(_NOBLOCK)
                except zmq.Again:
                    break
                self._serve(frames)
                served += 1
        self.heartbeat()
        return served

    def snapshot(self, request: fp.SnapshotRequest) -> list:
        """The reply to a request: per instrument SnapshotInstrument, its levels, its orders; then SnapshotEnd."""
        now = self.clock()
        with self._lock:
            wanted = request.symbols or [b.symbol for b in self.books]
            out, unknown, n = [], [], 0
            for sym in wanted:
                b = self.by_symbol.get(sym)
                if b is None:
                    unknown.append(sym)
                    continue
                n += 1
                head = (b.symbol, b.seq, self.last_event_seq, self.last_ts)
                bids, asks = b.levels
                out.append(fp.SnapshotInstrument(*head, b.status_at(now), len(bids), len(asks), len(b.orders)))
                for side, prices in ((0, reversed(bids)), (1, iter(asks))):
                    for price in prices:
                        qty, count = b.levels[side][price]
                        out.append(fp.SnapshotLevel(*head, side, price, qty, count))
                for side, prices in ((0, sorted(b.queues[0], reverse=True)), (1, sorted(b.queues[1]))):
                    for price in prices:
                        for oid in b.queues[side][price].queue:
                            out.append(fp.SnapshotOrder(*head, oid, side, price, b.orders[oid][2]))
            out.append(fp.SnapshotEnd(request.request_id, self.last_event_seq, self.last_ts, n, unknown))
        return out

    def _serve(self, frames: list[bytes]) -> None:
        rid = frames[0]
        try:
            request = fp.request_decoder.decode(frames[-1])
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.stats["bad_requests"] += 1
            reply = [fp.SnapshotEnd(-1, self.last_event_seq, self.last_ts, 0)]
        else:
            reply = self.snapshot(request)
        self.stats["snapshots"] += 1
        for i in range(0, len(reply), SNAPSHOT_FRAME):
            try:
                self._router.send_multipart([rid, self._encode(reply[i: i + SNAPSHOT_FRAME])], _NOBLOCK)
            except zmq.ZMQError:
                self.stats["snapshot_send_dropped"] += 1
                return
