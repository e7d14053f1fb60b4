"""Cancel, Modify and MassCancel."""

import pytest

from engine.codes import CancelReason, Liquidity, RejectReason, SelfTradePrevention, TimeInForce
from engine.interface import OrderStatus
from engine.records import (
    AdvanceTime,
    BookLevel,
    Cancel,
    Cancelled,
    CancelRejected,
    Fill,
    Halt,
    MassCancel,
    MassQuote,
    Modify,
    QuoteEntry,
    Rejected,
    Replaced,
    Trade,
)

from .helpers import BUY, SELL, A, B, C, book, kinds, limit, snapshot

# ------------------------------------------------------------------ cancel


def test_cancel_removes_the_order_and_publishes_its_level(ex):
    limit(ex, A, 1, BUY, 100, 5)
    limit(ex, B, 1, BUY, 100, 7)
    assert ex.submit(Cancel(2, A, 1)) == [
        Cancelled(seq=5, ts=2, instrument=0, order_id=1, firm=A, client_order_id=1, side=BUY, price=100, qty=5,
                  cum=0, reason=CancelReason.USER),
        BookLevel(seq=6, ts=2, instrument=0, side=BUY, price=100, qty=7, count=1),
    ]
    assert ex.order(1) is None
    assert book(ex) == ([(2, 100, 7)], [])


def test_cancel_of_a_partially_filled_order_cancels_its_leaves(ex):
    limit(ex, A, 1, BUY, 100, 5)
    limit(ex, B, 1, SELL, 100, 2)
    events = ex.submit(Cancel(1, A, 1))
    assert (events[0].qty, events[0].cum) == (3, 2)
    assert events[1] == BookLevel(seq=events[1].seq, ts=1, instrument=0, side=BUY, price=100, qty=0, count=0)


def test_cancel_of_an_order_that_never_existed_is_rejected_unknown_order(ex):
    assert ex.submit(Cancel(1, A, 42)) == [CancelRejected(seq=1, ts=1, instrument=-1, order_id=42, firm=A,
                                                          reason=RejectReason.UNKNOWN_ORDER)]


def test_cancel_of_a_cancelled_order_is_rejected_unknown_order(ex):
    limit(ex, A, 1, BUY, 100, 5)
    ex.submit(Cancel(1, A, 1))
    assert ex.submit(Cancel(1, A, 1))[0].reason == RejectReason.UNKNOWN_ORDER


def test_cancel_of_a_filled_order_is_rejected_unknown_order(ex):
    limit(ex, A, 1, BUY, 100, 5)
    limit(ex, B, 1, SELL, 100, 5)
    assert ex.submit(Cancel(1, A, 1))[0].reason == RejectReason.UNKNOWN_ORDER


def test_cancel_of_another_firms_order_is_rejected_and_the_order_stays(ex):
    limit(ex, A, 1, BUY, 100, 5, instrument=2)
    assert ex.submit(Cancel(1, B, 1)) == [CancelRejected(seq=3, ts=1, instrument=2, order_id=1, firm=B,
                                                         reason=RejectReason.NOT_YOUR_ORDER)]
    assert ex.order(1).leaves == 5


def test_cancel_works_while_halted(ex):
    limit(ex, A, 1, BUY, 100, 5)
    ex.submit(Halt(1, 0))
    assert kinds(ex.submit(Cancel(1, A, 1))) == ["Cancelled", "BookLevel"]


# ------------------------------------------------------------------ modify


def three_bids(ex):
    """Bids at 100: A 5 (order 1), B 5 (order 2), C 5 (order 3); seq is at 6."""
    limit(ex, A, 1, BUY, 100, 5)
    limit(ex, B, 1, BUY, 100, 5)
    limit(ex, C, 1, BUY, 100, 5)


