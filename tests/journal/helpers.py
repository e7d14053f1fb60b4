"""Command streams and journal fixtures for the journal tests.

``random_records(rng, n, ...)`` draws a mixed command stream on the default
test listing (``tests.conftest.make_instruments``): GTC and IOC limit orders
around a mid (so orders rest and cross), cancels and modifies of recent order
ids (some of them unknown or filled: rejected), mass quotes, mass cancels,
halts and resumes, time advances. Client order ids are unique per firm across
calls (the caller keeps ``IdState``), quote ids are >= ``QUOTE_ID_BASE``, and
``ts`` grows by 1000 ns per record, so every record is distinct.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from engine.codes import CommandKind, SelfTradePrevention, TimeInForce
from engine.records import COMMAND_DTYPE
from journal.log import JournalConfig
from journal.sequencer import JournaledExchange
from tests.conftest import make_instruments

QUOTE_ID_BASE = 10**9
FIRMS = 8
TS_START = 10**9


@dataclass
class IdState:
    ts: int = TS_START
    next_clid: int = 1  # shared counter: unique per firm too
    next_quote: int = QUOTE_ID_BASE
    orders_sent: int = 0  # new orders sent so far (ids handed out are at most this many)


def random_records(rng: random.Random, n: int, ids: IdState | None = None) -> np.ndarray:
    ids = ids or IdState()
    rec = np.zeros(n, dtype=COMMAND_DTYPE)
    for i in range(n):
        ids.ts += 1000
        r = rec[i]
        r["ts"] = ids.ts
        u = rng.random()
        firm = rng.randrange(FIRMS)
        inst = rng.choice((0, 0, 0, 1, 1, 2))
        step = 5 if inst == 1 else 1
        side = rng.randrange(2)
        if u < 0.55:
            ioc = rng.random() < 0.25
            r["kind"] = CommandKind.NEW_ORDER
            r["firm"], r["instrument"], r["side"] = firm, inst, side
            r["client_order_id"] = ids.next_clid
            ids.next_clid += 1
            ids.orders_sent += 1
            offset = rng.randrange(-3, 8) * step
            r["price"] = 1000 + (-offset if side == 0 else offset) * (-1 if ioc else 1)
            r["qty"] = rng.randrange(1, 60)
            r["tif"] = TimeInForce.IOC if ioc else TimeInForce.GTC
            r["stp"] = rng.choice(list(SelfTradePrevention))
        elif u < 0.70:
            r["kind"] = CommandKind.CANCEL
            r["firm"], r["instrument"] = firm, -1
            r["order_id"] = rng.randrange(1, ids.orders_sent + 2)
        elif u < 0.80:
            r["kind"] = CommandKind.MODIFY
            r["firm"], r["instrument"] = firm, -1
            r["order_id"] = rng.randrange(1, ids.orders_sent + 2)
            r["price"] = 1000 + rng.randrange(-6, 7) * step
            r["qty"] = rng.randrange(1, 60)
        elif u < 0.92:
            r["kind"] = CommandKind.MASS_QUOTE
            r["firm"], r["instrument"] = firm, inst
            r["client_order_id"] = ids.next_quote
            ids.next_quote += 1
            half = rng.randrange(1, 5) * step
            r["price"], r["qty"] = 1000 - half, rng.randrange(0, 40)
            r["price2"], r["qty2"] = 1000 + half, rng.randrange(0, 40)
        elif u < 0.95:
            r["kind"] = CommandKind.MASS_CANCEL
            r["firm"], r["instrument"] = firm, rng.choice((-1, 0, 1))
        elif u < 0.97:
            r["kind"] = CommandKind.HALT if u < 0.955 else CommandKind.RESUME
            r["firm"], r["instrument"] = -1, rng.choice((0, 1))
        else:
            r["kind"] = CommandKind.ADVANCE_TIME
            r["firm"], r["instrument"] = -1, -1
    return rec


def small_config(**overrides) -> JournalConfig:
    """Tiny segments, frequent checkpoints and snapshots, no fsync (tests that do not crash the machine)."""
    base = dict(fsync="none", segment_bytes=8192, checkpoint_every_commands=500, checkpoint_interval_s=0,
                snapshot_every_commands=0, snapshot_on_close=False, keep_snapshots=2)
    base.update(overrides)
    return JournalConfig(**base)


def write_journal(directory, batches: list[np.ndarray], config: JournalConfig | None = None,
                  close: bool = True) -> JournaledExchange:
    """A journal of these batches (one journal batch each) on the test listing."""
    je = JournaledExchange.create(directory, make_instruments(), config=config or small_config())
    for b in batches:
        je.process_batch(b)
    if close:
        je.close()
    return je


def make_batches(seed: int, n_batches: int, max_size: int = 40) -> list[np.ndarray]:
    rng = random.Random(seed)
    ids = IdState()
    return [random_records(rng, rng.randrange(1, max_size + 1), ids) for _ in range(n_batches)]


def file_states(directory) -> dict[str, bytes]:
    """Every file's name -> content, to show that nothing was modified."""
    from pathlib import Path

    return {p.name: p.read_bytes() for p in sorted(Path(directory).iterdir()) if p.is_file()}
