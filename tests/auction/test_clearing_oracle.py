"""Property tests of engine.auction.clearing against an exhaustive-search oracle.

The oracle knows nothing of the engine's formulation: on tiny random instances it enumerates
every package decision (each bid: none or one alternative; each offer: in or out) and every
vector of grid prices in the band, keeps the (decision, prices) pairs where every accepted
package is individually rational and the divisible orders can fill by the uniform-price rule
(better than the price: full, worse: none, equal: any) so that GPUs bought == GPUs sold, and
takes the best surplus. The engine must reach exactly that surplus, with prices and fills that
satisfy the same rules, money balancing to the tick, and the same result twice.
"""

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.auction.clearing import (
    _OPTIMAL,
    Decision,
    OrderKind,
    _highs_of,
    _lagrangian,
    _Problem,
    _restricted,
    clear,
    decision_of,
    result_of,
    winner_determination_milp,
)
from engine.auction.orders import Alternative, DivisibleBid, DivisibleOffer, Leg, PackageBid, PackageOffer
from engine.codes import AuctionStatus, Outcome
from engine.instruments import NS_PER_HOUR, Instrument

N_INST = 2
BANDS = [(1, 12, 1), (2, 16, 2)]  # (min, max, increment) per instrument


def _instruments():
    return [
        Instrument(i, "H100", "US-EAST", "FIRM", i * NS_PER_HOUR, 0, 0, lo, hi, inc, 1000, 0)
        for i, (lo, hi, inc) in enumerate(BANDS)
    ]


legs_st = st.lists(
    st.tuples(st.integers(0, N_INST - 1), st.integers(1, 3)), min_size=1, max_size=N_INST, unique_by=lambda t: t[0]
)


