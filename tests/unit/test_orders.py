"""New orders: order types, time in force, self-trade prevention and every validation rule."""

import pytest

from engine.codes import (
    CancelReason,
    Liquidity,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    TimeInForce,
)
from engine.records import Accepted, AdvanceTime, BookLevel, Cancelled, Fill, NewOrder, Rejected, Trade

from .helpers import BUY, SELL, A, B, C, book, kinds, limit, market, snapshot

GTD, IOC, FOK = TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK
OLDEST, NEWEST, BOTH = (SelfTradePrevention.CANCEL_OLDEST, SelfTradePrevention.CANCEL_NEWEST,
                        SelfTradePrevention.CANCEL_BOTH)


def fills(events):
    return [(e.order_id, e.price, e.qty, e.liquidity) for e in events if isinstance(e, Fill)]


def cancels(events):
    return [(e.order_id, e.qty, e.reason) for e in events if isinstance(e, Cancelled)]


# ------------------------------------------------------------------ limit orders


def test_limit_order_that_does_not_cross_rests_and_publishes_its_level(ex):
    events = limit(ex, A, 1, BUY, 100, 5)
    assert events == [
        Accepted(seq=1, ts=1, instrument=0, order_id=1, firm=A, client_order_id=1, side=BUY, price=100, qty=5),
        BookLevel(seq=2, ts=1, instrument=0, side=BUY, price=100, qty=5, count=1),
    ]
    assert book(ex) == ([(1, 100, 5)], [])


def test_fill_price_is_the_resting_orders_price(ex):
    limit(ex, B, 1, SELL, 100, 5)
    events = limit(ex, A, 1, BUY, 120, 5)
    assert fills(events) == [(1, 100, 5, Liquidity.MAKER), (2, 100, 5, Liquidity.TAKER)]
    assert [e.price for e in events if isinstance(e, Trade)] == [100]


def test_sell_fills_the_highest_bid_first_at_its_price(ex):
    limit(ex, B, 1, BUY, 99, 5)
    limit(ex, B, 2, BUY, 101, 5)
    events = limit(ex, A, 1, SELL, 95, 7)
    assert fills(events) == [(2, 101, 5, Liquidity.MAKER), (3, 101, 5, Liquidity.TAKER),
                             (1, 99, 2, Liquidity.MAKER), (3, 99, 2, Liquidity.TAKER)]
    assert book(ex) == ([(1, 99, 3)], [])


def test_orders_at_one_price_fill_in_arrival_order(ex):
    limit(ex, B, 1, SELL, 100, 3)
    limit(ex, C, 1, SELL, 100, 3)
    limit(ex, B, 2, SELL, 100, 3)
    events = limit(ex, A, 1, BUY, 100, 4)
    assert [(e.order_id, e.qty) for e in events if isinstance(e, Fill) and e.liquidity == Liquidity.MAKER] == [
        (1, 3), (2, 1)]
    assert book(ex) == ([], [(2, 100, 2), (3, 100, 3)])


def test_order_sweeps_levels_up_to_its_limit_and_rests_the_remainder(ex):
    limit(ex, B, 1, SELL, 100, 2)
    limit(ex, B, 2, SELL, 101, 2)
    limit(ex, B, 3, SELL, 102, 2)
    events = limit(ex, A, 1, BUY, 101, 10)
    assert [e.price for e in events if isinstance(e, Trade)] == [100, 101]
    assert events[-1] == BookLevel(seq=events[-1].seq, ts=1, instrument=0, side=BUY, price=101, qty=6, count=1)
    assert book(ex) == ([(4, 101, 6)], [(3, 102, 2)])


def test_new_order_joins_the_tail_of_its_level(ex):
    limit(ex, A, 1, BUY, 100, 5)
    limit(ex, B, 1, BUY, 100, 7)
    assert book(ex) == ([(1, 100, 5), (2, 100, 7)], [])
    assert ex.best_bid(0).qty == 12 and ex.best_bid(0).count == 2


# ------------------------------------------------------------------ market orders


