"""``FeedClient``: a subscriber that keeps local books in step with the feed (the ZeroMQ Guide's Clone pattern).

Per instrument the client is either *synced* (a ``LocalBook`` with the seq it
reflects) or *pending* (waiting for a snapshot, buffering what arrives):
1. subscribe first (the topic of each wanted symbol, or everything), so
   nothing published after the snapshot can be missed;
2. request a snapshot (``SnapshotRequest``) of the pending instruments;
3. on the reply, each instrument's book is the snapshot at its seq S; buffered
   messages with seq <= S are dropped, the rest applied in order;
4. live, a message with seq = last + 1 is applied, seq <= last dropped (seen),
   seq > last + 1 is a gap: the instrument goes back to pending and a new
   snapshot is requested. A Heartbeat whose seq is above the last applied one
   is a gap as well (the tail of a burst was lost).
A feed silent for more than ``heartbeat_timeout_s`` (by the injected
``clock``, ns) is *dead*: ``dead`` is True, every instrument goes back to
pending and snapshots are requested again (every ``snapshot_timeout_s`` while
unanswered). Any message makes the feed alive again.

Publisher restarts (see ``feeds.protocol``, *Sessions*): ``session`` is the
publisher session the books belong to, the first one heard. A message or a
snapshot of a newer session means the publisher restarted and its seqs may
have started over: every book is dropped, every instrument pending, one
snapshot requested (``stats["publisher_restarts"]``); a snapshot reply of the
new session that answered an old request is not installed (the new request's
reply is). A message or snapshot of an older session is stale (a leftover of
the replaced publisher): ignored, and it does not count as the feed being
alive (``stats["stale_session"]``). A dead feed forgets its session, so the
next publisher is adopted whatever its id.

The call auction: each ``LocalBook`` keeps the instrument's last final
(``auction``) and last indicative (``indicative``) ``AuctionPrice``; the
``AUCTION_SYMBOL`` channel (subscribed when ``symbols`` is None or names it)
is an ``AuctionTape`` in ``auctions``, synced like a book (seq, gaps,
snapshot), keeping the last final and last indicative ``AuctionResult``.
``auction_result()`` and ``auction_prices()`` read them.

Invariant: a synced book equals the publisher's book at the book's seq (L2
levels from LevelUpdate, L3 queues from the Order* messages, both kept, and
its last auction prices), in the session ``session``; a synced tape holds the
publisher's last auction results at the tape's seq.

``poll(timeout_ms)`` does all the work in the caller's thread (no threads of
its own): it reads frames (each an array of one instrument's messages) until
``max_msgs`` messages, then checks the timers. ``on_update(msg)`` is called
for each applied message, in seq order per instrument. ``drop`` (tests) is a
predicate: a message for which it returns True is discarded as if the network
lost it.

Costs: O(1) per message (O(log levels) for ``depth``), snapshot install
O(levels + orders).
"""

from __future__ import annotations

import time
from collections import Counter

import msgspec
import zmq

from feeds import protocol as fp

NS = 10**9


