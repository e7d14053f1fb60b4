"""Order-entry clients for the gateway: ``OrderEntryClient`` (blocking) and ``AsyncOrderEntryClient`` (asyncio).

Both speak ``gateway.protocol``: one msgpack message per ZeroMQ frame, a DEALER
socket connected to the gateway's ROUTER, CurveZMQ when keys are given
(``client_keys`` = the firm's key pair, ``server_key`` = the gateway's public
key, files made by ``cx keys new``), plain text otherwise (loopback only; the
Logon then names the ``firm``)::

    with OrderEntryClient() as c:
        c.connect("tcp://127.0.0.1:5555", "desk-1", firm="DEMO")
        cid = c.new_order("H100.US-EAST.FIRM.2026-12-01T14", Side.BUY, 10, 2450, tif=TimeInForce.IOC)
        while (msg := c.recv(timeout=1.0)) is not None:
            print(format_report(msg))

Packages of the call auction: ``send_package(side, [(limit, [(symbol, qty), ...]), ...])``
(a bid's alternatives form one exclusive group; an offer has one), ``send_block_package(blocks)``
(``BlockRequest``s joined as one bid, or one ``BlockOffer``), ``cancel_package(package_id)``;
their reports are ``PackageAccepted``, ``PackageRejected``, ``PackageExecuted`` (per leg),
``PackageNotFilled`` (per auction that leaves the package live), ``PackageCancelled``.

What a client holds:

* the session: name, firm, the heartbeat intervals agreed at logon, and the
  connection parameters, so that ``reconnect()`` can log on again by itself;
* ``last_seq``: the ``seq`` of the last sequenced gateway message delivered to
  the caller (0 before the first);
* ``resend_until``: ``LogonAccepted.next_seq`` of the latest logon; messages
  with a smaller ``seq`` are resends of the session's history
  (``is_resend(msg)``);
* ``orders``: a local view of the session's open orders, ``order_id ->
  OpenOrder(symbol, side, price, leaves, cum, ...)``, kept from the reports:
  ``Accepted`` adds, ``Executed`` / ``Replaced`` update (leaves 0 removes),
  ``Cancelled`` and ``CancelRejected(UNKNOWN_ORDER)`` remove. It only knows
  orders whose ``Accepted`` it received: log on with ``next_seq=1`` to rebuild
  it from the whole history of the session (what ``cx orders`` does);
* ``packages``: the same for the session's live packages of the call
  auction, ``package_id -> OpenPackage(client_order_id, side, ...)``:
  ``PackageAccepted`` adds, ``PackageCancelled``, the last leg's
  ``PackageExecuted`` and ``PackageCancelRejected(UNKNOWN_ORDER)`` remove;
* a client order id generator: ids must be unique per firm over the trading
  day, so unless the caller passes one, ``new_order`` takes
  ``max(previous + 1, time.time_ns())`` (process-wide): the id is the
  creation time in nanoseconds, unique across restarts and across clients of
  the firm unless two of them create an order in the same nanosecond.

Sequencing and resend rules (see ``gateway.protocol``): every gateway message
of the session's conversation carries ``seq`` = 1, 2, 3, ...; ``Heartbeat``,
``ProtocolError`` and the logon answers do not. A Logon with ``next_seq = k``
makes the gateway send again every message from ``seq`` k on. So the client:

* delivers a sequenced message only if ``seq == last_seq + 1``;
* drops a message with ``seq <= last_seq`` as a duplicate (it arrives after a
  reconnect that asked for more than was missing; counted in ``duplicates``);
* treats ``seq > last_seq + 1`` as a gap (a frame lost, e.g. dropped at a
  ZeroMQ high-water mark): it logs on again at once with ``next_seq =
  last_seq + 1`` and the gateway fills the gap (counted in ``gaps``; more
  than ``MAX_GAP_RESUMES`` gap resumes in a row without progress raise
  ``SequenceGapError``);
* ``reconnect()`` opens a new socket and logs on with ``next_seq = last_seq +
  1``: the caller sees every message exactly once, in order, no gaps, no
  duplicates. What the client sent but the gateway never received is lost: a
  ``new_order`` sent again with the same ``client_order_id`` cannot create a
  second order (the engine refuses duplicate client order ids), so that is
  the safe way to retry (a package's client order id likewise);
* on ``LogonRequired`` while it believes it is logged on (the venue restarted
  fast and ZeroMQ reconnected the old socket to the new gateway), it logs on
  again by itself (``reconnect()``: a new socket, the old one and whatever it
  still held discarded), and once the resend has caught up, sends again each
  ``NewOrder`` / ``NewPackage`` / ``NewBlockPackage`` that still has no answer
  (``Accepted`` / ``Rejected`` / ``PackageAccepted`` / ``PackageRejected``):
  the gateway never processed it, and one that it did is answered in the
  resend, so each order is entered exactly once (``logons_required`` counts
  them);
* refuses a logon whose ``LogonAccepted.next_seq`` is below the requested
  ``next_seq`` (``LogonError``): the gateway does not have the history the
  client has seen (another trading day, or a reset session).

Heartbeats: the client promises in its Logon to send something at least every
``heartbeat_ms``. The blocking client sends a ``Heartbeat`` from inside
``recv`` when nothing was sent for that long (any message counts; no
thread), so an application must call ``recv`` / ``iter_messages`` at least
that often; the async client runs a task that does it. A gateway that hears
nothing within its own ``heartbeat_timeout_ms`` ends the session:
``Cancelled(DISCONNECT)`` for its orders if ``cancel_on_disconnect``, then
``SystemEvent(DISCONNECT)``. The gateway sends a Heartbeat at least every
``LogonAccepted.heartbeat_ms``; with nothing received for ``silence_factor``
times that, ``recv`` raises ``GatewaySilentError`` (or, with
``auto_reconnect=True``, reconnects once and goes on). Heartbeats are never
returned to the caller.

Logged on or not: ``logged_on`` turns false after ``logout()``, ``close()``,
a ``GatewaySilentError``, or a new (not resent) ``SystemEvent`` LOGOUT or
DISCONNECT; sending then raises ``NotLoggedOnError`` and ``recv`` returns what
is still queued, then ``None``; ``reconnect()`` resumes the session. A session
has one connection at a time: a second client logging on to the same
session takes it over, and the first one hears nothing more (it ends with
``GatewaySilentError``).

Costs: per message one msgspec msgpack encode or decode (about a
microsecond) and one ZeroMQ frame; duplicate and gap checks and the order
view are O(1) per report; memory is O(open orders). ``recv`` blocks in
``zmq.Socket.poll`` and wakes up only for frames, heartbeats due and its own
deadline. A logon with ``next_seq = k`` costs the resend of every message
from ``k`` on (the whole session history for ``k = 1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import zmq
import zmq.asyncio
import zmq.auth
from zmq.utils.monitor import parse_monitor_message

from engine.auction.orders import AUCTION_REJECT_TEXT
from engine.codes import (
    REJECT_TEXT,
    AuctionReject,
    CancelReason,
    Liquidity,
    OrderType,
    Outcome,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from gateway.protocol import (
    MAX_FRAME_BYTES,
    MAX_QUOTE_ENTRIES,
    Accepted,
    BlockOffer,
    BlockRequest,
    Cancel,
    Cancelled,
    CancelPackage,
    CancelRejected,
    Executed,
    Heartbeat,
    Logon,
    LogonAccepted,
    LogonRejected,
    LogonRequired,
    Logout,
    MassCancel,
    MassQuote,
    Modify,
    NewBlockPackage,
    NewOrder,
    NewPackage,
    PackageAccepted,
    PackageAlternative,
    PackageCancelled,
    PackageCancelRejected,
    PackageExecuted,
    PackageLeg,
    PackageNotFilled,
    PackageRejected,
    ProtocolError,
    QuoteEntry,
    Rejected,
    Replaced,
    ServerMessage,
    SystemEvent,
    client_encoder,
    decode_server_frame,
)
from gateway.units import DEFAULT_TICK, format_price, format_qty, format_ts

__all__ = [
    "DEFAULT_ENDPOINT",
    "AsyncOrderEntryClient",
    "ClientError",
    "GatewaySilentError",
    "OpenPackage",
    "LogonError",
    "NotLoggedOnError",
    "OpenOrder",
    "OrderEntryClient",
    "SequenceGapError",
    "format_report",
    "load_client_keys",
    "load_server_key",
    "next_client_order_id",
]

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
LOGON_TIMEOUT_S = 5.0
LOGOUT_TIMEOUT_S = 1.0
SEND_TIMEOUT_MS = 5000  # a send blocked this long (peer gone, queue full) raises ClientError
SILENCE_FACTOR = 3.0  # gateway heartbeat intervals without a frame: the gateway is gone
MAX_GAP_RESUMES = 3
SESSION_END_CODES = ("LOGOUT", "DISCONNECT")  # SystemEvent codes after which the gateway sends nothing more
_HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                     | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)


# ---------------------------------------------------------------- errors


class ClientError(Exception):
    """Base of the client's own errors."""


