"""MassQuote: one live quote order per (firm, instrument, side), entries as independent units."""

import pytest

from engine.codes import CancelReason, Liquidity, RejectReason
from engine.records import (
    Accepted,
    BookLevel,
    Cancel,
    Cancelled,
    Fill,
    MassQuote,
    QuoteEntry,
    Rejected,
    Replaced,
    Trade,
    commands_to_records,
    events_from_records,
)

from .helpers import BUY, SELL, A, B, book, kinds, limit, snapshot


def quote(ex, *entries, firm=A, quote_id=77, ts=1):
    """Submit a MassQuote of (instrument, bid_price, bid_qty, ask_price, ask_qty) tuples; return its events."""
    return ex.submit(MassQuote(ts, firm, quote_id, [QuoteEntry(*e) for e in entries]))


def test_new_quote_enters_a_bid_then_an_ask_order(ex):
    assert quote(ex, (0, 95, 5, 105, 6)) == [
        Accepted(seq=1, ts=1, instrument=0, order_id=1, firm=A, client_order_id=77, side=BUY, price=95, qty=5),
        BookLevel(seq=2, ts=1, instrument=0, side=BUY, price=95, qty=5, count=1),
        Accepted(seq=3, ts=1, instrument=0, order_id=2, firm=A, client_order_id=77, side=SELL, price=105, qty=6),
        BookLevel(seq=4, ts=1, instrument=0, side=SELL, price=105, qty=6, count=1),
    ]
    assert ex.order(1).tif == 0  # GTC


def test_quote_replace_with_lower_quantity_keeps_queue_position_and_first_client_order_id(ex):
    quote(ex, (0, 95, 5, 105, 6))
    limit(ex, B, 1, BUY, 95, 5)
    assert quote(ex, (0, 95, 3, 105, 6), quote_id=78) == [
        Replaced(seq=7, ts=1, instrument=0, order_id=1, firm=A, client_order_id=77, side=BUY, price=95, leaves=3,
                 cum=0),
        BookLevel(seq=8, ts=1, instrument=0, side=BUY, price=95, qty=8, count=2),
        Replaced(seq=9, ts=1, instrument=0, order_id=2, firm=A, client_order_id=77, side=SELL, price=105, leaves=6,
                 cum=0),
        BookLevel(seq=10, ts=1, instrument=0, side=SELL, price=105, qty=6, count=1),
    ]
    assert book(ex) == ([(1, 95, 3), (3, 95, 5)], [(2, 105, 6)])


def test_quote_replace_with_higher_quantity_loses_queue_position(ex):
    quote(ex, (0, 95, 5, 105, 6))
    limit(ex, B, 1, BUY, 95, 5)
    quote(ex, (0, 95, 9, 105, 6))
    assert book(ex)[0] == [(3, 95, 5), (1, 95, 9)]


def test_quote_replace_with_price_change_moves_the_same_order(ex):
    quote(ex, (0, 95, 5, 105, 6))
    events = quote(ex, (0, 96, 5, 105, 6), quote_id=78)
    assert events[:3] == [
        Replaced(seq=5, ts=1, instrument=0, order_id=1, firm=A, client_order_id=77, side=BUY, price=96, leaves=5,
                 cum=0),
        BookLevel(seq=6, ts=1, instrument=0, side=BUY, price=95, qty=0, count=0),
        BookLevel(seq=7, ts=1, instrument=0, side=BUY, price=96, qty=5, count=1),
    ]
    assert book(ex) == ([(1, 96, 5)], [(2, 105, 6)])


def test_quote_price_change_that_crosses_trades_as_taker(ex):
    quote(ex, (0, 95, 5, 105, 6))
    limit(ex, B, 1, SELL, 99, 2)
    events = quote(ex, (0, 99, 5, 105, 6))
    assert kinds(events)[:7] == ["Replaced", "BookLevel", "Fill", "Fill", "Trade", "BookLevel", "BookLevel"]
    assert (events[3].order_id, events[3].liquidity, events[3].leaves) == (1, Liquidity.TAKER, 3)
    assert book(ex) == ([(1, 99, 3)], [(2, 105, 6)])


def test_quote_side_with_zero_quantity_cancels_the_live_quote_order(ex):
    quote(ex, (0, 95, 5, 105, 6))
    events = quote(ex, (0, 0, 0, 105, 6))
    assert events[:2] == [
        Cancelled(seq=5, ts=1, instrument=0, order_id=1, firm=A, client_order_id=77, side=BUY, price=95, qty=5,
                  cum=0, reason=CancelReason.USER),
        BookLevel(seq=6, ts=1, instrument=0, side=BUY, price=95, qty=0, count=0),
    ]
    assert kinds(events[2:]) == ["Replaced", "BookLevel"]


