"""The reference exchange: docs/matching-rules.md in plain, readable Python.

``ReferenceExchange`` is the test oracle of the numba core (``engine.exchange``):
both implement ``engine.interface.ExchangeAPI`` and must emit identical event
streams for any command sequence. Clarity wins over speed here; the comments
name the rule of the specification each step follows.

What it holds:

* per instrument and side, a ``SortedDict`` price -> ``_Level``, ordered best
  first (bids through a negating key); a level keeps its orders in a dict
  order_id -> ``_Order`` (insertion order = arrival order) and their aggregate
  open quantity;
* ``_orders``: every live order by id. An order is live exactly while it rests
  in a level (between commands; an incoming order is only added when it rests);
* ``_client_ids``: per firm, the client order ids of its accepted orders;
* ``_expiries``: a heap of (expire_ts, order_id) of accepted GTD orders, entries
  of orders no longer live are skipped when they come out (lazy deletion);
* ``_closings``: a heap of (close_ns, instrument) of instruments not yet closed;
* ``_quotes``: (firm, instrument, side) -> order id of the last quote order on
  that side; it is the live quote only while that id is in ``_orders``;
* the counters ``_seq``, ``_last_order_id``, ``_last_trade_id`` and the clock.

Invariants after every command: no book is crossed (best bid < best ask);
each level is non-empty, holds its orders in arrival order (FIFO) and its
``qty`` is the sum of their leaves (> 0); quantity is conserved: a match takes
the same quantity from both orders (their ``cum`` grows by it), and open
quantity otherwise changes only through cancels, expiries and modifies, each
reported by an event; only GTC and GTD limit orders rest.

Costs, with L price levels on a side, n live orders, k orders touched
(filled, cancelled, expired) by the command: new order, quote entry and modify
O(log L) per level touched plus O(k); cancel O(log L); mass cancel O(n log n);
time advance O(log of the expiry heap) per expiry plus the orders of the
closing instruments; queries as documented on each method. Integers only.
"""

from __future__ import annotations

import heapq
import itertools
import operator
from dataclasses import dataclass, field

import numpy as np
from sortedcontainers import SortedDict

from engine.codes import (
    CANCEL_REASON_OVERRIDES,
    CancelReason,
    InstrumentStatus,
    Liquidity,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
)
from engine.instruments import Instrument
from engine.interface import LevelView, OrderStatus, RestingOrder
from engine.records import (
    Accepted,
    AdvanceTime,
    AuctionFill,
    BookLevel,
    Cancel,
    Cancelled,
    CancelRejected,
    Command,
    Event,
    Fill,
    Halt,
    InstrumentStatusChanged,
    MassCancel,
    MassQuote,
    Modify,
    NewOrder,
    QuoteEntry,
    Rejected,
    Replaced,
    Resume,
    Trade,
    command_from_record,
    events_to_records,
)

_OPEN, _HALTED, _CLOSED = InstrumentStatus.OPEN, InstrumentStatus.HALTED, InstrumentStatus.CLOSED
_TIFS = frozenset(TimeInForce)
_STPS = frozenset(SelfTradePrevention)


@dataclass(slots=True)
class _Order:
    order_id: int
    firm: int
    client_order_id: int
    instrument: int
    side: int
    price: int  # the limit (for a market order, its protection limit)
    leaves: int  # open quantity
    cum: int  # filled over the order's life
    tif: int
    stp: int
    post_only: int
    market: bool


@dataclass(slots=True)
class _Level:
    orders: dict[int, _Order] = field(default_factory=dict)  # order_id -> order, in arrival order
    qty: int = 0  # sum of the orders' leaves


def _crosses(side: int, limit: int, opposite_price: int) -> bool:
    """Whether an order on ``side`` with ``limit`` may trade at ``opposite_price``."""
    return opposite_price <= limit if side == Side.BUY else opposite_price >= limit


