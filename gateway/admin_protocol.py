"""The operator interface of the gateway: one request, one reply, on a loopback socket.

Messages are msgspec Structs, msgpack-encoded, one per ZeroMQ frame (the
operator's DEALER or REQ to the gateway's admin ROUTER). The admin endpoint
is accepted on loopback only (see gateway.config).

Actions: ``kill`` FIRM (cancel all its orders with reason ADMIN, refuse its new
orders with FIRM_SUSPENDED), ``release`` FIRM, ``halt`` / ``resume`` SYMBOL,
``status``: a one-line summary in ``text`` and the same facts as a ``VenueStatus``
in ``status`` (added later: a reply without it decodes to ``None``, and an old
client ignores the field, so both directions stay compatible).
"""

from __future__ import annotations

from typing import Literal

import msgspec


class AdminRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    action: Literal["kill", "release", "halt", "resume", "status"]
    firm: str = ""
    symbol: str = ""


class VenueStatus(msgspec.Struct, frozen=True):
    """The venue at one moment, as the gateway sees it (the reply to ``status``)."""

    clock_ns: int  # the gateway's clock when the status was taken
    instruments: dict[str, int]  # engine.codes.InstrumentStatus name -> number of instruments
    halted: list[str]  # the halted symbols
    firms: list[str]  # configured, in firm-id order
    suspended: list[str]  # firms under the kill switch
    sessions: int
    connected: int
    live_orders: int
    stats: dict[str, int]  # the gateway's counters (frames, commands, trades, traded_qty, ...)
    journal_seq: int = -1  # the last journalled command; -1: no journal


class AdminReply(msgspec.Struct, frozen=True):
    ok: bool
    text: str
    status: VenueStatus | None = None  # only in the reply to ``status``


admin_encoder = msgspec.msgpack.Encoder()
request_decoder = msgspec.msgpack.Decoder(AdminRequest)
reply_decoder = msgspec.msgpack.Decoder(AdminReply)
