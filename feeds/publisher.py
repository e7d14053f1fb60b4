"""``FeedPublisher``: turns the engine's event records into market data (PUB) and serves snapshots (ROUTER).

It reads events, never a book: ``on_events(records)`` (pass it as the
Gateway's ``on_events``) folds each batch into the publisher's OWN books, one
per instrument, and publishes what changed (see ``feeds.protocol`` for the
messages, frames, sequencing and sessions). The work on the records is
compiled (``feeds.fold``): one call folds the whole batch into message rows,
one more encodes them, per instrument, into msgpack frames of up to
``protocol.MAX_FRAME_MESSAGES`` messages in a reused buffer; Python then only
sends each frame (topic, payload). No Python object per event or message.

How L3 is derived from the events (docs/matching-rules.md, *Event order*):
* the publisher keeps every resting order (id, side, price, leaves) and each
  level's queue; an ``Accepted`` order, or a non-in-place ``Replaced`` one, is
  the *incoming* order, out of the book;
* a maker ``Fill``, a ``Cancelled`` of a resting order and an in-place
  ``Replaced`` (same price, leaves not increased) change a resting order and
  are followed by the ``BookLevel`` of its level, which then equals the
  publisher's level exactly (orders and quantity);
* a ``BookLevel`` showing one order more than the publisher's level, with the
  incoming order's leaves more quantity, at its side and price, is the
  incoming order starting to rest: ``OrderAdded`` at the queue's tail;
* a ``Cancelled`` of the incoming order (IOC, STP, market protection) and
  taker fills change no queue. A ``BookLevel`` that fits neither case is
  counted in ``stats["l3_mismatch"]`` (never seen when the publisher had every
  event from the start; L2 still follows the event).

Invariants: per instrument, messages get seq 1, 2, 3, ... in event order;
after each message the publisher's L2 (from ``BookLevel``) and L3 queues equal
the engine's book at that event; a snapshot is taken under the same lock as
the fold, so it is the book exactly at the seq it names. Everything it sends
carries its ``session`` (a restarted publisher has a newer one: subscribers
drop their books and resync). The publisher must see the engine's events from
its start (or from a journal replay): an event about an order or level it
never saw is counted in ``stats["fold_errors"]`` and skipped, and an
instrument's status before its first ``InstrumentStatusChanged`` is inferred
from ``open_ns`` and the clock.

The call auction: the publisher folds the auction's events like any others
(``feeds.protocol`` lists what it publishes; the private ``PACKAGE_*`` events
are dropped in the fold). The engine has no clock, so an ``AuctionResult``'s
``solve_us`` comes from the venue: ``auction_solve_us(auction, indicative)``,
if given, is called (in ``on_events``' thread, under the lock) once per
auction result and returns the clearing's wall time in microseconds (0 when
unknown, e.g. during a journal replay). The ``AUCTION_SYMBOL`` channel is
sequenced, heartbeated and snapshotted like an instrument.

Threads: ``on_events`` runs in the caller's thread (the gateway loop);
``poll(timeout_ms)`` serves snapshot requests and sends heartbeats (at most one
per instrument per ``heartbeat_ns`` of ``clock``) and runs in the owner's
thread, or in the publisher's own thread after ``start()``. A lock serialises
the fold, the PUB socket and snapshots; the ROUTER is used only by ``poll``.

Never blocks the engine: the PUB socket drops for a subscriber whose queue
(``sndhwm`` frames) is full; the subscriber sees a seq gap and resyncs.

Costs per event: O(1) dict work plus O(log levels) in compiled code, about a
microsecond per message all told, and two socket sends per frame; a snapshot
is O(levels of the requested instruments + all resting orders); a heartbeat
round is O(instruments), one frame per instrument.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import msgspec
import numpy as np
import zmq

from engine.codes import InstrumentStatus
from feeds import protocol as fp
from feeds.fold import (
    AUCTION_RESULT,
    G_EVENT_SEQ,
    G_FOLD_ERRORS,
    G_L3_MISMATCH,
    G_TS,
    HEARTBEAT,
    R_AUCTION,
    R_CODE,
    R_INDICATIVE,
    R_SEQ,
    R_SOLVE_US,
    ROW,
    Fold,
    FrameEncoder,
    row_message,
)

log = logging.getLogger("cx.feeds")

_NOBLOCK = int(zmq.NOBLOCK)
_MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
SNAPSHOT_FRAME = 1000  # snapshot messages per reply frame at most
MAX_REQUESTS_PER_POLL = 64


class FeedPublisher:
    def __init__(self, instruments, endpoint: str = "tcp://127.0.0.1:5556",
                 snapshot_endpoint: str = "tcp://127.0.0.1:5557", clock=time.time_ns,
                 heartbeat_ns: int = 10**9, sndhwm: int = 2000, ctx: zmq.Context | None = None,
                 session: int | None = None, auction_solve_us=None):
        """``instruments``: the engine's instrument list (ids = positions). Endpoints may use port ``*``.

        ``sndhwm``: frames queued per subscriber before PUB drops (a frame holds up to
        ``protocol.MAX_FRAME_MESSAGES`` messages). ``session``: the id in every message, by default the
        wall-clock time of construction in ns (a restarted publisher must get a larger one).
        ``auction_solve_us(auction, indicative) -> int``: the venue's solve time of an auction (module docstring)."""
        self.symbols = [ins.symbol for ins in instruments]
        self.instrument_of = {s: i for i, s in enumerate(self.symbols)}
        self._open_ns = [ins.open_ns for ins in instruments]
        self._topics = [fp.topic(s) for s in (*self.symbols, fp.AUCTION_SYMBOL)]  # channel ids: instruments, AUCTION
        self.auction_solve_us = auction_solve_us
        self.session = time.time_ns() if session is None else session
        self.endpoint_requested, self.snapshot_endpoint_requested = endpoint, snapshot_endpoint
        self.endpoint = self.snapshot_endpoint = ""
        self.clock = clock
        self.heartbeat_ns = heartbeat_ns
        self.sndhwm = sndhwm
        self.stats: Counter[str] = Counter()
        self._fold = Fold(len(self.symbols))
        self._encoder = FrameEncoder([*self.symbols, fp.AUCTION_SYMBOL])
        self._last_heartbeat_ns: int | None = None
        self._lock = threading.Lock()
        self._own_ctx = ctx is None
        self._ctx = ctx
        self._pub = self._router = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.published = 0  # sequenced messages handed to the PUB socket
        self._send = None

    @property
    def last_event_seq(self) -> int:
        """The last engine event folded."""
        return int(self._fold.g[G_EVENT_SEQ])

    @property
    def last_ts(self) -> int:
        return int(self._fold.g[G_TS])

    def seq(self, symbol: str) -> int:
        """The instrument's (or the AUCTION channel's) last published seq."""
        return int(self._fold.seqs[-1 if symbol == fp.AUCTION_SYMBOL else self.instrument_of[symbol]])

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

    def on_events(self, records) -> None:
        """Fold a batch of EVENT_DTYPE records into the books and publish what changed. O(events)."""
        with self._lock:
            before = self._fold.g[[G_FOLD_ERRORS, G_L3_MISMATCH]]
            rows = self._fold.run(records)
            if self.auction_solve_us is not None:
                self._solve_times(rows)
            if len(rows):
                self.published += self._send_rows(rows)
            errors, mismatches = self._fold.g[[G_FOLD_ERRORS, G_L3_MISMATCH]] - before
        if errors or mismatches:  # an order or level it never saw (it missed the start), or an odd BookLevel
            self.stats["fold_errors"] += int(errors)
            self.stats["l3_mismatch"] += int(mismatches)
            log.warning("feed fold: %d events about unknown orders or levels skipped, %d BookLevels that disagree "
                        "with L3, in the batch ending at event %d", errors, mismatches, self.last_event_seq)

    def _solve_times(self, rows: np.ndarray) -> None:
        """Stamp each AuctionResult row (and the fold's copy of the last one) with the venue's solve time."""
        for k in np.flatnonzero(rows[:, R_CODE] == AUCTION_RESULT).tolist():
            row = rows[k]
            row[R_SOLVE_US] = self.auction_solve_us(int(row[R_AUCTION]), int(row[R_INDICATIVE]))
            last = self._fold.results[row[R_INDICATIVE]]
            if last[R_SEQ] == row[R_SEQ]:
                last[R_SOLVE_US] = row[R_SOLVE_US]

    def _send_rows(self, rows: np.ndarray) -> int:
        """Encode message rows into frames and send each, never blocking (PUB drops for a full subscriber).

        Returns the number of messages sent."""
        buf, frames = self._encoder.encode(rows, self.session)
        send, topics = self._send, self._topics
        sent = 0
        for inst, start, end, count in frames:
            try:
                send(topics[inst], _MORE_NOBLOCK)
                send(buf[start:end], _NOBLOCK)
                sent += count
            except zmq.Again:  # PUB drops rather than blocks; counted if the socket ever says so
                self.stats["dropped"] += 1
        return sent

    # ------------------------------------------------- heartbeats, snapshots

    def heartbeat(self, now: int | None = None, force: bool = False) -> bool:
        """One Heartbeat per instrument if ``heartbeat_ns`` passed since the last round. O(instruments)."""
        now = self.clock() if now is None else now
        last = self._last_heartbeat_ns
        if not force and last is not None and now - last < self.heartbeat_ns:
            return False
        self._last_heartbeat_ns = now
        with self._lock:
            seqs = self._fold.seqs
            rows = np.zeros((len(seqs), ROW), np.int64)
            rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4] = (
                HEARTBEAT, np.arange(len(seqs)), seqs, self.last_event_seq, now)
            self._send_rows(rows)
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
        """The reply to a request: per instrument SnapshotInstrument, its levels, its orders; the SnapshotAuction
        if every instrument or ``AUCTION_SYMBOL`` was asked for; then SnapshotEnd.

        O(levels of the requested instruments + all resting orders)."""
        now = self.clock()
        with self._lock:
            fold = self._fold
            wanted = request.symbols or self.symbols
            found = [self.instrument_of[s] for s in wanted if s in self.instrument_of]
            orders: dict[int, list] = {i: [] for i in found}
            for oid, inst, side, price, leaves in fold.resting(found).tolist():
                orders[inst].append((oid, side, price, leaves))
            out = []
            for inst in found:
                head = (self.symbols[inst], self.session, int(fold.seqs[inst]), self.last_event_seq, self.last_ts)
                bids, asks = fold.levels(inst, 0), fold.levels(inst, 1)
                status = int(fold.status[inst])
                if status < 0:  # no InstrumentStatusChanged yet: from the listing and the clock
                    status = InstrumentStatus.PRE_OPEN if now < self._open_ns[inst] else InstrumentStatus.OPEN
                final, indicative = (self._last(fold.prices[inst, k], head[0]) for k in (0, 1))
                out.append(fp.SnapshotInstrument(*head, status, len(bids), len(asks), len(orders[inst]), final,
                                                 indicative))
                for side, levels in ((0, bids), (1, asks)):
                    out.extend(fp.SnapshotLevel(*head, side, *level) for level in levels)
                out.extend(fp.SnapshotOrder(*head, *o) for o in orders[inst])
            if not request.symbols or fp.AUCTION_SYMBOL in request.symbols:
                out.append(fp.SnapshotAuction(fp.AUCTION_SYMBOL, self.session, int(fold.seqs[-1]), self.last_event_seq,
                                              self.last_ts, *(self._last(r, fp.AUCTION_SYMBOL) for r in fold.results)))
            unknown = [s for s in wanted if s not in self.instrument_of and s != fp.AUCTION_SYMBOL]
            out.append(fp.SnapshotEnd(request.request_id, self.session, self.last_event_seq, self.last_ts,
                                      len(found), unknown))
        return out

    def _last(self, row: np.ndarray, symbol: str):
        """The message of a kept row (the fold's last auction price or result); None if there is none yet."""
        return row_message(row, symbol, self.session) if row[R_SEQ] else None

    def _serve(self, frames: list[bytes]) -> None:
        rid = frames[0]
        try:
            request = fp.request_decoder.decode(frames[-1])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.stats["bad_requests"] += 1
            reply = [fp.SnapshotRejected(_request_id_of(frames[-1]), self.session, f"not a SnapshotRequest: {exc}")]
        else:
            reply = self.snapshot(request)
        self.stats["snapshots"] += 1
        for i in range(0, len(reply), SNAPSHOT_FRAME):
            try:
                self._router.send_multipart([rid, fp.encoder.encode(reply[i: i + SNAPSHOT_FRAME])], _NOBLOCK)
            except zmq.ZMQError:
                self.stats["snapshot_send_dropped"] += 1
                return


def _request_id_of(frame: bytes) -> int:
    """The ``request_id`` of an unreadable request when its map still has an integer one, else -1."""
    try:
        raw = msgspec.msgpack.decode(frame)
    except msgspec.DecodeError:
        return -1
    rid = raw.get("request_id") if isinstance(raw, dict) else None
    return rid if type(rid) is int and -(2**63) <= rid < 2**63 else -1