class ReferenceExchange:
    """A whole exchange (every instrument's book) as a deterministic state machine."""

    def __init__(self, instruments: list[Instrument], max_firms: int = 256):
        for i, inst in enumerate(instruments):
            if inst.instrument_id != i:
                raise ValueError(f"instrument at position {i} has id {inst.instrument_id}")
        self._instruments = list(instruments)
        self._max_firms = max_firms
        self._books = [(SortedDict(operator.neg), SortedDict()) for _ in instruments]  # [i][side], best first
        self._state = [_OPEN] * len(instruments)  # OPEN, HALTED or CLOSED; PRE_OPEN is derived from the clock
        self._orders: dict[int, _Order] = {}
        self._client_ids: dict[int, set[int]] = {}
        self._expiries: list[tuple[int, int]] = []
        self._closings = [(inst.close_ns, i) for i, inst in enumerate(instruments)]
        heapq.heapify(self._closings)
        self._quotes: dict[tuple[int, int, int], int] = {}
        self._now = 0
        self._seq = 0
        self._last_order_id = 0
        self._last_trade_id = 0
        self._events: list[Event] = []  # events of the command being processed
        self._last: list[Event] = []  # events of the last submission
        self._ends = np.zeros(0, dtype=np.int64)  # event end index per command of the last batch
        self._handlers = {
            NewOrder: self._new_order,
            Cancel: self._cancel,
            Modify: self._modify,
            MassCancel: self._mass_cancel,
            MassQuote: self._mass_quote,
            AdvanceTime: lambda cmd: None,
            Halt: lambda cmd: self._set_state(cmd.instrument, _HALTED),
            Resume: lambda cmd: self._set_state(cmd.instrument, _OPEN),
            AuctionFill: self._auction_fill,
        }

    # ------------------------------------------------------------ submitting

    def submit(self, cmd: Command) -> list[Event]:
        """Process one command and return its events. O(cost of the command), see the module docstring."""
        self._events = []
        self._advance_time(cmd.ts)
        self._handlers[type(cmd)](cmd)
        self._last, self._events = self._events, []
        return self._last

    def process_batch(self, records: np.ndarray) -> int:
        """submit_batch without the copy: the number of events, readable in ``last_events``."""
        return len(self.submit_batch(records))

    def submit_batch(self, records: np.ndarray) -> np.ndarray:
        """Process COMMAND_DTYPE records in order (a MASS_QUOTE record is a one-entry MassQuote);
        return all their EVENT_DTYPE records. O(sum of the commands' costs + events)."""
        commands = [command_from_record(r) for r in records]  # an unknown kind refuses the whole batch
        events = []
        ends = []
        for cmd in commands:
            events += self.submit(cmd)
            ends.append(len(events))
        self._ends = np.array(ends, dtype=np.int64)
        self._last = events
        return events_to_records(events)

    def new_order(self, ts: int, firm: int, client_order_id: int, instrument: int, side: int, price: int,
                  qty: int, ord_type: int = OrderType.LIMIT, tif: int = TimeInForce.GTC, post_only: int = 0,
                  stp: int = SelfTradePrevention.CANCEL_NEWEST, expire_ts: int = 0) -> int:
        """Submit a NewOrder; return the number of events (their records are in ``last_events``)."""
        return len(self.submit(NewOrder(ts, firm, client_order_id, instrument, side, price, qty, ord_type, tif,
                                        post_only, stp, expire_ts)))

    def cancel(self, ts: int, firm: int, order_id: int) -> int:
        """Submit a Cancel; return the number of events (their records are in ``last_events``)."""
        return len(self.submit(Cancel(ts, firm, order_id)))

    def modify(self, ts: int, firm: int, order_id: int, price: int, qty: int) -> int:
        """Submit a Modify; return the number of events (their records are in ``last_events``)."""
        return len(self.submit(Modify(ts, firm, order_id, price, qty)))

    @property
    def instruments(self) -> list[Instrument]:
        return list(self._instruments)

    @property
    def max_firms(self) -> int:
        return self._max_firms

    def take_event_seqs(self, n: int) -> int:
        """Reserve the next n event sequence numbers for events made outside the engine; returns the first."""
        first = self._seq + 1
        self._seq += n
        return first

    @property
    def last_events(self) -> np.ndarray:
        """EVENT_DTYPE records of the last submission. O(events)."""
        return events_to_records(self._last)

    @property
    def last_command_ends(self) -> np.ndarray:
        """After submit_batch: entry i is where command i's events end in ``last_events``."""
        return self._ends

    # --------------------------------------------------------------- queries

    @property
    def now(self) -> int:
        """The engine clock, ns. O(1)."""
        return self._now

    def status(self, instrument: int) -> int:
        """The instrument's InstrumentStatus. O(1)."""
        state = self._state[instrument]
        if state == _OPEN and self._now < self._instruments[instrument].open_ns:
            return InstrumentStatus.PRE_OPEN
        return state

    def best_bid(self, instrument: int) -> LevelView | None:
        """The best bid level, or None. O(log L)."""
        return self._best(instrument, Side.BUY)

    def best_ask(self, instrument: int) -> LevelView | None:
        """The best ask level, or None. O(log L)."""
        return self._best(instrument, Side.SELL)

    def depth(self, instrument: int, n: int) -> tuple[list[LevelView], list[LevelView]]:
        """The top ``n`` levels of each side, best first: (bids, asks). O(n + log L)."""
        bids, asks = self._books[instrument]
        return self._levels(bids, n), self._levels(asks, n)

    def order(self, order_id: int) -> OrderStatus | None:
        """The status of a live order, None for any other id. O(1)."""
        o = self._orders.get(order_id)
        if o is None:
            return None
        return OrderStatus(o.order_id, o.firm, o.client_order_id, o.instrument, o.side, o.price, o.leaves, o.cum,
                           o.tif)

    def book_orders(self, instrument: int, side: int) -> list[RestingOrder]:
        """The resting orders of one side in priority order (best level first, FIFO within).
        O(orders on that side)."""
        return [
            RestingOrder(o.order_id, o.firm, o.price, o.leaves)
            for level in self._books[instrument][side].values()
            for o in level.orders.values()
        ]

    @staticmethod
    def _levels(book: SortedDict, n: int) -> list[LevelView]:
        return [LevelView(price, level.qty, len(level.orders)) for price, level in itertools.islice(book.items(), n)]

    def _best(self, instrument: int, side: int) -> LevelView | None:
        book = self._books[instrument][side]
        if not book:
            return None
        price, level = book.peekitem(0)
        return LevelView(price, level.qty, len(level.orders))

    # ------------------------------------------------------------------ time

    def _advance_time(self, ts: int) -> None:
        """Time advance to ``ts`` (spec: Time). Its events carry ts = the new time."""
        if ts <= self._now:
            return
        self._now = ts
        while self._expiries and self._expiries[0][0] <= ts:
            _, order_id = heapq.heappop(self._expiries)
            o = self._orders.get(order_id)
            if o is not None:
                self._cancel_resting(o, CancelReason.EXPIRED)
        closing = []
        while self._closings and self._closings[0][0] <= ts:
            closing.append(heapq.heappop(self._closings)[1])
        for i in sorted(closing):
            for book in self._books[i]:  # bids best to worst, then asks; FIFO within a level
                for o in [o for level in book.values() for o in level.orders.values()]:
                    self._cancel_resting(o, CancelReason.EXPIRED)
            self._state[i] = _CLOSED
            self._emit(InstrumentStatusChanged, instrument=i, status=_CLOSED)

    def _set_state(self, instrument: int, state: int) -> None:
        """Halt (state HALTED) or Resume (state OPEN)."""
        if not self._listed(instrument):
            reason = RejectReason.UNKNOWN_INSTRUMENT
        elif self.status(instrument) in (InstrumentStatus.PRE_OPEN, _CLOSED):
            reason = RejectReason.INSTRUMENT_CLOSED
        else:
            self._state[instrument] = state
            self._emit(InstrumentStatusChanged, instrument=instrument, status=state)
            return
        self._emit(Rejected, instrument=instrument, firm=-1, client_order_id=0, side=0, reason=reason)

    # ------------------------------------------------------------- new order

    def _new_order(self, c: NewOrder) -> None:
        reason = self._check_new_order(c)
        if reason:
            self._emit(Rejected, instrument=c.instrument, firm=c.firm, client_order_id=c.client_order_id,
                       side=c.side, reason=reason)
            return
        self._client_ids.setdefault(c.firm, set()).add(c.client_order_id)
        o = self._accept(c.firm, c.client_order_id, c.instrument, c.side, self._limit(c), c.qty, c.tif, c.stp,
                         int(c.post_only), c.ord_type == OrderType.MARKET)
        if c.tif == TimeInForce.GTD:
            heapq.heappush(self._expiries, (c.expire_ts, o.order_id))
        self._match(o)

    def _check_new_order(self, c: NewOrder) -> int:
        """The first failing validation rule of a NewOrder (spec: NewOrder 1-10), or NONE."""
        if not self._listed(c.instrument):
            return RejectReason.UNKNOWN_INSTRUMENT
        market = c.ord_type == OrderType.MARKET
        if (
            not 0 <= c.firm < self._max_firms
            or c.side not in (Side.BUY, Side.SELL)
            or c.ord_type not in (OrderType.LIMIT, OrderType.MARKET)
            or c.tif not in _TIFS
            or c.stp not in _STPS
            or c.post_only not in (0, 1)
            or (market and c.tif in (TimeInForce.GTC, TimeInForce.GTD))
            or (c.post_only and (market or c.tif in (TimeInForce.IOC, TimeInForce.FOK)))
        ):
            return RejectReason.INVALID_FIELD
        inst = self._instruments[c.instrument]
        reason = self._status_reason(c.instrument) or self._qty_reason(inst, c.qty)
        if reason:
            return reason
        if not market and (reason := self._price_reason(inst, c.price)):
            return reason
        if c.tif == TimeInForce.GTD and c.expire_ts <= self._now:
            return RejectReason.EXPIRE_TIME_IN_PAST
        if c.client_order_id in self._client_ids.get(c.firm, ()):
            return RejectReason.DUPLICATE_CLIENT_ORDER_ID
        if market and not self._books[c.instrument][1 - c.side]:
            return RejectReason.NO_LIQUIDITY
        if c.post_only and self._crosses_best(c.instrument, c.side, c.price):
            return RejectReason.POST_ONLY_WOULD_TAKE
        if c.tif == TimeInForce.FOK and not self._fok_fillable(c, self._limit(c)):
            return RejectReason.FOK_CANNOT_FILL
        return RejectReason.NONE

    def _limit(self, c: NewOrder) -> int:
        """A limit order's price; a market order's protection limit, from the opposite best, inside the band."""
        if c.ord_type == OrderType.LIMIT:
            return c.price
        inst = self._instruments[c.instrument]
        best = self._books[c.instrument][1 - c.side].peekitem(0)[0]
        limit = best + inst.protection_ticks if c.side == Side.BUY else best - inst.protection_ticks
        return min(max(limit, inst.min_price), inst.max_price)

    def _fok_fillable(self, c: NewOrder, limit: int) -> bool:
        """FOK check: can the order fill in full now, given its stp against its own firm's orders?"""
        need = c.qty
        for price, level in self._books[c.instrument][1 - c.side].items():
            if not _crosses(c.side, limit, price):
                break
            for o in level.orders.values():
                if o.firm == c.firm:
                    if c.stp != SelfTradePrevention.CANCEL_OLDEST:
                        return False  # the FOK order itself would be cancelled here
                    continue  # that resting order would be cancelled, not filled
                need -= o.leaves
                if need <= 0:
                    return True
        return False

    def _accept(self, firm: int, client_order_id: int, instrument: int, side: int, price: int, qty: int, tif: int,
                stp: int, post_only: int, market: bool) -> _Order:
        """Give the next order id and emit Accepted; the order is not in the book yet."""
        self._last_order_id += 1
        o = _Order(self._last_order_id, firm, client_order_id, instrument, side, price, qty, 0, tif, stp, post_only,
                   market)
        self._emit(Accepted, instrument=instrument, order_id=o.order_id, firm=firm, client_order_id=client_order_id,
                   side=side, price=price, qty=qty)
        return o

    # -------------------------------------------------------------- matching

    def _match(self, o: _Order) -> None:
        """Match an incoming (not resting) order, then cancel its rest or rest it (spec: Matching)."""
        opposite = self._books[o.instrument][1 - o.side]
        while o.leaves > 0 and opposite:
            price, level = opposite.peekitem(0)
            if not _crosses(o.side, o.price, price):
                break
            maker = next(iter(level.orders.values()))
            if maker.firm != o.firm:
                self._trade(o, maker, level)
                continue
            if o.stp == SelfTradePrevention.CANCEL_NEWEST:
                self._emit_cancelled(o, CancelReason.STP)
                return
            self._cancel_resting(maker, CancelReason.STP)
            if o.stp == SelfTradePrevention.CANCEL_BOTH:
                self._emit_cancelled(o, CancelReason.STP)
                return
        if o.leaves == 0:
            return
        if o.market:
            self._emit_cancelled(o, CancelReason.MARKET_PROTECTION)
        elif o.tif in (TimeInForce.IOC, TimeInForce.FOK):
            self._emit_cancelled(o, CancelReason.IOC)
        else:
            self._rest(o)

    def _trade(self, taker: _Order, maker: _Order, level: _Level) -> None:
        """One match at the maker's price: Fill (maker), Fill (taker), Trade, BookLevel."""
        qty = min(taker.leaves, maker.leaves)
        self._last_trade_id += 1
        for o in (maker, taker):
            o.leaves -= qty
            o.cum += qty
        level.qty -= qty
        if maker.leaves == 0:
            self._unrest(maker)
        for o, liquidity in ((maker, Liquidity.MAKER), (taker, Liquidity.TAKER)):
            self._emit(Fill, instrument=o.instrument, order_id=o.order_id, firm=o.firm,
                       client_order_id=o.client_order_id, side=o.side, price=maker.price, qty=qty, leaves=o.leaves,
                       cum=o.cum, trade_id=self._last_trade_id, liquidity=liquidity)
        self._emit(Trade, instrument=taker.instrument, trade_id=self._last_trade_id, side=taker.side,
                   price=maker.price, qty=qty)
        self._emit_level(maker.instrument, maker.side, maker.price)

    # ---------------------------------------------------------- book changes

    def _rest(self, o: _Order) -> None:
        """Put an order at the tail of its level and emit the level."""
        book = self._books[o.instrument][o.side]
        level = book.get(o.price)
        if level is None:
            level = book[o.price] = _Level()
        level.orders[o.order_id] = o
        level.qty += o.leaves
        self._orders[o.order_id] = o
        self._emit_level(o.instrument, o.side, o.price)

    def _unrest(self, o: _Order) -> None:
        """Take a resting order out of its level (the level goes when empty); no event."""
        book = self._books[o.instrument][o.side]
        level = book[o.price]
        del level.orders[o.order_id]
        level.qty -= o.leaves
        if not level.orders:
            del book[o.price]
        del self._orders[o.order_id]

    def _cancel_resting(self, o: _Order, reason: int) -> None:
        self._unrest(o)
        self._emit_cancelled(o, reason)
        self._emit_level(o.instrument, o.side, o.price)

    def _replace(self, o: _Order, price: int, qty: int) -> None:
        """Modify's rules for a live order whose new price and qty passed validation (spec: Modify)."""
        if price == o.price and qty <= o.leaves:
            self._books[o.instrument][o.side][price].qty -= o.leaves - qty
            o.leaves = qty
            self._emit_replaced(o)
            self._emit_level(o.instrument, o.side, price)
            return
        old_price = o.price
        self._unrest(o)
        o.price, o.leaves = price, qty
        self._emit_replaced(o)
        self._emit_level(o.instrument, o.side, old_price)
        self._match(o)

    # ----------------------------------------------------- cancel and modify

    def _cancel(self, c: Cancel) -> None:
        o = self._orders.get(c.order_id)
        if c.reason and c.reason not in CANCEL_REASON_OVERRIDES:
            self._emit(CancelRejected, instrument=-1, order_id=c.order_id, firm=c.firm,
                       reason=RejectReason.INVALID_FIELD)
        elif o is None:
            self._emit(CancelRejected, instrument=-1, order_id=c.order_id, firm=c.firm,
                       reason=RejectReason.UNKNOWN_ORDER)
        elif o.firm != c.firm:
            self._emit(CancelRejected, instrument=o.instrument, order_id=c.order_id, firm=c.firm,
                       reason=RejectReason.NOT_YOUR_ORDER)
        else:
            self._cancel_resting(o, c.reason or CancelReason.USER)

    def _auction_fill(self, c: AuctionFill) -> None:
        """Spec: AuctionFill. Fill (Liquidity.AUCTION, new trade id), reduced in place or removed, BookLevel."""
        o = self._orders.get(c.order_id)
        if o is None:
            self._emit(CancelRejected, instrument=-1, order_id=c.order_id, firm=0, reason=RejectReason.UNKNOWN_ORDER)
            return
        inst = self._instruments[o.instrument]
        if not (0 < c.qty <= o.leaves and inst.min_price <= c.price <= inst.max_price):
            self._emit(CancelRejected, instrument=o.instrument, order_id=c.order_id, firm=0,
                       reason=RejectReason.INVALID_FIELD)
            return
        self._last_trade_id += 1
        self._books[o.instrument][o.side][o.price].qty -= c.qty
        o.leaves -= c.qty
        o.cum += c.qty
        if o.leaves == 0:
            self._unrest(o)
        self._emit(Fill, instrument=o.instrument, order_id=o.order_id, firm=o.firm, client_order_id=o.client_order_id,
                   side=o.side, price=c.price, qty=c.qty, leaves=o.leaves, cum=o.cum, trade_id=self._last_trade_id,
                   liquidity=Liquidity.AUCTION)
        self._emit_level(o.instrument, o.side, o.price)

    def _modify(self, c: Modify) -> None:
        o = self._orders.get(c.order_id)
        reason = self._check_modify(c, o)
        if reason:
            self._emit(CancelRejected, instrument=-1 if o is None else o.instrument, order_id=c.order_id,
                       firm=c.firm, reason=reason)
        else:
            self._replace(o, c.price, c.qty)

    def _check_modify(self, c: Modify, o: _Order | None) -> int:
        """The first failing check of a Modify (spec: Modify), or NONE."""
        if o is None:
            return RejectReason.UNKNOWN_ORDER
        if o.firm != c.firm:
            return RejectReason.NOT_YOUR_ORDER
        if self._state[o.instrument] == _HALTED:
            return RejectReason.INSTRUMENT_HALTED
        inst = self._instruments[o.instrument]
        reason = self._qty_reason(inst, c.qty) or self._price_reason(inst, c.price)
        if reason:
            return reason
        if o.post_only and self._crosses_best(o.instrument, o.side, c.price):
            return RejectReason.POST_ONLY_WOULD_TAKE
        return RejectReason.NONE

    def _mass_cancel(self, c: MassCancel) -> None:
        if c.instrument != -1 and not self._listed(c.instrument):
            self._emit(Rejected, instrument=c.instrument, firm=c.firm, client_order_id=0, side=0,
                       reason=RejectReason.UNKNOWN_INSTRUMENT)
            return
        if not 0 <= c.firm < self._max_firms or (c.reason and c.reason not in CANCEL_REASON_OVERRIDES):
            self._emit(Rejected, instrument=c.instrument, firm=c.firm, client_order_id=0, side=0,
                       reason=RejectReason.INVALID_FIELD)
            return
        doomed = sorted(
            order_id for order_id, o in self._orders.items()
            if o.firm == c.firm and c.instrument in (-1, o.instrument)
        )
        for order_id in doomed:
            self._cancel_resting(self._orders[order_id], c.reason or CancelReason.MASS)

    # ----------------------------------------------------------- mass quote

    def _mass_quote(self, c: MassQuote) -> None:
        for entry in c.entries:
            self._quote_entry(c.firm, c.quote_id, entry)

    def _quote_entry(self, firm: int, quote_id: int, e: QuoteEntry) -> None:
        """One entry, validated whole, then its bid side, then its ask side (spec: MassQuote)."""
        reason = self._check_quote_entry(firm, e)
        if reason:
            self._emit(Rejected, instrument=e.instrument, firm=firm, client_order_id=quote_id, side=0, reason=reason)
            return
        for side, price, qty in ((Side.BUY, e.bid_price, e.bid_qty), (Side.SELL, e.ask_price, e.ask_qty)):
            key = (firm, e.instrument, side)
            live = self._orders.get(self._quotes.get(key, 0))
            if qty == 0:
                if live is not None:
                    self._cancel_resting(live, CancelReason.USER)
            elif live is not None:
                self._replace(live, price, qty)
            else:
                o = self._accept(firm, quote_id, e.instrument, side, price, qty, TimeInForce.GTC,
                                 SelfTradePrevention.CANCEL_NEWEST, 0, False)
                self._quotes[key] = o.order_id
                self._match(o)

    def _check_quote_entry(self, firm: int, e: QuoteEntry) -> int:
        if not self._listed(e.instrument):
            return RejectReason.UNKNOWN_INSTRUMENT
        if not 0 <= firm < self._max_firms:
            return RejectReason.INVALID_FIELD
        reason = self._status_reason(e.instrument)
        if reason:
            return reason
        if e.bid_qty < 0 or e.ask_qty < 0:
            return RejectReason.INVALID_QUANTITY
        inst = self._instruments[e.instrument]
        for price, qty in ((e.bid_price, e.bid_qty), (e.ask_price, e.ask_qty)):
            if qty > 0 and (reason := self._qty_reason(inst, qty) or self._price_reason(inst, price)):
                return reason
        if e.bid_qty > 0 and e.ask_qty > 0 and e.bid_price >= e.ask_price:
            return RejectReason.QUOTE_CROSSED
        return RejectReason.NONE

    # ------------------------------------------------------- shared checks

    def _listed(self, instrument: int) -> bool:
        return 0 <= instrument < len(self._instruments)

    def _status_reason(self, instrument: int) -> int:
        status = self.status(instrument)
        if status in (InstrumentStatus.PRE_OPEN, _CLOSED):
            return RejectReason.INSTRUMENT_CLOSED
        return RejectReason.INSTRUMENT_HALTED if status == _HALTED else RejectReason.NONE

    @staticmethod
    def _qty_reason(inst: Instrument, qty: int) -> int:
        if qty <= 0:
            return RejectReason.INVALID_QUANTITY
        return RejectReason.QUANTITY_ABOVE_MAXIMUM if qty > inst.max_order_qty else RejectReason.NONE

    @staticmethod
    def _price_reason(inst: Instrument, price: int) -> int:
        if price % inst.price_increment:
            return RejectReason.PRICE_OFF_TICK
        if not inst.min_price <= price <= inst.max_price:
            return RejectReason.PRICE_OUT_OF_BAND
        return RejectReason.NONE

    def _crosses_best(self, instrument: int, side: int, price: int) -> bool:
        """Whether ``price`` on ``side`` would trade with the opposite best (post-only check)."""
        opposite = self._books[instrument][1 - side]
        return bool(opposite) and _crosses(side, price, opposite.peekitem(0)[0])

    # --------------------------------------------------------------- events

    def _emit(self, cls: type, **fields: int) -> None:
        self._seq += 1
        self._events.append(cls(seq=self._seq, ts=self._now, **fields))

    def _emit_level(self, instrument: int, side: int, price: int) -> None:
        level = self._books[instrument][side].get(price)
        qty, count = (level.qty, len(level.orders)) if level is not None else (0, 0)
        self._emit(BookLevel, instrument=instrument, side=side, price=price, qty=qty, count=count)

    def _emit_cancelled(self, o: _Order, reason: int) -> None:
        self._emit(Cancelled, instrument=o.instrument, order_id=o.order_id, firm=o.firm,
                   client_order_id=o.client_order_id, side=o.side, price=o.price, qty=o.leaves, cum=o.cum,
                   reason=reason)

    def _emit_replaced(self, o: _Order) -> None:
        self._emit(Replaced, instrument=o.instrument, order_id=o.order_id, firm=o.firm,
                   client_order_id=o.client_order_id, side=o.side, price=o.price, leaves=o.leaves, cum=o.cum)