def test_market_buy_limit_is_best_ask_plus_protection_ticks(ex):
    limit(ex, B, 1, SELL, 100, 3)
    limit(ex, B, 2, SELL, 150, 4)
    limit(ex, B, 3, SELL, 151, 2)
    events = market(ex, A, 1, BUY, 20)
    assert events[0] == Accepted(seq=7, ts=1, instrument=0, order_id=4, firm=A, client_order_id=1, side=BUY,
                                 price=150, qty=20)
    assert [e.price for e in events if isinstance(e, Trade)] == [100, 150]
    assert book(ex) == ([], [(3, 151, 2)])


def test_market_order_remainder_is_cancelled_with_market_protection(ex):
    limit(ex, B, 1, SELL, 100, 3)
    events = market(ex, A, 1, BUY, 10)
    assert events[-1] == Cancelled(seq=events[-1].seq, ts=1, instrument=0, order_id=2, firm=A, client_order_id=1,
                                   side=BUY, price=150, qty=7, cum=3, reason=CancelReason.MARKET_PROTECTION)
    assert ex.order(2) is None


def test_market_sell_limit_is_best_bid_minus_protection_ticks(ex):
    limit(ex, B, 1, BUY, 200, 3)
    limit(ex, B, 2, BUY, 150, 3)
    limit(ex, B, 3, BUY, 149, 3)
    events = market(ex, A, 1, SELL, 9)
    assert events[0].price == 150
    assert [e.price for e in events if isinstance(e, Trade)] == [200, 150]
    assert cancels(events) == [(4, 3, CancelReason.MARKET_PROTECTION)]


def test_market_limit_is_clipped_into_the_price_band(ex):
    limit(ex, B, 1, SELL, 999_980, 1)
    limit(ex, B, 2, BUY, 20, 1)
    assert market(ex, A, 1, BUY, 1)[0].price == 1_000_000
    assert market(ex, A, 2, SELL, 1)[0].price == 1


def test_market_order_price_field_is_ignored(ex):
    limit(ex, B, 1, SELL, 100, 5, instrument=1)
    events = ex.submit(NewOrder(1, A, 1, 1, BUY, 3, 5, ord_type=OrderType.MARKET, tif=IOC))  # 3 is off tick
    assert kinds(events)[0] == "Accepted"
    assert events[0].price == 150


def test_market_order_with_only_same_side_orders_is_rejected_no_liquidity(ex):
    limit(ex, B, 1, BUY, 100, 5)
    assert market(ex, A, 1, BUY, 5) == [Rejected(seq=3, ts=1, instrument=0, firm=A, client_order_id=1, side=BUY,
                                                 reason=RejectReason.NO_LIQUIDITY)]


def test_market_order_counts_own_orders_as_liquidity_then_stp_applies(ex):
    limit(ex, A, 1, SELL, 100, 5)
    events = market(ex, A, 2, BUY, 5)
    assert kinds(events) == ["Accepted", "Cancelled"]
    assert cancels(events) == [(2, 5, CancelReason.STP)]


def test_market_fok_fills_in_full(ex):
    limit(ex, B, 1, SELL, 100, 3)
    limit(ex, B, 2, SELL, 120, 3)
    events = market(ex, A, 1, BUY, 6, tif=FOK)
    assert fills(events)[-1] == (3, 120, 3, Liquidity.TAKER)
    assert cancels(events) == []
    assert book(ex) == ([], [])


def test_market_fok_beyond_the_protection_limit_is_rejected(ex):
    limit(ex, B, 1, SELL, 100, 3)
    limit(ex, B, 2, SELL, 151, 3)
    assert market(ex, A, 1, BUY, 6, tif=FOK)[0].reason == RejectReason.FOK_CANNOT_FILL
    assert book(ex) == ([], [(1, 100, 3), (2, 151, 3)])


# ------------------------------------------------------------------ post-only


def test_post_only_order_that_does_not_cross_rests(ex):
    limit(ex, B, 1, SELL, 100, 5)
    events = limit(ex, A, 1, BUY, 99, 5, post_only=True)
    assert kinds(events) == ["Accepted", "BookLevel"]
    assert book(ex) == ([(2, 99, 5)], [(1, 100, 5)])


