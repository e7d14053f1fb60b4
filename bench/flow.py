"""A deterministic, cancel-heavy order flow on one instrument, for benchmarks.

``make_flow(n, seed)`` returns ``n`` command records (``engine.records.COMMAND_DTYPE``)
on instrument 0, all of them valid, so an exchange accepts every new order and
assigns order ids 1, 2, 3, ... in flow order. The mix is roughly that of a real
market: about 40 % new GTC limit orders (a few of them crossing), 25 % cancels,
20 % modifies and 15 % IOC orders that cross. Prices are ticks around a
mean-reverting random-walk mid (2500 ticks), passive orders mostly a few ticks
behind the touch so the book stays deep (a couple of thousand live orders).

Cancels and modifies must name orders that are live in the exchange. The
generator therefore runs its own small price-time book (FIFO per level, self-trade
prevention CANCEL_NEWEST, exactly as docs/matching-rules.md), so it knows which
orders were filled and only cancels or modifies live ones: the exchange should
answer no cancel with CancelRejected. ``FlowStats`` reports what that model
expects (trades, traded quantity, self-trade cancels, ...), which the benchmarks
use to check an implementation really matched.

Makers are firms 0-5; aggressors (IOC and crossing limit orders) firms 6-7, so
self-trades are rare (a crossing order's rest meeting its own firm later).

``flow_ops(records)`` turns the records into peer-neutral tuples
``(op, side, price, qty, oid)`` (``OP_ADD``, ``OP_CANCEL``, ``OP_MODIFY``, ``OP_IOC``;
``oid`` is the id the exchange assigns to a new order, or the target of a cancel
or modify), for driving other matching engines. ``make_instruments()`` gives the
one instrument. Generation costs O(1) amortised Python work per message (a few
microseconds; ~10 s for 2 million), level scans aside.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.codes import CommandKind, OrderType, SelfTradePrevention, Side, TimeInForce
from engine.instruments import NS_PER_HOUR, Instrument
from engine.records import COMMAND_DTYPE

OP_ADD, OP_CANCEL, OP_MODIFY, OP_IOC = 0, 1, 2, 3
OP_NAMES = {OP_ADD: "add", OP_CANCEL: "cancel", OP_MODIFY: "modify", OP_IOC: "ioc"}

INSTRUMENT = 0
MID_START = 2500
MIN_PRICE, MAX_PRICE = 1, 1_000_000
MAX_QTY = 1_000_000
TS_START = 1_000_000_000  # 1 s after the epoch; the instrument opens at 0
TS_STEP = 1000  # ns between messages
MAKER_FIRMS = 6  # firms 0..5 rest passive orders
TAKER_FIRMS = (6, 7)  # IOC and crossing orders
TARGET_LIVE = 2000  # the cancel rate leans towards keeping about this many orders live


def make_instruments() -> list[Instrument]:
    """The single benchmark instrument: band 1..1_000_000, increment 1, always open."""
    return [
        Instrument(
            instrument_id=INSTRUMENT,
            accelerator="H100",
            region="US-EAST",
            service_class="FIRM",
            delivery_start_ns=1000 * NS_PER_HOUR,
            open_ns=0,
            close_ns=2**62,
            min_price=MIN_PRICE,
            max_price=MAX_PRICE,
            price_increment=1,
            max_order_qty=MAX_QTY,
            protection_ticks=1000,
        )
    ]


@dataclass
class FlowStats:
    """What the generator's own book model expects an exchange to do with the flow."""

    messages: int = 0
    adds: int = 0  # new GTC limit orders
    crossing_adds: int = 0  # of which priced through the opposite touch
    cancels: int = 0
    modifies: int = 0
    modifies_in_place: int = 0  # same price, lower quantity: keeps queue position
    iocs: int = 0
    trades: int = 0  # matches (one maker fill, one taker fill, one Trade each)
    traded_qty: int = 0
    stp_cancels: int = 0  # incoming orders cancelled by self-trade prevention
    cancels_of_dead_orders: int = 0  # cancels expected to be answered with CancelRejected
    live_at_end: int = 0
    max_live: int = 0

    def summary(self) -> str:
        n = max(self.messages, 1)
        return (
            f"{self.messages} messages: adds {self.adds / n:.1%} (crossing {self.crossing_adds}), "
            f"cancels {self.cancels / n:.1%}, modifies {self.modifies / n:.1%} "
            f"(in place {self.modifies_in_place}), IOC {self.iocs / n:.1%}; "
            f"expected trades {self.trades}, traded qty {self.traded_qty}, STP cancels {self.stp_cancels}, "
            f"cancel rejects {self.cancels_of_dead_orders} ({self.cancels_of_dead_orders / n:.3%}), "
            f"live at end {self.live_at_end}, max live {self.max_live}"
        )


