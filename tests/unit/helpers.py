"""Shorthands shared by the unit tests: firms, order submission, book snapshots."""

from engine.codes import OrderType, Side, TimeInForce
from engine.records import Event, NewOrder

BUY, SELL = Side.BUY, Side.SELL
A, B, C = 1, 2, 3  # firms


def limit(ex, firm: int, coid: int, side: int, price: int, qty: int, instrument: int = 0, ts: int = 1,
          **fields) -> list[Event]:
    """Submit a limit NewOrder (GTC unless ``tif`` says otherwise) and return its events."""
    return ex.submit(NewOrder(ts, firm, coid, instrument, side, price, qty, **fields))


def market(ex, firm: int, coid: int, side: int, qty: int, instrument: int = 0, ts: int = 1,
           tif: int = TimeInForce.IOC, **fields) -> list[Event]:
    """Submit a market NewOrder (IOC unless ``tif`` says otherwise) and return its events."""
    return ex.submit(NewOrder(ts, firm, coid, instrument, side, 0, qty, ord_type=OrderType.MARKET, tif=tif,
                              **fields))


def book(ex, instrument: int = 0) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Both sides of a book as (order_id, price, leaves) in priority order: (bids, asks)."""
    return tuple([(o.order_id, o.price, o.leaves) for o in ex.book_orders(instrument, side)] for side in (BUY, SELL))


def snapshot(ex) -> tuple:
    """Everything a rejected command must leave unchanged: clock, statuses, every book."""
    return ex.now, [(ex.status(i), ex.book_orders(i, BUY), ex.book_orders(i, SELL)) for i in range(3)]


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]
