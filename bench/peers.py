"""Adapters that replay a benchmark flow through other matching engines.

The peers are PyPI packages of the ``bench`` extra (pyproject.toml, pinned in
requirements.lock), used for benchmarking only, never by the venue. Each adapter
takes the peer-neutral tuples of ``bench.flow.flow_ops`` ``(op, side, price,
qty, oid)`` and drives the peer through its own public API, counting the
matches it makes so a benchmark can check it really matched (a peer that
silently did nothing would look fast).

What the peers lack, and how the adapters make up for it:

* ``lightmatchingengine`` (2019.1.4, pure Python, dict of price -> list):
  ``add_order(instmt, price, qty, side)`` and ``cancel_order(order_id, instmt)``
  only. No modify: cancel + add (a quantity reduction therefore loses queue
  priority, unlike ours). No IOC: add, then cancel the rest. No self-trade
  prevention. Its best price is ``min``/``max`` over all level keys on every
  add, and a cancel scans its level's list.
* ``pyorderbook`` (0.4.9, pure Python, heap of levels, dict per level, Decimal
  prices, uuid4 ids): ``Book.match(Order)`` and ``Book.cancel(Order)`` only.
  No modify: cancel + add. No IOC: match, then cancel the rest. No self-trade
  prevention.

Because a peer's modify loses priority and it has no STP, its fills can
differ a little from ours, and a flow cancel can target an order the peer
already filled: such cancels/modifies are skipped and counted (``skipped``).
Every replay is O(messages) calls into the peer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from bench.flow import OP_ADD, OP_IOC, OP_MODIFY

NEW_ORDER_OPS = frozenset((OP_ADD, OP_IOC))


@dataclass
class PeerCounts:
    """What a peer did with a flow."""

    trades: int = 0  # maker fills (one per resting order touched by a match)
    traded_qty: int = 0
    skipped: int = 0  # cancels/modifies of orders the peer had already filled


class Peer:
    """A matching engine from PyPI, driven through its own API."""

    name = ""
    distribution = ""  # the pip name
    module = ""  # what to import to check it is there
    limitations = ""

    def import_error(self) -> str | None:
        """None if the peer can be imported, else why not."""
        try:
            importlib.import_module(self.module)
        except Exception as exc:  # noqa: BLE001 - any failure means: skip this peer
            return f"{type(exc).__name__}: {exc}"
        return None

    def replay(self, ops: list[tuple[int, int, int, int, int]]) -> PeerCounts:
        raise NotImplementedError


class LightMatchingEnginePeer(Peer):
    name = "lightmatchingengine"
    distribution = "lightmatchingengine"
    module = "lightmatchingengine.lightmatchingengine"
    limitations = "no modify (cancel+add, loses priority), no IOC (add then cancel rest), no STP"

    def replay(self, ops):
        from lightmatchingengine.lightmatchingengine import LightMatchingEngine, Side

        lme = LightMatchingEngine()
        add, cancel = lme.add_order, lme.cancel_order
        sides = (Side.BUY, Side.SELL)
        live = {}  # flow oid -> the peer's Order object (its leaves_qty tells whether it still rests)
        c = PeerCounts()
        for op, side, price, qty, oid in ops:
            if op in NEW_ORDER_OPS:
                order, trades = add("X", price, qty, sides[side])
                if trades:
                    me = order.order_id
                    for t in trades:
                        if t.order_id != me:  # the passive side of each match
                            c.trades += 1
                            c.traded_qty += t.trade_qty
                if order.leaves_qty:
                    if op == OP_IOC:
                        cancel(order.order_id, "X")
                    else:
                        live[oid] = order
            else:
                order = live.pop(oid, None)
                if order is None or not order.leaves_qty:
                    c.skipped += 1
                    continue
                cancel(order.order_id, "X")
                if op == OP_MODIFY:
                    new, trades = add("X", price, qty, order.side)
                    if trades:
                        me = new.order_id
                        for t in trades:
                            if t.order_id != me:
                                c.trades += 1
                                c.traded_qty += t.trade_qty
                    if new.leaves_qty:
                        live[oid] = new
        return c


class PyOrderBookPeer(Peer):
    name = "pyorderbook"
    distribution = "pyorderbook"
    module = "pyorderbook"
    limitations = "no modify (cancel+add, loses priority), no IOC (match then cancel rest), no STP"

    def replay(self, ops):
        import logging

        from pyorderbook import Book, Order, Side

        logging.getLogger("pyorderbook").setLevel(logging.WARNING)  # it configures INFO logging on import
        book = Book()
        match, cancel, order_map = book.match, book.cancel, book.order_map
        sides = (Side.BID, Side.ASK)
        live = {}
        c = PeerCounts()
        for op, side, price, qty, oid in ops:
            if op in NEW_ORDER_OPS:
                order = Order(sides[side], "X", price, qty)
                trades = match(order).trades
                for t in trades:
                    c.trades += 1
                    c.traded_qty += t.fill_quantity
                if order.quantity:
                    if op == OP_IOC:
                        cancel(order)
                    else:
                        live[oid] = order
            else:
                order = live.pop(oid, None)
                if order is None or order.id not in order_map:
                    c.skipped += 1
                    continue
                cancel(order)
                if op == OP_MODIFY:
                    new = Order(order.side, "X", price, qty)
                    for t in match(new).trades:
                        c.trades += 1
                        c.traded_qty += t.fill_quantity
                    if new.quantity:
                        live[oid] = new
        return c


PEERS: list[Peer] = [LightMatchingEnginePeer(), PyOrderBookPeer()]