class LogonError(ClientError):
    """The gateway refused the logon (``rejected``: a LogonRejected came back), or did not answer in time."""

    def __init__(self, text: str, rejected: bool = False):
        super().__init__(text)
        self.text = text
        self.rejected = rejected


class NotLoggedOnError(ClientError):
    """A message was to be sent on a client that is not logged on."""


class GatewaySilentError(ClientError, ConnectionError):
    """Nothing came from the gateway for ``silence_factor`` of its heartbeat intervals."""


class SequenceGapError(ClientError):
    """Gaps in the gateway's sequence numbers persisted through ``MAX_GAP_RESUMES`` resumes."""


# ------------------------------------------------------------------ keys


def load_client_keys(keys_dir: str | Path, firm: str) -> tuple[bytes, bytes]:
    """The firm's CURVE key pair ``(public, secret)`` from ``keys_dir/FIRM.key_secret`` (``cx keys new FIRM``)."""
    path = Path(keys_dir) / f"{firm}.key_secret"
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read the key pair of {firm} from {str(path)!r}: {exc}") from exc
    if not secret:
        raise ClientError(f"{str(path)!r} holds no secret key")
    return public, secret


def load_server_key(path: str | Path) -> bytes:
    """The gateway's CURVE public key from a certificate file (``gateway.key`` or ``gateway.key_secret``)."""
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read the gateway public key from {str(path)!r}: {exc}") from exc
    return public


# ------------------------------------------------------------ client ids

_id_lock = threading.Lock()
_last_id = 0


def next_client_order_id() -> int:
    """``max(previous + 1, time.time_ns())``: unique in the process, time-ordered, fresh after a restart."""
    global _last_id
    with _id_lock:
        _last_id = max(_last_id + 1, time.time_ns())
        return _last_id


# ------------------------------------------------------------ order view


@dataclass(slots=True)
class OpenOrder:
    """One open order of the session as the reports tell it (prices in ticks, quantities in GPUs)."""

    order_id: int
    client_order_id: int
    symbol: str
    side: Side
    price: int
    leaves: int
    cum: int = 0


@dataclass(slots=True)
class OpenPackage:
    """One live package of the session as the reports tell it."""

    package_id: int
    client_order_id: int
    side: Side
    alternatives: int
    legs: int


def _enum(cls: type, value: Any) -> Any:
    """An IntEnum member from a member, its int or its (case-insensitive) name."""
    if isinstance(value, str):
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(f"unknown {cls.__name__} {value!r}") from None
    return cls(value)


def _quote_entry(e: Any) -> QuoteEntry:
    return e if isinstance(e, QuoteEntry) else QuoteEntry(*e)


def _alternative(a: Any) -> PackageAlternative:
    """A ``PackageAlternative``, or ``(limit, [(symbol, qty) or PackageLeg, ...])``."""
    if isinstance(a, PackageAlternative):
        return a
    limit, legs = a
    return PackageAlternative([leg if isinstance(leg, PackageLeg) else PackageLeg(str(leg[0]), int(leg[1]))
                               for leg in legs], int(limit))


