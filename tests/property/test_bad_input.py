"""Bad input gets a clear, typed rejection with a reason: never a crash, a hang or lost state.

Both engines (the plain-Python ``ReferenceExchange`` and the numba ``Exchange``)
are fed COMMAND_DTYPE records whose fields are drawn from the full range of
their dtypes (int8 / int32 / int64 extremes, negatives, zero, huge), mixed with
valid commands so that there is state to lose. For every record of a known
kind (1..8):

* both engines process it without an exception and emit identical event
  records, and afterwards agree on every observable (books, depth, status,
  live orders);
* every Rejected / CancelRejected event carries a nonzero reason that is a
  member of ``RejectReason``, and echoes the command it refuses;
* a command whose events are only rejections changes nothing observable
  (the clock aside, which moves forward to the command's ts), and the next
  accepted order still gets the next order id (event seq and order ids stay
  gapless);
* an unknown kind makes ``submit_batch`` raise ValueError.

Also: hand-picked extreme values with the reason the spec
(docs/matching-rules.md) requires, extreme-but-valid values that must be
accepted, a bounded random fuzz loop comparing the two engines, and checks,
each in a child process (a failure there corrupts memory or allocates without
bound), that garbage in the ``qty`` / ``qty2`` columns cannot break the core's
event-buffer room check.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.codes import (
    CancelReason,
    CommandKind,
    EventKind,
    InstrumentStatus,
    OrderType,
    RejectReason,
    TimeInForce,
)
from engine.exchange import Exchange
from engine.records import COMMAND_DTYPE
from engine.reference import ReferenceExchange
from tests.conftest import make_instruments

MAX_FIRMS = 8
LISTING = make_instruments()
N_INST = len(LISTING)
I8, I32, I64 = np.iinfo(np.int8), np.iinfo(np.int32), np.iinfo(np.int64)
KNOWN_KINDS = sorted(int(k) for k in CommandKind)
REASONS = {int(r) for r in RejectReason} - {int(RejectReason.NONE)}
REJECTIONS = (EventKind.REJECTED, EventKind.CANCEL_REJECTED)
FIELD_INFO = {name: np.iinfo(COMMAND_DTYPE.fields[name][0]) for name in COMMAND_DTYPE.names}
REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ helpers


def record(**fields: int) -> np.ndarray:
    """One COMMAND_DTYPE record (a length-1 array); unnamed fields are zero."""
    r = np.zeros(1, dtype=COMMAND_DTYPE)
    for name, value in fields.items():
        r[name] = value
    return r


def snapshot(ex, last_order_id: int) -> tuple:
    """Everything observable about the books and the orders, the clock aside."""
    books = tuple(
        (int(ex.status(i)), ex.book_orders(i, 0), ex.book_orders(i, 1), ex.depth(i, 10**9)) for i in range(N_INST)
    )
    order_ids = [0, -1, int(I64.min), int(I64.max), *range(1, last_order_id + 3)]
    return books, tuple(ex.order(oid) for oid in order_ids)


class Pair:
    """A reference and a core exchange driven in lockstep; every batch is checked."""

    def __init__(self, max_firms: int = MAX_FIRMS):
        self.ref = ReferenceExchange(LISTING, max_firms)
        self.core = Exchange(LISTING, max_firms)
        self.seq = 0  # last event seq seen
        self.last_order_id = 0  # last order id seen in an Accepted event

    def run(self, records: np.ndarray) -> np.ndarray:
        """Submit a batch of known-kind records to both engines; check and return the events."""
        expected = self.ref.submit_batch(records)
        got = self.core.submit_batch(records)
        assert np.array_equal(expected, got), f"engines diverge on\n{records}\nref  {expected}\ncore {got}"
        check_events(expected, self.seq, self.last_order_id)
        if len(expected):
            self.seq = int(expected["seq"][-1])
            accepted = expected["order_id"][expected["kind"] == EventKind.ACCEPTED]
            if len(accepted):
                self.last_order_id = int(accepted[-1])
        assert self.ref.now == self.core.now
        return expected

    def step(self, rec: np.ndarray) -> np.ndarray:
        """One record: run it, and if it was only refused, check that nothing observable changed."""
        before = snapshot(self.ref, self.last_order_id)
        now_before = self.ref.now
        events = self.run(rec)
        after_ref, after_core = snapshot(self.ref, self.last_order_id), snapshot(self.core, self.last_order_id)
        assert after_ref == after_core, f"engines' states diverge after {rec}"
        assert self.ref.now == max(now_before, int(rec["ts"][0])), "the clock must only move forward, to ts"
        if len(events) and np.isin(events["kind"], REJECTIONS).all():
            assert after_ref == before, f"a refused command changed state: {rec}\n{events}"
            check_echo(rec[0], events)
        return events

    def probe(self) -> None:
        """A valid order gets the next order id (then it is cancelled again, if it rests).

        It goes to an open instrument; a halted one is resumed first. When every
        instrument is closed, the probe must be refused as INSTRUMENT_CLOSED.
        """
        ts = self.ref.now
        statuses = [self.ref.status(i) for i in range(N_INST)]
        if InstrumentStatus.OPEN in statuses:
            inst = statuses.index(InstrumentStatus.OPEN)
        elif InstrumentStatus.HALTED in statuses:
            inst = statuses.index(InstrumentStatus.HALTED)
            events = self.run(record(kind=CommandKind.RESUME, ts=ts, instrument=inst, firm=-1))
            assert events["kind"].tolist() == [EventKind.INSTRUMENT_STATUS], events
        else:
            inst = 0
        firm, clid = MAX_FIRMS - 1, 10**15 + self.last_order_id + 1  # a client id the strategies never draw
        expected_id = self.last_order_id + 1
        tick = LISTING[inst].price_increment
        events = self.run(record(kind=CommandKind.NEW_ORDER, ts=ts, firm=firm, client_order_id=clid,
                                 instrument=inst, side=0, price=tick, qty=1))
        if self.ref.status(inst) != InstrumentStatus.OPEN:
            assert (events["kind"].tolist(), events["reason"].tolist()) == (
                [EventKind.REJECTED], [RejectReason.INSTRUMENT_CLOSED]), events
            return
        assert events[0]["kind"] == EventKind.ACCEPTED and events[0]["order_id"] == expected_id, events
        if self.ref.order(expected_id) is not None:
            events = self.run(record(kind=CommandKind.CANCEL, ts=ts, firm=firm, order_id=expected_id))
            assert events[0]["kind"] == EventKind.CANCELLED and events[0]["reason"] == CancelReason.USER, events

    def states_agree(self) -> None:
        assert snapshot(self.ref, self.last_order_id) == snapshot(self.core, self.last_order_id)


def check_events(events: np.ndarray, last_seq: int, last_order_id: int) -> None:
    """Typed rejections with a real reason; seq and accepted order ids without gaps."""
    rejections = events[np.isin(events["kind"], REJECTIONS)]
    bad = [int(r) for r in rejections["reason"] if int(r) not in REASONS]
    assert not bad, f"rejection without a valid RejectReason: {bad}\n{rejections}"
    assert set(events["kind"].tolist()) <= {int(k) for k in EventKind}
    assert events["seq"].tolist() == list(range(last_seq + 1, last_seq + 1 + len(events)))
    accepted = events["order_id"][events["kind"] == EventKind.ACCEPTED].tolist()
    assert accepted == list(range(last_order_id + 1, last_order_id + 1 + len(accepted))), "order ids not gapless"


def check_echo(c, events: np.ndarray) -> None:
    """A rejection names what it refuses (the fields the spec puts in Rejected / CancelRejected)."""
    e = events[-1]  # a time advance emits no rejections, so the refusal is the command's own event
    kind = int(c["kind"])
    if kind in (CommandKind.CANCEL, CommandKind.MODIFY):
        assert e["kind"] == EventKind.CANCEL_REJECTED
        assert (e["order_id"], e["firm"]) == (c["order_id"], c["firm"])
    elif kind == CommandKind.NEW_ORDER:
        assert e["kind"] == EventKind.REJECTED and e["order_id"] == 0
        assert (e["instrument"], e["firm"], e["client_order_id"], e["side"]) == (
            c["instrument"], c["firm"], c["client_order_id"], c["side"])
    elif kind == CommandKind.MASS_QUOTE:
        assert (e["instrument"], e["firm"], e["client_order_id"], e["side"]) == (
            c["instrument"], c["firm"], c["client_order_id"], 0)
    elif kind == CommandKind.MASS_CANCEL:
        assert (e["instrument"], e["firm"], e["client_order_id"]) == (c["instrument"], c["firm"], 0)
    elif kind in (CommandKind.HALT, CommandKind.RESUME):
        assert (e["instrument"], e["firm"]) == (c["instrument"], -1)


# --------------------------------------------------------------- strategies


def full_range(name: str, plausible: tuple[int, int]) -> st.SearchStrategy[int]:
    """Any value of the field's dtype, weighted towards its edges and towards plausible values."""
    info = FIELD_INFO[name]
    lo, hi = int(info.min), int(info.max)
    edges = [lo, lo + 1, lo // 2, -2, -1, 0, 1, 2, hi // 2, hi - 1, hi]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi), st.integers(*plausible))


# plausible ranges (inclusive) per field; a field added to COMMAND_DTYPE later gets (-2, 10)
WILD_PLAUSIBLE = {
    "side": (-1, 2), "ord_type": (-1, 2), "tif": (-1, 4), "stp": (-1, 3), "post_only": (-1, 2), "reason": (-1, 9),
    "instrument": (-2, N_INST), "firm": (-2, MAX_FIRMS), "ts": (0, 3000), "client_order_id": (-1, 50),
    "order_id": (-1, 40), "price": (-10, 1200), "qty": (-2, 1100), "price2": (-10, 1200), "qty2": (-2, 1100),
    "expire_ts": (-10, 6000),
}
WILD_FIELDS = {
    name: full_range(name, WILD_PLAUSIBLE.get(name, (-2, 10))) for name in COMMAND_DTYPE.names if name != "kind"
}


KNOWN_KIND = st.sampled_from(KNOWN_KINDS)


@st.composite
def wild_record(draw, kinds: st.SearchStrategy[int] = KNOWN_KIND) -> np.ndarray:
    fields = {name: draw(strategy) for name, strategy in WILD_FIELDS.items()}
    return record(kind=draw(kinds), **fields)


@st.composite
def valid_record(draw) -> np.ndarray:
    """A well-formed command around prices 90..110 (multiples of 5: valid on every instrument)."""
    kind = draw(st.sampled_from([1, 1, 1, 2, 3, 4, 5, 5, 6, 7, 8]))
    inst = draw(st.integers(0, N_INST - 1))
    firm = draw(st.integers(0, MAX_FIRMS - 1))
    ts = draw(st.integers(0, 3000))
    price = 5 * draw(st.integers(18, 22))
    qty = draw(st.integers(1, 20))
    if kind == CommandKind.NEW_ORDER:
        tif = draw(st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC]))
        return record(kind=kind, ts=ts, firm=firm, client_order_id=draw(st.integers(1, 10**9)), instrument=inst,
                      side=draw(st.integers(0, 1)), price=price, qty=qty, tif=tif,
                      expire_ts=ts + draw(st.integers(1, 5000)))
    if kind in (CommandKind.CANCEL, CommandKind.MODIFY):
        return record(kind=kind, ts=ts, firm=firm, order_id=draw(st.integers(1, 30)), price=price, qty=qty)
    if kind == CommandKind.MASS_QUOTE:
        return record(kind=kind, ts=ts, firm=firm, instrument=inst, client_order_id=draw(st.integers(1, 99)),
                      price=price - 25, qty=draw(st.integers(0, 5)), price2=price + 25, qty2=draw(st.integers(0, 5)))
    if kind == CommandKind.MASS_CANCEL:
        return record(kind=kind, ts=ts, firm=firm, instrument=draw(st.sampled_from([-1, inst])))
    return record(kind=kind, ts=ts, instrument=inst, firm=-1)


