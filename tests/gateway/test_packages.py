"""Packages of the call auction through the gateway, over real sockets (docs/auction.md, issue #6).

A venue on loopback (``tests.gateway.conftest``: the engine inside an ``engine.auction.Market``,
the gateway clock driven by the test) takes ``NewPackage`` / ``NewBlockPackage`` /
``CancelPackage`` from DEALER clients: accepted and rejected packages with their reasons,
cancels (own, unknown, another firm's), auctions run by the schedule (the test moves the clock
past the minute) and by the operator's ``auction`` request, filling a package bid against a
package offer and against resting book orders (whose owners get ``Executed`` with liquidity
AUCTION), ``PackageNotFilled`` reasons, cancel on disconnect and by the kill switch, resend
of package reports after a reconnect, and the ``cx package`` command line.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from engine.auction.orders import AUCTION_REJECT_TEXT
from engine.codes import AuctionReject, CancelReason, Liquidity, Outcome, RejectReason, Side, TimeInForce
from engine.instruments import NS_PER_SECOND, parse_hour
from gateway import protocol as p
from gateway.cli import main
from tests.gateway.conftest import ANCHOR_NS, make_venue
from tests.gateway.test_client_cli import cx

H = "H100.US-EAST.FIRM.2026-12-01T"


def sym(hour: int) -> str:
    return f"{H}{hour:02d}"


def bid(clid: int, *alternatives: tuple[int, list[tuple[str, int]]], **kw) -> p.NewPackage:
    return p.NewPackage(clid, Side.BUY, [p.PackageAlternative([p.PackageLeg(s, q) for s, q in legs], limit)
                                         for limit, legs in alternatives], **kw)


def offer(clid: int, limit: int, legs: list[tuple[str, int]]) -> p.NewPackage:
    return p.NewPackage(clid, Side.SELL, [p.PackageAlternative([p.PackageLeg(s, q) for s, q in legs], limit)])


def block_bid(hours: int, start: str, end: str, gpus: int, max_price: int, accelerator: str = "H100"):
    return p.BlockRequest(accelerator, "US-EAST", gpus, hours, parse_hour(start), parse_hour(end), max_price)


def block_offer(hours: int, start: str, gpus: int, min_price: int):
    return p.BlockOffer("H100", "US-EAST", gpus, hours, parse_hour(start), min_price)


def patient(venue, firm: str):
    """A client that declares a 60 s heartbeat: the test may move the clock a minute without losing it."""
    c = venue.client()
    assert isinstance(c.logon("s1", firm, heartbeat_ms=60_000), p.LogonAccepted)
    return c


def rejected(client, msg) -> p.PackageRejected:
    client.send(msg)
    return client.expect(p.PackageRejected)


def test_packages_are_accepted_or_rejected_with_typed_reasons(venue):
    a, small = venue.client("ALPHA"), venue.client("SMALL")
    a.send(bid(1, (8 * 2 * 3000, [(sym(14), 8), (sym(15), 8)]), (8 * 3000, [(sym(16), 8)])))
    acc = a.expect(p.PackageAccepted)
    assert (acc.seq, acc.client_order_id, acc.side, acc.alternatives, acc.legs) == (1, 1, Side.BUY, 2, 3)
    assert acc.package_id in venue.gateway.packages
    assert rejected(a, bid(2, (1000, [("H100.NOWHERE.FIRM.2026-12-01T14", 1)]))).reason == \
        AuctionReject.UNKNOWN_INSTRUMENT
    assert rejected(a, bid(3, (1000, [(sym(14), 0)]))).reason == AuctionReject.NON_POSITIVE_QTY
    assert rejected(a, bid(4, (1000, [(sym(14), 1), (sym(14), 1)]))).reason == AuctionReject.DUPLICATE_LEG
    assert rejected(a, bid(5, (0, [(sym(14), 1)]))).reason == AuctionReject.NON_POSITIVE_LIMIT
    assert rejected(a, bid(6)).reason == AuctionReject.NO_ALTERNATIVES
    two = p.NewPackage(7, Side.SELL, [p.PackageAlternative([p.PackageLeg(sym(14), 1)], 10)] * 2)
    assert rejected(a, two).reason == AuctionReject.TOO_MANY_ALTERNATIVES
    assert rejected(a, bid(8, (1000, [(sym(14), 1)]), tif=TimeInForce.IOC)).reason == AuctionReject.INVALID_FIELD
    dup = rejected(a, bid(1, (1000, [(sym(14), 1)])))  # the engine's: client order id used by the firm
    assert (dup.reason, dup.gateway_reason, dup.text) == (AuctionReject.DUPLICATE_ID, RejectReason.NONE,
                                                          AUCTION_REJECT_TEXT[AuctionReject.DUPLICATE_ID])
    closed = rejected(a, bid(9, (1000, [(sym(8), 1)])))  # delivery hour past its gate closure
    assert closed.reason == AuctionReject.INSTRUMENT_CLOSED
    risk = rejected(small, bid(1, (100_000, [(sym(14), 11)])))  # SMALL: max_order_qty 10 per leg
    assert (risk.reason, risk.gateway_reason) == (AuctionReject.NONE, RejectReason.FIRM_MAX_ORDER_SIZE)
    assert len(venue.gateway.packages) == 1


def test_packages_count_against_the_session_message_rate(venue):
    small = venue.client("SMALL")  # 5 messages per second
    small.sock.send(p.client_encoder.encode([bid(k, (1000, [(sym(14), 1)])) for k in range(1, 8)]))
    replies = small.quiet()
    assert [type(m) for m in replies].count(p.PackageAccepted) == 5
    assert [m.gateway_reason for m in replies if isinstance(m, p.PackageRejected)] == [RejectReason.THROTTLED] * 2


def test_block_packages_are_expanded_by_the_gateway(venue):
    a = venue.client("ALPHA")
    # 4 hours within 14:00-20:00: starts 14, 15, 16 -> 3 alternatives of 4 legs; or 6 hours of B200 within it
    a.send(p.NewBlockPackage(1, bid=[block_bid(4, "2026-12-01T14", "2026-12-01T20", 8, 3000),
                                     block_bid(6, "2026-12-01T14", "2026-12-01T20", 4, 4100, "B200")]))
    acc = a.expect(p.PackageAccepted)
    assert (acc.side, acc.alternatives, acc.legs) == (Side.BUY, 4, 3 * 4 + 6)
    a.send(p.NewBlockPackage(2, offer=block_offer(8, "2026-12-01T14", 16, 2000)))
    acc = a.expect(p.PackageAccepted)
    assert (acc.side, acc.alternatives, acc.legs) == (Side.SELL, 1, 8)
    nowhere = p.NewBlockPackage(3, bid=[block_bid(4, "2026-12-05T00", "2026-12-05T08", 8, 3000)])
    assert rejected(a, nowhere).reason == AuctionReject.NO_FEASIBLE_START
    off_band = p.NewBlockPackage(4, bid=[block_bid(4, "2026-12-01T14", "2026-12-01T20", 8, 50_000)])
    assert rejected(a, off_band).reason == AuctionReject.PRICE_OUT_OF_BAND
    both = p.NewBlockPackage(5, bid=[block_bid(4, "2026-12-01T14", "2026-12-01T20", 8, 3000)],
                             offer=block_offer(8, "2026-12-01T14", 16, 2000))
    assert rejected(a, both).reason == AuctionReject.INVALID_FIELD
    unlisted = p.NewBlockPackage(6, offer=block_offer(8, "2026-12-05T00", 16, 2000))
    assert rejected(a, unlisted).reason == AuctionReject.UNKNOWN_INSTRUMENT
    # a window of all time is clipped to the listed hours, not walked: every open start of 4 hours
    a.send(p.NewBlockPackage(7, bid=[p.BlockRequest("H100", "US-EAST", 8, 4, 0, 2**63 - 1, 3000)]))
    open_hours = [i for i in venue.engine.instruments
                  if (i.accelerator, i.region, i.service_class) == ("H100", "US-EAST", "FIRM")
                  and i.close_ns > venue.clock.now]
    assert a.expect(p.PackageAccepted).alternatives == len(open_hours) - 3


def test_cancel_own_unknown_and_another_firms_package(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    a.send(offer(1, 16_000, [(sym(14), 8)]))
    pid = a.expect(p.PackageAccepted).package_id
    b.send(p.CancelPackage(pid))
    assert b.expect(p.PackageCancelRejected).reason == RejectReason.NOT_YOUR_ORDER
    a.send(p.CancelPackage(pid))
    c = a.expect(p.PackageCancelled)
    assert (c.package_id, c.client_order_id, c.side, c.reason) == (pid, 1, Side.SELL, CancelReason.USER)
    a.send(p.CancelPackage(pid))
    rej = a.expect(p.PackageCancelRejected)
    assert (rej.package_id, rej.reason) == (pid, RejectReason.UNKNOWN_ORDER)
    assert not venue.gateway.packages and not venue.gateway.sessions.by_key[("ALPHA", "s1")].live_packages


def test_a_gtd_package_expires_with_the_clock(venue):
    a = patient(venue, "ALPHA")
    a.send(bid(1, (8 * 3000, [(sym(14), 8)]), tif=TimeInForce.GTD, expire_ts=ANCHOR_NS + 8 * NS_PER_SECOND))
    pid = a.expect(p.PackageAccepted).package_id
    a.send(bid(2, (8 * 3000, [(sym(14), 8)]), tif=TimeInForce.GTD, expire_ts=ANCHOR_NS))
    assert a.expect(p.PackageRejected).reason == AuctionReject.EXPIRE_TIME_IN_PAST
    venue.clock.now = ANCHOR_NS + 9 * NS_PER_SECOND  # before the first indicative run at 10 s
    c = a.expect(p.PackageCancelled)
    assert (c.package_id, c.reason) == (pid, CancelReason.EXPIRED) and not venue.gateway.packages


def test_the_schedule_runs_an_auction_that_fills_a_package_bid_against_a_package_offer(venue):
    a, b = patient(venue, "ALPHA"), patient(venue, "BETA")
    a.send(p.NewBlockPackage(1, offer=block_offer(4, "2026-12-01T14", 8, 2000)))
    offer_id = a.expect(p.PackageAccepted).package_id
    b.send(p.NewBlockPackage(1, bid=[block_bid(4, "2026-12-01T14", "2026-12-01T20", 8, 3000)]))
    bid_id = b.expect(p.PackageAccepted).package_id
    assert a.quiet(0.3) == [] and venue.gateway.stats["auctions"] == 0
    venue.clock.now = ANCHOR_NS + 60 * NS_PER_SECOND  # the minute: the scheduled auction
    sold = a.until(lambda m: isinstance(m, p.PackageExecuted) and m.last, timeout=10)
    bought = b.until(lambda m: isinstance(m, p.PackageExecuted) and m.last, timeout=10)
    assert [m.symbol for m in sold] == [m.symbol for m in bought] == [sym(h) for h in range(14, 18)]
    assert {m.package_id for m in sold} == {offer_id} and {m.package_id for m in bought} == {bid_id}
    assert [m.last for m in bought] == [False, False, False, True]
    for m in bought:
        assert m.qty == 8 and m.amount == 8 * m.price and m.auction == 1 and m.alternative == 0
    total = sum(m.amount for m in bought)
    assert 2000 * 32 <= total <= 3000 * 32 and total == sum(m.amount for m in sold)
    assert not venue.gateway.packages and venue.gateway.stats["auctions"] == 1
    assert venue.gateway.last_auction.accepted == 2 and not venue.gateway.last_auction.indicative


def test_indicative_runs_between_auctions_fill_nothing_and_report_nothing(venue):
    a, b = patient(venue, "ALPHA"), patient(venue, "BETA")
    a.send(offer(1, 8 * 2000, [(sym(14), 8)]))
    a.expect(p.PackageAccepted)
    b.send(bid(1, (8 * 3000, [(sym(14), 8)])))
    b.expect(p.PackageAccepted)
    venue.clock.now = ANCHOR_NS + 10 * NS_PER_SECOND
    deadline = 50
    while venue.gateway.stats["indicative_auctions"] == 0 and deadline:
        a.quiet(0.1)
        deadline -= 1
    assert venue.gateway.last_auction.indicative and venue.gateway.last_auction.traded
    assert a.quiet(0.2) == [] and b.quiet(0.1) == [] and len(venue.gateway.packages) == 2


def test_admin_auction_fills_a_package_bid_against_resting_book_orders(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    for clid, hour in ((1, 15), (2, 16)):
        a.send(p.NewOrder(clid, sym(hour), Side.SELL, 10, 2000))
    order_ids = [m.order_id for m in a.until(lambda m: isinstance(m, p.Accepted) and m.client_order_id == 2)
                 if isinstance(m, p.Accepted)]
    b.send(bid(7, (8 * 2 * 2500, [(sym(15), 8), (sym(16), 8)])))
    pid = b.expect(p.PackageAccepted).package_id
    reply = venue.admin(action="auction")
    assert reply.ok and reply.auction is not None, reply
    assert (reply.auction.auction, reply.auction.accepted, reply.auction.not_accepted) == (1, 1, 0)
    assert sorted(s for s, _, _ in reply.auction.traded) == [sym(15), sym(16)]
    assert reply.text.startswith("auction 1: ")
    legs = b.until(lambda m: isinstance(m, p.PackageExecuted) and m.last)
    assert [(m.package_id, m.client_order_id, m.symbol, m.qty) for m in legs] == [(pid, 7, sym(15), 8),
                                                                                  (pid, 7, sym(16), 8)]
    fills = [a.expect(p.Executed), a.expect(p.Executed)]
    assert [(f.order_id, f.qty, f.leaves, f.liquidity) for f in fills] == [(oid, 8, 2, Liquidity.AUCTION)
                                                                          for oid in order_ids]
    assert [f.price for f in fills] == [m.price for m in legs] and all(f.price <= 2500 for f in fills)
    assert venue.gateway.orders[order_ids[0]].leaves == 2
    assert venue.admin(action="auction", indicative=True).auction.indicative


def test_an_auction_reports_packages_it_leaves_live_as_not_filled(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    a.send(offer(1, 8 * 2000, [(sym(14), 8)]))
    offer_id = a.expect(p.PackageAccepted).package_id
    b.send(bid(1, (8 * 1000, [(sym(14), 8)]), (8 * 1500, [(sym(15), 8)])))
    bid_id = b.expect(p.PackageAccepted).package_id
    reply = venue.admin(action="auction")
    assert reply.ok and reply.auction.accepted == 0 and reply.auction.not_accepted == 2
    nf = b.expect(p.PackageNotFilled)
    assert (nf.package_id, nf.client_order_id, nf.side, nf.auction) == (bid_id, 1, Side.BUY, 1)
    assert nf.reason == Outcome.LIMIT_BELOW_PRICE and nf.limit == [8 * 1000, 8 * 1500][nf.alternative]
    assert nf.price > nf.limit
    nf = a.expect(p.PackageNotFilled)
    assert (nf.package_id, nf.side, nf.limit) == (offer_id, Side.SELL, 8 * 2000)
    assert nf.reason in (Outcome.LIMIT_BELOW_PRICE, Outcome.AT_PRICE, Outcome.PARADOXICALLY_REJECTED)
    assert len(venue.gateway.packages) == 2  # both stay live for the next auction


def test_packages_are_cancelled_on_disconnect_and_by_the_kill_switch(venue):
    a, b = venue.client("ALPHA"), venue.client("BETA")
    a.send(offer(1, 16_000, [(sym(14), 8)]))
    a.send(bid(2, (16_000, [(sym(15), 8)])))
    a.until(lambda m: isinstance(m, p.PackageAccepted) and m.client_order_id == 2)
    a.send(p.Logout())
    msgs = a.quiet()
    assert [type(m) for m in msgs] == [p.PackageCancelled, p.PackageCancelled, p.SystemEvent]
    assert [m.reason for m in msgs[:2]] == [CancelReason.DISCONNECT] * 2
    b.send(bid(1, (16_000, [(sym(15), 8)])))
    pid = b.expect(p.PackageAccepted).package_id
    assert venue.admin(action="kill", firm="BETA").ok
    c = b.expect(p.PackageCancelled)
    assert (c.package_id, c.reason) == (pid, CancelReason.ADMIN)
    b.expect(p.SystemEvent)
    assert rejected(b, bid(2, (16_000, [(sym(15), 8)]))).gateway_reason == RejectReason.FIRM_SUSPENDED
    assert not venue.gateway.packages


def test_package_reports_are_resent_after_a_reconnect(venue):
    a = venue.client()
    a.logon("a", "ALPHA", cancel_on_disconnect=False)
    a.send(offer(1, 8 * 2000, [(sym(14), 8)]))
    acc = a.expect(p.PackageAccepted)
    a.close()  # gone, its package stays live
    b = venue.client("BETA")
    b.send(bid(1, (8 * 3000, [(sym(14), 8)])))
    b.expect(p.PackageAccepted)
    assert venue.admin(action="auction").auction.accepted == 2
    b.expect(p.PackageExecuted)
    a = venue.client()
    assert a.logon("a", "ALPHA", next_seq=2).next_seq == 3
    fill = a.expect(p.PackageExecuted)
    assert (fill.seq, fill.package_id, fill.qty, fill.last) == (2, acc.package_id, 8, True)
    again = venue.client()
    again.logon("a", "ALPHA", next_seq=1)
    assert again.quiet() == [acc, fill]


def test_no_auction_without_a_market():
    from engine.exchange import Exchange
    from gateway.config import GatewayConfig
    from tests.gateway.conftest import Venue, listing_instruments

    v = Venue(GatewayConfig.for_tests(), Exchange(listing_instruments(), 3))
    try:
        a = v.client("ALPHA")
        rej = rejected(a, bid(1, (1000, [(sym(14), 1)])))
        assert rej.gateway_reason == RejectReason.INVALID_FIELD and "no call auction" in rej.text
        assert not v.admin(action="auction").ok
    finally:
        v.close()


# ------------------------------------------------------------------ client SDK


def test_sdk_sends_packages_keeps_the_live_view_and_formats_the_reports(venue):
    from gateway.client import OrderEntryClient, format_report

    with OrderEntryClient() as a, OrderEntryClient() as b:
        a.connect(venue.gateway.endpoint, "sdk", firm="ALPHA")
        b.connect(venue.gateway.endpoint, "sdk", firm="BETA")
        cid = a.send_block_package(block_offer(2, "2026-12-01T14", 8, 2000), client_order_id=11)
        acc = a.recv(3)
        assert isinstance(acc, p.PackageAccepted) and acc.client_order_id == cid == 11
        assert a.packages[acc.package_id].legs == 2 and a.packages[acc.package_id].side == Side.SELL
        assert "accepted   package" in format_report(acc) and "offer, 1 alternative, 2 legs" in format_report(acc)
        b.send_package("BUY", [(8 * 2 * 1500, [(sym(14), 8), (sym(15), 8)]),
                               p.PackageAlternative([p.PackageLeg(sym(16), 8)], 8 * 3000)], client_order_id=5)
        bid_acc = b.recv(3)
        assert (bid_acc.alternatives, bid_acc.legs) == (2, 3)
        rej_cid = b.send_block_package([block_bid(4, "2026-12-05T00", "2026-12-05T08", 8, 3000)])
        rej = b.recv(3)
        assert isinstance(rej, p.PackageRejected) and rej.client_order_id == rej_cid
        assert "NO_FEASIBLE_START" in format_report(rej)
        with pytest.raises(ValueError, match="BlockOffer"):
            b.send_block_package([])
        assert venue.admin(action="auction").ok
        nf = a.recv(3)
        assert isinstance(nf, p.PackageNotFilled) and "still live" in format_report(nf)
        b.recv(3)
        a.cancel_package(acc.package_id)
        cancelled = a.recv(3)
        assert isinstance(cancelled, p.PackageCancelled) and not a.packages
        assert "USER" in format_report(cancelled)
        a.cancel_package(acc.package_id)
        assert "UNKNOWN_ORDER" in format_report(a.recv(3))


def test_async_sdk_package_round_trip(venue):
    from gateway.client import AsyncOrderEntryClient

    async def run() -> list:
        async with AsyncOrderEntryClient() as a, AsyncOrderEntryClient() as b:
            await a.connect(venue.gateway.endpoint, "async", firm="ALPHA")
            await b.connect(venue.gateway.endpoint, "async", firm="BETA")
            await a.send_block_package(block_offer(2, "2026-12-01T14", 8, 2000))
            await b.send_package(Side.BUY, [(8 * 2 * 3000, [(sym(14), 8), (sym(15), 8)])])
            pid = (await b.recv(3)).package_id
            assert isinstance(await a.recv(3), p.PackageAccepted)
            assert (await asyncio.to_thread(venue.admin, action="auction")).auction.accepted == 2
            legs = [await b.recv(3), await b.recv(3)]
            assert not b.packages and [m.package_id for m in legs] == [pid, pid]
            await b.cancel_package(pid)
            return [legs[-1], await b.recv(3)]

    last, refused = asyncio.run(run())
    assert last.last and isinstance(refused, p.PackageCancelRejected)


# ------------------------------------------------------------------ restart


def test_package_sessions_survive_a_restart_of_a_journaled_venue(tmp_path):
    """Package records straddle the replay's engine calls (3 commands each); the rebuilt gateway holds the
    same stores, packages and owners, and a package that rests across the restart fills after it."""
    from tests.gateway.test_session_recovery import Venues, decoded, gateway_state

    venues = Venues()
    try:
        d = tmp_path / "journal"
        v = venues.open(d)
        a = v.client()
        a.logon("a", "ALPHA", cancel_on_disconnect=False)
        b, small = v.client("BETA", "b"), v.client("SMALL", "s")
        a.send(offer(1, 8 * 2000, [(sym(14), 8), (sym(15), 8)]))
        resting = a.expect(p.PackageAccepted).package_id
        a.send(offer(2, 4 * 2000, [(sym(16), 4)]))
        a.send(bid(3, (1000, [("NO.SUCH.SYMBOL", 1)])))  # the gateway's own PackageRejected
        a.until(lambda m: isinstance(m, p.PackageRejected))
        b.send(bid(1, (4 * 3000, [(sym(16), 4)]), (4 * 3000, [(sym(17), 4)])))
        b.expect(p.PackageAccepted)
        b.send(bid(2, (1000, [(sym(18), 1)])))
        cancelled = b.expect(p.PackageAccepted).package_id
        b.send(p.CancelPackage(cancelled))
        b.expect(p.PackageCancelled)
        b.send(p.CancelPackage(resting))  # not BETA's
        b.expect(p.PackageCancelRejected)
        small.send(bid(1, (10**8, [(sym(18), 10_001)])))  # above the instrument's maximum order size
        small.expect(p.PackageRejected)
        assert v.admin(action="auction").auction.accepted == 2  # ALPHA's 16:00 offer and BETA's bid
        b.expect(p.PackageExecuted)
        small.send(bid(2, (1000, [(sym(18), 1)])))
        small.expect(p.PackageAccepted)
        assert v.admin(action="kill", firm="SMALL").ok
        small.expect(p.PackageCancelled)
        live = gateway_state(v.gateway)
        assert set(live["packages"]) == {resting} and live["suspended"] == {2}
        venues.crash(v)

        w = venues.open(d, v.clock)
        assert gateway_state(w.gateway) == live
        a = w.client()
        assert a.logon("a", "ALPHA", next_seq=1).next_seq == len(live["stores"][("ALPHA", "a")]) + 1
        assert a.quiet() == decoded(live["stores"][("ALPHA", "a")])
        b = w.client("BETA", "b2")
        b.send(bid(3, (16 * 3000, [(sym(14), 8), (sym(15), 8)])))
        b.expect(p.PackageAccepted)
        assert w.admin(action="auction").auction.auction == 2
        legs = a.until(lambda m: isinstance(m, p.PackageExecuted) and m.last)
        assert [m.package_id for m in legs] == [resting, resting] and not w.gateway.packages
    finally:
        for venue in list(venues.running):
            venues.crash(venue)


# ------------------------------------------------------------------ cx package


def package_id(out: str) -> int:
    return int(re.search(r"accepted +package (\d+)", out).group(1))


def test_cx_package_buy_sell_wait_and_cancel(capsys):
    venue = make_venue(auction_interval_s=0, indicative_interval_s=0)
    try:
        code, out, err = cx(venue, capsys, "package", "sell", "H100", "--region", "US-EAST", "--gpus", "16",
                            "--hours", "4", "--start", "2026-12-01T14", "--min", "2.000")
        assert code == 0, err
        assert "SELL 16 GPUs H100.US-EAST.FIRM x 4 h from 2026-12-01T14" in out and "min 2.000" in out
        sell_id = package_id(out)
        code, out, err = cx(venue, capsys, "package", "buy", "B200", "--region", "US-EAST", "--gpus", "8",
                            "--hours", "6", "--window", "2026-12-01T08/2026-12-01T20", "--max", "4.100",
                            "--or", "H100", "--gpus", "16", "--hours", "4", "--max", "2.900", firm="BETA")
        assert code == 0, err
        buy_id = package_id(out)
        # B200: starts 10..14 (08 and 09 are past their gate closure... and rejected as closed); H100: 10..16
        assert "or H100.US-EAST.FIRM 16 GPUs x 4 h" in out
        code, out, err = cx(venue, capsys, "package", "cancel", str(buy_id), firm="BETA")
        assert code == 0 and f"cancelled  package {buy_id}" in out and "USER" in out
        code, out, err = cx(venue, capsys, "package", "cancel", str(buy_id), firm="BETA")
        assert code == 1 and "UNKNOWN_ORDER" in out
        code, out, err = cx(venue, capsys, "package", "buy", "H100", "--region", "US-EAST", "--gpus", "16",
                            "--hours", "4", "--window", "2026-12-01T14/2026-12-01T18", "--max", "0.0001",
                            firm="BETA")
        assert code == 2 and "tick" in err
        code, out, err = cx(venue, capsys, "package", "buy", "H100", "--region", "US-EAST", "--gpus", "16",
                            "--hours", "4", "--window", "2026-12-05T00/2026-12-05T04", "--max", "2.900", firm="BETA")
        assert code == 1 and "NO_FEASIBLE_START" in out
        import threading
        import time

        def operator() -> None:  # the auction comes while `cx package buy --wait` waits for it
            deadline = time.monotonic() + 5
            while len(venue.gateway.packages) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            venue.admin(action="auction")

        t = threading.Thread(target=operator)
        t.start()
        code, out, err = cx(venue, capsys, "package", "buy", "H100", "--region", "US-EAST", "--gpus", "16",
                            "--hours", "4", "--window", "2026-12-01T14/2026-12-01T18", "--max", "2.900",
                            "--wait", firm="BETA")
        t.join()
        assert code == 0, err
        assert out.count("executed   package") == 4 and "auction 1" in out
        assert sell_id not in venue.gateway.packages
        assert main(["admin", "auction", "now", "--admin", venue.gateway.admin_endpoint]) == 0
        out = capsys.readouterr().out
        assert out.startswith("auction 2: optimal") and "0 packages accepted" in out
        assert "surplus $0.000" in out and "ticks" not in out  # money in dollars, as cx top and cx web show it
    finally:
        venue.close()


def test_a_block_of_an_unlisted_accelerator_region_or_class_is_refused_naming_it(venue):
    a = venue.client("ALPHA")
    b300 = p.NewBlockPackage(1, bid=[block_bid(2, "2026-12-01T14", "2026-12-01T20", 8, 3000, "B300")])
    r = rejected(a, b300)
    assert r.reason == AuctionReject.UNKNOWN_INSTRUMENT and "accelerator 'B300' is not listed (listed: " in r.text
    mars = p.NewBlockPackage(2, offer=p.BlockOffer("H100", "MARS", 8, 2, parse_hour("2026-12-01T14"), 2000))
    r = rejected(a, mars)
    assert r.reason == AuctionReject.UNKNOWN_INSTRUMENT and "region 'MARS' is not listed" in r.text


def test_the_largest_block_bid_a_frame_can_hold_is_refused_from_its_size_before_any_expansion(venue, monkeypatch):
    """256 requests of 36 hours over the whole window would expand to ~341,000 legs: refused unexpanded."""
    import gateway.server

    expanded = []
    monkeypatch.setattr(gateway.server, "expand_block_request", lambda *a: expanded.append(a) or [])
    a = venue.client("ALPHA")
    worst = p.NewBlockPackage(1, bid=[p.BlockRequest("H100", "US-EAST", 1, 36, 0, 2**63 - 1, 3000)] * 256)
    assert len(p.client_encoder.encode(worst)) < p.MAX_FRAME_BYTES
    assert rejected(a, worst).reason == AuctionReject.TOO_MANY_LEGS
    many = p.NewBlockPackage(2, bid=[p.BlockRequest("H100", "US-EAST", 1, 1, 0, 2**63 - 1, 3000)] * 100)
    assert rejected(a, many).reason == AuctionReject.TOO_MANY_ALTERNATIVES  # 100 x every listed hour
    long = p.NewBlockPackage(3, bid=[p.BlockRequest("H100", "US-EAST", 1, 600, 0, 2**63 - 1, 3000)])
    assert rejected(a, long).reason == AuctionReject.TOO_MANY_LEGS
    assert expanded == []  # none of them was expanded