class _BookModel:
    """Price-time book just good enough to know which orders are live.

    Levels are deques of (order_id, version) with lazy deletion: a cancelled or
    re-priced order leaves a stale entry that is skipped when it reaches the head.
    """

    def __init__(self) -> None:
        self.orders: dict[int, list] = {}  # oid -> [side, price, leaves, firm, version]
        self.queues: tuple[dict, dict] = ({}, {})  # side -> price -> deque[(oid, version)]
        self.level_n: tuple[dict, dict] = ({}, {})  # side -> price -> live orders there
        self.side_n = [0, 0]
        self.best: list = [None, None]  # best bid, best ask
        self.live: list[int] = []  # live order ids, for uniform random picks
        self.pos: dict[int, int] = {}  # oid -> index in self.live
        self.trades = 0
        self.traded_qty = 0
        self.stp = 0

    # ------------------------------------------------------------ resting
    def rest(self, oid: int, side: int, price: int, leaves: int, firm: int, version: int) -> None:
        self.orders[oid] = [side, price, leaves, firm, version]
        q = self.queues[side].get(price)
        if q is None:
            q = self.queues[side][price] = deque()
        q.append((oid, version))
        ln = self.level_n[side]
        ln[price] = ln.get(price, 0) + 1
        self.side_n[side] += 1
        best = self.best[side]
        if best is None or (price > best if side == Side.BUY else price < best):
            self.best[side] = price
        self.pos[oid] = len(self.live)
        self.live.append(oid)

    def unrest(self, oid: int) -> list:
        """Take a live order out of the book (its queue entry goes stale)."""
        o = self.orders.pop(oid)
        side, price = o[0], o[1]
        ln = self.level_n[side]
        left = ln[price] - 1
        self.side_n[side] -= 1
        if left:
            ln[price] = left
        else:
            del ln[price]
            del self.queues[side][price]
            if self.best[side] == price:
                self._advance_best(side, price)
        i = self.pos.pop(oid)
        last = self.live.pop()
        if last != oid:
            self.live[i] = last
            self.pos[last] = i
        return o

    def _advance_best(self, side: int, price: int) -> None:
        if not self.side_n[side]:
            self.best[side] = None
            return
        ln = self.level_n[side]
        step = -1 if side == Side.BUY else 1
        p = price + step
        while p not in ln:
            p += step
        self.best[side] = p

    # ------------------------------------------------------------ matching
    def match(self, side: int, limit: int, qty: int, firm: int) -> tuple[int, bool]:
        """Match an incoming order; returns (open quantity left, cancelled by STP)."""
        opp = 1 - side
        queues = self.queues[opp]
        orders = self.orders
        while qty > 0:
            best = self.best[opp]
            if best is None or (best > limit if side == Side.BUY else best < limit):
                break
            q = queues[best]
            while True:  # skip stale entries
                oid, ver = q[0]
                o = orders.get(oid)
                if o is not None and o[4] == ver and o[1] == best and o[0] == opp:
                    break
                q.popleft()
            if o[3] == firm:  # self-trade, stp CANCEL_NEWEST: the incoming order dies
                self.stp += 1
                return qty, True
            x = qty if qty < o[2] else o[2]
            qty -= x
            o[2] -= x
            self.trades += 1
            self.traded_qty += x
            if o[2] == 0:
                q.popleft()
                self.unrest(oid)
        return qty, False


