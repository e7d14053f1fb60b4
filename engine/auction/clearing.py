"""Clearing of the call auction: winner determination, uniform prices, individual rationality.

``clear(instruments, bids, offers, divisibles, time_limit_s, mip_gap) -> AuctionResult`` is a
pure function of its arguments (no clock, no randomness, no I/O; HiGHS runs single-threaded
with its fixed seed). The caller measures wall time. The only source of non-determinism is
``time_limit_s``: if a solve hits it, the result depends on the machine's speed (the result
says so: ``proven_optimal`` is False).

Formulation (units in ``engine.auction.orders``; GPU quantities, ticks, all integers):

0. **A start for winner determination** (``_Wdp.dive``, used in step 1): the LP relaxation, then the small MILP
   over the package columns it leaves fractional (the others fixed), handed to HiGHS as its first
   incumbent. When the LP does not finish in time, the bound comes from a Lagrangian relaxation of
   the balance rows (``_lagrangian``: a few dozen price adjustments in numpy) and the start is the
   best of three greedy allocations (``_greedy``): at the book's prices without and with package
   offers, and at the Lagrangian's.
   So a time limit always leaves a decision and a bound.

1. **Winner determination** (MILP, maximise surplus)::

       max  sum_{b,a} limit[b,a] x[b,a] - sum_o min_total[o] y[o]
            + sum_{div bids j} L[j] d[j] - sum_{div offers k} L[k] e[k]
       s.t. for every instrument i (balance, GPUs bought == GPUs sold):
            sum_{b,a} q[b,a,i] x[b,a] + sum_{j on i} d[j] = sum_o q[o,i] y[o] + sum_{k on i} e[k]
            sum_a x[b,a] <= 1                  (exclusive group)
            x, y binary (all-or-none);  0 <= d[j] <= Q[j], 0 <= e[k] <= Q[k]

   Balance is an equality (not ``bought <= sold``): an accepted all-or-none offer is
   delivered and paid in full, so every GPU sold must be bought for money to balance.

2. **Prices for a package decision** (x, y fixed). Per instrument the divisible orders must
   absorb the packages' net supply ``S[i]``; the uniform-price rule admits exactly the prices
   ``p[i]`` in an interval ``[lo[i], hi[i]]`` (computed exactly from the divisible curves,
   intersected with the price band; its ends are limit prices or band edges, so on the grid).
   Prices are integer multiples of the price increment (``p[i] = inc[i] * k[i]``, k integer)
   and must make every accepted package individually rational::

       accepted bid alternative:  sum q[i] p[i] <= limit        accepted offer:  sum q[i] p[i] >= min_total

   Among such prices (a small MIP over the instruments that packages touch):
   (a) minimise (to within ``mip_gap``) the lost surplus of rejected packages,
       ``sum_b max(0, max_a limit[b,a] - cost[b,a](p))`` plus
       ``sum_o max(0, revenue[o](p) - min_total[o])`` (paradoxically rejected orders);
   (b) then, keeping that loss, minimise ``sum_i |k[i] - mid[i]|`` where ``mid[i]`` is the middle
       of the instrument's price range (``[lo, hi]`` tightened by bound propagation over the
       accepted packages, ``(k_lo + k_hi) // 2``, rounded toward buyers), or, on an instrument
       that accepted packages name, the middle between their average limits per GPU-hour on the
       buy and the sell side, clipped into that range (so a block's hours get like prices).
   Instruments no package touches get ``mid`` directly.
   Divisible fills at ``p``: better than the price -> full, worse -> none; at the price the
   marginal orders trade the most volume that balances, in ascending order_id per side.

3. **Individual rationality is hard.** If the decision of step 1 admits no prices, a no-good
   cut excluding exactly that decision is added and step 1 re-solved; the first admissible
   decision is the best admissible one (admissibility depends only on the package decision,
   since by LP duality every optimal divisible fill is compatible with every admissible
   price). When ``exact_rounds`` such rounds or half the time budget are used up, the last
   decision is repaired, as EUPHEMIA does (``_repair``): the packages paradoxically accepted
   in an elastic price LP (positive violation) are dropped, a greedy removal makes the rest
   admissible by construction, and the same MILP restricted to the columns that removal dropped
   adds back the best of them (a small solve that keeps the removal's result), until the decision
   admits prices (the empty decision always does); if a greedy allocation made admissible the
   same way has more surplus, it is taken instead (``_safety_net``: at the book's prices without
   and with package offers, and at the Lagrangian prices when the repaired decision is below 90 %
   of the bound). The gap is
   measured against the first solve's upper bound (no admissible decision can beat it) and reported
   as proven optimal when within ``mip_gap``. ``ir_cost`` = surplus of the first (unconstrained)
   solution minus the final surplus.

Money balances to the tick: every fill pays ``qty * price[instrument]`` and per instrument
GPUs bought == GPUs sold.

Cost: building the MILP is O(total legs) in Python; the start is one LP and a small MILP (or
O(40 x legs) numpy for the Lagrangian and O(columns log columns) for the greedy allocations);
solving is NP-hard in general (HiGHS branch and cut; the whole clearing shares the budget
``time_limit_s``, see ``clear``); each no-good round adds one dense row over the package columns.
Step 2 is O(orders log orders) for the intervals plus a MIP over at most the touched
instruments. The repair is O(steps x (elastic LP + step 2's interval check)).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from enum import IntEnum

import highspy
import msgspec
import numpy as np

from engine.auction.orders import (
    DivisibleBid,
    DivisibleOffer,
    PackageBid,
    PackageOffer,
    validate_divisible,
    validate_package_bid,
    validate_package_offer,
)
from engine.codes import AuctionReject, AuctionStatus, Outcome
from engine.instruments import Instrument

_INF = highspy.kHighsInf
_PROPAGATION_ROUNDS = 8  # bound propagation in _box: rounds at most
_OPTIMAL = highspy.HighsModelStatus.kOptimal
_INFEASIBLE = highspy.HighsModelStatus.kInfeasible


class OrderKind(IntEnum):
    PACKAGE_BID = 1
    PACKAGE_OFFER = 2
    DIVISIBLE_BID = 3
    DIVISIBLE_OFFER = 4



class InstrumentClearing(msgspec.Struct, frozen=True):
    instrument: int
    price: int  # ticks per GPU-hour
    volume: int  # GPUs bought (== GPUs sold)


class OrderOutcome(msgspec.Struct, frozen=True):
    kind: OrderKind
    order_id: int
    firm: int
    outcome: Outcome
    reject_reason: AuctionReject  # NONE unless outcome is INVALID
    alternative: int  # accepted alternative (bids), or the best one at the prices when rejected; -1 if none
    limit: int  # bid: the alternative's limit; offer: min_total; divisible: limit price
    bundle_price: int  # the alternative's / block's cost at the prices; divisible: the price
    filled_qty: int  # divisible only: GPUs filled


class Fill(msgspec.Struct, frozen=True):
    kind: OrderKind
    order_id: int
    firm: int
    instrument: int
    buy: bool
    qty: int  # GPUs
    price: int  # ticks per GPU-hour
    amount: int  # qty * price ticks; paid by buyers, received by sellers


class AuctionResult(msgspec.Struct, frozen=True):
    status: AuctionStatus
    prices: list[InstrumentClearing]  # every instrument some valid order names, ascending id
    outcomes: list[OrderOutcome]  # bids, then offers, then divisibles, in input order
    fills: list[Fill]
    total_surplus: int  # sum accepted limits - accepted minimums + divisible surplus (ticks)
    unconstrained_surplus: int  # surplus of the first winner-determination solution (may be inadmissible), >= total
    ir_cost: int  # unconstrained_surplus - total_surplus: what individual rationality cost
    proven_optimal: bool
    mip_gap: float  # relative gap HiGHS reported for the final winner-determination solve
    rounds: int  # winner-determination solves
    accepted_bids: int
    accepted_offers: int
    paradoxically_rejected: int
    prb_loss: int  # sum of the surplus paradoxically rejected packages would have had at the prices (exact)


class Decision(msgspec.Struct, frozen=True, array_like=True):
    """What one clearing decided: enough to rebuild its ``AuctionResult`` without solving (``result_of``).

    A solve that reaches its time limit depends on the machine's speed; the market journals the
    decision so that a replay reproduces the auction exactly (``engine.auction.market``)."""

    accepted: list[tuple[int, int, int]]  # (OrderKind, bid_id / offer_id, alternative) of accepted packages
    prices: list[tuple[int, int]]  # (instrument, price) for every instrument of the result
    proven_optimal: bool
    mip_gap: float
    unconstrained_surplus: int
    rounds: int


def decision_of(result: AuctionResult) -> Decision:
    """The decision behind a result. O(orders)."""
    accepted = [(int(o.kind), o.order_id, o.alternative) for o in result.outcomes
                if o.kind in (OrderKind.PACKAGE_BID, OrderKind.PACKAGE_OFFER) and o.outcome == Outcome.ACCEPTED]
    return Decision(accepted, [(c.instrument, c.price) for c in result.prices], result.proven_optimal,
                    result.mip_gap, result.unconstrained_surplus, result.rounds)


def result_of(
    instruments: Sequence[Instrument],
    bids: Sequence[PackageBid],
    offers: Sequence[PackageOffer],
    divisibles: Sequence[DivisibleBid | DivisibleOffer],
    decision: Decision,
) -> AuctionResult:
    """The result ``clear`` gave when it made ``decision`` on these orders, rebuilt without a solver.

    Raises ``ValueError`` when the decision does not fit the orders (an instrument without a price,
    prices the divisible orders cannot fill at). O(orders + legs)."""
    pb = _Problem(instruments, bids, offers, divisibles)
    accepted = {(kind, oid): alt for kind, oid, alt in decision.accepted}
    chosen = sorted(
        [cols[accepted[(OrderKind.PACKAGE_BID, pb.bids[n].bid_id)]] for n, cols in pb.bid_cols.items()
         if (OrderKind.PACKAGE_BID, pb.bids[n].bid_id) in accepted]
        + [c for n, c in pb.offer_col.items() if (OrderKind.PACKAGE_OFFER, pb.offers[n].offer_id) in accepted])
    prices = dict(decision.prices)
    if any(i not in prices for i in pb.active):
        raise ValueError("the decision has no price for an instrument of the orders")
    net = _net_supply(pb, chosen)
    try:
        fills = _divisible_fills(pb, prices, net)
    except AssertionError:
        raise ValueError("the divisible orders cannot fill at the decision's prices") from None
    total = _surplus(pb, chosen, fills)
    return _result(pb, chosen, _Pricing(prices, net, 0), fills, total, decision.unconstrained_surplus,
                   decision.proven_optimal, decision.mip_gap, decision.rounds)


# ------------------------------------------------------------------ HiGHS helpers


def _new_highs(time_limit_s: float, mip_gap: float) -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("time_limit", max(0.0, float(time_limit_s)))  # HiGHS refuses a negative one (then: none)
    h.setOptionValue("mip_rel_gap", float(mip_gap))
    return h


def _add_rows(h: highspy.Highs, rows: list[tuple[float, float, list[int], list[float]]]) -> None:
    if not rows:
        return
    lo = np.array([r[0] for r in rows], dtype=np.float64)
    hi = np.array([r[1] for r in rows], dtype=np.float64)
    starts = np.zeros(len(rows), dtype=np.int32)
    idx: list[int] = []
    val: list[float] = []
    for n, r in enumerate(rows):
        starts[n] = len(idx)
        idx.extend(r[2])
        val.extend(r[3])
    h.addRows(len(rows), lo, hi, len(idx), starts, np.array(idx, dtype=np.int32), np.array(val, dtype=np.float64))


def _add_cols(h: highspy.Highs, cost: list[float], lo: list[float], hi: list[float], integer: list[bool]) -> None:
    n = len(cost)
    if n == 0:
        return
    first = h.getNumCol()
    h.addVars(n, np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64))
    ids = np.arange(first, first + n, dtype=np.int32)
    h.changeColsCost(n, ids, np.array(cost, dtype=np.float64))
    ints = np.array([1 if b else 0 for b in integer], dtype=np.uint8)
    h.changeColsIntegrality(n, ids, ints)


def _leg_positions(pb: _Problem, cols: np.ndarray) -> np.ndarray:
    """Positions in the flat leg arrays of the legs of the columns ``cols``, column by column. O(their legs)."""
    return _segments(pb, cols)[0]


def _segments(pb: _Problem, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The legs of the columns ``cols`` -> (their positions in the flat leg arrays, column by column;
    legs per column; where each column's legs start in the first array). O(their legs)."""
    lens = pb.leg_start[cols + 1] - pb.leg_start[cols]
    ends = np.cumsum(lens)
    at = np.repeat(pb.leg_start[cols] - ends + lens, lens) + np.arange(int(ends[-1]) if len(ends) else 0)
    return at, lens, ends - lens


