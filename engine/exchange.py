"""``Exchange``: the fast matching engine, a Python face on the compiled core.

It implements ``engine.interface.ExchangeAPI`` (the same behaviour as
``engine.reference.ReferenceExchange``, event for event) with the state in one
int64 arena (``engine.core.layout``) processed by numba-compiled functions.

* ``submit_batch(records)`` crosses into compiled code once per batch (more
  only when a region of the arena must grow, amortised O(1) per command).
* ``new_order / cancel / modify`` cross once per command with scalars only;
  their events stay in a reused buffer, readable as ``last_events`` until the
  next call.
* ``submit(cmd)`` is the convenient form: structs in, structs out.

The class holds no market state of its own besides the arena and the event
buffer, so a copy of the arena is a complete snapshot of the engine.
"""

from __future__ import annotations

import numpy as np

from engine.codes import CommandKind, InstrumentStatus
from engine.core import entry
from engine.core.layout import (
    FULL_DUP,
    FULL_EVENTS,
    H_NE,
    H_NOW,
    H_SEQ,
    L_COUNT,
    L_HEAD,
    L_PRICE,
    L_QTY,
    NONE,
    O_CLID,
    O_CUM,
    O_FIRM,
    O_ID,
    O_INST,
    O_LEAVES,
    O_LEVEL,
    O_NEXT,
    O_PRICE,
    O_SIDE,
    O_TIF,
    X_NLAD,
    X_OPEN,
    X_STATUS,
    capacity_for,
    grow,
    new_arena,
    views,
)
from engine.instruments import NS_PER_HOUR, Instrument
from engine.interface import LevelView, OrderStatus, RestingOrder
from engine.records import EVENT_DTYPE, Command, Event, NewOrder, commands_to_records, events_from_records

_MIN_KIND, _MAX_KIND = min(CommandKind), max(CommandKind)


