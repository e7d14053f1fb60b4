"""Time, GTD expiry order, instrument status: pre-open, halt/resume, gate closure."""

import msgspec
import pytest

from engine.codes import CancelReason, InstrumentStatus, RejectReason, TimeInForce
from engine.records import (
    AdvanceTime,
    BookLevel,
    Cancel,
    Cancelled,
    Halt,
    InstrumentStatusChanged,
    MassCancel,
    MassQuote,
    QuoteEntry,
    Rejected,
    Resume,
)

from .helpers import BUY, SELL, A, B, C, book, kinds, limit

OPEN, HALTED, CLOSED, PRE_OPEN = (InstrumentStatus.OPEN, InstrumentStatus.HALTED, InstrumentStatus.CLOSED,
                                  InstrumentStatus.PRE_OPEN)


# ------------------------------------------------------------------ time


def test_clock_starts_at_zero_and_follows_command_time(ex):
    assert ex.now == 0
    assert ex.submit(AdvanceTime(25)) == []
    assert ex.now == 25


def test_command_in_the_past_is_processed_at_now(ex):
    ex.submit(AdvanceTime(100))
    events = limit(ex, A, 1, BUY, 100, 5, ts=50)
    assert {e.ts for e in events} == {100}
    assert ex.now == 100


def test_gtd_expire_time_is_compared_with_now_not_with_a_stale_command_time(ex):
    ex.submit(AdvanceTime(100))
    assert limit(ex, A, 1, BUY, 100, 5, ts=50, tif=TimeInForce.GTD, expire_ts=80)[0].reason == \
        RejectReason.EXPIRE_TIME_IN_PAST


# ------------------------------------------------------------------ pre-open


@pytest.fixture
def late_open(make_exchange, instruments):
    """An exchange whose instrument 0 opens at time 100."""
    return make_exchange([msgspec.structs.replace(instruments[0], open_ns=100), *instruments[1:]])


def test_instrument_is_pre_open_before_its_open_time(late_open):
    late_open.submit(AdvanceTime(99))
    assert late_open.status(0) == PRE_OPEN
    assert late_open.status(1) == OPEN


def test_new_order_before_the_open_time_is_rejected_instrument_closed(late_open):
    assert limit(late_open, A, 1, BUY, 100, 5, ts=99) == [
        Rejected(seq=1, ts=99, instrument=0, firm=A, client_order_id=1, side=BUY,
                 reason=RejectReason.INSTRUMENT_CLOSED)]


def test_quote_before_the_open_time_is_rejected_instrument_closed(late_open):
    events = late_open.submit(MassQuote(1, A, 7, [QuoteEntry(0, 95, 5, 105, 5)]))
    assert events[0].reason == RejectReason.INSTRUMENT_CLOSED


def test_instrument_opens_at_its_open_time_without_an_event(late_open):
    assert late_open.submit(AdvanceTime(100)) == []
    assert late_open.status(0) == OPEN
    assert kinds(limit(late_open, A, 1, BUY, 100, 5, ts=100)) == ["Accepted", "BookLevel"]


@pytest.mark.parametrize("command", [Halt, Resume])
def test_halt_or_resume_of_a_pre_open_instrument_is_rejected_instrument_closed(late_open, command):
    assert late_open.submit(command(1, 0)) == [Rejected(seq=1, ts=1, instrument=0, firm=-1, client_order_id=0,
                                                        side=0, reason=RejectReason.INSTRUMENT_CLOSED)]
    assert late_open.status(0) == PRE_OPEN


# ------------------------------------------------------------------ halt and resume


def test_halt_publishes_halted_and_keeps_resting_orders(ex):
    limit(ex, A, 1, BUY, 100, 5)
    assert ex.submit(Halt(2, 0)) == [InstrumentStatusChanged(seq=3, ts=2, instrument=0, status=HALTED)]
    assert ex.status(0) == HALTED
    assert book(ex) == ([(1, 100, 5)], [])


