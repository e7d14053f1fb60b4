"""The operator interface of the gateway: one request, one reply, on a loopback socket.

Messages are msgspec Structs, msgpack-encoded, one per ZeroMQ frame (the
operator's DEALER or REQ to the gateway's admin ROUTER). The admin endpoint
is accepted on loopback only (see gateway.config).

Actions: ``kill`` FIRM (cancel all its orders with reason ADMIN, refuse its new
orders with FIRM_SUSPENDED), ``release`` FIRM, ``halt`` / ``resume`` SYMBOL,
``status`` (a one-line summary).
"""

from __future__ import annotations

from typing import Literal

import msgspec


class AdminRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    action: Literal["kill", "release", "halt", "resume", "status"]
    firm: str = ""
    symbol: str = ""


class AdminReply(msgspec.Struct, frozen=True):
    ok: bool
    text: str


admin_encoder = msgspec.msgpack.Encoder()
request_decoder = msgspec.msgpack.Decoder(AdminRequest)
reply_decoder = msgspec.msgpack.Decoder(AdminReply)