def _add_leg_rows(h: highspy.Highs, pb: _Problem, cols: np.ndarray, kpos: np.ndarray, lo: np.ndarray,
                  hi: np.ndarray, sign: np.ndarray | None = None, lead: np.ndarray | None = None) -> None:
    """One row per column c of ``cols``: ``lo <= [r_lead +] sign * sum_legs qty * inc * k[inst] <= hi``,
    ``k`` at the HiGHS columns ``kpos[row of the instrument]``, ``r_lead`` (coefficient 1) only if
    ``lead`` is given. O(legs of ``cols``) in numpy."""
    if not len(cols):
        return
    at, lens, starts = _segments(pb, cols)
    coef = (pb.leg_qty[at] * pb.inc[pb.leg_row[at]]).astype(np.float64)
    if sign is not None:
        coef *= np.repeat(sign, lens)
    index = kpos[pb.leg_row[at]]
    if lead is not None:  # the lead column first in each row
        width = lens + 1
        starts = np.concatenate([[0], np.cumsum(width)[:-1]])
        full_i = np.empty(int(width.sum()), dtype=np.int64)
        full_v = np.empty(len(full_i))
        full_i[starts] = lead
        full_v[starts] = 1.0
        rest = np.ones(len(full_i), dtype=bool)
        rest[starts] = False
        full_i[rest] = index
        full_v[rest] = coef
        index, coef = full_i, full_v
    h.addRows(len(cols), np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64), len(index),
              starts.astype(np.int32), index.astype(np.int32), coef)


# ------------------------------------------------------------------ prepared problem


class _Problem:
    """Valid orders flattened into columns. Package column c: legs[c] = [(instrument, qty)], value[c].

    The same columns also as flat numpy arrays (``leg_*``, ``value``, ``owner``, ``div_*``) for the
    vectorised passes (pricing models, the Lagrangian, the greedy allocations); built once, O(legs)."""

    def __init__(self, instruments, bids, offers, divisibles):
        self.inst = {i.instrument_id: i for i in instruments}
        self.bids: list[PackageBid] = list(bids)
        self.offers: list[PackageOffer] = list(offers)
        self.divs: list[DivisibleBid | DivisibleOffer] = list(divisibles)
        # package columns
        self.col_legs: list[list[tuple[int, int]]] = []
        self.col_value: list[int] = []  # +limit for bid alternatives, -min_total for offers
        self.col_sign: list[int] = []  # +1 buys, -1 sells
        self.bid_cols: dict[int, list[int]] = {}  # index into self.bids -> its alternative columns
        self.offer_col: dict[int, int] = {}
        self.reject: dict[tuple[int, int], AuctionReject] = {}  # (kind, input index) -> reason
        for n in self._admit(self.bids, validate_package_bid, lambda b: b.bid_id,
                             lambda b: OrderKind.PACKAGE_BID):
            b = self.bids[n]
            cols = []
            for alt in b.alternatives:
                cols.append(len(self.col_legs))
                self.col_legs.append([(leg.instrument, leg.qty) for leg in alt.legs])
                self.col_value.append(alt.limit)
                self.col_sign.append(1)
            self.bid_cols[n] = cols
        for n in self._admit(self.offers, validate_package_offer, lambda o: o.offer_id,
                             lambda o: OrderKind.PACKAGE_OFFER):
            o = self.offers[n]
            self.offer_col[n] = len(self.col_legs)
            self.col_legs.append([(leg.instrument, leg.qty) for leg in o.legs])
            self.col_value.append(-o.min_total)
            self.col_sign.append(-1)
        self.n_pkg = len(self.col_legs)
        # divisible orders: per instrument, (limit, qty, order_id, input index), bids and offers apart
        self.div_valid: list[int] = self._admit(
            self.divs, validate_divisible, lambda d: d.order_id,
            lambda d: OrderKind.DIVISIBLE_BID if isinstance(d, DivisibleBid) else OrderKind.DIVISIBLE_OFFER)
        active: set[int] = set()
        for legs in self.col_legs:
            active.update(i for i, _ in legs)
        for n in self.div_valid:
            active.add(self.divs[n].instrument)
        self.active = sorted(active)
        # instruments something is offered in / wanted in (to tell a bidder that nothing was offered)
        self.offered = {i for c in range(self.n_pkg) if self.col_sign[c] < 0 for i, _ in self.col_legs[c]} | {
            self.divs[n].instrument for n in self.div_valid if isinstance(self.divs[n], DivisibleOffer)}
        self.wanted = {i for c in range(self.n_pkg) if self.col_sign[c] > 0 for i, _ in self.col_legs[c]} | {
            self.divs[n].instrument for n in self.div_valid if isinstance(self.divs[n], DivisibleBid)}
        self.row_of = {i: r for r, i in enumerate(self.active)}
        self.div_bids: dict[int, list[tuple[int, int, int, int]]] = {i: [] for i in self.active}
        self.div_offers: dict[int, list[tuple[int, int, int, int]]] = {i: [] for i in self.active}
        for n in self.div_valid:
            d = self.divs[n]
            side = self.div_bids if isinstance(d, DivisibleBid) else self.div_offers
            side[d.instrument].append((d.limit, d.qty, d.order_id, n))
        self.curves = {i: _Curve(self.div_bids[i], self.div_offers[i], self.inst[i].min_price,
                                 self.inst[i].max_price) for i in self.active}
        # the package columns' legs as flat arrays (column c's legs at leg_start[c]:leg_start[c+1])
        lens = [len(legs) for legs in self.col_legs]
        self.leg_start = np.concatenate([[0], np.cumsum(lens, dtype=np.int64)])
        self.leg_col = np.repeat(np.arange(self.n_pkg), lens)
        self.leg_row = np.array([self.row_of[i] for legs in self.col_legs for i, _ in legs], dtype=np.int64)
        self.leg_qty = np.array([q for legs in self.col_legs for _, q in legs], dtype=np.int64)
        self.value = np.array(self.col_value, dtype=np.int64)  # col_value as an array, for numpy passes
        self.inc = np.array([self.inst[i].price_increment for i in self.active], dtype=np.int64)
        self.owner = np.full(self.n_pkg, -1, dtype=np.int64)  # the bid of a bid column, -1 for offers
        for n, cols in self.bid_cols.items():
            self.owner[cols] = n
        self.leg_demand = np.where(self.owner[self.leg_col] >= 0, self.leg_qty, -self.leg_qty)  # bought > 0
        # the valid divisible orders as arrays: +1 bids / -1 offers, limit, qty, instrument row
        self.div_sign = np.array([1 if isinstance(self.divs[n], DivisibleBid) else -1 for n in self.div_valid],
                                 dtype=np.int64)
        self.div_limit = np.array([self.divs[n].limit for n in self.div_valid], dtype=np.int64)
        self.div_qty = np.array([self.divs[n].qty for n in self.div_valid], dtype=np.int64)
        self.div_row = np.array([self.row_of[self.divs[n].instrument] for n in self.div_valid], dtype=np.int64)

    def _admit(self, orders, validate, id_of, kind_of) -> list[int]:
        """Positions of the orders that validate and whose id was not seen before; the others get
        their reason in ``reject``. O(orders)."""
        seen: set[int] = set()
        valid = []
        for n, order in enumerate(orders):
            r = validate(order, self.inst)
            if not r and id_of(order) in seen:
                r = AuctionReject.DUPLICATE_ID
            seen.add(id_of(order))
            if r:
                self.reject[(kind_of(order), n)] = r
            else:
                valid.append(n)
        return valid


