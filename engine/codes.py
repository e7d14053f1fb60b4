"""Every enumerated code of the matching engine, as small integers.

These values travel inside command and event records (numpy structured arrays)
and inside the numba core, so they are plain ``IntEnum`` members whose integer
values never change once published: clients, journals and the JSON Schema all
depend on them. Adding a member is compatible; renumbering one is not.
"""

from enum import IntEnum


class Side(IntEnum):
    BUY = 0
    SELL = 1


class OrderType(IntEnum):
    LIMIT = 0
    MARKET = 1


class TimeInForce(IntEnum):
    GTC = 0  # good till cancelled (or until the instrument's gate closure)
    GTD = 1  # good till the command time reaches expire_ts
    IOC = 2  # immediate or cancel: fill what crosses now, cancel the rest
    FOK = 3  # fill or kill: fill all now, or reject with no state change


class SelfTradePrevention(IntEnum):
    CANCEL_NEWEST = 0  # cancel the incoming order (default)
    CANCEL_OLDEST = 1  # cancel the resting order of the same firm, keep matching
    CANCEL_BOTH = 2  # cancel both


class CommandKind(IntEnum):
    NEW_ORDER = 1
    CANCEL = 2
    MODIFY = 3
    MASS_CANCEL = 4
    MASS_QUOTE = 5  # one record per quoted instrument; see records.QuoteEntry
    ADVANCE_TIME = 6
    HALT = 7
    RESUME = 8
    AUCTION_FILL = 9  # the call auction's execution of a resting order (from the venue, never a client)


class PackageCommandKind(IntEnum):
    """Command records of the call auction (docs/auction.md); handled by engine.auction.market, never by
    the matching core. A package is one PACKAGE record followed by ``qty`` ALTERNATIVE and LEG records."""

    PACKAGE = 16  # side 0 bid / 1 offer, firm, client_order_id, tif, expire_ts, qty = records that follow
    ALTERNATIVE = 17  # price = limit of the alternative (bid: most it pays; offer: minimum total)
    LEG = 18  # instrument, qty (GPUs in that delivery hour)
    CANCEL_PACKAGE = 19  # firm, order_id = package id, reason (0, DISCONNECT or ADMIN)
    RUN_AUCTION = 20  # clear now; price = time limit ms, qty = MIP gap in ppm; ord_type 1 = indicative only


class PackageEventKind(IntEnum):
    """Event records of the call auction (docs/auction.md), in the same EVENT_DTYPE stream."""

    PACKAGE_ACCEPTED = 16  # order_id = package id, count = alternatives, qty = legs
    PACKAGE_REJECTED = 17  # reason = AuctionReject code
    PACKAGE_CANCELLED = 18  # reason = CancelReason
    PACKAGE_CANCEL_REJECTED = 19  # reason = RejectReason (UNKNOWN_ORDER, NOT_YOUR_ORDER, INVALID_FIELD)
    PACKAGE_FILL = 20  # one per leg of an accepted package: instrument, price, qty, trade_id, count = alternative
    PACKAGE_UNFILLED = 21  # not accepted in this auction (stays live): reason = Outcome, price = bundle price
    AUCTION_PRICE = 22  # per instrument in the auction: price, qty = volume; side 0 final, 1 indicative
    AUCTION_RESULT = 23  # per auction: order_id = auction number, status = AuctionStatus, totals


class EventKind(IntEnum):
    ACCEPTED = 1
    REJECTED = 2  # a NewOrder, a quote entry, a MassCancel, Halt or Resume refused
    FILL = 3  # private: one per order per match
    CANCELLED = 4
    REPLACED = 5
    CANCEL_REJECTED = 6  # a Cancel or Modify refused
    TRADE = 7  # public print, one per match
    BOOK_LEVEL = 8  # public: new aggregate of one price level
    INSTRUMENT_STATUS = 9  # public: OPEN, HALTED or CLOSED


class RejectReason(IntEnum):
    NONE = 0
    UNKNOWN_INSTRUMENT = 1
    INSTRUMENT_CLOSED = 2
    INSTRUMENT_HALTED = 3
    PRICE_OFF_TICK = 4
    PRICE_OUT_OF_BAND = 5
    INVALID_QUANTITY = 6
    QUANTITY_ABOVE_MAXIMUM = 7
    DUPLICATE_CLIENT_ORDER_ID = 8
    UNKNOWN_ORDER = 9
    NOT_YOUR_ORDER = 10
    POST_ONLY_WOULD_TAKE = 11
    FOK_CANNOT_FILL = 12
    INVALID_FIELD = 13
    EXPIRE_TIME_IN_PAST = 14
    NO_LIQUIDITY = 15
    QUOTE_CROSSED = 16
    # refused by the order-entry gateway before the engine saw them
    THROTTLED = 17
    FIRM_MAX_ORDER_SIZE = 18
    FIRM_MAX_OPEN_QUANTITY = 19
    FIRM_SUSPENDED = 20


class CancelReason(IntEnum):
    NONE = 0
    USER = 1
    IOC = 2
    STP = 3
    EXPIRED = 4
    MASS = 5
    MARKET_PROTECTION = 6
    DISCONNECT = 7  # the gateway cancelled a session's orders when it logged out or went silent
    ADMIN = 8  # an operator cancelled them (kill switch)


# the cancel reasons a Cancel or MassCancel command may carry instead of USER / MASS
CANCEL_REASON_OVERRIDES = (CancelReason.DISCONNECT, CancelReason.ADMIN)