def generate_flow(n_messages: int = 2_000_000, seed: int = 1) -> tuple[np.ndarray, FlowStats]:
    """The flow's records and the statistics its book model expects."""
    rng = np.random.default_rng(seed)
    n = n_messages
    u_op = rng.random(n).tolist()
    u_pick = rng.random(n).tolist()
    u_mod = rng.random(n).tolist()
    side_draw = rng.integers(0, 2, n).tolist()
    depth_draw = (rng.geometric(0.18, n) - 1).tolist()  # ticks behind the touch, mean ~4.5
    cross_draw = rng.integers(0, 3, n).tolist()  # ticks through the touch for aggressors
    qty_draw = rng.integers(1, 101, n).tolist()
    maker_firm = rng.integers(0, MAKER_FIRMS, n).tolist()
    taker_firm = rng.choice(np.array(TAKER_FIRMS), n).tolist()
    walk = rng.random(n).tolist()

    kind_c = [0] * n
    side_c = [0] * n
    tif_c = [0] * n
    firm_c = [0] * n
    coid_c = [0] * n
    oid_c = [0] * n
    price_c = [0] * n
    qty_c = [0] * n

    book = _BookModel()
    stats = FlowStats(messages=n)
    mid = MID_START
    next_oid = 1
    live = book.live
    orders = book.orders
    new_kind, cancel_kind, modify_kind = int(CommandKind.NEW_ORDER), int(CommandKind.CANCEL), int(CommandKind.MODIFY)
    gtc, ioc = int(TimeInForce.GTC), int(TimeInForce.IOC)

    for i in range(n):
        w = walk[i]
        if w < 0.02:  # mean-reverting random walk of the mid
            mid += 1 if w < 0.01 - (mid - MID_START) * 0.0001 else -1
        nlive = len(live)
        p_cancel = 0.25 * min(1.6, max(0.4, nlive / TARGET_LIVE)) if nlive else 0.0
        u = u_op[i]
        if u < 0.15:
            op = OP_IOC
        elif u < 0.35:
            op = OP_MODIFY if nlive else OP_ADD
        elif u < 0.35 + p_cancel:
            op = OP_CANCEL
        else:
            op = OP_ADD
        bb, ba = book.best

        if op in (OP_ADD, OP_IOC):
            side = side_draw[i]
            crossing = op == OP_IOC or u_mod[i] < 0.05
            qty = (qty_draw[i] + 1) // 2 if crossing else qty_draw[i]  # aggressors are smaller
            if crossing:
                firm = taker_firm[i]
                if side == Side.BUY:
                    price = ba + cross_draw[i] if ba is not None else mid
                else:
                    price = bb - cross_draw[i] if bb is not None else mid
            else:
                firm = maker_firm[i]
                if side == Side.BUY:
                    price = mid - 1 - depth_draw[i]
                    if ba is not None and price >= ba:
                        price = ba - 1
                else:
                    price = mid + 1 + depth_draw[i]
                    if bb is not None and price <= bb:
                        price = bb + 1
            price = min(max(price, MIN_PRICE), MAX_PRICE)
            oid = next_oid
            next_oid += 1
            kind_c[i], side_c[i], firm_c[i], coid_c[i], price_c[i], qty_c[i] = new_kind, side, firm, oid, price, qty
            left, killed = book.match(side, price, qty, firm)
            if op == OP_IOC:
                tif_c[i] = ioc
                stats.iocs += 1
            else:
                tif_c[i] = gtc
                stats.adds += 1
                stats.crossing_adds += crossing
                if left and not killed:
                    book.rest(oid, side, price, left, firm, 0)
        elif op == OP_CANCEL:
            oid = live[int(u_pick[i] * nlive)]
            o = book.unrest(oid)
            kind_c[i], firm_c[i], oid_c[i] = cancel_kind, o[3], oid
            stats.cancels += 1
        else:  # modify
            oid = live[int(u_pick[i] * nlive)]
            o = orders[oid]
            side, price, leaves, firm, version = o
            v = u_mod[i]
            if v < 0.5 and leaves > 1:  # reduce in place, keeps priority
                qty = leaves - 1 - int(u_pick[(i + 1) % n] * (leaves - 1))
                o[2] = qty
                stats.modifies_in_place += 1
            else:
                if v < 0.75:  # re-price by a few ticks, never through the opposite touch
                    step = 1 + cross_draw[i]
                    price = price + step if side_draw[i] else price - step
                    if side == Side.BUY and ba is not None and price >= ba:
                        price = ba - 1
                    if side == Side.SELL and bb is not None and price <= bb:
                        price = bb + 1
                    price = min(max(price, MIN_PRICE), MAX_PRICE)
                    qty = qty_draw[i]
                else:  # increase quantity: loses priority
                    qty = leaves + qty_draw[i]
                if price == o[1] and qty <= leaves:
                    o[2] = qty
                    stats.modifies_in_place += 1
                else:
                    book.unrest(oid)
                    book.rest(oid, side, price, qty, firm, version + 1)
            kind_c[i], firm_c[i], oid_c[i], price_c[i], qty_c[i] = modify_kind, firm, oid, price, qty
            stats.modifies += 1
        if len(live) > stats.max_live:
            stats.max_live = len(live)

    rec = np.zeros(n, dtype=COMMAND_DTYPE)
    rec["kind"] = kind_c
    rec["side"] = side_c
    rec["ord_type"] = int(OrderType.LIMIT)
    rec["tif"] = tif_c
    rec["stp"] = int(SelfTradePrevention.CANCEL_NEWEST)
    rec["instrument"] = np.where(np.array(kind_c) == new_kind, INSTRUMENT, -1)
    rec["firm"] = firm_c
    rec["ts"] = TS_START + TS_STEP * np.arange(n, dtype=np.int64)
    rec["client_order_id"] = coid_c
    rec["order_id"] = oid_c
    rec["price"] = price_c
    rec["qty"] = qty_c
    stats.trades, stats.traded_qty, stats.stp_cancels = book.trades, book.traded_qty, book.stp
    stats.live_at_end = len(live)
    return rec, stats