class _Curve:
    """Divisible demand and supply of one instrument inside its price band, as the step functions
    that decide which net supply it absorbs at which price (exact integers).

    g(p) = D_max(p) - S_min(p) (bids with L >= p, minus offers with L < p) is the most the divisible
    orders can net-buy at p; h(p) = D_min(p) - S_max(p) the least. Both are non-increasing step
    functions with steps at limit prices, so they are kept at the candidate prices only (the limits
    inside the band and its two edges): O(orders log orders) to build, O(log limits) per query."""

    def __init__(self, bids, offers, pmin: int, pmax: int):
        bl = np.array(sorted(b[0] for b in bids), dtype=np.int64)
        bp = np.concatenate([[0], np.cumsum(np.array([q for _, q in sorted((b[0], b[1]) for b in bids)],
                                                     dtype=np.int64))])
        ol = np.array(sorted(o[0] for o in offers), dtype=np.int64)
        op = np.concatenate([[0], np.cumsum(np.array([q for _, q in sorted((o[0], o[1]) for o in offers)],
                                                     dtype=np.int64))])
        self.offered = int(op[-1])  # all divisible offers' GPUs: the most net demand they can cover
        cand = np.array(sorted({pmin, pmax} | {int(x) for x in bl if pmin <= x <= pmax}
                               | {int(x) for x in ol if pmin <= x <= pmax}), dtype=np.int64)
        tb = bp[-1]
        g = (tb - bp[np.searchsorted(bl, cand, "left")]) - op[np.searchsorted(ol, cand, "left")]
        h = (tb - bp[np.searchsorted(bl, cand, "right")]) - op[np.searchsorted(ol, cand, "right")]
        self.cand: list[int] = cand.tolist()
        self.neg_g: list[int] = (-g).tolist()  # non-decreasing, for bisect
        self.neg_h: list[int] = (-h).tolist()

    def interval(self, net_supply: int) -> tuple[int, int] | None:
        """The prices in the band at which divisible fills can absorb ``net_supply`` GPUs, ``(lo, hi)``,
        or None. Feasible at p iff h(p) <= net_supply <= g(p); the ends are candidate prices. O(log limits)."""
        hi = bisect_right(self.neg_g, -net_supply) - 1  # the last candidate with g >= net_supply
        lo = bisect_left(self.neg_h, -net_supply)  # the first with h <= net_supply
        if hi < 0 or lo >= len(self.cand) or lo > hi:
            return None
        return self.cand[lo], self.cand[hi]


# ------------------------------------------------------------------ winner determination


class Milp(msgspec.Struct, frozen=True):
    """The winner-determination MILP as plain arrays (maximise ``cost @ x``), rows in CSR form.

    Columns: the package columns (binary) then the valid divisible orders (continuous, in
    ``div_orders`` order). Rows: one balance row per active instrument (== 0), then one
    exclusive-group row per bid with several alternatives (<= 1). The single definition that
    HiGHS solves and that a second solver can be given (the benchmark hands it to CBC).
    """

    cost: np.ndarray  # float64 per column
    col_hi: np.ndarray  # float64 per column (lower bounds are all 0)
    integer: np.ndarray  # uint8 per column
    row_lo: np.ndarray
    row_hi: np.ndarray
    starts: np.ndarray  # int32 CSR row starts (len = rows + 1)
    index: np.ndarray  # int32 column of each nonzero
    value: np.ndarray  # float64 coefficient of each nonzero
    div_orders: list[int]  # input index into the divisibles of each continuous column


def winner_determination_milp(
    instruments: Sequence[Instrument],
    bids: Sequence[PackageBid],
    offers: Sequence[PackageOffer],
    divisibles: Sequence[DivisibleBid | DivisibleOffer],
) -> Milp:
    """The MILP ``clear`` solves first, for the valid orders among these (for a second solver)."""
    return _milp(_Problem(instruments, bids, offers, divisibles))


def _milp(pb: _Problem) -> Milp:
    """Build the MILP of step 1 (module docstring). O(total legs + divisibles)."""
    div_orders = list(pb.div_valid)
    div_buy = np.array([isinstance(pb.divs[n], DivisibleBid) for n in div_orders], dtype=bool)
    div_limit = np.array([pb.divs[n].limit for n in div_orders], dtype=np.float64)
    cost = np.concatenate([np.array(pb.col_value, dtype=np.float64), np.where(div_buy, div_limit, -div_limit)])
    col_hi = np.concatenate([np.ones(pb.n_pkg), np.array([pb.divs[n].qty for n in div_orders], dtype=np.float64)])
    integer = np.concatenate([np.ones(pb.n_pkg, dtype=np.uint8), np.zeros(len(div_orders), dtype=np.uint8)])
    # balance rows: sign * qty of each package leg, +1 / -1 per divisible
    row, col, val = [], [], []
    for c, legs in enumerate(pb.col_legs):
        s = pb.col_sign[c]
        for i, q in legs:
            row.append(pb.row_of[i])
            col.append(c)
            val.append(s * q)
    for k, n in enumerate(div_orders):
        row.append(pb.row_of[pb.divs[n].instrument])
        col.append(pb.n_pkg + k)
        val.append(1 if div_buy[k] else -1)
    n_rows = len(pb.active)
    for cols in pb.bid_cols.values():
        if len(cols) > 1:
            row.extend([n_rows] * len(cols))
            col.extend(cols)
            val.extend([1] * len(cols))
            n_rows += 1
    row_a = np.array(row, dtype=np.int64)
    order = np.argsort(row_a, kind="stable")
    starts = np.searchsorted(row_a[order], np.arange(n_rows + 1)).astype(np.int32)
    n_bal = len(pb.active)
    row_lo = np.concatenate([np.zeros(n_bal), np.full(n_rows - n_bal, -_INF)])
    row_hi = np.concatenate([np.zeros(n_bal), np.ones(n_rows - n_bal)])
    return Milp(cost, col_hi, integer, row_lo, row_hi, starts, np.array(col, dtype=np.int32)[order],
                np.array(val, dtype=np.float64)[order], div_orders)


def _highs_of(m: Milp, time_limit_s: float, mip_gap: float, integer: bool = True) -> highspy.Highs:
    """HiGHS holding the MILP ``m`` (maximise), as its LP relaxation unless ``integer``.

    A MILP runs without presolve: on the full winner-determination model (10,000 bids and more)
    HiGHS's MIP presolve and setup run for seconds without looking at the time limit (3.1 s
    against 0.5 s at 10,000 bids), and its branch and cut found better solutions in the same
    time without it (bench/bench_auction.py). Sub-models are restricted (``_restricted``) rather
    than fixed, so there is nothing for a presolve to remove.
    """
    h = _new_highs(time_limit_s, mip_gap)
    if integer:
        h.setOptionValue("presolve", "off")
    n = len(m.cost)
    if n:
        h.addVars(n, np.zeros(n), m.col_hi)
        ids = np.arange(n, dtype=np.int32)
        h.changeColsCost(n, ids, m.cost)
        if integer:
            h.changeColsIntegrality(n, ids, m.integer)
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    if len(m.row_lo):
        h.addRows(len(m.row_lo), m.row_lo, m.row_hi, len(m.index), m.starts[:-1], m.index, m.value)
    return h


