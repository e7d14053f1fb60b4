"""The order-entry wire protocol: every message between a client and the gateway.

This module is the single definition of the protocol. Messages are msgspec
Structs, tagged by their class name in the field ``type``, encoded with
msgpack (clients use DEALER, the gateway ROUTER). A ZeroMQ frame holds one
message (a msgpack map) or several in order (a msgpack array of maps): the
gateway sends each session what one pass of its loop produced as one frame,
and clients may batch their messages the same way. ``LogonAccepted``,
``LogonRejected`` and ``ProtocolError`` always travel alone. ``cx schema`` exports the JSON Schema of both directions to
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
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from engine.codes import CancelReason, Liquidity, OrderType, RejectReason, SelfTradePrevention, Side, TimeInForce

MAX_FRAME_BYTES = 64 * 1024  # a larger frame is refused unread
# every integer a client sends fits the engine's int64 records; anything else is refused when decoded
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
MAX_QUOTE_ENTRIES = 512


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


ClientMessage = Logon | Logout | Heartbeat | NewOrder | Cancel | Modify | MassCancel | MassQuote


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


class ProtocolError(_Message):
    text: str  # what was wrong with the frame; the frame had no other effect


ServerMessage = (
    LogonAccepted | LogonRejected | Accepted | Rejected | Executed | Cancelled | Replaced | CancelRejected
    | SystemEvent | Heartbeat | ProtocolError
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
        "description": "msgpack-encoded, one message per ZeroMQ frame; see README 'Order entry'",
        "client_to_gateway": client,
        "gateway_to_client": server,
        "$defs": components,
    }
