"""The market-data wire protocol: every message the feeds send, and the snapshot request.

This module is the single definition of the market-data interface. Messages are
msgspec Structs tagged by class name in ``type`` and encoded with msgpack.

Transport:
* incremental feed: a ZeroMQ PUB socket; each ZeroMQ message is two frames,
  the topic (the instrument's symbol, or ``AUCTION_SYMBOL``, UTF-8) then a
  msgpack array of up to ``MAX_FRAME_MESSAGES`` messages of that instrument
  (or of the auction channel), in seq order (the publisher packs what one
  batch of engine events produced). Subscribers filter with ZeroMQ prefix
  subscriptions on the symbol: ``b""`` everything, ``b"H100.US-EAST."`` one
  product and region, a whole symbol one instrument, ``b"AUCTION"`` the
  auction results. A frame is delivered or lost whole;
* snapshot service: a ROUTER; the client (a DEALER: the reply is several
  ZeroMQ messages, which a REQ socket cannot receive, so REQ gets nothing)
  sends one ``SnapshotRequest`` as a single frame (a DEALER may pipeline
  several); the reply is one or more frames, each a msgpack array of snapshot
  messages, the last holding ``SnapshotEnd`` with the request's
  ``request_id``. ``symbols`` are exact symbols (feed subscriptions are
  prefixes; a snapshot request is not): an unlisted one is named in
  ``SnapshotEnd.unknown``. A request that cannot be read is answered with one
  frame holding ``SnapshotRejected`` alone.

Messages: L1 ``TopOfBook``; L2 ``LevelUpdate``; L3 ``OrderAdded``,
``OrderExecuted``, ``OrderReduced``, ``OrderDeleted``, ``OrderReplaced``;
``Trade``; ``InstrumentStatus``; ``AuctionPrice``; ``Heartbeat``. Every one
goes to every subscriber of its instrument; one that wants only some kinds
filters them after decoding.

The call auction (docs/auction.md): each run publishes, in event order, the
``OrderExecuted`` (and ``LevelUpdate``, ``TopOfBook``) of every resting order
it filled (no ``Trade``: the auction's volume is in ``AuctionPrice``), one
``AuctionPrice`` per instrument on the instrument's topic, then one
``AuctionResult`` on the reserved topic ``AUCTION_SYMBOL`` ("AUCTION", no
instrument's symbol starts with it), a channel sequenced like an instrument
(its own ``seq``, heartbeats, a ``SnapshotAuction`` in snapshots). An
indicative run (during collection, nothing filled) publishes the same two
kinds with ``indicative`` 1. The packages, their fills and outcomes are
private: never on the feed. Within one batch the frames of the instruments
precede the AUCTION frame, so a subscriber to everything has an auction's
prices when its result arrives.

Sequencing (after CME MDP 3.0): every message but the snapshot's end carries
the instrument ``symbol``, the publisher ``session``, ``seq`` (per instrument,
1, 2, 3, ... over all the instrument's messages), ``event_seq`` (the engine
event it derives from) and ``ts`` (the engine's time of that event, ns UTC).
``Heartbeat`` is not sequenced: its ``seq`` is the instrument's last published
seq, so a subscriber that lost the tail of a burst still notices. Snapshot
messages carry the seq the snapshot reflects: the client drops incremental
messages with ``seq <= snapshot seq`` and applies the rest. A snapshot
carries each instrument's last final and last indicative ``AuctionPrice``
and, when asked for every instrument or for ``AUCTION_SYMBOL``, the last
``AuctionResult`` of each kind, so a late joiner knows the last auction.

Sessions (publisher restarts): seqs are only comparable within one
``session``, the id a publisher stamps on everything it sends, by default its
start time in ns UTC, so a restarted publisher has a larger one. A new
publisher on the same endpoints may continue the old seqs (``cx serve`` after a
journal recovery replays every event, so the books and seqs come back equal)
or start over from 1 (a venue restarted without its journal: other books,
seqs below the subscribers'), which seqs alone cannot tell from duplicates.
Hence, for a subscriber: a message, heartbeat or snapshot of a newer session
invalidates every book of the old one: resync all from a snapshot of the new
session (only snapshot messages and buffered messages of that session count);
anything of an older session is a stale leftover: ignore it. ``SnapshotEnd``
names the session that answered. ZeroMQ reconnects the subscriber's sockets
to the new publisher by itself; the first heartbeat round (about a second)
reveals the restart even on a quiet market.

L3 is anonymous (order id, side, price, quantity, never the firm). Replaying
it from a snapshot (or from seq 1) rebuilds every queue in priority order:
* ``OrderAdded``: the order rests at the tail of its level;
* ``OrderExecuted``: a resting order traded ``qty`` as maker; ``leaves`` stay
  (0: it left the book);
* ``OrderReduced``: in-place reduction, queue position kept;
* ``OrderDeleted``: a resting order cancelled (user, STP, expiry, mass,
  disconnect, admin), it leaves the book;
* ``OrderReplaced``: the order left its queue (price change or quantity
  increase: it lost priority) and re-enters like an incoming order at
  ``price`` with ``qty`` open; it may trade (as taker, which L3 does not show)
  and, if any of it rests, an ``OrderAdded`` with the same ``order_id`` follows.

``json_schema()`` describes the feed frame, the snapshot reply frame and the
request for clients in other languages; the committed copy is
``feeds/schema/market_data.json`` (``write_schema()``), kept equal to this
module by a test.

Prices are integer ticks, quantities integer GPUs, enumerations the integers
of ``engine.codes`` (Side; ``status`` fields hold ``engine.codes.InstrumentStatus`` values, plain
integers here whose schema description names them, as the message ``InstrumentStatus`` has that name;
``AuctionResult.status`` holds ``engine.codes.AuctionStatus``). Every field of a feed message but
``symbol`` is an integer (flags are 0 / 1), which the compiled encoder relies on. Encoding is
O(message size).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import msgspec

from engine.codes import AuctionStatus, InstrumentStatus, Side, describe, schema_enum_names

InstrumentStatusCode = Annotated[int, msgspec.Meta(description=f"InstrumentStatus: {describe(InstrumentStatus)}")]
AuctionStatusCode = Annotated[int, msgspec.Meta(description=f"AuctionStatus: {describe(AuctionStatus)}")]


class _Message(msgspec.Struct, frozen=True, tag=True, tag_field="type", forbid_unknown_fields=True):
    """Base of every message: a msgpack map, tagged with the class name in ``type``."""


class _Sequenced(_Message, frozen=True):
    symbol: str
    session: int  # the publisher's session: its start time, ns UTC; a larger one is a newer publisher
    seq: int  # per instrument, over all its channels
    event_seq: int  # the engine event this message derives from
    ts: int  # engine time of that event, ns UTC


# ----------------------------------------------------------------- L1, L2


class TopOfBook(_Sequenced, frozen=True):
    """L1: the best level of each side after a change of either (price 0, qty 0, count 0: side empty)."""

    bid_price: int
    bid_qty: int
    bid_count: int
    ask_price: int
    ask_qty: int
    ask_count: int


class LevelUpdate(_Sequenced, frozen=True):
    """L2: the new aggregate of one price level (qty 0, count 0: the level is gone)."""

    side: Side
    price: int
    qty: int
    count: int


# --------------------------------------------------------------------- L3


class OrderAdded(_Sequenced, frozen=True):
    order_id: int
    side: Side
    price: int
    qty: int


class OrderExecuted(_Sequenced, frozen=True):
    order_id: int
    side: Side
    price: int
    qty: int  # traded now
    leaves: int  # still resting (0: gone)
    trade_id: int


class OrderReduced(_Sequenced, frozen=True):
    order_id: int
    side: Side
    price: int
    qty: int  # removed now
    leaves: int  # still resting, queue position kept


class OrderDeleted(_Sequenced, frozen=True):
    order_id: int
    side: Side
    price: int
    qty: int  # the open quantity removed
    reason: int  # engine.codes.CancelReason


class OrderReplaced(_Sequenced, frozen=True):
    order_id: int
    side: Side
    price: int  # the new price
    qty: int  # the new open quantity; the order is out of the book until an OrderAdded


# ------------------------------------------------------- trades and status


class Trade(_Sequenced, frozen=True):
    trade_id: int
    side: Side  # the aggressor's side
    price: int
    qty: int


class InstrumentStatus(_Sequenced, frozen=True):
    status: InstrumentStatusCode


# --------------------------------------------------------------- the auction


class AuctionPrice(_Sequenced, frozen=True):
    """The call auction's uniform price of this instrument, and the GPUs it traded there."""

    auction: int  # the auction number
    indicative: int  # 0: final (the fills happened); 1: indicative (during collection, nothing filled)
    price: int
    qty: int  # volume: GPUs bought = GPUs sold at this price (0: nothing traded here)