class _Session:
    """What both clients share: sequencing, the order view, message building. No I/O."""

    def __init__(self, *, logon_timeout: float = LOGON_TIMEOUT_S, silence_factor: float = SILENCE_FACTOR,
                 auto_reconnect: bool = False):
        self.logon_timeout = logon_timeout
        self.silence_factor = silence_factor
        self.auto_reconnect = auto_reconnect
        self.endpoint = ""
        self.session = ""
        self.firm = ""
        self.heartbeat_ms = 1000
        self.server_heartbeat_ms = 1000
        self.cancel_on_disconnect = True
        self._plain_firm: str | None = None
        self._client_keys: tuple[bytes, bytes] | None = None
        self._server_key: bytes | None = None
        self.last_seq = 0
        self.resend_until = 1
        self.logged_on = False
        self.orders: dict[int, OpenOrder] = {}
        self.packages: dict[int, OpenPackage] = {}
        self.duplicates = 0
        self.gaps = 0
        self.reconnects = 0
        self._gap_resumes = 0
        self._pending: deque[Any] = deque()
        self._unanswered: dict[int, Any] = {}  # client order id -> NewOrder / NewPackage / NewBlockPackage sent
        self._resend_unanswered = False  # after a logon that LogonRequired caused, once the history is in
        self.logons_required = 0
        self._last_sent = 0.0
        self._last_received = 0.0

    # ------------------------------------------------------- parameters

    def _set_params(self, endpoint: str, session: str, firm: str | None, client_keys: Any, server_key: Any,
                    next_seq: int, heartbeat_ms: int, cancel_on_disconnect: bool) -> None:
        if (client_keys is None) != (server_key is None):
            raise ValueError("CURVE needs both client_keys (public, secret) and server_key")
        if client_keys is None and not firm:
            raise ValueError("plain-text mode needs firm=...; with CURVE, pass client_keys and server_key")
        if next_seq < 1:
            raise ValueError(f"next_seq must be >= 1, not {next_seq}")
        if heartbeat_ms <= 0:
            raise ValueError(f"heartbeat_ms must be positive, not {heartbeat_ms}")
        self.endpoint = endpoint
        self.session = session
        self._plain_firm = firm if client_keys is None else None
        self.firm = firm or ""
        if client_keys is not None:
            public, secret = client_keys
            self._client_keys = (_key_bytes(public), _key_bytes(secret))
            self._server_key = _key_bytes(server_key)
        else:
            self._client_keys = self._server_key = None
        self.heartbeat_ms = heartbeat_ms
        self.cancel_on_disconnect = cancel_on_disconnect
        self.last_seq = next_seq - 1  # a fresh start, or the caller's persisted position
        self.orders.clear()
        self.packages.clear()
        self._pending.clear()
        self._unanswered.clear()
        self._resend_unanswered = False
        self._gap_resumes = 0

    def _configure(self, sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.LINGER, 200)
        sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES * 4)
        if self._client_keys is not None:
            sock.curve_serverkey = self._server_key
            sock.curve_publickey, sock.curve_secretkey = self._client_keys

    def _logon_frame(self) -> bytes:
        return client_encoder.encode(Logon(session=self.session, next_seq=self.last_seq + 1,
                                           heartbeat_ms=self.heartbeat_ms,
                                           cancel_on_disconnect=self.cancel_on_disconnect,
                                           firm=self._plain_firm or ""))

    def _on_logon_answer(self, msg: Any) -> LogonAccepted:
        if isinstance(msg, LogonRejected):
            raise LogonError(f"logon refused: {msg.text}", rejected=True)
        if isinstance(msg, ProtocolError):
            raise LogonError(f"logon refused: protocol error: {msg.text}", rejected=True)
        assert isinstance(msg, LogonAccepted)
        if msg.next_seq < self.last_seq + 1:
            raise LogonError(f"the gateway's session {msg.session!r} is at seq {msg.next_seq - 1}, behind the "
                             f"{self.last_seq} this client has seen: it is not the same session history (another "
                             "day or a reset); log on with next_seq=1 or under a new session name", rejected=True)
        self.firm = msg.firm
        self.session = msg.session
        self.server_heartbeat_ms = msg.heartbeat_ms
        self.resend_until = msg.next_seq
        self.logged_on = True
        self._last_received = self._last_sent = time.monotonic()
        return msg

    # ------------------------------------------------------ sequencing

    def _take(self, frame: bytes) -> bool:
        """Decode one frame's messages into ``_pending`` (those for the caller); ``True`` when one revealed a gap."""
        self._last_received = time.monotonic()
        try:
            msgs = decode_server_frame(frame)
        except msgspec.DecodeError as exc:
            raise ClientError(f"undecodable frame from the gateway ({len(frame)} bytes): {exc}") from exc
        return any([self._take_message(msg) for msg in msgs])

    def _take_message(self, msg: Any) -> bool:
        if isinstance(msg, Heartbeat):
            return False
        if isinstance(msg, LogonRequired):  # a new gateway on this socket: log on again, then resend what it refused
            self.logons_required += 1
            if not self.logged_on:  # the session had ended (logout, disconnect): nothing to resume by itself
                return False
            self._resend_unanswered = True
            return True
        seq = getattr(msg, "seq", None)
        if seq is not None:
            if seq <= self.last_seq:
                self.duplicates += 1
                return False
            if seq > self.last_seq + 1:
                self.gaps += 1
                return True
            self.last_seq = seq
            self._gap_resumes = 0
            self._apply(msg)
            if isinstance(msg, SystemEvent) and msg.code in SESSION_END_CODES and seq >= self.resend_until:
                self.logged_on = False  # the gateway ended this connection's session (no more heartbeats)
        self._pending.append(msg)
        return False

    def _apply(self, msg: Any) -> None:
        orders = self.orders
        if isinstance(msg, Accepted | Rejected | PackageAccepted | PackageRejected):
            self._unanswered.pop(msg.client_order_id, None)
        if isinstance(msg, Accepted):
            orders[msg.order_id] = OpenOrder(msg.order_id, msg.client_order_id, msg.symbol, Side(msg.side),
                                             msg.price, msg.qty)
        elif isinstance(msg, Executed):
            o = orders.get(msg.order_id)
            if o is not None:
                o.leaves, o.cum = msg.leaves, msg.cum
                if msg.leaves <= 0:
                    del orders[msg.order_id]
        elif isinstance(msg, Replaced):
            o = orders.get(msg.order_id)
            if o is not None:
                o.price, o.leaves = msg.price, msg.leaves
                if msg.leaves <= 0:
                    del orders[msg.order_id]
        elif isinstance(msg, Cancelled) or (isinstance(msg, CancelRejected)
                                            and msg.reason == RejectReason.UNKNOWN_ORDER):
            orders.pop(msg.order_id, None)
        elif isinstance(msg, PackageAccepted):
            self.packages[msg.package_id] = OpenPackage(msg.package_id, msg.client_order_id, Side(msg.side),
                                                        msg.alternatives, msg.legs)
        elif (isinstance(msg, PackageExecuted) and msg.last) or isinstance(msg, PackageCancelled) or (
                isinstance(msg, PackageCancelRejected) and msg.reason == RejectReason.UNKNOWN_ORDER):
            self.packages.pop(msg.package_id, None)

    def _gap_resume_allowed(self) -> None:
        self._gap_resumes += 1
        if self._gap_resumes > MAX_GAP_RESUMES:
            raise SequenceGapError(f"sequence gap after seq {self.last_seq} persists after {MAX_GAP_RESUMES} "
                                   "resends")

    # ----------------------------------------------------------- timing

    def _heartbeat_due_in(self, now: float) -> float:
        return self._last_sent + self.heartbeat_ms / 1000 - now

    def _silence_limit(self) -> float:
        return self.silence_factor * self.server_heartbeat_ms / 1000

    def _silent_error(self) -> GatewaySilentError:
        self.logged_on = False  # presumed gone: sends raise NotLoggedOnError until reconnect()
        return GatewaySilentError(f"nothing from the gateway at {self.endpoint} for "
                                  f"{time.monotonic() - self._last_received:.1f}s (its heartbeat is "
                                  f"{self.server_heartbeat_ms} ms)")

    # --------------------------------------------------------- messages

    def is_resend(self, msg: Any) -> bool:
        """Whether a sequenced message was sent before the latest logon (a resend of the session's history)."""
        seq = getattr(msg, "seq", None)
        return seq is not None and seq < self.resend_until

    def resend_complete(self) -> bool:
        """Whether every message the gateway had sent before the latest logon has been received."""
        return self.last_seq >= self.resend_until - 1

    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        """The open orders of the local view, by order id (optionally of one instrument)."""
        return [o for _, o in sorted(self.orders.items()) if symbol is None or o.symbol == symbol]

    def _new_order_msg(self, symbol: str, side: Any, qty: int, price: int, ord_type: Any, tif: Any, post_only: bool,
                       stp: Any, expire_ts: int, client_order_id: int | None) -> NewOrder:
        cid = next_client_order_id() if client_order_id is None else int(client_order_id)
        return NewOrder(client_order_id=cid, symbol=symbol, side=_enum(Side, side), qty=int(qty), price=int(price),
                        ord_type=_enum(OrderType, ord_type), tif=_enum(TimeInForce, tif), post_only=bool(post_only),
                        stp=_enum(SelfTradePrevention, stp), expire_ts=int(expire_ts))

    def _mass_quote_msg(self, quote_id: int, entries: Iterable[Any]) -> MassQuote:
        items = [_quote_entry(e) for e in entries]
        if not items or len(items) > MAX_QUOTE_ENTRIES:
            raise ValueError(f"a mass quote holds 1 to {MAX_QUOTE_ENTRIES} entries, not {len(items)}")
        return MassQuote(quote_id=int(quote_id), entries=items)

    def _package_msg(self, side: Any, alternatives: Iterable[Any], tif: Any, expire_ts: int,
                     client_order_id: int | None) -> NewPackage:
        cid = next_client_order_id() if client_order_id is None else int(client_order_id)
        return NewPackage(client_order_id=cid, side=_enum(Side, side), alternatives=[_alternative(a)
                                                                                      for a in alternatives],
                          tif=_enum(TimeInForce, tif), expire_ts=int(expire_ts))

    def _block_package_msg(self, blocks: Any, tif: Any, expire_ts: int, client_order_id: int | None) -> NewBlockPackage:
        cid = next_client_order_id() if client_order_id is None else int(client_order_id)
        common = {"client_order_id": cid, "tif": _enum(TimeInForce, tif), "expire_ts": int(expire_ts)}
        if isinstance(blocks, BlockOffer):
            return NewBlockPackage(offer=blocks, **common)
        requests = [blocks] if isinstance(blocks, BlockRequest) else list(blocks)
        if not requests or not all(isinstance(r, BlockRequest) for r in requests):
            raise ValueError("a block package is one BlockOffer, or one or more BlockRequests")
        return NewBlockPackage(bid=requests, **common)

    def _frame(self, msg: Any) -> bytes:
        if not self.logged_on:
            raise NotLoggedOnError(f"not logged on (session {self.session!r}): connect() or reconnect() first")
        frame = client_encoder.encode(msg)
        if len(frame) > MAX_FRAME_BYTES:
            raise ValueError(f"message of {len(frame)} bytes is above the gateway's {MAX_FRAME_BYTES}-byte limit")
        if isinstance(msg, NewOrder | NewPackage | NewBlockPackage):
            self._unanswered[msg.client_order_id] = msg
        return frame

    def _due_resends(self) -> list[Any]:
        """After a logon that a ``LogonRequired`` caused, once the session's history has been received: the orders
        and packages sent but still unanswered (the gateway never processed them), to send again. O(them)."""
        if not (self._resend_unanswered and self.logged_on and self.resend_complete()):
            return []
        self._resend_unanswered = False
        return list(self._unanswered.values())