def test_modify_with_lower_quantity_keeps_queue_position(ex):
    three_bids(ex)
    assert ex.submit(Modify(2, A, 1, 100, 2)) == [
        Replaced(seq=7, ts=2, instrument=0, order_id=1, firm=A, client_order_id=1, side=BUY, price=100, leaves=2,
                 cum=0),
        BookLevel(seq=8, ts=2, instrument=0, side=BUY, price=100, qty=12, count=3),
    ]
    assert book(ex) == ([(1, 100, 2), (2, 100, 5), (3, 100, 5)], [])


def test_modify_with_unchanged_price_and_quantity_keeps_queue_position(ex):
    three_bids(ex)
    assert kinds(ex.submit(Modify(2, A, 1, 100, 5))) == ["Replaced", "BookLevel"]
    assert book(ex)[0][0] == (1, 100, 5)


def test_modify_with_higher_quantity_loses_queue_position(ex):
    three_bids(ex)
    assert ex.submit(Modify(2, A, 1, 100, 8)) == [
        Replaced(seq=7, ts=2, instrument=0, order_id=1, firm=A, client_order_id=1, side=BUY, price=100, leaves=8,
                 cum=0),
        BookLevel(seq=8, ts=2, instrument=0, side=BUY, price=100, qty=10, count=2),
        BookLevel(seq=9, ts=2, instrument=0, side=BUY, price=100, qty=18, count=3),
    ]
    assert book(ex) == ([(2, 100, 5), (3, 100, 5), (1, 100, 8)], [])


def test_modify_with_price_change_loses_queue_position(ex):
    three_bids(ex)
    limit(ex, B, 2, BUY, 99, 5)
    events = ex.submit(Modify(2, A, 1, 99, 3))
    assert events[1:] == [
        BookLevel(seq=10, ts=2, instrument=0, side=BUY, price=100, qty=10, count=2),
        BookLevel(seq=11, ts=2, instrument=0, side=BUY, price=99, qty=8, count=2),
    ]
    assert book(ex) == ([(2, 100, 5), (3, 100, 5), (4, 99, 5), (1, 99, 3)], [])


def test_modify_price_that_crosses_matches_as_taker_then_rests(ex):
    limit(ex, A, 1, BUY, 100, 10)
    limit(ex, B, 1, BUY, 100, 4)
    limit(ex, C, 1, SELL, 105, 5)
    assert ex.submit(Modify(2, A, 1, 105, 8)) == [
        Replaced(seq=7, ts=2, instrument=0, order_id=1, firm=A, client_order_id=1, side=BUY, price=105, leaves=8,
                 cum=0),
        BookLevel(seq=8, ts=2, instrument=0, side=BUY, price=100, qty=4, count=1),
        Fill(seq=9, ts=2, instrument=0, order_id=3, firm=C, client_order_id=1, side=SELL, price=105, qty=5, leaves=0,
             cum=5, trade_id=1, liquidity=Liquidity.MAKER),
        Fill(seq=10, ts=2, instrument=0, order_id=1, firm=A, client_order_id=1, side=BUY, price=105, qty=5, leaves=3,
             cum=5, trade_id=1, liquidity=Liquidity.TAKER),
        Trade(seq=11, ts=2, instrument=0, trade_id=1, side=BUY, price=105, qty=5),
        BookLevel(seq=12, ts=2, instrument=0, side=SELL, price=105, qty=0, count=0),
        BookLevel(seq=13, ts=2, instrument=0, side=BUY, price=105, qty=3, count=1),
    ]
    assert book(ex) == ([(1, 105, 3), (2, 100, 4)], [])


def test_modify_keeps_cum_and_sets_leaves_to_the_new_quantity(ex):
    limit(ex, A, 1, BUY, 100, 10)
    limit(ex, B, 1, SELL, 100, 4)
    events = ex.submit(Modify(1, A, 1, 100, 2))
    assert (events[0].leaves, events[0].cum) == (2, 4)
    assert ex.order(1) == OrderStatus(order_id=1, firm=A, client_order_id=1, instrument=0, side=BUY, price=100,
                                      leaves=2, cum=4, tif=TimeInForce.GTC)