def test_post_only_order_touching_the_opposite_best_is_rejected(ex):
    limit(ex, B, 1, BUY, 100, 5)
    events = limit(ex, A, 1, SELL, 100, 5, post_only=True)
    assert events == [Rejected(seq=3, ts=1, instrument=0, firm=A, client_order_id=1, side=SELL,
                               reason=RejectReason.POST_ONLY_WOULD_TAKE)]


def test_post_only_order_crossing_its_own_firms_order_is_rejected(ex):
    limit(ex, A, 1, SELL, 100, 5)
    assert limit(ex, A, 2, BUY, 101, 5, post_only=True)[0].reason == RejectReason.POST_ONLY_WOULD_TAKE


# ------------------------------------------------------------------ time in force


def test_ioc_remainder_is_cancelled_with_reason_ioc(ex):
    limit(ex, B, 1, SELL, 100, 3)
    events = limit(ex, A, 1, BUY, 100, 5, tif=IOC)
    assert kinds(events) == ["Accepted", "Fill", "Fill", "Trade", "BookLevel", "Cancelled"]
    assert events[-1] == Cancelled(seq=events[-1].seq, ts=1, instrument=0, order_id=2, firm=A, client_order_id=1,
                                   side=BUY, price=100, qty=2, cum=3, reason=CancelReason.IOC)
    assert book(ex) == ([], [])


def test_ioc_with_nothing_to_match_is_accepted_then_cancelled(ex):
    events = limit(ex, A, 1, BUY, 100, 5, tif=IOC)
    assert kinds(events) == ["Accepted", "Cancelled"]
    assert cancels(events) == [(1, 5, CancelReason.IOC)]


def test_fok_that_can_fill_fills_in_full_across_levels(ex):
    limit(ex, B, 1, SELL, 100, 3)
    limit(ex, C, 1, SELL, 101, 3)
    events = limit(ex, A, 1, BUY, 101, 5, tif=FOK)
    assert fills(events)[1::2] == [(3, 100, 3, Liquidity.TAKER), (3, 101, 2, Liquidity.TAKER)]
    assert book(ex) == ([], [(2, 101, 1)])


def test_fok_that_cannot_fill_is_rejected_and_leaves_the_book_alone(ex):
    limit(ex, B, 1, SELL, 100, 3)
    limit(ex, B, 2, SELL, 102, 3)
    events = limit(ex, A, 1, BUY, 101, 4, tif=FOK)  # 102 is beyond the limit
    assert events == [Rejected(seq=5, ts=1, instrument=0, firm=A, client_order_id=1, side=BUY,
                               reason=RejectReason.FOK_CANNOT_FILL)]
    assert book(ex) == ([], [(1, 100, 3), (2, 102, 3)])


def test_fok_check_skips_own_orders_under_cancel_oldest(ex):
    limit(ex, A, 1, SELL, 100, 5)
    limit(ex, B, 1, SELL, 100, 5)
    assert limit(ex, A, 2, BUY, 100, 6, tif=FOK, stp=OLDEST)[0].reason == RejectReason.FOK_CANNOT_FILL
    events = limit(ex, A, 3, BUY, 100, 5, tif=FOK, stp=OLDEST)
    assert cancels(events) == [(1, 5, CancelReason.STP)]
    assert fills(events) == [(2, 100, 5, Liquidity.MAKER), (3, 100, 5, Liquidity.TAKER)]


@pytest.mark.parametrize("stp", [NEWEST, BOTH], ids=["cancel_newest", "cancel_both"])
def test_fok_check_stops_at_own_order_under_cancel_newest_and_cancel_both(ex, stp):
    limit(ex, B, 1, SELL, 100, 3)
    limit(ex, A, 1, SELL, 100, 5)
    limit(ex, B, 2, SELL, 101, 5)
    assert limit(ex, A, 2, BUY, 101, 4, tif=FOK, stp=stp)[0].reason == RejectReason.FOK_CANNOT_FILL
    events = limit(ex, A, 3, BUY, 101, 3, tif=FOK, stp=stp)  # fills before reaching its own order
    assert fills(events) == [(1, 100, 3, Liquidity.MAKER), (4, 100, 3, Liquidity.TAKER)]
    assert book(ex) == ([], [(2, 100, 5), (3, 101, 5)])