# ------------------------------------------------- property: wild known kinds


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(valid_record(), wild_record()), min_size=1, max_size=30))
def test_wild_records_of_known_kinds_are_refused_cleanly_by_both_engines(records):
    pair = Pair()
    for rec in records:
        pair.step(rec)
    pair.probe()
    pair.states_agree()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(valid_record(), wild_record()), min_size=1, max_size=30))
def test_wild_records_give_the_same_events_as_one_batch(records):
    """The whole list as one batch: identical events in both engines, checked like one-by-one."""
    pair = Pair()
    pair.run(np.concatenate(records))
    pair.states_agree()
    pair.probe()


# ----------------------------------------------------------- unknown kinds

UNKNOWN_KINDS = st.integers(int(I8.min), int(I8.max)).filter(lambda k: k not in KNOWN_KINDS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=st.lists(valid_record(), max_size=8), bad=wild_record(kinds=UNKNOWN_KINDS))
def test_unknown_kind_raises_value_error_and_changes_nothing(setup, bad):
    pair = Pair()
    for rec in setup:
        pair.step(rec)
    before = snapshot(pair.ref, pair.last_order_id), pair.ref.now
    for ex in (pair.ref, pair.core):
        with pytest.raises(ValueError, match="unknown command kind"):
            ex.submit_batch(bad)
        assert (snapshot(ex, pair.last_order_id), ex.now) == before
    pair.probe()


