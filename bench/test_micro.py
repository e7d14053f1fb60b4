"""Micro-benchmarks of single commands through the Python API (pytest-benchmark).

Run with ``pytest bench/test_micro.py --benchmark-only`` (``bench/run_all.py``
does); the normal test run does not collect this folder (testpaths = tests).
Each benchmark runs against the numba core (``engine.exchange.Exchange``) and
the plain-Python reference (``engine.reference.ReferenceExchange``), grouped by
operation so the table compares them; an implementation that does not import
is skipped.

Operations, each one API call per timed iteration (times are per command):

* ``add``: a new GTC limit order resting behind the touch of a book with 40
  levels of 25 orders per side (``add_with_enum_arguments``: the same with
  ``Side.BUY`` instead of a plain int, which costs the numba core extra);
* ``cancel``: cancel of a resting order in such a book;
* ``modify_reduce``: same price, one GPU less (in place, keeps priority);
* ``modify_reprice``: one tick further from the touch (leaves and re-enters);
* ``sweep_100_levels``: a market buy that sweeps 100 ask levels of one order
  each (the levels are put back, untimed, before each round).
"""

from __future__ import annotations

import importlib
import itertools

import pytest

from bench.flow import make_instruments
from engine.codes import OrderType, Side, TimeInForce

# Plain ints, not the IntEnum members: numba types an IntEnum argument differently (a separate compiled
# specialisation and a slower dispatch), which test_add_with_enum_arguments measures on its own.
BUY, SELL = int(Side.BUY), int(Side.SELL)
MARKET, IOC = int(OrderType.MARKET), int(TimeInForce.IOC)
MID = 2500
LEVELS, PER_LEVEL = 40, 25
ROUNDS, ITERATIONS = 30, 1000  # 30,000 commands per benchmark


def _load(name: str):
    module, cls = {"core": ("engine.exchange", "Exchange"), "reference": ("engine.reference", "ReferenceExchange")}[
        name
    ]
    try:
        return getattr(importlib.import_module(module), cls)
    except Exception as exc:  # noqa: BLE001 - not there yet or broken: skip that implementation
        pytest.skip(f"{module}.{cls} is not importable: {type(exc).__name__}: {exc}")


@pytest.fixture(params=["core", "reference"], scope="module")
def exchange_class(request):
    cls = _load(request.param)
    _warm_up(cls)
    return cls


def _warm_up(cls) -> None:
    """Call every API path once so numba compiles (or loads its cache) before timing."""
    ex = cls(make_instruments())
    ex.new_order(1, 0, 1, 0, SELL, MID + 1, 10)
    ex.new_order(2, 0, 2, 0, SELL, MID + 2, 10)
    ex.modify(3, 0, 1, MID + 1, 5)
    ex.modify(4, 0, 1, MID + 3, 5)
    ex.cancel(5, 0, 2)
    ex.new_order(6, 1, 1, 0, BUY, 0, 5, MARKET, IOC)


class _Book:
    """An exchange with a deep two-sided book and counters for the next ids and times."""

    def __init__(self, cls, extra_orders: int = 0):
        self.ex = cls(make_instruments())
        self.ts = itertools.count(1_000)
        self.coid = itertools.count(1)
        self.resting: list[int] = []
        oid = 0
        for level in range(LEVELS):
            for _ in range(PER_LEVEL):
                for side, price in ((BUY, MID - 1 - level), (SELL, MID + 1 + level)):
                    self.ex.new_order(next(self.ts), 1 + oid % 6, next(self.coid), 0, side, price, 100)
                    oid += 1
        for k in range(extra_orders):  # orders for cancel/modify to use up, spread over the bid levels
            self.ex.new_order(next(self.ts), 1 + k % 6, next(self.coid), 0, BUY, MID - 1 - k % LEVELS, 1000)
            oid += 1
            self.resting.append(oid)


