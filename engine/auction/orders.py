"""Orders of the call auction (issue #6): package bids, package offers, divisible orders.

Units (integers only, as everywhere in the engine):

* a **price** is integer ticks per GPU-hour; an instrument is one delivery hour, so a
  leg of ``qty`` GPUs on instrument ``i`` costs ``qty * price[i]`` ticks;
* a package bid's ``Alternative.limit`` is the **most money, in ticks, paid for the
  whole alternative**: the alternative can be accepted only at prices where
  ``sum(leg.qty * price[leg.instrument]) <= limit``;
* a package offer's ``min_total`` is the **least money, in ticks, received for the
  whole block**: accepted only if ``sum(leg.qty * price[leg.instrument]) >= min_total``;
* a divisible order's ``limit`` is a price (ticks per GPU-hour) on the instrument's
  grid and in its band.

Semantics:

* ``PackageBid``: an exclusive group of all-or-none alternatives; at most one
  alternative is accepted, and then every leg in full.
* ``PackageOffer``: one all-or-none block (a provider's capacity over several
  hours); accepted in full or not at all.
* ``DivisibleBid`` / ``DivisibleOffer``: one instrument, any fill in ``[0, qty]``;
  fully filled when its limit is better than the clearing price, not filled when
  worse, any amount when equal (the uniform-price rule). Resting book orders take
  part in the auction as divisible orders.

Convenience forms: ``BlockRequest`` ("``gpus`` of this product for ``hours``
uninterrupted hours somewhere in ``[window_start_ns, window_end_ns)``, at most
``max_price_per_gpu_hour``") expands into one alternative per feasible start hour
(``expand_block_request``); several requests can form one exclusive group
(``package_bid_from_requests``). ``BlockOffer`` expands into a ``PackageOffer``.

Validation (``validate_package_bid`` / ``validate_package_offer`` /
``validate_divisible``) returns an ``AuctionReject`` code, first failing check wins,
``AuctionReject.NONE`` when the order is valid. Cost: O(legs) per order; the
expansions are O(alternatives x hours).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from engine.codes import AuctionReject
from engine.instruments import NS_PER_HOUR, Instrument, ProductKey

MAX_ALTERNATIVES = 256  # per package bid (exclusive group size)
MAX_LEGS = 512  # per alternative or per offer block
MAX_MONEY = 2**62  # bound on any limit / minimum total, ticks



AUCTION_REJECT_TEXT = {
    AuctionReject.UNKNOWN_INSTRUMENT: "no such instrument",
    AuctionReject.NO_ALTERNATIVES: "a package bid needs at least one alternative",
    AuctionReject.EMPTY_ALTERNATIVE: "an alternative or block has no legs",
    AuctionReject.TOO_MANY_ALTERNATIVES: f"more than {MAX_ALTERNATIVES} alternatives",
    AuctionReject.TOO_MANY_LEGS: f"more than {MAX_LEGS} legs in one alternative",
    AuctionReject.NON_POSITIVE_QTY: "leg quantity must be positive",
    AuctionReject.QTY_ABOVE_MAXIMUM: "leg quantity above the instrument's maximum order size",
    AuctionReject.DUPLICATE_LEG: "the same instrument twice in one alternative",
    AuctionReject.NON_POSITIVE_LIMIT: "a bid's limit must be positive",
    AuctionReject.NEGATIVE_MINIMUM: "an offer's minimum total must not be negative",
    AuctionReject.LIMIT_OFF_TICK: "price is not a multiple of the instrument's price increment",
    AuctionReject.PRICE_OUT_OF_BAND: "price is outside the instrument's price band",
    AuctionReject.DUPLICATE_ID: "client order id already used by this firm for a package",
    AuctionReject.MONEY_OUT_OF_RANGE: "limit, minimum total or the legs at the top of their bands too large",
    AuctionReject.NO_FEASIBLE_START: "no listed run of consecutive hours fits the window",
    AuctionReject.MALFORMED: "package records malformed",
    AuctionReject.INVALID_FIELD: "a field has a value outside its allowed set",
    AuctionReject.EXPIRE_TIME_IN_PAST: "GTD expire time is not after the command time",
    AuctionReject.INSTRUMENT_CLOSED: "a leg's delivery hour is past its gate closure",
}


class Leg(msgspec.Struct, frozen=True):
    instrument: int
    qty: int  # GPUs during that delivery hour


class Alternative(msgspec.Struct, frozen=True):
    legs: list[Leg]
    limit: int  # ticks for the whole alternative: sum(qty * price) <= limit


class PackageBid(msgspec.Struct, frozen=True):
    bid_id: int
    firm: int
    alternatives: list[Alternative]  # an exclusive group: at most one is accepted


class PackageOffer(msgspec.Struct, frozen=True):
    offer_id: int
    firm: int
    legs: list[Leg]  # all-or-none block
    min_total: int  # ticks for the whole block: sum(qty * price) >= min_total


class DivisibleBid(msgspec.Struct, frozen=True):
    order_id: int
    firm: int
    instrument: int
    qty: int  # GPUs
    limit: int  # ticks per GPU-hour


class DivisibleOffer(msgspec.Struct, frozen=True):
    order_id: int
    firm: int
    instrument: int
    qty: int
    limit: int


class BlockRequest(msgspec.Struct, frozen=True):
    """``gpus`` GPUs for ``hours`` uninterrupted hours starting in the window, at most the given price."""

    accelerator: str
    region: str
    service_class: str
    gpus: int
    hours: int
    window_start_ns: int  # earliest start of the first hour
    window_end_ns: int  # the last hour must end at or before this
    max_price_per_gpu_hour: int  # ticks


class BlockOffer(msgspec.Struct, frozen=True):
    """A provider's ``gpus`` GPUs for ``hours`` consecutive hours from ``start_ns``, all or none."""

    offer_id: int
    firm: int
    accelerator: str
    region: str
    service_class: str
    gpus: int
    hours: int
    start_ns: int
    min_price_per_gpu_hour: int  # ticks