@pytest.mark.parametrize("engine", [ReferenceExchange, Exchange], ids=["reference", "core"])
def test_batch_with_an_unknown_kind_is_refused_whole(engine):
    """A batch holding an unknown kind raises ValueError and applies none of its commands.

    Guards against converting record by record (as the reference once did): the
    valid commands before the bad one would be applied, then ValueError raised,
    so state would change (an order rests, the clock moves, seq and order ids
    are consumed) while the caller never sees those commands' events.
    """
    ex = engine(LISTING, MAX_FIRMS)
    batch = np.concatenate([
        record(kind=CommandKind.NEW_ORDER, ts=10, firm=1, client_order_id=1, instrument=0, side=0, price=100, qty=5),
        record(kind=0, ts=20),
    ])
    with pytest.raises(ValueError, match="unknown command kind"):
        ex.submit_batch(batch)
    assert (ex.book_orders(0, 0), ex.now) == ([], 0), "a refused batch left state behind"
    events = ex.submit_batch(batch[:1])
    assert (events["seq"][0], events["order_id"][0]) == (1, 1)


def test_empty_batch_is_a_no_op():
    pair = Pair()
    pair.run(np.zeros(0, dtype=COMMAND_DTYPE))
    pair.probe()


# ------------------------------------------- hand-picked extremes, exact reasons

NEW = {"kind": CommandKind.NEW_ORDER, "firm": 1, "client_order_id": 900, "instrument": 0, "side": 0,
       "price": 100, "qty": 1}
CXL = {"kind": CommandKind.CANCEL, "firm": 1, "order_id": 1}
MOD = {"kind": CommandKind.MODIFY, "firm": 1, "order_id": 1, "price": 100, "qty": 5}
MCX = {"kind": CommandKind.MASS_CANCEL, "firm": 1, "instrument": -1}
MQ = {"kind": CommandKind.MASS_QUOTE, "firm": 4, "client_order_id": 77, "instrument": 1, "price": 90, "qty": 1,
      "price2": 130, "qty2": 1}
HLT = {"kind": CommandKind.HALT, "firm": -1}
RSM = {"kind": CommandKind.RESUME, "firm": -1}
GARBAGE = {"side": I8.min, "ord_type": I8.max, "tif": I8.min, "stp": I8.max, "post_only": I8.min,
           "client_order_id": I64.min, "price": I64.max, "qty": I64.max, "price2": I64.min, "qty2": I64.max,
           "expire_ts": I64.min}
UNREAD_REASON = {"reason": I8.min} if "reason" in COMMAND_DTYPE.names else {}  # only Cancel and MassCancel read it
R = RejectReason

