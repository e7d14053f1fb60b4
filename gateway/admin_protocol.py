"""The operator interface of the gateway: one request, one reply, on a loopback socket.

Messages are msgspec Structs, msgpack-encoded, one per ZeroMQ frame (the
operator's DEALER or REQ to the gateway's admin ROUTER). The admin endpoint
is accepted on loopback only (see gateway.config).

Actions: ``kill`` FIRM (cancel all its orders with reason ADMIN, refuse its new
orders with FIRM_SUSPENDED), ``release`` FIRM, ``halt`` / ``resume`` SYMBOL,
``status``: a one-line summary in ``text`` and the same facts as a ``VenueStatus``
in ``status`` (added later: a reply without it decodes to ``None``, and an old
client ignores the field, so both directions stay compatible); ``auction``: run
one call auction now (``indicative``: prices only, nothing filled), answered
when it has cleared, with its ``AuctionSummary`` in ``auction``.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class AdminRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    action: Literal["kill", "release", "halt", "resume", "status", "auction"]
    firm: str = ""
    symbol: str = ""
    indicative: bool = False  # auction only: publish prices, fill nothing


class AuctionSummary(msgspec.Struct, frozen=True):
    """One call auction as its AUCTION_RESULT and AUCTION_PRICE events tell it (docs/auction.md)."""

    auction: int  # the auction number
    indicative: bool
    status: int  # engine.codes.AuctionStatus: 1 proven optimal within the gap, 2 feasible
    surplus: int  # ticks
    accepted: int  # packages accepted
    not_accepted: int  # packages left live
    paradoxically_rejected: int
    ir_cost: int  # surplus lost to individual rationality, ticks
    gap_ppm: int
    traded: list[tuple[str, int, int]] = []  # (symbol, price in ticks, GPUs) of each instrument with volume
    solve_us: int = 0  # wall time of the engine call that cleared it (journal write included), microseconds


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
    live_packages: int = 0
    next_auction_ns: int = 0  # gateway clock time of the next scheduled auction; 0: none scheduled


class AdminReply(msgspec.Struct, frozen=True):
    ok: bool
    text: str
    status: VenueStatus | None = None  # only in the reply to ``status``
    auction: AuctionSummary | None = None  # only in the reply to ``auction``


admin_encoder = msgspec.msgpack.Encoder()
request_decoder = msgspec.msgpack.Decoder(AdminRequest)
reply_decoder = msgspec.msgpack.Decoder(AdminReply)
