"""Listing configuration: the default listing, instrument expansion, validation, exact dollar conversion."""

from __future__ import annotations

import copy
import subprocess
import sys
from decimal import Decimal
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.instruments import NS_PER_HOUR, NS_PER_SECOND, parse_hour, parse_symbol
from engine.listing import (
    ListingConfig,
    ListingError,
    listing_from_dict,
    load_listing,
    parse_listing,
    to_ticks,
)
from gateway.units import format_notional, format_price, parse_price, parse_qty

ANCHOR = parse_hour("2026-12-01T14")


def base_doc() -> dict:
    """A small valid listing document (as tomllib would return it)."""
    return {
        "tick": "0.001",
        "window_hours": 3,
        "gate_closure_minutes": 60,
        "defaults": {
            "price_band": ["0.100", "50.000"],
            "price_increment": "0.005",
            "max_order_qty": 1000,
            "market_protection": "0.500",
        },
        "products": [
            {"accelerator": "H100", "regions": ["US-EAST", "EU-NORTH"], "service_classes": ["FIRM"]},
            {
                "accelerator": "B200",
                "regions": ["US-EAST"],
                "service_classes": ["INTERRUPTIBLE", "FIRM"],
                "price_band": ["1.000", "40.000"],
                "max_order_qty": 500,
            },
        ],
    }


# ------------------------------------------------------------ default listing


@pytest.fixture(scope="module")
def default() -> ListingConfig:
    return load_listing(None)


def test_default_listing_is_package_data():
    assert resources.files("engine").joinpath("default_listing.toml").is_file()


def test_default_listing_size_and_symbols(default):
    instruments = default.instruments(ANCHOR)
    assert default.tick == Decimal("0.001")
    assert default.window_hours == 48
    assert default.instrument_count == len(instruments) == 4 * 2 * 2 * 48 == 768
    assert [i.instrument_id for i in instruments] == list(range(768))
    symbols = [i.symbol for i in instruments]
    assert len(set(symbols)) == 768
    for ins in instruments:
        key, start = parse_symbol(ins.symbol)
        assert (key, start) == (ins.product, ins.delivery_start_ns)
    assert {i.accelerator for i in instruments} == {"H100", "H200", "B200", "MI300X"}
    assert {i.region for i in instruments} == {"US-EAST", "EU-NORTH"}
    assert {i.service_class for i in instruments} == {"FIRM", "INTERRUPTIBLE"}


def test_default_listing_times(default):
    instruments = default.instruments(ANCHOR)
    for ins in instruments:
        assert ins.open_ns == ANCHOR
        assert ins.close_ns == ins.delivery_start_ns - 60 * 60 * NS_PER_SECOND
        assert ANCHOR <= ins.delivery_start_ns < ANCHOR + 48 * NS_PER_HOUR
        assert ins.delivery_start_ns % NS_PER_HOUR == 0
    assert instruments[0].symbol == "H100.US-EAST.FIRM.2026-12-01T14"
    assert instruments[47].symbol == "H100.US-EAST.FIRM.2026-12-03T13"
    assert instruments[-1].symbol == "MI300X.EU-NORTH.INTERRUPTIBLE.2026-12-03T13"


def test_default_listing_is_product_major(default):
    instruments = default.instruments(ANCHOR)
    # Products in file order, then regions, then service classes, then hours ascending.
    order = [(i.accelerator, i.region, i.service_class) for i in instruments[::48]]
    assert order[:4] == [
        ("H100", "US-EAST", "FIRM"),
        ("H100", "US-EAST", "INTERRUPTIBLE"),
        ("H100", "EU-NORTH", "FIRM"),
        ("H100", "EU-NORTH", "INTERRUPTIBLE"),
    ]
    assert [a for a, _, _ in order[::4]] == ["H100", "H200", "B200", "MI300X"]
    for p in range(16):
        block = instruments[p * 48 : (p + 1) * 48]
        assert len({i.product for i in block}) == 1
        assert [i.delivery_start_ns for i in block] == [ANCHOR + k * NS_PER_HOUR for k in range(48)]