EXTREMES = [
    # NewOrder: every validation step, at the dtype edges
    ("new: price int64 max", NEW | {"price": I64.max}, R.PRICE_OUT_OF_BAND),
    ("new: price int64 min", NEW | {"price": I64.min}, R.PRICE_OUT_OF_BAND),
    ("new: price 0", NEW | {"price": 0}, R.PRICE_OUT_OF_BAND),
    ("new: price -5", NEW | {"price": -5, "instrument": 1}, R.PRICE_OUT_OF_BAND),
    ("new: price int64 max off tick", NEW | {"price": I64.max, "instrument": 1}, R.PRICE_OFF_TICK),
    ("new: price int64 min off tick", NEW | {"price": I64.min, "instrument": 1}, R.PRICE_OFF_TICK),
    ("new: qty int64 max", NEW | {"qty": I64.max}, R.QUANTITY_ABOVE_MAXIMUM),
    ("new: qty int64 min", NEW | {"qty": I64.min}, R.INVALID_QUANTITY),
    ("new: qty 0", NEW | {"qty": 0}, R.INVALID_QUANTITY),
    ("new: market qty int64 max", NEW | {"qty": I64.max, "ord_type": OrderType.MARKET, "tif": TimeInForce.IOC},
     R.QUANTITY_ABOVE_MAXIMUM),
    ("new: GTD expire int64 min", NEW | {"tif": TimeInForce.GTD, "expire_ts": I64.min}, R.EXPIRE_TIME_IN_PAST),
    ("new: GTD expire 0", NEW | {"tif": TimeInForce.GTD, "expire_ts": 0}, R.EXPIRE_TIME_IN_PAST),
    ("new: GTD expire = now", NEW | {"tif": TimeInForce.GTD, "expire_ts": 2000}, R.EXPIRE_TIME_IN_PAST),
    ("new: ts int64 min (backwards)", NEW | {"ts": I64.min, "qty": 0}, R.INVALID_QUANTITY),
    ("new: ts -1 (backwards)", NEW | {"ts": -1, "client_order_id": 1}, R.DUPLICATE_CLIENT_ORDER_ID),
    ("new: firm int32 max", NEW | {"firm": I32.max}, R.INVALID_FIELD),
    ("new: firm int32 min", NEW | {"firm": I32.min}, R.INVALID_FIELD),
    ("new: firm -1", NEW | {"firm": -1}, R.INVALID_FIELD),
    ("new: firm = max_firms", NEW | {"firm": MAX_FIRMS}, R.INVALID_FIELD),
    ("new: instrument -1", NEW | {"instrument": -1}, R.UNKNOWN_INSTRUMENT),
    ("new: instrument int32 max", NEW | {"instrument": I32.max}, R.UNKNOWN_INSTRUMENT),
    ("new: instrument int32 min", NEW | {"instrument": I32.min}, R.UNKNOWN_INSTRUMENT),
    ("new: instrument = count", NEW | {"instrument": N_INST}, R.UNKNOWN_INSTRUMENT),
    ("new: unknown instrument beats bad firm", NEW | {"instrument": -1, "firm": I32.min}, R.UNKNOWN_INSTRUMENT),
    ("new: side int8 min", NEW | {"side": I8.min}, R.INVALID_FIELD),
    ("new: side int8 max", NEW | {"side": I8.max}, R.INVALID_FIELD),
    ("new: side 2", NEW | {"side": 2}, R.INVALID_FIELD),
    ("new: side -1", NEW | {"side": -1}, R.INVALID_FIELD),
    ("new: ord_type int8 min", NEW | {"ord_type": I8.min}, R.INVALID_FIELD),
    ("new: ord_type int8 max", NEW | {"ord_type": I8.max}, R.INVALID_FIELD),
    ("new: tif int8 min", NEW | {"tif": I8.min}, R.INVALID_FIELD),
    ("new: tif 4", NEW | {"tif": 4}, R.INVALID_FIELD),
    ("new: stp int8 max", NEW | {"stp": I8.max}, R.INVALID_FIELD),
    ("new: stp -1", NEW | {"stp": -1}, R.INVALID_FIELD),
    ("new: post_only 2", NEW | {"post_only": 2}, R.INVALID_FIELD),
    ("new: post_only int8 min", NEW | {"post_only": I8.min}, R.INVALID_FIELD),
    ("new: market GTC", NEW | {"ord_type": OrderType.MARKET}, R.INVALID_FIELD),
    ("new: every field at an edge", NEW | GARBAGE, R.INVALID_FIELD),
    ("new: duplicate client id", NEW | {"client_order_id": 1}, R.DUPLICATE_CLIENT_ORDER_ID),
    # Cancel and Modify: order ids and firms at the edges, garbage in the unused columns
    ("cancel: order id 0", CXL | {"order_id": 0}, R.UNKNOWN_ORDER),
    ("cancel: order id -1", CXL | {"order_id": -1}, R.UNKNOWN_ORDER),
    ("cancel: order id int64 min", CXL | {"order_id": I64.min}, R.UNKNOWN_ORDER),
    ("cancel: order id int64 max", CXL | {"order_id": I64.max}, R.UNKNOWN_ORDER),
    ("cancel: order id not yet given", CXL | {"order_id": 100}, R.UNKNOWN_ORDER),
    ("cancel: firm int32 max", CXL | {"firm": I32.max}, R.NOT_YOUR_ORDER),
    ("cancel: firm int32 min", CXL | {"firm": I32.min}, R.NOT_YOUR_ORDER),
    ("cancel: firm -1", CXL | {"firm": -1}, R.NOT_YOUR_ORDER),
    ("cancel: garbage elsewhere", CXL | GARBAGE | {"order_id": I64.max, "instrument": I32.min}, R.UNKNOWN_ORDER),
    ("cancel: ts int64 min", CXL | {"ts": I64.min, "order_id": -7}, R.UNKNOWN_ORDER),
    ("modify: order id 0", MOD | {"order_id": 0}, R.UNKNOWN_ORDER),
    ("modify: order id int64 min", MOD | {"order_id": I64.min}, R.UNKNOWN_ORDER),
    ("modify: order id int64 max", MOD | {"order_id": I64.max}, R.UNKNOWN_ORDER),
    ("modify: firm int32 max", MOD | {"firm": I32.max}, R.NOT_YOUR_ORDER),
    ("modify: firm int32 min", MOD | {"firm": I32.min}, R.NOT_YOUR_ORDER),
    ("modify: qty int64 max", MOD | {"qty": I64.max}, R.QUANTITY_ABOVE_MAXIMUM),
    ("modify: qty int64 min", MOD | {"qty": I64.min}, R.INVALID_QUANTITY),
    ("modify: qty 0", MOD | {"qty": 0}, R.INVALID_QUANTITY),
    ("modify: price int64 max", MOD | {"price": I64.max}, R.PRICE_OUT_OF_BAND),
    ("modify: price int64 min", MOD | {"price": I64.min}, R.PRICE_OUT_OF_BAND),
    ("modify: price int64 max off tick", MOD | {"order_id": 3, "price": I64.max}, R.PRICE_OFF_TICK),
    ("modify: garbage elsewhere", MOD | GARBAGE | {"qty": 0, "price": 100}, R.INVALID_QUANTITY),
    # MassCancel, MassQuote, Halt, Resume
    ("mass cancel: instrument int32 max", MCX | {"instrument": I32.max}, R.UNKNOWN_INSTRUMENT),
    ("mass cancel: instrument int32 min", MCX | {"instrument": I32.min}, R.UNKNOWN_INSTRUMENT),
    ("mass cancel: instrument -2", MCX | {"instrument": -2}, R.UNKNOWN_INSTRUMENT),
    ("mass cancel: firm int32 max", MCX | {"firm": I32.max}, R.INVALID_FIELD),
    ("mass cancel: firm int32 min", MCX | {"firm": I32.min, "instrument": 0}, R.INVALID_FIELD),
    ("mass cancel: firm -1", MCX | {"firm": -1}, R.INVALID_FIELD),
    ("quote: instrument int32 max", MQ | {"instrument": I32.max}, R.UNKNOWN_INSTRUMENT),
    ("quote: instrument -1", MQ | {"instrument": -1}, R.UNKNOWN_INSTRUMENT),
    ("quote: firm int32 max", MQ | {"firm": I32.max}, R.INVALID_FIELD),
    ("quote: firm int32 min", MQ | {"firm": I32.min}, R.INVALID_FIELD),
    ("quote: bid qty int64 min", MQ | {"qty": I64.min}, R.INVALID_QUANTITY),
    ("quote: ask qty -1", MQ | {"qty2": -1}, R.INVALID_QUANTITY),
    ("quote: bid qty int64 max", MQ | {"qty": I64.max}, R.QUANTITY_ABOVE_MAXIMUM),
    ("quote: ask qty int64 max", MQ | {"qty2": I64.max}, R.QUANTITY_ABOVE_MAXIMUM),
    ("quote: bid price int64 max", MQ | {"price": I64.max}, R.PRICE_OFF_TICK),
    ("quote: ask price int64 min", MQ | {"price2": I64.min}, R.PRICE_OFF_TICK),
    ("quote: ask price int64 max, tick 1", MQ | {"instrument": 0, "price2": I64.max}, R.PRICE_OUT_OF_BAND),
    ("quote: bid price 0", MQ | {"price": 0}, R.PRICE_OUT_OF_BAND),
    ("quote: crossed", MQ | {"price": 130, "price2": 130}, R.QUOTE_CROSSED),
    ("quote: quote id int64 min, ask qty int64 min", MQ | {"client_order_id": I64.min, "qty2": I64.min},
     R.INVALID_QUANTITY),
    ("halt: instrument -1", HLT | {"instrument": -1}, R.UNKNOWN_INSTRUMENT),
    ("halt: instrument int32 max", HLT | {"instrument": I32.max}, R.UNKNOWN_INSTRUMENT),
    ("halt: instrument int32 min", HLT | {"instrument": I32.min}, R.UNKNOWN_INSTRUMENT),
    ("resume: instrument int32 max", RSM | {"instrument": I32.max}, R.UNKNOWN_INSTRUMENT),
    ("resume: instrument = count", RSM | GARBAGE | {"instrument": N_INST}, R.UNKNOWN_INSTRUMENT),
]
if "reason" in COMMAND_DTYPE.names:  # Cancel and MassCancel may carry a cancel reason: 0, DISCONNECT or ADMIN
    EXTREMES += [
        ("cancel: reason int8 min", CXL | {"reason": I8.min}, R.INVALID_FIELD),
        ("cancel: reason int8 max", CXL | {"reason": I8.max}, R.INVALID_FIELD),
        ("cancel: reason -1", CXL | {"reason": -1}, R.INVALID_FIELD),
        ("cancel: reason USER", CXL | {"reason": CancelReason.USER}, R.INVALID_FIELD),
        ("cancel: reason EXPIRED", CXL | {"reason": CancelReason.EXPIRED}, R.INVALID_FIELD),
        ("cancel: bad reason, unknown order", CXL | {"reason": I8.max, "order_id": I64.max}, R.INVALID_FIELD),
        ("cancel: bad reason, order id 0", CXL | {"reason": 9, "order_id": 0}, R.INVALID_FIELD),
        ("cancel: bad reason, not your order", CXL | {"reason": I8.min, "firm": 2}, R.INVALID_FIELD),
        ("mass cancel: reason int8 min", MCX | {"reason": I8.min}, R.INVALID_FIELD),
        ("mass cancel: reason MASS", MCX | {"reason": CancelReason.MASS, "instrument": 0}, R.INVALID_FIELD),
        ("mass cancel: unknown instrument beats bad reason", MCX | {"reason": I8.max, "instrument": I32.max},
         R.UNKNOWN_INSTRUMENT),
    ]


