"""``Market``: the continuous books and the package call auction behind one engine interface.

A ``Market`` wraps a matching engine (``engine.exchange.Exchange`` or the reference) and offers
the same interface (``process_batch`` / ``last_events`` / ``last_command_ends``, the queries,
the one-command calls). Package records (``engine.codes.PackageCommandKind``, layout in
docs/auction.md) are taken out of each batch and handled here; every other record goes to the
matching engine in contiguous runs. Events come back as one ``EVENT_DTYPE`` stream in command
order, with one sequence of event numbers (package events reserve theirs from the engine).

Like the engine, a ``Market`` is a pure state machine: commands in, events out, time a field of
the commands. ``RUN_AUCTION`` calls ``engine.auction.clearing.clear`` with the time limit and gap
that the record carries (and the ``clock`` the venue injects, by which the clearing keeps to that
time budget); the result is a function of the state and the record unless the solver reaches that
time limit (then it depends on the machine's speed, and the AUCTION_RESULT event says FEASIBLE).
So every clearing's decision is also an output (``decisions``, the last batch's, keyed by the
event number the auction started at), which the sequencer journals with the batch;
handed back before a replay (``expect_decisions``), a decision replaces the solve and the
auction is reproduced exactly, whatever the machine.

State (besides the engine's): the live packages in ascending package id, the (firm, client order
id) pairs ever used for packages, the next package id, the auction count. ``auction_state`` is
its exact serialisation (empty while nothing auction-related ever happened, so the state hash of
a market without packages is the engine's own); snapshots carry it.

Invariants: a package is live from PACKAGE_ACCEPTED until PACKAGE_FILL (its last leg),
PACKAGE_CANCELLED; an auction fills packages all or none and resting orders through the engine's
``AuctionFill``; per instrument GPUs bought == GPUs sold and every fill pays the instrument's one
clearing price (engine.auction.clearing).

Cost: a batch without package records and with no package due to expire costs one vectorised
check on top of the engine's batch. A package record costs O(its legs) Python. ``RUN_AUCTION``
costs collecting the resting orders of the instruments that live packages name (O(orders)),
the clearing (``clear``: a MILP), and O(fills) to apply the result.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import msgspec
import numpy as np

from engine.auction.clearing import Decision, OrderKind, clear, decision_of, result_of
from engine.auction.orders import (
    Alternative,
    DivisibleBid,
    DivisibleOffer,
    Leg,
    PackageBid,
    PackageOffer,
    validate_package_bid,
    validate_package_offer,
)
from engine.codes import (
    AuctionReject,
    AuctionStatus,
    CancelReason,
    CommandKind,
    InstrumentStatus,
    Outcome,
    PackageCommandKind,
    PackageEventKind,
    RejectReason,
    Side,
    TimeInForce,
)
from engine.records import COMMAND_DTYPE, EVENT_DTYPE, zero_padding

_FIRST_PACKAGE_KIND = min(PackageCommandKind)
_GAP_PPM_CAP = 2**31 - 1  # also stands for an unknown gap (no bound proven)


def _gap_ppm(gap: float) -> int:
    return min(_GAP_PPM_CAP, round(gap * 1e6)) if math.isfinite(gap) else _GAP_PPM_CAP


class LivePackage(msgspec.Struct, frozen=True, array_like=True):
    """A resting package order. Offers have exactly one alternative (its limit = the minimum total)."""

    package_id: int
    firm: int
    client_order_id: int
    side: int  # Side.BUY: a package bid; Side.SELL: a package offer
    tif: int
    expire_ts: int
    alternatives: list[Alternative]

    @property
    def instruments(self) -> set[int]:
        return {leg.instrument for alt in self.alternatives for leg in alt.legs}


class _State(msgspec.Struct, array_like=True):
    packages: list[LivePackage]
    used_ids: list[tuple[int, int]]
    next_package_id: int
    auctions: int


_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(_State)
_decisions_encoder = msgspec.msgpack.Encoder()
_decisions_decoder = msgspec.msgpack.Decoder(list[tuple[int, Decision]])


class Market:
    """The matching engine plus the package auction (see the module docstring)."""

    def __init__(self, exchange, auction_state: bytes = b""):
        self.exchange = exchange
        self.instruments = exchange.instruments
        self.max_firms = exchange.max_firms
        self._inst = {i.instrument_id: i for i in self.instruments}
        st = _state_decoder.decode(auction_state) if auction_state else _State([], [], 1, 0)
        self._packages: dict[int, LivePackage] = {p.package_id: p for p in st.packages}
        self._used: set[tuple[int, int]] = {tuple(x) for x in st.used_ids}
        self._next_id = st.next_package_id
        self._auctions = st.auctions
        self._expiries = [(p.expire_ts, p.package_id) for p in st.packages if p.tif == TimeInForce.GTD]
        heapq.heapify(self._expiries)
        self._events: np.ndarray | None = None  # None: the engine's buffer holds the last batch's events
        self._ends = np.zeros(0, dtype=np.int64)
        self._recorded: dict[int, Decision] = {}  # journaled decisions to replay, by auction key
        self._made: list[tuple[int, Decision]] = []  # the last batch's clearings: (key, decision)
        # The clock a clearing keeps its time budget by (seconds; ``clear``'s ``clock``), injected by
        # the venue; None: only the seconds HiGHS reports count. It decides how long the solver
        # searches, nothing else, and every decision it shaped is journaled (``decisions``).
        self.clock: Callable[[], float] | None = None

    # ------------------------------------------------------------ state

    @property
    def auction_state(self) -> bytes:
        """Exact serialisation of the auction's state; b"" while nothing auction-related happened."""
        if not self._packages and not self._used and self._next_id == 1 and self._auctions == 0:
            return b""
        used = sorted(self._used)
        return _state_encoder.encode(_State(list(self._packages.values()), used, self._next_id, self._auctions))

    @property
    def arena(self) -> np.ndarray:
        return self.exchange.arena

    @property
    def packages(self) -> list[LivePackage]:
        """Live packages in ascending package id."""
        return list(self._packages.values())

    @property
    def auctions(self) -> int:
        """Auctions cleared so far (the last auction's number)."""
        return self._auctions

    # ------------------------------------------------------------ the batch interface

    def process_batch(self, records: np.ndarray) -> int:
        """Process COMMAND_DTYPE records in order; returns the number of events, in ``last_events``."""
        self._made = []
        kinds = records["kind"]
        due = self._expiries and len(records) and int(records["ts"].max()) >= self._expiries[0][0]
        if not due and (len(kinds) == 0 or kinds.max() < _FIRST_PACKAGE_KIND):
            self._events = None
            return self.exchange.process_batch(records)
        return self._process_mixed(records)

    @property
    def last_events(self) -> np.ndarray:
        return self.exchange.last_events if self._events is None else self._events

    # ------------------------------------------------------------ decisions (journaled by the sequencer)

    @property
    def decisions(self) -> bytes:
        """The clearings of the last batch as bytes (b"" if none ran): what the sequencer journals with it."""
        return _decisions_encoder.encode(self._made) if self._made else b""

    def expect_decisions(self, data: bytes | memoryview) -> None:
        """Decisions journaled with a batch (``decisions``), to be used instead of solving when the
        auctions they belong to are replayed. Each is used once."""
        if data:
            self._recorded.update(_decisions_decoder.decode(data))

    @property
    def last_command_ends(self) -> np.ndarray:
        return self.exchange.last_command_ends if self._events is None else self._ends

    def submit_batch(self, records: np.ndarray) -> np.ndarray:
        self.process_batch(records)
        return self.last_events.copy()

    def _process_mixed(self, records: np.ndarray) -> int:
        out = _Out(self.exchange)
        ends = np.zeros(len(records), dtype=np.int64)
        start = 0  # first record of the current run of engine records
        i = 0
        n = len(records)
        while i < n:
            r = records[i]
            kind = int(r["kind"])
            ts = int(r["ts"])
            package = kind >= _FIRST_PACKAGE_KIND
            expiring = bool(self._expiries) and ts >= self._expiries[0][0]
            if not (package or expiring):
                i += 1
                continue
            self._engine_run(out, records, start, i, ends)
            start = i
            if expiring:  # these events count as record i's
                self._expire(out, ts)
            if not package:  # the record itself goes to the engine with the next run
                i += 1
                continue
            if kind == PackageCommandKind.PACKAGE:
                i = self._package(out, records, i)
            else:
                if kind == PackageCommandKind.CANCEL_PACKAGE:
                    self._cancel(out, r)
                elif kind == PackageCommandKind.RUN_AUCTION:
                    self._run_auction(out, r)
                else:  # an ALTERNATIVE or LEG outside a package
                    out.package_event(PackageEventKind.PACKAGE_REJECTED, ts, firm=int(r["firm"]),
                                      reason=AuctionReject.MALFORMED)
                i += 1
            ends[start:i] = out.count
            start = i
        self._engine_run(out, records, start, n, ends)
        self._events = out.events()
        self._ends = ends
        return len(self._events)

    def _engine_run(self, out: _Out, records: np.ndarray, start: int, stop: int, ends: np.ndarray) -> None:
        if stop > start:
            base = out.count
            self.exchange.process_batch(records[start:stop])
            out.take_engine_events()
            ends[start:stop] = base + self.exchange.last_command_ends

    # ------------------------------------------------------------ package commands

    def _package(self, out: _Out, records: np.ndarray, i: int) -> int:
        """PACKAGE at i and its records; returns the index after them."""
        head = records[i]
        ts, firm, coid = int(head["ts"]), int(head["firm"]), int(head["client_order_id"])
        side, tif, expire = int(head["side"]), int(head["tif"]), int(head["expire_ts"])
        count = int(head["qty"])
        body = records[i + 1 : i + 1 + count] if 0 <= count <= len(records) - i - 1 else None
        alternatives = _alternatives(body) if body is not None else None

        def reject(reason: AuctionReject) -> None:
            out.package_event(PackageEventKind.PACKAGE_REJECTED, ts, firm=firm, client_order_id=coid, side=side,
                              reason=reason)

        if alternatives is None:
            reject(AuctionReject.MALFORMED)
            return i + 1 if body is None else i + 1 + count
        reason = self._check_package(ts, firm, coid, side, tif, expire, alternatives)
        if reason:
            reject(reason)
            return i + 1 + count
        pid = self._next_id
        self._next_id += 1
        self._used.add((firm, coid))
        p = LivePackage(pid, firm, coid, side, tif, expire, alternatives)
        self._packages[pid] = p
        if tif == TimeInForce.GTD:
            heapq.heappush(self._expiries, (expire, pid))
        out.package_event(PackageEventKind.PACKAGE_ACCEPTED, ts, firm=firm, client_order_id=coid, order_id=pid,
                          side=side, count=len(alternatives), qty=sum(len(a.legs) for a in alternatives))
        return i + 1 + count

    def _check_package(self, ts, firm, coid, side, tif, expire, alternatives) -> AuctionReject:
        if not 0 <= firm < self.max_firms or coid <= 0 or side not in (Side.BUY, Side.SELL) or tif not in (
                TimeInForce.GTC, TimeInForce.GTD):
            return AuctionReject.INVALID_FIELD
        if side == Side.BUY:
            reason = validate_package_bid(PackageBid(0, firm, alternatives), self._inst)
        elif len(alternatives) != 1:
            reason = AuctionReject.MALFORMED
        else:
            reason = validate_package_offer(PackageOffer(0, firm, alternatives[0].legs, alternatives[0].limit),
                                            self._inst)
        if reason:
            return reason
        if (firm, coid) in self._used:
            return AuctionReject.DUPLICATE_ID
        if tif == TimeInForce.GTD and expire <= ts:
            return AuctionReject.EXPIRE_TIME_IN_PAST
        if any(ts >= self._inst[leg.instrument].close_ns for alt in alternatives for leg in alt.legs):
            return AuctionReject.INSTRUMENT_CLOSED
        return AuctionReject.NONE

    def _cancel(self, out: _Out, r) -> None:
        ts, firm, pid, reason = int(r["ts"]), int(r["firm"]), int(r["order_id"]), int(r["reason"])
        p = self._packages.get(pid)
        refusal = 0
        if reason not in (0, CancelReason.DISCONNECT, CancelReason.ADMIN):
            refusal = RejectReason.INVALID_FIELD
        elif p is None:
            refusal = RejectReason.UNKNOWN_ORDER
        elif p.firm != firm:
            refusal = RejectReason.NOT_YOUR_ORDER
        if refusal:
            out.package_event(PackageEventKind.PACKAGE_CANCEL_REJECTED, ts, firm=firm, order_id=pid, reason=refusal)
            return
        self._remove(out, ts, p, reason or CancelReason.USER)

    def _remove(self, out: _Out, ts: int, p: LivePackage, reason: int) -> None:
        del self._packages[p.package_id]
        out.package_event(PackageEventKind.PACKAGE_CANCELLED, ts, firm=p.firm, client_order_id=p.client_order_id,
                          order_id=p.package_id, side=p.side, reason=reason)

    def _expire(self, out: _Out, ts: int) -> None:
        """Cancel (EXPIRED) the GTD packages whose expire time is <= ts, in (expire, id) order."""
        while self._expiries and self._expiries[0][0] <= ts:
            _, pid = heapq.heappop(self._expiries)
            p = self._packages.get(pid)
            if p is not None:
                self._remove(out, ts, p, CancelReason.EXPIRED)

    # ------------------------------------------------------------ the auction

    def _run_auction(self, out: _Out, r) -> None:
        ts, limit_ms, gap_ppm, mode = int(r["ts"]), int(r["price"]), int(r["qty"]), int(r["ord_type"])
        if limit_ms <= 0 or gap_ppm < 0 or mode not in (0, 1):
            out.package_event(PackageEventKind.PACKAGE_REJECTED, ts, reason=AuctionReject.INVALID_FIELD)
            return
        indicative = mode == 1
        # the clock first: expiries and gate closures of the books happen before the cut-off
        self._engine_run(out, _advance_to(ts), 0, 1, np.zeros(1, dtype=np.int64))
        for p in [p for p in self._packages.values() if any(
                self.exchange.status(i) == InstrumentStatus.CLOSED for i in p.instruments)]:
            if not indicative:
                self._remove(out, ts, p, CancelReason.EXPIRED)
        taking_part = [p for p in self._packages.values()
                       if all(self.exchange.status(i) == InstrumentStatus.OPEN for i in p.instruments)]
        auctioned = sorted({i for p in taking_part for i in p.instruments})
        bids = [PackageBid(p.package_id, p.firm, p.alternatives) for p in taking_part if p.side == Side.BUY]
        offers = [PackageOffer(p.package_id, p.firm, p.alternatives[0].legs, p.alternatives[0].limit)
                  for p in taking_part if p.side == Side.SELL]
        divisibles: list[DivisibleBid | DivisibleOffer] = []
        for i in auctioned:
            for o in self.exchange.book_orders(i, Side.BUY):
                divisibles.append(DivisibleBid(o.order_id, o.firm, i, o.leaves, o.price))
            for o in self.exchange.book_orders(i, Side.SELL):
                divisibles.append(DivisibleOffer(o.order_id, o.firm, i, o.leaves, o.price))
        key = self.exchange.take_event_seqs(0)  # the next event number: the same in every replay
        recorded = self._recorded.pop(key, None)
        if recorded is not None:
            result = result_of(self.instruments, bids, offers, divisibles, recorded)
        else:
            result = clear(self.instruments, bids, offers, divisibles, time_limit_s=limit_ms / 1000.0,
                           mip_gap=gap_ppm / 1e6, clock=self.clock)
        self._made.append((key, decision_of(result)))
        number = self._auctions + 1
        side = 1 if indicative else 0
        if not indicative:
            self._auctions = number
            self._apply(out, ts, number, result)
        for c in result.prices:
            out.package_event(PackageEventKind.AUCTION_PRICE, ts, instrument=c.instrument, order_id=number,
                              price=c.price, qty=c.volume, side=side)
        out.package_event(
            PackageEventKind.AUCTION_RESULT, ts, order_id=number, side=side, status=int(result.status),
            price=result.total_surplus, qty=result.accepted_bids + result.accepted_offers,
            leaves=len(bids) + len(offers) - result.accepted_bids - result.accepted_offers,
            cum=result.paradoxically_rejected, trade_id=result.ir_cost,
            count=_gap_ppm(result.mip_gap) if result.status == AuctionStatus.FEASIBLE else 0)

    def _apply(self, out: _Out, ts: int, number: int, result) -> None:
        """Book fills through the engine, then package fills and outcomes (docs/auction.md order)."""
        book = sorted((f.order_id, f.price, f.qty) for f in result.fills
                      if f.kind in (OrderKind.DIVISIBLE_BID, OrderKind.DIVISIBLE_OFFER))
        if book:
            C = np.zeros(len(book), dtype=COMMAND_DTYPE)
            C["kind"] = CommandKind.AUCTION_FILL
            C["ts"] = ts
            C["instrument"] = -1
            C["firm"] = -1
            C["order_id"], C["price"], C["qty"] = (np.array(col, dtype=np.int64) for col in zip(*book, strict=True))
            self._engine_run(out, C, 0, len(C), np.zeros(len(C), dtype=np.int64))
        legs_by_package: dict[int, list] = {}
        for f in result.fills:
            if f.kind in (OrderKind.PACKAGE_BID, OrderKind.PACKAGE_OFFER):
                legs_by_package.setdefault(f.order_id, []).append(f)
        accepted = {o.order_id: o.alternative for o in result.outcomes
                    if o.kind in (OrderKind.PACKAGE_BID, OrderKind.PACKAGE_OFFER) and o.outcome == Outcome.ACCEPTED}
        for kind in (OrderKind.PACKAGE_BID, OrderKind.PACKAGE_OFFER):
            for o in result.outcomes:
                if o.kind != kind or o.order_id not in accepted:
                    continue
                p = self._packages.pop(o.order_id)
                fills = legs_by_package.get(o.order_id, [])
                for k, f in enumerate(fills):
                    out.package_event(PackageEventKind.PACKAGE_FILL, ts, firm=p.firm,
                                      client_order_id=p.client_order_id, order_id=p.package_id, side=p.side,
                                      instrument=f.instrument, price=f.price, qty=f.qty, cum=f.amount,
                                      trade_id=number, count=max(0, o.alternative),
                                      status=1 if k == len(fills) - 1 else 0)
        for o in result.outcomes:
            if o.kind in (OrderKind.PACKAGE_BID, OrderKind.PACKAGE_OFFER) and o.order_id not in accepted:
                p = self._packages[o.order_id]
                out.package_event(PackageEventKind.PACKAGE_UNFILLED, ts, firm=p.firm,
                                  client_order_id=p.client_order_id, order_id=p.package_id, side=p.side,
                                  reason=int(o.outcome), count=max(0, o.alternative), qty=o.limit,
                                  price=o.bundle_price, trade_id=number)

    # ------------------------------------------------------------ the engine's other calls

    def __getattr__(self, name: str):
        """Queries and one-command calls (now, status, depth, book_orders, new_order, ...) are the engine's."""
        return getattr(self.exchange, name)