class AuctionResult(_Sequenced, frozen=True):
    """One auction's outcome; ``symbol`` is ``AUCTION_SYMBOL``, ``seq`` that channel's."""

    auction: int
    indicative: int  # 0 final, 1 indicative
    status: AuctionStatusCode
    surplus: int  # total surplus, ticks x GPU-hours
    accepted: int  # packages accepted
    not_accepted: int  # live packages not accepted (they stay for the next auction)
    paradoxically_rejected: int  # packages rejected although their limit beats the prices
    ir_cost: int  # surplus lost to individual rationality (ticks x GPU-hours)
    gap_ppm: int  # the MIP relative gap asked for, parts per million
    solve_us: int  # the venue's wall time for the clearing, microseconds (0: not known, e.g. a replay)


class Heartbeat(_Sequenced, frozen=True):
    """Unsequenced: ``seq`` is the instrument's last published seq; sent about once per second."""


# ----------------------------------------------------------------- snapshot


class SnapshotRequest(_Message, frozen=True):
    request_id: int
    symbols: list[str] = []  # []: every instrument and the AUCTION channel; AUCTION_SYMBOL may be named


class SnapshotInstrument(_Sequenced, frozen=True):
    """Opens one instrument's snapshot: its levels and orders follow; ``seq`` is what it reflects."""

    status: InstrumentStatusCode
    bid_levels: int
    ask_levels: int
    orders: int
    auction: AuctionPrice | None = None  # the last final auction price (None: no auction yet)
    indicative: AuctionPrice | None = None  # the last indicative price


