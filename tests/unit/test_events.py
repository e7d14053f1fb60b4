"""Event streams as a whole: exact lists, counters, the three ways to submit, and the queries."""

import numpy as np

from engine.codes import CancelReason, Liquidity, RejectReason, TimeInForce
from engine.interface import LevelView, OrderStatus, RestingOrder
from engine.records import (
    EVENT_DTYPE,
    Accepted,
    BookLevel,
    Cancel,
    Cancelled,
    Fill,
    MassQuote,
    Modify,
    NewOrder,
    QuoteEntry,
    Rejected,
    Trade,
    commands_to_records,
    events_from_records,
    events_to_records,
)

from .helpers import BUY, SELL, A, B, C, kinds, limit, market

# ------------------------------------------------------------------ exact streams


def test_buy_crossing_two_asks_emits_the_exact_stream(ex):
    assert limit(ex, A, 1, SELL, 100, 5, ts=1) == [
        Accepted(seq=1, ts=1, instrument=0, order_id=1, firm=A, client_order_id=1, side=SELL, price=100, qty=5),
        BookLevel(seq=2, ts=1, instrument=0, side=SELL, price=100, qty=5, count=1),
    ]
    assert limit(ex, B, 1, SELL, 101, 5, ts=2) == [
        Accepted(seq=3, ts=2, instrument=0, order_id=2, firm=B, client_order_id=1, side=SELL, price=101, qty=5),
        BookLevel(seq=4, ts=2, instrument=0, side=SELL, price=101, qty=5, count=1),
    ]
    assert limit(ex, C, 7, BUY, 101, 8, ts=3) == [
        Accepted(seq=5, ts=3, instrument=0, order_id=3, firm=C, client_order_id=7, side=BUY, price=101, qty=8),
        Fill(seq=6, ts=3, instrument=0, order_id=1, firm=A, client_order_id=1, side=SELL, price=100, qty=5, leaves=0,
             cum=5, trade_id=1, liquidity=Liquidity.MAKER),
        Fill(seq=7, ts=3, instrument=0, order_id=3, firm=C, client_order_id=7, side=BUY, price=100, qty=5, leaves=3,
             cum=5, trade_id=1, liquidity=Liquidity.TAKER),
        Trade(seq=8, ts=3, instrument=0, trade_id=1, side=BUY, price=100, qty=5),
        BookLevel(seq=9, ts=3, instrument=0, side=SELL, price=100, qty=0, count=0),
        Fill(seq=10, ts=3, instrument=0, order_id=2, firm=B, client_order_id=1, side=SELL, price=101, qty=3,
             leaves=2, cum=3, trade_id=2, liquidity=Liquidity.MAKER),
        Fill(seq=11, ts=3, instrument=0, order_id=3, firm=C, client_order_id=7, side=BUY, price=101, qty=3, leaves=0,
             cum=8, trade_id=2, liquidity=Liquidity.TAKER),
        Trade(seq=12, ts=3, instrument=0, trade_id=2, side=BUY, price=101, qty=3),
        BookLevel(seq=13, ts=3, instrument=0, side=SELL, price=101, qty=2, count=1),
    ]


def test_market_sell_with_protection_emits_the_exact_stream(ex):
    limit(ex, B, 1, BUY, 200, 2)
    limit(ex, B, 2, BUY, 140, 2)
    assert market(ex, A, 1, SELL, 5, ts=2) == [
        Accepted(seq=5, ts=2, instrument=0, order_id=3, firm=A, client_order_id=1, side=SELL, price=150, qty=5),
        Fill(seq=6, ts=2, instrument=0, order_id=1, firm=B, client_order_id=1, side=BUY, price=200, qty=2, leaves=0,
             cum=2, trade_id=1, liquidity=Liquidity.MAKER),
        Fill(seq=7, ts=2, instrument=0, order_id=3, firm=A, client_order_id=1, side=SELL, price=200, qty=2, leaves=3,
             cum=2, trade_id=1, liquidity=Liquidity.TAKER),
        Trade(seq=8, ts=2, instrument=0, trade_id=1, side=SELL, price=200, qty=2),
        BookLevel(seq=9, ts=2, instrument=0, side=BUY, price=200, qty=0, count=0),
        Cancelled(seq=10, ts=2, instrument=0, order_id=3, firm=A, client_order_id=1, side=SELL, price=150, qty=3,
                  cum=2, reason=CancelReason.MARKET_PROTECTION),
    ]