def test_default_listing_price_parameters(default):
    by_acc = {i.accelerator: i for i in default.instruments(ANCHOR)}
    assert (by_acc["H100"].min_price, by_acc["H100"].max_price) == (500, 20_000)
    assert (by_acc["B200"].min_price, by_acc["B200"].max_price) == (1_000, 40_000)
    assert by_acc["B200"].protection_ticks == 1_000
    assert by_acc["H100"].protection_ticks == 500
    for ins in by_acc.values():
        assert ins.price_increment == 1
        assert ins.max_order_qty == 10_000
        assert 0 < ins.min_price < ins.max_price


def test_anchor_is_rounded_down_to_the_hour(default):
    exact = default.instruments(ANCHOR)
    assert default.instruments(ANCHOR + 59 * 60 * NS_PER_SECOND + 999) == exact
    assert default.instruments(ANCHOR + NS_PER_HOUR)[0].delivery_start_ns == ANCHOR + NS_PER_HOUR


@pytest.mark.parametrize("anchor", [-1, 1.5, "0", True])
def test_bad_anchor(default, anchor):
    with pytest.raises(ValueError):
        default.instruments(anchor)


def test_engine_listing_does_not_import_numba():
    code = "import engine, engine.listing, sys; engine.listing.load_listing(None); assert 'numba' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------- custom listing


def test_custom_listing_defaults_overrides_and_order():
    cfg = listing_from_dict(base_doc())
    instruments = cfg.instruments(ANCHOR)
    assert cfg.instrument_count == len(instruments) == (2 + 2) * 3
    assert [i.symbol for i in instruments[::3]] == [
        "H100.US-EAST.FIRM.2026-12-01T14",
        "H100.EU-NORTH.FIRM.2026-12-01T14",
        "B200.US-EAST.INTERRUPTIBLE.2026-12-01T14",  # service classes in list order, not sorted
        "B200.US-EAST.FIRM.2026-12-01T14",
    ]
    h100, b200 = instruments[0], instruments[-1]
    assert (h100.min_price, h100.max_price, h100.price_increment) == (100, 50_000, 5)
    assert (h100.max_order_qty, h100.protection_ticks) == (1000, 500)
    assert (b200.min_price, b200.max_price, b200.price_increment) == (1_000, 40_000, 5)
    assert b200.max_order_qty == 500


def test_load_listing_from_file(tmp_path):
    path = tmp_path / "listing.toml"
    path.write_text(
        """
tick = "0.01"
window_hours = 2
gate_closure_minutes = 0
[[products]]
accelerator = "A100"
regions = ["AP-SOUTH-1"]
service_classes = ["INTERRUPTIBLE"]
price_band = ["0.05", "9"]
price_increment = "0.05"
max_order_qty = 64
market_protection = 0
"""
    )
    cfg = load_listing(path)
    instruments = cfg.instruments(ANCHOR)
    assert [i.symbol for i in instruments] == [
        "A100.AP-SOUTH-1.INTERRUPTIBLE.2026-12-01T14",
        "A100.AP-SOUTH-1.INTERRUPTIBLE.2026-12-01T15",
    ]
    assert instruments[0].close_ns == instruments[0].delivery_start_ns  # no gate closure lead
    assert (instruments[0].min_price, instruments[0].max_price) == (5, 900)
    assert instruments[0].price_increment == 5 and instruments[0].protection_ticks == 0
    assert load_listing(str(path)) == cfg


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("tick = \n")
    with pytest.raises(ListingError, match="broken.toml.*not valid TOML"):
        load_listing(path)


def test_error_from_file_names_file_and_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('tick = "0.001"\nwindow_hours = 0\ngate_closure_minutes = 60\n')
    with pytest.raises(ListingError) as info:
        load_listing(path)
    assert "bad.toml" in str(info.value)
    assert info.value.field == "window_hours"


