"""Human units at the edge: integer ticks <-> dollar strings, GPUs, timestamps.

The engine only knows integers (ticks, GPUs, nanoseconds). People read and
type dollars such as ``"2.450"`` (per GPU-hour). Conversions here are exact,
through ``decimal.Decimal``: a dollar amount that is not a whole number of
ticks is refused rather than rounded, and formatting shows exactly as many
decimals as the tick has (3 for the default $0.001 tick).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from engine.instruments import NS_PER_SECOND
from engine.listing import parse_decimal, to_ticks

DEFAULT_TICK = Decimal("0.001")


def _tick(tick: Decimal | str) -> Decimal:
    t = Decimal(tick)
    if not t.is_finite() or t <= 0:
        raise ValueError(f"tick must be a positive decimal, not {tick!r}")
    return t


def format_price(ticks: int, tick: Decimal | str = DEFAULT_TICK) -> str:
    """``2450`` -> ``"2.450"`` (with the default tick); exactly the tick's number of decimals."""
    t = _tick(tick)
    return format(ticks * t, "f")


def parse_price(text: str | int, tick: Decimal | str = DEFAULT_TICK) -> int:
    """``"2.45"`` -> ``2450`` ticks; ``ValueError`` if not a number or not a whole number of ticks."""
    try:
        amount = parse_decimal(text)
    except TypeError:
        raise ValueError(f"expected a decimal price such as '2.450', not {text!r}") from None
    except ValueError:
        raise ValueError(f"{text!r} is not a decimal price") from None
    return to_ticks(amount, _tick(tick))


def format_qty(qty: int) -> str:
    """GPUs, with thousands separators: ``12000`` -> ``"12,000"``."""
    return f"{qty:,}"


def parse_qty(text: str | int) -> int:
    """A positive whole number of GPUs (``"12,000"`` and ``"12_000"`` accepted)."""
    if isinstance(text, bool):
        raise ValueError(f"not a quantity: {text!r}")
    if isinstance(text, int):
        qty = text
    else:
        cleaned = text.strip().replace(",", "").replace("_", "")
        digits = cleaned[1:] if cleaned[:1] in "+-" else cleaned
        if not digits.isdigit():
            raise ValueError(f"{text!r} is not a whole number of GPUs")
        qty = int(cleaned)
    if qty < 0:
        raise ValueError(f"quantity {qty} is negative: a quantity is a positive number of GPUs (the side says "
                         "buy or sell)")
    if qty == 0:
        raise ValueError("quantity must be positive, not 0")
    return qty


def format_notional(price_ticks: int, qty: int, tick: Decimal | str = DEFAULT_TICK) -> str:
    """Dollars for ``qty`` GPU-hours at ``price_ticks``, grouped: ``(2450, 1000)`` -> ``"2,450.000"``."""
    return format(price_ticks * qty * _tick(tick), ",f")


def format_ts(ns: int) -> str:
    """Nanoseconds since the epoch -> ``"2026-12-01T14:00:05.250Z"`` (UTC, milliseconds)."""
    dt = datetime.fromtimestamp(ns // NS_PER_SECOND, UTC)
    ms = (ns % NS_PER_SECOND) // 1_000_000
    return f"{dt.strftime('%Y-%m-%dT%H:%M:%S')}.{ms:03d}Z"


def format_elapsed(ns: int) -> str:
    """A duration in nanoseconds -> ``"+00:01:05"`` (hours:minutes:seconds, truncated)."""
    sign = "-" if ns < 0 else "+"
    s = abs(ns) // NS_PER_SECOND
    return f"{sign}{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