def _restricted(m: Milp, keep: np.ndarray, one: np.ndarray) -> Milp:
    """The MILP over the columns ``keep`` (a mask), the columns ``one`` fixed at 1 and every other at 0:
    the fixed columns leave the model and shift the row bounds by what they contribute. Its columns
    are ``np.flatnonzero(keep)`` in order. O(nonzeros) in numpy."""
    rows = len(m.row_lo)
    row_of = np.repeat(np.arange(rows), np.diff(m.starts))
    fixed = one[m.index]
    shift = np.bincount(row_of[fixed], weights=m.value[fixed], minlength=rows)
    kept = keep[m.index]
    new_id = np.cumsum(keep, dtype=np.int64) - 1
    starts = np.searchsorted(row_of[kept], np.arange(rows + 1)).astype(np.int32)
    return Milp(m.cost[keep], m.col_hi[keep], m.integer[keep], m.row_lo - shift, m.row_hi - shift, starts,
                new_id[m.index[kept]].astype(np.int32), m.value[kept], m.div_orders)


class _Wdp:
    """The winner-determination MILP in HiGHS, kept between rounds (cuts and fixings are added to it)."""

    def __init__(self, pb: _Problem, time_limit_s: float, mip_gap: float):
        self.pb = pb
        self.bound = _INF  # a proven upper bound on the optimum: the relaxation's, or HiGHS's if lower
        self.prices: np.ndarray | None = None  # the Lagrangian's prices, when the dive computed them
        self.mip_gap = mip_gap
        m = self.milp = _milp(pb)
        self.h = _highs_of(m, time_limit_s, mip_gap)

    def dive(self, time_limit_s: float, sub_floor_s: float) -> tuple[np.ndarray, float]:
        """A feasible start from the LP relaxation, and the seconds HiGHS spent on it.

        Solve the relaxation (its optimum becomes ``bound``), fix every package column it leaves
        integral and solve the small MILP over the fractional ones within what is left of
        ``time_limit_s``, or ``sub_floor_s`` at least (that MILP makes the start; without it the
        fractional columns are rounded down, which cost 4 % of the surplus at 10,000 bids); if that
        has no solution, round the fractional ones down and drop accepted packages where the
        divisible orders cannot absorb the rest (``_unabsorbed``). If even the LP does not finish
        in time, ``bound`` is the Lagrangian one (``_lagrangian``) and the start the best of the greedy
        allocations (``_greedy``) at the book's prices (without and with package offers) and at the
        Lagrangian's. A good incumbent before branch and
        bound starts: on large instances HiGHS's own heuristics find a worse one later
        (bench/bench_auction.py). O(one LP + one small MILP).
        """
        m, pb = self.milp, self.pb
        n = len(m.cost)
        if n == 0:
            return np.zeros(0), 0.0
        lp = _highs_of(m, time_limit_s, 0.0, integer=False)
        lp.run()
        spent = lp.getRunTime()
        if lp.getModelStatus() != _OPTIMAL:  # no time for the LP: a Lagrangian bound, a greedy allocation
            self.bound, self.prices = _lagrangian(pb)
            ref = _reference_prices(pb)
            starts = [_absorbable(pb, _greedy(pb, y, offers)) for y, offers in
                      ((ref, False), (ref, True), (self.prices, True))]
            return _start_vector(pb, m, max(starts, key=lambda c: _surplus(pb, c, {}) + _div_surplus_for(pb, c))), spent
        self.bound = float(lp.getInfo().objective_function_value)
        x = np.asarray(lp.getSolution().col_value)
        ints = m.integer.astype(bool)
        zero = ints & (x < 1e-6)
        one = ints & (x > 1 - 1e-6)
        if (ints & ~zero & ~one).any():
            keep = ~(zero | one)
            sub = _highs_of(_restricted(m, keep, one), max(sub_floor_s, time_limit_s - spent), self.mip_gap)
            sub.run()
            spent += sub.getRunTime()
            sol = sub.getSolution()
            if sol.value_valid and sub.getModelStatus() != _INFEASIBLE:
                x = one.astype(np.float64)
                x[keep] = sol.col_value
                return x, spent
        return _start_vector(pb, m, _absorbable(pb, np.flatnonzero(one[: pb.n_pkg]).tolist())), spent

    def solve(self, start: np.ndarray, time_limit_s: float) -> tuple[list[int] | None, bool, float, float]:
        """-> (accepted package columns or None if no solution, proven optimal, reported gap, seconds spent).

        ``start`` (a full feasible column vector: ``dive``'s) is handed to HiGHS as the incumbent, so
        that a time limit always leaves a solution at least as good. After a no-good cut the old start
        is cut off and HiGHS ignores it.
        """
        h = self.h
        n = h.getNumCol()
        if n == 0:  # nothing to decide
            return [], True, 0.0, 0.0
        if time_limit_s <= 0:  # the start used the budget up: it is the decision, unproven
            return np.flatnonzero(start[: self.pb.n_pkg] > 0.5).tolist(), False, float("inf"), 0.0
        h.setOptionValue("time_limit", max(0.0, float(time_limit_s)))  # HiGHS refuses a negative one (then: none)
        h.setSolution(n, np.arange(n, dtype=np.int32), start)
        before = h.getRunTime()
        h.run()
        spent = h.getRunTime() - before
        status = h.getModelStatus()
        sol = h.getSolution()
        if status == _INFEASIBLE or not sol.value_valid:
            return None, status == _INFEASIBLE, 0.0, spent
        x = np.asarray(sol.col_value)
        self.bound = min(self.bound, float(h.getInfo().mip_dual_bound))  # inf when HiGHS proved none
        chosen = np.flatnonzero(x[: self.pb.n_pkg] > 0.5).tolist()
        gap = float(h.getInfo().mip_gap)
        return chosen, status == _OPTIMAL, gap if np.isfinite(gap) else float("inf"), spent

    def exclude(self, chosen: list[int]) -> None:
        """No-good cut: sum_{c in chosen} (1 - x_c) + sum_{c not in chosen} x_c >= 1."""
        n = self.pb.n_pkg
        s = set(chosen)
        coef = [(-1.0 if c in s else 1.0) for c in range(n)]
        _add_rows(self.h, [(1.0 - len(s), _INF, list(range(n)), coef)])

    def readd(self, cols: list[int], start: list[int], time_limit_s: float) -> tuple[list[int], float]:
        """The best decision that keeps ``start`` and adds columns of ``cols`` -> (it, seconds spent).

        ``start`` (a subset of ``cols`` the divisible orders absorb, admissible: a greedy removal's
        result) stays accepted and is the first incumbent, so the result is never worse; a time limit
        returns the best found. Only the columns the removal dropped and the divisible orders are free,
        so the model is small: HiGHS's root cut separation, which does not look at the time limit,
        stays short (re-deciding all of ``cols`` ran 1.2 s past a 0.3 s limit at 10,000 bids).
        """
        m, pb = self.milp, self.pb
        keep = np.zeros(len(m.cost), dtype=bool)
        keep[cols] = True
        keep[start] = False
        keep[pb.n_pkg:] = True
        one = np.zeros_like(keep)
        one[start] = True
        ids = np.flatnonzero(keep)
        sub = _highs_of(_restricted(m, keep, one), time_limit_s, self.mip_gap)
        sub.setSolution(len(ids), np.arange(len(ids), dtype=np.int32), _start_vector(pb, m, start)[keep])
        sub.run()
        sol = sub.getSolution()
        if not sol.value_valid:
            return start, sub.getRunTime()
        x = np.asarray(sol.col_value)
        return sorted([*start, *(int(c) for c in ids[x > 0.5] if c < pb.n_pkg)]), sub.getRunTime()


# ------------------------------------------------------------------ prices for a decision


class _Pricing(msgspec.Struct):
    prices: dict[int, int]
    net: dict[int, int]
    prb_loss: int  # stage (a) optimum; -1 when its MIP gave no solution in time (stage (a) skipped)


def _net_supply(pb: _Problem, chosen: list[int]) -> dict[int, int]:
    """Per instrument the GPUs the accepted packages ``chosen`` sell minus those they buy. O(their legs) in numpy."""
    at = _leg_positions(pb, np.asarray(chosen, dtype=np.int64))
    net = np.zeros(len(pb.active), dtype=np.int64)
    np.subtract.at(net, pb.leg_row[at], pb.leg_demand[at])
    return dict(zip(pb.active, net.tolist(), strict=True))