def test_modified_order_that_meets_its_own_firm_is_cancelled_by_its_stp(ex):
    limit(ex, A, 1, BUY, 100, 5)
    limit(ex, A, 2, SELL, 105, 5)
    events = ex.submit(Modify(1, A, 1, 105, 5))
    assert kinds(events) == ["Replaced", "BookLevel", "Cancelled"]
    assert (events[2].order_id, events[2].reason) == (1, CancelReason.STP)
    assert ex.order(1) is None
    assert book(ex) == ([], [(2, 105, 5)])


def test_modified_order_with_cancel_oldest_cancels_the_resting_order_of_its_firm(ex):
    limit(ex, A, 1, BUY, 100, 5, stp=SelfTradePrevention.CANCEL_OLDEST)
    limit(ex, A, 2, SELL, 105, 5)
    events = ex.submit(Modify(1, A, 1, 105, 5))
    assert kinds(events) == ["Replaced", "BookLevel", "Cancelled", "BookLevel", "BookLevel"]
    assert book(ex) == ([(1, 105, 5)], [])


def test_modified_gtd_order_keeps_its_expire_time(ex):
    limit(ex, A, 1, BUY, 100, 5, tif=TimeInForce.GTD, expire_ts=50)
    ex.submit(Modify(2, A, 1, 101, 6))
    events = ex.submit(AdvanceTime(50))
    assert [(e.order_id, e.price, e.qty, e.reason) for e in events if isinstance(e, Cancelled)] == [
        (1, 101, 6, CancelReason.EXPIRED)]


def test_post_only_modify_that_does_not_cross_is_accepted(ex):
    limit(ex, B, 1, SELL, 105, 5)
    limit(ex, A, 1, BUY, 100, 5, post_only=True)
    assert kinds(ex.submit(Modify(1, A, 2, 104, 5))) == ["Replaced", "BookLevel", "BookLevel"]
    assert book(ex) == ([(2, 104, 5)], [(1, 105, 5)])


def test_post_only_modify_crossing_the_opposite_best_is_rejected(ex):
    limit(ex, B, 1, SELL, 105, 5)
    limit(ex, A, 1, BUY, 100, 5, post_only=True)
    before = snapshot(ex)
    assert ex.submit(Modify(1, A, 2, 105, 5)) == [CancelRejected(seq=5, ts=1, instrument=0, order_id=2, firm=A,
                                                                 reason=RejectReason.POST_ONLY_WOULD_TAKE)]
    assert snapshot(ex) == before


MODIFY_REJECTIONS = {
    "unknown_order": ((A, 99, 95, 5), -1, RejectReason.UNKNOWN_ORDER),
    "other_firms_order": ((B, 1, 95, 5), 1, RejectReason.NOT_YOUR_ORDER),
    "zero_qty": ((A, 1, 95, 0), 1, RejectReason.INVALID_QUANTITY),
    "negative_qty": ((A, 1, 95, -3), 1, RejectReason.INVALID_QUANTITY),
    "qty_above_max": ((A, 1, 95, 1001), 1, RejectReason.QUANTITY_ABOVE_MAXIMUM),
    "off_tick": ((A, 1, 97, 5), 1, RejectReason.PRICE_OFF_TICK),
    "out_of_band": ((A, 1, 1_000_005, 5), 1, RejectReason.PRICE_OUT_OF_BAND),
    "not_your_order_before_quantity": ((B, 1, 95, 0), 1, RejectReason.NOT_YOUR_ORDER),
    "quantity_before_price": ((A, 1, 97, 0), 1, RejectReason.INVALID_QUANTITY),
    "off_tick_before_band": ((A, 1, 1_000_003, 5), 1, RejectReason.PRICE_OFF_TICK),
}


