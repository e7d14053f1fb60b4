"""Shared fixtures: every exchange implementation, over a small instrument listing.

``make_exchange`` is parametrized over ``IMPLEMENTATIONS``, so each test that uses
it (or ``ex``) runs once per implementation: the reference exchange always, the
numba core (``engine.exchange``).

The default listing (fixture ``instruments``), all open from time 0:

* 0: price increment 1;
* 1: price increment 5;
* 2: price increment 1, gate closure at ``CLOSE_NS``.

Every instrument has the band 1..1_000_000 ticks, max_order_qty 1000 and
protection_ticks 50; the others close far in the future.
"""

import pytest

from engine.core.layout import FULL_DUP, grow
from engine.exchange import Exchange
from engine.instruments import NS_PER_HOUR, Instrument
from engine.records import NewOrder, commands_to_records
from engine.reference import ReferenceExchange

IMPLEMENTATIONS: list[tuple[str, type]] = [("reference", ReferenceExchange), ("core", Exchange)]

CLOSE_NS = 1_000_000  # gate closure of instrument 2


def pytest_sessionstart(session):
    """Compile (or load from numba's cache) every compiled path of the core before any test runs.

    A cold compile takes tens of seconds: longer than the bounded waits of the
    socket tests, which would otherwise pay it inside their first exchange."""
    ex = Exchange(make_instruments(), 4)
    ex.submit_batch(commands_to_records([NewOrder(1, 0, 1, 0, 0, 100, 1)]))
    ex.new_order(2, 0, 2, 0, 1, 101, 1)
    ex.modify(3, 0, 2, 102, 1)
    ex.cancel(4, 0, 2)
    grow(ex.arena, FULL_DUP)
FAR_FUTURE_NS = 10**18


def make_instruments() -> list[Instrument]:
    """The default listing described in the module docstring."""
    delivery = 1_800_000_000 * 10**9 // NS_PER_HOUR * NS_PER_HOUR
    return [
        Instrument(i, "H100", "US-EAST", "FIRM", delivery + i * NS_PER_HOUR, open_ns=0, close_ns=close_ns,
                   min_price=1, max_price=1_000_000, price_increment=increment, max_order_qty=1000,
                   protection_ticks=50)
        for i, (increment, close_ns) in enumerate([(1, FAR_FUTURE_NS), (5, FAR_FUTURE_NS), (1, CLOSE_NS)])
    ]


@pytest.fixture
def instruments() -> list[Instrument]:
    return make_instruments()


@pytest.fixture(params=IMPLEMENTATIONS, ids=[name for name, _ in IMPLEMENTATIONS])
def make_exchange(request, instruments):
    """A factory: ``make_exchange(instruments=<default listing>, max_firms=256)`` -> a new exchange."""
    cls = request.param[1]

    def make(listing: list[Instrument] | None = None, max_firms: int = 256):
        return cls(instruments if listing is None else listing, max_firms)

    return make


@pytest.fixture
def ex(make_exchange):
    """A new exchange over the default listing."""
    return make_exchange()
