"""Compiled entry points: a whole batch of command records, or one command.

Before each command, ``room`` checks that every arena region and the event
buffer can take the command's worst case; if one cannot, the entry point stops
before touching that command and returns a FULL_* code, and the caller
(``engine.exchange``) grows the region or drains the events and calls again.
So a command is always applied whole.

Worst cases: a command on an instrument emits at most 4 events per fill (Fill,
Fill, Trade, BookLevel), and fills are fewer than both the resting orders and
the GPUs it trades; 2 per self-trade cancel, at most the firm's live orders;
plus a constant; a mass cancel 2 per live order; a time advance that has expiries or
gate closures due, 2 per live order plus 1 per instrument. It uses at most 2
order slots, 2 levels, one ladder entry per side, 2 order ids, one client id
and one heap entry.
"""

from __future__ import annotations

from numba import njit

from engine.codes import CommandKind
from engine.core.book import heap_top_expire, live_slot
from engine.core.layout import (
    F_COUNT,
    FULL_DUP,
    FULL_EVENTS,
    FULL_HEAP,
    FULL_IDS,
    FULL_LADDER,
    FULL_LEVELS,
    FULL_ORDERS,
    H_DCAP,
    H_DCOUNT,
    H_HCAP,
    H_HN,
    H_IDCAP,
    H_LCAP,
    H_LIVE,
    H_LLIVE,
    H_LMAX,
    H_MAXF,
    H_NE,
    H_NEXT_CLOSE,
    H_NEXT_OID,
    H_NINST,
    H_NOW,
    H_OCAP,
    O_INST,
    X_NLAD,
    X_NORD,
    firm_row,
    inst_row,
    order_row,
)
from engine.core.matching import process


@njit(cache=True, _nrt=False)
def room(A, E, kind, ts, firm, inst, order_id, qty, qty2):
    """0 if the command fits, else the FULL_* code of a region that must grow first."""
    if kind == CommandKind.MODIFY or kind == CommandKind.CANCEL:
        h = live_slot(A, order_id)
        inst = A[order_row(A, h) + O_INST] if h >= 0 else -1
    events = 16
    if inst >= 0 and inst < A[H_NINST]:
        x = inst_row(A, inst)
        # each fill (4 events) takes >= 1 GPU of the incoming quantity; each self-trade
        # cancel (2 events) removes one of the firm's own orders
        # (each term is clamped to the resting orders before adding: client quantities can be huge)
        resting = A[x + X_NORD] + A[x + X_NORD + 1]
        events += 4 * (min(resting, max(qty, 0)) + min(resting, max(qty2, 0)))
        if firm >= 0 and firm < A[H_MAXF]:
            events += 2 * A[firm_row(A, firm) + F_COUNT]
        if A[x + X_NLAD] >= A[H_LMAX] or A[x + X_NLAD + 1] >= A[H_LMAX]:
            return FULL_LADDER
    if kind == CommandKind.MASS_CANCEL:
        events += 2 * A[H_LIVE]
    if ts > A[H_NOW] and ((A[H_HN] > 0 and heap_top_expire(A) <= ts) or ts >= A[H_NEXT_CLOSE]):
        events += 2 * A[H_LIVE] + A[H_NINST]
    if A[H_NE] + events > E.shape[0]:
        return FULL_EVENTS
    if A[H_OCAP] - A[H_LIVE] < 2:
        return FULL_ORDERS
    if A[H_LCAP] - A[H_LLIVE] < 2:
        return FULL_LEVELS
    if A[H_NEXT_OID] + 2 >= A[H_IDCAP]:
        return FULL_IDS
    if 2 * (A[H_DCOUNT] + 1) >= A[H_DCAP]:
        return FULL_DUP
    if A[H_HN] + 1 >= A[H_HCAP]:
        return FULL_HEAP
    return 0


@njit(cache=True, _nrt=False)
def run_batch(A, E, C, ends, start):
    """Process C[start:] until done or a region is full: (next index, FULL_* code or 0).

    Events are appended to E at A[H_NE] (the caller zeroes it to start a batch);
    ends[i] is set to the event count after command i.
    """
    for i in range(start, C.shape[0]):
        c = C[i]
        full = room(A, E, c.kind, c.ts, c.firm, c.instrument, c.order_id, c.qty, c.qty2)
        if full:
            return i, full
        process(A, E, c.kind, c.ts, c.firm, c.instrument, c.side, c.ord_type, c.tif, c.post_only, c.stp,
                c.client_order_id, c.order_id, c.price, c.qty, c.price2, c.qty2, c.expire_ts, c.reason)
        ends[i] = A[H_NE]
    return C.shape[0], 0


@njit(cache=True, _nrt=False)
def run_new_order(A, E, ts, firm, clid, inst, side, price, qty, ord_type, tif, post, stp, expire):
    """One NewOrder: the number of events written to E, or -FULL_* with nothing done."""
    A[H_NE] = 0
    full = room(A, E, CommandKind.NEW_ORDER, ts, firm, inst, 0, qty, 0)
    if full:
        return -full
    process(A, E, CommandKind.NEW_ORDER, ts, firm, inst, side, ord_type, tif, post, stp, clid, 0, price, qty, 0, 0,
            expire, 0)
    return A[H_NE]


@njit(cache=True, _nrt=False)
def run_cancel(A, E, ts, firm, order_id):
    A[H_NE] = 0
    full = room(A, E, CommandKind.CANCEL, ts, firm, -1, order_id, 0, 0)
    if full:
        return -full
    process(A, E, CommandKind.CANCEL, ts, firm, -1, 0, 0, 0, 0, 0, 0, order_id, 0, 0, 0, 0, 0, 0)
    return A[H_NE]


@njit(cache=True, _nrt=False)
def run_modify(A, E, ts, firm, order_id, price, qty):
    A[H_NE] = 0
    full = room(A, E, CommandKind.MODIFY, ts, firm, -1, order_id, qty, 0)
    if full:
        return -full
    process(A, E, CommandKind.MODIFY, ts, firm, -1, 0, 0, 0, 0, 0, 0, order_id, price, qty, 0, 0, 0, 0)
    return A[H_NE]
