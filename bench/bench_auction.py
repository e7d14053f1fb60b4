"""Benchmark of the call-auction clearing core (engine.auction.clearing.clear).

Two families of instances, generated deterministically from a seed:

* compute-shaped: 4 accelerators x 2 regions x 48 hours (FIRM) = 384 instruments; package bids are
  exclusive groups of 1-2 block requests ("g GPUs for h uninterrupted hours somewhere in a window",
  possibly on another accelerator or region as the fallback), providers offer all-or-none blocks of
  consecutive hours, and the resting book takes part as divisible bids and asks around a base price;
* general combinatorial: bundles of 1-6 arbitrary instruments (any product, region, hour: paths,
  schedules), 1-3 alternatives each, against provider blocks and divisible asks.

For 1,000 / 10,000 / 50,000 package bids it prints the clearing time (measured here, outside the
pure core), the MILP status and gap, accepted counts and the IR cost, then one summary line::

    auction_10k_s=... auction_50k_s=... optimal=... second_solver_agrees=...

Usage: python bench/bench_auction.py [--sizes 1000,10000,50000] [--time-limit 2] [--gap 1e-4]

``--time-limit`` is the clearing's budget (``clear``'s ``time_limit_s``; default 2 s, the venue's
configured default), in wall time as in the venue (``clear``'s ``clock``): building the model, the
LP-based start, the MILP and, if the decision admits no uniform prices, the exact no-good rounds
(up to half of it) and the repair share it. clear_s can exceed it by what HiGHS runs past its time
limits (its root cut separation does not look at them), the last price MIPs (a quarter of the
budget at least) and building the result.
CBC (PuLP, the ``bench`` extra, pinned in requirements.lock) re-solves the first
winner-determination MILP of every instance up to ``--second-solver-max`` bids (default
1,000) within ``--second-solver-limit`` seconds, against HiGHS given the same limit (a
reference run, also compared with the budgeted one); the objectives must agree within the
gaps (``second_solver_agrees``: yes / no / skipped with why).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.auction.clearing import clear, winner_determination_milp
from engine.auction.orders import (
    Alternative,
    BlockOffer,
    BlockRequest,
    DivisibleBid,
    DivisibleOffer,
    Leg,
    PackageBid,
    instrument_lookup,
    package_bid_from_requests,
    package_offer_from_block,
)
from engine.instruments import NS_PER_HOUR, Instrument  # noqa: E402

ACCELERATORS = {"H100": 2000, "H200": 2600, "B200": 4000, "MI300X": 1800}  # base price, ticks per GPU-hour
REGIONS = ("US-EAST", "EU-NORTH")
HOURS = 48
H = NS_PER_HOUR


def listing() -> list[Instrument]:
    out = []
    for acc, base in ACCELERATORS.items():
        for region in REGIONS:
            for h in range(HOURS):
                out.append(Instrument(len(out), acc, region, "FIRM", h * H, 0, 0, 100, base * 20, 1, 100_000, 0))
    return out


def compute_instance(n_bids: int, seed: int):
    rng = random.Random(seed)
    instruments = listing()
    lookup = instrument_lookup(instruments)
    products = [(a, r) for a in ACCELERATORS for r in REGIONS]
    bids = []
    for b in range(n_bids):
        requests = []
        for _ in range(rng.choice((1, 1, 2))):
            acc, region = rng.choice(products)
            hours = rng.randint(2, 8)
            start = rng.randint(0, HOURS - hours)
            slack = rng.randint(0, 4)
            end = min(HOURS, start + hours + slack)
            price = int(ACCELERATORS[acc] * rng.uniform(0.8, 1.5))
            requests.append(BlockRequest(acc, region, "FIRM", rng.randint(1, 16), hours, start * H, end * H, price))
        bids.append(package_bid_from_requests(b + 1, b % 500, requests, lookup))
    # providers: blocks sized so that supply is roughly 60% of the demand's GPU-hours
    demand = sum(alt.legs[0].qty * len(alt.legs) for bid in bids for alt in bid.alternatives[:1])
    offers = []
    supplied = 0
    o = 0
    while supplied < 0.6 * demand:
        acc, region = rng.choice(products)
        hours = rng.randint(6, 24)
        start = rng.randint(0, HOURS - hours)
        gpus = rng.randint(8, 64)
        price = int(ACCELERATORS[acc] * rng.uniform(0.6, 1.1))
        o += 1
        offers.append(
            package_offer_from_block(
                BlockOffer(o, 1000 + o % 50, acc, region, "FIRM", gpus, hours, start * H, price), lookup
            )
        )
        supplied += gpus * hours
    return instruments, bids, offers, book(instruments, rng)


def book(instruments: list[Instrument], rng: random.Random, levels: int = 3):
    """Resting book orders as divisible bids and asks: ``levels`` per side around the base price."""
    divs: list[DivisibleBid | DivisibleOffer] = []
    for inst in instruments:
        base = ACCELERATORS[inst.accelerator]
        for lvl in range(levels):
            qty = rng.randint(16, 64)
            divs.append(DivisibleBid(len(divs) + 1, 2000, inst.instrument_id, qty, int(base * (0.97 - 0.03 * lvl))))
            qty = rng.randint(16, 64)
            divs.append(DivisibleOffer(len(divs) + 1, 2001, inst.instrument_id, qty, int(base * (1.03 + 0.03 * lvl))))
    return divs


def general_instance(n_bids: int, seed: int):
    rng = random.Random(seed)
    instruments = listing()
    n = len(instruments)
    bids = []
    for b in range(n_bids):
        alts = []
        for _ in range(rng.randint(1, 3)):
            ids = sorted(rng.sample(range(n), rng.randint(1, 6)))
            legs = [Leg(i, rng.randint(1, 8)) for i in ids]
            value = sum(leg.qty * ACCELERATORS[instruments[leg.instrument].accelerator] for leg in legs)
            alts.append(Alternative(legs, int(value * rng.uniform(0.8, 1.5))))
        bids.append(PackageBid(b + 1, b % 500, alts))
    offers = []
    lookup = instrument_lookup(instruments)
    products = [(a, r) for a in ACCELERATORS for r in REGIONS]
    for o in range(max(1, n_bids // 20)):
        acc, region = rng.choice(products)
        hours = rng.randint(4, 24)
        start = rng.randint(0, HOURS - hours)
        price = int(ACCELERATORS[acc] * rng.uniform(0.6, 1.1))
        offers.append(
            package_offer_from_block(
                BlockOffer(o + 1, 1000 + o % 50, acc, region, "FIRM", rng.randint(4, 32), hours, start * H, price),
                lookup,
            )
        )
    return instruments, bids, offers, book(instruments, rng)


def run(name, instance, time_limit, gap):
    instruments, bids, offers, divs = instance
    legs = sum(len(a.legs) for b in bids for a in b.alternatives)
    t0 = time.perf_counter()
    r = clear(instruments, bids, offers, divs, time_limit_s=time_limit, mip_gap=gap, clock=time.perf_counter)
    dt = time.perf_counter() - t0
    print(
        f"{name:<18} {len(bids):>7} {sum(len(b.alternatives) for b in bids):>8} {legs:>8} {len(offers):>6} "
        f"{dt:>9.2f} {r.status.name:>8} {r.mip_gap:>8.1e} {r.rounds:>6} {r.accepted_bids:>7} "
        f"{r.accepted_offers:>6} {r.ir_cost:>10} {r.total_surplus:>13}",
        flush=True,
    )
    return dt, r


def cbc_agrees(instance, result, time_limit: float, gap: float) -> str:
    """Solve the first winner-determination MILP again with CBC (PuLP) and compare the optimum.

    The unconstrained optimum is what both solvers are asked for; ``result.unconstrained_surplus``
    is HiGHS's. They agree when the objectives are within both relative gaps. Returns "yes", "no",
    or why it was not checked.
    """
    try:
        import pulp
    except ImportError:
        return "skipped(pulp not installed)"
    m = winner_determination_milp(*instance)
    prob = pulp.LpProblem("wdp", pulp.LpMaximize)
    xs = [
        pulp.LpVariable(f"x{c}", 0, float(m.col_hi[c]), pulp.LpInteger if m.integer[c] else pulp.LpContinuous)
        for c in range(len(m.cost))
    ]
    prob += pulp.lpSum(float(m.cost[c]) * xs[c] for c in range(len(xs)))
    for r in range(len(m.row_lo)):
        a, b = m.starts[r], m.starts[r + 1]
        expr = pulp.lpSum(float(v) * xs[int(c)] for c, v in zip(m.index[a:b], m.value[a:b], strict=True))
        if m.row_lo[r] == m.row_hi[r]:
            prob += expr == float(m.row_lo[r])
        else:
            prob += expr <= float(m.row_hi[r])
    t0 = time.perf_counter()
    prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap))
    dt = time.perf_counter() - t0
    if pulp.LpStatus[prob.status] != "Optimal" or dt >= time_limit:
        return f"skipped(CBC not optimal in {time_limit:.0f}s)"
    cbc = pulp.value(prob.objective)
    ours = result.unconstrained_surplus
    agree = abs(cbc - ours) <= 2 * gap * max(abs(cbc), abs(ours)) + 1e-6
    print(f"second solver: CBC {cbc:.0f} vs HiGHS {ours} in {dt:.1f} s", flush=True)
    return "yes" if agree else "no"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--time-limit", type=float, default=2.0)
    ap.add_argument("--gap", type=float, default=1e-4)
    ap.add_argument("--messages", type=int, help="ignored (run_all.py passes it to every bench script)")
    ap.add_argument("--second-solver-max", type=int, default=1000, help="check sizes up to this with CBC")
    ap.add_argument("--second-solver-limit", type=float, default=120.0, help="CBC time limit, s")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'instance':<18} {'bids':>7} {'alts':>8} {'legs':>8} {'offers':>6} {'clear_s':>9} {'status':>8} "
        f"{'gap':>8} {'rounds':>6} {'acc_bid':>7} {'acc_of':>6} {'ir_cost':>10} {'surplus':>13}"
    )
    times: dict[int, float] = {}
    optimal = True
    checks: list[str] = []
    for n in sizes:
        for name, gen in (("compute", compute_instance), ("general", general_instance)):
            instance = gen(n, seed=n)
            dt, r = run(f"{name}-{n}", instance, args.time_limit, args.gap)
            optimal = optimal and r.proven_optimal
            if name == "compute":
                times[n] = dt
            if n <= args.second_solver_max:  # both solvers on the MILP, each with the second solver's limit
                ref = clear(*instance, time_limit_s=args.second_solver_limit, mip_gap=args.gap)
                print(f"reference (HiGHS, {args.second_solver_limit:.0f} s budget): unconstrained "
                      f"{ref.unconstrained_surplus} {ref.status.name}; the {args.time_limit:g} s clearing reached "
                      f"{r.unconstrained_surplus / max(1, ref.unconstrained_surplus):.5f} of it", flush=True)
                checks.append(cbc_agrees(instance, ref, args.second_solver_limit, args.gap))
    agrees = "no" if "no" in checks else "yes" if "yes" in checks else (checks[0] if checks else "skipped")
    fmt = {n: f"{times[n]:.2f}" if n in times else "na" for n in (10_000, 50_000)}
    print(f"auction_10k_s={fmt[10_000]} auction_50k_s={fmt[50_000]} optimal={optimal} second_solver_agrees={agrees}")


if __name__ == "__main__":
    main()
