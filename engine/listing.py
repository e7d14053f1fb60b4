"""Listing configuration: which compute instruments the exchange lists, and with what parameters.

A listing is a TOML file (the built-in one is ``engine/default_listing.toml``)::

    tick = "0.001"              # dollars per tick (the unit of every integer price)
    window_hours = 48           # delivery hours listed ahead, from the anchor hour
    gate_closure_minutes = 60   # trading in an hour stops this long before delivery starts
    [defaults]
    price_band = ["0.100", "50.000"]   # dollars per GPU-hour, inclusive
    price_increment = "0.001"          # dollars; must be a multiple of tick
    max_order_qty = 10000              # GPUs
    market_protection = "0.500"        # dollars
    [[products]]
    accelerator = "H100"
    regions = ["US-EAST", "EU-NORTH"]
    service_classes = ["FIRM", "INTERRUPTIBLE"]
    price_band = ["0.500", "20.000"]   # optional per-product override of any [defaults] key

``load_listing(path)`` parses and validates it into a ``ListingConfig``;
``ListingConfig.instruments(anchor_ns)`` expands it into the engine's
``Instrument`` list.

Invariants of a loaded ``ListingConfig`` (anything else raises ``ListingError``
naming the offending field, e.g. ``products[2].regions``; unknown keys are
errors too):

* every dollar amount was given as a decimal string (or a whole number) and
  converted to integer ticks exactly with ``decimal.Decimal``; an amount that is
  not a whole number of ticks is refused, and so is a TOML float (inexact);
* ``0 < min_price <= max_price < 2**53`` ticks; ``price_increment > 0`` and the
  band edges and ``protection_ticks >= 0`` are multiples of it, so every price the
  engine can produce (limits, market-order protection limits) is on the grid;
* ``1 <= max_order_qty <= 10**9`` GPUs; ``1 <= window_hours <= 8784``;
  ``gate_closure_minutes >= 0``;
* accelerator and region names match the symbol grammar of
  ``engine.instruments`` (they round-trip through a symbol), service classes are
  among ``SERVICE_CLASSES``, and no (accelerator, region, service class) is
  listed twice.

Instrument ids are assigned product-major, 0..n-1: products in file order, then
regions in list order, then service classes in list order, then delivery hours
ascending. So the instrument of product index ``p`` (counting every
accelerator x region x class combination in that order) and hour offset ``k`` is
``p * window_hours + k``.

Cost: loading is O(size of the file); ``instruments`` is
O(products x regions x classes x window_hours) and builds that many structs
(768 for the default listing). Nothing here imports numba.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal, InvalidOperation, localcontext
from importlib import resources
from typing import Any

import msgspec

from engine.instruments import (
    NS_PER_HOUR,
    NS_PER_SECOND,
    SERVICE_CLASSES,
    Instrument,
    SymbolError,
    parse_symbol,
)

DEFAULT_LISTING_RESOURCE = "default_listing.toml"

MAX_PRICE_TICKS = 2**53 - 1
MAX_ORDER_QTY = 10**9
MAX_WINDOW_HOURS = 366 * 24

_TOP_KEYS = ("tick", "window_hours", "gate_closure_minutes", "defaults", "products")
_TRADING_KEYS = ("price_band", "price_increment", "max_order_qty", "market_protection")
_PRODUCT_KEYS = ("accelerator", "regions", "service_classes", *_TRADING_KEYS)


class ListingError(ValueError):
    """A listing configuration that cannot be used; the message names the field."""

    def __init__(self, field: str, message: str, source: str | None = None):
        self.field = field
        self.message = message
        self.source = source
        text = f"{field}: {message}" if field else message
        super().__init__(f"{source}: {text}" if source else text)


class ProductListing(msgspec.Struct, frozen=True):
    """One [[products]] entry with its defaults applied; every price in ticks."""

    accelerator: str
    regions: tuple[str, ...]
    service_classes: tuple[str, ...]
    min_price: int
    max_price: int
    price_increment: int
    max_order_qty: int
    protection_ticks: int


class ListingConfig(msgspec.Struct, frozen=True):
    tick: Decimal  # dollars per tick
    window_hours: int
    gate_closure_minutes: int
    products: tuple[ProductListing, ...]

    @property
    def instrument_count(self) -> int:
        per_hour = sum(len(p.regions) * len(p.service_classes) for p in self.products)
        return per_hour * self.window_hours

    def instruments(self, anchor_ns: int, horizon_hours: int | None = None) -> list[Instrument]:
        """Every listed instrument, ids 0..n-1 product-major (see the module docstring).

        ``anchor_ns`` is rounded down to the hour; delivery hours are
        ``[anchor hour, anchor hour + horizon_hours)`` (default: ``window_hours``).
        The window rolls: an hour opens ``window_hours`` before its delivery
        starts (or at the anchor, if later) and closes ``gate_closure_minutes``
        before it, so at any time the next ``window_hours`` delivery hours
        trade and the later ones are listed but not yet open (PRE_OPEN). A venue
        lists a horizon longer than the window (``cx serve``: one day more) and
        starts a new listing each trading day. An hour whose gate closure is at
        or before the anchor (with a 60-minute gate: the anchor hour itself) is
        still listed, with ``close_ns <= open_ns``: the engine closes it at its
        first time advance.
        """
        if isinstance(anchor_ns, bool) or not isinstance(anchor_ns, int) or anchor_ns < 0:
            raise ValueError(f"anchor_ns must be a non-negative integer of nanoseconds, not {anchor_ns!r}")
        anchor = anchor_ns - anchor_ns % NS_PER_HOUR
        horizon = self.window_hours if horizon_hours is None else horizon_hours
        if horizon < 1:
            raise ValueError(f"horizon_hours must be at least 1, not {horizon}")
        gate_ns = self.gate_closure_minutes * 60 * NS_PER_SECOND
        window_ns = self.window_hours * NS_PER_HOUR
        out: list[Instrument] = []
        for p in self.products:
            for region in p.regions:
                for service_class in p.service_classes:
                    for k in range(horizon):
                        start = anchor + k * NS_PER_HOUR
                        out.append(
                            Instrument(
                                instrument_id=len(out),
                                accelerator=p.accelerator,
                                region=region,
                                service_class=service_class,
                                delivery_start_ns=start,
                                open_ns=max(anchor, start - window_ns),
                                close_ns=start - gate_ns,
                                min_price=p.min_price,
                                max_price=p.max_price,
                                price_increment=p.price_increment,
                                max_order_qty=p.max_order_qty,
                                protection_ticks=p.protection_ticks,
                            )
                        )
        return out


# ------------------------------------------------------------------ loading


def load_listing(path: str | os.PathLike[str] | None = None) -> ListingConfig:
    """Read and validate a listing file; ``None`` loads the built-in default listing.

    Raises ``ListingError`` for bad TOML or bad content, ``OSError`` when the file cannot be read.
    """
    if path is None:
        data = resources.files("engine").joinpath(DEFAULT_LISTING_RESOURCE).read_bytes()
        source = f"engine/{DEFAULT_LISTING_RESOURCE}"
    else:
        with open(path, "rb") as f:
            data = f.read()
        source = os.fspath(path)
    return parse_listing(data.decode("utf-8"), source=source)


def parse_listing(text: str, source: str | None = None) -> ListingConfig:
    """Validate listing TOML given as text."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ListingError("", f"not valid TOML: {exc}", source) from None
    return listing_from_dict(doc, source=source)


