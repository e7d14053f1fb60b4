"""The commands of docs/matching-rules.md, compiled: validation, matching, time.

Each public function here handles one command kind on the arena ``A`` and
event buffer ``E`` (see ``book``); ``process`` dispatches a command. They
assume the caller (``entry``) checked that every region has room for the
command's worst case, so nothing here allocates.

Costs: a new order is O(log levels) plus O(1) per fill or self-trade cancel;
cancel O(1) plus ladder removal; modify like cancel plus new order; mass
cancel O(the firm's live orders); a time advance O(log n) per expiry plus
O(instruments) when a gate closure is due.
"""

from __future__ import annotations

from numba import njit

from engine.codes import (
    CancelReason,
    CommandKind,
    EventKind,
    InstrumentStatus,
    Liquidity,
    OrderType,
    RejectReason,
    SelfTradePrevention,
    TimeInForce,
)
from engine.core.book import (
    best_level,
    cancel_order,
    emit,
    emit_level,
    emit_order,
    free_order_slot,
    heap_pop,
    heap_push,
    heap_top_expire,
    live_slot,
    new_order_slot,
    register_client_id,
    rest,
    unrest,
)
from engine.core.layout import (
    F_HEAD,
    H_HN,
    H_MAXF,
    H_NEXT_CLOSE,
    H_NEXT_OID,
    H_NEXT_TID,
    H_NINST,
    H_NOW,
    INT64_MAX,
    L_HEAD,
    L_PRICE,
    L_QTY,
    NONE,
    O_CLID,
    O_CUM,
    O_FIRM,
    O_FNEXT,
    O_ID,
    O_INST,
    O_LEAVES,
    O_LEVEL,
    O_NEXT,
    O_POST,
    O_PRICE,
    O_SIDE,
    O_STP,
    O_TIF,
    X_CLOSE,
    X_INCR,
    X_MAXP,
    X_MAXQ,
    X_MINP,
    X_NLAD,
    X_OPEN,
    X_PROT,
    X_STATUS,
    dup_slot,
    firm_row,
    inst_row,
    ladder_row,
    level_row,
    order_row,
    quote_cell,
)

BUY = 0
SELL = 1
USER_CANCEL = int(CancelReason.USER)  # plain ints: they unify with a command's int8 reason
MASS_CANCEL = int(CancelReason.MASS)


@njit(cache=True, _nrt=False)
def reject(A, E, inst, side, firm, clid, reason):
    emit(A, E, EventKind.REJECTED, inst, side, firm, 0, clid, 0, 0, 0, 0, 0, reason, 0, 0, 0)


@njit(cache=True, _nrt=False)
def cancel_reject(A, E, inst, firm, order_id, reason):
    emit(A, E, EventKind.CANCEL_REJECTED, inst, 0, firm, order_id, 0, 0, 0, 0, 0, 0, reason, 0, 0, 0)


@njit(cache=True, _nrt=False)
def crosses(side, price, limit):
    """Does a resting price on the other side trade with an order of this side at limit?"""
    return price <= limit if side == BUY else price >= limit


@njit(cache=True, _nrt=False)
def opposite_crosses(A, inst, side, limit):
    lv = best_level(A, inst, 1 - side)
    return lv != NONE and crosses(side, A[level_row(A, lv) + L_PRICE], limit)


@njit(cache=True, _nrt=False)
def trading_reason(A, inst):
    """INSTRUMENT_CLOSED (pre-open or closed), INSTRUMENT_HALTED or 0."""
    x = inst_row(A, inst)
    st = A[x + X_STATUS]
    if st == InstrumentStatus.CLOSED or A[H_NOW] < A[x + X_OPEN]:
        return RejectReason.INSTRUMENT_CLOSED
    if st == InstrumentStatus.HALTED:
        return RejectReason.INSTRUMENT_HALTED
    return 0


