"""Compute instruments: one delivery hour of one compute product.

An instrument is (accelerator, region, service class, delivery hour start in
UTC). Its symbol is readable and parses back exactly::

    H100.US-EAST.FIRM.2026-12-01T14

Accelerator and region are upper-case names of letters, digits and '-'; the
service class is FIRM or INTERRUPTIBLE; the hour is ``YYYY-MM-DDTHH``.

``Instrument`` also carries the trading parameters the matching engine needs,
all as integers: the price band and price increment in ticks, the maximum
order size in GPUs, the market-order protection band in ticks, and the open
and gate-closure times in nanoseconds since the epoch. Parsing and formatting
are O(len(symbol)).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import msgspec

SERVICE_CLASSES = ("FIRM", "INTERRUPTIBLE")
NS_PER_SECOND = 1_000_000_000
NS_PER_HOUR = 3600 * NS_PER_SECOND

_NAME = r"[A-Z0-9][A-Z0-9-]*"  # ASCII only: [0-9], not \\d
_SYMBOL_RE = re.compile(
    rf"^(?P<acc>{_NAME})\.(?P<region>{_NAME})\.(?P<cls>FIRM|INTERRUPTIBLE)\."
    r"(?P<hour>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2})"
)


class ProductKey(msgspec.Struct, frozen=True):
    """What is delivered, without the hour."""

    accelerator: str
    region: str
    service_class: str


class Instrument(msgspec.Struct, frozen=True):
    instrument_id: int
    accelerator: str
    region: str
    service_class: str
    delivery_start_ns: int  # start of the delivery hour, UTC
    open_ns: int  # trading starts
    close_ns: int  # gate closure: trading stops, resting orders expire
    min_price: int  # price band, ticks, inclusive
    max_price: int
    price_increment: int  # prices must be multiples of this many ticks
    max_order_qty: int  # GPUs
    protection_ticks: int  # a market order never trades further than this from the best price

    @property
    def symbol(self) -> str:
        return format_symbol(self.accelerator, self.region, self.service_class, self.delivery_start_ns)

    @property
    def product(self) -> ProductKey:
        return ProductKey(self.accelerator, self.region, self.service_class)


class SymbolError(ValueError):
    """A symbol that does not name an instrument."""


def format_hour(delivery_start_ns: int) -> str:
    if delivery_start_ns % NS_PER_HOUR:
        raise ValueError(f"delivery start {delivery_start_ns} is not on a whole hour")
    return datetime.fromtimestamp(delivery_start_ns // NS_PER_SECOND, UTC).strftime("%Y-%m-%dT%H")


def parse_hour(text: str) -> int:
    try:
        dt = datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError as exc:
        raise SymbolError(f"bad delivery hour {text!r}: expected YYYY-MM-DDTHH") from exc
    return int(dt.timestamp()) * NS_PER_SECOND


def format_symbol(accelerator: str, region: str, service_class: str, delivery_start_ns: int) -> str:
    return f"{accelerator}.{region}.{service_class}.{format_hour(delivery_start_ns)}"


def parse_symbol(symbol: str) -> tuple[ProductKey, int]:
    """``'H100.US-EAST.FIRM.2026-12-01T14'`` -> (ProductKey, delivery start ns)."""
    m = _SYMBOL_RE.fullmatch(symbol)
    if m is None:
        raise SymbolError(
            f"bad symbol {symbol!r}: expected ACCELERATOR.REGION.FIRM|INTERRUPTIBLE.YYYY-MM-DDTHH"
        )
    return ProductKey(m["acc"], m["region"], m["cls"]), parse_hour(m["hour"])
