"""Primitive operations of the compiled core: ladders, levels, orders, events.

Every function takes the arena ``A`` (see ``layout``) and, where it emits,
the event buffer ``E`` (an EVENT_DTYPE array filled from ``A[H_NE]``). Rows
are addressed with the ``layout`` row helpers: ``o = order_row(A, h)`` then
``A[o + O_LEAVES]``.

Invariants kept here:
* a live order has ``IDH[order id] == slot``; it rests iff its O_LEVEL >= 0;
* a level's FIFO holds its orders in arrival order, L_QTY is the sum of their
  leaves and L_COUNT their number; an empty level is removed at once;
* each ladder side is sorted by key with the best price last;
* a firm's list holds its live orders in ascending order id.

Costs: order and level allocation O(1); ladder lookup O(log levels); ladder
insert/remove O(levels between the position and the best price); heap
push/pop O(log n); client-id set O(1) expected. Callers guarantee room.
"""

from __future__ import annotations

from numba import njit

from engine.codes import EventKind
from engine.core.layout import (
    F_COUNT,
    F_HEAD,
    H_DCOUNT,
    H_HN,
    H_LFREE,
    H_LIVE,
    H_LLIVE,
    H_LUSED,
    H_NE,
    H_NEXT_OID,
    H_NOW,
    H_OFF_IDH,
    H_OFREE,
    H_OUSED,
    H_SEQ,
    L_COUNT,
    L_HEAD,
    L_PRICE,
    L_QTY,
    L_TAIL,
    NONE,
    O_CLID,
    O_CUM,
    O_EXPIRE,
    O_FIRM,
    O_FNEXT,
    O_FPREV,
    O_ID,
    O_INST,
    O_LEAVES,
    O_LEVEL,
    O_NEXT,
    O_POST,
    O_PREV,
    O_PRICE,
    O_SIDE,
    O_STP,
    O_TIF,
    X_NLAD,
    X_NORD,
    firm_row,
    heap_row,
    inst_row,
    ladder_row,
    level_row,
    order_row,
)

# ------------------------------------------------------------------ events


@njit(cache=True, _nrt=False)
def emit(A, E, kind, inst, side, firm, order_id, clid, price, qty, leaves, cum, trade_id, reason, liquidity, count,
         status):
    n = A[H_NE]
    A[H_NE] = n + 1
    A[H_SEQ] += 1
    e = E[n]
    e.seq = A[H_SEQ]
    e.ts = A[H_NOW]
    e.kind = kind
    e.side = side
    e.reason = reason
    e.liquidity = liquidity
    e.status = status
    e.instrument = inst
    e.firm = firm
    e.count = count
    e.order_id = order_id
    e.client_order_id = clid
    e.price = price
    e.qty = qty
    e.leaves = leaves
    e.cum = cum
    e.trade_id = trade_id


@njit(cache=True, _nrt=False)
def emit_order(A, E, kind, h, qty, reason):
    """An event about order slot h (Accepted, Cancelled, Replaced) with its own price and cum.

    Only Replaced carries leaves (the other two carry qty)."""
    o = order_row(A, h)
    leaves = A[o + O_LEAVES] if kind == EventKind.REPLACED else 0
    emit(A, E, kind, A[o + O_INST], A[o + O_SIDE], A[o + O_FIRM], A[o + O_ID], A[o + O_CLID], A[o + O_PRICE], qty,
         leaves, A[o + O_CUM], 0, reason, 0, 0, 0)


@njit(cache=True, _nrt=False)
def emit_level(A, E, inst, side, price, lv):
    """BookLevel for the level at price; lv = NONE when it is gone."""
    if lv == NONE:
        emit(A, E, EventKind.BOOK_LEVEL, inst, side, 0, 0, 0, price, 0, 0, 0, 0, 0, 0, 0, 0)
    else:
        v = level_row(A, lv)
        emit(A, E, EventKind.BOOK_LEVEL, inst, side, 0, 0, 0, price, A[v + L_QTY], 0, 0, 0, 0, 0, A[v + L_COUNT], 0)


# ----------------------------------------------------------------- ladders


@njit(cache=True, _nrt=False)
def ladder_key(side, price):
    return price if side == 0 else -price