def test_halt_of_a_halted_instrument_publishes_halted_again(ex):
    ex.submit(Halt(1, 0))
    assert ex.submit(Halt(2, 0)) == [InstrumentStatusChanged(seq=2, ts=2, instrument=0, status=HALTED)]


def test_new_order_on_a_halted_instrument_is_rejected_instrument_halted(ex):
    ex.submit(Halt(1, 0))
    assert limit(ex, A, 1, BUY, 100, 5) == [Rejected(seq=2, ts=1, instrument=0, firm=A, client_order_id=1, side=BUY,
                                                     reason=RejectReason.INSTRUMENT_HALTED)]
    assert limit(ex, A, 1, BUY, 100, 5, instrument=1)[0].order_id == 1


def test_invalid_field_is_reported_before_halted(ex):
    ex.submit(Halt(1, 0))
    assert limit(ex, A, 1, BUY, 100, 5, tif=7)[0].reason == RejectReason.INVALID_FIELD


def test_halted_is_reported_before_quantity(ex):
    ex.submit(Halt(1, 0))
    assert limit(ex, A, 1, BUY, 100, 0)[0].reason == RejectReason.INSTRUMENT_HALTED


def test_quote_on_a_halted_instrument_is_rejected_instrument_halted(ex):
    ex.submit(Halt(1, 0))
    assert ex.submit(MassQuote(1, A, 7, [QuoteEntry(0, 95, 5, 105, 5)])) == [
        Rejected(seq=2, ts=1, instrument=0, firm=A, client_order_id=7, side=0, reason=RejectReason.INSTRUMENT_HALTED)]


def test_resume_publishes_open_and_trading_continues(ex):
    limit(ex, A, 1, BUY, 100, 5)
    ex.submit(Halt(1, 0))
    assert ex.submit(Resume(2, 0)) == [InstrumentStatusChanged(seq=4, ts=2, instrument=0, status=OPEN)]
    assert ex.status(0) == OPEN
    assert kinds(limit(ex, B, 1, SELL, 100, 5, ts=2)) == ["Accepted", "Fill", "Fill", "Trade", "BookLevel"]


def test_resume_of_an_open_instrument_publishes_open(ex):
    assert ex.submit(Resume(1, 2)) == [InstrumentStatusChanged(seq=1, ts=1, instrument=2, status=OPEN)]


@pytest.mark.parametrize("command", [Halt, Resume])
@pytest.mark.parametrize("instrument", [3, -1])
def test_halt_or_resume_of_an_unknown_instrument_is_rejected(ex, command, instrument):
    assert ex.submit(command(1, instrument)) == [Rejected(seq=1, ts=1, instrument=instrument, firm=-1,
                                                          client_order_id=0, side=0,
                                                          reason=RejectReason.UNKNOWN_INSTRUMENT)]


# ------------------------------------------------------------------ gate closure


def test_gate_closure_expires_bids_best_first_then_asks_then_publishes_closed(ex, instruments):
    close = instruments[2].close_ns
    limit(ex, B, 1, BUY, 100, 1, instrument=2)
    limit(ex, A, 1, BUY, 101, 2, instrument=2)
    limit(ex, C, 1, BUY, 100, 3, instrument=2)
    limit(ex, A, 2, SELL, 110, 4, instrument=2)
    limit(ex, B, 2, SELL, 105, 5, instrument=2)
    limit(ex, A, 3, BUY, 100, 6)  # instrument 0 does not close

    def expired(seq, order_id, firm, client_order_id, side, price, qty):
        return Cancelled(seq=seq, ts=close, instrument=2, order_id=order_id, firm=firm,
                         client_order_id=client_order_id, side=side, price=price, qty=qty, cum=0,
                         reason=CancelReason.EXPIRED)

    assert ex.submit(AdvanceTime(close)) == [
        expired(13, 2, A, 1, BUY, 101, 2),
        BookLevel(seq=14, ts=close, instrument=2, side=BUY, price=101, qty=0, count=0),
        expired(15, 1, B, 1, BUY, 100, 1),
        BookLevel(seq=16, ts=close, instrument=2, side=BUY, price=100, qty=3, count=1),
        expired(17, 3, C, 1, BUY, 100, 3),
        BookLevel(seq=18, ts=close, instrument=2, side=BUY, price=100, qty=0, count=0),
        expired(19, 5, B, 2, SELL, 105, 5),
        BookLevel(seq=20, ts=close, instrument=2, side=SELL, price=105, qty=0, count=0),
        expired(21, 4, A, 2, SELL, 110, 4),
        BookLevel(seq=22, ts=close, instrument=2, side=SELL, price=110, qty=0, count=0),
        InstrumentStatusChanged(seq=23, ts=close, instrument=2, status=CLOSED),
    ]
    assert ex.status(2) == CLOSED
    assert book(ex) == ([(6, 100, 6)], [])


