"""The order-entry clients against the real Gateway on loopback, the engine behind it.

The gateway's clock runs at the real rate from 2026-12-01T08:00:05Z (the
listing of ``tests/gateway/conftest.py``), so its heartbeats and heartbeat
timeouts happen on their own; they are set short here (tens of ms) so that
every wait stays well under a second or two.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest
import zmq.auth

from engine.codes import CancelReason, Liquidity, RejectReason, Side, TimeInForce
from engine.exchange import Exchange
from engine.listing import load_listing
from gateway import protocol as p
from gateway.client import (
    AsyncOrderEntryClient,
    GatewaySilentError,
    LogonError,
    OrderEntryClient,
    load_client_keys,
    load_server_key,
)
from gateway.config import FirmConfig, GatewayConfig
from gateway.server import Gateway
from journal.sequencer import JournaledExchange, replay_journal
from tests.gateway.conftest import ANCHOR_NS, SYMBOL


class RealRateClock:
    """Nanoseconds from 2026-12-01T08:00:05Z, advancing with the monotonic clock."""

    def __init__(self, start_ns: int = ANCHOR_NS + 5 * 10**9):
        self.start_ns = start_ns
        self.t0 = time.monotonic_ns()

    def __call__(self) -> int:
        return self.start_ns + time.monotonic_ns() - self.t0


def start_gateway(**overrides) -> Gateway:
    firms = overrides.pop("firms", ["ALPHA", "BETA"])
    endpoint = overrides.pop("order_entry", None)
    cfg = GatewayConfig.for_tests(firms=firms, **overrides)
    if endpoint is not None:
        cfg = msgspec.structs.replace(cfg, order_entry=endpoint)
    engine = Exchange(load_listing(None).instruments(ANCHOR_NS), len(cfg.firms))
    return Gateway(cfg, engine, clock=RealRateClock()).start()


@pytest.fixture
def gateways():
    """``gateways(**config overrides)`` starts a gateway; all are stopped at the end."""
    started: list[Gateway] = []

    def start(**overrides) -> Gateway:
        started.append(start_gateway(**overrides))
        return started[-1]

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture
def clients():
    """``clients(**kw)`` makes an OrderEntryClient; all are closed at the end."""
    made: list[OrderEntryClient] = []

    def make(**kw) -> OrderEntryClient:
        made.append(OrderEntryClient(logon_timeout=kw.pop("logon_timeout", 3.0), **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()


def until(c: OrderEntryClient, cls, timeout: float = 3.0) -> list:
    """Messages up to and including the first of type ``cls`` (AssertionError if none in time)."""
    got = []
    deadline = time.monotonic() + timeout
    while (msg := c.recv(max(deadline - time.monotonic(), 0.0))) is not None:
        got.append(msg)
        if isinstance(msg, cls):
            return got
    raise AssertionError(f"no {cls.__name__}; got {got}")


def quiet(c: OrderEntryClient, timeout: float = 0.2) -> list:
    return list(c.iter_messages(idle_timeout=timeout))


def test_logon_of_a_known_firm_and_refusal_of_an_unknown_one(gateways, clients):
    gw = gateways()
    c = clients()
    assert c.connect(gw.endpoint, "s1", firm="ALPHA") == p.LogonAccepted("s1", "ALPHA", 1, 1000)
    with pytest.raises(LogonError, match="unknown firm") as info:
        clients().connect(gw.endpoint, "s1", firm="NOBODY")
    assert info.value.rejected


def test_order_round_trip_between_two_firms_and_the_order_view(gateways, clients):
    gw = gateways()
    a, b = clients(), clients()
    a.connect(gw.endpoint, "a", firm="ALPHA")
    b.connect(gw.endpoint, "b", firm="BETA")
    cid = a.new_order(SYMBOL, Side.SELL, 10, 2000)
    acc = until(a, p.Accepted)[-1]
    assert (acc.client_order_id, acc.qty, acc.price, acc.seq) == (cid, 10, 2000, 1)
    b.new_order(SYMBOL, Side.BUY, 4, 2100, tif=TimeInForce.IOC)
    taker = until(b, p.Executed)[-1]
    maker = until(a, p.Executed)[-1]
    assert (taker.qty, taker.price, taker.leaves, taker.liquidity) == (4, 2000, 0, Liquidity.TAKER)
    assert (maker.order_id, maker.leaves, maker.cum, maker.liquidity) == (acc.order_id, 6, 4, Liquidity.MAKER)
    view = a.orders[acc.order_id]
    assert (view.side, view.price, view.leaves, view.cum) == (Side.SELL, 2000, 6, 4) and b.orders == {}
    b.cancel(acc.order_id)
    assert until(b, p.CancelRejected)[-1].reason == RejectReason.NOT_YOUR_ORDER
    a.modify(acc.order_id, 2010, 8)
    rep = until(a, p.Replaced)[-1]
    assert (rep.price, rep.leaves) == (2010, 8) and (view.price, view.leaves) == (2010, 8)
    a.cancel(acc.order_id)
    assert until(a, p.Cancelled)[-1].reason == CancelReason.USER and a.orders == {}
    a.mass_quote(1, [(SYMBOL, 1900, 5, 2100, 5)])
    assert [type(m) for m in quiet(a)] == [p.Accepted, p.Accepted] and len(a.open_orders(SYMBOL)) == 2
    a.mass_cancel()
    assert [m.reason for m in quiet(a)] == [CancelReason.MASS] * 2 and a.orders == {}
    assert a.duplicates == a.gaps == 0


def test_reconnect_resumes_with_no_gaps_and_no_duplicates(gateways, clients):
    gw = gateways()
    a, b = clients(), clients()
    a.connect(gw.endpoint, "main", firm="ALPHA", cancel_on_disconnect=False)
    b.connect(gw.endpoint, "b", firm="BETA")
    a.new_order(SYMBOL, Side.SELL, 10, 2000)
    seen = until(a, p.Accepted)
    oid = seen[-1].order_id
    a.close()  # gone without a Logout
    for _ in range(3):  # fills while ALPHA is away
        b.new_order(SYMBOL, Side.BUY, 2, 2000, tif=TimeInForce.IOC)
        until(b, p.Executed)
    acc = a.reconnect()
    assert acc.next_seq == 5 and a.resend_until == 5
    missed = quiet(a)
    assert [m.seq for m in missed] == [2, 3, 4] and all(isinstance(m, p.Executed) for m in missed)
    assert all(a.is_resend(m) for m in missed) and a.orders[oid].leaves == 4
    seen += missed
    b.new_order(SYMBOL, Side.BUY, 1, 2000, tif=TimeInForce.IOC)
    seen += until(a, p.Executed)
    assert [m.seq for m in seen] == [1, 2, 3, 4, 5] and a.duplicates == 0 and a.gaps == 0
    # a fresh client that takes the session over from seq 1 sees exactly the same history and the same orders
    fresh = clients()
    fresh.connect(gw.endpoint, "main", firm="ALPHA", cancel_on_disconnect=False)
    assert quiet(fresh) == seen and fresh.orders == a.orders and fresh.resend_complete()


def test_heartbeats_keep_an_idle_session_alive_and_a_client_that_stops_is_cancelled(gateways, clients):
    gw = gateways(heartbeat_ms=50, heartbeat_timeout_ms=250)
    c = clients(silence_factor=6)
    assert c.connect(gw.endpoint, "hb", firm="ALPHA", heartbeat_ms=50).heartbeat_ms == 50
    c.new_order(SYMBOL, Side.BUY, 5, 1900)
    until(c, p.Accepted)
    assert c.recv(0.8) is None  # only heartbeats came and went, both ways
    assert gw.stats["heartbeat_timeouts"] == 0 and len(c.orders) == 1
    time.sleep(0.5)  # no recv, so no heartbeats: the gateway ends the session and cancels its order
    msgs = until(c, p.SystemEvent)
    assert [type(m) for m in msgs] == [p.Cancelled, p.SystemEvent]
    assert msgs[0].reason == CancelReason.DISCONNECT and msgs[1].code == "DISCONNECT"
    assert not c.logged_on and c.orders == {}
    c.reconnect()  # the session resumes; nothing was missed
    rest = [m for m in quiet(c, 0.1) if not isinstance(m, p.LogonRequired)]  # a late heartbeat's answer
    assert rest == [] and c.last_seq == 3 and c.logged_on


def test_a_stopped_gateway_is_detected_as_silent(gateways, clients):
    gw = gateways(heartbeat_ms=50)
    c = clients()
    c.connect(gw.endpoint, "s", firm="ALPHA")
    assert c.recv(0.2) is None
    gw.stop()
    t0 = time.monotonic()
    with pytest.raises(GatewaySilentError):
        c.recv(5.0)
    assert time.monotonic() - t0 < 2.0 and not c.logged_on


def start_journaled_gateway(directory, clock: RealRateClock, order_entry: str = "tcp://127.0.0.1:*") -> Gateway:
    """A gateway over the journal in ``directory``; after a restart it first rebuilds its sessions from it."""
    cfg = msgspec.structs.replace(GatewayConfig.for_tests(firms=["ALPHA", "BETA"]), order_entry=order_entry)
    engine = JournaledExchange.open(directory, load_listing(None).instruments(ANCHOR_NS), len(cfg.firms))
    gw = Gateway(cfg, engine, clock=clock)
    if engine.recovery is not None:
        replay_journal(directory, verify_checkpoints=False, on_commands=gw.replay_commands)
    return gw.start()


def crash(gw: Gateway) -> None:
    """What a kill leaves: the loop gone, the journal as written (no final checkpoint or snapshot)."""
    gw.stop()
    gw.engine.journal.close()


def test_a_client_resumes_across_a_restart_of_a_journaled_venue(clients, tmp_path):
    d = tmp_path / "journal"
    gw = start_journaled_gateway(d, RealRateClock())
    endpoint = gw.endpoint
    a, b = clients(), clients()
    try:
        a.connect(endpoint, "main", firm="ALPHA", cancel_on_disconnect=False)
        b.connect(endpoint, "b", firm="BETA", cancel_on_disconnect=False)
        a.new_order(SYMBOL, Side.SELL, 10, 2000)
        seen = until(a, p.Accepted)
        oid = seen[-1].order_id
        a.close()  # gone without a Logout
        b.new_order(SYMBOL, Side.BUY, 2, 2000, tif=TimeInForce.IOC)  # fills while ALPHA is away
        until(b, p.Executed)
        # the crash window: the next batch is journaled, then the venue dies before any reply leaves
        gw._send_outbox = gw._outbox.clear
        b.new_order(SYMBOL, Side.BUY, 3, 2000, tif=TimeInForce.IOC)
        deadline = time.monotonic() + 3
        while gw.orders[oid].leaves != 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gw.orders[oid].leaves == 5 and quiet(b) == []
    finally:
        crash(gw)
    gw = start_journaled_gateway(d, RealRateClock(ANCHOR_NS + 60 * 10**9), order_entry=endpoint)
    try:
        assert b.reconnect().next_seq == 5  # its IOC of the crash window: Accepted, Executed
        assert [(type(m), m.seq) for m in quiet(b)] == [(p.Accepted, 3), (p.Executed, 4)]
        assert a.reconnect().next_seq == 4
        missed = quiet(a)
        assert [(type(m), m.seq, m.leaves) for m in missed] == [(p.Executed, 2, 8), (p.Executed, 3, 5)]
        assert all(a.is_resend(m) for m in missed) and a.orders[oid].leaves == 5
        seen += missed
        b.new_order(SYMBOL, Side.BUY, 1, 2000, tif=TimeInForce.IOC)
        seen += until(a, p.Executed)
        assert [m.seq for m in seen] == [1, 2, 3, 4] and a.duplicates == a.gaps == b.duplicates == b.gaps == 0
        fresh = clients()  # takes the session over from seq 1: the same history, the same orders
        fresh.connect(endpoint, "main", firm="ALPHA", cancel_on_disconnect=False)
        assert quiet(fresh) == seen and fresh.orders == a.orders
    finally:
        crash(gw)


def test_async_client_round_trip_heartbeats_and_logout(gateways):
    gw = gateways(heartbeat_ms=50, heartbeat_timeout_ms=250)

    async def scenario() -> None:
        async with AsyncOrderEntryClient(silence_factor=6) as a, AsyncOrderEntryClient() as b:
            await a.connect(gw.endpoint, "a", firm="ALPHA", heartbeat_ms=50)
            await b.connect(gw.endpoint, "b", firm="BETA", heartbeat_ms=50)
            cid = await a.new_order(SYMBOL, "sell", 10, 2000)
            acc = await a.recv(3.0)
            assert isinstance(acc, p.Accepted) and acc.client_order_id == cid
            await asyncio.sleep(0.6)  # no recv on either: their heartbeat tasks keep both sessions alive
            assert gw.stats["heartbeat_timeouts"] == 0
            await b.new_order(SYMBOL, Side.BUY, 3, 2000, tif=TimeInForce.IOC)
            fill = await a.recv(3.0)
            assert isinstance(fill, p.Executed) and fill.leaves == 7 and a.orders[acc.order_id].leaves == 7
            await a.logout()
            rest = [m async for m in a.iter_messages(idle_timeout=0.2)]
            assert [type(m) for m in rest] == [p.Cancelled, p.SystemEvent] and rest[-1].code == "LOGOUT"
            assert not a.logged_on and a.orders == {}

    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_curve_logon_with_key_files_names_the_firm_by_its_key(gateways, clients, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("gateway", "ALPHA", "ROGUE"):
        zmq.auth.create_certificates(keys, name)
    gw = gateways(firms=[FirmConfig("ALPHA", public_key_file=str(keys / "ALPHA.key"))], plaintext=False,
                  server_secret_key_file=str(keys / "gateway.key_secret"))
    server_key = load_server_key(keys / "gateway.key")
    c = clients()
    acc = c.connect(gw.endpoint, "k", client_keys=load_client_keys(keys, "ALPHA"), server_key=server_key)
    assert acc.firm == "ALPHA" and c.firm == "ALPHA"
    c.new_order(SYMBOL, Side.BUY, 1, 1900)
    assert isinstance(until(c, p.Accepted)[-1], p.Accepted)
    with pytest.raises(LogonError, match="refused this CURVE key") as info:  # told by the handshake, not a timeout
        clients().connect(gw.endpoint, "k", client_keys=load_client_keys(keys, "ROGUE"), server_key=server_key)
    assert info.value.rejected
    with pytest.raises(LogonError):
        clients(logon_timeout=0.5).connect(gw.endpoint, "k", client_keys=load_client_keys(keys, "ALPHA"),
                                           server_key=load_server_key(keys / "ROGUE.key"))