@njit(cache=True, _nrt=False)
def ladder_search(A, r, n, key):
    """First position in the ladder at r (n entries) whose key is >= key. O(log n)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if A[r + 2 * mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, _nrt=False)
def best_level(A, inst, side):
    n = A[inst_row(A, inst) + X_NLAD + side]
    if n == 0:
        return NONE
    return A[ladder_row(A, inst, side) + 2 * (n - 1) + 1]


@njit(cache=True, _nrt=False)
def open_level(A, inst, side, price):
    """The level at price, created (empty) if there is none."""
    x = inst_row(A, inst)
    r = ladder_row(A, inst, side)
    n = A[x + X_NLAD + side]
    key = ladder_key(side, price)
    if n > 0 and A[r + 2 * (n - 1)] < key:  # beyond the best price: the common case
        p = n
    else:
        p = ladder_search(A, r, n, key)
        if p < n and A[r + 2 * p] == key:
            return A[r + 2 * p + 1]
    lv = A[H_LFREE]
    if lv != NONE:
        A[H_LFREE] = A[level_row(A, lv) + L_TAIL]
    else:
        lv = A[H_LUSED]
        A[H_LUSED] = lv + 1
    A[H_LLIVE] += 1
    v = level_row(A, lv)
    A[v + L_PRICE] = price
    A[v + L_QTY] = 0
    A[v + L_COUNT] = 0
    A[v + L_HEAD] = NONE
    A[v + L_TAIL] = NONE
    for j in range(2 * n + 1, 2 * p, -1):
        A[r + j] = A[r + j - 2]
    A[r + 2 * p] = key
    A[r + 2 * p + 1] = lv
    A[x + X_NLAD + side] = n + 1
    return lv


@njit(cache=True, _nrt=False)
def close_level(A, inst, side, lv):
    """Remove the empty level lv from its ladder and free it."""
    x = inst_row(A, inst)
    r = ladder_row(A, inst, side)
    n = A[x + X_NLAD + side]
    v = level_row(A, lv)
    p = n - 1
    if A[r + 2 * p + 1] != lv:  # not the best level
        p = ladder_search(A, r, n, ladder_key(side, A[v + L_PRICE]))
    for j in range(2 * p, 2 * (n - 1)):
        A[r + j] = A[r + j + 2]
    A[x + X_NLAD + side] = n - 1
    A[v + L_TAIL] = A[H_LFREE]
    A[H_LFREE] = lv
    A[H_LLIVE] -= 1


# ------------------------------------------------------- intrusive lists
# An order is in two doubly linked lists: its level's FIFO (links O_PREV and
# O_NEXT, ends L_HEAD and L_TAIL) and its firm's list (O_FPREV, O_FNEXT, ends
# F_HEAD and F_TAIL). ``ends`` is the arena index of the head cell; the tail
# cell follows it.


@njit(cache=True, _nrt=False)
def list_append(A, ends, h, prev_col, next_col):
    o = order_row(A, h)
    tail = A[ends + 1]
    A[o + prev_col] = tail
    A[o + next_col] = NONE
    if tail == NONE:
        A[ends] = h
    else:
        A[order_row(A, tail) + next_col] = h
    A[ends + 1] = h


@njit(cache=True, _nrt=False)
def list_remove(A, ends, h, prev_col, next_col):
    o = order_row(A, h)
    p = A[o + prev_col]
    nx = A[o + next_col]
    if p == NONE:
        A[ends] = nx
    else:
        A[order_row(A, p) + next_col] = nx
    if nx == NONE:
        A[ends + 1] = p
    else:
        A[order_row(A, nx) + prev_col] = p


# ------------------------------------------------------------------ orders


@njit(cache=True, _nrt=False)
def new_order_slot(A, order_id, firm, clid, inst, side, price, qty, tif, stp, post, expire):
    """A live, not yet resting order; appended to its firm's list. O(1)."""
    h = A[H_OFREE]
    if h != NONE:
        A[H_OFREE] = A[order_row(A, h) + O_NEXT]
    else:
        h = A[H_OUSED]
        A[H_OUSED] = h + 1
    A[H_LIVE] += 1
    o = order_row(A, h)
    A[o + O_ID] = order_id
    A[o + O_FIRM] = firm
    A[o + O_CLID] = clid
    A[o + O_INST] = inst
    A[o + O_SIDE] = side
    A[o + O_PRICE] = price
    A[o + O_LEAVES] = qty
    A[o + O_CUM] = 0
    A[o + O_TIF] = tif
    A[o + O_STP] = stp
    A[o + O_POST] = post
    A[o + O_EXPIRE] = expire
    A[o + O_LEVEL] = NONE
    f = firm_row(A, firm)
    list_append(A, f + F_HEAD, h, O_FPREV, O_FNEXT)
    A[f + F_COUNT] += 1
    A[A[H_OFF_IDH] + order_id] = h
    return h