def seeded_pair() -> Pair:
    """Both engines at ts 1000 with resting orders (ids 1..6), a GTD order and a two-sided quote."""
    pair = Pair()
    setup = [
        NEW | {"client_order_id": 1, "price": 100, "qty": 10},  # id 1: firm 1 bid, instrument 0
        NEW | {"client_order_id": 2, "firm": 2, "side": 1, "price": 110, "qty": 10},  # id 2
        NEW | {"client_order_id": 3, "instrument": 1, "price": 100, "qty": 4},  # id 3: firm 1 bid, instrument 1
        NEW | {"client_order_id": 4, "firm": 3, "price": 99, "qty": 2, "tif": TimeInForce.GTD, "expire_ts": 5000},
        MQ,  # ids 5 and 6: firm 4 quotes 90 / 130 on instrument 1
    ]
    pair.run(np.concatenate([record(ts=1000, **fields) for fields in setup]))
    assert pair.last_order_id == 6 and len(pair.ref.book_orders(0, 0)) == 2
    return pair


@pytest.mark.parametrize(("fields", "reason"), [case[1:] for case in EXTREMES], ids=[case[0] for case in EXTREMES])
def test_extreme_values_get_the_spec_reason(fields, reason):
    pair = seeded_pair()
    rec = record(**({"ts": 2000} | fields))
    events = pair.step(rec)
    assert len(events) == 1, events
    e = events[0]
    expected_kind = EventKind.CANCEL_REJECTED if fields["kind"] in (CommandKind.CANCEL, CommandKind.MODIFY) \
        else EventKind.REJECTED
    assert (EventKind(e["kind"]), RejectReason(e["reason"])) == (expected_kind, reason), e
    assert e["ts"] == pair.ref.now == max(1000, int(rec["ts"][0]))
    pair.probe()
    pair.states_agree()