def package_records(ts: int, firm: int, client_order_id: int, side: int, alternatives: list[Alternative],
                    tif: int = TimeInForce.GTC, expire_ts: int = 0) -> np.ndarray:
    """The records of one package order (docs/auction.md): PACKAGE, then per alternative an
    ALTERNATIVE and its LEGs. An offer is one alternative whose limit is its minimum total."""
    n = sum(1 + len(a.legs) for a in alternatives)
    C = np.zeros(1 + n, dtype=COMMAND_DTYPE)
    C["ts"], C["firm"], C["instrument"] = ts, firm, -1
    C[0]["kind"], C[0]["side"], C[0]["tif"] = PackageCommandKind.PACKAGE, side, tif
    C[0]["client_order_id"], C[0]["expire_ts"], C[0]["qty"] = client_order_id, expire_ts, n
    k = 1
    for a in alternatives:
        C[k]["kind"], C[k]["price"] = PackageCommandKind.ALTERNATIVE, a.limit
        k += 1
        for leg in a.legs:
            C[k]["kind"], C[k]["instrument"], C[k]["qty"] = PackageCommandKind.LEG, leg.instrument, leg.qty
            k += 1
    return C


def cancel_package_record(ts: int, firm: int, package_id: int, reason: int = 0) -> np.ndarray:
    C = np.zeros(1, dtype=COMMAND_DTYPE)
    C["kind"], C["ts"], C["firm"], C["instrument"] = PackageCommandKind.CANCEL_PACKAGE, ts, firm, -1
    C["order_id"], C["reason"] = package_id, reason
    return C


