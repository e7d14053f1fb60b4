"""End to end over real sockets: a Gateway on loopback, DEALER clients, the engine behind it."""

from __future__ import annotations

import zmq

from engine.codes import CancelReason, Liquidity, OrderType, RejectReason, Side, TimeInForce
from gateway import protocol as p
from tests.gateway.conftest import OTHER, SYMBOL, make_venue

SECOND = 10**9


def test_logon_of_a_registered_firm_is_accepted_and_of_an_unknown_firm_rejected(venue):
    c = venue.client()
    assert c.logon("s1", "ALPHA") == p.LogonAccepted("s1", "ALPHA", 1, 1000)
    other = venue.client()
    unknown = other.logon("s1", "NOBODY")
    assert isinstance(unknown, p.LogonRejected)
    assert unknown.text.startswith("unknown firm 'NOBODY' (this venue's firms: ")
    assert "ALPHA" in unknown.text
    empty = venue.client().logon("s1", "")
    assert isinstance(empty, p.LogonRejected)
    assert empty.text.startswith("no firm named in the Logon (this venue's firms: ")


def test_messages_before_logon_get_a_protocol_error_and_change_nothing(venue):
    c = venue.client()
    c.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 2000))
    err = c.expect(p.LogonRequired)
    assert (err.message_type, err.client_order_id) == ("NewOrder", 1) and err.text.startswith("not logged on")
    assert venue.engine.best_bid(venue.gateway.instrument_of[SYMBOL]) is None


def test_a_protocol_error_names_the_message_type_and_client_order_id_it_refers_to(venue):
    import msgspec

    c = venue.client("ALPHA")
    c.sock.send(msgspec.msgpack.encode({"type": "NewOrder", "client_order_id": 42, "symbol": SYMBOL, "side": 0,
                                        "qty": "five", "price": 2000}))
    err = c.expect(p.ProtocolError)
    assert (err.message_type, err.client_order_id) == ("NewOrder", 42) and "qty" in err.text
    c.sock.send(msgspec.msgpack.encode([{"type": "Cancel", "order_id": "x"}]))
    err = c.expect(p.ProtocolError)
    assert (err.message_type, err.client_order_id) == ("Cancel", None)
    c.sock.send(b"\x91" * 20_000 + b"\xc0")  # hostile nesting: answered, and the gateway lives on
    err = c.expect(p.ProtocolError)
    assert (err.message_type, err.client_order_id) == ("", None)
    c.sock.send(msgspec.msgpack.encode({"type": ["NewOrder"], "client_order_id": 1}))
    assert c.expect(p.ProtocolError).message_type == ""
    c.sock.send(b"\xc1")  # not msgpack at all
    err = c.expect(p.ProtocolError)
    assert (err.message_type, err.client_order_id) == ("", None) and err.text.startswith("undecodable message")
    assert venue.engine.best_bid(venue.gateway.instrument_of[SYMBOL]) is None