def test_stp_cancel_both_emits_the_exact_stream(ex):
    limit(ex, A, 1, SELL, 100, 5)
    assert limit(ex, A, 2, BUY, 100, 3, stp=2) == [
        Accepted(seq=3, ts=1, instrument=0, order_id=2, firm=A, client_order_id=2, side=BUY, price=100, qty=3),
        Cancelled(seq=4, ts=1, instrument=0, order_id=1, firm=A, client_order_id=1, side=SELL, price=100, qty=5,
                  cum=0, reason=CancelReason.STP),
        BookLevel(seq=5, ts=1, instrument=0, side=SELL, price=100, qty=0, count=0),
        Cancelled(seq=6, ts=1, instrument=0, order_id=2, firm=A, client_order_id=2, side=BUY, price=100, qty=3,
                  cum=0, reason=CancelReason.STP),
    ]


def test_partial_fill_of_a_resting_order_publishes_the_remaining_level(ex):
    limit(ex, A, 1, SELL, 100, 5)
    limit(ex, B, 1, SELL, 100, 4)
    events = limit(ex, C, 1, BUY, 100, 2, tif=TimeInForce.IOC)
    assert events[1:] == [
        Fill(seq=6, ts=1, instrument=0, order_id=1, firm=A, client_order_id=1, side=SELL, price=100, qty=2, leaves=3,
             cum=2, trade_id=1, liquidity=Liquidity.MAKER),
        Fill(seq=7, ts=1, instrument=0, order_id=3, firm=C, client_order_id=1, side=BUY, price=100, qty=2, leaves=0,
             cum=2, trade_id=1, liquidity=Liquidity.TAKER),
        Trade(seq=8, ts=1, instrument=0, trade_id=1, side=BUY, price=100, qty=2),
        BookLevel(seq=9, ts=1, instrument=0, side=SELL, price=100, qty=7, count=2),
    ]


# ------------------------------------------------------------------ counters


def test_sequence_numbers_run_over_every_event_of_every_command(ex):
    events = limit(ex, A, 1, BUY, 100, 5)
    events += limit(ex, A, 1, BUY, 100, 5)  # rejected: duplicate
    events += ex.submit(Cancel(1, A, 99))  # rejected: unknown order
    events += limit(ex, B, 1, SELL, 100, 2)
    events += ex.submit(Modify(1, A, 1, 100, 1))
    assert [e.seq for e in events] == list(range(1, 12))


def test_order_ids_count_accepted_orders_and_quote_sides_only(ex):
    assert limit(ex, A, 1, BUY, 100, 5)[0].order_id == 1
    assert limit(ex, A, 2, BUY, 100, 0)[0] == Rejected(seq=3, ts=1, instrument=0, firm=A, client_order_id=2,
                                                       side=BUY, reason=RejectReason.INVALID_QUANTITY)
    quote = ex.submit(MassQuote(1, B, 5, [QuoteEntry(1, 95, 5, 105, 5)]))
    assert [e.order_id for e in quote if isinstance(e, Accepted)] == [2, 3]
    assert limit(ex, A, 3, BUY, 100, 5, tif=TimeInForce.IOC, instrument=2)[0].order_id == 4
    assert limit(ex, A, 4, BUY, 100, 5)[0].order_id == 5


def test_trade_ids_are_global_across_instruments(ex):
    limit(ex, A, 1, SELL, 100, 5)
    limit(ex, A, 2, SELL, 100, 5, instrument=1)
    first = limit(ex, B, 1, BUY, 100, 2)
    second = limit(ex, B, 2, BUY, 100, 5, instrument=1)
    third = limit(ex, B, 3, BUY, 100, 3)
    assert [e.trade_id for e in first + second + third if isinstance(e, Trade)] == [1, 2, 3]


# ------------------------------------------------------------------ submitting


def test_submit_batch_emits_the_records_of_the_same_events_as_submit(make_exchange):
    commands = [
        NewOrder(1, A, 1, 0, SELL, 100, 5),
        NewOrder(2, B, 1, 0, BUY, 101, 3),
        NewOrder(2, B, 2, 0, BUY, 0, 3),
        Modify(3, A, 1, 99, 4),
        MassQuote(4, C, 9, [QuoteEntry(0, 90, 5, 110, 5)]),
        Cancel(5, A, 1),
    ]
    by_struct, by_record = make_exchange(), make_exchange()
    expected = [e for c in commands for e in by_struct.submit(c)]
    records = by_record.submit_batch(commands_to_records(commands))
    assert records.dtype == EVENT_DTYPE
    assert events_from_records(records) == expected