def _key_bytes(key: str | bytes) -> bytes:
    key = key.encode() if isinstance(key, str) else bytes(key)
    if len(key) != 40:
        raise ValueError("a CURVE key is 40 z85 characters")
    return key


def _handshake_error(event: int) -> LogonError:
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return LogonError("the gateway refused this CURVE key (authentication failed): is the firm's public key "
                          "in the gateway configuration?", rejected=True)
    return LogonError("CURVE handshake with the gateway failed: wrong gateway public key (--server-key)?",
                      rejected=True)


def _no_answer(s: _Session) -> LogonError:
    hint = " (with CURVE, a wrong gateway key looks like this)" if s._client_keys is not None else ""
    return LogonError(f"no answer to the logon from {s.endpoint} within {s.logon_timeout:g}s{hint}")


# -------------------------------------------------------------- blocking


class OrderEntryClient(_Session):
    """A blocking order-entry session (see the module docstring). Not thread-safe: use it from one thread.

    ``OrderEntryClient(logon_timeout=5.0, silence_factor=3.0, auto_reconnect=False, context=None)``,
    then ``connect(...)``; a context manager that logs out and closes on exit.
    """

    def __init__(self, *, logon_timeout: float = LOGON_TIMEOUT_S, silence_factor: float = SILENCE_FACTOR,
                 auto_reconnect: bool = False, context: zmq.Context | None = None):
        super().__init__(logon_timeout=logon_timeout, silence_factor=silence_factor, auto_reconnect=auto_reconnect)
        self._ctx = context or zmq.Context.instance()
        self._sock: zmq.Socket | None = None

    def __enter__(self) -> OrderEntryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ClientError, zmq.ZMQError):
            if self.logged_on:
                self.logout()
        self.close()

    # -------------------------------------------------------- sessions

    def connect(self, endpoint: str = DEFAULT_ENDPOINT, session: str = "default", *, firm: str | None = None,
                client_keys: tuple[str | bytes, str | bytes] | None = None, server_key: str | bytes | None = None,
                next_seq: int = 1, heartbeat_ms: int = 1000, cancel_on_disconnect: bool = True) -> LogonAccepted:
        """Connect and log on; returns the ``LogonAccepted``. Raises ``LogonError`` (refused or no answer in time).

        ``next_seq``: the first gateway seq not yet received (the gateway resends from there; 1 = the whole
        session history). ``cancel_on_disconnect``: the gateway cancels the session's orders when it logs
        out or goes silent.
        """
        self.close()
        self._set_params(endpoint, session, firm, client_keys, server_key, next_seq, heartbeat_ms,
                         cancel_on_disconnect)
        return self._logon()

    def reconnect(self) -> LogonAccepted:
        """A new socket and a new logon with ``next_seq = last_seq + 1``: the gateway resends what was missed."""
        if not self.endpoint:
            raise NotLoggedOnError("reconnect() before any connect()")
        self.close()
        self.reconnects += 1
        return self._logon()

    def _logon(self) -> LogonAccepted:
        sock = self._ctx.socket(zmq.DEALER)
        self._configure(sock)
        monitor = sock.get_monitor_socket(_HANDSHAKE_EVENTS) if self._client_keys is not None else None
        try:
            sock.connect(self.endpoint)
            sock.send(self._logon_frame())
            self._last_sent = time.monotonic()
            answer = self._await_logon_answer(sock, monitor)
        except BaseException:
            sock.close(linger=0)
            raise
        finally:
            if monitor is not None:
                if not sock.closed:
                    sock.disable_monitor()
                monitor.close(linger=0)
        self._sock = sock
        try:
            return self._on_logon_answer(answer)
        except LogonError:
            self.close()
            raise

    def _await_logon_answer(self, sock: zmq.Socket, monitor: zmq.Socket | None) -> Any:
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        if monitor is not None:
            poller.register(monitor, zmq.POLLIN)
        deadline = time.monotonic() + self.logon_timeout
        while (left := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(math.ceil(left * 1000)))
            if monitor is not None and monitor in ready:
                event = parse_monitor_message(monitor.recv_multipart())["event"]
                if event & _HANDSHAKE_EVENTS:
                    raise _handshake_error(event)
            if sock in ready:
                try:
                    msgs = decode_server_frame(sock.recv())
                except msgspec.DecodeError as exc:
                    raise LogonError(f"undecodable answer to the logon: {exc}") from exc
                for msg in msgs:
                    if isinstance(msg, LogonAccepted | LogonRejected | ProtocolError):
                        return msg
        raise _no_answer(self)

    def logout(self, timeout: float = LOGOUT_TIMEOUT_S) -> None:
        """Send Logout and wait up to ``timeout`` s for the gateway's ``SystemEvent(LOGOUT)``.

        Messages that arrive meanwhile stay queued for ``recv``. With ``cancel_on_disconnect`` the gateway
        cancels the session's open orders.
        """
        if not self.logged_on or self._sock is None:
            return
        self._send(Logout())
        deadline = time.monotonic() + timeout
        while self.logged_on and (left := deadline - time.monotonic()) > 0:
            if not self._read(left):
                break
        self.logged_on = False

    def close(self) -> None:
        """Close the socket (no Logout: the gateway notices the silence). Safe to call twice."""
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        self.logged_on = False

    # --------------------------------------------------------- sending

    def _send(self, msg: Any) -> None:
        frame = self._frame(msg)
        assert self._sock is not None
        try:
            self._sock.send(frame)
        except zmq.Again:
            raise ClientError(f"send to {self.endpoint} timed out after {SEND_TIMEOUT_MS} ms") from None
        self._last_sent = time.monotonic()

    def new_order(self, symbol: str, side: Side | int | str, qty: int, price: int = 0, *,
                  ord_type: OrderType | int | str = OrderType.LIMIT, tif: TimeInForce | int | str = TimeInForce.GTC,
                  post_only: bool = False, stp: SelfTradePrevention | int | str = SelfTradePrevention.CANCEL_NEWEST,
                  expire_ts: int = 0, client_order_id: int | None = None) -> int:
        """Send a NewOrder (price in ticks, ignored for MARKET); returns its client order id."""
        msg = self._new_order_msg(symbol, side, qty, price, ord_type, tif, post_only, stp, expire_ts,
                                  client_order_id)
        self._send(msg)
        return msg.client_order_id

    def cancel(self, order_id: int) -> None:
        self._send(Cancel(order_id=int(order_id)))

    def modify(self, order_id: int, price: int, qty: int) -> None:
        """New price (ticks) and new open quantity of a live order (see the matching rules for priority)."""
        self._send(Modify(order_id=int(order_id), price=int(price), qty=int(qty)))

    def mass_cancel(self, symbol: str = "") -> None:
        """Cancel every order and quote of the firm on ``symbol`` ("" = every instrument)."""
        self._send(MassCancel(symbol=symbol))

    def mass_quote(self, quote_id: int, entries: Iterable[QuoteEntry | tuple[str, int, int, int, int]]) -> None:
        """Entries: ``QuoteEntry`` or ``(symbol, bid_price, bid_qty, ask_price, ask_qty)``; qty 0 = no such side."""
        self._send(self._mass_quote_msg(quote_id, entries))

    def send_package(self, side: Side | int | str, alternatives: Iterable[Any], *,
                     tif: TimeInForce | int | str = TimeInForce.GTC, expire_ts: int = 0,
                     client_order_id: int | None = None) -> int:
        """Send a NewPackage; returns its client order id.

        ``alternatives``: ``PackageAlternative``s or ``(limit, [(symbol, qty), ...])``, limits in ticks for
        the whole alternative. BUY: an exclusive group (at most one is accepted, in full); SELL: one
        alternative, its limit the minimum total."""
        msg = self._package_msg(side, alternatives, tif, expire_ts, client_order_id)
        self._send(msg)
        return msg.client_order_id

    def send_block_package(self, blocks: BlockOffer | BlockRequest | Iterable[BlockRequest], *,
                           tif: TimeInForce | int | str = TimeInForce.GTC, expire_ts: int = 0,
                           client_order_id: int | None = None) -> int:
        """Send a NewBlockPackage: one or more ``BlockRequest``s (one bid), or one ``BlockOffer``."""
        msg = self._block_package_msg(blocks, tif, expire_ts, client_order_id)
        self._send(msg)
        return msg.client_order_id

    def cancel_package(self, package_id: int) -> None:
        self._send(CancelPackage(package_id=int(package_id)))

    def heartbeat(self) -> None:
        self._send(Heartbeat())

    # ------------------------------------------------------- receiving

    def recv(self, timeout: float | None = None) -> ServerMessage | None:
        """The next new gateway message, or ``None`` after ``timeout`` s (``None``: wait without limit).

        Sends heartbeats when due, drops duplicates, resumes after gaps, raises ``GatewaySilentError``
        when the gateway is silent (after one reconnect with ``auto_reconnect``).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._sock is None:
                raise NotLoggedOnError("recv() on a closed client")
            if not self.logged_on:  # logged out: nothing more will come
                if not self._read(0.0):
                    return None
                continue
            now = time.monotonic()
            if self._heartbeat_due_in(now) <= 0:
                self._send(Heartbeat())
            wait = min(self._heartbeat_due_in(now), self._last_received + self._silence_limit() - now)
            if deadline is not None:
                wait = min(wait, deadline - now)
            if self._read(max(wait, 0.0)) and self._pending:
                continue
            now = time.monotonic()
            if self.logged_on and now >= self._last_received + self._silence_limit():
                if not self.auto_reconnect:
                    raise self._silent_error()
                error = self._silent_error()
                try:
                    self.reconnect()
                except LogonError as exc:
                    raise error from exc
                continue
            if deadline is not None and now >= deadline:
                return None

    def _read(self, wait: float) -> bool:
        """Wait up to ``wait`` s for frames and take all that are ready; ``True`` if any frame came."""
        sock = self._sock
        assert sock is not None
        if not sock.poll(math.ceil(wait * 1000), zmq.POLLIN):
            return False
        for _ in range(10_000):
            try:
                frame = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if self._take(frame):
                self._gap_resume_allowed()
                self.reconnect()  # the old socket, and whatever it still held, is gone
                break
        for msg in self._due_resends():
            self._send(msg)
        return True

    def iter_messages(self, idle_timeout: float | None = None) -> Iterator[ServerMessage]:
        """Every new message as it comes; ends after ``idle_timeout`` s without one (``None``: never)."""
        while (msg := self.recv(idle_timeout)) is not None:
            yield msg


# ----------------------------------------------------------------- async


class AsyncOrderEntryClient(_Session):
    """The asyncio form of ``OrderEntryClient``: the same methods, awaited; a task sends the heartbeats.

    Use it from one event loop. ``async with AsyncOrderEntryClient() as c: await c.connect(...)``.
    """

    def __init__(self, *, logon_timeout: float = LOGON_TIMEOUT_S, silence_factor: float = SILENCE_FACTOR,
                 auto_reconnect: bool = False, context: zmq.asyncio.Context | None = None):
        super().__init__(logon_timeout=logon_timeout, silence_factor=silence_factor, auto_reconnect=auto_reconnect)
        self._ctx = context or zmq.asyncio.Context.instance()
        self._sock: zmq.asyncio.Socket | None = None
        self._heartbeat_task: asyncio.Task | None = None

    async def __aenter__(self) -> AsyncOrderEntryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(ClientError, zmq.ZMQError):
            if self.logged_on:
                await self.logout()
        await self.close()

    async def connect(self, endpoint: str = DEFAULT_ENDPOINT, session: str = "default", *, firm: str | None = None,
                      client_keys: tuple[str | bytes, str | bytes] | None = None,
                      server_key: str | bytes | None = None, next_seq: int = 1, heartbeat_ms: int = 1000,
                      cancel_on_disconnect: bool = True) -> LogonAccepted:
        """As ``OrderEntryClient.connect``."""
        await self.close()
        self._set_params(endpoint, session, firm, client_keys, server_key, next_seq, heartbeat_ms,
                         cancel_on_disconnect)
        return await self._logon()

    async def reconnect(self) -> LogonAccepted:
        """As ``OrderEntryClient.reconnect``."""
        if not self.endpoint:
            raise NotLoggedOnError("reconnect() before any connect()")
        await self.close()
        self.reconnects += 1
        return await self._logon()

    async def _logon(self) -> LogonAccepted:
        sock = self._ctx.socket(zmq.DEALER)
        self._configure(sock)
        monitor = sock.get_monitor_socket(_HANDSHAKE_EVENTS) if self._client_keys is not None else None
        try:
            sock.connect(self.endpoint)
            await sock.send(self._logon_frame())
            self._last_sent = time.monotonic()
            answer = await self._await_logon_answer(sock, monitor)
        except BaseException:
            sock.close(linger=0)
            raise
        finally:
            if monitor is not None:
                if not sock.closed:
                    sock.disable_monitor()
                monitor.close(linger=0)
        self._sock = sock
        try:
            accepted = self._on_logon_answer(answer)
        except LogonError:
            await self.close()
            raise
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeats(sock))
        return accepted

    async def _await_logon_answer(self, sock: zmq.asyncio.Socket, monitor: zmq.asyncio.Socket | None) -> Any:
        poller = zmq.asyncio.Poller()
        poller.register(sock, zmq.POLLIN)
        if monitor is not None:
            poller.register(monitor, zmq.POLLIN)
        deadline = time.monotonic() + self.logon_timeout
        while (left := deadline - time.monotonic()) > 0:
            ready = dict(await poller.poll(math.ceil(left * 1000)))
            if monitor is not None and monitor in ready:
                event = parse_monitor_message(await monitor.recv_multipart())["event"]
                if event & _HANDSHAKE_EVENTS:
                    raise _handshake_error(event)
            if sock in ready:
                try:
                    msgs = decode_server_frame(await sock.recv())
                except msgspec.DecodeError as exc:
                    raise LogonError(f"undecodable answer to the logon: {exc}") from exc
                for msg in msgs:
                    if isinstance(msg, LogonAccepted | LogonRejected | ProtocolError):
                        return msg
        raise _no_answer(self)

    async def _heartbeats(self, sock: zmq.asyncio.Socket) -> None:
        """Send a Heartbeat whenever nothing was sent for ``heartbeat_ms``; ends with the socket."""
        while self._sock is sock and self.logged_on:
            due = self._heartbeat_due_in(time.monotonic())
            if due > 0:
                await asyncio.sleep(due)
                continue
            try:
                await self._send(Heartbeat())
            except (ClientError, zmq.ZMQError):
                return

    async def logout(self, timeout: float = LOGOUT_TIMEOUT_S) -> None:
        """As ``OrderEntryClient.logout``."""
        if not self.logged_on or self._sock is None:
            return
        await self._send(Logout())
        deadline = time.monotonic() + timeout
        while self.logged_on and (left := deadline - time.monotonic()) > 0:
            if not await self._read(left):
                break
        self.logged_on = False

    async def close(self) -> None:
        """Stop the heartbeat task and close the socket (no Logout). Safe to call twice."""
        task, self._heartbeat_task = self._heartbeat_task, None
        sock, self._sock = self._sock, None
        self.logged_on = False
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if sock is not None:
            sock.close(linger=0)

    async def _send(self, msg: Any) -> None:
        frame = self._frame(msg)
        assert self._sock is not None
        self._last_sent = time.monotonic()  # before the await: the heartbeat task must not add one meanwhile
        try:
            await self._sock.send(frame)
        except zmq.Again:
            raise ClientError(f"send to {self.endpoint} timed out after {SEND_TIMEOUT_MS} ms") from None

    async def new_order(self, symbol: str, side: Side | int | str, qty: int, price: int = 0, *,
                        ord_type: OrderType | int | str = OrderType.LIMIT,
                        tif: TimeInForce | int | str = TimeInForce.GTC, post_only: bool = False,
                        stp: SelfTradePrevention | int | str = SelfTradePrevention.CANCEL_NEWEST,
                        expire_ts: int = 0, client_order_id: int | None = None) -> int:
        """As ``OrderEntryClient.new_order``."""
        msg = self._new_order_msg(symbol, side, qty, price, ord_type, tif, post_only, stp, expire_ts,
                                  client_order_id)
        await self._send(msg)
        return msg.client_order_id

    async def cancel(self, order_id: int) -> None:
        await self._send(Cancel(order_id=int(order_id)))

    async def modify(self, order_id: int, price: int, qty: int) -> None:
        await self._send(Modify(order_id=int(order_id), price=int(price), qty=int(qty)))

    async def mass_cancel(self, symbol: str = "") -> None:
        await self._send(MassCancel(symbol=symbol))

    async def mass_quote(self, quote_id: int,
                         entries: Iterable[QuoteEntry | tuple[str, int, int, int, int]]) -> None:
        await self._send(self._mass_quote_msg(quote_id, entries))

    async def send_package(self, side: Side | int | str, alternatives: Iterable[Any], *,
                           tif: TimeInForce | int | str = TimeInForce.GTC, expire_ts: int = 0,
                           client_order_id: int | None = None) -> int:
        """As ``OrderEntryClient.send_package``."""
        msg = self._package_msg(side, alternatives, tif, expire_ts, client_order_id)
        await self._send(msg)
        return msg.client_order_id

    async def send_block_package(self, blocks: BlockOffer | BlockRequest | Iterable[BlockRequest], *,
                                 tif: TimeInForce | int | str = TimeInForce.GTC, expire_ts: int = 0,
                                 client_order_id: int | None = None) -> int:
        """As ``OrderEntryClient.send_block_package``."""
        msg = self._block_package_msg(blocks, tif, expire_ts, client_order_id)
        await self._send(msg)
        return msg.client_order_id

    async def cancel_package(self, package_id: int) -> None:
        await self._send(CancelPackage(package_id=int(package_id)))

    async def heartbeat(self) -> None:
        await self._send(Heartbeat())

    async def recv(self, timeout: float | None = None) -> ServerMessage | None:
        """As ``OrderEntryClient.recv`` (heartbeats are sent by the task, not here)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._sock is None:
                raise NotLoggedOnError("recv() on a closed client")
            if not self.logged_on:  # logged out: nothing more will come
                if not await self._read(0.0):
                    return None
                continue
            now = time.monotonic()
            wait = self._last_received + self._silence_limit() - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if await self._read(max(wait, 0.0)) and self._pending:
                continue
            now = time.monotonic()
            if self.logged_on and now >= self._last_received + self._silence_limit():
                if not self.auto_reconnect:
                    raise self._silent_error()
                error = self._silent_error()
                try:
                    await self.reconnect()
                except LogonError as exc:
                    raise error from exc
                continue
            if deadline is not None and now >= deadline:
                return None

    async def _read(self, wait: float) -> bool:
        sock = self._sock
        assert sock is not None
        if not await sock.poll(math.ceil(wait * 1000), zmq.POLLIN):
            return False
        for _ in range(10_000):
            try:
                frame = await sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if self._take(frame):
                self._gap_resume_allowed()
                await self.reconnect()  # the old socket, and whatever it still held, is gone
                break
        for msg in self._due_resends():
            await self._send(msg)
        return True

    async def iter_messages(self, idle_timeout: float | None = None) -> AsyncIterator[ServerMessage]:
        """As ``OrderEntryClient.iter_messages``."""
        while (msg := await self.recv(idle_timeout)) is not None:
            yield msg