def test_extreme_but_valid_values_are_accepted():
    """Values at the edges that the spec allows: both engines accept them, identically."""
    pair = seeded_pair()

    def one(**fields):
        return pair.step(record(**fields))

    # a GTD order that expires at the end of time
    ev = one(**NEW | {"ts": 1500, "client_order_id": 10, "price": 98, "tif": TimeInForce.GTD, "expire_ts": I64.max})
    assert ev["kind"].tolist() == [EventKind.ACCEPTED, EventKind.BOOK_LEVEL] and ev["order_id"][0] == 7
    # time going backwards: processed at now, events stamped now
    ev = one(**NEW | {"ts": I64.min, "client_order_id": 11, "price": 97})
    assert ev["kind"][0] == EventKind.ACCEPTED and (ev["ts"] == 1500).all() and pair.ref.now == 1500
    # client order ids at the int64 edges are ordinary ids
    for clid in (I64.min, I64.max, 0, -1):
        ev = one(**NEW | {"ts": 1500, "client_order_id": clid, "price": 96})
        assert ev["kind"][0] == EventKind.ACCEPTED and ev["client_order_id"][0] == clid
    # a market order ignores its price, however wild; garbage in unused columns is ignored
    for price in (I64.min, I64.max):
        ev = one(**NEW | GARBAGE | UNREAD_REASON | {
            "ts": 1600, "client_order_id": 20 + (price > 0), "ord_type": OrderType.MARKET, "tif": TimeInForce.IOC,
            "side": 0, "stp": 0, "post_only": 0, "price": price, "qty": 1})
        assert ev["kind"][0] == EventKind.ACCEPTED and EventKind.TRADE in ev["kind"].tolist()
    # a quote side with qty 0 ignores its price
    ev = one(**MQ | {"ts": 1700, "price": I64.min, "qty": 0, "price2": 125, "qty2": 3})
    assert EventKind.REJECTED not in ev["kind"].tolist() and EventKind.REPLACED in ev["kind"].tolist()
    # cancel and mass cancel with garbage in the columns they do not read
    ev = one(**CXL | GARBAGE | {"ts": 1800, "order_id": 3})
    assert ev["kind"].tolist() == [EventKind.CANCELLED, EventKind.BOOK_LEVEL]
    ev = one(**MCX | GARBAGE | {"ts": 1800, "firm": 2, "instrument": 0})
    assert ev["kind"].tolist() == [EventKind.CANCELLED, EventKind.BOOK_LEVEL] and ev["order_id"][0] == 2
    if UNREAD_REASON:  # the gateway's cancel reasons
        ev = one(**CXL | {"ts": 1800, "order_id": 1, "reason": CancelReason.DISCONNECT})
        assert (ev["kind"][0], ev["reason"][0], ev["order_id"][0]) == (EventKind.CANCELLED, CancelReason.DISCONNECT, 1)
        ev = one(**MCX | {"ts": 1800, "firm": 4, "instrument": 1, "reason": CancelReason.ADMIN})
        assert (ev["kind"][0], ev["reason"][0], ev["order_id"][0]) == (EventKind.CANCELLED, CancelReason.ADMIN, 6)
    pair.probe()
    # the end of time: every GTD expires (the int64-max one too) and every instrument closes
    ev = one(kind=CommandKind.ADVANCE_TIME, ts=I64.max, **GARBAGE | UNREAD_REASON)
    assert pair.ref.now == I64.max and (ev["ts"] == I64.max).all()
    assert set(ev["kind"].tolist()) == {EventKind.CANCELLED, EventKind.BOOK_LEVEL, EventKind.INSTRUMENT_STATUS}
    assert all(pair.core.status(i) == InstrumentStatus.CLOSED for i in range(N_INST))
    assert all(pair.ref.book_orders(i, s) == [] for i in range(N_INST) for s in (0, 1))
    # after the end of time: everything is refused as closed, nothing crashes
    ev = one(**NEW | {"ts": I64.min, "client_order_id": 30})
    assert RejectReason(ev["reason"][0]) == R.INSTRUMENT_CLOSED and ev["ts"][0] == I64.max
    ev = one(**HLT | {"ts": I64.max, "instrument": 2})
    assert RejectReason(ev["reason"][0]) == R.INSTRUMENT_CLOSED
    ev = one(**MQ | {"ts": 0})
    assert RejectReason(ev["reason"][0]) == R.INSTRUMENT_CLOSED