def test_missing_file_is_os_error(tmp_path):
    with pytest.raises(OSError):
        load_listing(tmp_path / "nope.toml")


# ------------------------------------------------------------ bad configuration


def _set(path: str, value):
    """A mutation setting (or, with value DELETE, removing) the key at a dotted path like 'products.0.regions'."""

    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is DELETE:
            del node[int(last) if last.isdigit() else last]
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


DELETE = object()

BAD = [
    # (mutation, field named in the error, a fragment of the message)
    (_set("surprise", 1), "surprise", "unknown key"),
    (_set("defaults.price_bnad", ["1", "2"]), "defaults.price_bnad", "unknown key"),
    (_set("products.1.region", ["US-EAST"]), "products[1].region", "unknown key"),
    (_set("tick", DELETE), "tick", "missing"),
    (_set("window_hours", DELETE), "window_hours", "missing"),
    (_set("gate_closure_minutes", DELETE), "gate_closure_minutes", "missing"),
    (_set("products", DELETE), "products", "missing"),
    (_set("tick", 0.001), "tick", "float"),
    (_set("tick", "abc"), "tick", "not a decimal"),
    (_set("tick", "0"), "tick", "above zero"),
    (_set("tick", "-0.001"), "tick", "above zero"),
    (_set("tick", "NaN"), "tick", "not a decimal"),
    (_set("window_hours", 0), "window_hours", "out of range"),
    (_set("window_hours", 10_000), "window_hours", "out of range"),
    (_set("window_hours", 4.0), "window_hours", "whole number"),
    (_set("window_hours", True), "window_hours", "whole number"),
    (_set("gate_closure_minutes", -1), "gate_closure_minutes", "out of range"),
    (_set("gate_closure_minutes", "60"), "gate_closure_minutes", "whole number"),
    (_set("defaults", ["x"]), "defaults", "expected a table"),
    (_set("defaults.price_band", ["5.000", "1.000"]), "defaults.price_band", "min 5.000 above max 1.000"),
    (_set("defaults.price_band", ["1.000"]), "defaults.price_band", "[min, max]"),
    (_set("defaults.price_band", "1.000"), "defaults.price_band", "[min, max]"),
    (_set("defaults.price_band", ["0", "1.000"]), "defaults.price_band", "above zero"),
    (_set("defaults.price_band", ["0.1005", "1.000"]), "defaults.price_band[0]", "not a multiple of tick 0.001"),
    (_set("defaults.price_band", ["0.100", 1.5]), "defaults.price_band[1]", "float"),
    (_set("defaults.price_band", ["0.100", "1.002"]), "defaults.price_band", "not a multiple of price_increment"),
    (_set("defaults.price_increment", "0.0005"), "defaults.price_increment", "not a multiple of tick"),
    (_set("defaults.price_increment", "0"), "defaults.price_increment", "above zero"),
    (_set("defaults.price_increment", "0.003"), "defaults.price_band", "not a multiple of price_increment"),
    (_set("defaults.max_order_qty", 0), "defaults.max_order_qty", "out of range"),
    (_set("defaults.max_order_qty", 10**10), "defaults.max_order_qty", "out of range"),
    (_set("defaults.max_order_qty", "100"), "defaults.max_order_qty", "whole number"),
    (_set("defaults.market_protection", "-0.500"), "defaults.market_protection", "negative"),
    (_set("defaults.market_protection", "0.502"), "defaults.market_protection", "not a multiple of price_increment"),
    (_set("defaults.market_protection", "0.0001"), "defaults.market_protection", "not a multiple of tick"),
    (_set("defaults.price_band", DELETE), "products[0].price_band", "missing"),
    (_set("products", []), "products", "non-empty array"),
    (_set("products", {"accelerator": "H100"}), "products", "non-empty array"),
    (_set("products.0", "H100"), "products[0]", "expected a table"),
    (_set("products.0.accelerator", DELETE), "products[0].accelerator", "missing"),
    (_set("products.1.regions", DELETE), "products[1].regions", "missing"),
    (_set("products.0.service_classes", DELETE), "products[0].service_classes", "missing"),
    (_set("products.0.accelerator", "h100"), "products[0].accelerator", "not a valid accelerator name"),
    (_set("products.0.accelerator", "H100.X"), "products[0].accelerator", "not a valid accelerator name"),
    (_set("products.0.accelerator", "-H100"), "products[0].accelerator", "not a valid accelerator name"),
    (_set("products.0.accelerator", ""), "products[0].accelerator", "non-empty name"),
    (_set("products.0.accelerator", 100), "products[0].accelerator", "non-empty name"),
    (_set("products.1.regions", []), "products[1].regions", "expected a non-empty list of names"),
    (_set("products.1.regions", "US-EAST"), "products[1].regions", "expected a non-empty list of names"),
    (_set("products.0.regions", ["US-EAST", "us-west"]), "products[0].regions[1]", "not a valid region name"),
    (_set("products.0.regions", ["US-EAST", "US_WEST"]), "products[0].regions[1]", "not a valid region name"),
    (_set("products.0.regions", ["US-EAST", "US.WEST"]), "products[0].regions[1]", "not a valid region name"),
    (_set("products.0.regions", ["US-EAST", "US-EAST"]), "products[0].regions[1]", "listed twice"),
    (_set("products.0.service_classes", []), "products[0].service_classes", "non-empty list"),
    (_set("products.0.service_classes", ["SPOT"]), "products[0].service_classes[0]", "not a service class"),
    (_set("products.1.service_classes", ["FIRM", "FIRM"]), "products[1].service_classes[1]", "listed twice"),
    (_set("products.1.accelerator", "H100"), "products[1]", "H100.US-EAST.FIRM is already listed by products[0]"),
    (_set("products.1.price_band", ["2.000", "1.000"]), "products[1].price_band", "min 2.000 above max 1.000"),
    (_set("products.1.price_increment", "0.003"), "products[1].price_band", "not a multiple of price_increment"),
    (_set("products.1.market_protection", "0.001"), "products[1].market_protection", "not a multiple"),
    (_set("products.1.max_order_qty", -5), "products[1].max_order_qty", "out of range"),
    (_set("products.1.price_band", ["1", "99999999999999999"]), "products[1].price_band", "too large"),
]