def test_gtd_order_rests_until_its_expire_time(ex):
    limit(ex, A, 1, BUY, 100, 5, tif=GTD, expire_ts=50)
    assert ex.submit(AdvanceTime(49)) == []
    assert ex.order(1).leaves == 5


def test_gtd_order_expires_when_time_advances_to_its_expire_time(ex):
    limit(ex, A, 1, BUY, 100, 5, tif=GTD, expire_ts=50)
    assert ex.submit(AdvanceTime(50)) == [
        Cancelled(seq=3, ts=50, instrument=0, order_id=1, firm=A, client_order_id=1, side=BUY, price=100, qty=5,
                  cum=0, reason=CancelReason.EXPIRED),
        BookLevel(seq=4, ts=50, instrument=0, side=BUY, price=100, qty=0, count=0),
    ]
    assert ex.order(1) is None


def test_gtd_order_expires_before_a_later_command_is_processed(ex):
    limit(ex, A, 1, BUY, 100, 5, tif=GTD, expire_ts=50)
    events = limit(ex, B, 1, SELL, 100, 5, ts=60)
    assert kinds(events) == ["Cancelled", "BookLevel", "Accepted", "BookLevel"]
    assert events[0].reason == CancelReason.EXPIRED and events[0].ts == 60
    assert book(ex) == ([], [(2, 100, 5)])


def test_expiries_happen_in_expire_time_then_order_id_order(ex):
    limit(ex, A, 1, BUY, 100, 1, tif=GTD, expire_ts=30)
    limit(ex, A, 2, BUY, 101, 1, tif=GTD, expire_ts=20)
    limit(ex, A, 3, BUY, 102, 1, tif=GTD, expire_ts=30)
    limit(ex, A, 4, SELL, 200, 1, tif=GTD, expire_ts=20, instrument=2)
    events = ex.submit(AdvanceTime(40))
    assert [e.order_id for e in events if isinstance(e, Cancelled)] == [2, 4, 1, 3]


def test_partially_filled_gtd_order_expires_with_its_leaves(ex):
    limit(ex, A, 1, BUY, 100, 5, tif=GTD, expire_ts=50)
    limit(ex, B, 1, SELL, 100, 2)
    events = ex.submit(AdvanceTime(50))
    assert (events[0].qty, events[0].cum) == (3, 2)


def test_gtd_order_filled_before_its_expire_time_emits_nothing_at_expiry(ex):
    limit(ex, A, 1, BUY, 100, 5, tif=GTD, expire_ts=50)
    limit(ex, B, 1, SELL, 100, 5)
    assert ex.submit(AdvanceTime(100)) == []


# ------------------------------------------------------------ self-trade prevention


def test_stp_cancel_newest_cancels_the_incoming_order_only(ex):
    limit(ex, A, 1, SELL, 100, 5)
    events = limit(ex, A, 2, BUY, 100, 3, stp=NEWEST)
    assert events == [
        Accepted(seq=3, ts=1, instrument=0, order_id=2, firm=A, client_order_id=2, side=BUY, price=100, qty=3),
        Cancelled(seq=4, ts=1, instrument=0, order_id=2, firm=A, client_order_id=2, side=BUY, price=100, qty=3,
                  cum=0, reason=CancelReason.STP),
    ]
    assert book(ex) == ([], [(1, 100, 5)])


def test_stp_cancel_newest_after_partial_fills_cancels_the_open_remainder(ex):
    limit(ex, B, 1, SELL, 100, 2)
    limit(ex, A, 1, SELL, 100, 5)
    limit(ex, B, 2, SELL, 100, 5)
    events = limit(ex, A, 2, BUY, 100, 6)
    assert cancels(events) == [(4, 4, CancelReason.STP)]
    assert events[-1].cum == 2
    assert book(ex) == ([], [(2, 100, 5), (3, 100, 5)])


def test_stp_cancel_oldest_cancels_the_resting_order_and_keeps_matching(ex):
    limit(ex, A, 1, SELL, 100, 5)
    limit(ex, B, 1, SELL, 100, 2)
    events = limit(ex, A, 2, BUY, 100, 6, stp=OLDEST)
    assert kinds(events) == ["Accepted", "Cancelled", "BookLevel", "Fill", "Fill", "Trade", "BookLevel",
                             "BookLevel"]
    assert cancels(events) == [(1, 5, CancelReason.STP)]
    assert events[2] == BookLevel(seq=events[2].seq, ts=1, instrument=0, side=SELL, price=100, qty=2, count=1)
    assert book(ex) == ([(3, 100, 4)], [])