def test_resting_order_is_accepted_and_a_crossing_ioc_fills_both_sides(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    a.send(p.NewOrder(11, SYMBOL, Side.SELL, 5, 2000))
    acc = a.expect(p.Accepted)
    assert (acc.seq, acc.client_order_id, acc.qty, acc.price) == (1, 11, 5, 2000)
    b.send(p.NewOrder(21, SYMBOL, Side.BUY, 3, 2100, tif=TimeInForce.IOC))
    taker = b.expect(p.Executed)
    maker = a.expect(p.Executed)
    assert (taker.price, taker.qty, taker.leaves, taker.liquidity) == (2000, 3, 0, Liquidity.TAKER)
    assert (maker.order_id, maker.qty, maker.leaves, maker.cum, maker.liquidity) == (acc.order_id, 3, 2, 3,
                                                                                      Liquidity.MAKER)
    assert taker.trade_id == maker.trade_id


def test_ioc_remainder_market_order_and_fok_behave_as_in_the_engine(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    a.send(p.NewOrder(1, SYMBOL, Side.SELL, 5, 2000))
    a.expect(p.Accepted)
    b.send(p.NewOrder(1, SYMBOL, Side.BUY, 8, 2000, tif=TimeInForce.IOC))
    assert b.expect(p.Cancelled).reason == CancelReason.IOC
    a.send(p.NewOrder(2, SYMBOL, Side.SELL, 5, 2010))
    a.expect(p.Accepted)
    b.send(p.NewOrder(2, SYMBOL, Side.BUY, 9, 0, ord_type=OrderType.MARKET, tif=TimeInForce.IOC))
    msgs = b.until(lambda m: isinstance(m, p.Cancelled))
    assert msgs[-1].reason == CancelReason.MARKET_PROTECTION and msgs[-1].qty == 4
    b.send(p.NewOrder(3, SYMBOL, Side.BUY, 9, 3000, tif=TimeInForce.FOK))
    assert b.expect(p.Rejected).reason == RejectReason.FOK_CANNOT_FILL


def test_post_only_and_gtd_expiry_driven_by_the_test_clock(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    a.send(p.NewOrder(1, SYMBOL, Side.SELL, 5, 2000))
    a.expect(p.Accepted)
    b.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 2000, post_only=True))
    assert b.expect(p.Rejected).reason == RejectReason.POST_ONLY_WOULD_TAKE
    expire = venue.clock.now + 60 * SECOND
    b.send(p.NewOrder(2, SYMBOL, Side.BUY, 5, 1900, tif=TimeInForce.GTD, expire_ts=expire))
    b.expect(p.Accepted)
    venue.clock.now = expire + 1
    assert b.expect(p.Cancelled).reason == CancelReason.EXPIRED


def test_cancel_and_modify_of_own_orders_and_refusal_for_another_firms(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    a.send(p.NewOrder(1, SYMBOL, Side.BUY, 10, 1900))
    oid = a.expect(p.Accepted).order_id
    b.send(p.Cancel(oid))
    assert b.expect(p.CancelRejected).reason == RejectReason.NOT_YOUR_ORDER
    b.send(p.Modify(oid, 1950, 5))
    assert b.expect(p.CancelRejected).reason == RejectReason.NOT_YOUR_ORDER
    a.send(p.Modify(oid, 1900, 4))
    assert a.expect(p.Replaced).leaves == 4
    a.send(p.Cancel(oid))
    cancelled = a.expect(p.Cancelled)
    assert (cancelled.qty, cancelled.reason) == (4, CancelReason.USER)
    a.send(p.Cancel(oid))
    assert a.expect(p.CancelRejected).reason == RejectReason.UNKNOWN_ORDER
    assert venue.engine.best_bid(venue.gateway.instrument_of[SYMBOL]) is None


def test_mass_quote_then_mass_cancel(venue):
    mm = venue.client("ALPHA")
    mm.send(p.MassQuote(7, [p.QuoteEntry(SYMBOL, 1990, 10, 2010, 10), p.QuoteEntry(OTHER, 3000, 5, 3100, 5),
                            p.QuoteEntry("NO.SUCH.FIRM.2026-12-01T13", 1, 1, 2, 1)]))
    msgs = mm.quiet(0.5)
    assert sum(isinstance(m, p.Accepted) for m in msgs) == 4
    assert [m.reason for m in msgs if isinstance(m, p.Rejected)] == [RejectReason.UNKNOWN_INSTRUMENT]
    mm.send(p.MassCancel(SYMBOL))
    cancelled = [m for m in mm.quiet(0.5) if isinstance(m, p.Cancelled)]
    assert len(cancelled) == 2 and {m.reason for m in cancelled} == {CancelReason.MASS}
    mm.send(p.MassCancel())
    assert len([m for m in mm.quiet(0.5) if isinstance(m, p.Cancelled)]) == 2


def test_duplicate_client_order_id_is_rejected_and_never_executes_twice(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    b.send(p.NewOrder(1, SYMBOL, Side.SELL, 50, 2000))
    b.expect(p.Accepted)
    a.send(p.NewOrder(5, SYMBOL, Side.BUY, 5, 2000))
    a.expect(p.Executed)
    a.send(p.NewOrder(5, SYMBOL, Side.BUY, 5, 2000))
    assert a.expect(p.Rejected).reason == RejectReason.DUPLICATE_CLIENT_ORDER_ID
    assert venue.engine.best_ask(venue.gateway.instrument_of[SYMBOL]).qty == 45


def test_firm_risk_limits_reject_with_reasons(venue):
    s = venue.client("SMALL")
    s.send(p.NewOrder(1, SYMBOL, Side.BUY, 11, 1000))
    assert s.expect(p.Rejected).reason == RejectReason.FIRM_MAX_ORDER_SIZE
    for i in range(3):
        s.send(p.NewOrder(10 + i, SYMBOL, Side.BUY, 10, 1000 + i))
    assert len([m for m in s.quiet(0.5) if isinstance(m, p.Accepted)]) == 3
    s.send(p.NewOrder(20, SYMBOL, Side.BUY, 1, 1000))
    assert s.expect(p.Rejected).reason == RejectReason.FIRM_MAX_OPEN_QUANTITY


def test_messages_above_the_session_rate_are_throttled_but_cancels_are_not(venue):
    s = venue.client("SMALL")  # 5 order messages per second; the test clock does not move
    for i in range(8):
        s.send(p.NewOrder(100 + i, OTHER, Side.BUY, 1, 1000 + i))
    msgs = s.quiet(0.5)
    assert sum(isinstance(m, p.Accepted) for m in msgs) == 5
    assert [m.reason for m in msgs if isinstance(m, p.Rejected)] == [RejectReason.THROTTLED] * 3
    oid = next(m.order_id for m in msgs if isinstance(m, p.Accepted))
    s.send(p.Cancel(oid))
    assert s.expect(p.Cancelled).order_id == oid
    venue.clock.now += 2 * SECOND  # tokens refill with time
    s.send(p.NewOrder(200, OTHER, Side.BUY, 1, 1000))
    assert isinstance(s.until(lambda m: isinstance(m, p.Accepted | p.Rejected))[-1], p.Accepted)


def test_kill_switch_cancels_everything_and_refuses_orders_until_released(venue):
    a = venue.client("ALPHA")
    a.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 1900))
    a.send(p.NewOrder(2, OTHER, Side.SELL, 5, 3000))
    a.quiet(0.3)
    assert venue.admin(action="kill", firm="ALPHA").ok
    msgs = a.quiet(0.5)
    assert [m.reason for m in msgs if isinstance(m, p.Cancelled)] == [CancelReason.ADMIN] * 2
    assert any(isinstance(m, p.SystemEvent) and m.code == "SUSPENDED" for m in msgs)
    a.send(p.NewOrder(3, SYMBOL, Side.BUY, 5, 1900))
    assert a.expect(p.Rejected).reason == RejectReason.FIRM_SUSPENDED
    assert venue.admin(action="release", firm="ALPHA").ok
    a.send(p.NewOrder(4, SYMBOL, Side.BUY, 5, 1900))
    assert isinstance(a.until(lambda m: isinstance(m, p.Accepted | p.Rejected))[-1], p.Accepted)


def test_silent_session_is_cancelled_on_disconnect_but_a_heartbeating_one_is_not(venue):
    quiet, alive = venue.client("ALPHA", "quiet"), venue.client("BETA", "alive")
    quiet.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 1900))
    alive.send(p.NewOrder(1, SYMBOL, Side.SELL, 5, 2100))
    quiet.expect(p.Accepted)
    alive.expect(p.Accepted)
    for _ in range(4):  # four seconds of test time, the live session heartbeating each second
        venue.clock.now += SECOND
        alive.send(p.Heartbeat())
        alive.quiet(0.1)
    msgs = quiet.quiet(0.3)
    assert [m.reason for m in msgs if isinstance(m, p.Cancelled)] == [CancelReason.DISCONNECT]
    instrument = venue.gateway.instrument_of[SYMBOL]
    assert venue.engine.best_bid(instrument) is None and venue.engine.best_ask(instrument).qty == 5