@njit(cache=True, _nrt=False)
def quantity_reason(A, inst, qty):
    if qty <= 0:
        return RejectReason.INVALID_QUANTITY
    if qty > A[inst_row(A, inst) + X_MAXQ]:
        return RejectReason.QUANTITY_ABOVE_MAXIMUM
    return 0


@njit(cache=True, _nrt=False)
def size_price_reason(A, inst, price, qty):
    reason = quantity_reason(A, inst, qty)
    if reason:
        return reason
    x = inst_row(A, inst)
    if price % A[x + X_INCR] != 0:
        return RejectReason.PRICE_OFF_TICK
    if price < A[x + X_MINP] or price > A[x + X_MAXP]:
        return RejectReason.PRICE_OUT_OF_BAND
    return 0


@njit(cache=True, _nrt=False)
def order_limit(A, inst, side, ord_type, price):
    """The limit an order trades to: its price, or for a market order best opposite +- protection."""
    if ord_type == OrderType.LIMIT:
        return price
    x = inst_row(A, inst)
    best = A[level_row(A, best_level(A, inst, 1 - side)) + L_PRICE]
    limit = best + A[x + X_PROT] if side == BUY else best - A[x + X_PROT]
    return min(max(limit, A[x + X_MINP]), A[x + X_MAXP])


@njit(cache=True, _nrt=False)
def fok_fillable(A, inst, side, limit, qty, firm, stp):
    """Can an order fill qty now, given self-trade prevention? O(orders walked)."""
    opp = 1 - side
    r = ladder_row(A, inst, opp)
    total = 0
    for k in range(A[inst_row(A, inst) + X_NLAD + opp] - 1, -1, -1):
        v = level_row(A, A[r + 2 * k + 1])
        if not crosses(side, A[v + L_PRICE], limit):
            return False
        h = A[v + L_HEAD]
        while h != NONE:
            o = order_row(A, h)
            if A[o + O_FIRM] == firm:
                if stp != SelfTradePrevention.CANCEL_OLDEST:
                    return False
            else:
                total += A[o + O_LEAVES]
                if total >= qty:
                    return True
            h = A[o + O_NEXT]
    return False


@njit(cache=True, _nrt=False)
def new_order_reason(A, firm, clid_cell, inst, side, ord_type, price, qty, tif, post, stp, expire):
    """The first failing check of a NewOrder, or 0 (clid_cell: the order's cell in the client-id set)."""
    if inst < 0 or inst >= A[H_NINST]:
        return RejectReason.UNKNOWN_INSTRUMENT
    market = ord_type == OrderType.MARKET
    if (
        firm < 0 or firm >= A[H_MAXF] or side < 0 or side > 1 or ord_type < 0 or ord_type > 1
        or tif < 0 or tif > 3 or stp < 0 or stp > 2 or post < 0 or post > 1
        or (market and (tif == TimeInForce.GTC or tif == TimeInForce.GTD))
        or (post == 1 and (market or tif == TimeInForce.IOC or tif == TimeInForce.FOK))
    ):
        return RejectReason.INVALID_FIELD
    reason = trading_reason(A, inst)
    if reason:
        return reason
    reason = quantity_reason(A, inst, qty) if market else size_price_reason(A, inst, price, qty)
    if reason:
        return reason
    if tif == TimeInForce.GTD and expire <= A[H_NOW]:
        return RejectReason.EXPIRE_TIME_IN_PAST
    if A[clid_cell] != NONE:
        return RejectReason.DUPLICATE_CLIENT_ORDER_ID
    if market and best_level(A, inst, 1 - side) == NONE:
        return RejectReason.NO_LIQUIDITY
    limit = order_limit(A, inst, side, ord_type, price)
    if post == 1 and opposite_crosses(A, inst, side, limit):
        return RejectReason.POST_ONLY_WOULD_TAKE
    if tif == TimeInForce.FOK and not fok_fillable(A, inst, side, limit, qty, firm, stp):
        return RejectReason.FOK_CANNOT_FILL
    return 0


