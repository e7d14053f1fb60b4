"""Sessions across a restart of a journaled venue: ``Gateway.replay_commands`` rebuilds what the gateway sent.

A gateway in front of a ``JournaledExchange`` (the test clock, raw DEALER
clients) serves a mix of traffic that exercises every kind of sequenced
message: engine reports to the sender and to the owner of a resting order,
the gateway's own rejects (unknown symbol, throttle, kill switch), the kill
switch notice, a logout with cancel on disconnect, quotes and modifies. Then
the venue "crashes" (the journal is closed without a checkpoint or snapshot),
a new gateway is rebuilt from a replay of the journal, cut into engine calls of
a few commands so that batches straddle calls, and must hold exactly what the
first one held: every session's messages byte for byte, the orders and their
owners, open quantities, quote orders and the kill switch. Clients then resume
on the new gateway from the seq they ask for.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.codes import CancelReason, CommandKind, RejectReason, Side, TimeInForce
from engine.records import COMMAND_DTYPE
from gateway import protocol as p
from gateway.config import FirmConfig, GatewayConfig
from gateway.server import RECOVERED_SESSION, Gateway
from journal.log import JournalConfig
from journal.sequencer import JournaledExchange, replay_journal
from tests.gateway.conftest import ANCHOR_NS, OTHER, SYMBOL, FakeClock, Venue, listing_instruments

JOURNAL = JournalConfig(fsync="none", snapshot_every_commands=0, snapshot_on_close=False)
REPLAY_CHUNK = 3
CONFIG = GatewayConfig.for_tests(firms=["ALPHA", "BETA", FirmConfig("SMALL", max_msgs_per_s=5)])


def open_venue(directory, clock: FakeClock | None = None) -> Venue:
    """A venue on the journal in ``directory``; a recovered one rebuilds its sessions (in engine calls of
    REPLAY_CHUNK commands, so that journal batches straddle them)."""
    engine = JournaledExchange.open(directory, listing_instruments(), len(CONFIG.firms), config=JOURNAL)

    def rebuild(gateway: Gateway) -> None:
        if engine.recovery is not None:
            replay_journal(directory, verify_checkpoints=False, chunk=REPLAY_CHUNK,
                           on_commands=gateway.replay_commands)

    return Venue(CONFIG, engine, clock, rebuild)


def gateway_state(gw: Gateway) -> dict:
    """Everything the gateway must get back from the journal."""
    return {
        "stores": {key: list(s.store) for key, s in gw.sessions.by_key.items() if s.store},
        "live": {key: set(s.live_orders) for key, s in gw.sessions.by_key.items() if s.live_orders},
        "live_packages": {key: set(s.live_packages) for key, s in gw.sessions.by_key.items() if s.live_packages},
        "packages": {pid: (k.owner.firm, k.owner.name, k.client_order_id, k.side) for pid, k in gw.packages.items()},
        "orders": {oid: (o.owner.firm, o.owner.name, o.instrument, o.leaves) for oid, o in gw.orders.items()},
        "open": {k: v for k, v in gw.open_qty.items() if v},
        "quotes": {k: oid for k, oid in gw.quote_orders.items() if oid in gw.orders},
        "suspended": set(gw.suspended),
    }


def decoded(store: list[bytes]) -> list:
    return [p.server_decoder.decode(m) for m in store]


class Venues:
    """Venues on journals; ``crash`` stops one as a kill leaves it (no final checkpoint or snapshot)."""

    def __init__(self):
        self.running: list[Venue] = []

    def open(self, directory, clock: FakeClock | None = None) -> Venue:
        self.running.append(open_venue(directory, clock))
        return self.running[-1]

    def crash(self, venue: Venue) -> None:
        self.running.remove(venue)
        venue.close()
        venue.engine.journal.close()


@pytest.fixture
def venues():
    v = Venues()
    yield v
    for venue in list(v.running):
        v.crash(venue)


def test_a_rebuilt_gateway_holds_exactly_what_the_crashed_one_sent(tmp_path, venues):
    d = tmp_path / "journal"
    v = venues.open(d)
    a1 = v.client()
    assert isinstance(a1.logon("a1", "ALPHA", cancel_on_disconnect=False), p.LogonAccepted)
    a2, b, small = v.client("ALPHA", "a2"), v.client("BETA", "b"), v.client("SMALL", "s")
    v.client("SMALL", "idle")  # logged on, never sent a sequenced message: nothing to rebuild
    a1.send(p.NewOrder(1, SYMBOL, Side.SELL, 10, 2000))
    a1.expect(p.Accepted)
    a1.send(p.NewOrder(2, "NO.SUCH.SYMBOL", Side.BUY, 1, 1000))  # the gateway's own Rejected
    a1.expect(p.Rejected)
    b.send(p.NewOrder(1, SYMBOL, Side.BUY, 4, 2100, tif=TimeInForce.IOC))
    b.expect(p.Executed)
    a1.expect(p.Executed)  # to the owner of the resting order
    a2.send(p.MassQuote(7, [p.QuoteEntry(OTHER, 1000, 5, 3000, 5)]))
    a2.until(lambda m: isinstance(m, p.Accepted) and m.side == Side.SELL)
    bid = next(m.order_id for m in a2.seen if isinstance(m, p.Accepted) and m.side == Side.BUY)
    a2.send(p.Modify(bid, 1010, 8))
    a2.expect(p.Replaced)
    a2.send(p.Cancel(10**6))  # the engine's CancelRejected
    a2.expect(p.CancelRejected)
    # one frame, one batch of 5 commands (straddling the replay's engine calls); 5 per second: 2 throttled
    small.sock.send(p.client_encoder.encode([p.NewOrder(clid, SYMBOL, Side.BUY, 1, 1500) for clid in range(1, 8)]))
    assert [m.reason for m in small.quiet() if isinstance(m, p.Rejected)] == [RejectReason.THROTTLED] * 2
    assert v.admin(action="kill", firm="BETA").ok
    b.expect(p.SystemEvent)
    b.send(p.NewOrder(2, SYMBOL, Side.BUY, 1, 1500))
    assert b.expect(p.Rejected).reason == RejectReason.FIRM_SUSPENDED
    a2.send(p.Logout())
    assert [type(m) for m in a2.quiet()] == [p.Cancelled, p.Cancelled, p.SystemEvent]
    live = gateway_state(v.gateway)
    venues.crash(v)

    w = venues.open(d, v.clock)
    assert gateway_state(w.gateway) == live
    for store in live["stores"].values():
        assert [m.seq for m in decoded(store)] == list(range(1, len(store) + 1))
    assert len(live["stores"]) == 4 and live["suspended"] == {1}
    assert ("SMALL", "idle") not in live["stores"] and ("SMALL", "idle") not in w.gateway.sessions.by_key

    # the clients resume on the new venue from the seq they ask for
    a1 = w.client()
    acc = a1.logon("a1", "ALPHA", next_seq=2, cancel_on_disconnect=False)
    assert acc.next_seq == 4 and a1.quiet() == decoded(live["stores"][("ALPHA", "a1")][1:])
    b = w.client()
    assert b.logon("b", "BETA", next_seq=5).next_seq == 5 and b.quiet() == []
    b.send(p.NewOrder(3, SYMBOL, Side.BUY, 1, 1500))  # the kill switch survived the restart
    rej = b.expect(p.Rejected)
    assert (rej.seq, rej.reason) == (5, RejectReason.FIRM_SUSPENDED)
    a2 = w.client()
    assert a2.logon("a2", "ALPHA", next_seq=1).next_seq == 8
    assert a2.quiet() == decoded(live["stores"][("ALPHA", "a2")]) and a2.seen[-1].code == "LOGOUT"


def test_reports_of_orders_that_trade_after_the_restart_reach_their_session(tmp_path, venues):
    d = tmp_path / "journal"
    v = venues.open(d)
    a = v.client()
    a.logon("a", "ALPHA", cancel_on_disconnect=False)
    a.send(p.NewOrder(1, SYMBOL, Side.SELL, 10, 2000))
    oid = a.expect(p.Accepted).order_id
    venues.crash(v)
    w = venues.open(d, v.clock)
    assert w.gateway.orders[oid].owner is w.gateway.sessions.by_key[("ALPHA", "a")]
    b = w.client("BETA", "b")
    b.send(p.NewOrder(1, SYMBOL, Side.BUY, 10, 2000, tif=TimeInForce.IOC))
    b.expect(p.Executed)
    a = w.client()
    assert a.logon("a", "ALPHA", next_seq=2).next_seq == 3
    fill = a.expect(p.Executed)
    assert (fill.seq, fill.order_id, fill.leaves) == (2, oid, 0) and oid not in w.gateway.orders


def test_orders_journaled_without_a_session_note_belong_to_the_firms_recovered_session(tmp_path, venues):
    d = tmp_path / "journal"
    je = JournaledExchange.create(d, listing_instruments(), len(CONFIG.firms), config=JOURNAL)
    inst = [i.symbol for i in listing_instruments()].index(SYMBOL)
    row = np.zeros(1, dtype=COMMAND_DTYPE)  # as gateway.journal_server or an older gateway journals it
    row[0] = (CommandKind.NEW_ORDER, Side.BUY, 0, 0, 0, 0, 0, inst, 1, ANCHOR_NS + 5 * 10**9, 42, 0, 1900, 5, 0, 0, 0)
    je.process_batch(row)
    je.close()
    w = venues.open(d)
    (oid, order), = w.gateway.orders.items()
    assert (order.owner.firm, order.owner.name, order.leaves) == ("BETA", RECOVERED_SESSION, 5)
    c = w.client()
    c.logon(RECOVERED_SESSION, "BETA")
    assert c.expect(p.Accepted).order_id == oid
    c.send(p.Cancel(oid))
    assert c.expect(p.Cancelled).reason == CancelReason.USER