class Liquidity(IntEnum):
    NONE = 0
    MAKER = 1
    TAKER = 2
    AUCTION = 3  # filled by the call auction at its clearing price


class InstrumentStatus(IntEnum):
    PRE_OPEN = 0  # listed, trading not yet started (command time < open time)
    OPEN = 1
    HALTED = 2
    CLOSED = 3  # gate closure passed: no orders rest, none are accepted


# the call auction (engine.auction)


class AuctionReject(IntEnum):
    """Why an auction order was refused before clearing. Values never change once published."""

    NONE = 0
    UNKNOWN_INSTRUMENT = 1
    NO_ALTERNATIVES = 2
    EMPTY_ALTERNATIVE = 3
    TOO_MANY_ALTERNATIVES = 4
    TOO_MANY_LEGS = 5
    NON_POSITIVE_QTY = 6
    QTY_ABOVE_MAXIMUM = 7
    DUPLICATE_LEG = 8  # the same instrument twice in one alternative / block
    NON_POSITIVE_LIMIT = 9  # a package bid limit <= 0
    NEGATIVE_MINIMUM = 10  # a package offer minimum < 0
    LIMIT_OFF_TICK = 11  # a price not a multiple of the instrument's price increment
    PRICE_OUT_OF_BAND = 12
    DUPLICATE_ID = 13
    MONEY_OUT_OF_RANGE = 14  # a limit or minimum total above MAX_MONEY, or legs worth more at the band's top
    NO_FEASIBLE_START = 15  # a BlockRequest whose window holds no listed run of hours
    MALFORMED = 16  # package records not in the form PACKAGE, then ALTERNATIVE/LEG records (docs/auction.md)
    INVALID_FIELD = 17  # firm, client order id, side or tif outside its allowed values
    EXPIRE_TIME_IN_PAST = 18  # GTD expire time not after the command time
    INSTRUMENT_CLOSED = 19  # a leg's delivery hour is past its gate closure


class Outcome(IntEnum):
    ACCEPTED = 1  # package accepted in full / divisible filled in full
    PARTIALLY_FILLED = 2  # divisible at the price
    LIMIT_BELOW_PRICE = 3  # out of the money: bid limit < price of every alternative; offer min > revenue
    AT_PRICE = 4  # rejected with zero surplus at the prices (limit == price of its bundle)
    PARADOXICALLY_REJECTED = 5  # in the money at the prices, rejected (packages only)
    INVALID = 6  # refused by validation; see reject_reason
    NO_SUPPLY = 7  # a package bid: every alternative has an hour in which nothing was offered (no order, no offer)
    NO_DEMAND = 8  # a package offer: an hour of its block that nobody bid for


class AuctionStatus(IntEnum):
    OPTIMAL = 1  # every winner-determination solve proven optimal (within mip_gap)
    FEASIBLE = 2  # an admissible result, optimality not proven (time limit or heuristic rounds)


REJECT_TEXT = {
    RejectReason.UNKNOWN_INSTRUMENT: "no such instrument",
    RejectReason.INSTRUMENT_CLOSED: "instrument is not open for trading",
    RejectReason.INSTRUMENT_HALTED: "instrument is halted",
    RejectReason.PRICE_OFF_TICK: "price is not a multiple of the instrument's price increment",
    RejectReason.PRICE_OUT_OF_BAND: "price is outside the instrument's price band",
    RejectReason.INVALID_QUANTITY: "quantity must be positive",
    RejectReason.QUANTITY_ABOVE_MAXIMUM: "quantity is above the instrument's maximum order size",
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: "client order id already used by this firm",
    RejectReason.UNKNOWN_ORDER: "no live order with that id",
    RejectReason.NOT_YOUR_ORDER: "order belongs to another firm",
    RejectReason.POST_ONLY_WOULD_TAKE: "post-only order would take liquidity",
    RejectReason.FOK_CANNOT_FILL: "fill-or-kill order cannot be filled in full",
    RejectReason.INVALID_FIELD: "a field has a value outside its allowed set",
    RejectReason.EXPIRE_TIME_IN_PAST: "GTD expire time is not after the command time",
    RejectReason.NO_LIQUIDITY: "market order with no opposite liquidity",
    RejectReason.QUOTE_CROSSED: "quote bid price is not below its ask price",
    RejectReason.THROTTLED: "session message rate limit exceeded",
    RejectReason.FIRM_MAX_ORDER_SIZE: "quantity is above the firm's maximum order size",
    RejectReason.FIRM_MAX_OPEN_QUANTITY: "order would take the firm's open quantity on the instrument above its limit",
    RejectReason.FIRM_SUSPENDED: "the firm is suspended by the kill switch",
}



def describe(cls: type[IntEnum]) -> str:
    """``'0 = BUY, 1 = SELL'``: the values and names of an enumeration, for docs and schema descriptions."""
    return ", ".join(f"{m.value} = {m.name}" for m in cls)


def schema_enum_names(defs: dict) -> dict:
    """Name the integer codes of a JSON Schema's ``$defs`` (msgspec writes the values only).

    Every definition named like an enumeration of this module gets ``x-enum-varnames`` (the member names in
    the order of its ``enum`` values, as OpenAPI code generators read them) and a description listing
    ``value = NAME``. Returns ``defs``, changed in place. O(members)."""
    for name, entry in defs.items():
        cls = globals().get(name)
        if isinstance(cls, type) and issubclass(cls, IntEnum) and "enum" in entry:
            entry["x-enum-varnames"] = [cls(value).name for value in entry["enum"]]
            entry["description"] = f"{name}: {describe(cls)}"
    return defs