def test_stp_cancel_both_cancels_resting_then_incoming(ex):
    limit(ex, A, 1, SELL, 100, 5)
    limit(ex, B, 1, SELL, 100, 2)
    events = limit(ex, A, 2, BUY, 100, 6, stp=BOTH)
    assert kinds(events) == ["Accepted", "Cancelled", "BookLevel", "Cancelled"]
    assert cancels(events) == [(1, 5, CancelReason.STP), (3, 6, CancelReason.STP)]
    assert book(ex) == ([], [(2, 100, 2)])


def test_stp_uses_the_incoming_orders_mode_not_the_resting_ones(ex):
    limit(ex, A, 1, SELL, 100, 5, stp=BOTH)
    events = limit(ex, A, 2, BUY, 100, 5, stp=OLDEST)
    assert cancels(events) == [(1, 5, CancelReason.STP)]
    assert book(ex) == ([(2, 100, 5)], [])


def test_orders_of_different_firms_trade_whatever_their_stp(ex):
    limit(ex, B, 1, SELL, 100, 5, stp=BOTH)
    events = limit(ex, A, 1, BUY, 100, 5, stp=BOTH)
    assert cancels(events) == []
    assert len(fills(events)) == 2


# ------------------------------------------------------------------ validation


def setup_book(ex):
    """Firm B: ask 100x5 (order 1), bid 90x5 (order 2); seq is at 4."""
    limit(ex, B, 1, SELL, 100, 5)
    limit(ex, B, 2, BUY, 90, 5)


BASE = dict(ts=1, firm=A, client_order_id=9, instrument=0, side=BUY, price=95, qty=5)

REJECTIONS = {
    "unknown_instrument": ({"instrument": 3}, RejectReason.UNKNOWN_INSTRUMENT),
    "negative_instrument": ({"instrument": -1}, RejectReason.UNKNOWN_INSTRUMENT),
    "negative_firm": ({"firm": -1}, RejectReason.INVALID_FIELD),
    "firm_at_max_firms": ({"firm": 256}, RejectReason.INVALID_FIELD),
    "unknown_side": ({"side": 2}, RejectReason.INVALID_FIELD),
    "unknown_ord_type": ({"ord_type": 2}, RejectReason.INVALID_FIELD),
    "unknown_tif": ({"tif": 4}, RejectReason.INVALID_FIELD),
    "unknown_stp": ({"stp": 3}, RejectReason.INVALID_FIELD),
    "post_only_2": ({"post_only": 2}, RejectReason.INVALID_FIELD),
    "market_gtc": ({"ord_type": OrderType.MARKET, "tif": TimeInForce.GTC}, RejectReason.INVALID_FIELD),
    "market_gtd": ({"ord_type": OrderType.MARKET, "tif": GTD, "expire_ts": 99}, RejectReason.INVALID_FIELD),
    "post_only_market": ({"ord_type": OrderType.MARKET, "tif": IOC, "post_only": True}, RejectReason.INVALID_FIELD),
    "post_only_ioc": ({"tif": IOC, "post_only": True}, RejectReason.INVALID_FIELD),
    "post_only_fok": ({"tif": FOK, "post_only": True}, RejectReason.INVALID_FIELD),
    "zero_qty": ({"qty": 0}, RejectReason.INVALID_QUANTITY),
    "negative_qty": ({"qty": -1}, RejectReason.INVALID_QUANTITY),
    "qty_above_max": ({"qty": 1001}, RejectReason.QUANTITY_ABOVE_MAXIMUM),
    "off_tick": ({"instrument": 1, "price": 97}, RejectReason.PRICE_OFF_TICK),
    "price_zero": ({"price": 0}, RejectReason.PRICE_OUT_OF_BAND),
    "price_negative": ({"instrument": 1, "price": -5}, RejectReason.PRICE_OUT_OF_BAND),
    "price_above_band": ({"price": 1_000_001}, RejectReason.PRICE_OUT_OF_BAND),
    "expire_ts_equal_to_now": ({"tif": GTD, "expire_ts": 1}, RejectReason.EXPIRE_TIME_IN_PAST),
    "expire_ts_before_now": ({"tif": GTD, "expire_ts": 0}, RejectReason.EXPIRE_TIME_IN_PAST),
    "market_without_liquidity": ({"instrument": 2, "ord_type": OrderType.MARKET, "tif": IOC},
                                 RejectReason.NO_LIQUIDITY),
    "post_only_buy_at_best_ask": ({"price": 100, "post_only": True}, RejectReason.POST_ONLY_WOULD_TAKE),
    "post_only_sell_at_best_bid": ({"side": SELL, "price": 90, "post_only": True},
                                   RejectReason.POST_ONLY_WOULD_TAKE),
    "fok_too_large": ({"price": 100, "qty": 6, "tif": FOK}, RejectReason.FOK_CANNOT_FILL),
    # first failing check wins
    "unknown_instrument_before_invalid_field": ({"instrument": 7, "side": 5}, RejectReason.UNKNOWN_INSTRUMENT),
    "invalid_field_before_quantity": ({"tif": 9, "qty": 0}, RejectReason.INVALID_FIELD),
    "quantity_before_price": ({"qty": 0, "price": 0}, RejectReason.INVALID_QUANTITY),
    "maximum_before_price": ({"qty": 1001, "instrument": 1, "price": 3}, RejectReason.QUANTITY_ABOVE_MAXIMUM),
    "off_tick_before_band": ({"instrument": 1, "price": 1_000_003}, RejectReason.PRICE_OFF_TICK),
    "band_before_expire_time": ({"price": 0, "tif": GTD, "expire_ts": 1}, RejectReason.PRICE_OUT_OF_BAND),
    "expire_time_before_post_only": ({"price": 100, "post_only": True, "tif": GTD, "expire_ts": 1},
                                     RejectReason.EXPIRE_TIME_IN_PAST),
}


