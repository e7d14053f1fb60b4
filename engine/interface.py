"""The Python API that every exchange implementation offers, and its views.

``ExchangeAPI`` is implemented twice: ``engine.reference.ReferenceExchange``
(plain Python on sortedcontainers, the readable specification and test
oracle) and ``engine.exchange.Exchange`` (the numba core). Tests run the same
cases against both, and property tests check they emit identical events.

Submitting:
* ``submit(cmd)`` -> list of event structs (convenient, for tests and tools);
* ``submit_batch(records)`` -> event records (the fast path, one crossing into
  the engine per batch); ``last_command_ends[i]`` tells where command i's
  events end, so a gateway can answer each command's sender;
* ``new_order / cancel / modify`` -> number of events, the records of which
  are then in ``last_events`` (one command at a time with no struct building).

``order(order_id)`` describes a live (resting) order and is None for any
other id. Queries are read-only and cost O(1) for the best prices, O(n) for ``depth``
and O(orders in the book) for ``book_orders``.
"""

from __future__ import annotations

from typing import Protocol

import msgspec
import numpy as np

from engine.records import Command, Event


class LevelView(msgspec.Struct, frozen=True):
    price: int
    qty: int  # aggregate open quantity
    count: int  # orders at the level


class OrderStatus(msgspec.Struct, frozen=True):
    order_id: int
    firm: int
    client_order_id: int
    instrument: int
    side: int
    price: int
    leaves: int
    cum: int
    tif: int


class RestingOrder(msgspec.Struct, frozen=True):
    order_id: int
    firm: int
    price: int
    leaves: int


class ExchangeAPI(Protocol):
    def submit(self, cmd: Command) -> list[Event]: ...

    def submit_batch(self, records: np.ndarray) -> np.ndarray: ...

    def new_order(self, ts: int, firm: int, client_order_id: int, instrument: int, side: int, price: int,
                  qty: int, ord_type: int = 0, tif: int = 0, post_only: int = 0, stp: int = 0,
                  expire_ts: int = 0) -> int: ...

    def cancel(self, ts: int, firm: int, order_id: int) -> int: ...

    def modify(self, ts: int, firm: int, order_id: int, price: int, qty: int) -> int: ...

    @property
    def last_events(self) -> np.ndarray: ...

    @property
    def last_command_ends(self) -> np.ndarray: ...

    @property
    def now(self) -> int: ...

    def status(self, instrument: int) -> int: ...

    def best_bid(self, instrument: int) -> LevelView | None: ...

    def best_ask(self, instrument: int) -> LevelView | None: ...

    def depth(self, instrument: int, n: int) -> tuple[list[LevelView], list[LevelView]]: ...

    def order(self, order_id: int) -> OrderStatus | None: ...

    def book_orders(self, instrument: int, side: int) -> list[RestingOrder]: ...
