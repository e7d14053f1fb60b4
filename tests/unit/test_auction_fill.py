"""AuctionFill: the call auction's execution of a resting order (both engines)."""

from engine.codes import Liquidity, RejectReason
from engine.records import AuctionFill, BookLevel, CancelRejected, Fill

from .helpers import BUY, SELL, A, B, book, kinds, limit, snapshot


def test_partial_auction_fill_keeps_priority_and_full_fill_removes_the_order(ex):
    first = limit(ex, A, 1, BUY, 100, 5)[0].order_id
    second = limit(ex, B, 1, BUY, 100, 4)[0].order_id
    ev = ex.submit(AuctionFill(2, first, 98, 3))
    assert kinds(ev) == ["Fill", "BookLevel"]
    fill, level = ev
    assert isinstance(fill, Fill) and fill.liquidity == Liquidity.AUCTION
    assert (fill.firm, fill.order_id, fill.price, fill.qty, fill.leaves, fill.cum) == (A, first, 98, 3, 2, 3)
    assert isinstance(level, BookLevel) and (level.price, level.qty, level.count) == (100, 6, 2)
    assert book(ex)[0] == [(first, 100, 2), (second, 100, 4)]  # still first in the queue
    ev = ex.submit(AuctionFill(3, second, 98, 4))
    assert kinds(ev) == ["Fill", "BookLevel"] and ev[0].leaves == 0 and ev[0].trade_id == fill.trade_id + 1
    assert ev[1].qty == 2 and ev[1].count == 1
    assert book(ex)[0] == [(first, 100, 2)]
    assert ex.order(second) is None


def test_auction_fill_of_an_unknown_order_or_outside_its_leaves_or_band_is_refused_and_changes_nothing(ex):
    oid = limit(ex, A, 1, SELL, 100, 5)[0].order_id
    before = snapshot(ex)
    for cmd, reason in (
        (AuctionFill(2, oid + 100, 100, 1), RejectReason.UNKNOWN_ORDER),
        (AuctionFill(2, oid, 100, 6), RejectReason.INVALID_FIELD),
        (AuctionFill(2, oid, 100, 0), RejectReason.INVALID_FIELD),
        (AuctionFill(2, oid, -1, 1), RejectReason.INVALID_FIELD),
    ):
        ev = ex.submit(cmd)
        assert len(ev) == 1 and isinstance(ev[0], CancelRejected) and ev[0].reason == reason
    assert snapshot(ex)[1:] == before[1:]