@pytest.mark.parametrize(("fields", "reason"), REJECTIONS.values(), ids=REJECTIONS.keys())
def test_rejected_new_order_reports_its_reason_and_changes_nothing(ex, fields, reason):
    setup_book(ex)
    before = snapshot(ex)
    cmd = NewOrder(**{**BASE, **fields})
    assert ex.submit(cmd) == [Rejected(seq=5, ts=1, instrument=cmd.instrument, firm=cmd.firm, client_order_id=9,
                                       side=cmd.side, reason=reason)]
    assert snapshot(ex) == before
    assert limit(ex, A, 9, BUY, 95, 5)[0] == Accepted(seq=6, ts=1, instrument=0, order_id=3, firm=A,
                                                      client_order_id=9, side=BUY, price=95, qty=5)


def test_client_order_id_cannot_be_reused_even_after_the_order_is_gone(ex):
    limit(ex, A, 9, BUY, 95, 5)
    ex.cancel(1, A, 1)
    assert limit(ex, A, 9, BUY, 95, 5) == [Rejected(seq=5, ts=1, instrument=0, firm=A, client_order_id=9, side=BUY,
                                                    reason=RejectReason.DUPLICATE_CLIENT_ORDER_ID)]
    assert limit(ex, A, 10, BUY, 95, 5)[0].order_id == 2


def test_duplicate_client_order_id_is_checked_before_liquidity(ex):
    limit(ex, A, 9, SELL, 100, 5, instrument=1, tif=IOC)
    assert market(ex, A, 9, BUY, 5, instrument=2)[0].reason == RejectReason.DUPLICATE_CLIENT_ORDER_ID


def test_client_order_ids_are_per_firm(ex):
    limit(ex, A, 9, BUY, 95, 5)
    assert limit(ex, B, 9, BUY, 95, 5)[0].order_id == 2


def test_rejected_order_does_not_use_up_its_client_order_id(ex):
    assert limit(ex, A, 9, BUY, 95, 0)[0].reason == RejectReason.INVALID_QUANTITY
    assert limit(ex, A, 9, BUY, 95, 5)[0].order_id == 1
