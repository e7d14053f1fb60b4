"""The order-entry wire protocol: every message between a client and the gateway.

This module is the single definition of the protocol. Messages are msgspec
Structs, tagged by their class name in the field ``type``, encoded with
msgpack (clients use DEALER, the gateway ROUTER). A ZeroMQ frame holds one
message (a msgpack map) or several in order (a msgpack array of maps): the
gateway sends each session what one pass of its loop produced as one frame,
and clients may batch their messages the same way. ``LogonAccepted``,
``LogonRejected``, ``ProtocolError`` and ``LogonRequired`` always travel alone. ``cx schema`` exports the
JSON Schema of both directions to
``gateway/schema/order_entry.json`` for clients in other languages; a test
keeps the committed file equal to this module.

Conventions (after Nasdaq OUCH / SoupBinTCP and FIX):
* prices are integer ticks ($0.001 each by default), quantities integer GPUs,
  times integer nanoseconds since the Unix epoch, UTC;
* enumerations are the integers of ``engine.codes`` (Side, TimeInForce, ...);
* instruments are named by symbol, ``H100.US-EAST.FIRM.2026-12-01T14``;
* the firm is never a field a client fills in: it is the firm whose CURVE key
  authenticated the connection (in the plain-text mode allowed on loopback
  only, it is the ``firm`` of the Logon);
* every message from the gateway that belongs to a session's conversation
  carries ``seq``, numbered 1, 2, 3, ... per session; ``Heartbeat`` and
  ``ProtocolError`` are not sequenced. A client that logs on again with
  ``next_seq = k`` first receives again every message from ``seq`` k on.

Packages (the call auction, docs/auction.md): ``NewPackage`` is a package bid
(``side`` BUY: an exclusive group of all-or-none alternatives, each a list of
legs with a limit in ticks for the whole alternative) or a package offer
(``side`` SELL: exactly one alternative, its limit the minimum total);
``NewBlockPackage`` is the same in block terms (a bid: block requests expanded
by the gateway into one alternative per feasible start hour; an offer: one
block of consecutive hours). Packages are answered with ``PackageAccepted`` /
``PackageRejected``, execute only in an auction (``PackageExecuted`` per leg)
or are reported ``PackageNotFilled`` by each auction that leaves them live.
Their ids (``package_id``) are numbered apart from order ids.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from engine.codes import (
    AuctionReject,
    CancelReason,
    Liquidity,
    OrderType,
    Outcome,
    RejectReason,
    SelfTradePrevention,
    Side,
    TimeInForce,
    schema_enum_names,
)

MAX_FRAME_BYTES = 64 * 1024  # a larger frame is refused unread
# every integer a client sends fits the engine's int64 records; anything else is refused when decoded
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
MAX_QUOTE_ENTRIES = 512
MAX_PACKAGE_LEGS = 8192  # legs over all alternatives of one package (after a block's expansion)


class _Message(msgspec.Struct, frozen=True, tag=True, tag_field="type", forbid_unknown_fields=True, omit_defaults=True):
    """Base of every message: tagged with the class name in ``type``."""


# ------------------------------------------------------ client -> gateway


class Logon(_Message):
    session: str  # the client's name for this session; a firm may run several
    next_seq: Int64 = 1  # first gateway seq this client has not yet received
    heartbeat_ms: Int64 = 1000  # the client sends something at least this often
    cancel_on_disconnect: bool = True
    firm: str = ""  # plain-text mode only; with CURVE the key names the firm


class Logout(_Message):
    pass


class Heartbeat(_Message):
    pass


class NewOrder(_Message):
    client_order_id: Int64  # unique per firm for the trading day
    symbol: str
    side: Side
    qty: Int64
    price: Int64 = 0  # ignored for MARKET
    ord_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    expire_ts: Int64 = 0  # GTD only


class Cancel(_Message):
    order_id: Int64


class Modify(_Message):
    order_id: Int64
    price: Int64
    qty: Int64  # the new open quantity


class MassCancel(_Message):
    symbol: str = ""  # "": every instrument


class QuoteEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbol: str
    bid_price: Int64
    bid_qty: Int64  # 0: no bid
    ask_price: Int64
    ask_qty: Int64  # 0: no ask


class MassQuote(_Message):
    quote_id: Int64
    entries: list[QuoteEntry]


class PackageLeg(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    symbol: str
    qty: Int64  # GPUs during that delivery hour


class PackageAlternative(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    legs: list[PackageLeg]
    limit: Int64  # ticks for the whole alternative: bid, the most paid; offer, the least received


class NewPackage(_Message):
    client_order_id: Int64  # unique per firm among its packages
    side: Side  # BUY: a package bid; SELL: a package offer (exactly one alternative)
    alternatives: list[PackageAlternative]  # a bid's exclusive group: at most one is accepted, in full
    tif: TimeInForce = TimeInForce.GTC  # GTC or GTD
    expire_ts: Int64 = 0  # GTD only


class BlockRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``gpus`` GPUs of one product for ``hours`` uninterrupted hours starting within the window."""

    accelerator: str
    region: str
    gpus: Int64
    hours: Int64
    window_start: Int64  # ns: earliest start of the first hour
    window_end: Int64  # ns: the last hour ends at or before this
    max_price: Int64  # ticks per GPU-hour
    service_class: str = "FIRM"