def run_auction_record(ts: int, time_limit_ms: int, gap_ppm: int, indicative: bool = False) -> np.ndarray:
    C = np.zeros(1, dtype=COMMAND_DTYPE)
    C["kind"], C["ts"], C["firm"], C["instrument"] = PackageCommandKind.RUN_AUCTION, ts, -1, -1
    C["price"], C["qty"], C["ord_type"] = time_limit_ms, gap_ppm, 1 if indicative else 0
    return C


def _alternatives(body: np.ndarray) -> list[Alternative] | None:
    """ALTERNATIVE/LEG records -> alternatives; None if not of that form (a LEG first, another kind)."""
    alts: list[Alternative] = []
    limit = 0
    legs: list[Leg] = []
    for k, r in enumerate(body):
        kind = int(r["kind"])
        if kind == PackageCommandKind.ALTERNATIVE:
            if k:
                alts.append(Alternative(legs, limit))
            limit, legs = int(r["price"]), []
        elif kind == PackageCommandKind.LEG and k:
            legs.append(Leg(int(r["instrument"]), int(r["qty"])))
        else:
            return None
    if len(body):
        alts.append(Alternative(legs, limit))
    return alts


def _advance_to(ts: int) -> np.ndarray:
    C = np.zeros(1, dtype=COMMAND_DTYPE)
    C["kind"], C["ts"], C["instrument"], C["firm"] = CommandKind.ADVANCE_TIME, ts, -1, -1
    return C


class _Out:
    """The events of one mixed batch: engine events copied out of its buffer, package events made here."""

    def __init__(self, exchange):
        self.exchange = exchange
        self.parts: list[np.ndarray] = []
        self.count = 0

    def take_engine_events(self) -> None:
        ev = self.exchange.last_events
        if len(ev):
            self.parts.append(np.array(ev, copy=True))
            self.count += len(ev)

    def package_event(self, kind: int, ts: int, **fields: int) -> None:
        e = np.zeros(1, dtype=EVENT_DTYPE)
        e["seq"] = self.exchange.take_event_seqs(1)
        e["ts"] = max(ts, self.exchange.now)
        e["kind"] = kind
        e["instrument"] = -1
        for name, value in fields.items():
            e[name] = value
        self.parts.append(e)
        self.count += 1

    def events(self) -> np.ndarray:
        return zero_padding(np.concatenate(self.parts)) if self.parts else np.zeros(0, dtype=EVENT_DTYPE)
