"""The order-entry clients against a fake gateway: a minimal ROUTER that can misbehave on purpose.

The fake speaks the protocol (logon and resend from ``next_seq``, orders
accepted, heartbeats every ``heartbeat_ms``) and has knobs the real gateway
does not: go silent, drop sequenced frames (a gap), resend more than was asked
(duplicates), refuse or garble a logon, mute one connection. Every wait is
bounded in time.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time

import pytest
import zmq

from engine.codes import CancelReason, Liquidity, RejectReason, Side, TimeInForce
from gateway import protocol as p
from gateway.client import (
    AsyncOrderEntryClient,
    GatewaySilentError,
    LogonError,
    NotLoggedOnError,
    OrderEntryClient,
    format_report,
    next_client_order_id,
)

SYMBOL = "H100.US-EAST.FIRM.2026-12-01T13"
TS = 1_796_112_005 * 10**9


class FakeGateway:
    """A ROUTER on a free loopback port, served by a thread; attributes are the knobs."""

    def __init__(self, heartbeat_ms: int = 1000):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.heartbeat_ms = heartbeat_ms
        self.store: dict[str, list[bytes]] = {}
        self.rid: dict[str, bytes] = {}
        self.session_of: dict[bytes, str] = {}
        self.received: list = []
        self.heartbeats = 0
        self.logons = 0
        self.silent = False  # answer nothing, send no heartbeats
        self.muted: set[bytes] = set()  # connections sent nothing at all (as if the gateway forgot them)
        self.drop = 0  # the next N sequenced messages are stored but not sent: a gap
        self.overlap = 0  # resend this many messages more than asked for: duplicates
        self.refuse: set[str] = set()  # firms answered LogonRejected
        self.garble: set[str] = set()  # firms answered ProtocolError
        self.orders: dict[int, p.NewOrder] = {}
        self._next_order_id = 0
        self._inbox: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    # ------------------------------------------------------ test side

    def call(self, fn, timeout: float = 2.0):
        """Run ``fn()`` on the fake's thread and return its result."""
        done: queue.Queue = queue.Queue()
        self._inbox.put(lambda: done.put(fn()))
        return done.get(timeout=timeout)

    def push(self, session: str, code: str = "NOTE", text: str = "") -> int:
        """Deliver a SystemEvent to ``session`` (stored, sent if connected); returns its seq."""
        return self.call(lambda: self._deliver(session, lambda seq: p.SystemEvent(seq, TS, code, text or str(seq))))

    def wait_for(self, predicate, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.005)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close(linger=0)
        self.ctx.term()

    # ----------------------------------------------------- fake's side

    def _send(self, rid: bytes, msg) -> None:
        if not self.silent and rid not in self.muted:
            self.sock.send_multipart([rid, p.client_encoder.encode(msg)])

    def _deliver(self, session: str, build) -> int:
        store = self.store.setdefault(session, [])
        seq = len(store) + 1
        msg = build(seq)
        store.append(p.client_encoder.encode(msg))
        if self.drop > 0:
            self.drop -= 1
        elif session in self.rid:
            self._send(self.rid[session], msg)
        return seq

    def _run(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.is_set():
            if self.sock.poll(5):
                for _ in range(1000):
                    try:
                        rid, frame = self.sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._on_message(rid, p.client_decoder.decode(frame))
            while not self._inbox.empty():
                self._inbox.get_nowait()()
            if time.monotonic() - last_beat >= self.heartbeat_ms / 1000:
                last_beat = time.monotonic()
                for rid in self.rid.values():
                    self._send(rid, p.Heartbeat())

    def _on_message(self, rid: bytes, m) -> None:
        self.received.append(m)
        if isinstance(m, p.Logon):
            return self._logon(rid, m)
        if isinstance(m, p.Heartbeat):
            self.heartbeats += 1
            return
        session = self.session_of.get(rid)
        if session is None:
            return self._send(rid, p.LogonRequired("not logged on"))
        if isinstance(m, p.NewOrder):
            self._next_order_id += 1
            oid = self._next_order_id
            self.orders[oid] = m
            self._deliver(session, lambda seq: p.Accepted(seq, TS, m.client_order_id, oid, m.symbol, m.side, m.price,
                                                          m.qty))
            if m.tif == TimeInForce.IOC:
                self._deliver(session, lambda seq: p.Cancelled(seq, TS, oid, m.client_order_id, m.symbol, m.side,
                                                               m.qty, CancelReason.IOC))
                del self.orders[oid]
        elif isinstance(m, p.Cancel):
            o = self.orders.pop(m.order_id, None)
            if o is None:
                self._deliver(session, lambda seq: p.CancelRejected(seq, TS, m.order_id, RejectReason.UNKNOWN_ORDER,
                                                                    "no live order with that id"))
            else:
                self._deliver(session, lambda seq: p.Cancelled(seq, TS, m.order_id, o.client_order_id, o.symbol,
                                                               o.side, o.qty, CancelReason.USER))
        elif isinstance(m, p.Logout):
            self._deliver(session, lambda seq: p.SystemEvent(seq, TS, "LOGOUT", "logged out"))
            del self.rid[session]
            del self.session_of[rid]

    def _logon(self, rid: bytes, m: p.Logon) -> None:
        self.logons += 1
        if m.firm in self.refuse:
            return self._send(rid, p.LogonRejected(f"unknown firm {m.firm!r}"))
        if m.firm in self.garble:
            return self._send(rid, p.ProtocolError("garbled"))
        if self.silent:
            return
        store = self.store.setdefault(m.session, [])
        old = self.rid.get(m.session)
        if old is not None:
            self.session_of.pop(old, None)
        self.rid[m.session] = rid
        self.session_of[rid] = m.session
        self._send(rid, p.LogonAccepted(m.session, m.firm, len(store) + 1, self.heartbeat_ms))
        for payload in store[max(m.next_seq - 1 - self.overlap, 0):]:
            if not self.silent and rid not in self.muted:
                self.sock.send_multipart([rid, payload])


@pytest.fixture
def fake():
    f = FakeGateway()
    yield f
    f.close()


@pytest.fixture
def client():
    c = OrderEntryClient(logon_timeout=2.0)
    yield c
    c.close()


def drain(c: OrderEntryClient, n: int, timeout: float = 2.0) -> list:
    """Exactly ``n`` messages (AssertionError if they do not come in time), then nothing more for a moment."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        msg = c.recv(max(deadline - time.monotonic(), 0.0))
        assert msg is not None, f"got only {got}"
        got.append(msg)
    assert c.recv(0.05) is None
    return got


def seqs(msgs: list) -> list[int]:
    return [m.seq for m in msgs]


# ---------------------------------------------------------------- logon


def test_logon_is_accepted_and_names_the_firm_and_session(fake, client):
    acc = client.connect(fake.endpoint, "s1", firm="ALPHA")
    assert acc == p.LogonAccepted("s1", "ALPHA", 1, 1000)
    assert (client.firm, client.session, client.logged_on, client.last_seq) == ("ALPHA", "s1", True, 0)
    assert fake.received[0] == p.Logon("s1", next_seq=1, heartbeat_ms=1000, cancel_on_disconnect=True, firm="ALPHA")


def test_a_refused_logon_raises_logon_error_and_leaves_the_client_closed(fake, client):
    fake.refuse.add("NOBODY")
    with pytest.raises(LogonError, match="unknown firm") as info:
        client.connect(fake.endpoint, "s1", firm="NOBODY")
    assert info.value.rejected and not client.logged_on
    with pytest.raises(NotLoggedOnError):
        client.cancel(1)
    fake.garble.add("ODD")
    with pytest.raises(LogonError, match="garbled"):
        client.connect(fake.endpoint, "s1", firm="ODD")


def test_no_answer_to_the_logon_raises_within_the_timeout(fake):
    fake.silent = True
    c = OrderEntryClient(logon_timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(LogonError, match="no answer") as info:
        c.connect(fake.endpoint, "s1", firm="ALPHA")
    assert not info.value.rejected
    assert 0.25 < time.monotonic() - t0 < 2.0


def test_connect_needs_a_firm_or_keys_and_a_sane_next_seq(client):
    with pytest.raises(ValueError, match="firm"):
        client.connect("tcp://127.0.0.1:1", "s1")
    with pytest.raises(ValueError, match="both"):
        client.connect("tcp://127.0.0.1:1", "s1", client_keys=("a" * 40, "b" * 40))
    with pytest.raises(ValueError, match="next_seq"):
        client.connect("tcp://127.0.0.1:1", "s1", firm="ALPHA", next_seq=0)


def test_a_gateway_behind_the_clients_position_is_refused(fake, client):
    fake.push("s1")
    with pytest.raises(LogonError, match="behind"):
        client.connect(fake.endpoint, "s1", firm="ALPHA", next_seq=5)


# --------------------------------------------------------------- orders


def test_order_round_trip_and_the_local_order_view(fake, client):
    client.connect(fake.endpoint, "s1", firm="ALPHA")
    cid = client.new_order(SYMBOL, "buy", 10, 2450)
    acc = client.recv(2.0)
    assert isinstance(acc, p.Accepted) and acc.client_order_id == cid and acc.seq == 1
    assert fake.orders[acc.order_id] == p.NewOrder(cid, SYMBOL, Side.BUY, 10, 2450)
    view = client.orders[acc.order_id]
    assert (view.symbol, view.side, view.price, view.leaves, view.client_order_id) == (SYMBOL, Side.BUY, 2450, 10, cid)
    fake.call(lambda: fake._deliver("s1", lambda seq: p.Executed(seq, TS, acc.order_id, cid, SYMBOL, Side.BUY, 7, 2450,
                                                                 4, 6, 4, Liquidity.MAKER)))
    assert isinstance(client.recv(2.0), p.Executed)
    assert (view.leaves, view.cum) == (6, 4)
    client.cancel(acc.order_id)
    cancelled = client.recv(2.0)
    assert isinstance(cancelled, p.Cancelled) and cancelled.reason == CancelReason.USER
    assert client.orders == {}
    ioc = client.new_order(SYMBOL, Side.SELL, 3, 2400, tif="ioc", client_order_id=77)
    assert ioc == 77
    assert [type(m) for m in drain(client, 2)] == [p.Accepted, p.Cancelled]
    assert client.orders == {} and client.last_seq == 5


def test_order_view_drops_orders_the_gateway_says_are_unknown(fake, client):
    client.connect(fake.endpoint, "s1", firm="ALPHA")
    client.new_order(SYMBOL, Side.BUY, 10, 2450)
    acc = client.recv(2.0)
    fake.call(lambda: fake.orders.clear())  # the order died without a report reaching us
    client.cancel(acc.order_id)
    assert isinstance(client.recv(2.0), p.CancelRejected)
    assert client.open_orders() == []


def test_message_building_checks_what_it_can(fake, client):
    client.connect(fake.endpoint, "s1", firm="ALPHA")
    with pytest.raises(ValueError, match="Side"):
        client.new_order(SYMBOL, "up", 1, 1)
    with pytest.raises(ValueError, match="1 to 512"):
        client.mass_quote(1, [])
    with pytest.raises(ValueError, match="byte limit"):
        client.mass_quote(1, [("X" * 200, 1, 1, 2, 1)] * 400)
    client.mass_quote(2, [(SYMBOL, 2400, 5, 2500, 5), p.QuoteEntry(SYMBOL, 2401, 1, 2499, 1)])
    fake.wait_for(lambda: isinstance(fake.received[-1], p.MassQuote))
    assert fake.received[-1].entries[0] == p.QuoteEntry(SYMBOL, 2400, 5, 2500, 5)


def test_client_order_ids_are_unique_increasing_and_time_based():
    t0 = time.time_ns()
    ids = [next_client_order_id() for _ in range(2000)]
    assert ids == sorted(set(ids)) and ids[0] >= t0 and ids[-1] < time.time_ns() + 10**9


# ------------------------------------------------------ resend and gaps


def test_reconnect_resends_what_was_missed_and_duplicates_are_dropped(fake, client):
    client.connect(fake.endpoint, "s1", firm="ALPHA", cancel_on_disconnect=False)
    for _ in range(3):
        fake.push("s1")
    assert seqs(drain(client, 3)) == [1, 2, 3]
    client.close()
    for _ in range(3):
        fake.push("s1")  # sent to a connection that is gone
    fake.overlap = 2  # the fake resends 2..6 when asked for 4..
    acc = client.reconnect()
    assert acc.next_seq == 7 and client.resend_until == 7
    got = drain(client, 3)
    assert seqs(got) == [4, 5, 6] and all(client.is_resend(m) for m in got)
    assert client.duplicates == 2 and client.reconnects == 1
    assert fake.received[-1] == p.Logon("s1", next_seq=4, heartbeat_ms=1000, cancel_on_disconnect=False,
                                        firm="ALPHA")


def test_a_gap_is_filled_by_an_automatic_resume(fake, client):
    client.connect(fake.endpoint, "s1", firm="ALPHA")
    fake.push("s1")
    assert seqs(drain(client, 1)) == [1]
    fake.drop = 2  # seq 2 and 3 are never sent; seq 4 reveals the gap
    for _ in range(4):
        fake.push("s1")
    assert seqs(drain(client, 4)) == [2, 3, 4, 5]
    assert (client.gaps, client.reconnects, client.duplicates) == (1, 1, 0)


def test_connect_at_a_persisted_position_gets_the_rest_of_the_history(fake, client):
    for _ in range(5):
        fake.push("s1")
    client.connect(fake.endpoint, "s1", firm="ALPHA", next_seq=4)
    assert seqs(drain(client, 2)) == [4, 5] and client.last_seq == 5


def test_a_resent_logout_does_not_end_the_new_connection(fake, client):
    client.connect(fake.endpoint, "s1", firm="ALPHA")
    client.logout()
    assert not client.logged_on
    assert client.recv(0.05).code == "LOGOUT"  # kept for the caller
    assert client.recv(0.05) is None  # logged out: nothing more will come, no waiting
    with pytest.raises(NotLoggedOnError):
        client.new_order(SYMBOL, Side.BUY, 1, 1)
    client.connect(fake.endpoint, "s1", firm="ALPHA")  # next_seq 1: the old LOGOUT comes again
    assert drain(client, 1)[0].code == "LOGOUT" and client.logged_on


# ----------------------------------------------------------- heartbeats


def test_an_idle_client_heartbeats_and_gateway_heartbeats_are_swallowed():
    fake = FakeGateway(heartbeat_ms=20)
    try:
        c = OrderEntryClient()
        c.connect(fake.endpoint, "s1", firm="ALPHA", heartbeat_ms=30)
        t0 = time.monotonic()
        assert c.recv(0.35) is None  # ~17 gateway heartbeats arrived, none returned
        assert 0.3 < time.monotonic() - t0 < 1.5
        assert 5 <= fake.heartbeats <= 15
        c.close()
    finally:
        fake.close()


def test_a_silent_gateway_is_detected_after_a_few_of_its_heartbeat_intervals():
    fake = FakeGateway(heartbeat_ms=20)
    try:
        c = OrderEntryClient()
        c.connect(fake.endpoint, "s1", firm="ALPHA")
        assert c.recv(0.1) is None
        fake.silent = True
        t0 = time.monotonic()
        with pytest.raises(GatewaySilentError):
            c.recv(5.0)
        assert time.monotonic() - t0 < 1.0
        c.close()
    finally:
        fake.close()


def test_auto_reconnect_resumes_after_the_gateway_forgot_the_connection():
    fake = FakeGateway(heartbeat_ms=20)
    try:
        c = OrderEntryClient(auto_reconnect=True)
        c.connect(fake.endpoint, "s1", firm="ALPHA")
        fake.push("s1")
        assert seqs(drain(c, 1)) == [1]
        fake.muted.add(fake.rid["s1"])
        fake.push("s1")  # stored, never sent on the muted connection
        msg = c.recv(3.0)
        assert msg is not None and msg.seq == 2 and c.reconnects == 1 and c.logged_on
        c.close()
    finally:
        fake.close()


# ---------------------------------------------------------------- async


def test_async_client_round_trip_heartbeats_and_resume():
    fake = FakeGateway(heartbeat_ms=20)

    async def scenario() -> None:
        async with AsyncOrderEntryClient() as c:
            acc = await c.connect(fake.endpoint, "a1", firm="BETA", heartbeat_ms=30)
            assert acc.firm == "BETA"
            cid = await c.new_order(SYMBOL, Side.SELL, 5, 2500)
            msg = await c.recv(2.0)
            assert isinstance(msg, p.Accepted) and msg.client_order_id == cid
            assert [o.leaves for o in c.open_orders(SYMBOL)] == [5]
            before = fake.heartbeats
            await asyncio.sleep(0.3)  # no recv: the task heartbeats anyway
            assert fake.heartbeats - before >= 5
            fake.drop = 1
            for _ in range(3):
                fake.push("a1")
            got = [await c.recv(2.0) for _ in range(3)]
            assert seqs(got) == [2, 3, 4] and c.gaps == 1 and c.reconnects == 1
            assert await c.recv(0.05) is None
            assert [m async for m in c.iter_messages(idle_timeout=0.05)] == []
            fake.silent = True
            with pytest.raises(GatewaySilentError):
                await c.recv(5.0)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 10))
    finally:
        fake.close()


def test_async_logon_errors():
    fake = FakeGateway()
    fake.refuse.add("NOBODY")

    async def scenario() -> None:
        c = AsyncOrderEntryClient(logon_timeout=0.3)
        with pytest.raises(LogonError, match="unknown firm"):
            await c.connect(fake.endpoint, "s1", firm="NOBODY")
        fake.silent = True
        with pytest.raises(LogonError, match="no answer"):
            await c.connect(fake.endpoint, "s1", firm="ALPHA")
        await c.close()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 10))
    finally:
        fake.close()


# -------------------------------------------------------------- reports


def test_reports_read_in_human_units():
    acc = p.Accepted(1, TS, 5, 9, SYMBOL, Side.BUY, 2450, 1200)
    assert format_report(acc) == (f"2026-12-01T08:00:05.000Z accepted   order 9 (client id 5): BUY 1,200 {SYMBOL}"
                                  " @ 2.450")
    ex = p.Executed(2, TS, 9, 5, SYMBOL, Side.BUY, 3, 2440, 200, 1000, 200, Liquidity.TAKER)
    assert "BUY 200" in format_report(ex) and "@ 2.440 (taker, trade 3); filled 200, open 1,000" in format_report(ex)
    rej = p.Rejected(3, TS, 6, SYMBOL, RejectReason.FOK_CANNOT_FILL, "")
    assert "FOK_CANNOT_FILL (fill-or-kill order cannot be filled in full)" in format_report(rej)
    assert "(IOC)" in format_report(p.Cancelled(4, TS, 9, 5, SYMBOL, Side.BUY, 1000, CancelReason.IOC))
    assert format_report(p.ProtocolError("bad")) == "protocol error: bad"