class Exchange:
    """The matching engine for a list of instruments (ids = list positions)."""

    def __init__(self, instruments: list[Instrument], max_firms: int = 256, event_capacity: int = 1 << 16,
                 expected_orders: int = 0, arena: np.ndarray | None = None, *, live_orders: int = 0,
                 levels: int = 0, ladder_depth: int = 0):
        """Size the arena up front for the session, so that matching never pauses to grow it (0: grow as needed):
        ``expected_orders`` accepted over the session, ``live_orders`` resting at once, ``levels`` price levels
        alive at once over all books, ``ladder_depth`` levels on one side of one book
        (``engine.core.layout.capacity_for``).

        ``arena``: start from this state (a snapshot's, taken over, not copied) instead of an empty one."""
        self.instruments = list(instruments)
        self.max_firms = max_firms
        if arena is None:
            arena = new_arena(self.instruments, max_firms,
                              capacity_for(expected_orders, live_orders, levels, ladder_depth))
        arena[H_NE] = 0
        self._A = arena
        self._E = np.zeros(event_capacity, dtype=EVENT_DTYPE)
        self._n = 0
        self._ends = np.zeros(0, dtype=np.int64)

    # ------------------------------------------------------------ submitting

    def _make_room(self, full: int) -> None:
        """Grow the region a compiled call found full; the event buffer keeps its events."""
        if full == FULL_EVENTS:
            bigger = np.zeros(2 * len(self._E), dtype=EVENT_DTYPE)
            bigger[: self._A[H_NE]] = self._E[: self._A[H_NE]]
            self._E = bigger
        else:
            self._A = grow(self._A, full)

    def process_batch(self, records: np.ndarray) -> int:
        """Process COMMAND_DTYPE records in order; returns the number of events, in ``last_events``.

        One compiled call, plus one per region growth (amortised O(1) per
        command); the events stay in the reused buffer (no copy).
        """
        kinds = records["kind"]
        if len(kinds) and (kinds.min() < _MIN_KIND or kinds.max() > _MAX_KIND):
            raise ValueError(f"unknown command kind in {sorted(set(kinds.tolist()) - set(map(int, CommandKind)))}")
        self._A[H_NE] = 0
        self._ends = np.empty(len(records), dtype=np.int64)
        i = 0
        while True:
            i, full = entry.run_batch(self._A, self._E, records, self._ends, i)
            if not full:
                break
            self._make_room(full)
        self._n = int(self._A[H_NE])
        return self._n

    def submit_batch(self, records: np.ndarray) -> np.ndarray:
        """Like process_batch, but returns a copy of the events as EVENT_DTYPE records."""
        self.process_batch(records)
        return self._E[: self._n].copy()

    def submit(self, cmd: Command) -> list[Event]:
        """One command as a struct; its events as structs. O(events) Python work."""
        return events_from_records(self.submit_batch(commands_to_records([cmd])))

    def new_order(self, ts, firm, client_order_id, instrument, side, price, qty, ord_type=0, tif=0, post_only=0,
                  stp=0, expire_ts=0) -> int:
        """One NewOrder; returns the number of events, readable in ``last_events``.

        Pass plain ints: an IntEnum member (``Side.BUY``) works but takes numba's
        slow type-dispatch path (~12 us a call instead of ~1 us)."""
        n = entry.run_new_order(self._A, self._E, ts, firm, client_order_id, instrument, side, price, qty, ord_type,
                                tif, post_only, stp, expire_ts)
        while n < 0:
            self._make_room(-n)
            n = entry.run_new_order(self._A, self._E, ts, firm, client_order_id, instrument, side, price, qty,
                                    ord_type, tif, post_only, stp, expire_ts)
        self._n = n
        return n

    def cancel(self, ts, firm, order_id) -> int:
        n = entry.run_cancel(self._A, self._E, ts, firm, order_id)
        while n < 0:
            self._make_room(-n)
            n = entry.run_cancel(self._A, self._E, ts, firm, order_id)
        self._n = n
        return n

    def modify(self, ts, firm, order_id, price, qty) -> int:
        n = entry.run_modify(self._A, self._E, ts, firm, order_id, price, qty)
        while n < 0:
            self._make_room(-n)
            n = entry.run_modify(self._A, self._E, ts, firm, order_id, price, qty)
        self._n = n
        return n

    def take_event_seqs(self, n: int) -> int:
        """Reserve the next n event sequence numbers for events made outside the core (the call
        auction's); returns the first. Part of the engine state (the arena's counter)."""
        first = int(self._A[H_SEQ]) + 1
        self._A[H_SEQ] += n
        return first

    @property
    def last_command_ends(self) -> np.ndarray:
        """After process_batch/submit_batch: entry i is where command i's events end in ``last_events``."""
        return self._ends

    @property
    def last_events(self) -> np.ndarray:
        """Event records of the last call (a view into the reused buffer, valid until the next call)."""
        return self._E[: self._n]

    # --------------------------------------------------------------- queries

    @property
    def arena(self) -> np.ndarray:
        """The whole engine state (not a copy): what a snapshot saves. Read it between calls only."""
        return self._A

    @property
    def now(self) -> int:
        return int(self._A[H_NOW])

    def status(self, instrument: int) -> int:
        X = views(self._A)[0]
        st = int(X[instrument, X_STATUS])
        if st != InstrumentStatus.CLOSED and self.now < X[instrument, X_OPEN]:
            return InstrumentStatus.PRE_OPEN
        return st

    def _levels(self, instrument: int, side: int, n: int | None = None) -> list[LevelView]:
        X, _, _, _, L, LAD, _, _, _ = views(self._A)
        count = int(X[instrument, X_NLAD + side])
        row = LAD[instrument * 2 + side, :count, 1][::-1]
        if n is not None:
            row = row[:n]
        return [LevelView(int(L[lv, L_PRICE]), int(L[lv, L_QTY]), int(L[lv, L_COUNT])) for lv in row]

    def best_bid(self, instrument: int) -> LevelView | None:
        """O(1)."""
        top = self._levels(instrument, 0, 1)
        return top[0] if top else None

    def best_ask(self, instrument: int) -> LevelView | None:
        """O(1)."""
        top = self._levels(instrument, 1, 1)
        return top[0] if top else None

    def depth(self, instrument: int, n: int) -> tuple[list[LevelView], list[LevelView]]:
        """Top n levels per side, best first. O(n)."""
        return self._levels(instrument, 0, n), self._levels(instrument, 1, n)

    def order(self, order_id: int) -> OrderStatus | None:
        """A live order's status, None for any other id. O(1)."""
        _, _, _, O, _, _, IDH, _, _ = views(self._A)
        if not 0 < order_id < len(IDH) or IDH[order_id] == NONE:
            return None
        r = [int(v) for v in O[IDH[order_id]]]
        return OrderStatus(r[O_ID], r[O_FIRM], r[O_CLID], r[O_INST], r[O_SIDE], r[O_PRICE], r[O_LEAVES], r[O_CUM],
                           r[O_TIF])

    def book_orders(self, instrument: int, side: int) -> list[RestingOrder]:
        """Resting orders in priority order (best level first, FIFO within). O(orders)."""
        X, _, _, O, L, LAD, _, _, _ = views(self._A)
        out = []
        for k in range(int(X[instrument, X_NLAD + side]) - 1, -1, -1):
            lv = LAD[instrument * 2 + side, k, 1]
            h = L[lv, L_HEAD]
            while h != NONE:
                assert O[h, O_LEVEL] == lv
                out.append(RestingOrder(int(O[h, O_ID]), int(O[h, O_FIRM]), int(O[h, O_PRICE]), int(O[h, O_LEAVES])))
                h = O[h, O_NEXT]
        return out


def warm_up() -> None:
    """Compile (on a machine's first run: about 25 s on 2 cores) or load from numba's cache (well under 1 s)
    the compiled code of the batch path (``process_batch``) and of arena growth, by running a two-order
    session on one instrument. A venue calls it before it opens its ports, so no client waits on a compile."""
    ins = Instrument(0, "H100", "US-EAST", "FIRM", NS_PER_HOUR, open_ns=0, close_ns=NS_PER_HOUR, min_price=1,
                     max_price=100, price_increment=1, max_order_qty=10, protection_ticks=5)
    ex = Exchange([ins], 2)
    ex.process_batch(commands_to_records([NewOrder(1, 0, 1, 0, 0, 50, 2), NewOrder(2, 1, 1, 0, 1, 50, 1)]))
    grow(ex.arena, FULL_DUP)