def test_logout_cancels_the_sessions_orders_when_asked_and_says_logout(venue):
    a = venue.client("ALPHA")
    a.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 1900))
    a.expect(p.Accepted)
    a.send(p.Logout())
    msgs = a.until(lambda m: isinstance(m, p.SystemEvent))
    assert msgs[-1].code == "LOGOUT" and msgs[0].reason == CancelReason.DISCONNECT
    keeper = venue.client()
    keeper.logon("keep", "BETA", cancel_on_disconnect=False)
    keeper.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 1900))
    keeper.expect(p.Accepted)
    keeper.send(p.Logout())
    assert [type(m) for m in keeper.until(lambda m: isinstance(m, p.SystemEvent))] == [p.SystemEvent]


def test_reconnect_with_next_seq_receives_exactly_the_missed_reports(venue):
    a, b = venue.client("ALPHA", "main"), venue.client("BETA")
    a.send(p.NewOrder(1, SYMBOL, Side.SELL, 10, 2000))
    first = a.expect(p.Accepted)
    a.close()
    for i in range(3):  # fills while ALPHA is away
        b.send(p.NewOrder(10 + i, SYMBOL, Side.BUY, 2, 2000, tif=TimeInForce.IOC))
        b.expect(p.Executed)
    again = venue.client()
    reply = again.logon("main", "ALPHA", next_seq=first.seq + 1)
    assert reply.next_seq == first.seq + 4
    missed = again.quiet(0.5)
    assert [m.seq for m in missed] == [2, 3, 4] and all(isinstance(m, p.Executed) for m in missed)
    assert missed[-1].leaves == 4