@njit(cache=True, _nrt=False)
def match(A, E, h):
    """Match order h (not resting) against the other side. True if STP cancelled h."""
    o = order_row(A, h)
    inst = A[o + O_INST]
    side = A[o + O_SIDE]
    limit = A[o + O_PRICE]
    firm = A[o + O_FIRM]
    stp = A[o + O_STP]
    opp = 1 - side
    while A[o + O_LEAVES] > 0:
        lv = best_level(A, inst, opp)
        if lv == NONE:
            break
        v = level_row(A, lv)
        p = A[v + L_PRICE]
        if not crosses(side, p, limit):
            break
        m = A[v + L_HEAD]
        mo = order_row(A, m)
        if A[mo + O_FIRM] == firm:
            if stp == SelfTradePrevention.CANCEL_NEWEST:
                cancel_order(A, E, h, CancelReason.STP)
                return True
            cancel_order(A, E, m, CancelReason.STP)
            if stp == SelfTradePrevention.CANCEL_BOTH:
                cancel_order(A, E, h, CancelReason.STP)
                return True
            continue
        x = min(A[o + O_LEAVES], A[mo + O_LEAVES])
        tid = A[H_NEXT_TID]
        A[H_NEXT_TID] = tid + 1
        A[mo + O_LEAVES] -= x
        A[mo + O_CUM] += x
        A[v + L_QTY] -= x
        A[o + O_LEAVES] -= x
        A[o + O_CUM] += x
        emit(A, E, EventKind.FILL, inst, opp, A[mo + O_FIRM], A[mo + O_ID], A[mo + O_CLID], p, x, A[mo + O_LEAVES],
             A[mo + O_CUM], tid, 0, Liquidity.MAKER, 0, 0)
        emit(A, E, EventKind.FILL, inst, side, firm, A[o + O_ID], A[o + O_CLID], p, x, A[o + O_LEAVES],
             A[o + O_CUM], tid, 0, Liquidity.TAKER, 0, 0)
        emit(A, E, EventKind.TRADE, inst, side, 0, 0, 0, p, x, 0, 0, tid, 0, 0, 0, 0)
        if A[mo + O_LEAVES] == 0:
            unrest(A, E, m)
            free_order_slot(A, m)
        else:
            emit_level(A, E, inst, opp, p, lv)
    return False


@njit(cache=True, _nrt=False)
def execute(A, E, h, remainder_reason):
    """Match h, then rest it (GTC/GTD) or cancel its remainder (IOC/FOK/market)."""
    if match(A, E, h):
        return
    o = order_row(A, h)
    if A[o + O_LEAVES] == 0:
        free_order_slot(A, h)
    elif A[o + O_TIF] == TimeInForce.IOC or A[o + O_TIF] == TimeInForce.FOK:
        cancel_order(A, E, h, remainder_reason)
    else:
        rest(A, E, h)


@njit(cache=True, _nrt=False)
def accept(A, E, firm, clid, inst, side, limit, qty, tif, stp, post, expire):
    """A new live order with the next order id; Accepted emitted. Returns its slot."""
    oid = A[H_NEXT_OID]
    A[H_NEXT_OID] = oid + 1
    h = new_order_slot(A, oid, firm, clid, inst, side, limit, qty, tif, stp, post, expire)
    emit_order(A, E, EventKind.ACCEPTED, h, qty, 0)
    return h


@njit(cache=True, _nrt=False)
def new_order(A, E, firm, clid, inst, side, ord_type, price, qty, tif, post, stp, expire):
    cell = dup_slot(A, firm, clid) if 0 <= firm < A[H_MAXF] else 0
    reason = new_order_reason(A, firm, cell, inst, side, ord_type, price, qty, tif, post, stp, expire)
    if reason:
        reject(A, E, inst, side, firm, clid, reason)
        return
    limit = order_limit(A, inst, side, ord_type, price)
    register_client_id(A, cell, firm, clid)
    if tif == TimeInForce.GTD:
        heap_push(A, expire, A[H_NEXT_OID])
    h = accept(A, E, firm, clid, inst, side, limit, qty, tif, stp, post, expire)
    market = ord_type == OrderType.MARKET
    execute(A, E, h, CancelReason.MARKET_PROTECTION if market else CancelReason.IOC)