def test_scalar_entry_points_take_extreme_values():
    """new_order / cancel / modify with int64-edge scalars: same events as the records, in both engines."""
    pair = seeded_pair()
    calls = [
        ("new_order", (2000, 1, 901, 0, 0, I64.max, 1)),
        ("new_order", (2000, I32.min, 902, I32.max, I8.min, I64.min, I64.min, I8.max, I8.min, I8.max, I8.min,
                       I64.max)),
        ("new_order", (I64.min, 1, 903, 0, 0, 100, I64.max)),
        ("cancel", (2000, I32.max, I64.max)),
        ("cancel", (2000, -1, 1)),
        ("modify", (2000, 1, 1, I64.min, I64.max)),
        ("modify", (2000, 1, I64.min, 100, 1)),
    ]
    for name, args in calls:
        n_ref = getattr(pair.ref, name)(*(int(a) for a in args))
        n_core = getattr(pair.core, name)(*(int(a) for a in args))
        ref_events, core_events = pair.ref.last_events, pair.core.last_events
        assert n_ref == n_core == 1 and np.array_equal(ref_events, core_events), (name, args)
        assert ref_events["kind"][0] in REJECTIONS and int(ref_events["reason"][0]) in REASONS
        pair.seq += 1
    pair.states_agree()
    pair.probe()


# ------------------------------------------------------------------- fuzz

FUZZ_RECORDS = 20_000
FUZZ_BATCH = 250
FUZZ_SECONDS = 12.0


def fuzz_batch(rng: np.random.Generator, n: int, clock: int, last_order_id: int, p_wild: float,
               p_wild_ts: float) -> tuple[np.ndarray, int]:
    """n records of known kinds: each field plausible, at a dtype edge, or uniform over its dtype.

    ts runs forward from ``clock`` in small steps, except wild ones anywhere in int64 (the
    engine clock may then be far ahead: later commands go back in time); order ids aim at
    the last ones given. Returns (records, clock).
    """
    C = np.zeros(n, dtype=COMMAND_DTYPE)
    C["kind"] = rng.choice(KNOWN_KINDS, n, p=[0.43, 0.15, 0.12, 0.02, 0.14, 0.06, 0.02, 0.03, 0.03])
    plausible: dict[str, list[int] | tuple[int, int]] = {  # values to pick from, or a range [lo, hi)
        "side": (0, 2), "ord_type": [0, 0, 0, 0, 1], "tif": [0, 0, 0, 1, 2, 3], "stp": (0, 3),
        "post_only": [0] * 9 + [1], "reason": [0] * 6 + [7, 8], "instrument": (0, N_INST), "firm": (0, MAX_FIRMS),
        "client_order_id": (1, 5000), "order_id": (max(1, last_order_id - 60), last_order_id + 5),
        "price": (90, 111), "qty": (0, 30), "price2": (100, 131), "qty2": (0, 30), "expire_ts": (0, clock + 5000),
    }
    plausible |= {name: (0, 2) for name in COMMAND_DTYPE.names if name not in plausible and name not in ("kind", "ts")}
    for name, values in plausible.items():
        info = FIELD_INFO[name]
        col = rng.choice(values, n) if isinstance(values, list) else rng.integers(*values, n)
        edges = np.array([info.min, info.min + 1, -1, 0, 1, info.max - 1, info.max], dtype=np.int64)
        edge = rng.random(n) < p_wild / 2
        uniform = rng.random(n) < p_wild / 2
        col[edge] = rng.choice(edges, int(edge.sum()))
        col[uniform] = rng.integers(int(info.min), int(info.max), int(uniform.sum()), endpoint=True)
        C[name] = col
    ts = clock + np.cumsum(rng.integers(0, 20, n))
    C["ts"] = ts
    wild_ts = rng.random(n) < p_wild_ts
    C["ts"][wild_ts] = rng.integers(int(I64.min), int(I64.max), int(wild_ts.sum()), endpoint=True)
    return C, int(ts[-1])


