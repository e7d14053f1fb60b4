"""Order-entry sessions: who is connected, what they were sent, how fast they may send.

A session is (firm, session name). It outlives its connections: a client that
reconnects and logs on to the same session with ``next_seq = k`` is sent again
every stored message from seq k. Each session keeps:

* the encoded messages it was sent, in seq order (``store[seq - 1]``), for the
  trading day: O(1) append, O(messages resent) resend;
* the ZeroMQ routing id of its current connection, or None while disconnected;
* when it was last heard from and last sent to (heartbeats, cancel on disconnect);
* a token bucket that limits its order messages per second (cancels are never
  throttled: they only reduce risk);
* the ids of its live orders and live packages, for cancel on disconnect.

Durability (a venue with a journal): every sequenced message is a
deterministic function of the journal, so a restart rebuilds every store
exactly (same seqs, same bytes) and a client resumes across it as across a
reconnect. A message made from an engine event goes to the session that sent
the command behind it, or that owns the order; a ``BatchNote`` journaled with
each batch names those sessions and carries, verbatim, the few messages the
gateway makes itself (risk rejects, session ends, kill switch notices), which
come before the batch's own reports. The gateway sends no sequenced message
before the batch that carries or causes it is in the journal (on disk under
the default ``fsync="batch"``; ``gateway.server``). Cost: the note is O(commands) bytes (one small int per
command) plus the messages told; rebuilding costs one pass of the routing
over the journal's events.
"""

from __future__ import annotations

import msgspec

NS_PER_MS = 1_000_000
FLOOD_SECONDS = 2  # a session refused THROTTLED this many seconds' worth of its rate within as long: disconnected


class BatchNote(msgspec.Struct, array_like=True, frozen=True):
    """What the gateway journals with a batch of commands (``journal.log.Batch.note``).

    ``sessions``: (firm id, session name) of the sessions named below, by position.
    ``origins``: per command of the batch, the position of the session that sent it; -1: the gateway's own.
    ``told``: (position, encoded message) of each sequenced message the gateway made itself since the
    previous batch, in the order they were stored; they precede the batch's own reports.
    ``suspended``: the firms under the kill switch from this batch on, when that changed (else None).
    ``settings``: per session named, (cancel_on_disconnect, heartbeat_ms) of its logon, so that a restart knows
    which sessions to cancel if they do not come back ([]: a note written before it was added; defaults).
    """

    sessions: list[tuple[int, str]]
    origins: list[int]
    told: list[tuple[int, bytes]]
    suspended: list[int] | None = None
    settings: list[tuple[bool, int]] = []


encode_note = msgspec.msgpack.Encoder().encode
decode_note = msgspec.msgpack.Decoder(BatchNote).decode


class Session:
    __slots__ = ("firm_id", "firm", "name", "routing_id", "store", "last_heard_ns", "last_sent_ns",
                 "heartbeat_ms", "cancel_on_disconnect", "live_orders", "live_packages", "_tokens", "_tokens_ns",
                 "_rate", "_throttled", "_throttled_since_ns", "resend_from")

    def __init__(self, firm_id: int, firm: str, name: str, max_msgs_per_s: int):
        self.firm_id = firm_id
        self.firm = firm
        self.name = name
        self.routing_id: bytes | None = None
        self.store: list[bytes] = []
        self.last_heard_ns = 0
        self.last_sent_ns = 0
        self.heartbeat_ms = 1000
        self.cancel_on_disconnect = True
        self.live_orders: set[int] = set()
        self.live_packages: set[int] = set()  # package ids (numbered apart from order ids)
        self._rate = max_msgs_per_s
        self._tokens = float(max_msgs_per_s)  # burst: one second's worth
        self._tokens_ns = 0
        self._throttled = 0  # order messages refused THROTTLED since _throttled_since_ns
        self._throttled_since_ns = 0
        self.resend_from: int | None = None  # catching up after a logon: the store position sent next (paced)

    @property
    def next_seq(self) -> int:
        """The seq the next sequenced message will get."""
        return len(self.store) + 1

    def admit(self, now_ns: int) -> bool:
        """Take one token for an order message; False (throttled) when there is none. O(1)."""
        elapsed = now_ns - self._tokens_ns
        if elapsed > 0:
            self._tokens = min(float(self._rate), self._tokens + elapsed * self._rate / 1e9)
            self._tokens_ns = now_ns
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if now_ns - self._throttled_since_ns > FLOOD_SECONDS * 1_000_000_000:
            self._throttled, self._throttled_since_ns = 0, now_ns  # a new window
        self._throttled += 1
        return False

    def flooding(self) -> bool:
        """Refused THROTTLED more than ``FLOOD_SECONDS`` seconds' worth of its rate within such a window: it
        ignores THROTTLED (a session that only bursts now and then never gets there)."""
        return self._throttled > FLOOD_SECONDS * self._rate


class SessionTable:
    """Sessions by (firm, name) and by the routing id of their connection. O(1) lookups."""

    def __init__(self):
        self.by_key: dict[tuple[str, str], Session] = {}
        self.by_routing_id: dict[bytes, Session] = {}

    def bind(self, session: Session, routing_id: bytes) -> Session | None:
        """Attach a connection to the session; returns a session that had this connection before."""
        if session.routing_id is not None:
            self.by_routing_id.pop(session.routing_id, None)
        previous = self.by_routing_id.get(routing_id)
        if previous is not None and previous is not session:
            previous.routing_id = previous.resend_from = None
        session.routing_id = routing_id
        self.by_routing_id[routing_id] = session
        return previous

    def unbind(self, session: Session) -> None:
        if session.routing_id is not None:
            self.by_routing_id.pop(session.routing_id, None)
            session.routing_id = None
        session.resend_from = None

    def connected(self) -> list[Session]:
        return list(self.by_routing_id.values())