@pytest.mark.parametrize(("fields", "instrument", "reason"), MODIFY_REJECTIONS.values(), ids=MODIFY_REJECTIONS.keys())
def test_rejected_modify_reports_its_reason_and_changes_nothing(ex, fields, instrument, reason):
    limit(ex, A, 1, BUY, 95, 5, instrument=1)
    before = snapshot(ex)
    firm, order_id, price, qty = fields
    assert ex.submit(Modify(2, firm, order_id, price, qty)) == [
        CancelRejected(seq=3, ts=2, instrument=instrument, order_id=order_id, firm=firm, reason=reason)]
    assert snapshot(ex)[1:] == before[1:]
    assert limit(ex, A, 2, BUY, 90, 5, ts=2)[0].order_id == 2


def test_modify_while_halted_is_rejected_before_quantity_checks(ex):
    limit(ex, A, 1, BUY, 100, 5)
    ex.submit(Halt(1, 0))
    assert ex.submit(Modify(1, A, 1, 100, 0)) == [CancelRejected(seq=4, ts=1, instrument=0, order_id=1, firm=A,
                                                                 reason=RejectReason.INSTRUMENT_HALTED)]
    assert ex.order(1).leaves == 5


# ------------------------------------------------------------------ mass cancel


def orders_of_two_firms(ex):
    """A: 1 (inst 0 bid), 3 (inst 2 ask), 4 (inst 0 ask), 6 (inst 0 bid, better than 1); B: 2 and 5 on inst 0."""
    limit(ex, A, 1, BUY, 100, 5)
    limit(ex, B, 1, BUY, 100, 5)
    limit(ex, A, 2, SELL, 110, 5, instrument=2)
    limit(ex, A, 3, SELL, 110, 5)
    limit(ex, B, 2, SELL, 110, 5)
    limit(ex, A, 4, BUY, 101, 5)


def test_mass_cancel_cancels_every_order_of_the_firm_in_ascending_order_id(ex):
    orders_of_two_firms(ex)
    events = ex.submit(MassCancel(2, A))
    assert kinds(events) == ["Cancelled", "BookLevel"] * 4
    assert [(e.order_id, e.reason) for e in events if isinstance(e, Cancelled)] == [
        (1, CancelReason.MASS), (3, CancelReason.MASS), (4, CancelReason.MASS), (6, CancelReason.MASS)]
    assert events[1] == BookLevel(seq=14, ts=2, instrument=0, side=BUY, price=100, qty=5, count=1)
    assert book(ex) == ([(2, 100, 5)], [(5, 110, 5)])
    assert book(ex, 2) == ([], [])


def test_mass_cancel_of_one_instrument_leaves_the_others(ex):
    orders_of_two_firms(ex)
    events = ex.submit(MassCancel(2, A, 2))
    assert [e.order_id for e in events if isinstance(e, Cancelled)] == [3]
    assert [o.order_id for o in ex.book_orders(0, BUY)] == [6, 1, 2]


def test_mass_cancel_with_nothing_to_cancel_emits_nothing(ex):
    orders_of_two_firms(ex)
    assert ex.submit(MassCancel(2, C)) == []
    assert ex.submit(MassCancel(2, A, 1)) == []


def test_mass_cancel_of_an_unknown_instrument_is_rejected(ex):
    orders_of_two_firms(ex)
    assert ex.submit(MassCancel(2, A, 3)) == [Rejected(seq=13, ts=2, instrument=3, firm=A, client_order_id=0, side=0,
                                                       reason=RejectReason.UNKNOWN_INSTRUMENT)]
    assert len(ex.book_orders(0, BUY)) == 3


def test_mass_cancel_cancels_quotes_too(ex):
    limit(ex, A, 1, BUY, 90, 5)
    ex.submit(MassQuote(1, A, 77, [QuoteEntry(0, 95, 5, 105, 5)]))
    events = ex.submit(MassCancel(2, A))
    assert [e.order_id for e in events if isinstance(e, Cancelled)] == [1, 2, 3]
    assert book(ex) == ([], [])


def test_mass_cancel_works_while_halted(ex):
    orders_of_two_firms(ex)
    ex.submit(Halt(2, 0))
    assert len(ex.submit(MassCancel(2, A, 0))) == 6
