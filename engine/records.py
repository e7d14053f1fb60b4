"""Commands and events of the matching engine: typed structs and flat records.

Two representations of the same thing:

* msgspec ``Struct`` classes (``NewOrder``, ``Fill``, ...) for people and tests:
  readable, comparable with ``==``, printable.
* numpy structured arrays (``COMMAND_DTYPE``, ``EVENT_DTYPE``) for the hot path:
  the numba core reads a batch of command records and writes event records, so
  Python is crossed once per batch.

``commands_to_records`` and ``events_from_records`` convert between them; both
are exact (every field of a struct has a column, unused columns are zero).

Invariants: all prices are integer ticks, all quantities integer GPUs, all
times integer nanoseconds since the Unix epoch (UTC). A ``MassQuote`` becomes
one record per ``QuoteEntry``; every other command is one record. Conversion
costs O(n) Python work per item, so it belongs at the edges, not in loops that
are meant to be fast.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
import numpy as np

from engine.codes import (
    CommandKind,
    EventKind,
    OrderType,
    PackageEventKind,
    SelfTradePrevention,
    TimeInForce,
)

COMMAND_DTYPE = np.dtype(
    [
        ("kind", "i1"),
        ("side", "i1"),
        ("ord_type", "i1"),
        ("tif", "i1"),
        ("stp", "i1"),
        ("post_only", "i1"),
        ("reason", "i1"),
        ("instrument", "i4"),
        ("firm", "i4"),
        ("ts", "i8"),
        ("client_order_id", "i8"),
        ("order_id", "i8"),
        ("price", "i8"),
        ("qty", "i8"),
        ("price2", "i8"),
        ("qty2", "i8"),
        ("expire_ts", "i8"),
    ],
    align=True,
)

EVENT_DTYPE = np.dtype(
    [
        ("seq", "i8"),
        ("ts", "i8"),
        ("kind", "i1"),
        ("side", "i1"),
        ("reason", "i1"),
        ("liquidity", "i1"),
        ("status", "i1"),
        ("instrument", "i4"),
        ("firm", "i4"),
        ("count", "i4"),
        ("order_id", "i8"),
        ("client_order_id", "i8"),
        ("price", "i8"),
        ("qty", "i8"),
        ("leaves", "i8"),
        ("cum", "i8"),
        ("trade_id", "i8"),
    ],
    align=True,
)


def _padding_ranges(dtype: np.dtype) -> list[tuple[int, int]]:
    """Byte ranges of a record that belong to no field (alignment padding)."""
    used = np.zeros(dtype.itemsize, dtype=bool)
    for name in dtype.names:
        sub, off = dtype.fields[name][:2]
        used[off : off + sub.itemsize] = True
    ranges, start = [], None
    for i, u in enumerate([*used.tolist(), True]):
        if not u and start is None:
            start = i
        elif u and start is not None:
            ranges.append((start, i))
            start = None
    return ranges


_PADDING = {COMMAND_DTYPE: _padding_ranges(COMMAND_DTYPE), EVENT_DTYPE: _padding_ranges(EVENT_DTYPE)}


def zero_padding(records: np.ndarray) -> np.ndarray:
    """Zero the padding bytes of COMMAND_DTYPE or EVENT_DTYPE records in place (numpy leaves them
    uninitialised in copies and concatenations), so equal records are equal bytes. O(n); returns them."""
    if len(records):
        raw = records.view(np.uint8).reshape(len(records), records.dtype.itemsize)
        for a, b in _PADDING[records.dtype]:
            raw[:, a:b] = 0
    return records


# ---------------------------------------------------------------- commands


class NewOrder(msgspec.Struct, frozen=True, tag=True):
    ts: int
    firm: int
    client_order_id: int
    instrument: int
    side: int
    price: int  # ignored for MARKET orders
    qty: int
    ord_type: int = OrderType.LIMIT
    tif: int = TimeInForce.GTC
    post_only: int = 0  # 1: post-only (any other value is rejected as INVALID_FIELD)
    stp: int = SelfTradePrevention.CANCEL_NEWEST
    expire_ts: int = 0  # GTD only


class Cancel(msgspec.Struct, frozen=True, tag=True):
    ts: int
    firm: int
    order_id: int
    reason: int = 0  # 0: USER; the gateway may say DISCONNECT or ADMIN


class Modify(msgspec.Struct, frozen=True, tag=True):
    ts: int
    firm: int
    order_id: int
    price: int
    qty: int  # the new open (leaves) quantity


class MassCancel(msgspec.Struct, frozen=True, tag=True):
    ts: int
    firm: int
    instrument: int = -1  # -1: every instrument
    reason: int = 0  # 0: MASS; the gateway may say DISCONNECT or ADMIN


class QuoteEntry(msgspec.Struct, frozen=True):
    instrument: int
    bid_price: int
    bid_qty: int  # 0: no bid (cancels the firm's bid quote there)
    ask_price: int
    ask_qty: int  # 0: no ask


class MassQuote(msgspec.Struct, frozen=True, tag=True):
    ts: int
    firm: int
    quote_id: int
    entries: list[QuoteEntry]


class AdvanceTime(msgspec.Struct, frozen=True, tag=True):
    ts: int


class Halt(msgspec.Struct, frozen=True, tag=True):
    ts: int
    instrument: int


class Resume(msgspec.Struct, frozen=True, tag=True):
    ts: int
    instrument: int


class AuctionFill(msgspec.Struct, frozen=True, tag=True):
    """The call auction executes ``qty`` of resting order ``order_id`` at its clearing ``price``.
    Issued by the venue from an auction result, never accepted from a client."""

    ts: int
    order_id: int
    price: int
    qty: int


Command = NewOrder | Cancel | Modify | MassCancel | MassQuote | AdvanceTime | Halt | Resume | AuctionFill


def _row(kind: int, **fields: int) -> tuple:
    """One COMMAND_DTYPE row; fields not named are 0."""
    fields["kind"] = kind
    return tuple(int(fields.get(name, 0)) for name in COMMAND_DTYPE.names)


def commands_to_records(commands: list[Command]) -> np.ndarray:
    """Flatten commands into a COMMAND_DTYPE array (a MassQuote gives one row per entry)."""
    rows = []
    for c in commands:
        if isinstance(c, MassQuote):
            rows.extend(
                _row(CommandKind.MASS_QUOTE, instrument=e.instrument, firm=c.firm, ts=c.ts, client_order_id=c.quote_id,
                     price=e.bid_price, qty=e.bid_qty, price2=e.ask_price, qty2=e.ask_qty)
                for e in c.entries
            )
        elif isinstance(c, NewOrder):
            rows.append(_row(CommandKind.NEW_ORDER, side=c.side, ord_type=c.ord_type, tif=c.tif, stp=c.stp,
                             post_only=c.post_only, instrument=c.instrument, firm=c.firm, ts=c.ts,
                             client_order_id=c.client_order_id, price=c.price, qty=c.qty, expire_ts=c.expire_ts))
        elif isinstance(c, Cancel):
            rows.append(_row(CommandKind.CANCEL, reason=c.reason, instrument=-1, firm=c.firm, ts=c.ts,
                             order_id=c.order_id))
        elif isinstance(c, Modify):
            rows.append(_row(CommandKind.MODIFY, instrument=-1, firm=c.firm, ts=c.ts, order_id=c.order_id,
                             price=c.price, qty=c.qty))
        elif isinstance(c, MassCancel):
            rows.append(_row(CommandKind.MASS_CANCEL, reason=c.reason, instrument=c.instrument, firm=c.firm, ts=c.ts))
        elif isinstance(c, AdvanceTime):
            rows.append(_row(CommandKind.ADVANCE_TIME, instrument=-1, firm=-1, ts=c.ts))
        elif isinstance(c, AuctionFill):
            rows.append(_row(CommandKind.AUCTION_FILL, instrument=-1, firm=-1, ts=c.ts, order_id=c.order_id,
                             price=c.price, qty=c.qty))
        elif isinstance(c, Halt | Resume):
            kind = CommandKind.HALT if isinstance(c, Halt) else CommandKind.RESUME
            rows.append(_row(kind, instrument=c.instrument, firm=-1, ts=c.ts))
        else:
            raise TypeError(f"not an engine command: {c!r}")
    return np.array(rows, dtype=COMMAND_DTYPE)


def command_from_record(r) -> Command:
    """One record back to a struct (a MASS_QUOTE row becomes a one-entry MassQuote)."""
    kind = int(r["kind"])
    ts, firm = int(r["ts"]), int(r["firm"])
    if kind == CommandKind.NEW_ORDER:
        return NewOrder(ts, firm, int(r["client_order_id"]), int(r["instrument"]), int(r["side"]),
                        int(r["price"]), int(r["qty"]), int(r["ord_type"]), int(r["tif"]),
                        int(r["post_only"]), int(r["stp"]), int(r["expire_ts"]))
    if kind == CommandKind.CANCEL:
        return Cancel(ts, firm, int(r["order_id"]), int(r["reason"]))
    if kind == CommandKind.MODIFY:
        return Modify(ts, firm, int(r["order_id"]), int(r["price"]), int(r["qty"]))
    if kind == CommandKind.MASS_CANCEL:
        return MassCancel(ts, firm, int(r["instrument"]), int(r["reason"]))
    if kind == CommandKind.MASS_QUOTE:
        entry = QuoteEntry(int(r["instrument"]), int(r["price"]), int(r["qty"]), int(r["price2"]), int(r["qty2"]))
        return MassQuote(ts, firm, int(r["client_order_id"]), [entry])
    if kind == CommandKind.ADVANCE_TIME:
        return AdvanceTime(ts)
    if kind == CommandKind.HALT:
        return Halt(ts, int(r["instrument"]))
    if kind == CommandKind.RESUME:
        return Resume(ts, int(r["instrument"]))
    if kind == CommandKind.AUCTION_FILL:
        return AuctionFill(ts, int(r["order_id"]), int(r["price"]), int(r["qty"]))
    raise ValueError(f"unknown command kind {kind}")


# ------------------------------------------------------------------ events


class Accepted(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int
    order_id: int
    firm: int
    client_order_id: int
    side: int
    price: int  # the limit; for a market order the protection limit it sweeps to
    qty: int


class Rejected(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int
    firm: int
    client_order_id: int
    side: int
    reason: int


class Fill(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int
    order_id: int
    firm: int
    client_order_id: int
    side: int
    price: int
    qty: int
    leaves: int
    cum: int
    trade_id: int
    liquidity: int


class Cancelled(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int
    order_id: int
    firm: int
    client_order_id: int
    side: int
    price: int
    qty: int  # the quantity that was open and is now cancelled
    cum: int
    reason: int


class Replaced(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int
    order_id: int
    firm: int
    client_order_id: int
    side: int
    price: int
    leaves: int
    cum: int


class CancelRejected(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int  # the order's instrument, -1 when the order is unknown
    order_id: int
    firm: int
    reason: int


class Trade(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int
    trade_id: int
    side: int  # the aggressor's side
    price: int
    qty: int


class BookLevel(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int
    side: int
    price: int
    qty: int  # aggregate open quantity at the level, 0 when the level is gone
    count: int  # number of orders at the level


class InstrumentStatusChanged(msgspec.Struct, frozen=True, tag=True):
    seq: int
    ts: int
    instrument: int
    status: int


# the call auction's events (docs/auction.md): the same EVENT_DTYPE records, whose columns these structs name;
# COLUMNS maps a field to the record column that holds it (a field not in it is the column of its own name)


class PackageAccepted(msgspec.Struct, frozen=True, tag=True):
    COLUMNS: ClassVar[dict[str, str]] = {"package_id": "order_id", "alternatives": "count", "legs": "qty"}
    seq: int
    ts: int
    firm: int
    client_order_id: int
    package_id: int  # the venue's numbering of packages, apart from order ids
    side: int
    alternatives: int
    legs: int


class PackageRejected(msgspec.Struct, frozen=True, tag=True):
    COLUMNS: ClassVar[dict[str, str]] = {}
    seq: int
    ts: int
    firm: int
    client_order_id: int
    side: int
    reason: int  # AuctionReject


class PackageCancelled(msgspec.Struct, frozen=True, tag=True):
    COLUMNS: ClassVar[dict[str, str]] = {"package_id": "order_id"}
    seq: int
    ts: int
    firm: int
    client_order_id: int
    package_id: int
    side: int
    reason: int  # CancelReason


class PackageCancelRejected(msgspec.Struct, frozen=True, tag=True):
    COLUMNS: ClassVar[dict[str, str]] = {"package_id": "order_id"}
    seq: int
    ts: int
    firm: int
    package_id: int
    reason: int  # RejectReason


class PackageFill(msgspec.Struct, frozen=True, tag=True):
    COLUMNS: ClassVar[dict[str, str]] = {"package_id": "order_id", "amount": "cum", "auction": "trade_id",
                                         "alternative": "count", "last": "status"}
    seq: int
    ts: int
    instrument: int
    firm: int
    client_order_id: int
    package_id: int
    side: int
    price: int  # the instrument's clearing price
    qty: int
    amount: int  # qty x price
    auction: int  # the auction number
    alternative: int  # the alternative accepted
    last: int  # 1 on the package's last leg


class PackageUnfilled(msgspec.Struct, frozen=True, tag=True):
    COLUMNS: ClassVar[dict[str, str]] = {"package_id": "order_id", "alternative": "count", "limit": "qty",
                                         "auction": "trade_id"}
    seq: int
    ts: int
    firm: int
    client_order_id: int
    package_id: int
    side: int
    reason: int  # Outcome
    alternative: int  # its best alternative at the prices
    limit: int  # that alternative's limit (an offer: its minimum total)
    price: int  # that alternative's cost at the clearing prices
    auction: int


class AuctionPriceSet(msgspec.Struct, frozen=True, tag=True):
    COLUMNS: ClassVar[dict[str, str]] = {"auction": "order_id", "indicative": "side"}
    seq: int
    ts: int
    instrument: int
    auction: int
    indicative: int  # 0 final, 1 indicative
    price: int  # the uniform clearing price
    qty: int  # GPUs bought = GPUs sold


class AuctionCleared(msgspec.Struct, frozen=True, tag=True):
    COLUMNS: ClassVar[dict[str, str]] = {"auction": "order_id", "indicative": "side", "surplus": "price",
                                         "accepted": "qty", "not_accepted": "leaves",
                                         "paradoxically_rejected": "cum", "ir_cost": "trade_id", "gap_ppm": "count"}
    seq: int
    ts: int
    auction: int
    indicative: int
    status: int  # AuctionStatus
    surplus: int  # ticks x GPU-hours
    accepted: int  # packages
    not_accepted: int
    paradoxically_rejected: int
    ir_cost: int  # surplus lost to individual rationality
    gap_ppm: int  # 2,147,483,647: no bound proven in time


Event = (
    Accepted | Rejected | Fill | Cancelled | Replaced | CancelRejected | Trade | BookLevel | InstrumentStatusChanged
    | PackageAccepted | PackageRejected | PackageCancelled | PackageCancelRejected | PackageFill | PackageUnfilled
    | AuctionPriceSet | AuctionCleared
)

EVENT_CLASSES: dict[int, type] = {
    EventKind.ACCEPTED: Accepted,
    EventKind.REJECTED: Rejected,
    EventKind.FILL: Fill,
    EventKind.CANCELLED: Cancelled,
    EventKind.REPLACED: Replaced,
    EventKind.CANCEL_REJECTED: CancelRejected,
    EventKind.TRADE: Trade,
    EventKind.BOOK_LEVEL: BookLevel,
    EventKind.INSTRUMENT_STATUS: InstrumentStatusChanged,
    PackageEventKind.PACKAGE_ACCEPTED: PackageAccepted,
    PackageEventKind.PACKAGE_REJECTED: PackageRejected,
    PackageEventKind.PACKAGE_CANCELLED: PackageCancelled,
    PackageEventKind.PACKAGE_CANCEL_REJECTED: PackageCancelRejected,
    PackageEventKind.PACKAGE_FILL: PackageFill,
    PackageEventKind.PACKAGE_UNFILLED: PackageUnfilled,
    PackageEventKind.AUCTION_PRICE: AuctionPriceSet,
    PackageEventKind.AUCTION_RESULT: AuctionCleared,
}
EVENT_KIND_OF: dict[type, int] = {cls: kind for kind, cls in EVENT_CLASSES.items()}


def _column(cls: type, field: str) -> str:
    return getattr(cls, "COLUMNS", {}).get(field, field)


def events_from_records(records: np.ndarray) -> list[Event]:
    """Event records to structs, the core's and the call auction's; each field from its column. O(events)."""
    out = []
    for row in records.tolist():
        rec = dict(zip(EVENT_DTYPE.names, row, strict=True))
        cls = EVENT_CLASSES[rec["kind"]]
        out.append(cls(**{f: rec[_column(cls, f)] for f in cls.__struct_fields__}))
    return out


def events_to_records(events: list[Event]) -> np.ndarray:
    """Structs to event records; columns a struct does not have are zero."""
    out = np.zeros(len(events), dtype=EVENT_DTYPE)
    for i, ev in enumerate(events):
        out[i]["kind"] = EVENT_KIND_OF[type(ev)]
        for f in ev.__struct_fields__:
            out[i][_column(type(ev), f)] = getattr(ev, f)
    return out