class LocalBook:
    """One instrument as the feed describes it: L2 levels, L3 queues, status, seq."""

    def __init__(self, symbol: str, seq: int, status: int):
        self.symbol = symbol
        self.seq = seq
        self.status = status
        self.levels: tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]] = ({}, {})
        self.queues: tuple[dict[int, dict[int, None]], dict[int, dict[int, None]]] = ({}, {})
        self.orders: dict[int, list] = {}  # order id -> [side, price, qty]
        self.top: tuple = (0, 0, 0, 0, 0, 0)
        self.last_trade: fp.Trade | None = None
        self.auction: fp.AuctionPrice | None = None  # the last final auction price
        self.indicative: fp.AuctionPrice | None = None  # the last indicative auction price

    def depth(self, n: int | None = None) -> tuple[list[tuple], list[tuple]]:
        """L2: (price, qty, count) per level, best first, per side. O(levels log levels)."""
        bids = [(p, *self.levels[0][p]) for p in sorted(self.levels[0], reverse=True)]
        asks = [(p, *self.levels[1][p]) for p in sorted(self.levels[1])]
        return (bids[:n], asks[:n]) if n is not None else (bids, asks)

    def queue(self, side: int) -> list[tuple[int, int, int]]:
        """L3: (order id, price, qty) in priority order (best level first, FIFO within)."""
        q = self.queues[side]
        return [(oid, p, self.orders[oid][2]) for p in sorted(q, reverse=side == 0) for oid in q[p]]

    def l3_depth(self) -> tuple[list[tuple], list[tuple]]:
        """L2 recomputed from the L3 queues (for checks)."""
        out = []
        for side in (0, 1):
            q = self.queues[side]
            out.append([(p, sum(self.orders[o][2] for o in q[p]), len(q[p])) for p in sorted(q, reverse=side == 0)])
        return out[0], out[1]

    def _remove(self, oid: int) -> None:
        side, price, _ = self.orders.pop(oid)
        q = self.queues[side][price]
        del q[oid]
        if not q:
            del self.queues[side][price]

    def _add(self, oid: int, side: int, price: int, qty: int) -> None:
        self.orders[oid] = [side, price, qty]
        self.queues[side].setdefault(price, {})[oid] = None

    def apply(self, m) -> None:
        """Apply one sequenced message (its seq already checked). O(1)."""
        t = type(m)
        if t is fp.LevelUpdate:
            if m.qty == 0:
                self.levels[m.side].pop(m.price, None)
            else:
                self.levels[m.side][m.price] = (m.qty, m.count)
        elif t is fp.OrderAdded:
            self._add(m.order_id, m.side, m.price, m.qty)
        elif t is fp.OrderExecuted or t is fp.OrderReduced:
            if m.leaves == 0:
                self._remove(m.order_id)
            else:
                self.orders[m.order_id][2] = m.leaves
        elif t is fp.OrderDeleted or t is fp.OrderReplaced:
            self._remove(m.order_id)
        elif t is fp.TopOfBook:
            self.top = (m.bid_price, m.bid_qty, m.bid_count, m.ask_price, m.ask_qty, m.ask_count)
        elif t is fp.Trade:
            self.last_trade = m
        elif t is fp.InstrumentStatus:
            self.status = m.status
        elif t is fp.AuctionPrice:
            if m.indicative:
                self.indicative = m
            else:
                self.auction = m
        self.seq = m.seq


class AuctionTape:
    """The ``AUCTION_SYMBOL`` channel: its seq and the last final and indicative ``AuctionResult``."""

    symbol = fp.AUCTION_SYMBOL

    def __init__(self, seq: int, result: fp.AuctionResult | None = None, indicative: fp.AuctionResult | None = None):
        self.seq = seq
        self.result = result
        self.indicative = indicative

    def apply(self, m) -> None:
        """Apply one sequenced message of the channel (its seq already checked). O(1)."""
        if type(m) is fp.AuctionResult:
            if m.indicative:
                self.indicative = m
            else:
                self.result = m
        self.seq = m.seq


def snapshot_books(snap: list) -> dict[str, LocalBook | AuctionTape]:
    """The books of a snapshot reply (its messages but SnapshotEnd), by symbol, and the ``AUCTION_SYMBOL``
    channel's tape if the reply has it. O(messages)."""
    books: dict[str, LocalBook | AuctionTape] = {}
    for m in snap:
        t = type(m)
        if t is fp.SnapshotInstrument:
            b = books[m.symbol] = LocalBook(m.symbol, m.seq, m.status)
            b.auction, b.indicative = m.auction, m.indicative
        elif t is fp.SnapshotAuction:
            books[m.symbol] = AuctionTape(m.seq, m.result, m.indicative)
        elif t is fp.SnapshotLevel:
            books[m.symbol].levels[m.side][m.price] = (m.qty, m.count)
        else:
            books[m.symbol]._add(m.order_id, m.side, m.price, m.qty)
    for b in books.values():
        if type(b) is AuctionTape:
            continue
        bids, asks = b.depth(1)
        b.top = (*(bids[0] if bids else (0, 0, 0)), *(asks[0] if asks else (0, 0, 0)))
    return books