@njit(cache=True, _nrt=False)
def reason_override_ok(reason):
    """0 (the command's own reason) or one of codes.CANCEL_REASON_OVERRIDES."""
    return reason == 0 or reason == CancelReason.DISCONNECT or reason == CancelReason.ADMIN


@njit(cache=True, _nrt=False)
def cancel(A, E, firm, order_id, reason):
    h = live_slot(A, order_id)
    if not reason_override_ok(reason):
        cancel_reject(A, E, -1, firm, order_id, RejectReason.INVALID_FIELD)
    elif h == NONE:
        cancel_reject(A, E, -1, firm, order_id, RejectReason.UNKNOWN_ORDER)
    elif A[order_row(A, h) + O_FIRM] != firm:
        cancel_reject(A, E, A[order_row(A, h) + O_INST], firm, order_id, RejectReason.NOT_YOUR_ORDER)
    else:
        cancel_order(A, E, h, reason if reason else USER_CANCEL)


@njit(cache=True, _nrt=False)
def apply_modify(A, E, h, price, qty):
    """Modify rules on live resting order h: reduce in place, or leave the level and re-enter."""
    o = order_row(A, h)
    inst = A[o + O_INST]
    side = A[o + O_SIDE]
    if price == A[o + O_PRICE] and qty <= A[o + O_LEAVES]:
        lv = A[o + O_LEVEL]
        A[level_row(A, lv) + L_QTY] -= A[o + O_LEAVES] - qty
        A[o + O_LEAVES] = qty
        emit_order(A, E, EventKind.REPLACED, h, 0, 0)
        emit_level(A, E, inst, side, price, lv)
        return
    emit(A, E, EventKind.REPLACED, inst, side, A[o + O_FIRM], A[o + O_ID], A[o + O_CLID], price, 0, qty,
         A[o + O_CUM], 0, 0, 0, 0, 0)
    unrest(A, E, h)
    A[o + O_PRICE] = price
    A[o + O_LEAVES] = qty
    execute(A, E, h, CancelReason.IOC)


@njit(cache=True, _nrt=False)
def auction_fill(A, E, order_id, price, qty):
    """The call auction executes qty of resting order order_id at its clearing price.

    Fill with Liquidity.AUCTION (a new trade id), the order reduced in place (priority kept) or
    removed when done, BookLevel. No Trade event: the auction's result carries the volume.
    Refused with CancelRejected: UNKNOWN_ORDER, or INVALID_FIELD for qty outside 1..leaves or a
    price outside the instrument's band."""
    h = live_slot(A, order_id)
    if h == NONE:
        cancel_reject(A, E, -1, 0, order_id, RejectReason.UNKNOWN_ORDER)
        return
    o = order_row(A, h)
    inst = A[o + O_INST]
    x = inst_row(A, inst)
    if qty <= 0 or qty > A[o + O_LEAVES] or price < A[x + X_MINP] or price > A[x + X_MAXP]:
        cancel_reject(A, E, inst, 0, order_id, RejectReason.INVALID_FIELD)
        return
    side = A[o + O_SIDE]
    lv = A[o + O_LEVEL]
    tid = A[H_NEXT_TID]
    A[H_NEXT_TID] = tid + 1
    A[o + O_LEAVES] -= qty
    A[o + O_CUM] += qty
    A[level_row(A, lv) + L_QTY] -= qty
    emit(A, E, EventKind.FILL, inst, side, A[o + O_FIRM], A[o + O_ID], A[o + O_CLID], price, qty, A[o + O_LEAVES],
         A[o + O_CUM], tid, 0, Liquidity.AUCTION, 0, 0)
    if A[o + O_LEAVES] == 0:
        unrest(A, E, h)
        free_order_slot(A, h)
    else:
        emit_level(A, E, inst, side, A[o + O_PRICE], lv)


