"""The order-entry gateway: a ZeroMQ ROUTER in front of the matching engine.

One thread runs one loop (``poll_once``): drain every frame that is ready (up
to ``max_batch``), decode and check each message, turn the valid ones into
command records, hand them to the engine as ONE batch, route the batch's
events back as execution reports, then send each connection everything it
got in this pass as one frame. So under load the cost of crossing into the
engine, and of a socket send, is paid per batch, and replies leave in the
order the engine produced them.

What the gateway owns, and nothing more (the books are the engine's):
* sessions (``gateway.sessions``): logon, per-session sequencing and resend,
  heartbeats, cancel on disconnect, throttling;
* authentication: CurveZMQ with one key per firm, checked by a ZAP handler in
  this same loop; the firm of a message is the one its key names (plain text
  only where the configuration allows it, on loopback);
* pre-trade risk per firm: maximum order size, maximum open quantity per
  instrument (open = leaves of live orders, kept from the events, plus orders
  admitted into the batch being built), and the operator's kill switch;
* which live order belongs to which session, so reports reach their owner;
* the same for packages of the call auction (docs/auction.md): a ``NewPackage``
  or ``NewBlockPackage`` becomes one PACKAGE record followed by its ALTERNATIVE
  and LEG records, contiguous in the batch (a block bid expanded here into one
  alternative per feasible start hour); the gateway checks what it can
  (symbols, sizes, counts, ticks: ``engine.auction.orders`` validation, and the
  firm's maximum order size per leg) and answers a failure with a typed
  ``PackageRejected``; package events reach the package's owner, and a
  session's live packages are cancelled on disconnect (DISCONNECT) and by the
  kill switch (ADMIN);
* the auction schedule: a RUN_AUCTION record at every multiple of
  ``auction_interval_s`` on the gateway clock and an indicative one at every
  other multiple of ``indicative_interval_s`` (and on the operator's
  ``auction`` request), only when the engine is an auction ``Market``
  (``runs_auctions``; without one, packages are refused). An auction blocks
  the loop for its clearing (at most the solver's time limit plus applying the
  result), which is what a batch of the engine costs anyway.

The work one message can cause is bounded by a small multiple of its size:
decoding is O(bytes) (frames above ``MAX_FRAME_BYTES`` are refused unread);
an order, cancel or modify is O(1) here and one command; a ``MassQuote`` is
at most ``MAX_QUOTE_ENTRIES`` commands; a ``NewPackage`` costs O(its legs),
which are in the frame; a ``NewBlockPackage`` bid is first sized from its
requests alone (``_block_bid_too_large``: every start hour of every clipped
window counted, O(requests)) and refused before any expansion if it could
exceed ``MAX_PACKAGE_LEGS`` legs or ``MAX_ALTERNATIVES`` alternatives, so an
expansion produces at most ``MAX_PACKAGE_LEGS`` (8,192) legs from a frame of
a few dozen bytes per request; a block offer is at most ``MAX_LEGS`` legs.

Bounds per client (none of them can be lifted by a client): a firm has at most ``max_sessions`` session
names a day; a connection queues at most ``SEND_QUEUE_FRAMES`` frames out and ``RECEIVE_QUEUE_FRAMES`` in
(ROUTER_MANDATORY: a full outgoing queue cuts the session off, ``SystemEvent(SLOW_CONSUMER)``); a pass of
the loop drains at most ``PASS_MESSAGES`` messages or ``PASS_BUDGET_NS`` of time, and serves one session at
most ``SESSION_PASS_SHARE`` messages, the rest waiting in order in that session's queue (past
``MAX_DEFERRED``, or refused THROTTLED for ``FLOOD_SECONDS`` of its rate: ``SystemEvent(FLOODING)``); a
resend is paced at ``RESEND_PER_PASS`` messages a pass; a connection with no session gets ``LogonRequired``
for each frame, and a frame too big to be a Logon is not decoded. So one client costs the others at most
its share of each pass, and its memory is bounded by its queues (plus its session's store of the day).

Bad input never reaches the engine: undecodable frames, unknown message types,
wrong field types and oversized frames are answered with ``ProtocolError``
(unsequenced) and counted in ``stats``; unknown symbols and risk breaches get
a sequenced ``Rejected`` with a reason code.

Time comes from the injected ``clock`` (ns), stamped on every command; tests
drive it. Without order flow, an ``AdvanceTime`` goes to the engine every
``time_advance_ms`` so expiries and gate closures still happen.

Behind a journal (``journal.sequencer.JournaledExchange``) every batch carries
a ``gateway.sessions.BatchNote``: the session of each command and the
sequenced messages the gateway made itself since the previous batch. A pass
that made such a message ends with a batch (an ``AdvanceTime`` when there is
no command), so no sequenced message leaves before it is in the journal
(replies leave at the end of the pass, after the batch's fsync). After a
restart, ``replay_commands`` (the ``on_commands`` of a replay of the whole
journal, before ``start``) rebuilds every session's store, the orders and
their owners, the open quantities and the kill switches: a client resumes
with ``Logon(next_seq)`` as if the venue had never stopped. Its cost is the
routing of every event of the journal once (the venue's feeds replay it
anyway). Without a journal the sessions live in memory only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping

import msgspec
import numpy as np
import zmq

from engine.auction.market import Market
from engine.auction.orders import (
    AUCTION_REJECT_TEXT,
    MAX_ALTERNATIVES,
    MAX_LEGS,
    Alternative,
    Leg,
    PackageBid,
    PackageOffer,
    expand_block_request,
    instrument_lookup,
    package_offer_from_block,
    validate_block_request,
    validate_package_bid,
    validate_package_offer,
)
from engine.auction.orders import BlockOffer as EngineBlockOffer
from engine.auction.orders import BlockRequest as EngineBlockRequest
from engine.codes import (
    REJECT_TEXT,
    AuctionReject,
    CancelReason,
    CommandKind,
    EventKind,
    InstrumentStatus,
    PackageCommandKind,
    PackageEventKind,
    RejectReason,
    Side,
    TimeInForce,
)
from engine.instruments import NS_PER_HOUR, NS_PER_SECOND, ProductKey
from engine.records import COMMAND_DTYPE, EVENT_DTYPE
from gateway import protocol as p
from gateway.admin_protocol import (
    AdminReply,
    AdminRequest,
    AuctionSummary,
    VenueStatus,
    admin_encoder,
    request_decoder,
)
from gateway.config import GatewayConfig
from gateway.sessions import NS_PER_MS, BatchNote, Session, SessionTable, decode_note, encode_note
from journal.sequencer import JournaledExchange

log = logging.getLogger("cx.gateway")

_EV = {name: i for i, name in enumerate(EVENT_DTYPE.names)}
_TS, _KIND, _SIDE, _REASON, _LIQ = (_EV[k] for k in ("ts", "kind", "side", "reason", "liquidity"))
_INST, _FIRM, _OID, _CLID, _PRICE, _QTY, _LEAVES, _CUM, _TID = (
    _EV[k] for k in ("instrument", "firm", "order_id", "client_order_id", "price", "qty", "leaves", "cum", "trade_id"))
_ROW_KIND = COMMAND_DTYPE.names.index("kind")
_STATUS, _COUNT = _EV["status"], _EV["count"]
PK, PE = PackageCommandKind, PackageEventKind
HARD_FRAME_LIMIT = 1 << 20  # ZeroMQ drops a connection that sends more than this in one frame
# plain ints: pyzmq's flag enums cost more than the send itself on this path
SEND_QUEUE_FRAMES = 2_000  # frames (of up to OUTBOX_FRAME messages) queued to one connection at most
RECEIVE_QUEUE_FRAMES = 10_000  # frames queued from one connection at most (ZeroMQ fair-queues between them)
RESEND_PER_PASS = 4_096  # messages of a session's resend queued per pass of the loop
PASS_MESSAGES = 4_096  # a pass stops draining frames once it has this many messages: one flood cannot hold it
MAX_LOGON_BYTES = 512  # a Logon frame is smaller than this
LOGON_REQUIRED_TEXT = "not logged on: send Logon (with next_seq)"
PASS_BUDGET_NS = 2_000_000  # a pass stops draining frames after this much time, so its replies leave
SESSION_PASS_SHARE = 512  # messages of one session served per pass; more wait for the next passes (fairness)
MAX_DEFERRED = 65_536  # messages one session may have waiting; more: it is flooding
_NOBLOCK = int(zmq.NOBLOCK)
_MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
RECOVERED_SESSION = "recovered"  # owner of replayed orders whose batch names no session (journaled without a note)
OUTBOX_FRAME = 1024  # messages per frame at most


def _row(kind, side=0, ord_type=0, tif=0, stp=0, post_only=0, reason=0, instrument=-1, firm=-1, ts=0,
         client_order_id=0, order_id=0, price=0, qty=0, price2=0, qty2=0, expire_ts=0) -> tuple:
    """A command record as a tuple in COMMAND_DTYPE field order."""
    return (kind, side, ord_type, tif, stp, post_only, reason, instrument, firm, ts, client_order_id, order_id,
            price, qty, price2, qty2, expire_ts)


class _Order:
    """What the gateway knows of a live order: whose it is and how much is open."""

    __slots__ = ("owner", "instrument", "leaves")

    def __init__(self, owner: Session, instrument: int, leaves: int):
        self.owner = owner
        self.instrument = instrument
        self.leaves = leaves


class _Package:
    """A live package: its owner and what its reports repeat."""

    __slots__ = ("owner", "client_order_id", "side")

    def __init__(self, owner: Session, client_order_id: int, side: int):
        self.owner = owner
        self.client_order_id = client_order_id
        self.side = side


def _block_bid_too_large(requests: list[p.BlockRequest], first: int, end: int) -> AuctionReject:
    """TOO_MANY_LEGS / TOO_MANY_ALTERNATIVES when the expansion of these block requests, with their windows clipped
    to the listed hours [first, end), could exceed the package limits; else NONE. An upper bound (every start
    hour counted as feasible) computed without expanding: O(requests)."""
    alternatives = legs = 0
    for r in requests:
        if r.hours > MAX_LEGS:
            return AuctionReject.TOO_MANY_LEGS
        if r.hours <= 0:
            continue  # refused by validation
        start = -(-max(r.window_start, first) // NS_PER_HOUR) * NS_PER_HOUR
        starts = max(0, (min(r.window_end, end) - start) // NS_PER_HOUR - r.hours + 1)
        alternatives += starts
        legs += starts * r.hours
    if legs > p.MAX_PACKAGE_LEGS:
        return AuctionReject.TOO_MANY_LEGS
    return AuctionReject.TOO_MANY_ALTERNATIVES if alternatives > MAX_ALTERNATIVES else AuctionReject.NONE


class _OpenHours(Mapping):
    """The instrument lookup restricted to hours still before their gate closure at ``now``: a block request
    expands only into start hours the engine accepts. O(1) per lookup."""

    def __init__(self, lookup: dict, instruments: dict, now: int):
        self._lookup, self._instruments, self._now = lookup, instruments, now

    def __getitem__(self, key):
        inst = self._lookup[key]
        if self._instruments[inst].close_ns <= self._now:
            raise KeyError(key)
        return inst

    def __iter__(self):
        return (k for k, i in self._lookup.items() if self._instruments[i].close_ns > self._now)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def runs_auctions(engine) -> bool:
    """Whether ``engine`` (or the exchange a journal wraps) is an ``engine.auction.market.Market``."""
    return any(isinstance(e, Market) for e in (engine, getattr(engine, "exchange", None)))


class Gateway:
    def __init__(self, config: GatewayConfig, engine, clock=time.time_ns, on_events=None):
        """``engine``: an object with process_batch / last_events / last_command_ends / instruments.

        ``on_events(events)`` (optional) receives every batch's event records (for the feeds)."""
        self.config = config
        self.engine = engine
        self.clock = clock
        self.on_events = on_events
        self.symbols = [ins.symbol for ins in engine.instruments]
        self.instrument_of = {s: i for i, s in enumerate(self.symbols)}
        self.firm_ids = {f.name: i for i, f in enumerate(config.firms)}
        self.instruments = {ins.instrument_id: ins for ins in engine.instruments}
        self.lookup = instrument_lookup(engine.instruments)
        self.products = {ins.product for ins in engine.instruments}
        starts = [ins.delivery_start_ns for ins in engine.instruments]
        self._listed_span = (min(starts, default=0), max(starts, default=0) + NS_PER_HOUR)
        self.auctions = runs_auctions(engine)
        self.packages: dict[int, _Package] = {}  # live packages by package id
        self.last_auction: AuctionSummary | None = None
        self.clear_us = 0  # wall time of the engine call of the last batch with a RUN_AUCTION, microseconds
        self._timing_auction = False
        self._auction: tuple[int, bool] = (0, False)  # (number, final) of the auction whose events are routed
        self._traded: list[tuple[str, int, int]] = []
        self._next_auction_ns = self._next_indicative_ns = 0
        self.sessions = SessionTable()
        self.orders: dict[int, _Order] = {}
        self.open_qty: Counter[tuple[int, int]] = Counter()  # (firm, instrument) -> leaves of live orders
        self.quote_orders: dict[tuple[int, int, int], int] = {}  # (firm, instrument, side) -> order id
        self.suspended: set[int] = set()
        self.stats: Counter[str] = Counter()
        self._outbox: dict[bytes, list[bytes]] = {}  # routing id -> encoded messages of this pass
        self._rows: list[tuple] = []  # the batch being built
        self._origins: list[Session | None] = []  # who sent each row (None: the gateway itself)
        self._journaled = isinstance(engine, JournaledExchange)
        self._told: list[tuple[Session, bytes]] = []  # journaled only: the gateway's own messages since the last batch
        self._suspension_changed = False  # journaled only: the next batch's note carries ``suspended``
        self._carried: list[Session | None] = []  # replay: origins of a batch's commands beyond the last engine call
        self._sessions_of: Counter[int] = Counter()  # firm id -> sessions it has
        self._resending: set[Session] = set()  # sessions catching up after a logon (Session.resend_from)
        self._pass_messages = 0  # messages decoded in this pass of the loop
        self._pass_load: Counter[Session] = Counter()  # messages served per session in this pass
        self._deferred: dict[Session, deque] = {}  # sessions over their share: messages waiting, in order
        self._recovered = False  # sessions were rebuilt from a journal: those that do not come back are timed out
        self._absent: dict[Session, int] = {}  # recovered sessions not logged on again -> their deadline
        self._pending: Counter[tuple[int, int]] = Counter()  # quantity admitted into the batch
        self._last_engine_ns = 0
        self._last_timers_ns = 0
        self._encode = msgspec.msgpack.Encoder().encode
        self._logon_required = self._encode(p.LogonRequired(LOGON_REQUIRED_TEXT))  # to a frame not looked into
        self._decode = p.decode_client_frame
        self._handlers = {p.NewOrder: self._new_order, p.Cancel: self._cancel, p.Modify: self._modify,
                          p.MassCancel: self._mass_cancel, p.MassQuote: self._mass_quote,
                          p.Heartbeat: self._heartbeat, p.Logout: self._logout, p.NewPackage: self._new_package,
                          p.NewBlockPackage: self._new_block_package, p.CancelPackage: self._cancel_package}
        self._ctx: zmq.Context | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.error: BaseException | None = None  # what ended the loop, if it failed
        self.endpoint = self.admin_endpoint = ""

    def _session(self, fid: int, name: str) -> Session:
        firm = self.config.firms[fid]
        s = self.sessions.by_key.get((firm.name, name))
        if s is None:
            s = self.sessions.by_key[(firm.name, name)] = Session(fid, firm.name, name, firm.max_msgs_per_s)
            self._sessions_of[fid] += 1
        return s

    # ------------------------------------------------------------ lifecycle

    def bind(self) -> Gateway:
        """Create the sockets (ZAP handler first, then order entry and admin)."""
        cfg = self.config
        self._ctx = zmq.Context()
        self._poller = zmq.Poller()
        self._zap = None
        if not cfg.plaintext:
            self._curve_firms = {zmq.utils.z85.decode(f.public_key): f.name for f in cfg.firms}
            self._zap = self._ctx.socket(zmq.REP)
            self._zap.bind("inproc://zeromq.zap.01")
            self._poller.register(self._zap, zmq.POLLIN)
        r = self._router = self._ctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.LINGER, 0)
        r.setsockopt(zmq.MAXMSGSIZE, HARD_FRAME_LIMIT)
        r.setsockopt(zmq.SNDHWM, SEND_QUEUE_FRAMES)  # per connection; a client that leaves more unread is cut off
        r.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE_FRAMES)  # per connection: a flood waits in its own TCP buffers
        r.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a full queue is an error (EAGAIN) the gateway acts on, not a drop
        if not cfg.plaintext:
            r.curve_server = True
            r.curve_secretkey = cfg.server_secret_key.encode()
            r.zap_domain = b"cx"
        r.bind(cfg.order_entry)
        self.endpoint = r.getsockopt(zmq.LAST_ENDPOINT).decode()
        a = self._admin = self._ctx.socket(zmq.ROUTER)
        a.setsockopt(zmq.LINGER, 0)
        a.bind(cfg.admin)
        self.admin_endpoint = a.getsockopt(zmq.LAST_ENDPOINT).decode()
        self._poller.register(r, zmq.POLLIN)
        self._poller.register(a, zmq.POLLIN)
        log.info("order entry on %s, admin on %s, %s", self.endpoint, self.admin_endpoint,
                 "PLAIN TEXT" if cfg.plaintext else "CurveZMQ")
        return self

    def start(self) -> Gateway:
        """Bind, then run the loop in a background thread."""
        self.bind()
        self._thread = threading.Thread(target=self.run, name="cx-gateway", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """The loop, until stop(). An exception ends it and is kept in ``error`` (the venue must stop)."""
        try:
            while not self._stop.is_set():
                self.poll_once(20)
        except BaseException as exc:
            log.exception("the gateway loop failed; the venue must stop")
            self.error = exc
            self._stop.set()

    @property
    def failed(self) -> bool:
        return self.error is not None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._ctx is not None:
            self._ctx.destroy(linger=0)
            self._ctx = None

    # ---------------------------------------------------------------- loop

    def poll_once(self, timeout_ms: int) -> None:
        ready = dict(self._poller.poll(0 if self._deferred else timeout_ms))
        if self._zap is not None and self._zap in ready:
            self._serve_zap()
        now = self.clock()
        self._pass_messages = 0
        self._pass_load.clear()
        if self._deferred:  # first what sessions over their share left waiting in earlier passes
            self._serve_deferred(now)
        if self._router in ready:
            recv = self._router.recv
            until = time.monotonic_ns() + PASS_BUDGET_NS
            for k in range(self.config.max_batch):  # frames, fair-queued by ZeroMQ between the connections
                try:
                    frames = [recv(_NOBLOCK, copy=False)]
                except zmq.Again:
                    break
                while frames[-1].more:
                    frames.append(recv(0, copy=False))
                self._on_frames(frames, now)
                # the replies of this pass leave now, not after a flood: a bounded pass, in messages and in time
                if self._pass_messages >= PASS_MESSAGES or (k & 63 == 63 and time.monotonic_ns() > until):
                    break
        if self._admin in ready:
            self._serve_admin(now)
        self._timers(now)
        self._auction_schedule(now)
        self._flush(now)
        self._send_outbox(now)

    def _on_frames(self, frames: list[zmq.Frame], now: int) -> None:
        self.stats["frames"] += 1
        rid = frames[0].bytes
        if len(frames) != 2:
            return self._protocol_error(rid, f"expected one frame per message, got {len(frames) - 1}")
        frame = frames[1]
        if len(frame) > p.MAX_FRAME_BYTES:
            self.stats["oversized"] += 1
            return self._protocol_error(rid, f"frame of {len(frame)} bytes is above {p.MAX_FRAME_BYTES}")
        session = self.sessions.by_routing_id.get(rid)
        if session is None:  # only a Logon can help it: the rest of the frame is not decoded
            # a frame too big to be a Logon is not even looked into (a cut-off flood costs little to answer)
            kind, clid = p.what_it_was(frame.buffer) if len(frame) <= MAX_LOGON_BYTES else ("", None)
            if kind != "Logon":
                self._pass_messages += 1
                self.stats["logon_required"] += 1
                return self._send(rid, self._logon_required if not kind else self._encode(
                    p.LogonRequired(LOGON_REQUIRED_TEXT, kind, clid)))
        try:
            msgs = self._decode(frame.buffer)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return self._protocol_error(rid, f"undecodable message: {exc}", *p.what_it_was(frame.buffer))
        self._pass_messages += len(msgs)
        if not msgs:
            return self._protocol_error(rid, "a frame must hold at least one message")
        if session is not None and (session in self._deferred
                                    or self._pass_load[session] + len(msgs) > SESSION_PASS_SHARE) \
                and not any(type(m) is p.Logon for m in msgs):
            return self._defer(session, msgs, now)  # over its share of this pass: served in the next ones, in order
        if session is not None:
            self._pass_load[session] += len(msgs)
        for msg in msgs:
            if type(msg) is p.Logon:
                self._logon(rid, frame, msg, now)
                continue
            session = self.sessions.by_routing_id.get(rid)
            if session is None:  # e.g. a client whose socket ZeroMQ reconnected to a restarted venue
                self.stats["logon_required"] += 1
                return self._send(rid, self._encode(p.LogonRequired(LOGON_REQUIRED_TEXT, type(msg).__name__,
                                                                    getattr(msg, "client_order_id", None))))
            if not self._serve(session, msg, now):
                return None  # cut off: the rest of the frame is not looked at

    def _serve(self, session: Session, msg, now: int) -> bool:
        """Handle one message of a logged-on session; False if that cut the session off (it is flooding)."""
        session.last_heard_ns = now
        self._handlers[type(msg)](session, msg, now)
        if not session.flooding():
            return True
        self._cut_off_flooding(session, now, "kept sending far above the session's message rate (THROTTLED)")
        return False

    def _cut_off_flooding(self, session: Session, now: int, why: str) -> None:
        self._deferred.pop(session, None)
        self.stats["flooding"] += 1
        self._end_session(session, now, "FLOODING", f"{why}: disconnected")

    def _defer(self, session: Session, msgs: list, now: int) -> None:
        """Queue a session's messages behind what it has queued already; past MAX_DEFERRED it is flooding."""
        queue = self._deferred.setdefault(session, deque())
        queue.extend(msgs)
        session.last_heard_ns = now  # it is heard from, whenever its messages are served
        self.stats["deferred"] += len(msgs)
        if len(queue) > MAX_DEFERRED:
            self._cut_off_flooding(session, now, f"more than {MAX_DEFERRED} messages waiting to be served (sent "
                                                 "faster than the gateway serves one session)")

    def _serve_deferred(self, now: int) -> None:
        """Each session with queued messages gets up to SESSION_PASS_SHARE of them served, oldest first."""
        for session, queue in list(self._deferred.items()):
            if session.routing_id is None:  # gone: what it had queued was never served (a client resends)
                del self._deferred[session]
                continue
            rid = session.routing_id
            for _ in range(min(SESSION_PASS_SHARE, len(queue))):
                if not self._serve(session, queue.popleft(), now) or session.routing_id != rid:
                    break  # cut off, or logged out: the rest is dropped below
            self._pass_load[session] = SESSION_PASS_SHARE  # its share of this pass is used
            if not queue or session.routing_id != rid:
                self._deferred.pop(session, None)

    def _protocol_error(self, rid: bytes, text: str, message_type: str = "", clid: int | None = None) -> None:
        self.stats["protocol_errors"] += 1
        log.debug("protocol error from %r: %s", rid, text)
        self._send(rid, self._encode(p.ProtocolError(text[:200], message_type, clid)))

    def _send(self, rid: bytes, payload: bytes) -> bool:
        """Queue one frame to a connection; False if its queue is full (``SEND_QUEUE_FRAMES`` unread). A frame
        to a peer that is gone is dropped (the session's store keeps every sequenced message for a resend)."""
        try:
            self._router.send(rid, _MORE_NOBLOCK)
            self._router.send(payload, _NOBLOCK)
        except zmq.Again:
            self.stats["send_dropped"] += 1
            return False
        except zmq.ZMQError:  # EHOSTUNREACH: no such peer (any more)
            self.stats["send_dropped"] += 1
        return True

    def _deliver(self, s: Session, msg) -> bytes:
        """Store a sequenced message (built with seq = s.next_seq); it leaves at the end of the pass."""
        payload = self._encode(msg)
        self._store(s, payload)
        return payload

    def _tell(self, s: Session, msg) -> None:
        """``_deliver`` a message of the gateway's own making (no engine event behind it).

        Journaled in the note of the next batch, which the pass flushes before anything leaves."""
        payload = self._deliver(s, msg)
        if self._journaled:
            self._told.append((s, payload))

    def _store(self, s: Session, payload: bytes) -> None:
        s.store.append(payload)
        if s.routing_id is not None and s.resend_from is None:  # while catching up, the resend brings it in order
            self._queue(s.routing_id, payload)
            s.last_sent_ns = self._last_engine_ns

    def _queue(self, rid: bytes, payload: bytes) -> None:
        box = self._outbox.get(rid)
        if box is None:
            self._outbox[rid] = [payload]
        else:
            box.append(payload)

    def _send_outbox(self, now: int) -> None:
        """Each connection's messages of this pass as frames of up to OUTBOX_FRAME messages.

        A session whose connection's queue is full (``SEND_QUEUE_FRAMES`` frames it has not read) is
        disconnected: ``SystemEvent(SLOW_CONSUMER)``, its orders cancelled if it asked for cancel on
        disconnect; it may log on again with ``next_seq`` and get everything it missed."""
        for s in list(self._resending):  # resends: up to RESEND_PER_PASS messages per session and pass
            if s.resend_from is None or s.routing_id is None:
                self._resending.discard(s)
                continue
            chunk = s.store[s.resend_from : s.resend_from + RESEND_PER_PASS]
            self._outbox.setdefault(s.routing_id, []).extend(chunk)
            s.resend_from += len(chunk)
        slow = []
        for rid, payloads in self._outbox.items():
            session = self.sessions.by_routing_id.get(rid)
            for i in range(0, len(payloads), OUTBOX_FRAME):
                if self._send(rid, p.join_encoded(payloads[i : i + OUTBOX_FRAME])):
                    continue
                if session is not None and session.resend_from is not None:
                    session.resend_from -= len(payloads) - i  # a resend waits for room: sent again next pass
                elif session is not None:
                    slow.append(session)
                break
        for s in list(self._resending):
            if s.resend_from is not None and s.resend_from >= len(s.store):
                s.resend_from = None  # caught up: from now on messages are queued as they are stored
                self._resending.discard(s)
        self._outbox.clear()
        for session in slow:
            self.stats["slow_consumers"] += 1
            self._end_session(session, now, "SLOW_CONSUMER", f"more than {SEND_QUEUE_FRAMES} frames unread: "
                                                             "disconnected; log on again with next_seq")

    # ------------------------------------------------------------ sessions

    def _logon(self, rid: bytes, frame: zmq.Frame, m: p.Logon, now: int) -> None:
        firm = m.firm if self.config.plaintext else frame.get("User-Id")
        fid = self.firm_ids.get(firm)
        text = ""
        if fid is None:  # only in plain text (a CURVE key that is not a firm's never completes the handshake)
            text = (f"{'no firm named in the Logon' if not firm else f'unknown firm {firm!r}'} (this venue's firms: "
                    f"{', '.join(self.firm_ids)})")
        elif not 0 < len(m.session) <= 64:
            text = "session name must have 1 to 64 characters"
        elif m.next_seq < 1:
            text = "next_seq must be at least 1"
        elif not 10 <= m.heartbeat_ms <= 60_000:
            text = "heartbeat_ms must be within 10..60000"
        elif (firm, m.session) not in self.sessions.by_key and \
                self._sessions_of[fid] >= self.config.firms[fid].max_sessions:
            text = (f"firm {firm!r} has {self._sessions_of[fid]} sessions today, its maximum (max_sessions): "
                    "log on to one of them")
        if text:
            self.stats["logon_rejected"] += 1
            return self._send(rid, self._encode(p.LogonRejected(text)))
        s = self._session(fid, m.session)
        self.sessions.bind(s, rid)
        s.heartbeat_ms = m.heartbeat_ms
        s.cancel_on_disconnect = m.cancel_on_disconnect
        s.last_heard_ns = s.last_sent_ns = now
        self._send(rid, self._encode(p.LogonAccepted(s.name, firm, s.next_seq, self.config.heartbeat_ms)))
        s.resend_from = m.next_seq - 1 if m.next_seq <= len(s.store) else None  # the resend: paced by _send_outbox
        if s.resend_from is not None:
            self._resending.add(s)

    def _heartbeat(self, s: Session, m: p.Heartbeat, now: int) -> None:
        pass  # being heard from is all a heartbeat does

    def _logout(self, s: Session, m: p.Logout, now: int) -> None:
        self._end_session(s, now, "LOGOUT", "logged out")

    def _end_session(self, s: Session, now: int, code: str, text: str) -> None:
        """Cancel the session's orders if it asked for it, tell it why, forget its connection."""
        if s.cancel_on_disconnect:
            for oid in sorted(s.live_orders):
                self._add(None, _row(CommandKind.CANCEL, reason=CancelReason.DISCONNECT, firm=s.firm_id, ts=now,
                                     order_id=oid))
            self._cancel_packages(sorted(s.live_packages), s.firm_id, CancelReason.DISCONNECT, now)
            self._flush(now, force=True)
        self._tell(s, p.SystemEvent(s.next_seq, now, code, text))
        self.sessions.unbind(s)

    def _timers(self, now: int) -> None:
        if now - self._last_timers_ns < 10 * NS_PER_MS:
            return
        self._last_timers_ns = now
        timeout = self.config.heartbeat_timeout_ms
        beat = self.config.heartbeat_ms * NS_PER_MS
        heartbeat = self._encode(p.Heartbeat())
        if self._recovered:  # the first pass after a restart: every session that may need cancelling gets a deadline
            self._recovered = False
            self._absent = {s: now + max(timeout, 3 * s.heartbeat_ms) * NS_PER_MS for s in self.sessions.by_key.values()
                            if s.cancel_on_disconnect and (s.live_orders or s.live_packages)}
        for s, deadline in list(self._absent.items()):  # as if it had gone silent when the venue went down
            if s.routing_id is not None or not (s.live_orders or s.live_packages):
                del self._absent[s]  # back (the connected check below takes over), or nothing left to cancel
            elif now > deadline:
                del self._absent[s]
                self.stats["heartbeat_timeouts"] += 1
                self._end_session(s, now, "DISCONNECT", "did not log on again within the heartbeat timeout after "
                                                        "the venue restarted")
        for s in self.sessions.connected():
            # silent for the configured timeout, or three of the intervals the client itself declared
            if now - s.last_heard_ns > max(timeout, 3 * s.heartbeat_ms) * NS_PER_MS:
                self.stats["heartbeat_timeouts"] += 1
                self._end_session(s, now, "DISCONNECT", "no message within the heartbeat timeout")
            elif now - s.last_sent_ns >= beat:
                self._send(s.routing_id, heartbeat)
                s.last_sent_ns = now

    # ------------------------------------------------------- order messages

    def _add(self, origin: Session | None, row: tuple) -> None:
        self._rows.append(row)
        self._origins.append(origin)

    def _reject(self, s: Session, clid: int, symbol: str, reason: RejectReason, now: int) -> None:
        self.stats["gateway_rejects"] += 1
        self._tell(s, p.Rejected(s.next_seq, now, clid, symbol, reason, REJECT_TEXT[reason]))

    def _risk_reason(self, s: Session, inst: int, added_open: int, qty: int, now: int) -> int:
        """0, or why an order message that adds ``added_open`` open GPUs must be refused."""
        firm = self.config.firms[s.firm_id]
        if s.firm_id in self.suspended:
            return RejectReason.FIRM_SUSPENDED
        if not s.admit(now):
            return RejectReason.THROTTLED
        if qty > firm.max_order_qty:
            return RejectReason.FIRM_MAX_ORDER_SIZE
        key = (s.firm_id, inst)
        if self.open_qty[key] + self._pending[key] + added_open > firm.max_open_qty:
            return RejectReason.FIRM_MAX_OPEN_QUANTITY
        self._pending[key] += added_open
        return 0

    def _new_order(self, s: Session, m: p.NewOrder, now: int) -> None:
        inst = self.instrument_of.get(m.symbol)
        reason = RejectReason.UNKNOWN_INSTRUMENT if inst is None else \
            self._risk_reason(s, inst, max(m.qty, 0), m.qty, now)
        if reason:
            return self._reject(s, m.client_order_id, m.symbol, reason, now)
        self._add(s, _row(CommandKind.NEW_ORDER, m.side, m.ord_type, m.tif, m.stp, int(m.post_only), 0, inst,
                          s.firm_id, now, m.client_order_id, 0, m.price, m.qty, 0, 0, m.expire_ts))

    def _cancel(self, s: Session, m: p.Cancel, now: int) -> None:
        self._add(s, _row(CommandKind.CANCEL, firm=s.firm_id, ts=now, order_id=m.order_id))

    def _modify(self, s: Session, m: p.Modify, now: int) -> None:
        order = self.orders.get(m.order_id)
        if order is not None and order.owner.firm_id == s.firm_id:
            reason = self._risk_reason(s, order.instrument, max(m.qty - order.leaves, 0), m.qty, now)
            if reason:
                self.stats["gateway_rejects"] += 1
                return self._tell(s, p.CancelRejected(s.next_seq, now, m.order_id, reason, REJECT_TEXT[reason]))
        self._add(s, _row(CommandKind.MODIFY, firm=s.firm_id, ts=now, order_id=m.order_id, price=m.price,
                          qty=m.qty))

    def _mass_cancel(self, s: Session, m: p.MassCancel, now: int) -> None:
        inst = -1 if not m.symbol else self.instrument_of.get(m.symbol)
        if inst is None:
            return self._reject(s, 0, m.symbol, RejectReason.UNKNOWN_INSTRUMENT, now)
        self._add(s, _row(CommandKind.MASS_CANCEL, instrument=inst, firm=s.firm_id, ts=now))

    def _mass_quote(self, s: Session, m: p.MassQuote, now: int) -> None:
        if len(m.entries) > p.MAX_QUOTE_ENTRIES:
            return self._reject(s, m.quote_id, "", RejectReason.INVALID_FIELD, now)
        for e in m.entries:
            inst = self.instrument_of.get(e.symbol)
            if inst is None:
                self._reject(s, m.quote_id, e.symbol, RejectReason.UNKNOWN_INSTRUMENT, now)
                continue
            standing = 0
            for side in (0, 1):
                order = self.orders.get(self.quote_orders.get((s.firm_id, inst, side), 0))
                standing += order.leaves if order is not None else 0
            added = max(max(e.bid_qty, 0) + max(e.ask_qty, 0) - standing, 0)
            reason = self._risk_reason(s, inst, added, max(e.bid_qty, e.ask_qty), now)
            if reason:
                self._reject(s, m.quote_id, e.symbol, reason, now)
                continue
            self._add(s, _row(CommandKind.MASS_QUOTE, instrument=inst, firm=s.firm_id, ts=now,
                              client_order_id=m.quote_id, price=e.bid_price, qty=e.bid_qty, price2=e.ask_price,
                              qty2=e.ask_qty))

    # ----------------------------------------------------------- packages

    def _new_package(self, s: Session, m: p.NewPackage, now: int) -> None:
        if not self._admit_package(s, m.client_order_id, m.side, now):
            return
        alts = [Alternative([Leg(self.instrument_of.get(leg.symbol, -1), leg.qty) for leg in a.legs], a.limit)
                for a in m.alternatives]
        self._submit_package(s, m.client_order_id, m.side, alts, m.tif, m.expire_ts, now)

    def _new_block_package(self, s: Session, m: p.NewBlockPackage, now: int) -> None:
        side = Side.SELL if m.offer is not None else Side.BUY
        if not self._admit_package(s, m.client_order_id, side, now):
            return
        if bool(m.bid) == (m.offer is not None):
            return self._reject_package(s, m.client_order_id, side, AuctionReject.INVALID_FIELD, now,
                                        text="a block package is either a bid or an offer")
        alts: list[Alternative] = []
        if m.offer is None:
            if len(m.bid) > MAX_ALTERNATIVES:
                return self._reject_package(s, m.client_order_id, side, AuctionReject.TOO_MANY_ALTERNATIVES, now)
            first, end = self._listed_span
            reason = _block_bid_too_large(m.bid, first, end)
            if reason:  # refused from its size alone, before any expansion: a frame costs O(bytes) here
                return self._reject_package(s, m.client_order_id, side, reason, now)
            lookup = _OpenHours(self.lookup, self.instruments, now)
            for r in m.bid:  # the window clipped to the listed hours: its expansion costs O(listed hours x hours)
                if (text := self._unlisted(r.accelerator, r.region, r.service_class)) is not None:
                    return self._reject_package(s, m.client_order_id, side, AuctionReject.UNKNOWN_INSTRUMENT, now,
                                                text=text)
                request = EngineBlockRequest(r.accelerator, r.region, r.service_class, r.gpus, r.hours,
                                             max(r.window_start, first), min(r.window_end, end), r.max_price)
                reason = AuctionReject.TOO_MANY_LEGS if r.hours > p.MAX_PACKAGE_LEGS else \
                    validate_block_request(request, self.instruments, lookup)
                if reason:
                    return self._reject_package(s, m.client_order_id, side, reason, now)
                alts.extend(expand_block_request(request, lookup))
        else:
            o = m.offer
            if (text := self._unlisted(o.accelerator, o.region, o.service_class)) is not None:
                return self._reject_package(s, m.client_order_id, side, AuctionReject.UNKNOWN_INSTRUMENT, now,
                                            text=text)
            reason = AuctionReject.TOO_MANY_LEGS if o.hours > p.MAX_PACKAGE_LEGS else \
                AuctionReject.NEGATIVE_MINIMUM if o.min_price < 0 else AuctionReject.NONE
            if reason:
                return self._reject_package(s, m.client_order_id, side, reason, now)
            offer = package_offer_from_block(EngineBlockOffer(0, s.firm_id, o.accelerator, o.region, o.service_class,
                                                              o.gpus, o.hours, o.start, o.min_price), self.lookup)
            alts.append(Alternative(offer.legs, offer.min_total))
            first_hour = self.instruments.get(offer.legs[0].instrument) if offer.legs else None
            if first_hour is not None and o.min_price % first_hour.price_increment:
                return self._reject_package(s, m.client_order_id, side, AuctionReject.LIMIT_OFF_TICK, now)
        self._submit_package(s, m.client_order_id, side, alts, m.tif, m.expire_ts, now)

    def _unlisted(self, accelerator: str, region: str, service_class: str) -> str | None:
        """Why a block's product is not listed (which of its three names is unknown), or None. O(products)."""
        if ProductKey(accelerator, region, service_class) in self.products:
            return None
        for name, value, known in (("accelerator", accelerator, {k.accelerator for k in self.products}),
                                   ("region", region, {k.region for k in self.products}),
                                   ("service class", service_class, {k.service_class for k in self.products})):
            if value not in known:
                return f"{name} {value!r} is not listed (listed: {', '.join(sorted(known))})"
        return f"{accelerator}.{region}.{service_class} is not a listed product"

    def _admit_package(self, s: Session, clid: int, side: int, now: int) -> bool:
        """The gateway's own refusals, before any work on the package: no auction, kill switch, throttle."""
        if not self.auctions:
            self._reject_package(s, clid, side, AuctionReject.NONE, now, RejectReason.INVALID_FIELD,
                                 "this venue runs no call auction")
        elif s.firm_id in self.suspended:
            self._reject_package(s, clid, side, AuctionReject.NONE, now, RejectReason.FIRM_SUSPENDED)
        elif not s.admit(now):
            self._reject_package(s, clid, side, AuctionReject.NONE, now, RejectReason.THROTTLED)
        else:
            return True
        return False

    def _submit_package(self, s: Session, clid: int, side: int, alts: list[Alternative], tif: int, expire_ts: int,
                        now: int) -> None:
        """Check the package, then add its records (contiguous) to the batch. O(legs)."""
        legs = sum(len(a.legs) for a in alts)
        if tif not in (TimeInForce.GTC, TimeInForce.GTD):
            reason = AuctionReject.INVALID_FIELD
        elif legs > p.MAX_PACKAGE_LEGS:
            reason = AuctionReject.TOO_MANY_LEGS
        elif side == Side.BUY:
            reason = validate_package_bid(PackageBid(0, s.firm_id, alts), self.instruments)
        elif len(alts) != 1:
            reason = AuctionReject.NO_ALTERNATIVES if not alts else AuctionReject.TOO_MANY_ALTERNATIVES
        else:
            reason = validate_package_offer(PackageOffer(0, s.firm_id, alts[0].legs, alts[0].limit), self.instruments)
        if reason:
            return self._reject_package(s, clid, side, reason, now)
        if any(leg.qty > self.config.firms[s.firm_id].max_order_qty for a in alts for leg in a.legs):
            return self._reject_package(s, clid, side, AuctionReject.NONE, now, RejectReason.FIRM_MAX_ORDER_SIZE)
        fid = s.firm_id
        self._add(s, _row(PK.PACKAGE, side=side, tif=tif, firm=fid, ts=now, client_order_id=clid,
                          qty=len(alts) + legs, expire_ts=expire_ts))
        for a in alts:
            self._add(s, _row(PK.ALTERNATIVE, firm=fid, ts=now, price=a.limit))
            for leg in a.legs:
                self._add(s, _row(PK.LEG, instrument=leg.instrument, firm=fid, ts=now, qty=leg.qty))

    def _reject_package(self, s: Session, clid: int, side: int, reason: AuctionReject, now: int,
                        gateway_reason: RejectReason = RejectReason.NONE, text: str = "") -> None:
        self.stats["gateway_rejects"] += 1
        text = text or (REJECT_TEXT[gateway_reason] if gateway_reason else AUCTION_REJECT_TEXT.get(reason, reason.name))
        self._tell(s, p.PackageRejected(s.next_seq, now, clid, side, reason, text, gateway_reason))

    def _cancel_package(self, s: Session, m: p.CancelPackage, now: int) -> None:
        self._add(s, _row(PK.CANCEL_PACKAGE, firm=s.firm_id, ts=now, order_id=m.package_id))

    def _cancel_packages(self, ids: list[int], firm: int, reason: CancelReason, now: int) -> None:
        for pid in ids:
            self._add(None, _row(PK.CANCEL_PACKAGE, reason=reason, firm=firm, ts=now, order_id=pid))

    def _auction_row(self, now: int, indicative: bool) -> tuple:
        cfg = self.config
        self._timing_auction = True
        return _row(PK.RUN_AUCTION, ord_type=int(indicative), ts=now, price=cfg.auction_time_limit_ms,
                    qty=cfg.auction_gap_ppm)

    def _auction_schedule(self, now: int) -> None:
        """A RUN_AUCTION at every multiple of the auction interval, an indicative one at the other multiples of
        the indicative interval (one per pass at most: a clock that jumps runs one, not the ones skipped)."""
        if not self.auctions:
            return
        final = self.config.auction_interval_s * NS_PER_SECOND
        indicative = self.config.indicative_interval_s * NS_PER_SECOND
        if not self._next_auction_ns:  # the first pass: the next multiples after the start
            self._next_auction_ns = (now // final + 1) * final if final else -1
            self._next_indicative_ns = (now // indicative + 1) * indicative if indicative else -1
            return
        if 0 < self._next_auction_ns <= now:
            self._next_auction_ns = (now // final + 1) * final
            if indicative:
                self._next_indicative_ns = (now // indicative + 1) * indicative
            self._add(None, self._auction_row(now, indicative=False))
        elif 0 < self._next_indicative_ns <= now:
            self._next_indicative_ns = (now // indicative + 1) * indicative
            self._add(None, self._auction_row(now, indicative=True))

    # ------------------------------------------------ engine and its events

    def _flush(self, now: int, force: bool = False) -> None:
        """Run the pending batch through the engine (or advance its time) and route the events.

        Also when a message the gateway made itself waits for its batch (journaled only)."""
        if not self._rows:
            if not (force or self._told or self._suspension_changed) and \
                    now - self._last_engine_ns < self.config.time_advance_ms * NS_PER_MS:
                return
            self._add(None, _row(CommandKind.ADVANCE_TIME, ts=now))
        rows, origins = self._rows, self._origins
        self._rows, self._origins = [], []
        self._pending.clear()
        self._last_engine_ns = now
        records = np.array(rows, dtype=COMMAND_DTYPE)
        timing, self._timing_auction = self._timing_auction, False
        t0 = time.perf_counter() if timing else 0.0
        if self._journaled:
            self.engine.process_batch(records, self._note(origins))
        else:
            self.engine.process_batch(records)
        if timing:  # the wall time of the batch that cleared an auction: its solve time, as the feeds report it
            self.clear_us = int((time.perf_counter() - t0) * 1e6)
        events = self.engine.last_events
        if self.on_events is not None:
            self.on_events(events)
        self._route_commands(events.tolist(), self.engine.last_command_ends.tolist(), [r[_ROW_KIND] for r in rows],
                             origins, 0, len(rows))
        self.stats["commands"] += len(rows)

    def _note(self, origins: list[Session | None]) -> bytes:
        """The encoded ``BatchNote`` of the batch being flushed (b"" when it has nothing to say). O(commands)."""
        told, changed = self._told, self._suspension_changed
        if not told and not changed and all(o is None for o in origins):
            return b""
        self._told, self._suspension_changed = [], False
        index: dict[Session, int] = {}
        ids = [-1 if o is None else index.setdefault(o, len(index)) for o in origins]
        told_ids = [(index.setdefault(s, len(index)), payload) for s, payload in told]
        return encode_note(BatchNote([(s.firm_id, s.name) for s in index], ids, told_ids,
                                     sorted(self.suspended) if changed else None,
                                     [(s.cancel_on_disconnect, s.heartbeat_ms) for s in index]))

    def replay_commands(self, commands: np.ndarray, events: np.ndarray, command_ends: np.ndarray,
                        notes: list[tuple[int, memoryview]]) -> None:
        """Rebuild the sessions from one engine call of a replay of the whole journal (before ``start``).

        Pass as ``on_commands`` to ``journal.sequencer.replay_journal``: the
        notes' messages are stored where they were stored live, and every
        event is routed as ``_flush`` routed it, so each session's store, the
        orders, their owners, the open quantities and the kill switches are
        what they were after the last journaled batch. O(commands + events).
        """
        n = len(commands)
        kinds, evs, ends = commands["kind"].tolist(), events.tolist(), command_ends.tolist()
        origins, self._carried = self._carried[:n], self._carried[n:]
        origins += [None] * (n - len(origins))
        start = 0
        for pos, raw in notes:
            note = decode_note(raw)
            sessions = [self._session(fid, name) for fid, name in note.sessions]
            for session, (cancel_on_disconnect, heartbeat_ms) in zip(sessions, note.settings, strict=False):
                session.cancel_on_disconnect, session.heartbeat_ms = cancel_on_disconnect, heartbeat_ms
            self._recovered = True
            mine = [sessions[k] if k >= 0 else None for k in note.origins]
            origins[pos : pos + len(mine)] = mine[: n - pos]
            self._carried = mine[n - pos :]
            self._route_commands(evs, ends, kinds, origins, start, pos)
            for k, payload in note.told:
                self._store(sessions[k], payload)
            if note.suspended is not None:
                self.suspended = set(note.suspended)
            start = pos
        self._route_commands(evs, ends, kinds, origins, start, n)

    def _route_commands(self, events: list[tuple], ends: list[int], kinds: list[int], origins: list[Session | None],
                        lo: int, hi: int) -> None:
        """Route the events of commands lo .. hi - 1 of an engine call (command i's events end at ``ends[i]``)."""
        start = ends[lo - 1] if lo else 0
        for i in range(lo, hi):
            end = ends[i]
            if kinds[i] == PK.RUN_AUCTION:
                self._auction_started(events[start:end])
            for ev in events[start:end]:
                self._route(ev, origins[i], kinds[i])
            start = end

    def _route(self, ev: tuple, origin: Session | None, command_kind: int) -> None:
        kind = ev[_KIND]
        if kind == EventKind.ACCEPTED:
            oid, inst, side = ev[_OID], ev[_INST], ev[_SIDE]
            if origin is None:  # replayed from a batch journaled without a note
                origin = self._session(ev[_FIRM], RECOVERED_SESSION)
            self.orders[oid] = _Order(origin, inst, ev[_QTY])
            origin.live_orders.add(oid)
            self.open_qty[(origin.firm_id, inst)] += ev[_QTY]
            if command_kind == CommandKind.MASS_QUOTE:
                self.quote_orders[(origin.firm_id, inst, side)] = oid
            self._deliver(origin, p.Accepted(origin.next_seq, ev[_TS], ev[_CLID], oid, self.symbols[inst], side,
                                             ev[_PRICE], ev[_QTY]))
        elif kind == EventKind.FILL:
            order = self.orders[ev[_OID]]
            owner = order.owner
            order.leaves = ev[_LEAVES]
            self.open_qty[(owner.firm_id, order.instrument)] -= ev[_QTY]
            if order.leaves == 0:
                self._forget(ev[_OID], order)
            self._deliver(owner, p.Executed(owner.next_seq, ev[_TS], ev[_OID], ev[_CLID], self.symbols[ev[_INST]],
                                            ev[_SIDE], ev[_TID], ev[_PRICE], ev[_QTY], ev[_LEAVES], ev[_CUM],
                                            ev[_LIQ]))
        elif kind == EventKind.CANCELLED:
            order = self.orders[ev[_OID]]
            owner = order.owner
            self.open_qty[(owner.firm_id, order.instrument)] -= ev[_QTY]
            self._forget(ev[_OID], order)
            self._deliver(owner, p.Cancelled(owner.next_seq, ev[_TS], ev[_OID], ev[_CLID], self.symbols[ev[_INST]],
                                             ev[_SIDE], ev[_QTY], ev[_REASON]))
        elif kind == EventKind.REPLACED:
            order = self.orders[ev[_OID]]
            owner = order.owner
            self.open_qty[(owner.firm_id, order.instrument)] += ev[_LEAVES] - order.leaves
            order.leaves = ev[_LEAVES]
            self._deliver(owner, p.Replaced(owner.next_seq, ev[_TS], ev[_OID], ev[_CLID], self.symbols[ev[_INST]],
                                            ev[_PRICE], ev[_LEAVES]))
        elif kind == EventKind.REJECTED and origin is not None:
            inst = ev[_INST]
            symbol = self.symbols[inst] if 0 <= inst < len(self.symbols) else ""
            self._deliver(origin, p.Rejected(origin.next_seq, ev[_TS], ev[_CLID], symbol, ev[_REASON],
                                             REJECT_TEXT[RejectReason(ev[_REASON])]))
        elif kind == EventKind.CANCEL_REJECTED and origin is not None:
            self._deliver(origin, p.CancelRejected(origin.next_seq, ev[_TS], ev[_OID], ev[_REASON],
                                                   REJECT_TEXT[RejectReason(ev[_REASON])]))
        elif kind >= PE.PACKAGE_ACCEPTED:
            self._route_package(kind, ev, origin)
        # TRADE, BOOK_LEVEL and INSTRUMENT_STATUS are market data: the feeds publish them (on_events)

    def _route_package(self, kind: int, ev: tuple, origin: Session | None) -> None:
        """Package events to the package's owner (or the sender of the command); auction results kept."""
        pid = ev[_OID]
        if kind == PE.PACKAGE_FILL:
            pkg = self.packages[pid]
            owner = pkg.owner
            if ev[_STATUS]:  # its last leg: the package is done
                self._forget_package(pid, pkg)
            self._deliver(owner, p.PackageExecuted(owner.next_seq, ev[_TS], pid, ev[_CLID], ev[_SIDE],
                                                   self.symbols[ev[_INST]], ev[_PRICE], ev[_QTY], ev[_CUM],
                                                   ev[_TID], ev[_COUNT], bool(ev[_STATUS])))
        elif kind == PE.PACKAGE_UNFILLED:
            number, final = self._auction
            pkg = self.packages[pid]
            if final:  # an indicative run fills nothing: its outcomes would only be noise
                owner = pkg.owner
                self._deliver(owner, p.PackageNotFilled(owner.next_seq, ev[_TS], pid, ev[_CLID], ev[_SIDE], number,
                                                        ev[_REASON], ev[_COUNT], ev[_QTY], ev[_PRICE]))
        elif kind == PE.PACKAGE_ACCEPTED:
            if origin is None:  # replayed from a batch journaled without a note
                origin = self._session(ev[_FIRM], RECOVERED_SESSION)
            self.packages[pid] = _Package(origin, ev[_CLID], ev[_SIDE])
            origin.live_packages.add(pid)
            self._deliver(origin, p.PackageAccepted(origin.next_seq, ev[_TS], ev[_CLID], pid, ev[_SIDE], ev[_COUNT],
                                                    ev[_QTY]))
        elif kind == PE.PACKAGE_CANCELLED:
            pkg = self.packages[pid]
            self._forget_package(pid, pkg)
            owner = pkg.owner
            self._deliver(owner, p.PackageCancelled(owner.next_seq, ev[_TS], pid, ev[_CLID], ev[_SIDE],
                                                    ev[_REASON]))
        elif kind == PE.PACKAGE_REJECTED and origin is not None:
            reason = AuctionReject(ev[_REASON])
            self._deliver(origin, p.PackageRejected(origin.next_seq, ev[_TS], ev[_CLID], ev[_SIDE], reason,
                                                    AUCTION_REJECT_TEXT.get(reason, reason.name)))
        elif kind == PE.PACKAGE_CANCEL_REJECTED and origin is not None:
            self._deliver(origin, p.PackageCancelRejected(origin.next_seq, ev[_TS], pid, ev[_REASON],
                                                          REJECT_TEXT[RejectReason(ev[_REASON])]))
        elif kind == PE.AUCTION_PRICE:
            if ev[_QTY]:
                self._traded.append((self.symbols[ev[_INST]], ev[_PRICE], ev[_QTY]))
        elif kind == PE.AUCTION_RESULT:
            indicative = bool(ev[_SIDE])
            self.stats["indicative_auctions" if indicative else "auctions"] += 1
            self.last_auction = AuctionSummary(pid, indicative, ev[_STATUS], ev[_PRICE], ev[_QTY], ev[_LEAVES],
                                               ev[_CUM], ev[_TID], ev[_COUNT], self._traded, self.clear_us)
            self._traded = []

    def _auction_started(self, events: list[tuple]) -> None:
        """Before the events of a RUN_AUCTION are routed: its number and whether it is final (from its result)."""
        self._traded = []
        for ev in reversed(events):
            if ev[_KIND] == PE.AUCTION_RESULT:
                self._auction = (ev[_OID], not ev[_SIDE])
                return
        self._auction = (0, False)

    def _forget_package(self, pid: int, pkg: _Package) -> None:
        del self.packages[pid]
        pkg.owner.live_packages.discard(pid)

    def _forget(self, oid: int, order: _Order) -> None:
        del self.orders[oid]
        order.owner.live_orders.discard(oid)

    # ------------------------------------------------------ authentication

    def _serve_zap(self) -> None:
        """ZAP (RFC 27): a CURVE client is let in iff its public key is a registered firm's."""
        while True:
            try:
                req = self._zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            version, request_id, mechanism = req[0], req[1], req[5]
            firm = self._curve_firms.get(req[6]) if mechanism == b"CURVE" and len(req) > 6 else None
            if firm is None:
                self.stats["auth_refused"] += 1
                self._zap.send_multipart([version, request_id, b"400", b"key not registered", b"", b""])
            else:
                self._zap.send_multipart([version, request_id, b"200", b"OK", firm.encode(), b""])

    # --------------------------------------------------------------- admin

    def _serve_admin(self, now: int) -> None:
        while True:
            try:
                frames = self._admin.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = self.admin(request_decoder.decode(frames[-1]), now)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                reply = AdminReply(False, f"bad request: {exc}")
            self._admin.send_multipart([*frames[:-1], admin_encoder.encode(reply)])

    def admin(self, req: AdminRequest, now: int) -> AdminReply:
        """Carry out an operator request (also callable in-process)."""
        if req.action in ("kill", "release"):
            fid = self.firm_ids.get(req.firm)
            if fid is None:
                return AdminReply(False, f"unknown firm {req.firm!r}")
            if req.action == "kill":
                self.suspended.add(fid)
                self._add(None, _row(CommandKind.MASS_CANCEL, reason=CancelReason.ADMIN, firm=fid, ts=now))
                self._cancel_packages(sorted(pid for pid, pkg in self.packages.items() if pkg.owner.firm_id == fid),
                                      fid, CancelReason.ADMIN, now)
            else:
                self.suspended.discard(fid)
            self._suspension_changed = self._journaled
            self._flush(now, force=True)  # journaled before the operator is answered
            code = "SUSPENDED" if req.action == "kill" else "RELEASED"
            for s in self.sessions.by_key.values():
                if s.firm_id == fid:
                    self._tell(s, p.SystemEvent(s.next_seq, now, code, f"firm {req.firm} {code.lower()}"))
            return AdminReply(True, f"firm {req.firm} {code.lower()}")
        if req.action in ("halt", "resume"):
            inst = self.instrument_of.get(req.symbol)
            if inst is None:
                return AdminReply(False, f"unknown symbol {req.symbol!r}")
            kind = CommandKind.HALT if req.action == "halt" else CommandKind.RESUME
            self._add(None, _row(kind, instrument=inst, ts=now))
            self._flush(now, force=True)
            status = InstrumentStatus(self.engine.status(inst))
            done = "halted" if req.action == "halt" else "resumed"
            if status != (InstrumentStatus.HALTED if req.action == "halt" else InstrumentStatus.OPEN):
                return AdminReply(False, f"{req.symbol} is {status.name}: only an open or halted instrument can be "
                                         f"{done}")
            return AdminReply(True, f"{req.symbol} {done}")
        if req.action == "auction":
            return self._admin_auction(req.indicative, now)
        statuses = [InstrumentStatus(self.engine.status(i)) for i in range(len(self.symbols))]
        status = VenueStatus(
            clock_ns=now, instruments=dict(Counter(st.name for st in statuses)),
            halted=[s for s, st in zip(self.symbols, statuses, strict=True) if st == InstrumentStatus.HALTED],
            firms=[f.name for f in self.config.firms],
            suspended=[self.config.firms[f].name for f in sorted(self.suspended)],
            sessions=len(self.sessions.by_key), connected=len(self.sessions.by_routing_id),
            live_orders=len(self.orders), stats=dict(self.stats), journal_seq=getattr(self.engine, "last_seq", -1),
            live_packages=len(self.packages), next_auction_ns=max(self._next_auction_ns, 0) if self.auctions else 0)
        return AdminReply(True, f"sessions {status.sessions} connected {status.connected} live orders "
                                f"{status.live_orders} suspended {sorted(self.suspended)} stats {status.stats}", status)

    def _admin_auction(self, indicative: bool, now: int) -> AdminReply:
        """Run one auction now, in this pass's batch; answered once it has cleared (the solver's time at most)."""
        if not self.auctions:
            return AdminReply(False, "this venue runs no call auction")
        self.last_auction = None
        self._add(None, self._auction_row(now, indicative))
        self._flush(now, force=True)
        a = self.last_auction
        if a is None:
            return AdminReply(False, "the auction reported no result")
        return AdminReply(True, format_auction(a), auction=a)


def format_auction(a: AuctionSummary) -> str:
    """One line: the auction's number, kind, status and totals (money in ticks)."""
    status = {1: "optimal", 2: "feasible"}.get(a.status, str(a.status))
    volume = sum(v for _, _, v in a.traded)
    return (f"{'indicative ' if a.indicative else ''}auction {a.auction}: {status} (gap {a.gap_ppm} ppm), "
            f"{a.accepted} packages accepted, {a.not_accepted} not ({a.paradoxically_rejected} paradoxically "
            f"rejected), surplus {a.surplus} ticks (individual rationality cost {a.ir_cost}), {len(a.traded)} "
            f"instruments traded, {volume} GPUs")