class FeedClient:
    def __init__(self, endpoint: str, snapshot_endpoint: str, symbols: list[str] | None = None,
                 clock=time.monotonic_ns, heartbeat_timeout_s: float = 3.0, snapshot_timeout_s: float = 2.0,
                 on_update=None, ctx: zmq.Context | None = None, rcvhwm: int = 10_000):
        self.endpoint, self.snapshot_endpoint = endpoint, snapshot_endpoint
        self.symbols = list(symbols) if symbols is not None else None
        self.clock = clock
        self.heartbeat_timeout_ns = int(heartbeat_timeout_s * NS)
        self.snapshot_timeout_ns = int(snapshot_timeout_s * NS)
        self.on_update = on_update
        self.drop = None  # test hook: drop(msg) -> True discards msg as if lost
        self.books: dict[str, LocalBook] = {}  # synced instruments
        self.auctions: AuctionTape | None = None  # the AUCTION channel, once synced
        self.pending: dict[str, list] = {}  # instruments waiting for a snapshot -> buffered messages
        self.all_pending = False  # symbols None and no snapshot yet: every instrument is pending
        self.dead = False
        self.session: int | None = None  # the publisher session the books belong to: the newest seen
        self.stats: Counter[str] = Counter()
        self._own_ctx = ctx is None
        self._ctx = ctx or zmq.Context()
        self._rcvhwm = rcvhwm
        self._sub = self._dealer = None
        self._request_id = 0
        self._request_sent_ns: int | None = None
        self._snap: list = []  # snapshot messages of the reply being received
        self._last_heard_ns = 0
        self._decode = fp.feed_frame_decoder.decode

    # ------------------------------------------------------------ lifecycle

    def connect(self) -> FeedClient:
        """Subscribe, then ask for the snapshot (the order matters: see the module docstring)."""
        sub = self._sub = self._ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, self._rcvhwm)
        if self.symbols is None:
            sub.setsockopt(zmq.SUBSCRIBE, b"")
        else:
            for sym in self.symbols:
                sub.setsockopt(zmq.SUBSCRIBE, fp.topic(sym))
        sub.connect(self.endpoint)
        d = self._dealer = self._ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.LINGER, 0)
        d.connect(self.snapshot_endpoint)
        self._last_heard_ns = self.clock()
        self._resync_all()
        return self

    def close(self) -> None:
        for s in (self._sub, self._dealer):
            if s is not None:
                s.close(linger=0)
        self._sub = self._dealer = None
        if self._own_ctx:
            self._ctx.term()

    # ------------------------------------------------------------------ API

    @property
    def synced(self) -> bool:
        """Every wanted instrument has a book (the AUCTION channel its tape) and none is waiting for a snapshot."""
        return not self.pending and not self.all_pending and not self.dead and (
            self.symbols is None or all(self.channel(s) is not None for s in self.symbols))

    def book(self, symbol: str) -> LocalBook | None:
        return self.books.get(symbol)

    def channel(self, symbol: str) -> LocalBook | AuctionTape | None:
        """The synced book of an instrument, or the tape of the AUCTION channel; None while pending."""
        return self.auctions if symbol == fp.AUCTION_SYMBOL else self.books.get(symbol)

    def auction_result(self, indicative: bool = False) -> fp.AuctionResult | None:
        """The last (final, or indicative) auction result; None if none yet or the channel is not synced."""
        tape = self.auctions
        return None if tape is None else tape.indicative if indicative else tape.result

    def auction_prices(self, indicative: bool = False) -> dict[str, fp.AuctionPrice]:
        """Per synced instrument its last (final, or indicative) auction price, if it has one. O(instruments)."""
        return {s: p for s, b in self.books.items() if (p := b.indicative if indicative else b.auction) is not None}

    def poll(self, timeout_ms: int = 0, max_msgs: int = 10_000) -> int:
        """Handle what arrives within timeout_ms (frames until max_msgs feed messages); then the timers."""
        handled = 0
        sub, dealer = self._sub, self._dealer
        if timeout_ms:
            zmq.select([sub, dealer], [], [], timeout_ms / 1000)
        while handled < max_msgs:
            try:
                _topic, payload = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                msgs = self._decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.stats["undecodable"] += 1
                continue
            handled += len(msgs)
            for msg in msgs:
                if self.drop is not None and self.drop(msg):
                    self.stats["dropped_by_hook"] += 1
                    continue
                self._on_feed(msg)
        for _ in range(1000):
            try:
                frame = dealer.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._on_snapshot_frame(frame)
        self._timers()
        return handled

    # ------------------------------------------------------------ internals

    def _on_feed(self, m) -> None:
        if m.session != self.session and not self._adopt(m.session):
            return
        self._last_heard_ns = self.clock()
        if self.dead:
            self.dead = False
            self.stats["revived"] += 1
        sym = m.symbol
        buf = self.pending.get(sym)
        b = self.channel(sym)
        if buf is None and self.all_pending and b is None:
            buf = self.pending[sym] = []
        if buf is not None:
            buf.append(m)
            return
        if b is None:
            if self.symbols is None or sym in self.symbols:
                self.stats["unknown_instrument"] += 1
                self._resync([sym], [m])
            return
        self._live(b, m)

    def _set_channel(self, symbol: str, b: LocalBook | AuctionTape | None) -> None:
        if symbol == fp.AUCTION_SYMBOL:
            self.auctions = b
        elif b is None:
            self.books.pop(symbol, None)
        else:
            self.books[symbol] = b

    def _live(self, b: LocalBook | AuctionTape, m) -> bool:
        """Apply or drop m on synced book b; False (and the instrument pending again) on a gap."""
        if type(m) is fp.Heartbeat:
            if m.seq > b.seq:
                self.stats["gaps"] += 1
                self._resync([b.symbol], [])
                return False
            return True
        if m.seq <= b.seq:
            self.stats["duplicates"] += 1
            return True
        if m.seq != b.seq + 1:
            self.stats["gaps"] += 1
            self._resync([b.symbol], [m])
            return False
        b.apply(m)
        self.stats["applied"] += 1
        if self.on_update is not None:
            self.on_update(m)
        return True

    def _resync(self, symbols: list[str], buffered: list) -> None:
        for s in symbols:
            self._set_channel(s, None)
            self.pending.setdefault(s, []).extend(buffered)
        self.stats["resyncs"] += 1
        self._request(symbols)

    def _adopt(self, session: int) -> bool:
        """A message or snapshot of another publisher session: False if it is older (stale, ignored); if
        newer, the publisher restarted: every book is dropped and resynced (True: the session is now current)."""
        if self.session is not None:
            if session < self.session:
                self.stats["stale_session"] += 1
                return False
            self.stats["publisher_restarts"] += 1
            self._resync_all()
        self.session = session
        return True

    def _resync_all(self) -> None:
        """Every wanted instrument pending with an empty buffer, no book, one snapshot request for them all."""
        wanted = self.symbols if self.symbols is not None else [*self.books, *self.pending]
        if self.symbols is None and self.auctions is not None:
            wanted.append(fp.AUCTION_SYMBOL)
        self.books.clear()
        self.auctions = None
        self.all_pending = self.symbols is None
        self.pending = {s: [] for s in wanted}
        self._request(self.symbols or [])

    def _request(self, symbols: list[str]) -> None:
        self._request_id += 1
        self._dealer.send(fp.encoder.encode(fp.SnapshotRequest(self._request_id, list(symbols))))
        self._request_sent_ns = self.clock()
        self.stats["snapshot_requests"] += 1

    def _on_snapshot_frame(self, frame: bytes) -> None:
        try:
            msgs = fp.snapshot_frame_decoder.decode(frame)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.stats["undecodable"] += 1
            return
        for m in msgs:
            if type(m) is fp.SnapshotRejected:  # never for this client's own requests; counted, the timer retries
                self.stats["snapshot_rejected"] += 1
            elif type(m) is fp.SnapshotEnd:
                snap, self._snap = self._snap, []
                # a newer session: the publisher restarted, resync (this reply answered a request of the old one)
                if m.session == self.session or (self.session is None and self._adopt(m.session)):
                    self._install([s for s in snap if s.session == m.session])
                else:
                    self._adopt(m.session)
            else:
                self._snap.append(m)

    def _install(self, snap: list) -> None:
        """Install every pending instrument of a snapshot, then replay its buffer past the snapshot's seq."""
        self._last_heard_ns = self.clock()
        got = {sym: b for sym, b in snapshot_books(snap).items()
               if sym in self.pending or (self.all_pending and self.channel(sym) is None)}
        self.all_pending = False
        for sym, b in got.items():
            buffered = self.pending.pop(sym, [])
            self._set_channel(sym, b)
            self.stats["snapshots_installed"] += 1
            for i, m in enumerate(buffered):
                if not self._live(b, m):  # a gap: pending again, keep what came after it
                    self.pending[sym].extend(buffered[i + 1:])
                    break
        if not self.pending:
            self._request_sent_ns = None

    def _timers(self) -> None:
        now = self.clock()
        if not self.dead and now - self._last_heard_ns > self.heartbeat_timeout_ns:
            self.dead = True
            self.stats["dead"] += 1
            self.session = None  # whichever publisher speaks next is adopted (even if its clock went back)
            self._resync_all()
            return
        if (self.pending or self.all_pending) and self._request_sent_ns is not None \
                and now - self._request_sent_ns > self.snapshot_timeout_ns:
            self.stats["snapshot_timeouts"] += 1
            self._request([] if self.all_pending else list(self.pending))