class SnapshotAuction(_Sequenced, frozen=True):
    """The ``AUCTION_SYMBOL`` channel at ``seq``: its last results (None: none yet)."""

    result: AuctionResult | None = None  # the last final auction
    indicative: AuctionResult | None = None  # the last indicative run


class SnapshotLevel(_Sequenced, frozen=True):
    side: Side
    price: int
    qty: int
    count: int


class SnapshotOrder(_Sequenced, frozen=True):
    """One resting order; per side, the orders come best level first, queue order within."""

    order_id: int
    side: Side
    price: int
    qty: int


class SnapshotEnd(_Message, frozen=True):
    request_id: int
    session: int  # the session of the publisher that answered
    event_seq: int  # the last engine event the snapshot reflects
    ts: int
    instruments: int
    unknown: list[str] = []  # requested symbols that are not listed


FeedMessage = (
    TopOfBook | LevelUpdate | OrderAdded | OrderExecuted | OrderReduced | OrderDeleted | OrderReplaced | Trade
    | InstrumentStatus | Heartbeat | AuctionPrice | AuctionResult
)
class SnapshotRejected(_Message, frozen=True):
    """The whole reply to a request the service could not read (not msgpack, not a ``SnapshotRequest``, a field
    of the wrong type): nothing else is sent for it. ``request_id`` is the request's if it could be read, else -1."""

    request_id: int
    session: int
    text: str  # what was wrong, e.g. "Expected `int`, got `str` - at `$.request_id`"


SnapshotMessage = SnapshotInstrument | SnapshotLevel | SnapshotOrder | SnapshotAuction | SnapshotEnd | SnapshotRejected

FEED_CLASSES = (TopOfBook, LevelUpdate, OrderAdded, OrderExecuted, OrderReduced, OrderDeleted, OrderReplaced, Trade,
                InstrumentStatus, Heartbeat, AuctionPrice, AuctionResult)  # position = the message code (feeds.fold)
AUCTION_SYMBOL = "AUCTION"  # topic and symbol of AuctionResult (and of its heartbeats and SnapshotAuction)
MAX_FRAME_MESSAGES = 128  # feed messages per PUB frame at most

encoder = msgspec.msgpack.Encoder()
feed_frame_decoder = msgspec.msgpack.Decoder(list[FeedMessage])
snapshot_frame_decoder = msgspec.msgpack.Decoder(list[SnapshotMessage])
request_decoder = msgspec.msgpack.Decoder(SnapshotRequest)


def topic(symbol: str) -> bytes:
    """The first frame of a feed frame: the instrument's symbol (UTF-8)."""
    return symbol.encode()


def json_schema() -> dict:
    """The JSON Schema of the feed frame, the snapshot reply frame and the snapshot request."""
    (feed, snap, req), components = msgspec.json.schema_components(
        [list[FeedMessage], list[SnapshotMessage], SnapshotRequest])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "compute-exchange market data",
        "description": "msgpack; PUB: two frames [b'symbol', array of that instrument's messages in seq order] "
                       "(topic AUCTION: auction results); "
                       "snapshot: ROUTER, request then frames of message arrays ending with SnapshotEnd; a newer "
                       "session (publisher restart) invalidates every book; see feeds/protocol.py",
        "feed": feed,
        "snapshot_reply": snap,
        "snapshot_request": req,
        "$defs": schema_enum_names(components),
    }


SCHEMA_PATH = Path(__file__).parent / "schema" / "market_data.json"


def write_schema(path: Path | str = SCHEMA_PATH) -> Path:
    """Write ``json_schema()`` as indented, key-sorted JSON (as ``cx schema`` does for order entry)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return path