def test_curve_firm_is_named_by_its_key_and_an_unregistered_key_cannot_connect():
    server_pub, server_sec = zmq.curve_keypair()
    alpha_pub, alpha_sec = zmq.curve_keypair()
    rogue_pub, rogue_sec = zmq.curve_keypair()
    from gateway.config import FirmConfig
    venue = make_venue(firms=[FirmConfig("ALPHA", public_key=alpha_pub.decode()),
                              FirmConfig("BETA", public_key=zmq.curve_keypair()[0].decode())],
                       plaintext=False, server_public_key=server_pub.decode(), server_secret_key=server_sec.decode())
    try:
        good = venue.client(curve_serverkey=server_pub, curve_publickey=alpha_pub, curve_secretkey=alpha_sec)
        assert good.logon("k", firm="BETA") == p.LogonAccepted("k", "ALPHA", 1, 1000)  # the key wins
        rogue = venue.client(curve_serverkey=server_pub, curve_publickey=rogue_pub, curve_secretkey=rogue_sec)
        rogue.send(p.Logon("k", firm="ALPHA"))
        assert rogue.recv(1.0) is None
        assert venue.gateway.stats["auth_refused"] >= 1
    finally:
        venue.close()


def test_a_session_that_declared_a_slow_heartbeat_is_given_three_of_its_intervals(venue):
    slow = venue.client()
    slow.logon("slow", "ALPHA", heartbeat_ms=2000)
    slow.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 1900))
    slow.expect(p.Accepted)
    venue.clock.now += 4 * SECOND  # past the configured 3 s, within 3 x 2 s
    assert not [m for m in slow.quiet(0.3) if isinstance(m, p.Cancelled)]
    venue.clock.now += 3 * SECOND  # 7 s of silence: past 6 s
    assert slow.expect(p.Cancelled).reason == CancelReason.DISCONNECT


def test_only_well_formed_messages_count_as_activity_a_session_sending_garbage_is_timed_out(venue):
    junk = venue.client("ALPHA", "junk")
    junk.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 1900))
    junk.expect(p.Accepted)
    for _ in range(4):  # four seconds of test time, a malformed frame each second: not a sign of life
        venue.clock.now += SECOND
        junk.sock.send(b"\xc1")
        junk.expect(p.ProtocolError)
    msgs = junk.quiet(0.3)
    assert [m.reason for m in msgs if isinstance(m, p.Cancelled)] == [CancelReason.DISCONNECT]
    assert [m.code for m in msgs if isinstance(m, p.SystemEvent)] == ["DISCONNECT"]


def test_a_second_logon_on_the_same_connection_replays_from_its_next_seq(venue):
    a = venue.client("ALPHA", "again")
    a.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 1900))
    a.send(p.NewOrder(2, SYMBOL, Side.BUY, 5, 1800))
    first = a.expect(p.Accepted)
    second = a.expect(p.Accepted)
    assert (first.seq, second.seq) == (1, 2)
    again = a.logon("again", "ALPHA", next_seq=2)
    assert again.next_seq == 3
    assert a.expect(p.Accepted) == second  # seq 2 again, then nothing more
    assert a.quiet(0.2) == []