def test_quote_side_with_zero_quantity_and_no_live_quote_does_nothing(ex):
    assert kinds(quote(ex, (0, 0, 0, 105, 6))) == ["Accepted", "BookLevel"]
    assert quote(ex, (0, 0, 0, 0, 0)) == [Cancelled(seq=3, ts=1, instrument=0, order_id=1, firm=A,
                                                     client_order_id=77, side=SELL, price=105, qty=6, cum=0,
                                                     reason=CancelReason.USER),
                                           BookLevel(seq=4, ts=1, instrument=0, side=SELL, price=105, qty=0, count=0)]
    assert quote(ex, (0, 0, 0, 0, 0)) == []


def test_one_sided_quote_is_not_checked_for_crossing(ex):
    assert kinds(quote(ex, (0, 105, 5, 100, 0))) == ["Accepted", "BookLevel"]


def test_new_quote_order_that_crosses_another_firm_trades(ex):
    limit(ex, B, 1, SELL, 100, 3)
    events = quote(ex, (0, 101, 5, 110, 5))
    assert events[:7] == [
        Accepted(seq=3, ts=1, instrument=0, order_id=2, firm=A, client_order_id=77, side=BUY, price=101, qty=5),
        Fill(seq=4, ts=1, instrument=0, order_id=1, firm=B, client_order_id=1, side=SELL, price=100, qty=3, leaves=0,
             cum=3, trade_id=1, liquidity=Liquidity.MAKER),
        Fill(seq=5, ts=1, instrument=0, order_id=2, firm=A, client_order_id=77, side=BUY, price=100, qty=3, leaves=2,
             cum=3, trade_id=1, liquidity=Liquidity.TAKER),
        Trade(seq=6, ts=1, instrument=0, trade_id=1, side=BUY, price=100, qty=3),
        BookLevel(seq=7, ts=1, instrument=0, side=SELL, price=100, qty=0, count=0),
        BookLevel(seq=8, ts=1, instrument=0, side=BUY, price=101, qty=2, count=1),
        Accepted(seq=9, ts=1, instrument=0, order_id=3, firm=A, client_order_id=77, side=SELL, price=110, qty=5),
    ]


def test_new_quote_order_meeting_its_own_firm_is_cancelled_by_stp_cancel_newest(ex):
    limit(ex, A, 1, SELL, 100, 5)
    events = quote(ex, (0, 100, 5, 110, 5))
    assert kinds(events) == ["Accepted", "Cancelled", "Accepted", "BookLevel"]
    assert (events[1].order_id, events[1].reason) == (2, CancelReason.STP)
    assert kinds(quote(ex, (0, 99, 5, 110, 5))) == ["Accepted", "BookLevel", "Replaced", "BookLevel"]


def test_quote_bid_update_meets_the_firms_old_ask_before_the_ask_is_updated(ex):
    quote(ex, (0, 95, 5, 105, 5))
    events = quote(ex, (0, 106, 5, 110, 5))
    assert kinds(events) == ["Replaced", "BookLevel", "Cancelled", "Replaced", "BookLevel", "BookLevel"]
    assert (events[2].order_id, events[2].reason) == (1, CancelReason.STP)
    assert book(ex) == ([], [(2, 110, 5)])


def test_quote_order_that_is_gone_is_replaced_by_a_new_order(ex):
    quote(ex, (0, 95, 5, 105, 6))
    limit(ex, B, 1, BUY, 105, 6)  # fills the ask quote
    ex.submit(Cancel(1, A, 1))  # the bid quote
    events = quote(ex, (0, 95, 5, 105, 6), quote_id=78)
    assert [(e.order_id, e.client_order_id) for e in events if isinstance(e, Accepted)] == [(4, 78), (5, 78)]


def test_quote_ids_are_not_registered_as_client_order_ids(ex):
    quote(ex, (0, 95, 5, 105, 6))
    assert limit(ex, A, 77, BUY, 90, 5)[0].order_id == 3
    assert quote(ex, (1, 95, 5, 105, 6))[0].order_id == 4