def run_fuzz(keep_qty_sums_in_range: bool) -> None:
    """FUZZ_RECORDS random records in batches (fixed seeds), compared batch by batch; time-bounded."""
    start = time.monotonic()
    done = batches = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        pair = Pair()
        clock = 0
        p_wild = (0.02, 0.1, 0.4)[seed % 3]
        p_wild_ts = (0.0, 0.0005, 0.002)[seed % 3]
        for _ in range(FUZZ_RECORDS // 10 // FUZZ_BATCH):
            batch, clock = fuzz_batch(rng, FUZZ_BATCH, clock, pair.last_order_id, p_wild, p_wild_ts)
            if keep_qty_sums_in_range:  # qty + qty2 within int64 (the room-check overflow, tested below)
                qty, qty2 = batch["qty"], batch["qty2"]
                qty2[(qty > 0) & (qty2 > I64.max - qty)] = 0
            pair.run(batch)
            done += len(batch)
            batches += 1
            if batches % 8 == 0:
                pair.states_agree()
            if time.monotonic() - start > FUZZ_SECONDS:
                break
        pair.states_agree()
        pair.probe()
        if time.monotonic() - start > FUZZ_SECONDS:
            break
    assert done >= FUZZ_RECORDS // 4, f"only {done} records in {FUZZ_SECONDS} s"


def test_fuzz_both_engines_agree_on_random_records():
    run_fuzz(keep_qty_sums_in_range=False)


def test_fuzz_both_engines_agree_when_qty_plus_qty2_fits_in_int64():
    """The same fuzz minus the records whose qty + qty2 passes int64 max, so that a regression of the
    room-check overflow (tested on its own below) does not hide everything else."""
    run_fuzz(keep_qty_sums_in_range=True)


def test_fuzz_unknown_kinds_are_refused_in_both_engines():
    """Random batches with an unknown kind somewhere raise ValueError in both engines."""
    rng = np.random.default_rng(7)
    unknown = [k for k in range(int(I8.min), int(I8.max) + 1) if k not in KNOWN_KINDS]
    pair = Pair()
    for _ in range(40):
        batch, _ = fuzz_batch(rng, 20, 0, 0, 0.3, 0.0)
        batch["kind"][rng.integers(0, len(batch))] = rng.choice(unknown)
        for ex in (pair.ref, pair.core):
            with pytest.raises(ValueError, match="unknown command kind"):
                ex.submit_batch(batch)


# ----------------------------------------- the core's event-room check, overflowed
# ``engine.core.entry.room`` reserves event slots for each command from its qty and qty2 columns, whatever
# its kind. It once computed ``4 * min(resting orders, max(qty, 0) + max(qty2, 0))``: with both columns
# large the int64 sum wraps, and so does the product, so the reservation became absurdly large (the event
# buffer doubled until the allocation failed: MemoryError) or negative (the command was let through with
# too small a buffer and the compiled code wrote past its end: SIGSEGV / abort). Each scenario runs in a
# child process with its address space capped, so that a crash or a runaway allocation fails the test and
# not the session.


def run_child(script: str) -> subprocess.CompletedProcess:
    def cap_memory():
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=cap_memory)


def check_child(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), (
        f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr[-1500:]}")


def test_garbage_qty_columns_do_not_make_the_core_reserve_a_huge_event_buffer():
    """A fresh engine, one AdvanceTime with instrument 0 and qty = qty2 = 2**63 - 3 * 2**59: no events.

    With the wrapping sum the reservation was about 2**62 events and submit_batch raised
    MemoryError after doubling its event buffer to the allocation limit.
    """
    check_child(run_child(
        """
        import numpy as np
        from engine.exchange import Exchange
        from engine.records import COMMAND_DTYPE
        from engine.reference import ReferenceExchange
        from tests.conftest import make_instruments

        c = np.zeros(1, dtype=COMMAND_DTYPE)
        c["kind"], c["instrument"] = 6, 0
        c["qty"] = c["qty2"] = 2**63 - 3 * 2**59
        assert len(ReferenceExchange(make_instruments(), 8).submit_batch(c)) == 0
        assert len(Exchange(make_instruments(), 8).submit_batch(c)) == 0
        print("OK")
        """
    ))


def test_garbage_qty_columns_cannot_defeat_the_core_event_room_check():
    """300 resting orders on instrument 2 (the event buffer stays at 64), then an AdvanceTime to its
    gate closure with instrument 2 and qty = qty2 = 2**63 - 2**59: 601 events, all returned.

    With the wrapping sum the reservation was negative and the 601 events were written into
    the 64-event buffer (heap corruption: SIGSEGV or abort)."""
    check_child(run_child(
        """
        import numpy as np
        from engine.exchange import Exchange
        from engine.records import COMMAND_DTYPE
        from tests.conftest import CLOSE_NS, make_instruments

        core = Exchange(make_instruments(), 16, event_capacity=64)
        n = 300
        for k in range(n):  # one command per batch, so the event buffer never needs to grow
            c = np.zeros(1, dtype=COMMAND_DTYPE)
            c["kind"], c["ts"], c["firm"], c["instrument"], c["client_order_id"] = 1, 1, k % 16, 2, k + 1
            c["side"], c["price"], c["qty"] = k % 2, 100 + 100 * (k % 2), 1
            core.submit_batch(c)
        cap = len(core._E)
        c = np.zeros(1, dtype=COMMAND_DTYPE)
        c["kind"], c["ts"], c["instrument"], c["firm"] = 6, CLOSE_NS, 2, -1
        c["qty"] = c["qty2"] = 2**63 - 2**59
        events = core.submit_batch(c)  # every order expires (Cancelled + BookLevel), then CLOSED
        print(cap, core._n, len(events), flush=True)
        assert len(events) == core._n == 2 * n + 1, (cap, core._n, len(events))
        print("OK")
        """
    ))