def test_gate_closure_does_not_happen_before_close_time(ex, instruments):
    limit(ex, A, 1, BUY, 100, 1, instrument=2)
    assert ex.submit(AdvanceTime(instruments[2].close_ns - 1)) == []
    assert ex.status(2) == OPEN


def test_gate_closure_happens_before_a_later_command_on_another_instrument(ex, instruments):
    close = instruments[2].close_ns
    events = limit(ex, A, 1, BUY, 100, 1, instrument=0, ts=close + 5)
    assert events[0] == InstrumentStatusChanged(seq=1, ts=close + 5, instrument=2, status=CLOSED)
    assert kinds(events) == ["InstrumentStatusChanged", "Accepted", "BookLevel"]


def test_gate_closure_is_published_once(ex, instruments):
    ex.submit(AdvanceTime(instruments[2].close_ns))
    assert ex.submit(AdvanceTime(instruments[2].close_ns + 1)) == []


def test_gtd_expiries_come_before_gate_closures(ex, instruments):
    close = instruments[2].close_ns
    limit(ex, A, 1, BUY, 101, 1, instrument=2)
    limit(ex, A, 2, BUY, 100, 1, instrument=2, tif=TimeInForce.GTD, expire_ts=close)
    events = ex.submit(AdvanceTime(close))
    assert [e.order_id for e in events if isinstance(e, Cancelled)] == [2, 1]


def test_halted_instrument_closes_at_gate_closure(ex, instruments):
    ex.submit(Halt(1, 2))
    assert ex.submit(AdvanceTime(instruments[2].close_ns)) == [
        InstrumentStatusChanged(seq=2, ts=instruments[2].close_ns, instrument=2, status=CLOSED)]
    assert ex.status(2) == CLOSED


def test_new_order_after_gate_closure_is_rejected_instrument_closed(ex, instruments):
    ex.submit(AdvanceTime(instruments[2].close_ns))
    assert limit(ex, A, 1, BUY, 100, 1, instrument=2, ts=0)[0].reason == RejectReason.INSTRUMENT_CLOSED


def test_quote_after_gate_closure_is_rejected_instrument_closed(ex, instruments):
    ex.submit(AdvanceTime(instruments[2].close_ns))
    events = ex.submit(MassQuote(0, A, 7, [QuoteEntry(2, 95, 5, 105, 5)]))
    assert events[0].reason == RejectReason.INSTRUMENT_CLOSED


@pytest.mark.parametrize("command", [Halt, Resume])
def test_halt_or_resume_after_gate_closure_is_rejected_instrument_closed(ex, instruments, command):
    ex.submit(AdvanceTime(instruments[2].close_ns))
    assert ex.submit(command(0, 2))[0].reason == RejectReason.INSTRUMENT_CLOSED


def test_cancels_after_gate_closure_find_no_orders(ex, instruments):
    limit(ex, A, 1, BUY, 100, 1, instrument=2)
    ex.submit(AdvanceTime(instruments[2].close_ns))
    assert ex.submit(Cancel(0, A, 1))[0].reason == RejectReason.UNKNOWN_ORDER
    assert ex.submit(MassCancel(0, A, 2)) == []