@pytest.mark.benchmark(group="add")
def test_add(benchmark, exchange_class):
    book = _Book(exchange_class)
    ex, ts, coid = book.ex, book.ts, book.coid
    prices = itertools.cycle(range(MID - LEVELS, MID))

    def add():
        ex.new_order(next(ts), 7, next(coid), 0, BUY, next(prices), 10)

    benchmark.pedantic(add, rounds=ROUNDS, iterations=ITERATIONS)


@pytest.mark.benchmark(group="add")
def test_add_with_enum_arguments(benchmark, exchange_class):
    """As test_add, but side passed as ``Side.BUY`` (an IntEnum), as callers naturally write it."""
    book = _Book(exchange_class)
    ex, ts, coid = book.ex, book.ts, book.coid
    prices = itertools.cycle(range(MID - LEVELS, MID))
    ex.new_order(next(ts), 7, next(coid), 0, Side.BUY, MID - 1, 10)  # compile this signature before timing

    def add():
        ex.new_order(next(ts), 7, next(coid), 0, Side.BUY, next(prices), 10)

    benchmark.pedantic(add, rounds=ROUNDS, iterations=ITERATIONS)


@pytest.mark.benchmark(group="cancel")
def test_cancel(benchmark, exchange_class):
    book = _Book(exchange_class, extra_orders=ROUNDS * ITERATIONS + 1)
    ex, ts = book.ex, book.ts
    targets = iter(book.resting)
    firm_of = {oid: 1 + k % 6 for k, oid in enumerate(book.resting)}

    def cancel():
        oid = next(targets)
        ex.cancel(next(ts), firm_of[oid], oid)

    benchmark.pedantic(cancel, rounds=ROUNDS, iterations=ITERATIONS)
    assert ex.order(book.resting[0]) is None


@pytest.mark.benchmark(group="modify_reduce")
def test_modify_reduce(benchmark, exchange_class):
    book = _Book(exchange_class, extra_orders=ROUNDS * ITERATIONS + 1)
    ex, ts = book.ex, book.ts
    targets = iter([(oid, 1 + k % 6, MID - 1 - k % LEVELS) for k, oid in enumerate(book.resting)])

    def modify():
        oid, firm, price = next(targets)
        ex.modify(next(ts), firm, oid, price, 999)

    benchmark.pedantic(modify, rounds=ROUNDS, iterations=ITERATIONS)
    assert ex.order(book.resting[0]).leaves == 999


@pytest.mark.benchmark(group="modify_reprice")
def test_modify_reprice(benchmark, exchange_class):
    book = _Book(exchange_class, extra_orders=ROUNDS * ITERATIONS + 1)
    ex, ts = book.ex, book.ts
    targets = iter([(oid, 1 + k % 6, MID - 2 - k % LEVELS) for k, oid in enumerate(book.resting)])

    def modify():
        oid, firm, price = next(targets)
        ex.modify(next(ts), firm, oid, price, 1000)

    benchmark.pedantic(modify, rounds=ROUNDS, iterations=ITERATIONS)
    assert ex.order(book.resting[0]).price == MID - 2


@pytest.mark.benchmark(group="sweep_100_levels")
def test_sweep_100_levels(benchmark, exchange_class):
    ex = exchange_class(make_instruments())  # one exchange: each sweep empties the ask side again
    ts, coid = itertools.count(1), itertools.count(1)

    def refill():
        for level in range(100):
            ex.new_order(next(ts), 1, next(coid), 0, SELL, MID + 1 + level, 10)
        return (), {}

    def sweep():
        return ex.new_order(next(ts), 2, next(coid), 0, BUY, 0, 1000, MARKET, IOC)

    n_events = benchmark.pedantic(sweep, setup=refill, rounds=200, warmup_rounds=2)
    assert ex.best_ask(0) is None
    assert n_events == 1 + 4 * 100  # Accepted, then per level: Fill, Fill, Trade, BookLevel; nothing left to cancel