@pytest.mark.parametrize(("mutate", "field", "fragment"), BAD, ids=[f"{b[1]}:{b[2]}" for b in BAD])
def test_bad_config_raises_listing_error_naming_the_field(mutate, field, fragment):
    doc = base_doc()
    mutate(doc)
    with pytest.raises(ListingError) as info:
        listing_from_dict(doc)
    err = info.value
    assert err.field == field
    assert str(err).startswith(f"{field}: ")
    assert fragment in str(err)


def test_base_doc_is_valid_and_not_mutated_by_loading():
    doc = base_doc()
    before = copy.deepcopy(doc)
    listing_from_dict(doc)
    assert doc == before


def test_listing_error_is_value_error():
    assert issubclass(ListingError, ValueError)


def test_defaults_section_is_optional_when_products_are_complete():
    doc = base_doc()
    defaults = doc.pop("defaults")
    for product in doc["products"]:
        for key, value in defaults.items():
            product.setdefault(key, value)
    assert listing_from_dict(doc).instrument_count == 12


def test_parse_listing_text_matches_dict():
    text = """
tick = "0.001"
window_hours = 3
gate_closure_minutes = 60
[defaults]
price_band = ["0.100", "50.000"]
price_increment = "0.005"
max_order_qty = 1000
market_protection = "0.500"
[[products]]
accelerator = "H100"
regions = ["US-EAST", "EU-NORTH"]
service_classes = ["FIRM"]
[[products]]
accelerator = "B200"
regions = ["US-EAST"]
service_classes = ["INTERRUPTIBLE", "FIRM"]
price_band = ["1.000", "40.000"]
max_order_qty = 500
"""
    assert parse_listing(text) == listing_from_dict(base_doc())