def test_submit_batch_leaves_event_columns_the_event_does_not_have_at_zero(make_exchange):
    ex = make_exchange()
    records = ex.submit_batch(commands_to_records([NewOrder(1, A, 1, 0, SELL, 100, 5),
                                                   NewOrder(1, B, 1, 0, BUY, 100, 5)]))
    clean = events_to_records(events_from_records(records))
    assert [name for name in EVENT_DTYPE.names if (records[name] != clean[name]).any()] == []


def test_submit_batch_of_nothing_returns_no_records(ex):
    assert len(ex.submit_batch(np.zeros(0, dtype=commands_to_records([Cancel(1, A, 1)]).dtype))) == 0


def test_post_only_record_value_other_than_0_or_1_is_an_invalid_field(ex):
    records = commands_to_records([NewOrder(1, A, 1, 0, BUY, 100, 5)])
    records["post_only"] = 2
    assert events_from_records(ex.submit_batch(records)) == [
        Rejected(seq=1, ts=1, instrument=0, firm=A, client_order_id=1, side=BUY, reason=RejectReason.INVALID_FIELD)]


def test_new_order_cancel_and_modify_return_their_event_count_and_leave_their_records(ex):
    assert ex.new_order(1, A, 1, 0, BUY, 100, 5) == 2
    assert events_from_records(ex.last_events) == [
        Accepted(seq=1, ts=1, instrument=0, order_id=1, firm=A, client_order_id=1, side=BUY, price=100, qty=5),
        BookLevel(seq=2, ts=1, instrument=0, side=BUY, price=100, qty=5, count=1),
    ]
    assert ex.modify(2, A, 1, 100, 3) == 2
    assert kinds(events_from_records(ex.last_events)) == ["Replaced", "BookLevel"]
    assert ex.cancel(3, A, 1) == 2
    assert events_from_records(ex.last_events)[0].reason == CancelReason.USER
    assert ex.cancel(4, A, 1) == 1
    assert events_from_records(ex.last_events)[0].reason == RejectReason.UNKNOWN_ORDER


def test_new_order_passes_every_optional_field(ex):
    ex.new_order(1, A, 1, 0, BUY, 100, 5, ord_type=0, tif=TimeInForce.GTD, post_only=1, stp=1, expire_ts=9)
    assert ex.order(1).tif == TimeInForce.GTD
    assert ex.cancel(9, A, 1) == 3  # the order expires at 9, before the cancel is processed
    assert [e.reason for e in events_from_records(ex.last_events) if not isinstance(e, BookLevel)] == [
        CancelReason.EXPIRED, RejectReason.UNKNOWN_ORDER]


# ------------------------------------------------------------------ queries


def test_empty_book_has_no_best_prices_and_no_depth(ex):
    assert ex.best_bid(0) is None and ex.best_ask(0) is None
    assert ex.depth(0, 5) == ([], [])


def test_best_prices_and_depth_list_levels_best_first(ex):
    for coid, (side, price, qty) in enumerate([(BUY, 99, 1), (BUY, 100, 2), (BUY, 98, 3), (BUY, 100, 4),
                                              (SELL, 102, 5), (SELL, 101, 6)], start=1):
        limit(ex, A, coid, side, price, qty)
    assert ex.best_bid(0) == LevelView(100, 6, 2)
    assert ex.best_ask(0) == LevelView(101, 6, 1)
    assert ex.depth(0, 2) == ([LevelView(100, 6, 2), LevelView(99, 1, 1)],
                              [LevelView(101, 6, 1), LevelView(102, 5, 1)])
    assert ex.depth(0, 10)[0][-1] == LevelView(98, 3, 1)


def test_book_orders_lists_a_side_in_priority_order(ex):
    limit(ex, A, 1, SELL, 102, 1)
    limit(ex, B, 1, SELL, 101, 2)
    limit(ex, C, 1, SELL, 102, 3)
    assert ex.book_orders(0, SELL) == [RestingOrder(2, B, 101, 2), RestingOrder(1, A, 102, 1),
                                       RestingOrder(3, C, 102, 3)]
    assert ex.book_orders(0, BUY) == []


def test_order_describes_a_live_order_and_nothing_else(ex):
    limit(ex, A, 1, SELL, 102, 5, instrument=2)
    limit(ex, B, 1, BUY, 102, 2, instrument=2)
    assert ex.order(1) == OrderStatus(order_id=1, firm=A, client_order_id=1, instrument=2, side=SELL, price=102,
                                      leaves=3, cum=2, tif=TimeInForce.GTC)
    assert ex.order(2) is None  # filled
    assert ex.order(3) is None  # never existed
    assert ex.order(0) is None
