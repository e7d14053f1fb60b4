"""Instrument symbols: formatting, parsing, and the grammar's edges."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.instruments import (
    NS_PER_HOUR,
    SERVICE_CLASSES,
    Instrument,
    ProductKey,
    SymbolError,
    format_hour,
    format_symbol,
    parse_hour,
    parse_symbol,
)

# Times are int64 nanoseconds since the epoch: delivery hours from 1970 up to the last hour that fits.
MAX_HOUR_INDEX = (2**63 - 1) // NS_PER_HOUR

names = st.from_regex(r"\A[A-Z0-9][A-Z0-9-]{0,15}\Z")
service_classes = st.sampled_from(SERVICE_CLASSES)
hours_ns = st.integers(min_value=0, max_value=MAX_HOUR_INDEX).map(lambda h: h * NS_PER_HOUR)


def test_known_symbol():
    start = parse_hour("2026-12-01T14")
    assert start == 1_796_133_600 * 1_000_000_000
    assert format_symbol("H100", "US-EAST", "FIRM", start) == "H100.US-EAST.FIRM.2026-12-01T14"
    assert parse_symbol("H100.US-EAST.FIRM.2026-12-01T14") == (ProductKey("H100", "US-EAST", "FIRM"), start)
    assert parse_symbol("MI300X.EU-NORTH.INTERRUPTIBLE.1970-01-01T00") == (
        ProductKey("MI300X", "EU-NORTH", "INTERRUPTIBLE"),
        0,
    )


def test_instrument_symbol_and_product():
    start = parse_hour("2026-12-01T14")
    ins = Instrument(7, "B200", "EU-NORTH", "INTERRUPTIBLE", start, 0, start - NS_PER_HOUR, 1000, 40000, 1, 10000, 500)
    assert ins.symbol == "B200.EU-NORTH.INTERRUPTIBLE.2026-12-01T14"
    assert ins.product == ProductKey("B200", "EU-NORTH", "INTERRUPTIBLE")
    assert parse_symbol(ins.symbol) == (ins.product, ins.delivery_start_ns)


def test_format_hour_requires_whole_hour():
    with pytest.raises(ValueError):
        format_hour(parse_hour("2026-12-01T14") + 1)
    with pytest.raises(ValueError):
        format_symbol("H100", "US-EAST", "FIRM", NS_PER_HOUR + 60 * 1_000_000_000)


@given(names, names, service_classes, hours_ns)
def test_symbol_round_trip(accelerator, region, service_class, start):
    symbol = format_symbol(accelerator, region, service_class, start)
    assert parse_symbol(symbol) == (ProductKey(accelerator, region, service_class), start)
    assert format_hour(parse_hour(symbol.rsplit(".", 1)[1])) == symbol.rsplit(".", 1)[1]


@given(hours_ns)
def test_hour_round_trip(start):
    assert parse_hour(format_hour(start)) == start


BAD_SYMBOLS = [
    "",
    "H100",
    "H100.US-EAST.FIRM",
    "h100.US-EAST.FIRM.2026-12-01T14",  # lower case
    "H100.us-east.FIRM.2026-12-01T14",
    "H100.US-EAST.firm.2026-12-01T14",
    "H100.US-EAST.SPOT.2026-12-01T14",  # not a service class
    "H100.US_EAST.FIRM.2026-12-01T14",  # '_' is not in the grammar
    "-H100.US-EAST.FIRM.2026-12-01T14",  # a name starts with a letter or digit
    "H100.-US.FIRM.2026-12-01T14",
    "H100..FIRM.2026-12-01T14",
    ".US-EAST.FIRM.2026-12-01T14",
    "H100.US-EAST.FIRM.2026-12-01",
    "H100.US-EAST.FIRM.2026-12-01T1",
    "H100.US-EAST.FIRM.2026-12-01T14:00",
    "H100.US-EAST.FIRM.2026-12-01 14",
    "H100.US-EAST.FIRM.2026-12-01T24",  # no hour 24
    "H100.US-EAST.FIRM.2026-13-01T00",  # no month 13
    "H100.US-EAST.FIRM.2026-02-30T00",  # no 30 February
    "H100.US-EAST.FIRM.26-12-01T14",
    " H100.US-EAST.FIRM.2026-12-01T14",
    "H100.US-EAST.FIRM.2026-12-01T14 ",
    "H100.EU.US-EAST.FIRM.2026-12-01T14",  # one dot too many
]


@pytest.mark.parametrize("symbol", BAD_SYMBOLS)
def test_bad_symbol_raises(symbol):
    with pytest.raises(SymbolError):
        parse_symbol(symbol)


def test_symbol_error_is_value_error():
    assert issubclass(SymbolError, ValueError)


def test_trailing_newline_rejected():
    with pytest.raises(SymbolError):
        parse_symbol("H100.US-EAST.FIRM.2026-12-01T14\n")


def test_non_ascii_digits_rejected():
    with pytest.raises(SymbolError):
        parse_symbol("H100.US-EAST.FIRM.\u0662\u0660\u0662\u0666-12-01T14")


@given(st.text(alphabet=string.ascii_letters + string.digits + ".-T: _", max_size=40))
def test_any_text_round_trips_or_raises_symbol_error(text):
    try:
        key, start = parse_symbol(text)
    except SymbolError:
        return
    assert format_symbol(key.accelerator, key.region, key.service_class, start) == text


@given(names, names, service_classes, hours_ns)
def test_symbol_with_a_corrupted_separator_is_rejected(accelerator, region, service_class, start):
    symbol = format_symbol(accelerator, region, service_class, start)
    corrupted = symbol.replace(".", "/", 1)
    with pytest.raises(SymbolError):
        parse_symbol(corrupted)