def _box(pb: _Problem, chosen: list[int]) -> tuple[dict[int, int], dict[int, tuple[int, int]]] | None:
    """Net supply and the grid-index box [k_lo, k_hi] per instrument, or None if already infeasible.

    The box starts as the divisible interval on the grid and is tightened by bound propagation over
    the accepted packages (sound: it removes no admissible price vector): a bid's cost with every
    other leg at its lowest price caps each leg's price, an offer's revenue with every other leg at its
    highest floors it; all columns at once, until nothing changes (at most ``_PROPAGATION_ROUNDS``
    rounds). O(instruments x log limits + rounds x legs of ``chosen``) in numpy."""
    net = _net_supply(pb, chosen)
    klo = np.empty(len(pb.active), dtype=np.int64)
    khi = np.empty(len(pb.active), dtype=np.int64)
    for r, i in enumerate(pb.active):
        iv = pb.curves[i].interval(net[i])
        if iv is None:
            return None
        inc = int(pb.inc[r])
        klo[r], khi[r] = -(-iv[0] // inc), iv[1] // inc
    if chosen:
        cols = np.asarray(chosen, dtype=np.int64)
        at, lens, starts = _segments(pb, cols)
        row = pb.leg_row[at]
        w = pb.leg_qty[at] * pb.inc[row]
        total = np.repeat(np.abs(pb.value[cols]), lens)  # a bid's limit, an offer's minimum, per leg
        buy = np.repeat(pb.owner[cols] >= 0, lens)
        for _ in range(_PROPAGATION_ROUNDS):
            before = (klo.copy(), khi.copy())
            low = w * klo[row]
            cap = (total - (np.repeat(np.add.reduceat(low, starts), lens) - low)) // w
            np.minimum.at(khi, row[buy], cap[buy])
            high = w * khi[row]
            floor = -((np.repeat(np.add.reduceat(high, starts), lens) - high - total) // w)
            np.maximum.at(klo, row[~buy], floor[~buy])
            if (klo > khi).any():
                return None
            if np.array_equal(before[0], klo) and np.array_equal(before[1], khi):
                break
    return net, dict(zip(pb.active, zip(klo.tolist(), khi.tolist(), strict=True), strict=True))


def _targets(pb: _Problem, chosen: list[int], box: dict[int, tuple[int, int]]) -> dict[int, int]:
    """Per instrument the grid index prices are drawn toward: the middle of its box, or, where accepted
    packages name it, the middle between their average price per GPU-hour on the buy side and on the
    sell side (each side's when only one trades there), clipped into the box. So a block's hours get
    like prices, not one at a band edge and another at the other. O(legs of the accepted packages) in numpy."""
    cols = np.asarray(chosen, dtype=np.int64)
    at, lens, starts = _segments(pb, cols)
    unit = np.repeat(np.abs(pb.value[cols]) / (np.add.reduceat(pb.leg_qty[at], starts) if len(at) else 1), lens)
    buy = np.repeat(pb.owner[cols] >= 0, lens)
    rows, row = len(pb.active), pb.leg_row[at]
    mean, sides = np.zeros(rows), np.zeros(rows, dtype=np.int64)
    for side in (buy, ~buy):  # the mean of each side's average, over the sides that trade there
        n = np.bincount(row[side], minlength=rows)
        mean += np.bincount(row[side], weights=unit[side], minlength=rows) / np.maximum(n, 1)
        sides += n > 0
    mean /= np.maximum(sides, 1)
    k = np.floor(mean / pb.inc).astype(np.int64).tolist()
    out = {}
    for r, i in enumerate(pb.active):
        lo, hi = box[i]
        out[i] = min(max(k[r], lo), hi) if sides[r] else (lo + hi) // 2
    return out


def _price(pb: _Problem, chosen: list[int], time_limit_s: float, fair: bool = True,
           mip_gap: float = 0.0) -> _Pricing | None:
    """Admissible grid prices for the decision (see the module docstring, step 2), or None.

    Stage (a) is solved to the relative ``mip_gap`` (the auction's gap).
    ``fair=False`` skips stage (a) (the loss of paradoxically rejected orders is not minimised):
    a cheaper admissibility test, used inside a repair."""
    got = _box(pb, chosen)
    if got is None:
        return None
    net, box = got
    mid = _targets(pb, chosen, box)
    chosen_a = np.array(chosen, dtype=np.int64)
    # paradoxical-rejection rows: rejected columns that could be in the money somewhere in the box
    cand = np.zeros(pb.n_pkg, dtype=bool)
    if fair and pb.n_pkg:
        klo = np.array([box[i][0] for i in pb.active], dtype=np.int64)
        khi = np.array([box[i][1] for i in pb.active], dtype=np.int64)
        w = pb.leg_qty * pb.inc[pb.leg_row]
        starts = pb.leg_start[:-1]
        cost_lo = np.add.reduceat(w * klo[pb.leg_row], starts)
        cost_hi = np.add.reduceat(w * khi[pb.leg_row], starts)
        won = np.zeros(len(pb.bids) + 1, dtype=bool)  # per bid; the last entry stands for the offers' -1
        won[pb.owner[chosen_a]] = True
        cand = np.where(pb.owner >= 0, (pb.value > cost_lo) & ~won[pb.owner], -pb.value < cost_hi)
        cand[chosen_a] = False
    prb_cols = np.flatnonzero(cand)
    # group of each candidate: one per rejected bid (its candidate alternatives), one per offer
    owner_key = np.where(pb.owner[prb_cols] >= 0, pb.owner[prb_cols], -1 - prb_cols)
    _, prb_group = np.unique(owner_key, return_inverse=True)
    n_groups = int(prb_group.max()) + 1 if len(prb_cols) else 0
    on_legs = np.zeros(len(pb.leg_row), dtype=bool)
    for c in (chosen_a, prb_cols):
        on_legs[_leg_positions(pb, c)] = True
    touched_rows = np.unique(pb.leg_row[on_legs])
    touched = [pb.active[r] for r in touched_rows]
    prices = {i: mid[i] * pb.inst[i].price_increment for i in pb.active}
    if not touched:
        return _Pricing(prices, net, 0)
    kpos = np.full(len(pb.active), -1, dtype=np.int64)
    kpos[touched_rows] = np.arange(len(touched_rows))
    nk = len(touched)

    def base_model(with_loss: bool) -> tuple[highspy.Highs, int]:
        h = _new_highs(time_limit_s, mip_gap)
        _add_cols(h, [0.0] * nk, [float(box[i][0]) for i in touched], [float(box[i][1]) for i in touched],
                  [True] * nk)
        # accepted: bid cost <= limit, offer revenue >= minimum
        val = pb.value[chosen_a].astype(np.float64)
        buy = pb.owner[chosen_a] >= 0
        _add_leg_rows(h, pb, chosen_a, kpos, np.where(buy, -_INF, -val), np.where(buy, val, _INF))
        first_r = nk
        if with_loss:  # bid: r + cost >= limit;  offer: r - revenue >= -min  (both: >= value)
            _add_cols(h, [1.0] * n_groups, [0.0] * n_groups, [_INF] * n_groups, [False] * n_groups)
            sign = np.where(pb.owner[prb_cols] >= 0, 1.0, -1.0)
            _add_leg_rows(h, pb, prb_cols, kpos, pb.value[prb_cols].astype(np.float64),
                          np.full(len(prb_cols), _INF), sign, first_r + prb_group)
        return h, first_r

    loss = 0
    stage_a: list[float] | None = None
    h, first_r = base_model(with_loss=n_groups > 0)
    if n_groups:
        # (a) minimise the loss of paradoxically rejected orders
        h.changeObjectiveSense(highspy.ObjSense.kMinimize)
        h.run()
        if h.getModelStatus() == _INFEASIBLE:
            return None
        if h.getSolution().value_valid:
            stage_a = list(h.getSolution().col_value[:nk])  # admissible prices, if (b) finds none in time
            loss = math.ceil(h.getInfo().objective_function_value - 1e-6)  # integer at integer prices
            # fix the loss, then (b) below
            ng = n_groups
            _add_rows(h, [(-_INF, float(loss), list(range(first_r, first_r + ng)), [1.0] * ng)])
            h.changeColsCost(ng, np.arange(first_r, first_r + ng, dtype=np.int32), np.zeros(ng))
        else:  # no prices found in time: not a proof that none exist, so go on without stage (a)
            if not chosen:  # nothing accepted: no constraint, the middles do
                return _Pricing(prices, net, -1)
            loss = -1
            h, first_r = base_model(with_loss=False)
    # (b) closest to the middle: t_i >= |k_i - mid_i|
    t0 = h.getNumCol()
    _add_cols(h, [1.0] * nk, [0.0] * nk, [_INF] * nk, [False] * nk)
    rows = []
    for n, i in enumerate(touched):
        rows.append((float(-mid[i]), _INF, [t0 + n, n], [1.0, -1.0]))  # t - k >= -mid
        rows.append((float(mid[i]), _INF, [t0 + n, n], [1.0, 1.0]))  # t + k >= mid
    _add_rows(h, rows)
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    h.run()
    if h.getSolution().value_valid:
        x = h.getSolution().col_value
    elif stage_a is not None:
        x = stage_a
    else:  # infeasible, or no solution in time: nothing accepted means no constraint, so the middles do
        return None if chosen else _Pricing(prices, net, -1)
    for n, i in enumerate(touched):
        prices[i] = round(x[n]) * pb.inst[i].price_increment
    # exact re-check in integers (guards against solver tolerances)
    cost = _costs(pb, chosen_a, prices)
    value = pb.value[chosen_a]
    if np.where(pb.owner[chosen_a] >= 0, cost > value, cost < -value).any():
        return None
    return _Pricing(prices, net, loss)


def _costs(pb: _Problem, cols: np.ndarray, prices: dict[int, int]) -> np.ndarray:
    """Per column of ``cols`` its legs' GPUs times the prices (a bid's cost, an offer's revenue), exact
    int64. O(their legs) in numpy."""
    at, _, starts = _segments(pb, cols)
    if not len(at):
        return np.zeros(len(cols), dtype=np.int64)
    y = np.array([prices[i] for i in pb.active], dtype=np.int64)
    return np.add.reduceat(pb.leg_qty[at] * y[pb.leg_row[at]], starts)


def _paradoxically_accepted(pb: _Problem, chosen: list[int], time_limit_s: float) -> list[int]:
    """Accepted columns violating individual rationality in an elastic price LP, worst first (EUPHEMIA-style).

    The LP finds prices within the divisible intervals minimising the sum of relative violations
    (shortfall / own limit); every column with a positive violation is a culprit. Never empty: if the
    LP shows no violation (the decision fails only on integer prices), the largest column is returned.
    O(one LP over the touched instruments and the columns; its rows built in numpy).
    """
    net = _net_supply(pb, chosen)
    cols = np.asarray(chosen, dtype=np.int64)
    touched = np.unique(pb.leg_row[_leg_positions(pb, cols)])
    kpos = np.full(len(pb.active), -1, dtype=np.int64)
    kpos[touched] = np.arange(len(touched))
    lo, hi = [], []
    for r in touched.tolist():
        i = pb.active[r]
        iv = pb.curves[i].interval(net[i]) or (pb.inst[i].min_price, pb.inst[i].max_price)
        lo.append(iv[0] / pb.inc[r])
        hi.append(iv[1] / pb.inc[r])
    h = _new_highs(time_limit_s, 0.0)
    _add_cols(h, [0.0] * len(touched), lo, hi, [False] * len(touched))
    nv, v0 = len(chosen), len(touched)
    _add_cols(h, [1.0] * nv, [0.0] * nv, [_INF] * nv, [False] * nv)
    # v + sign * cost / scale >= -value / scale: bid cost - v*scale <= limit, offer revenue + v*scale >= min
    scale = np.maximum(1, np.abs(pb.value[cols])).astype(np.float64)
    sign = np.where(pb.owner[cols] >= 0, -1.0, 1.0) / scale
    _add_leg_rows(h, pb, cols, kpos, -pb.value[cols] / scale, np.full(nv, _INF), sign, v0 + np.arange(nv))
    h.run()
    if h.getModelStatus() == _OPTIMAL:
        v = np.asarray(h.getSolution().col_value)[v0:]
        bad = np.flatnonzero(v > 1e-7)
        if len(bad):
            return cols[bad[np.lexsort((cols[bad], -v[bad]))]].tolist()
    return [max(chosen, key=lambda c: (abs(pb.col_value[c]), -c))]


# ------------------------------------------------------------------ the auction


def _surplus(pb: _Problem, chosen: list[int], fills: dict[int, int]) -> int:
    s = sum(pb.col_value[c] for c in chosen)
    for n, q in fills.items():
        d = pb.divs[n]
        s += d.limit * q if isinstance(d, DivisibleBid) else -d.limit * q
    return s


def _divisible_fills(pb: _Problem, prices: dict[int, int], net: dict[int, int]) -> dict[int, int]:
    """Fills at the prices: full when better, none when worse; at the price the most volume that balances."""
    fills: dict[int, int] = {}
    for i in pb.active:
        p = prices[i]
        bids, offers = pb.div_bids[i], pb.div_offers[i]
        full_b = sum(q for lim, q, _, _ in bids if lim > p)
        full_o = sum(q for lim, q, _, _ in offers if lim < p)
        marg_b = sorted((oid, q, n) for lim, q, oid, n in bids if lim == p)
        marg_o = sorted((oid, q, n) for lim, q, oid, n in offers if lim == p)
        r = net[i] - (full_b - full_o)  # marginal bids - marginal offers must equal r
        cap_b, cap_o = sum(q for _, q, _ in marg_b), sum(q for _, q, _ in marg_o)
        take_b = min(cap_b, cap_o + r)
        take_o = take_b - r
        if not (0 <= take_b <= cap_b and 0 <= take_o <= cap_o):
            raise AssertionError("prices outside the divisible interval")  # impossible by construction
        for lim, q, _, n in bids:
            if lim > p:
                fills[n] = q
        for lim, q, _, n in offers:
            if lim < p:
                fills[n] = q
        for marg, take in ((marg_b, take_b), (marg_o, take_o)):
            for _, q, n in marg:
                x = min(q, take)
                take -= x
                if x:
                    fills[n] = x
    return fills


class _Budget:
    """The clearing's time budget. With a ``clock`` (the caller's, in seconds) it counts all the work
    since the clearing started, Python included; without one, only the seconds HiGHS reported for
    winner determination (``charge``), so a run without a clock never depends on the speed of the
    Python around the solves."""

    def __init__(self, seconds: float, clock: Callable[[], float] | None):
        self.seconds, self.clock = seconds, clock
        self.start = clock() if clock is not None else 0.0
        self.highs = 0.0

    def charge(self, seconds: float) -> None:
        self.highs += seconds

    def used(self) -> float:
        return self.clock() - self.start if self.clock is not None else self.highs

    def left(self) -> float:
        return self.seconds - self.used()


def clear(
    instruments: Sequence[Instrument],
    bids: Sequence[PackageBid],
    offers: Sequence[PackageOffer],
    divisibles: Sequence[DivisibleBid | DivisibleOffer],
    time_limit_s: float = 60.0,
    mip_gap: float = 0.0,
    exact_rounds: int = 64,
    clock: Callable[[], float] | None = None,
) -> AuctionResult:
    """Clear one auction (see the module docstring). Deterministic unless the time limit is hit.

    ``time_limit_s`` (T) is the clearing's budget. With ``clock`` (a function returning seconds,
    the venue's) it covers everything from the call on, building the model included; without it,
    the winner-determination work as HiGHS measures it. The start (``_Wdp.dive``) gets what is left
    of 85 % of T (its small MILP a tenth of T at least: the LP relaxation alone takes 0.9 to 1.4 s at
    10,000 bids); the solves run until three quarters of T are used, among them at most
    ``exact_rounds`` no-good rounds while half of T is left; then the repair of the last decision
    (``_repair``) gets the rest. Each price MIP gets what is left of T, or a quarter of T at least.
    Those floors, building the result and what HiGHS runs past its own limits are what a clearing
    may take beyond T. ``mip_gap`` is HiGHS's relative gap (0 = prove optimality exactly).
    """
    budget = _Budget(time_limit_s, clock)
    pb = _Problem(instruments, bids, offers, divisibles)
    wdp = _Wdp(pb, time_limit_s, mip_gap)
    price_floor = 0.25 * time_limit_s  # a price MIP at 50,000 bids needs more than a tenth of 2 s
    start, took = wdp.dive(max(0.0, 0.85 * time_limit_s - budget.used()), 0.1 * time_limit_s)
    budget.charge(took)
    proven = True
    gap = 0.0
    rounds = 0
    first_surplus: int | None = None
    pricing: _Pricing | None = None
    chosen: list[int] = []
    bound: float | None = None  # the first solve's upper bound: no admissible decision is better
    repaired = False
    while True:
        rounds += 1
        got, optimal, gap, took = wdp.solve(start, 0.75 * time_limit_s - budget.used())  # a quarter kept
        budget.charge(took)
        proven = proven and optimal
        if got is None:  # only after no-good cuts: no other decision is feasible
            break
        if bound is None:
            bound = wdp.bound
            first_surplus = _surplus(pb, got, {}) + _div_surplus_for(pb, got)
        pricing = _price(pb, got, max(price_floor, budget.left()), mip_gap=mip_gap)
        if pricing is not None:
            chosen = got
            break
        if rounds < exact_rounds and budget.used() < time_limit_s / 2:
            wdp.exclude(got)  # exact: the next solve finds the next best decision
            continue
        repaired = True
        chosen, pricing = _repair(pb, wdp, got, budget, price_floor)
        chosen, pricing = _safety_net(pb, wdp, chosen, pricing, max(price_floor, budget.left()), mip_gap)
        break
    if pricing is None:  # no admissible decision: clear the divisible orders alone (always admissible)
        proven = proven and got is None
        chosen = []
        pricing = _price(pb, [], max(price_floor, budget.left()))
        assert pricing is not None
    fills = _divisible_fills(pb, pricing.prices, pricing.net)
    total = _surplus(pb, chosen, fills)
    if first_surplus is None or first_surplus < total:  # an unsolved start may price its divisibles worse
        first_surplus = total
    if bound is not None and (repaired or not proven):  # against the first bound: a proven gap
        gap = max(0.0, (bound - total) / max(1.0, abs(bound))) if math.isfinite(bound) else math.inf
        proven = gap <= mip_gap
    return _result(pb, chosen, pricing, fills, total, first_surplus, proven, gap, rounds)


def _repair(pb: _Problem, wdp: _Wdp, chosen: list[int], budget: _Budget,
            price_floor: float) -> tuple[list[int], _Pricing]:
    """An admissible decision inside ``chosen`` (which admits no prices), EUPHEMIA-style.

    The re-adding solves share what is left of ``budget``; each price MIP and elastic LP gets that
    too, or ``price_floor`` seconds at least.

    Each round drops the culprits of the elastic price LP (``_paradoxically_accepted``), makes the
    rest admissible by the greedy ``_removal`` and adds back what the MILP can of what that removal
    dropped (``_Wdp.readd``, within what is left of the budget); with no budget left the greedy
    removal is the answer. Terminates: every round drops at least one column, and the
    empty decision is admissible.
    """
    while True:
        limit = max(price_floor, budget.left())
        if _price(pb, chosen, limit, fair=False) is not None:  # admissible: now the full prices
            pricing = _price(pb, chosen, max(price_floor, budget.left()), mip_gap=wdp.mip_gap)
            if pricing is not None:
                return chosen, pricing
        culprits = set(_paradoxically_accepted(pb, chosen, limit))
        rest = [c for c in chosen if c not in culprits]
        greedy = _removal(pb, rest, limit)
        left = budget.left()
        if left <= 0:
            chosen = greedy  # admissible: the next check prices it in full
            continue
        chosen, took = wdp.readd(rest, greedy, left)
        budget.charge(took)


def _safety_net(pb: _Problem, wdp: _Wdp, chosen: list[int], pricing: _Pricing, time_limit_s: float,
                mip_gap: float) -> tuple[list[int], _Pricing]:
    """The best of a repaired decision and the greedy allocations made admissible (``_greedy``, then
    ``_removal``): at the book's prices without and with package offers, and, when the repaired
    decision is below 90 % of the bound, at the Lagrangian prices (``_lagrangian``, computed here if
    the dive did not). A repair that had no budget left can cascade to a fraction of the bound on a
    large lumpy instance (50,000 bids in
    the benchmark); a greedy allocation does not. O(up to three greedy passes, their removal steps and
    pricings, and the Lagrangian)."""
    best = _total(pb, chosen, pricing)
    ref = _reference_prices(pb)
    for prices, offers in ((ref, False), (ref, True), (None, True)):
        if prices is None:
            if best >= 0.9 * wdp.bound:
                break
            prices = wdp.prices if wdp.prices is not None else _lagrangian(pb)[1]
        other = _removal(pb, _greedy(pb, prices, offers), time_limit_s)
        total = _surplus(pb, other, {}) + _div_surplus_for(pb, other)  # its total at any admissible prices
        if total <= best:
            continue  # not better, so not priced
        other_pricing = _price(pb, other, time_limit_s, mip_gap=mip_gap)
        if other_pricing is not None:
            chosen, pricing, best = other, other_pricing, total
    return chosen, pricing


def _total(pb: _Problem, chosen: list[int], pricing: _Pricing) -> int:
    """Total surplus of a priced decision: packages plus the divisible fills at its prices."""
    return _surplus(pb, chosen, _divisible_fills(pb, pricing.prices, pricing.net))


def _removal(pb: _Problem, chosen: list[int], time_limit_s: float) -> list[int]:
    """An admissible decision inside ``chosen`` by removal alone, without a solver's search.

    Each step removes, where the divisible orders cannot absorb an instrument's net position, the
    accepted packages on the side in excess (``_unabsorbed``), else every culprit of the elastic
    price LP. Terminates as ``_repair`` does. Cascades on lumpy instances (a dropped block offer
    leaves its hours short of supply, ...): ``_repair`` uses it only as a start and a last resort.
    """
    while True:
        if _price(pb, chosen, time_limit_s, fair=False) is not None:
            return chosen
        drop = set(_unabsorbed(pb, chosen) or _paradoxically_accepted(pb, chosen, time_limit_s))
        chosen = [c for c in chosen if c not in drop]


def _unabsorbed(pb: _Problem, chosen: list[int]) -> list[int]:
    """Accepted columns to drop so that the divisible orders absorb every instrument's net position.

    Per instrument whose net supply the divisible curve cannot absorb within the band, the accepted
    columns on the side in excess (offers when supply is too large, bids when demand is), the least
    valuable per GPU first (lowest bid limit, highest offer minimum), until the rest is absorbable.
    Empty when every instrument is absorbable. O(legs of ``chosen`` in numpy + short instruments' sorts).
    """
    net = _net_supply(pb, chosen)
    short = [r for r, i in enumerate(pb.active) if pb.curves[i].interval(net[i]) is None]
    if not short or not chosen:
        return []
    cols = np.asarray(chosen, dtype=np.int64)
    at, lens, starts = _segments(pb, cols)
    unit = np.repeat(pb.value[cols] / np.add.reduceat(pb.leg_qty[at], starts), lens)  # bids low, offers dear first
    on = np.isin(pb.leg_row[at], short)
    row, col, qty, unit = pb.leg_row[at][on], pb.leg_col[at][on], pb.leg_qty[at][on], unit[on]
    order = np.lexsort((qty, col, unit, row))
    row, col, qty = row[order], col[order].tolist(), qty[order].tolist()
    first = np.searchsorted(row, short).tolist() + [len(row)]
    drop: list[int] = []
    gone: set[int] = set()
    for n, r in enumerate(short):
        curve, s = pb.curves[pb.active[r]], net[pb.active[r]]
        side = -1 if s > 0 else 1  # the side in excess: sellers when net supply is positive
        for c, q in zip(col[first[n]:first[n + 1]], qty[first[n]:first[n + 1]], strict=True):
            if pb.col_sign[c] != side or c in gone:
                continue
            drop.append(c)
            gone.add(c)
            s += side * q
            if curve.interval(s) is not None:
                break
    return drop


def _absorbable(pb: _Problem, chosen: list[int]) -> list[int]:
    """``chosen`` without what ``_unabsorbed`` drops, until nothing more is: a decision the divisible
    orders absorb (feasible for the MILP, not necessarily admissible)."""
    while drop := set(_unabsorbed(pb, chosen)):
        chosen = [c for c in chosen if c not in drop]
    return chosen


def _reference_prices(pb: _Problem) -> np.ndarray:
    """Per instrument row, the middle of the prices at which the divisible orders alone clear (the
    band's middle where they cannot). O(instruments x their limits)."""
    out = np.zeros(len(pb.active))
    for r, i in enumerate(pb.active):
        inst = pb.inst[i]
        lo, hi = pb.curves[i].interval(0) or (inst.min_price, inst.max_price)
        out[r] = (lo + hi) / 2
    return out


def _profits(pb: _Problem, y: np.ndarray) -> np.ndarray:
    """Per package column its surplus if it traded at the prices ``y`` (per instrument row): a bid's
    limit minus its cost, an offer's revenue minus its minimum. O(legs) in numpy."""
    cost = np.bincount(pb.leg_col, weights=pb.leg_demand * y[pb.leg_row], minlength=pb.n_pkg)
    return pb.value - cost


def _lagrangian(pb: _Problem, iterations: int = 40) -> tuple[float, np.ndarray]:
    """An upper bound on the optimum without the LP, and the prices that gave it.

    For any prices y, relaxing the balance rows gives L(y) = sum of each bid's best positive
    surplus at y over its alternatives + each offer's + each divisible order's (qty x its margin);
    every feasible decision has surplus <= L(y) (its balance terms vanish). Starting at
    ``_reference_prices``, each step raises the price of an instrument in proportion to its excess
    demand relative to its volume (tatonnement, step shrinking), and the lowest L is kept.
    -> (that L, its prices). O(iterations x legs) in numpy; deterministic."""
    y = _reference_prices(pb)
    rows = len(pb.active)
    bid = pb.owner >= 0
    bid_cols = np.flatnonzero(bid)
    owner = pb.owner[bid_cols]
    best, best_y = math.inf, y
    for t in range(iterations):
        prof = _profits(pb, y)
        top = np.zeros(len(pb.bids) + 1)  # per bid its best positive surplus (the last entry: offers' -1)
        np.maximum.at(top, owner, prof[bid_cols])
        take = bid & (prof > 0) & (prof >= top[pb.owner])  # a bid's best (ties: all; for the excess only)
        take |= ~bid & (prof > 0)
        margin = pb.div_sign * (pb.div_limit - y[pb.div_row]) * pb.div_qty
        fill = margin > 0
        value = float(top[top > 0].sum() + prof[~bid & (prof > 0)].sum() + margin[fill].sum())
        if value < best:
            best, best_y = value, y
        on = take[pb.leg_col]
        excess = (np.bincount(pb.leg_row[on], weights=pb.leg_demand[on], minlength=rows)
                  + np.bincount(pb.div_row[fill], weights=(pb.div_sign * pb.div_qty)[fill], minlength=rows))
        volume = (np.bincount(pb.leg_row[on], weights=pb.leg_qty[on], minlength=rows)
                  + np.bincount(pb.div_row[fill], weights=pb.div_qty[fill], minlength=rows))
        y = np.maximum(0.0, y * (1 + 0.2 / (1 + t / 10) * excess / (volume + 1)))
    return best, best_y


def _greedy(pb: _Problem, prices: np.ndarray, offers: bool) -> list[int]:
    """A decision without a solver, guided by the prices (per instrument row).

    If ``offers``, the package offers in the money at the prices are accepted (else none); then
    the bids, most surplus at the prices first, each with its first alternative (in that order)
    whose legs the divisible offers and the accepted package offers can still supply (an
    instrument's net demand at most all its divisible
    offers); ``_absorbable`` trims what the curves cannot absorb after all. A start for when the LP
    has no time to finish. O(columns log columns + legs).
    """
    prof = _profits(pb, prices)
    chosen = np.flatnonzero((pb.owner < 0) & (prof > 0)).tolist() if offers else []
    net = dict.fromkeys(pb.active, 0)
    for c in chosen:
        for i, q in pb.col_legs[c]:
            net[i] += q
    floor = {i: pb.curves[i].interval(0) and
             -pb.curves[i].offered for i in pb.active}  # the most net demand the divisibles absorb
    bid_cols = np.flatnonzero(pb.owner >= 0)
    taken: set[int] = set()
    for c in bid_cols[np.lexsort((bid_cols, -prof[bid_cols]))].tolist():
        if prof[c] <= 0:
            break
        if pb.owner[c] in taken:
            continue
        legs = pb.col_legs[c]
        if all(floor[i] is not None and net[i] - q >= floor[i] for i, q in legs):
            for i, q in legs:
                net[i] -= q
            taken.add(int(pb.owner[c]))
            chosen.append(c)
    return sorted(chosen)


def _start_vector(pb: _Problem, milp: Milp, chosen: list[int]) -> np.ndarray:
    """The MILP column vector of the package decision ``chosen`` (which the divisible orders can
    absorb), its divisible columns filled at the low end of each price interval. O(columns)."""
    x = np.zeros(len(milp.cost))
    x[chosen] = 1.0
    net = _net_supply(pb, chosen)
    fills = _divisible_fills(pb, _low_prices(pb, net), net)
    for k, n in enumerate(milp.div_orders):
        x[pb.n_pkg + k] = fills.get(n, 0)
    return x


def _low_prices(pb: _Problem, net: dict[int, int]) -> dict[int, int]:
    """Per instrument the lowest price at which the divisible orders absorb ``net``; where they cannot
    (only solver tolerances get there), ``net`` is set to 0 and that position's price is used."""
    prices: dict[int, int] = {}
    for i in pb.active:
        inst = pb.inst[i]
        iv = pb.curves[i].interval(net[i])
        if iv is None:
            net[i] = 0
            iv = pb.curves[i].interval(0) or (inst.min_price, inst.min_price)
        prices[i] = iv[0]
    return prices


def _div_surplus_for(pb: _Problem, chosen: list[int]) -> int:
    """Optimal divisible surplus given the package decision: fills at the low end of each price interval."""
    net = _net_supply(pb, chosen)
    return _surplus(pb, [], _divisible_fills(pb, _low_prices(pb, net), net))


def _result(pb, chosen, pricing, fills, total, first_surplus, proven, gap, rounds) -> AuctionResult:
    prices = pricing.prices
    chosen_set = set(chosen)
    out_fills: list[Fill] = []
    outcomes: list[OrderOutcome] = []
    volume = dict.fromkeys(pb.active, 0)
    n_bids = n_offers = n_prb = prb_loss = 0

    costs = _costs(pb, np.arange(pb.n_pkg), prices).tolist()

    def cost(c: int) -> int:
        return costs[c]

    for n, b in enumerate(pb.bids):
        r = pb.reject.get((OrderKind.PACKAGE_BID, n))
        if r is not None:
            outcomes.append(OrderOutcome(OrderKind.PACKAGE_BID, b.bid_id, b.firm, Outcome.INVALID, r, -1, 0, 0, 0))
            continue
        cols = pb.bid_cols[n]
        acc = [a for a, c in enumerate(cols) if c in chosen_set]
        if acc:
            a = acc[0]
            c = cols[a]
            n_bids += 1
            for i, q in pb.col_legs[c]:
                volume[i] += q
                out_fills.append(Fill(OrderKind.PACKAGE_BID, b.bid_id, b.firm, i, True, q, prices[i], q * prices[i]))
            outcomes.append(
                OrderOutcome(
                    OrderKind.PACKAGE_BID,
                    b.bid_id,
                    b.firm,
                    Outcome.ACCEPTED,
                    AuctionReject.NONE,
                    a,
                    pb.col_value[c],
                    cost(c),
                    0,
                )
            )
            continue
        best = max(range(len(cols)), key=lambda a: (pb.col_value[cols[a]] - cost(cols[a]), -a))
        s = pb.col_value[cols[best]] - cost(cols[best])
        unsupplied = all(any(i not in pb.offered for i, _ in pb.col_legs[c]) for c in cols)
        why = Outcome.NO_SUPPLY if unsupplied else _rejected_outcome(s)
        n_prb += why == Outcome.PARADOXICALLY_REJECTED
        prb_loss += max(0, s)
        outcomes.append(
            OrderOutcome(
                OrderKind.PACKAGE_BID,
                b.bid_id,
                b.firm,
                why,
                AuctionReject.NONE,
                best,
                pb.col_value[cols[best]],
                cost(cols[best]),
                0,
            )
        )
    for n, o in enumerate(pb.offers):
        r = pb.reject.get((OrderKind.PACKAGE_OFFER, n))
        if r is not None:
            outcomes.append(OrderOutcome(OrderKind.PACKAGE_OFFER, o.offer_id, o.firm, Outcome.INVALID, r, -1, 0, 0, 0))
            continue
        c = pb.offer_col[n]
        rev = cost(c)
        if c in chosen_set:
            n_offers += 1
            for i, q in pb.col_legs[c]:
                out_fills.append(
                    Fill(OrderKind.PACKAGE_OFFER, o.offer_id, o.firm, i, False, q, prices[i], q * prices[i])
                )
            why = Outcome.ACCEPTED
        else:
            s = rev - o.min_total
            why = Outcome.NO_DEMAND if any(i not in pb.wanted for i, _ in pb.col_legs[c]) else _rejected_outcome(s)
            n_prb += why == Outcome.PARADOXICALLY_REJECTED
            prb_loss += max(0, s)
        outcomes.append(
            OrderOutcome(
                OrderKind.PACKAGE_OFFER,
                o.offer_id,
                o.firm,
                why,
                AuctionReject.NONE,
                0 if why == Outcome.ACCEPTED else -1,
                o.min_total,
                rev,
                0,
            )
        )
    for n, d in enumerate(pb.divs):
        kind = OrderKind.DIVISIBLE_BID if isinstance(d, DivisibleBid) else OrderKind.DIVISIBLE_OFFER
        r = pb.reject.get((kind, n))
        if r is not None:
            outcomes.append(OrderOutcome(kind, d.order_id, d.firm, Outcome.INVALID, r, -1, d.limit, 0, 0))
            continue
        q = fills.get(n, 0)
        p = prices[d.instrument]
        if q == d.qty:
            why = Outcome.ACCEPTED
        elif q > 0:
            why = Outcome.PARTIALLY_FILLED
        else:
            why = Outcome.AT_PRICE if d.limit == p else Outcome.LIMIT_BELOW_PRICE
        if q:
            buy = kind == OrderKind.DIVISIBLE_BID
            if buy:
                volume[d.instrument] += q
            out_fills.append(Fill(kind, d.order_id, d.firm, d.instrument, buy, q, p, q * p))
        outcomes.append(OrderOutcome(kind, d.order_id, d.firm, why, AuctionReject.NONE, -1, d.limit, p, q))
    status = AuctionStatus.OPTIMAL if proven else AuctionStatus.FEASIBLE
    return AuctionResult(
        status=status,
        prices=[InstrumentClearing(i, prices[i], volume[i]) for i in pb.active],
        outcomes=outcomes,
        fills=out_fills,
        total_surplus=total,
        unconstrained_surplus=first_surplus,
        ir_cost=first_surplus - total,
        proven_optimal=proven,
        mip_gap=gap,
        rounds=rounds,
        accepted_bids=n_bids,
        accepted_offers=n_offers,
        paradoxically_rejected=n_prb,
        prb_loss=prb_loss,
    )


def _rejected_outcome(surplus: int) -> Outcome:
    """Why a package was not accepted, from the surplus it would have made at the clearing prices."""
    if surplus > 0:
        return Outcome.PARADOXICALLY_REJECTED
    return Outcome.AT_PRICE if surplus == 0 else Outcome.LIMIT_BELOW_PRICE