# ------------------------------------------------------------- reporting


def format_report(msg: Any, tick: Decimal | str = DEFAULT_TICK) -> str:
    """One gateway message as one line in human units (dollars, GPUs, UTC time, names of codes)."""

    def px(ticks: int) -> str:
        return format_price(ticks, tick)

    when = f"{format_ts(msg.ts)} " if hasattr(msg, "ts") else ""
    if isinstance(msg, Accepted):
        return (f"{when}accepted   order {msg.order_id} (client id {msg.client_order_id}): {Side(msg.side).name} "
                f"{format_qty(msg.qty)} {msg.symbol} @ {px(msg.price)}")
    if isinstance(msg, Rejected):
        return (f"{when}rejected   client id {msg.client_order_id} {msg.symbol}: {_name(RejectReason, msg.reason)}"
                f" ({msg.text or REJECT_TEXT.get(msg.reason, '')})")
    if isinstance(msg, Executed):
        return (f"{when}executed   order {msg.order_id}: {Side(msg.side).name} {format_qty(msg.qty)} {msg.symbol} @ "
                f"{px(msg.price)} ({_name(Liquidity, msg.liquidity).lower()}, trade {msg.trade_id}); "
                f"filled {format_qty(msg.cum)}, open {format_qty(msg.leaves)}")
    if isinstance(msg, Cancelled):
        return (f"{when}cancelled  order {msg.order_id}: {Side(msg.side).name} {format_qty(msg.qty)} {msg.symbol} "
                f"({_name(CancelReason, msg.reason)})")
    if isinstance(msg, Replaced):
        return (f"{when}replaced   order {msg.order_id}: {msg.symbol} now {format_qty(msg.leaves)} open @ "
                f"{px(msg.price)}")
    if isinstance(msg, CancelRejected):
        return (f"{when}cancel/modify rejected for order {msg.order_id}: {_name(RejectReason, msg.reason)} "
                f"({msg.text or REJECT_TEXT.get(msg.reason, '')})")
    if isinstance(msg, PackageAccepted | PackageRejected | PackageExecuted | PackageCancelled
                  | PackageCancelRejected | PackageNotFilled):
        return when + _format_package_report(msg, px)
    if isinstance(msg, SystemEvent):
        return f"{when}system     {msg.code}: {msg.text}"
    if isinstance(msg, ProtocolError):
        about = " ".join(x for x in (msg.message_type, "" if msg.client_order_id is None
                                     else f"client id {msg.client_order_id}") if x)
        return f"protocol error{f' ({about})' if about else ''}: {msg.text}"
    return repr(msg)