InstrumentLookup = Mapping[tuple[ProductKey, int], int]  # (product, delivery_start_ns) -> instrument id


def instrument_lookup(instruments: Sequence[Instrument]) -> dict[tuple[ProductKey, int], int]:
    """(product, delivery start ns) -> instrument id. O(len(instruments))."""
    return {(i.product, i.delivery_start_ns): i.instrument_id for i in instruments}


def expand_block_request(request: BlockRequest, lookup: InstrumentLookup) -> list[Alternative]:
    """One alternative per start hour whose whole run of ``hours`` hours is listed, earliest first.

    Each alternative: ``gpus`` GPUs on each of the ``hours`` instruments, limit
    ``max_price_per_gpu_hour * gpus * hours``. Returns [] when no start fits (or when
    gpus/hours are not positive). Cost O(window hours x hours).
    """
    if request.gpus <= 0 or request.hours <= 0:
        return []
    product = ProductKey(request.accelerator, request.region, request.service_class)
    first = -(-request.window_start_ns // NS_PER_HOUR) * NS_PER_HOUR  # first whole hour in the window
    limit = request.max_price_per_gpu_hour * request.gpus * request.hours
    out: list[Alternative] = []
    start = first
    while start + request.hours * NS_PER_HOUR <= request.window_end_ns:
        ids = [lookup.get((product, start + k * NS_PER_HOUR)) for k in range(request.hours)]
        if all(i is not None for i in ids):
            out.append(Alternative([Leg(i, request.gpus) for i in ids], limit))  # type: ignore[arg-type]
        start += NS_PER_HOUR
    return out


def package_bid_from_requests(
    bid_id: int, firm: int, requests: Sequence[BlockRequest], lookup: InstrumentLookup
) -> PackageBid:
    """One exclusive group holding every alternative of every request, in request order."""
    alternatives: list[Alternative] = []
    for r in requests:
        alternatives.extend(expand_block_request(r, lookup))
    return PackageBid(bid_id, firm, alternatives)


def package_offer_from_block(offer: BlockOffer, lookup: InstrumentLookup) -> PackageOffer:
    """The block's legs; an hour that is not listed becomes instrument -1 (rejected as UNKNOWN_INSTRUMENT)."""
    product = ProductKey(offer.accelerator, offer.region, offer.service_class)
    legs = [Leg(lookup.get((product, offer.start_ns + k * NS_PER_HOUR), -1), offer.gpus) for k in range(offer.hours)]
    return PackageOffer(offer.offer_id, offer.firm, legs, offer.min_price_per_gpu_hour * offer.gpus * offer.hours)


def _validate_legs(legs: Sequence[Leg], instruments: Mapping[int, Instrument]) -> AuctionReject:
    if not legs:
        return AuctionReject.EMPTY_ALTERNATIVE
    if len(legs) > MAX_LEGS:
        return AuctionReject.TOO_MANY_LEGS
    seen: set[int] = set()
    worth = 0  # the legs at the top of their price bands: no cost or revenue can be more
    for leg in legs:
        inst = instruments.get(leg.instrument)
        reason = _size_reason(inst, leg.qty)
        if reason:
            return reason
        if leg.instrument in seen:
            return AuctionReject.DUPLICATE_LEG
        seen.add(leg.instrument)
        worth += leg.qty * inst.max_price
    if worth > MAX_MONEY:  # the clearing computes costs in int64
        return AuctionReject.MONEY_OUT_OF_RANGE
    return AuctionReject.NONE


def _size_reason(inst: Instrument | None, qty: int) -> AuctionReject:
    """An unknown instrument, or a quantity outside 1..the instrument's maximum order size."""
    if inst is None:
        return AuctionReject.UNKNOWN_INSTRUMENT
    if qty <= 0:
        return AuctionReject.NON_POSITIVE_QTY
    if qty > inst.max_order_qty:
        return AuctionReject.QTY_ABOVE_MAXIMUM
    return AuctionReject.NONE


def validate_package_bid(bid: PackageBid, instruments: Mapping[int, Instrument]) -> AuctionReject:
    if not bid.alternatives:
        return AuctionReject.NO_ALTERNATIVES
    if len(bid.alternatives) > MAX_ALTERNATIVES:
        return AuctionReject.TOO_MANY_ALTERNATIVES
    for alt in bid.alternatives:
        reason = _validate_legs(alt.legs, instruments)
        if reason:
            return reason
        if alt.limit <= 0:
            return AuctionReject.NON_POSITIVE_LIMIT
        if alt.limit > MAX_MONEY:
            return AuctionReject.MONEY_OUT_OF_RANGE
    return AuctionReject.NONE


def validate_package_offer(offer: PackageOffer, instruments: Mapping[int, Instrument]) -> AuctionReject:
    reason = _validate_legs(offer.legs, instruments)
    if reason:
        return reason
    if offer.min_total < 0:
        return AuctionReject.NEGATIVE_MINIMUM
    if offer.min_total > MAX_MONEY:
        return AuctionReject.MONEY_OUT_OF_RANGE
    return AuctionReject.NONE


def validate_divisible(order: DivisibleBid | DivisibleOffer, instruments: Mapping[int, Instrument]) -> AuctionReject:
    inst = instruments.get(order.instrument)
    reason = _size_reason(inst, order.qty)
    if reason:
        return reason
    if order.limit % inst.price_increment:
        return AuctionReject.LIMIT_OFF_TICK
    if not inst.min_price <= order.limit <= inst.max_price:
        return AuctionReject.PRICE_OUT_OF_BAND
    return AuctionReject.NONE


def validate_block_request(
    request: BlockRequest, instruments: Mapping[int, Instrument], lookup: InstrumentLookup
) -> AuctionReject:
    """Checks the per-GPU-hour price against the grid and band of the product's instruments."""
    if request.gpus <= 0 or request.hours <= 0:
        return AuctionReject.NON_POSITIVE_QTY
    alts = expand_block_request(request, lookup)
    if not alts:
        return AuctionReject.NO_FEASIBLE_START
    inst = instruments[alts[0].legs[0].instrument]
    if request.max_price_per_gpu_hour % inst.price_increment:
        return AuctionReject.LIMIT_OFF_TICK
    if not inst.min_price <= request.max_price_per_gpu_hour <= inst.max_price:
        return AuctionReject.PRICE_OUT_OF_BAND
    return AuctionReject.NONE
