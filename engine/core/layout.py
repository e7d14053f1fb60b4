"""Where the matching core keeps its state: one int64 arena and its regions.

The whole engine state is a single 1-D int64 numpy array (the arena) so that a
call into compiled code passes one array, not a dozen (each array argument
costs ~50 ns of unboxing, which matters for one-at-a-time calls). A header of
``HEADER`` slots at the start holds the counters, the capacities and the
offset of every region; ``views(A)`` turns the arena into 2-D/3-D views:

========  ==========================  =============================================
region    shape                       content
========  ==========================  =============================================
X         (instruments, XF)           status, times, band, increment, ladder sizes
QUO       (max_firms, instruments, 2) order id of a firm's live quote per side, 0 none
FIRM      (max_firms, FF)             head, tail, count of the firm's live orders list
O         (order capacity, OF)        order slots: fields, FIFO links, firm links
L         (level capacity, LF)        price levels: price, aggregate qty, count, FIFO ends
LAD       (instruments*2, lmax, 2)    per book side, (key, level) sorted by key, best last
IDH       (id capacity,)              order id -> order slot, -1 when not live
DUP       (dup capacity, 2)           open-addressing set of (firm, client order id)
HEAP      (heap capacity, 2)          binary min-heap of (expire_ts, order id) for GTD
========  ==========================  =============================================

Ladder key = price for bids, -price for asks, so both sides sort ascending with
the best price at the end (insert/remove at the touch is O(1)).

Compiled code does not use the views: passing a dozen arrays between small
functions costs far more than the work (each array argument is reference
counted on every call). It indexes the arena directly through the row
helpers below (``order_row(A, h) + O_LEAVES`` and so on), so every function
takes just ``A`` and the event buffer.

Growth never happens inside compiled code: a command first checks that every
region has room for its worst case, and if not the entry point returns a code
naming the region; ``grow`` (plain numpy, O(arena size)) builds a larger arena
and the command is retried. Capacities only grow.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.codes import InstrumentStatus
from engine.instruments import Instrument

# header slots
H_NOW = 0  # engine clock, ns
H_SEQ = 1  # last event sequence number
H_NEXT_OID = 2  # next order id
H_NEXT_TID = 3  # next trade id
H_NE = 4  # events written to the event buffer by the current call
H_NINST = 5
H_MAXF = 6
H_LIVE = 7  # live orders (slots in use)
H_OFREE = 8  # head of the free order-slot list, -1 none
H_OUSED = 9  # slots ever handed out (high-water mark)
H_OCAP = 10
H_LFREE = 11
H_LUSED = 12
H_LCAP = 13
H_LLIVE = 14  # levels in use
H_LMAX = 15  # ladder capacity per book side
H_IDCAP = 16
H_DCAP = 17  # power of two
H_DCOUNT = 18
H_HCAP = 19
H_HN = 20  # heap size
H_NEXT_CLOSE = 21  # earliest gate closure among instruments not closed
H_OFF_X = 22
H_OFF_QUO = 23
H_OFF_FIRM = 24
H_OFF_O = 25
H_OFF_L = 26
H_OFF_LAD = 27
H_OFF_IDH = 28
H_OFF_DUP = 29
H_OFF_HEAP = 30
HEADER = 32

# instrument columns
X_STATUS = 0  # InstrumentStatus OPEN, HALTED or CLOSED (PRE_OPEN is derived from X_OPEN)
X_OPEN = 1
X_CLOSE = 2
X_MINP = 3
X_MAXP = 4
X_INCR = 5
X_MAXQ = 6
X_PROT = 7
X_NLAD = 8  # + side: levels on that side
X_NORD = 10  # + side: resting orders on that side
XF = 12

# order columns
O_ID = 0
O_FIRM = 1
O_CLID = 2
O_INST = 3
O_SIDE = 4
O_PRICE = 5
O_LEAVES = 6
O_CUM = 7
O_TIF = 8
O_STP = 9
O_POST = 10
O_EXPIRE = 11
O_LEVEL = 12  # level slot while resting, -1 otherwise
O_PREV = 13  # FIFO links within the level, -1 at the ends
O_NEXT = 14  # also the free-list link of a free slot
O_FPREV = 15  # links in the firm's list of live orders (ascending order id)
O_FNEXT = 16
OF = 17

# level columns
L_PRICE = 0
L_QTY = 1
L_COUNT = 2
L_HEAD = 3
L_TAIL = 4  # = L_HEAD + 1 (book.list_*); also the free-list link of a free level
LF = 5

# firm columns
F_HEAD = 0
F_TAIL = 1  # = F_HEAD + 1 (book.list_*)
F_COUNT = 2
FF = 3

NONE = -1
INT64_MAX = np.iinfo(np.int64).max

# region-full codes returned by entry points (0 = room for the command)
FULL_EVENTS = 1
FULL_ORDERS = 2
FULL_LEVELS = 3
FULL_LADDER = 4
FULL_IDS = 5
FULL_DUP = 6
FULL_HEAP = 7

INITIAL_CAPACITY = {"ocap": 1 << 14, "lcap": 1 << 12, "lmax": 64, "idcap": 1 << 16, "dcap": 1 << 16, "hcap": 1 << 12}


def capacity_for(expected_orders: int, live_orders: int = 0, levels: int = 0, ladder_depth: int = 0,
                 expiries: int = 0) -> dict[str, int]:
    """Initial capacities, so that a session of that size never grows the arena (each growth copies it).

    ``expected_orders``: orders accepted over the session (order ids and client ids are never reused);
    ``live_orders``: resting at once; ``levels``: price levels alive at once over all books;
    ``ladder_depth``: price levels on one side of one book; ``expiries``: GTD orders live at once.
    0 leaves a capacity at its default (``INITIAL_CAPACITY``)."""
    caps = dict(INITIAL_CAPACITY)
    if expected_orders > 0:
        ids = 1 << int(expected_orders + 2).bit_length()
        caps["idcap"] = max(caps["idcap"], ids)
        caps["dcap"] = max(caps["dcap"], 2 * ids)
    for key, wanted in (("ocap", live_orders), ("lcap", levels), ("lmax", ladder_depth), ("hcap", expiries)):
        if wanted > 0:
            caps[key] = max(caps[key], 1 << int(wanted).bit_length())  # above it, a power of two
    return caps


def _region_sizes(n: int, max_firms: int, caps: dict[str, int]) -> list[tuple[int, int]]:
    """(header slot, size) of every region in arena order."""
    return [
        (H_OFF_X, n * XF),
        (H_OFF_QUO, max_firms * n * 2),
        (H_OFF_FIRM, max_firms * FF),
        (H_OFF_O, caps["ocap"] * OF),
        (H_OFF_L, caps["lcap"] * LF),
        (H_OFF_LAD, n * 2 * caps["lmax"] * 2),
        (H_OFF_IDH, caps["idcap"]),
        (H_OFF_DUP, caps["dcap"] * 2),
        (H_OFF_HEAP, caps["hcap"] * 2),
    ]


def _allocate(n: int, max_firms: int, caps: dict[str, int]) -> np.ndarray:
    sizes = _region_sizes(n, max_firms, caps)
    A = np.zeros(HEADER + sum(s for _, s in sizes), dtype=np.int64)
    off = HEADER
    for slot, size in sizes:
        A[slot] = off
        off += size
    A[H_NINST], A[H_MAXF] = n, max_firms
    A[H_OCAP], A[H_LCAP], A[H_LMAX] = caps["ocap"], caps["lcap"], caps["lmax"]
    A[H_IDCAP], A[H_DCAP], A[H_HCAP] = caps["idcap"], caps["dcap"], caps["hcap"]
    _, _, _, _, _, _, IDH, DUP, _ = views(A)
    IDH[:] = NONE
    DUP[:, 0] = NONE
    return A


def capacities(A: np.ndarray) -> dict[str, int]:
    return {"ocap": int(A[H_OCAP]), "lcap": int(A[H_LCAP]), "lmax": int(A[H_LMAX]),
            "idcap": int(A[H_IDCAP]), "dcap": int(A[H_DCAP]), "hcap": int(A[H_HCAP])}


def new_arena(instruments: list[Instrument], max_firms: int, caps: dict[str, int] | None = None) -> np.ndarray:
    """A fresh engine state for these instruments (ids = list positions)."""
    n = len(instruments)
    A = _allocate(n, max_firms, caps or INITIAL_CAPACITY)
    X, _, FIRM, _, _, _, _, _, _ = views(A)
    for i, ins in enumerate(instruments):
        if ins.instrument_id != i:
            raise ValueError(f"instrument {ins.symbol} has id {ins.instrument_id}, expected {i}")
        X[i] = 0
        X[i, X_STATUS] = InstrumentStatus.OPEN
        X[i, X_OPEN], X[i, X_CLOSE] = ins.open_ns, ins.close_ns
        X[i, X_MINP], X[i, X_MAXP] = ins.min_price, ins.max_price
        X[i, X_INCR], X[i, X_MAXQ], X[i, X_PROT] = ins.price_increment, ins.max_order_qty, ins.protection_ticks
    FIRM[:, F_HEAD] = NONE
    FIRM[:, F_TAIL] = NONE
    A[H_OFREE] = A[H_LFREE] = NONE
    A[H_NEXT_OID] = A[H_NEXT_TID] = 1
    A[H_NEXT_CLOSE] = min((ins.close_ns for ins in instruments), default=INT64_MAX)
    return A


def grow(A: np.ndarray, full: int) -> np.ndarray:
    """A copy of the arena with the region named by a FULL_* code four times larger.

    One allocation and one copy of every region (a memcpy, O(arena words)); the client-id set is rehashed
    only when it is the region that grew (its slots depend on its size), otherwise copied as it is. A venue
    avoids growth altogether by sizing the arena up front (``capacity_for``)."""
    caps = capacities(A)
    caps[_GROWN_BY[full]] *= 4
    B = _allocate(int(A[H_NINST]), int(A[H_MAXF]), caps)
    B[_COUNTER_SLOTS] = A[_COUNTER_SLOTS]
    for k, (a, b) in enumerate(zip(views(A), views(B), strict=True)):
        if k == _LAD:  # (sides, lmax, 2): the old ladder columns
            b[:, : a.shape[1]] = a
        elif k == _DUP and full == FULL_DUP:  # a larger hash set: every client id to its new slot
            rehash(A, B)
        else:
            b[: a.shape[0]] = a
    return B


_GROWN_BY = {FULL_ORDERS: "ocap", FULL_LEVELS: "lcap", FULL_LADDER: "lmax", FULL_IDS: "idcap",
             FULL_DUP: "dcap", FULL_HEAP: "hcap"}
_COUNTER_SLOTS = [H_NOW, H_SEQ, H_NEXT_OID, H_NEXT_TID, H_NE, H_LIVE, H_OFREE, H_OUSED, H_LFREE, H_LUSED,
                  H_LLIVE, H_DCOUNT, H_HN, H_NEXT_CLOSE]
_LAD, _DUP = 5, 7  # positions in the views() tuple


@njit(cache=True)
def views(A):
    """(X, QUO, FIRM, O, L, LAD, IDH, DUP, HEAP) as views of the arena."""
    n = A[H_NINST]
    mf = A[H_MAXF]
    o = A[H_OFF_X]
    X = A[o : o + n * XF].reshape((n, XF))
    o = A[H_OFF_QUO]
    QUO = A[o : o + mf * n * 2].reshape((mf, n, 2))
    o = A[H_OFF_FIRM]
    FIRM = A[o : o + mf * FF].reshape((mf, FF))
    o = A[H_OFF_O]
    O = A[o : o + A[H_OCAP] * OF].reshape((A[H_OCAP], OF))
    o = A[H_OFF_L]
    L = A[o : o + A[H_LCAP] * LF].reshape((A[H_LCAP], LF))
    o = A[H_OFF_LAD]
    LAD = A[o : o + n * 2 * A[H_LMAX] * 2].reshape((n * 2, A[H_LMAX], 2))
    o = A[H_OFF_IDH]
    IDH = A[o : o + A[H_IDCAP]]
    o = A[H_OFF_DUP]
    DUP = A[o : o + A[H_DCAP] * 2].reshape((A[H_DCAP], 2))
    o = A[H_OFF_HEAP]
    HEAP = A[o : o + A[H_HCAP] * 2].reshape((A[H_HCAP], 2))
    return X, QUO, FIRM, O, L, LAD, IDH, DUP, HEAP


@njit(cache=True, _nrt=False)
def dup_slot(A, firm, clid):
    """Index of (firm, clid) in the arena's client-id set, or of the empty cell where it would go.

    Linear probing from a home slot that keeps runs of 64 consecutive client
    ids of a firm in one block (clients number their orders upwards, so a new
    id usually lands in a cache line already touched) while the block itself is
    placed by a multiplicative hash of (firm, clid // 64). O(1) expected.
    """
    base = A[H_OFF_DUP]
    mask = A[H_DCAP] - 1
    block = ((clid >> 6) * -7046029254386353131) ^ (firm * 1609587929392839161)
    i = ((block >> 20) << 6 | (clid & 63)) & mask
    while A[base + 2 * i] != NONE and (A[base + 2 * i] != firm or A[base + 2 * i + 1] != clid):
        i = (i + 1) & mask
    return base + 2 * i


@njit(cache=True)
def rehash(A, B):
    """Insert every client id of arena A into the (larger, empty) set of arena B."""
    base = A[H_OFF_DUP]
    for j in range(A[H_DCAP]):
        firm = A[base + 2 * j]
        if firm != NONE:
            cell = dup_slot(B, firm, A[base + 2 * j + 1])
            B[cell] = firm
            B[cell + 1] = A[base + 2 * j + 1]


# ----------------------------------------------- row helpers for compiled code


@njit(cache=True, _nrt=False)
def inst_row(A, inst):
    return A[H_OFF_X] + inst * XF


@njit(cache=True, _nrt=False)
def order_row(A, h):
    return A[H_OFF_O] + h * OF


@njit(cache=True, _nrt=False)
def level_row(A, lv):
    return A[H_OFF_L] + lv * LF


@njit(cache=True, _nrt=False)
def firm_row(A, firm):
    return A[H_OFF_FIRM] + firm * FF


@njit(cache=True, _nrt=False)
def quote_cell(A, firm, inst, side):
    return A[H_OFF_QUO] + (firm * A[H_NINST] + inst) * 2 + side


@njit(cache=True, _nrt=False)
def ladder_row(A, inst, side):
    """Index of entry 0 of a book side's ladder; entry k is (key, level) at +2k."""
    return A[H_OFF_LAD] + (inst * 2 + side) * A[H_LMAX] * 2


@njit(cache=True, _nrt=False)
def heap_row(A, i):
    return A[H_OFF_HEAP] + 2 * i