def _format_package_report(msg: Any, px: Any) -> str:
    side = getattr(msg, "side", None)
    kind = "" if side is None else "bid" if side == Side.BUY else "offer"
    if isinstance(msg, PackageAccepted):
        return (f"accepted   package {msg.package_id} (client id {msg.client_order_id}): {kind}, "
                f"{msg.alternatives} alternative{'' if msg.alternatives == 1 else 's'}, {msg.legs} legs")
    if isinstance(msg, PackageRejected):
        reason = _name(RejectReason, msg.gateway_reason) if msg.gateway_reason else _name(AuctionReject, msg.reason)
        return (f"rejected   package {kind} client id {msg.client_order_id}: {reason} "
                f"({msg.text or AUCTION_REJECT_TEXT.get(msg.reason, '')})")
    if isinstance(msg, PackageExecuted):
        return (f"executed   package {msg.package_id} in auction {msg.auction}: {'BUY' if kind == 'bid' else 'SELL'} "
                f"{format_qty(msg.qty)} {msg.symbol} @ {px(msg.price)} = ${px(msg.amount)} (alternative "
                f"{msg.alternative}{', last leg' if msg.last else ''})")
    if isinstance(msg, PackageNotFilled):
        if msg.reason in (Outcome.NO_SUPPLY, Outcome.NO_DEMAND):
            nobody = "nothing was offered in an hour of every alternative" if msg.reason == Outcome.NO_SUPPLY \
                else "nobody bid for an hour of the block"
            return (f"not filled package {msg.package_id} in auction {msg.auction}: {_name(Outcome, msg.reason)}; "
                    f"{nobody}; still live")
        return (f"not filled package {msg.package_id} in auction {msg.auction}: {_name(Outcome, msg.reason)}; best "
                f"alternative {msg.alternative} costs ${px(msg.price)} at the auction's prices, "
                f"{'limit' if kind == 'bid' else 'minimum'} ${px(msg.limit)}; still live")
    if isinstance(msg, PackageCancelled):
        return f"cancelled  package {msg.package_id} ({kind}, client id {msg.client_order_id}): " \
               f"{_name(CancelReason, msg.reason)}"
    return (f"cancel rejected for package {msg.package_id}: {_name(RejectReason, msg.reason)} "
            f"({msg.text or REJECT_TEXT.get(msg.reason, '')})")


def _name(cls: type, value: int) -> str:
    try:
        return cls(value).name
    except ValueError:
        return str(value)
