"""engine.auction.market.Market: package orders and the auction in the engine's command/event stream,
over both matching engines."""

import numpy as np
import pytest

from engine.auction.market import (
    Market,
    cancel_package_record,
    package_records,
    run_auction_record,
)
from engine.auction.orders import Alternative, Leg
from engine.codes import (
    AuctionReject,
    AuctionStatus,
    CancelReason,
    EventKind,
    Liquidity,
    Outcome,
    PackageEventKind,
    RejectReason,
    Side,
    TimeInForce,
)
from engine.exchange import Exchange
from engine.instruments import NS_PER_HOUR, Instrument
from engine.records import NewOrder, commands_to_records
from engine.reference import ReferenceExchange

H = NS_PER_HOUR
CLOSE = 10**15
BUYER, URGENT, PROVIDER, MAKER = 1, 2, 3, 4


def listing(hours: int = 4) -> list[Instrument]:
    return [Instrument(h, "B200", "US-EAST", "FIRM", (100 + h) * H, 0, CLOSE + h, 1, 10_000, 1, 1000, 50)
            for h in range(hours)]


@pytest.fixture(params=[Exchange, ReferenceExchange], ids=["core", "reference"])
def market(request):
    return Market(request.param(listing(), 16))


def run(m: Market, *parts: np.ndarray) -> np.ndarray:
    records = np.concatenate(parts)
    n = m.process_batch(records)
    ends = m.last_command_ends
    assert len(ends) == len(records) and list(ends) == sorted(ends) and (n == 0 or ends[-1] == n)
    ev = m.last_events.copy()
    assert list(ev["seq"]) == list(range(ev["seq"][0], ev["seq"][0] + len(ev))) if len(ev) else True
    return ev


def of(ev: np.ndarray, kind: int) -> np.ndarray:
    return ev[ev["kind"] == kind]


def block(first: int, hours: int, gpus: int) -> list[Leg]:
    return [Leg(h, gpus) for h in range(first, first + hours)]


def test_packages_are_accepted_numbered_and_rejected_with_reasons(market):
    ev = run(market,
             package_records(1, BUYER, 7, Side.BUY, [Alternative(block(0, 2, 8), 1000)]),
             package_records(1, BUYER, 7, Side.BUY, [Alternative(block(0, 2, 8), 1000)]),  # duplicate id
             package_records(1, BUYER, 8, Side.BUY, [Alternative([Leg(99, 1)], 10)]),  # unknown instrument
             package_records(1, BUYER, 9, Side.BUY, []),  # no alternatives
             package_records(1, PROVIDER, 1, Side.SELL, [Alternative(block(0, 2, 8), 0),
                                                         Alternative(block(2, 2, 8), 0)]),  # offer: one block only
             package_records(1, BUYER, 10, Side.BUY, [Alternative(block(0, 1, 1), 50)], TimeInForce.GTD, 1))
    acc = of(ev, PackageEventKind.PACKAGE_ACCEPTED)
    assert len(acc) == 1 and (acc["order_id"][0], acc["count"][0], acc["qty"][0]) == (1, 1, 2)
    assert of(ev, PackageEventKind.PACKAGE_REJECTED)["reason"].tolist() == [
        AuctionReject.DUPLICATE_ID, AuctionReject.UNKNOWN_INSTRUMENT, AuctionReject.NO_ALTERNATIVES,
        AuctionReject.MALFORMED, AuctionReject.EXPIRE_TIME_IN_PAST]
    assert [p.package_id for p in market.packages] == [1]


def test_truncated_or_stray_package_records_are_rejected_as_malformed_and_nothing_else_changes(market):
    recs = package_records(1, BUYER, 1, Side.BUY, [Alternative(block(0, 2, 8), 1000)])
    ev = run(market, recs[:2])  # the header promises 3 records, 1 follows: both are refused
    assert of(ev, PackageEventKind.PACKAGE_REJECTED)["reason"].tolist() == [AuctionReject.MALFORMED] * 2
    ev = run(market, recs[1:])  # an ALTERNATIVE and two LEGs without their PACKAGE
    assert of(ev, PackageEventKind.PACKAGE_REJECTED)["reason"].tolist() == [AuctionReject.MALFORMED] * 3
    assert market.packages == [] and market.auction_state == b""


def test_cancel_own_package_refuse_another_firms_and_expire_gtd(market):
    run(market, package_records(1, BUYER, 1, Side.BUY, [Alternative(block(0, 1, 1), 50)]),
        package_records(1, BUYER, 2, Side.BUY, [Alternative(block(0, 1, 1), 50)], TimeInForce.GTD, 500))
    ev = run(market, cancel_package_record(2, URGENT, 1), cancel_package_record(2, BUYER, 9))
    assert of(ev, PackageEventKind.PACKAGE_CANCEL_REJECTED)["reason"].tolist() == [
        RejectReason.NOT_YOUR_ORDER, RejectReason.UNKNOWN_ORDER]
    ev = run(market, cancel_package_record(3, BUYER, 1))
    assert of(ev, PackageEventKind.PACKAGE_CANCELLED)[["order_id", "reason"]].tolist() == [(1, CancelReason.USER)]
    # GTD expiry rides on any later command, here an ordinary order
    ev = run(market, commands_to_records([NewOrder(600, MAKER, 1, 0, Side.BUY, 10, 1)]))
    assert of(ev, PackageEventKind.PACKAGE_CANCELLED)[["order_id", "reason"]].tolist() == [
        (2, CancelReason.EXPIRED)]
    assert of(ev, EventKind.ACCEPTED).size == 1 and market.packages == []