# ------------------------------------------------------------ dollar conversion


@pytest.mark.parametrize(
    ("amount", "tick", "ticks"),
    [
        ("0.1", "0.001", 100),
        ("2.450", "0.001", 2450),
        ("2.45", "0.001", 2450),
        ("50", "0.001", 50_000),
        ("0.3", "0.1", 3),  # exact where binary floats are not: 0.3 / 0.1 != 3.0
        ("0.0005", "0.0001", 5),
        ("-1.25", "0.05", -25),
        ("0", "0.001", 0),
        ("12345678901234567890.001", "0.001", 12345678901234567890001),
    ],
)
def test_to_ticks_exact(amount, tick, ticks):
    assert to_ticks(Decimal(amount), Decimal(tick)) == ticks


@pytest.mark.parametrize(("amount", "tick"), [("2.4505", "0.001"), ("0.1", "0.03"), ("1", "0.3"), ("1e-30", "0.001")])
def test_to_ticks_refuses_inexact(amount, tick):
    with pytest.raises(ValueError):
        to_ticks(Decimal(amount), Decimal(tick))


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=6))
def test_ticks_round_trip_through_dollars(ticks, places):
    tick = Decimal(1).scaleb(-places)  # 1, 0.1, ..., 0.000001
    text = format_price(ticks, tick)
    assert parse_price(text, tick) == ticks
    assert to_ticks(Decimal(text), tick) == ticks
    if places:
        assert len(text.split(".")[1]) == places


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=9))
def test_off_tick_amount_is_refused(ticks, tenth):
    amount = Decimal(ticks) * Decimal("0.001") + Decimal(tenth) * Decimal("0.0001")
    with pytest.raises(ValueError):
        to_ticks(amount, Decimal("0.001"))


def test_units_formatting():
    assert format_price(2450) == "2.450"
    assert format_price(5) == "0.005"
    assert format_price(-500) == "-0.500"
    assert format_price(7, "0.01") == "0.07"
    assert parse_price("2.45") == 2450
    assert parse_price(" 3 ") == 3000
    assert format_notional(2450, 1000) == "2,450.000"
    assert parse_qty("12,000") == 12_000
    for bad in ("2.4505", "abc", "", "nan"):
        with pytest.raises(ValueError):
            parse_price(bad)
    with pytest.raises(ValueError):
        parse_price(2.45)  # floats are inexact: refused
    for bad in ("0", "-5", "1.5", "x"):
        with pytest.raises(ValueError):
            parse_qty(bad)
    with pytest.raises(ValueError, match="quantity -5 is negative"):
        parse_qty("-5")
    with pytest.raises(ValueError, match="is not a whole number of GPUs"):
        parse_qty("1.5")


def test_rolling_window_keeps_exactly_the_next_window_hours_open():
    from engine.codes import InstrumentStatus
    from engine.exchange import Exchange
    from engine.instruments import NS_PER_HOUR
    from engine.listing import load_listing
    from engine.records import AdvanceTime

    listing = load_listing(None)
    anchor = 1_796_112_000 * 10**9  # 2026-12-01T08
    instruments = listing.instruments(anchor, listing.window_hours + 24)
    assert len(instruments) == 4 * 2 * 2 * 72
    ex = Exchange(instruments, 4)
    for hours_later in (0, 5, 30):
        t = anchor + hours_later * NS_PER_HOUR + 1
        ex.submit(AdvanceTime(t))
        open_hours = sorted({(i.delivery_start_ns - anchor) // NS_PER_HOUR for i in instruments
                             if ex.status(i.instrument_id) == InstrumentStatus.OPEN})
        # open: delivery more than the 60-minute gate closure away, at most window_hours ahead, and listed
        last = min(hours_later + listing.window_hours, 72 - 1)
        assert open_hours == list(range(hours_later + 2, last + 1))