def listing_from_dict(doc: dict[str, Any], source: str | None = None) -> ListingConfig:
    """Validate an already parsed listing document (a dict shaped like the TOML)."""
    try:
        return _build(doc)
    except ListingError as exc:
        if source is None:
            raise
        raise ListingError(exc.field, exc.message, source) from None


# --------------------------------------------------------------- conversion


def to_ticks(amount: Decimal, tick: Decimal) -> int:
    """Dollars to an exact whole number of ticks; ``ValueError`` if ``amount`` is not one."""
    if not amount.is_finite() or not tick.is_finite() or tick <= 0:
        raise ValueError(f"cannot convert {amount} with tick {tick}")
    with localcontext() as ctx:
        ctx.prec = 80
        try:
            q, r = divmod(amount, tick)
        except InvalidOperation as exc:
            raise ValueError(f"{amount} is out of range for tick {tick}") from exc
    if r != 0:
        raise ValueError(f"{amount} is not a multiple of tick {tick}")
    return int(q)


def parse_decimal(value: Any) -> Decimal:
    """A dollar amount as written in a listing: a decimal string or a whole number (never a float)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(value)
    try:
        d = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(value) from None
    if not d.is_finite():
        raise ValueError(value)
    return d


# --------------------------------------------------------------- validation


class _Setting(msgspec.Struct, frozen=True):
    """A validated trading parameter and the field it came from (for error messages)."""

    value: Any
    field: str
    text: str  # the amount as written, for messages


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_keys(table: Any, allowed: tuple[str, ...], where: str) -> None:
    if not isinstance(table, dict):
        raise ListingError(where, f"expected a table, got {_kind(table)}")
    for key in table:
        if key not in allowed:
            field = f"{where}.{key}" if where else key
            raise ListingError(field, f"unknown key (allowed: {', '.join(allowed)})")


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, float):
        return f"the float {v!r}"
    if isinstance(v, int):
        return f"the integer {v}"
    if isinstance(v, str):
        return f"the string {v!r}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a table"
    return type(v).__name__


def _amount(field: str, value: Any, tick: Decimal | None = None) -> tuple[Decimal, int | None]:
    try:
        d = parse_decimal(value)
    except TypeError:
        hint = " (floats are inexact; quote it)" if isinstance(value, float) else ""
        raise ListingError(field, f'expected a decimal string such as "2.500", got {_kind(value)}{hint}') from None
    except ValueError:
        raise ListingError(field, f"{value!r} is not a decimal number") from None
    if tick is None:
        return d, None
    try:
        return d, to_ticks(d, tick)
    except ValueError:
        raise ListingError(field, f"{d} is not a multiple of tick {tick}") from None


def _int(field: str, value: Any, lo: int, hi: int | None, what: str) -> int:
    if not _is_int(value):
        raise ListingError(field, f"expected {what}, got {_kind(value)}")
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ListingError(field, f"{value} is out of range: expected {what} {bound}")
    return value


def _name(field: str, value: Any, role: str) -> str:
    if not isinstance(value, str) or not value:
        raise ListingError(field, f"expected a non-empty name, got {_kind(value)}")
    # The name must survive a round trip through a symbol, i.e. match the grammar of engine.instruments.
    probe = f"{value}.X.FIRM.2000-01-01T00" if role == "accelerator" else f"X.{value}.FIRM.2000-01-01T00"
    try:
        key, _ = parse_symbol(probe)
    except SymbolError:
        key = None
    got = None if key is None else (key.accelerator if role == "accelerator" else key.region)
    if got != value:
        raise ListingError(
            field, f"{value!r} is not a valid {role} name (upper-case letters, digits and '-', not starting with '-')"
        )
    return value


def _name_list(field: str, value: Any, role: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ListingError(field, f"expected a non-empty list of names, got {_kind(value)}")
    names: list[str] = []
    for i, item in enumerate(value):
        item_field = f"{field}[{i}]"
        if role == "service class":
            if item not in SERVICE_CLASSES:
                raise ListingError(item_field, f"{item!r} is not a service class (one of {', '.join(SERVICE_CLASSES)})")
        else:
            _name(item_field, item, role)
        if item in names:
            raise ListingError(item_field, f"{item!r} is listed twice")
        names.append(item)
    return tuple(names)


def _trading_settings(table: dict[str, Any], where: str, tick: Decimal) -> dict[str, _Setting]:
    """Validate the trading keys present in ``table`` on their own (not against each other)."""
    out: dict[str, _Setting] = {}
    if "price_band" in table:
        field = f"{where}.price_band"
        band = table["price_band"]
        if not isinstance(band, list) or len(band) != 2:
            raise ListingError(field, f'expected [min, max] such as ["0.500", "20.000"], got {_kind(band)}')
        lo_d, lo = _amount(f"{field}[0]", band[0], tick)
        hi_d, hi = _amount(f"{field}[1]", band[1], tick)
        if lo <= 0:
            raise ListingError(field, f"min {lo_d} must be above zero")
        if lo > hi:
            raise ListingError(field, f"min {lo_d} above max {hi_d}")
        if hi > MAX_PRICE_TICKS:
            raise ListingError(field, f"max {hi_d} is too large ({hi} ticks, limit {MAX_PRICE_TICKS})")
        out["price_band"] = _Setting((lo, hi), field, f"{lo_d}-{hi_d}")
    if "price_increment" in table:
        field = f"{where}.price_increment"
        d, inc = _amount(field, table["price_increment"], tick)
        if inc <= 0:
            raise ListingError(field, f"{d} must be above zero")
        out["price_increment"] = _Setting(inc, field, str(d))
    if "max_order_qty" in table:
        field = f"{where}.max_order_qty"
        out["max_order_qty"] = _Setting(
            _int(field, table["max_order_qty"], 1, MAX_ORDER_QTY, "a whole number of GPUs"), field, ""
        )
    if "market_protection" in table:
        field = f"{where}.market_protection"
        d, prot = _amount(field, table["market_protection"], tick)
        if prot < 0:
            raise ListingError(field, f"{d} must not be negative")
        out["market_protection"] = _Setting(prot, field, str(d))
    return out


def _cross_check(s: dict[str, _Setting]) -> None:
    """Band edges and protection must be multiples of the increment, when those settings are known."""
    inc = s.get("price_increment")
    if inc is None:
        return
    band = s.get("price_band")
    if band is not None:
        for edge, ticks in zip(("min", "max"), band.value, strict=True):
            if ticks % inc.value:
                raise ListingError(
                    band.field,
                    f"{edge} of {band.text} is not a multiple of price_increment {inc.text} ({inc.field})",
                )
    prot = s.get("market_protection")
    if prot is not None and prot.value % inc.value:
        raise ListingError(prot.field, f"{prot.text} is not a multiple of price_increment {inc.text} ({inc.field})")


def _build(doc: dict[str, Any]) -> ListingConfig:
    _check_keys(doc, _TOP_KEYS, "")

    def required(key: str) -> Any:
        if key not in doc:
            raise ListingError(key, "missing")
        return doc[key]

    tick, _ = _amount("tick", required("tick"))
    if tick <= 0:
        raise ListingError("tick", f"{tick} must be above zero")
    window_hours = _int("window_hours", required("window_hours"), 1, MAX_WINDOW_HOURS, "a whole number of hours")
    gate = _int("gate_closure_minutes", required("gate_closure_minutes"), 0, None, "a whole number of minutes")

    defaults_table = doc.get("defaults", {})
    _check_keys(defaults_table, _TRADING_KEYS, "defaults")
    defaults = _trading_settings(defaults_table, "defaults", tick)
    _cross_check(defaults)

    raw_products = required("products")
    if not isinstance(raw_products, list) or not raw_products:
        raise ListingError("products", f"expected a non-empty array of [[products]] tables, got {_kind(raw_products)}")

    products: list[ProductListing] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, table in enumerate(raw_products):
        where = f"products[{i}]"
        _check_keys(table, _PRODUCT_KEYS, where)
        for key in ("accelerator", "regions", "service_classes"):
            if key not in table:
                raise ListingError(f"{where}.{key}", "missing")
        accelerator = _name(f"{where}.accelerator", table["accelerator"], "accelerator")
        regions = _name_list(f"{where}.regions", table["regions"], "region")
        classes = _name_list(f"{where}.service_classes", table["service_classes"], "service class")
        settings = {**defaults, **_trading_settings(table, where, tick)}
        for key in _TRADING_KEYS:
            if key not in settings:
                raise ListingError(f"{where}.{key}", "missing (set it in the product or in [defaults])")
        _cross_check(settings)
        for region in regions:
            for service_class in classes:
                k = (accelerator, region, service_class)
                if k in seen:
                    raise ListingError(where, f"{'.'.join(k)} is already listed by products[{seen[k]}]")
                seen[k] = i
        lo, hi = settings["price_band"].value
        products.append(
            ProductListing(
                accelerator=accelerator,
                regions=regions,
                service_classes=classes,
                min_price=lo,
                max_price=hi,
                price_increment=settings["price_increment"].value,
                max_order_qty=settings["max_order_qty"].value,
                protection_ticks=settings["market_protection"].value,
            )
        )
    return ListingConfig(tick=tick, window_hours=window_hours, gate_closure_minutes=gate, products=tuple(products))