def test_the_auction_fills_packages_and_resting_orders_at_one_price_per_hour(market):
    # hours 0-1: a provider sells a block of 12 GPUs x 2 hours (min 2,000 total), a buyer wants 8 x 2 hours
    # (max 2,400); resting bids of 4 GPUs at 130 (hour 0) and 120 (hour 1) take the other 4 as divisibles
    run(market, commands_to_records([NewOrder(1, MAKER, 1, 0, Side.BUY, 130, 4),
                                     NewOrder(1, MAKER, 2, 1, Side.BUY, 120, 4)]),
        package_records(1, PROVIDER, 1, Side.SELL, [Alternative(block(0, 2, 12), 2000)]),
        package_records(1, BUYER, 1, Side.BUY, [Alternative(block(0, 2, 8), 2400)]),
        package_records(1, URGENT, 1, Side.BUY, [Alternative(block(2, 1, 2), 10)]))  # nobody sells hour 2
    ev = run(market, run_auction_record(10, 5000, 0))
    book_fills = of(ev, EventKind.FILL)
    assert set(book_fills["liquidity"].tolist()) == {Liquidity.AUCTION}
    prices = {int(e["instrument"]): (int(e["price"]), int(e["qty"])) for e in of(ev, PackageEventKind.AUCTION_PRICE)}
    fills = of(ev, PackageEventKind.PACKAGE_FILL)
    assert sorted(fills["order_id"].tolist()) == [1, 1, 2, 2]
    for f in fills:  # every package leg pays its hour's price
        assert f["price"] == prices[int(f["instrument"])][0] and f["cum"] == f["qty"] * f["price"]
    for f in book_fills:
        assert f["price"] == prices[int(f["instrument"])][0]
    # money and GPUs balance per hour: bought == sold, paid == received
    for inst in (0, 1):
        buys = [(int(f["qty"]), int(f["price"])) for f in np.concatenate([fills, book_fills])
                if f["instrument"] == inst and f["side"] == Side.BUY]
        sells = [(int(f["qty"]), int(f["price"])) for f in np.concatenate([fills, book_fills])
                 if f["instrument"] == inst and f["side"] == Side.SELL]
        assert sum(q for q, _ in buys) == sum(q for q, _ in sells) == prices[inst][1]
        assert sum(q * p for q, p in buys) == sum(q * p for q, p in sells)
    # the buyer pays within its limit, the provider gets at least its minimum
    assert sum(int(f["cum"]) for f in fills if f["firm"] == BUYER) <= 2400
    assert sum(int(f["cum"]) for f in fills if f["firm"] == PROVIDER) >= 2000
    assert sorted(book_fills[["order_id", "qty", "leaves"]].tolist()) == [(1, 4, 0), (2, 4, 0)]
    assert fills[fills["firm"] == BUYER]["status"].tolist() == [0, 1]  # last-leg flag
    unfilled = of(ev, PackageEventKind.PACKAGE_UNFILLED)
    assert unfilled[["firm", "order_id"]].tolist() == [(URGENT, 3)]
    assert unfilled["reason"][0] == Outcome.NO_SUPPLY  # nothing was offered in hour 2: said so, not a price
    (res,) = of(ev, PackageEventKind.AUCTION_RESULT)
    assert (res["order_id"], res["side"], res["status"], res["qty"], res["leaves"]) == (
        1, 0, AuctionStatus.OPTIMAL, 2, 1)
    assert [p.package_id for p in market.packages] == [3] and market.auctions == 1
    # the resting orders were reduced or removed in the book
    for f in book_fills:
        status = market.order(int(f["order_id"]))
        assert (status is None) if f["leaves"] == 0 else (status.leaves == f["leaves"])


def test_an_indicative_run_publishes_prices_and_changes_nothing(market):
    run(market, package_records(1, PROVIDER, 1, Side.SELL, [Alternative(block(0, 1, 4), 100)]),
        package_records(1, BUYER, 1, Side.BUY, [Alternative(block(0, 1, 4), 400)]))
    before = market.auction_state
    ev = run(market, run_auction_record(5, 5000, 0, indicative=True))
    assert set(ev["kind"].tolist()) <= {PackageEventKind.AUCTION_PRICE, PackageEventKind.AUCTION_RESULT}
    assert (of(ev, PackageEventKind.AUCTION_PRICE)["side"] == 1).all()
    assert of(ev, PackageEventKind.AUCTION_RESULT)["qty"].tolist() == [2]
    assert market.auction_state == before and market.auctions == 0


def test_state_round_trip_and_determinism_across_engines():
    def script():
        return [
            commands_to_records([NewOrder(1, MAKER, 1, 0, Side.BUY, 130, 4)]),
            package_records(1, PROVIDER, 1, Side.SELL, [Alternative(block(0, 2, 8), 1600)]),
            package_records(2, BUYER, 1, Side.BUY, [Alternative(block(0, 2, 8), 2400),
                                                    Alternative(block(1, 2, 8), 2600)]),
            package_records(2, URGENT, 5, Side.BUY, [Alternative(block(3, 1, 1), 500)], TimeInForce.GTD, 10**6),
            run_auction_record(3, 5000, 0),
            package_records(4, BUYER, 2, Side.BUY, [Alternative(block(2, 2, 2), 900)]),
        ]

    streams = []
    for cls in (Exchange, ReferenceExchange):
        m = Market(cls(listing(), 16))
        streams.append([run(m, part).tolist() for part in script()])
        state = m.auction_state
        again = Market(cls(listing(), 16))
        for part in script():
            again.process_batch(part)
        assert again.auction_state == state
        restored = Market(m.exchange, state)
        assert restored.auction_state == state and [p.package_id for p in restored.packages] == [3, 4]
    assert streams[0] == streams[1]