class BlockOffer(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``gpus`` GPUs of one product for ``hours`` consecutive hours from ``start``, all or none."""

    accelerator: str
    region: str
    gpus: Int64
    hours: Int64
    start: Int64  # ns: start of the first hour
    min_price: Int64  # ticks per GPU-hour
    service_class: str = "FIRM"


class NewBlockPackage(_Message):
    """A package in block terms: a bid (``bid``: one exclusive group of every start hour of every request)
    or an offer (``offer``), exactly one of the two."""

    client_order_id: Int64
    bid: list[BlockRequest] = []
    offer: BlockOffer | None = None
    tif: TimeInForce = TimeInForce.GTC
    expire_ts: Int64 = 0


class CancelPackage(_Message):
    package_id: Int64


ClientMessage = (
    Logon | Logout | Heartbeat | NewOrder | Cancel | Modify | MassCancel | MassQuote | NewPackage | NewBlockPackage
    | CancelPackage
)


# ------------------------------------------------------ gateway -> client


class LogonAccepted(_Message):
    session: str
    firm: str
    next_seq: int  # seq of the next message the gateway will send on this session
    heartbeat_ms: int  # the gateway sends a Heartbeat at least this often


class LogonRejected(_Message):
    text: str


class Accepted(_Message):
    seq: int
    ts: int
    client_order_id: int
    order_id: int
    symbol: str
    side: Side
    price: int  # the limit; for a market order the protection limit
    qty: int


class Rejected(_Message):
    seq: int
    ts: int
    client_order_id: int  # for a quote entry: the quote_id
    symbol: str
    reason: RejectReason
    text: str


class Executed(_Message):
    seq: int
    ts: int
    order_id: int
    client_order_id: int
    symbol: str
    side: Side
    trade_id: int
    price: int  # the resting order's price
    qty: int  # this fill
    leaves: int  # still open after this fill
    cum: int  # filled over the order's life
    liquidity: Liquidity


class Cancelled(_Message):
    seq: int
    ts: int
    order_id: int
    client_order_id: int
    symbol: str
    side: Side
    qty: int  # the quantity that was open and is now cancelled
    reason: CancelReason


class Replaced(_Message):
    seq: int
    ts: int
    order_id: int
    client_order_id: int
    symbol: str
    price: int
    leaves: int


class CancelRejected(_Message):
    seq: int
    ts: int
    order_id: int
    reason: RejectReason
    text: str


class SystemEvent(_Message):
    seq: int
    ts: int
    code: str  # LOGOUT, DISCONNECT (heartbeat timeout), SUSPENDED, RELEASED (kill switch)
    text: str


class PackageAccepted(_Message):
    seq: int
    ts: int
    client_order_id: int
    package_id: int
    side: Side
    alternatives: int
    legs: int  # over all alternatives


class PackageRejected(_Message):
    seq: int
    ts: int
    client_order_id: int
    side: Side
    reason: AuctionReject  # NONE when the gateway refused it for a reason of its own (gateway_reason)
    text: str
    # the gateway's own refusals: THROTTLED, FIRM_MAX_ORDER_SIZE, FIRM_SUSPENDED; INVALID_FIELD: no auction here
    gateway_reason: RejectReason = RejectReason.NONE


class PackageExecuted(_Message):
    """One leg of a package accepted by an auction; the package's legs come together, ``last`` on the last."""

    seq: int
    ts: int
    package_id: int
    client_order_id: int
    side: Side
    symbol: str
    price: int  # the instrument's clearing price
    qty: int
    amount: int  # qty x price, ticks
    auction: int  # the auction number
    alternative: int  # the accepted alternative (0-based, in the order sent)
    last: bool


class PackageCancelled(_Message):
    seq: int
    ts: int
    package_id: int
    client_order_id: int
    side: Side
    reason: CancelReason  # USER, EXPIRED, DISCONNECT, ADMIN


class PackageCancelRejected(_Message):
    seq: int
    ts: int
    package_id: int
    reason: RejectReason  # UNKNOWN_ORDER, NOT_YOUR_ORDER, INVALID_FIELD
    text: str


class PackageNotFilled(_Message):
    """An auction left the package live: why, and its best alternative at the clearing prices."""

    seq: int
    ts: int
    package_id: int
    client_order_id: int
    side: Side
    auction: int
    reason: Outcome  # LIMIT_BELOW_PRICE, AT_PRICE, PARADOXICALLY_REJECTED, NO_SUPPLY, NO_DEMAND
    alternative: int  # its best alternative at the prices
    limit: int  # that alternative's limit (offer: minimum total), ticks
    price: int  # that alternative's cost at the clearing prices, ticks


class ProtocolError(_Message):
    text: str  # what was wrong with the frame; the frame had no other effect
    message_type: str = ""  # the ``type`` of the message it refers to, when the frame shows one ("" if not)
    client_order_id: Int64 | None = None  # that message's client order id, when it has a readable one


class LogonRequired(_Message):
    """The answer to any message but ``Logon`` on a connection the gateway has no session for, e.g. after the venue
    restarted while ZeroMQ reconnected the client's socket by itself: log on again (with ``next_seq``); the
    message had no effect. Unsequenced, alone in its frame, one per frame received."""

    text: str
    message_type: str = ""  # the ``type`` of the message it answers
    client_order_id: Int64 | None = None  # that message's client order id, if it has one


ServerMessage = (
    LogonAccepted | LogonRejected | Accepted | Rejected | Executed | Cancelled | Replaced | CancelRejected
    | PackageAccepted | PackageRejected | PackageExecuted | PackageCancelled | PackageCancelRejected | PackageNotFilled
    | SystemEvent | Heartbeat | ProtocolError | LogonRequired
)

client_encoder = msgspec.msgpack.Encoder()
client_decoder = msgspec.msgpack.Decoder(ClientMessage)
server_decoder = msgspec.msgpack.Decoder(ServerMessage)
client_frame_decoder = msgspec.msgpack.Decoder(ClientMessage | list[ClientMessage])
server_frame_decoder = msgspec.msgpack.Decoder(ServerMessage | list[ServerMessage])


def decode_server_frame(frame) -> list:
    """The gateway messages in one frame, in order. Raises msgspec.DecodeError / ValidationError."""
    out = server_frame_decoder.decode(frame)
    return out if isinstance(out, list) else [out]


def decode_client_frame(frame) -> list:
    """The client messages in one frame, in order. Raises msgspec.DecodeError / ValidationError."""
    out = client_frame_decoder.decode(frame)
    return out if isinstance(out, list) else [out]


class _Peek(msgspec.Struct):
    """The two fields a ``ProtocolError`` names, read from a message that did not decode (others skipped)."""

    type: str = ""
    client_order_id: Int64 | None = None


_peek = msgspec.msgpack.Decoder(_Peek).decode
_peek_array = msgspec.msgpack.Decoder(list[msgspec.Raw]).decode
_UNREADABLE = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


def what_it_was(frame) -> tuple[str, int | None]:
    """(``type``, ``client_order_id``) of the first message of a frame that did not decode, as far as the frame
    shows them (``""`` / None where it does not): what a ``ProtocolError`` names. Typed decoding only (nothing
    of the rest is built, so hostile nesting costs no recursion); O(frame)."""
    try:
        first = _peek(frame)
    except _UNREADABLE:
        try:
            array = _peek_array(frame)
            first = _peek(array[0]) if array else None
        except _UNREADABLE:
            return "", None
    return ("", None) if first is None else (first.type[:64], first.client_order_id)


def join_encoded(payloads: list[bytes]) -> bytes:
    """One frame from already msgpack-encoded messages: the message itself, or an array of them. O(bytes)."""
    n = len(payloads)
    if n == 1:
        return payloads[0]
    head = bytes([0x90 | n]) if n < 16 else (b"\xdc" + n.to_bytes(2, "big") if n < 65536
                                             else b"\xdd" + n.to_bytes(4, "big"))
    return head + b"".join(payloads)


def json_schema() -> dict:
    """The JSON Schema of both directions (what ``cx schema`` writes)."""
    (client, server), components = msgspec.json.schema_components([ClientMessage, ServerMessage])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "compute-exchange order entry",
        "description": "msgpack over ZeroMQ (client DEALER, gateway ROUTER). A frame holds one message (a map "
                       "tagged by 'type') or a msgpack array of such maps, in order, in both directions: the gateway "
                       "sends arrays (e.g. Accepted then Executed, or a resend). Integers are int64; ts, session and "
                       "client order ids made by cx can exceed 2^53. See README 'Order entry'.",
        "client_to_gateway": client,
        "gateway_to_client": server,
        "$defs": schema_enum_names(components),
    }