def make_flow(n_messages: int = 2_000_000, seed: int = 1) -> np.ndarray:
    """``n_messages`` COMMAND_DTYPE records on instrument 0 (see the module docstring)."""
    return generate_flow(n_messages, seed)[0]


def flow_ops(records: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Peer-neutral form: ``(op, side, price, qty, oid)`` per record.

    For OP_ADD / OP_IOC, ``oid`` is the id the exchange assigns (new orders are
    numbered 1, 2, ... in flow order, all being accepted); for OP_CANCEL /
    OP_MODIFY it is the target order. ``side`` is 0 buy / 1 sell; for a cancel
    side, price and qty are 0; for a modify price and qty are the new values.
    """
    out = []
    next_oid = 1
    new_kind, cancel_kind = int(CommandKind.NEW_ORDER), int(CommandKind.CANCEL)
    ioc = int(TimeInForce.IOC)
    cols = zip(records["kind"].tolist(), records["side"].tolist(), records["tif"].tolist(),
               records["price"].tolist(), records["qty"].tolist(), records["order_id"].tolist(), strict=True)
    for kind, side, tif, price, qty, oid in cols:
        if kind == new_kind:
            out.append((OP_IOC if tif == ioc else OP_ADD, side, price, qty, next_oid))
            next_oid += 1
        elif kind == cancel_kind:
            out.append((OP_CANCEL, 0, 0, 0, oid))
        else:
            out.append((OP_MODIFY, 0, price, qty, oid))
    return out


if __name__ == "__main__":  # pragma: no cover - quick look at a flow
    import sys
    import time

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    t0 = time.perf_counter()
    _, st = generate_flow(count)
    print(f"generated in {time.perf_counter() - t0:.2f} s")
    print(st.summary())