@st.composite
def instances(draw):
    bids = []
    for b in range(draw(st.integers(0, 3))):
        alts = []
        for _ in range(draw(st.integers(1, 2))):
            legs = draw(legs_st)
            alts.append(Alternative([Leg(i, q) for i, q in legs], draw(st.integers(1, 60))))
        bids.append(PackageBid(b + 1, b, alts))
    offers = []
    for o in range(draw(st.integers(0, 2))):
        legs = draw(legs_st)
        offers.append(PackageOffer(o + 1, 10 + o, [Leg(i, q) for i, q in legs], draw(st.integers(0, 60))))
    divs = []
    for d in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, N_INST - 1))
        lo, hi, inc = BANDS[i]
        cls = DivisibleBid if draw(st.booleans()) else DivisibleOffer
        divs.append(cls(d + 1, 20 + d, i, draw(st.integers(1, 4)), inc * draw(st.integers(lo // inc, hi // inc))))
    return bids, offers, divs


def _oracle(bids, offers, divs):
    """Best admissible surplus by enumeration of decisions x grid price vectors."""
    grids = [np.arange(lo, hi + 1, inc) for lo, hi, inc in BANDS]
    P = np.array(list(itertools.product(*grids)), dtype=np.int64)  # (G, N_INST)
    # divisible curves per instrument, evaluated on the grid
    dmin = np.zeros_like(P)
    dmax = np.zeros_like(P)
    smin = np.zeros_like(P)
    smax = np.zeros_like(P)
    full_surplus = np.zeros_like(P)  # surplus of the orders strictly better than the price
    for d in divs:
        p = P[:, d.instrument]
        if isinstance(d, DivisibleBid):
            dmin[:, d.instrument] += np.where(d.limit > p, d.qty, 0)
            dmax[:, d.instrument] += np.where(d.limit >= p, d.qty, 0)
            full_surplus[:, d.instrument] += np.where(d.limit > p, d.limit * d.qty, 0)
        else:
            smin[:, d.instrument] += np.where(d.limit < p, d.qty, 0)
            smax[:, d.instrument] += np.where(d.limit <= p, d.qty, 0)
            full_surplus[:, d.instrument] -= np.where(d.limit < p, d.limit * d.qty, 0)

    def qvec(legs):
        v = np.zeros(N_INST, dtype=np.int64)
        for leg in legs:
            v[leg.instrument] = leg.qty
        return v

    best = None
    for choice in itertools.product(*[range(-1, len(b.alternatives)) for b in bids]):
        for taken in itertools.product([False, True], repeat=len(offers)):
            net = np.zeros(N_INST, dtype=np.int64)  # package supply minus package demand
            ok = np.ones(len(P), dtype=bool)
            value = 0
            for b, a in zip(bids, choice, strict=True):
                if a >= 0:
                    alt = b.alternatives[a]
                    q = qvec(alt.legs)
                    net -= q
                    value += alt.limit
                    ok &= P @ q <= alt.limit
            for o, t in zip(offers, taken, strict=True):
                if t:
                    q = qvec(o.legs)
                    net += q
                    value -= o.min_total
                    ok &= P @ q >= o.min_total
            # divisibles must net-buy exactly `net`: dmin - smax <= net <= dmax - smin
            ok &= ((dmin - smax <= net) & (net <= dmax - smin)).all(axis=1)
            if not ok.any():
                continue
            # the marginal orders (at the price) trade net - (dmin - smin) at the price
            div = (full_surplus + P * (net - (dmin - smin))).sum(axis=1)
            s = value + int(div[ok].max())
            best = s if best is None else max(best, s)
    return best


def _check_result(r, bids, offers, divs, instruments=None):
    inst = {i.instrument_id: i for i in instruments or _instruments()}
    price = {p.instrument: p.price for p in r.prices}
    for i, p in price.items():
        assert inst[i].min_price <= p <= inst[i].max_price and p % inst[i].price_increment == 0
    bought: dict[int, int] = {}
    sold: dict[int, int] = {}
    for f in r.fills:
        assert f.price == price[f.instrument] and f.amount == f.qty * f.price
        side = bought if f.buy else sold
        side[f.instrument] = side.get(f.instrument, 0) + f.qty
    assert bought == sold  # supply never exceeded, never left unpaid
    assert sum(f.amount for f in r.fills if f.buy) == sum(f.amount for f in r.fills if not f.buy)
    surplus = 0
    by_key = {(o.kind, o.order_id): o for o in r.outcomes}
    for b in bids:
        out = by_key[(OrderKind.PACKAGE_BID, b.bid_id)]
        fills = sorted(
            (f.instrument, f.qty) for f in r.fills if f.kind == OrderKind.PACKAGE_BID and f.order_id == b.bid_id
        )
        if out.outcome == Outcome.ACCEPTED:
            alt = b.alternatives[out.alternative]  # exactly one alternative, in full
            assert fills == sorted((leg.instrument, leg.qty) for leg in alt.legs)
            assert sum(q * price[i] for i, q in fills) <= alt.limit
            surplus += alt.limit
        else:
            assert fills == []
    for o in offers:
        out = by_key[(OrderKind.PACKAGE_OFFER, o.offer_id)]
        fills = sorted(
            (f.instrument, f.qty) for f in r.fills if f.kind == OrderKind.PACKAGE_OFFER and f.order_id == o.offer_id
        )
        if out.outcome == Outcome.ACCEPTED:
            assert fills == sorted((leg.instrument, leg.qty) for leg in o.legs)
            assert sum(q * price[i] for i, q in fills) >= o.min_total
            surplus -= o.min_total
        else:
            assert fills == []
    for d in divs:
        out = by_key[
            (OrderKind.DIVISIBLE_BID if isinstance(d, DivisibleBid) else OrderKind.DIVISIBLE_OFFER, d.order_id)
        ]
        q, p = out.filled_qty, price[d.instrument]
        better = d.limit > p if isinstance(d, DivisibleBid) else d.limit < p
        if better:
            assert q == d.qty
        elif d.limit != p:
            assert q == 0
        surplus += d.limit * q if isinstance(d, DivisibleBid) else -d.limit * q
    assert surplus == r.total_surplus


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_engine_surplus_equals_best_admissible_surplus_by_exhaustive_search(inst):
    bids, offers, divs = inst
    r = clear(_instruments(), bids, offers, divs)
    assert r.proven_optimal
    _check_result(r, bids, offers, divs)
    assert r.total_surplus == _oracle(bids, offers, divs)
    assert r.ir_cost == r.unconstrained_surplus - r.total_surplus >= 0


@settings(max_examples=40, deadline=None)
@given(instances())
def test_same_inputs_give_the_same_result(inst):
    bids, offers, divs = inst
    assert clear(_instruments(), bids, offers, divs) == clear(_instruments(), bids, offers, divs)


@settings(max_examples=60, deadline=None)
@given(instances())
def test_heuristic_rounds_still_give_admissible_prices(inst):
    # exact_rounds=1: an inadmissible first decision is repaired (its paradoxically accepted packages
    # removed, EUPHEMIA-style); the result stays admissible, never better than the oracle, and a repair
    # that lost surplus is not called optimal (the first solve's bound is above it).
    bids, offers, divs = inst
    r = clear(_instruments(), bids, offers, divs, exact_rounds=1)
    _check_result(r, bids, offers, divs)
    assert r.rounds == 1 and r.total_surplus <= _oracle(bids, offers, divs)
    if r.ir_cost > 0:
        assert not r.proven_optimal


def _crowded_market(seed: int):
    """A day of hours, 240 block bids (two alternatives each) against 30 provider blocks and a thin book."""
    rng = random.Random(seed)
    hours = 24
    instruments = [Instrument(h, "H100", "US-EAST", "FIRM", h * NS_PER_HOUR, 0, 0, 100, 400, 1, 1000, 0)
                   for h in range(hours)]
    bids = []
    for b in range(240):
        alts = []
        for _ in range(2):
            n, start = rng.randint(2, 6), rng.randint(0, hours - 6)
            gpus = rng.randint(1, 8)
            alts.append(Alternative([Leg(h, gpus) for h in range(start, start + n)], n * gpus * rng.randint(150, 300)))
        bids.append(PackageBid(b + 1, b % 7, alts))
    offers = []
    for o in range(30):
        n, start = rng.randint(4, 12), rng.randint(0, hours - 12)
        gpus = rng.randint(8, 32)
        offers.append(PackageOffer(o + 1, 100 + o, [Leg(h, gpus) for h in range(start, start + n)],
                                   n * gpus * rng.randint(120, 220)))
    divs = []
    for h in range(hours):
        divs.append(DivisibleBid(2 * h + 1, 200, h, rng.randint(4, 16), rng.randint(150, 190)))
        divs.append(DivisibleOffer(2 * h + 2, 201, h, rng.randint(4, 16), rng.randint(210, 260)))
    return instruments, bids, offers, divs


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("time_limit_s", [0.0, 0.01])
def test_a_time_limit_too_short_to_prove_anything_still_leaves_an_admissible_allocation(seed, time_limit_s):
    # The budget runs out during the start or the first solve: whatever decision HiGHS holds then
    # (the relaxation's rounding at worst, the empty decision with no time at all) is repaired into
    # an admissible one; nothing is reported as proven that was not.
    instruments, bids, offers, divs = _crowded_market(seed)
    r = clear(instruments, bids, offers, divs, time_limit_s=time_limit_s, mip_gap=1e-4)
    _check_result(r, bids, offers, divs, instruments)
    assert not r.proven_optimal and r.status == AuctionStatus.FEASIBLE
    assert math.isfinite(r.mip_gap)  # the LP's bound, or the Lagrangian's when it had no time
    assert r.ir_cost == r.unconstrained_surplus - r.total_surplus >= 0


class _StepClock:
    """A clock for ``clear`` that advances ``step`` seconds each time it is read."""

    def __init__(self, step: float):
        self.now, self.step, self.reads = 0.0, step, 0

    def __call__(self) -> float:
        self.now += self.step
        self.reads += 1
        return self.now


@pytest.mark.parametrize("seed", range(3))
def test_the_injected_clock_is_the_budget(seed):
    # With a clock, the budget counts everything, not only HiGHS's seconds: here building the model
    # already uses it up (each read is a minute later), so the solver gets no time and the start is
    # the decision, repaired; still admissible, and not reported as proven.
    instruments, bids, offers, divs = _crowded_market(seed)
    clock = _StepClock(60.0)
    r = clear(instruments, bids, offers, divs, time_limit_s=30.0, mip_gap=1e-4, clock=clock)
    _check_result(r, bids, offers, divs, instruments)
    assert clock.reads >= 2
    assert not r.proven_optimal and math.isfinite(r.mip_gap)


@pytest.mark.parametrize("seed", range(3))
def test_a_repaired_decision_is_admissible_and_keeps_most_of_the_surplus(seed):
    # Lumpy blocks make the surplus-maximising decision inadmissible here; the repair (culprits out,
    # a greedy removal, the best of what it dropped added back) keeps at least 80 % of its surplus
    # (85-99 % measured) (the greedy removal alone kept nothing on two of these seeds: one dropped
    # block offer starves its hours of supply).
    instruments, bids, offers, divs = _crowded_market(seed)
    # a budget of HiGHS seconds (wall time): 2 s sufficed on a quiet machine, not under a busy one (the
    # [call phase] issue makes small and medium auctions independent of the machine's speed)
    r = clear(instruments, bids, offers, divs, time_limit_s=6.0, mip_gap=1e-4, exact_rounds=1)
    _check_result(r, bids, offers, divs, instruments)
    assert r.ir_cost > 0 and r.total_surplus >= 0.8 * r.unconstrained_surplus


@settings(max_examples=80, deadline=None)
@given(instances())
def test_a_decision_rebuilds_its_result_without_a_solver(inst):
    # what the journal keeps of a clearing (engine.auction.market) gives back the whole result
    bids, offers, divs = inst
    r = clear(_instruments(), bids, offers, divs)
    d = decision_of(r)
    assert result_of(_instruments(), bids, offers, divs, d) == r
    if r.prices:
        with pytest.raises(ValueError):
            result_of(_instruments(), bids, offers, divs, Decision(d.accepted, d.prices[1:], True, 0.0, 0, 1))


@settings(max_examples=150, deadline=None)
@given(instances())
def test_the_lagrangian_bound_is_never_below_the_optimum(inst):
    # The bound reported when the LP has no time to finish: for any prices, the relaxed balance rows
    # leave each order its best positive surplus, which no feasible decision can beat.
    bids, offers, divs = inst
    r = clear(_instruments(), bids, offers, divs)
    bound, prices = _lagrangian(_Problem(_instruments(), bids, offers, divs))
    assert r.proven_optimal
    assert bound >= r.unconstrained_surplus - 1e-6 and len(prices) == len({d.instrument for d in divs} | {
        leg.instrument for b in bids for a in b.alternatives for leg in a.legs} | {
        leg.instrument for o in offers for leg in o.legs})


@settings(max_examples=150, deadline=None)
@given(instances(), st.randoms(use_true_random=False))
def test_a_restricted_milp_solves_like_the_full_one_with_fixed_columns(inst, rnd):
    # Sub-models (the dive's, the repair's) drop fixed columns and shift the rows instead of fixing bounds.
    bids, offers, divs = inst
    m = winner_determination_milp(_instruments(), bids, offers, divs)
    n = len(m.cost)
    one = np.array([rnd.random() < 0.2 and m.integer[c] for c in range(n)], dtype=bool)
    keep = np.array([not one[c] and rnd.random() < 0.7 for c in range(n)], dtype=bool)
    assume(keep.any())  # HiGHS calls a model without columns empty, not optimal
    full = _highs_of(m, 10.0, 0.0)
    full.changeColsBounds(n, np.arange(n, dtype=np.int32), one.astype(np.float64),
                          np.where(keep, m.col_hi, one.astype(np.float64)))
    full.run()
    sub = _highs_of(_restricted(m, keep, one), 10.0, 0.0)
    sub.run()
    assert (full.getModelStatus() == _OPTIMAL) == (sub.getModelStatus() == _OPTIMAL)
    if full.getModelStatus() == _OPTIMAL:
        fixed = float(m.cost[one].sum())
        got = sub.getInfo().objective_function_value + fixed
        assert abs(full.getInfo().objective_function_value - got) < 1e-6