@njit(cache=True, _nrt=False)
def modify(A, E, firm, order_id, price, qty):
    h = live_slot(A, order_id)
    if h == NONE:
        cancel_reject(A, E, -1, firm, order_id, RejectReason.UNKNOWN_ORDER)
        return
    o = order_row(A, h)
    inst = A[o + O_INST]
    reason = 0
    if A[o + O_FIRM] != firm:
        reason = RejectReason.NOT_YOUR_ORDER
    if reason == 0:
        reason = trading_reason(A, inst)
    if reason == 0:
        reason = size_price_reason(A, inst, price, qty)
    if reason == 0 and A[o + O_POST] == 1 and opposite_crosses(A, inst, A[o + O_SIDE], price):
        reason = RejectReason.POST_ONLY_WOULD_TAKE
    if reason:
        cancel_reject(A, E, inst, firm, order_id, reason)
    else:
        apply_modify(A, E, h, price, qty)


@njit(cache=True, _nrt=False)
def mass_cancel(A, E, firm, inst, reason):
    if inst != -1 and (inst < 0 or inst >= A[H_NINST]):
        reject(A, E, inst, 0, firm, 0, RejectReason.UNKNOWN_INSTRUMENT)
        return
    if firm < 0 or firm >= A[H_MAXF] or not reason_override_ok(reason):
        reject(A, E, inst, 0, firm, 0, RejectReason.INVALID_FIELD)
        return
    h = A[firm_row(A, firm) + F_HEAD]
    while h != NONE:
        o = order_row(A, h)
        nx = A[o + O_FNEXT]
        if inst == -1 or A[o + O_INST] == inst:
            cancel_order(A, E, h, reason if reason else MASS_CANCEL)
        h = nx


@njit(cache=True, _nrt=False)
def quote_reason(A, firm, inst, bid_price, bid_qty, ask_price, ask_qty):
    if inst < 0 or inst >= A[H_NINST]:
        return RejectReason.UNKNOWN_INSTRUMENT
    if firm < 0 or firm >= A[H_MAXF]:
        return RejectReason.INVALID_FIELD
    reason = trading_reason(A, inst)
    if reason:
        return reason
    if bid_qty < 0 or ask_qty < 0:
        return RejectReason.INVALID_QUANTITY
    if bid_qty > 0:
        reason = size_price_reason(A, inst, bid_price, bid_qty)
        if reason:
            return reason
    if ask_qty > 0:
        reason = size_price_reason(A, inst, ask_price, ask_qty)
        if reason:
            return reason
    if bid_qty > 0 and ask_qty > 0 and bid_price >= ask_price:
        return RejectReason.QUOTE_CROSSED
    return 0


@njit(cache=True, _nrt=False)
def quote_side(A, E, firm, quote_id, inst, side, price, qty):
    """Set the firm's quote on one side of inst: cancel, enter or modify its quote order."""
    cell = quote_cell(A, firm, inst, side)
    h = live_slot(A, A[cell])
    if qty == 0:
        if h != NONE:
            cancel_order(A, E, h, CancelReason.USER)
    elif h == NONE:
        A[cell] = A[H_NEXT_OID]
        h = accept(A, E, firm, quote_id, inst, side, price, qty, TimeInForce.GTC,
                   SelfTradePrevention.CANCEL_NEWEST, 0, 0)
        execute(A, E, h, CancelReason.IOC)
    else:
        apply_modify(A, E, h, price, qty)


@njit(cache=True, _nrt=False)
def quote_entry(A, E, firm, quote_id, inst, bid_price, bid_qty, ask_price, ask_qty):
    reason = quote_reason(A, firm, inst, bid_price, bid_qty, ask_price, ask_qty)
    if reason:
        reject(A, E, inst, 0, firm, quote_id, reason)
        return
    quote_side(A, E, firm, quote_id, inst, BUY, bid_price, bid_qty)
    quote_side(A, E, firm, quote_id, inst, SELL, ask_price, ask_qty)