def test_quote_entries_are_independent_units(ex):
    events = quote(ex, (0, 95, 5, 105, 6), (1, 96, 5, 105, 6), (2, 95, 5, 105, 6))
    assert kinds(events) == ["Accepted", "BookLevel"] * 2 + ["Rejected"] + ["Accepted", "BookLevel"] * 2
    assert events[4] == Rejected(seq=5, ts=1, instrument=1, firm=A, client_order_id=77, side=0,
                                 reason=RejectReason.PRICE_OFF_TICK)
    assert [e.order_id for e in events if isinstance(e, Accepted)] == [1, 2, 3, 4]


def test_quote_entries_of_one_command_see_each_others_effects(ex):
    events = quote(ex, (0, 95, 5, 105, 6), (0, 95, 2, 105, 6))
    assert kinds(events) == ["Accepted", "BookLevel"] * 2 + ["Replaced", "BookLevel"] * 2
    assert book(ex) == ([(1, 95, 2)], [(2, 105, 6)])


def test_quote_records_in_a_batch_act_as_one_entry_mass_quotes(make_exchange):
    cmd = MassQuote(1, A, 77, [QuoteEntry(0, 95, 5, 105, 6), QuoteEntry(1, 96, 5, 105, 6)])
    by_struct, by_record = make_exchange(), make_exchange()
    assert events_from_records(by_record.submit_batch(commands_to_records([cmd]))) == by_struct.submit(cmd)


QUOTE_REJECTIONS = {
    "unknown_instrument": ((3, 95, 5, 105, 5), A, RejectReason.UNKNOWN_INSTRUMENT),
    "negative_firm": ((0, 95, 5, 105, 5), -1, RejectReason.INVALID_FIELD),
    "firm_at_max_firms": ((0, 95, 5, 105, 5), 256, RejectReason.INVALID_FIELD),
    "negative_bid_qty": ((0, 95, -1, 105, 5), A, RejectReason.INVALID_QUANTITY),
    "negative_ask_qty": ((0, 95, 5, 105, -1), A, RejectReason.INVALID_QUANTITY),
    "bid_qty_above_max": ((0, 95, 1001, 105, 5), A, RejectReason.QUANTITY_ABOVE_MAXIMUM),
    "ask_qty_above_max": ((0, 95, 5, 105, 1001), A, RejectReason.QUANTITY_ABOVE_MAXIMUM),
    "bid_off_tick": ((1, 96, 5, 105, 5), A, RejectReason.PRICE_OFF_TICK),
    "ask_off_tick": ((1, 95, 5, 106, 5), A, RejectReason.PRICE_OFF_TICK),
    "bid_out_of_band": ((0, 0, 5, 105, 5), A, RejectReason.PRICE_OUT_OF_BAND),
    "ask_out_of_band": ((0, 95, 5, 1_000_001, 5), A, RejectReason.PRICE_OUT_OF_BAND),
    "crossed": ((0, 106, 5, 105, 5), A, RejectReason.QUOTE_CROSSED),
    "locked": ((0, 105, 5, 105, 5), A, RejectReason.QUOTE_CROSSED),
    # first failing check wins
    "unknown_instrument_before_firm": ((3, 95, 5, 105, 5), -1, RejectReason.UNKNOWN_INSTRUMENT),
    "negative_qty_before_maximum": ((0, 95, 1001, 105, -1), A, RejectReason.INVALID_QUANTITY),
    "bid_side_before_ask_side": ((0, 0, 5, 105, 1001), A, RejectReason.PRICE_OUT_OF_BAND),
    "off_tick_before_band": ((1, 1_000_003, 5, 1_000_010, 5), A, RejectReason.PRICE_OFF_TICK),
    "band_before_crossed": ((0, 2_000_000, 5, 105, 5), A, RejectReason.PRICE_OUT_OF_BAND),
}


@pytest.mark.parametrize(("entry", "firm", "reason"), QUOTE_REJECTIONS.values(), ids=QUOTE_REJECTIONS.keys())
def test_rejected_quote_entry_reports_its_reason_and_changes_nothing(ex, entry, firm, reason):
    quote(ex, (0, 90, 5, 110, 5), (1, 90, 5, 110, 5))
    before = snapshot(ex)
    assert quote(ex, entry, firm=firm) == [Rejected(seq=9, ts=1, instrument=entry[0], firm=firm, client_order_id=77,
                                                    side=0, reason=reason)]
    assert snapshot(ex) == before
    assert limit(ex, B, 1, BUY, 80, 5)[0].order_id == 5


def test_quote_side_with_zero_quantity_is_not_price_checked(ex):
    assert kinds(quote(ex, (1, 3, 0, 105, 5))) == ["Accepted", "BookLevel"]
