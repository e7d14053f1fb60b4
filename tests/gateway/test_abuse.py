"""Resources per client are bounded: sessions per firm, a client that never reads, a client that floods.

* a firm has at most ``max_sessions`` session names a day: a logon to one more is refused, naming the limit;
* a connection that leaves more than ``SEND_QUEUE_FRAMES`` frames unread is cut off: its session ends with
  ``SystemEvent(SLOW_CONSUMER)`` (stored, so a resend brings it), its orders are cancelled under cancel on
  disconnect, and it resumes with ``next_seq`` like any session;
* a session that keeps sending far above its message rate is disconnected with ``SystemEvent(FLOODING)``;
* another client is answered all along.
"""

from __future__ import annotations

import time

import zmq

import gateway.server
from engine.codes import CancelReason, RejectReason, Side, TimeInForce
from gateway import protocol as p
from gateway.config import FirmConfig
from tests.gateway.conftest import SYMBOL, Client, make_venue


def test_a_firm_has_at_most_max_sessions_session_names():
    venue = make_venue(firms=[FirmConfig("ALPHA", max_sessions=2), "BETA"])
    try:
        for name in ("one", "two"):
            assert isinstance(venue.client().logon(name, "ALPHA"), p.LogonAccepted)
        third = venue.client().logon("three", "ALPHA")
        assert isinstance(third, p.LogonRejected)
        assert third.text.startswith("firm 'ALPHA' has 2 sessions today, its maximum (max_sessions)")
        assert isinstance(venue.client().logon("one", "ALPHA"), p.LogonAccepted)  # an existing one: fine
        assert isinstance(venue.client().logon("three", "BETA"), p.LogonAccepted)  # another firm's own count
    finally:
        venue.close()


def test_a_client_that_never_reads_is_cut_off_then_resumes_with_everything(monkeypatch):
    monkeypatch.setattr(gateway.server, "SEND_QUEUE_FRAMES", 20)  # read when the gateway binds
    venue = make_venue()
    try:
        other = venue.client("BETA", "other")
        deaf = Client(venue.ctx, venue.gateway.endpoint)
        deaf.sock.setsockopt(zmq.RCVBUF, 4096)
        deaf.sock.setsockopt(zmq.RCVHWM, 1)
        assert isinstance(deaf.logon("deaf", "ALPHA", cancel_on_disconnect=True), p.LogonAccepted)
        deaf.send(p.NewOrder(1, SYMBOL, Side.BUY, 1, 1000))  # rests: cancelled when the session is cut off
        deadline = time.monotonic() + 60
        k = 2
        while venue.gateway.stats["slow_consumers"] == 0 and time.monotonic() < deadline and k < 200_000:
            deaf.send([p.NewOrder(k + j, SYMBOL, Side.BUY, 1, 900, tif=TimeInForce.IOC) for j in range(50)])
            k += 50
            time.sleep(0.002)  # within its message rate: the gateway serves it, it just never reads the replies
        assert venue.gateway.stats["slow_consumers"] == 1
        other.send(p.NewOrder(1, SYMBOL, Side.SELL, 1, 3000))
        assert other.expect(p.Accepted).client_order_id == 1  # the others are served meanwhile
        resumed = Client(venue.ctx, venue.gateway.endpoint)
        accepted = resumed.logon("deaf", "ALPHA", next_seq=1)
        history = [m for m in resumed.quiet(2.0) if not isinstance(m, p.Heartbeat)]
        assert len(history) == accepted.next_seq - 1
        ends = [m for m in history if isinstance(m, p.SystemEvent)]
        assert [m.code for m in ends] == ["SLOW_CONSUMER"] and "log on again with next_seq" in ends[0].text
        cancelled = [m for m in history if isinstance(m, p.Cancelled) and m.reason == CancelReason.DISCONNECT]
        assert [m.client_order_id for m in cancelled] == [1]
        resumed.close()
        deaf.close()
    finally:
        venue.close()


def test_a_session_that_keeps_sending_far_above_its_rate_is_disconnected_as_flooding():
    venue = make_venue(firms=[FirmConfig("ALPHA", max_msgs_per_s=10), "BETA"])
    try:
        flood = venue.client("ALPHA", "flood")
        flood.send([p.NewOrder(k, SYMBOL, Side.BUY, 1, 1000 + k) for k in range(1, 101)])
        got = flood.until(lambda m: isinstance(m, p.SystemEvent))
        assert got[-1].code == "FLOODING"
        throttled = [m for m in got if isinstance(m, p.Rejected) and m.reason == RejectReason.THROTTLED]
        assert len(throttled) == 21  # 10 admitted (a second's burst), then 2 seconds' worth refused, then the cut
        assert venue.gateway.stats["flooding"] == 1
        flood.send(p.NewOrder(500, SYMBOL, Side.BUY, 1, 1000))
        assert flood.expect(p.LogonRequired).client_order_id == 500  # it must log on again
    finally:
        venue.close()


def test_a_burst_of_one_session_is_served_in_shares_in_order_and_another_session_is_served_meanwhile():
    venue = make_venue(firms=[FirmConfig("ALPHA", max_msgs_per_s=10**6, max_open_qty=10**9), "BETA"])
    try:
        burst, other = venue.client("ALPHA", "burst"), venue.client("BETA", "other")
        n = 20 * 500
        for f in range(20):
            burst.send([p.NewOrder(1 + f * 500 + j, SYMBOL, Side.BUY, 1, 1000) for j in range(500)])
        other.send(p.NewOrder(1, SYMBOL, Side.SELL, 1, 3000))
        assert other.expect(p.Accepted, timeout=10).client_order_id == 1
        got = burst.until(lambda m: isinstance(m, p.Accepted) and m.client_order_id == n, timeout=30)
        accepted = [m.client_order_id for m in got if isinstance(m, p.Accepted)]
        assert accepted == list(range(1, n + 1))  # every message of the burst, once, in order
        assert venue.gateway.stats["deferred"] > 0  # it was over its share of a pass: served over several
    finally:
        venue.close()