@njit(cache=True, _nrt=False)
def status_event(A, E, inst, status):
    emit(A, E, EventKind.INSTRUMENT_STATUS, inst, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, status)


@njit(cache=True, _nrt=False)
def set_status(A, E, inst, status):
    """Halt (status HALTED) or Resume (status OPEN) an instrument."""
    if inst < 0 or inst >= A[H_NINST]:
        reject(A, E, inst, 0, -1, 0, RejectReason.UNKNOWN_INSTRUMENT)
        return
    x = inst_row(A, inst)
    if A[x + X_STATUS] == InstrumentStatus.CLOSED or A[H_NOW] < A[x + X_OPEN]:
        reject(A, E, inst, 0, -1, 0, RejectReason.INSTRUMENT_CLOSED)
    else:
        A[x + X_STATUS] = status
        status_event(A, E, inst, status)


@njit(cache=True, _nrt=False)
def close_instrument(A, E, inst):
    """Gate closure: cancel every resting order (EXPIRED), bids then asks, best first."""
    for side in range(2):
        lv = best_level(A, inst, side)
        while lv != NONE:
            cancel_order(A, E, A[level_row(A, lv) + L_HEAD], CancelReason.EXPIRED)
            lv = best_level(A, inst, side)
    A[inst_row(A, inst) + X_STATUS] = InstrumentStatus.CLOSED
    status_event(A, E, inst, InstrumentStatus.CLOSED)


@njit(cache=True, _nrt=False)
def advance_time(A, E, t):
    """Move the clock to t: GTD expiries in (expire_ts, order id) order, then due gate closures."""
    A[H_NOW] = t
    if not ((A[H_HN] > 0 and heap_top_expire(A) <= t) or t >= A[H_NEXT_CLOSE]):
        return
    while A[H_HN] > 0 and heap_top_expire(A) <= t:
        h = live_slot(A, heap_pop(A))
        if h != NONE:
            cancel_order(A, E, h, CancelReason.EXPIRED)
    if t >= A[H_NEXT_CLOSE]:
        nxt = INT64_MAX
        for i in range(A[H_NINST]):
            x = inst_row(A, i)
            if A[x + X_STATUS] != InstrumentStatus.CLOSED:
                if A[x + X_CLOSE] <= t:
                    close_instrument(A, E, i)
                elif A[x + X_CLOSE] < nxt:
                    nxt = A[x + X_CLOSE]
        A[H_NEXT_CLOSE] = nxt


@njit(cache=True, _nrt=False)
def process(A, E, kind, ts, firm, inst, side, ord_type, tif, post, stp, clid, order_id, price, qty, price2, qty2,
            expire, reason):
    """One command: advance time to ts if later, then the command itself."""
    if ts > A[H_NOW]:
        advance_time(A, E, ts)
    if kind == CommandKind.NEW_ORDER:
        new_order(A, E, firm, clid, inst, side, ord_type, price, qty, tif, post, stp, expire)
    elif kind == CommandKind.CANCEL:
        cancel(A, E, firm, order_id, reason)
    elif kind == CommandKind.MODIFY:
        modify(A, E, firm, order_id, price, qty)
    elif kind == CommandKind.MASS_QUOTE:
        quote_entry(A, E, firm, clid, inst, price, qty, price2, qty2)
    elif kind == CommandKind.MASS_CANCEL:
        mass_cancel(A, E, firm, inst, reason)
    elif kind == CommandKind.HALT:
        set_status(A, E, inst, InstrumentStatus.HALTED)
    elif kind == CommandKind.RESUME:
        set_status(A, E, inst, InstrumentStatus.OPEN)
    elif kind == CommandKind.AUCTION_FILL:
        auction_fill(A, E, order_id, price, qty)