@njit(cache=True, _nrt=False)
def free_order_slot(A, h):
    """The order is no longer live (it must not rest): unlink from its firm, free the slot."""
    o = order_row(A, h)
    f = firm_row(A, A[o + O_FIRM])
    list_remove(A, f + F_HEAD, h, O_FPREV, O_FNEXT)
    A[f + F_COUNT] -= 1
    A[A[H_OFF_IDH] + A[o + O_ID]] = NONE
    A[o + O_NEXT] = A[H_OFREE]
    A[H_OFREE] = h
    A[H_LIVE] -= 1


@njit(cache=True, _nrt=False)
def rest(A, E, h):
    """Append order h at the tail of its price level; emits that level's BookLevel."""
    o = order_row(A, h)
    inst = A[o + O_INST]
    side = A[o + O_SIDE]
    lv = open_level(A, inst, side, A[o + O_PRICE])
    v = level_row(A, lv)
    list_append(A, v + L_HEAD, h, O_PREV, O_NEXT)
    A[v + L_QTY] += A[o + O_LEAVES]
    A[v + L_COUNT] += 1
    A[o + O_LEVEL] = lv
    A[inst_row(A, inst) + X_NORD + side] += 1
    emit_level(A, E, inst, side, A[o + O_PRICE], lv)


@njit(cache=True, _nrt=False)
def unrest(A, E, h):
    """Take resting order h out of its level (the level goes when empty); emits BookLevel."""
    o = order_row(A, h)
    inst = A[o + O_INST]
    side = A[o + O_SIDE]
    lv = A[o + O_LEVEL]
    v = level_row(A, lv)
    list_remove(A, v + L_HEAD, h, O_PREV, O_NEXT)
    A[v + L_QTY] -= A[o + O_LEAVES]
    A[v + L_COUNT] -= 1
    A[o + O_LEVEL] = NONE
    A[inst_row(A, inst) + X_NORD + side] -= 1
    if A[v + L_COUNT] == 0:
        close_level(A, inst, side, lv)
        lv = NONE
    emit_level(A, E, inst, side, A[o + O_PRICE], lv)


@njit(cache=True, _nrt=False)
def cancel_order(A, E, h, reason):
    """Cancelled(reason) for live order h, out of the book if resting, slot freed."""
    o = order_row(A, h)
    emit_order(A, E, EventKind.CANCELLED, h, A[o + O_LEAVES], reason)
    if A[o + O_LEVEL] != NONE:
        unrest(A, E, h)
    free_order_slot(A, h)


@njit(cache=True, _nrt=False)
def live_slot(A, order_id):
    """Slot of a live order id, or NONE."""
    if order_id <= 0 or order_id >= A[H_NEXT_OID]:
        return NONE
    return A[A[H_OFF_IDH] + order_id]


# ------------------------------------------------- client ids, expiry heap


@njit(cache=True, _nrt=False)
def register_client_id(A, cell, firm, clid):
    """Put (firm, clid) in the empty set cell found by ``dup_slot``."""
    A[cell] = firm
    A[cell + 1] = clid
    A[H_DCOUNT] += 1


@njit(cache=True, _nrt=False)
def _heap_less(A, i, j):
    a = heap_row(A, i)
    b = heap_row(A, j)
    return A[a] < A[b] or (A[a] == A[b] and A[a + 1] < A[b + 1])


@njit(cache=True, _nrt=False)
def _heap_swap(A, i, j):
    a = heap_row(A, i)
    b = heap_row(A, j)
    t0 = A[a]
    t1 = A[a + 1]
    A[a] = A[b]
    A[a + 1] = A[b + 1]
    A[b] = t0
    A[b + 1] = t1


@njit(cache=True, _nrt=False)
def heap_push(A, expire, order_id):
    i = A[H_HN]
    A[H_HN] = i + 1
    a = heap_row(A, i)
    A[a] = expire
    A[a + 1] = order_id
    while i > 0:
        parent = (i - 1) >> 1
        if not _heap_less(A, i, parent):
            break
        _heap_swap(A, i, parent)
        i = parent


@njit(cache=True, _nrt=False)
def heap_top_expire(A):
    return A[heap_row(A, 0)]


@njit(cache=True, _nrt=False)
def heap_pop(A):
    """Remove the smallest (expire_ts, order id); returns the order id."""
    top = A[heap_row(A, 0) + 1]
    n = A[H_HN] - 1
    A[H_HN] = n
    a = heap_row(A, 0)
    b = heap_row(A, n)
    A[a] = A[b]
    A[a + 1] = A[b + 1]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _heap_less(A, c + 1, c):
            c += 1
        if not _heap_less(A, c, i):
            break
        _heap_swap(A, i, c)
        i = c
    return top
