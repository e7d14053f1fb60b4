"""``cx simulate``: simulated participants trading through the real gateway, so the venue has a live market.

Each participant is one firm of the venue's configuration with its own
order-entry session (an ``OrderEntryClient``: its own DEALER connection,
cancel on disconnect), exactly as an outside firm would trade:

* ``Provider`` (PROV1, PROV2): offers capacity, FIRM and INTERRUPTIBLE, as
  resting GTC asks 2-7 % above fair value, and offers again what was sold;
* ``MarketMaker`` (MM1, MM2): quotes both sides of every instrument of the
  universe with ``MassQuote``, around the last trade the feed shows (fair
  value before any trade), skewed against its own inventory;
* ``Taker`` (LAB1, LAB2 mostly buy, GAMMA both ways): IOC limit orders at or
  through the best opposite price the feed shows, and market orders. Each
  taker cycles through the accelerators, so trades print on every one;
* ``PackageBuyer`` (LAB1, LAB2): package bids for the call auction, "g GPUs
  for h uninterrupted hours within the traded hours", often with another
  accelerator as the alternative (``NewBlockPackage``);
* ``BlockProvider`` (PROV1, PROV2): block offers, "g GPUs for h consecutive
  hours at least this much per GPU-hour".

``POPULATION`` lists them; each class trades on its own session of its firm.

Invariants:
* nothing here touches an engine: orders go through the gateway, and the only
  view of the market is the public feed (one ``FeedClient`` over every
  instrument) plus each participant's own execution reports;
* the universe is, per product (accelerator x region x class), the first
  ``hours`` delivery hours the feed shows OPEN; it is recomputed every
  ``UNIVERSE_REFRESH_S``, so it rolls as hours reach their gate closure;
* prices come from the listing (``--listing``): fair value = band low + a
  tenth of the band (INTERRUPTIBLE at 60 %), always a multiple of the price
  increment and inside the band;
* all randomness comes from ``random.Random`` seeded from ``--seed`` and the
  firm (what the venue answers still depends on timing);
* stopping (Ctrl-C, ``--duration``, or the caller's event) mass-cancels every
  participant's orders, logs out and prints the summary: orders sent (a
  quote entry counts as one), fills, and GPU-hours bought and sold per
  accelerator by the simulated firms.

Cost: one round every ``ROUND_S``: a feed poll (O(messages)), then per
participant O(universe) at most (a provider's top-up, a maker's slice of
quotes, a taker's one order) and O(reports) to read its reports.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import sys
import threading
import time
from collections import Counter
from typing import TextIO

import zmq

from engine.codes import InstrumentStatus, OrderType, Side, TimeInForce
from engine.instruments import NS_PER_HOUR, parse_symbol
from engine.listing import ListingConfig, ListingError, ProductListing, load_listing
from feeds.client import FeedClient
from gateway import protocol as p
from gateway.client import ClientError, LogonError, OrderEntryClient
from gateway.units import format_elapsed, format_qty
from gateway.waiting import DEFAULT_WAIT_S, add_wait_argument, wait_synced

ROUND_S = 0.1  # one round of every participant
UNIVERSE_REFRESH_S = 10.0
REPORT_EVERY_S = 10.0  # a progress line this often
INTERRUPTIBLE_DISCOUNT = 0.6


class Tally:
    """What the simulated firms did: orders sent and fills per firm, GPU-hours per accelerator and side."""

    def __init__(self) -> None:
        self.orders: Counter[str] = Counter()
        self.fills: Counter[str] = Counter()
        self.bought: Counter[str] = Counter()
        self.sold: Counter[str] = Counter()

    def fill(self, firm: str, msg: p.Executed | p.PackageExecuted) -> None:
        self.fills[firm] += 1
        accelerator = msg.symbol.split(".", 1)[0]
        (self.bought if msg.side == Side.BUY else self.sold)[accelerator] += msg.qty

    def line(self) -> str:
        per = ", ".join(f"{a} {format_qty(self.bought[a])} / {format_qty(self.sold[a])}"
                        for a in sorted(self.bought | self.sold))
        return (f"{sum(self.orders.values())} orders sent, {sum(self.fills.values())} fills; "
                f"GPU-h bought / sold: {per or 'none yet'}")

    def summary(self) -> str:
        lines = [f"cx simulate: {self.line()}", f"  {'firm':<8} {'orders':>8} {'fills':>7}"]
        lines += [f"  {f:<8} {self.orders[f]:>8} {self.fills[f]:>7}" for f in sorted(self.orders)]
        lines.append(f"  {'accelerator':<12} {'GPU-h bought':>12} {'GPU-h sold':>11}")
        for a in sorted(self.bought | self.sold):
            lines.append(f"  {a:<12} {format_qty(self.bought[a]):>12} {format_qty(self.sold[a]):>11}")
        return "\n".join(lines)


class Market:
    """The public view: the feed's books of every instrument, the listing's prices, the universe traded."""

    def __init__(self, feed: FeedClient, listing: ListingConfig, hours: int):
        self.feed = feed
        self.hours = hours
        self.products: dict[str, ProductListing] = {pr.accelerator: pr for pr in listing.products}
        self.universe: list[str] = []
        self.accelerators: dict[str, list[str]] = {}  # accelerator -> its symbols in the universe
        self._refreshed = -UNIVERSE_REFRESH_S

    def refresh(self, now: float) -> None:
        """Per product, the first ``hours`` OPEN delivery hours the feed shows (every UNIVERSE_REFRESH_S)."""
        if now - self._refreshed < UNIVERSE_REFRESH_S:
            return
        self._refreshed = now
        per_product: dict[tuple, list[tuple[int, str]]] = {}
        for symbol, book in self.feed.books.items():
            key, start = parse_symbol(symbol)
            if book.status == InstrumentStatus.OPEN and key.accelerator in self.products:
                per_product.setdefault((key.accelerator, key.region, key.service_class), []).append((start, symbol))
        self.universe = [s for key in sorted(per_product) for _, s in sorted(per_product[key])[: self.hours]]
        self.accelerators = {}
        for s in self.universe:
            self.accelerators.setdefault(s.split(".", 1)[0], []).append(s)

    def product(self, symbol: str) -> ProductListing:
        return self.products[symbol.split(".", 1)[0]]

    def fair(self, symbol: str) -> int:
        pr = self.product(symbol)
        value = pr.min_price + (pr.max_price - pr.min_price) // 10
        return self.price(symbol, value * INTERRUPTIBLE_DISCOUNT if ".INTERRUPTIBLE." in symbol else value)

    def price(self, symbol: str, value: float) -> int:
        """``value`` ticks rounded to the price increment and clipped into the band."""
        pr = self.product(symbol)
        inc = pr.price_increment
        return min(max(round(value / inc) * inc, pr.min_price), pr.max_price)

    def firm_hours(self, accelerator: str, rng: random.Random) -> tuple[str, list[int], int] | None:
        """A random region's FIRM delivery hours of the accelerator in the universe (consecutive, ascending
        start times) and the fair value there; None if there are none."""
        symbols = [s for s in self.accelerators.get(accelerator, []) if ".FIRM." in s]
        if not symbols:
            return None
        region = rng.choice(sorted({s.split(".")[1] for s in symbols}))
        starts = sorted(parse_symbol(s)[1] for s in symbols if s.split(".")[1] == region)
        return region, starts, self.fair(symbols[0])

    def price_of(self, accelerator: str, value: float) -> int:
        """``value`` ticks on the accelerator's grid and band (its FIRM hours share them)."""
        return self.price(f"{accelerator}.", value)

    def reference(self, symbol: str) -> int:
        """The last trade the feed shows, else fair value."""
        book = self.feed.book(symbol)
        trade = book.last_trade if book is not None else None
        return trade.price if trade is not None else self.fair(symbol)

    def best(self, symbol: str, side: int) -> int | None:
        """Best bid (side 0) or ask (1) price the feed shows, None for an empty side."""
        book = self.feed.book(symbol)
        price = book.top[3 * side] if book is not None else 0
        return price or None


class Participant:
    """One simulated firm on its own session. ``act(k)`` trades in round k; ``read()`` takes its reports."""

    firms: tuple[str, ...] = ()

    def __init__(self, firm: str, index: int, market: Market, seed: int, tally: Tally):
        self.firm, self.index, self.market, self.tally = firm, index, market, tally
        self.rng = random.Random(f"{seed}:{firm}")
        self.client = OrderEntryClient(context=zmq.Context.instance())

    def connect(self, endpoint: str, session: str) -> None:
        self.client.connect(endpoint, session, firm=self.firm, cancel_on_disconnect=True)

    def act(self, k: int) -> None:
        raise NotImplementedError

    def read(self) -> None:
        while (msg := self.client.recv(0)) is not None:
            if isinstance(msg, p.Executed | p.PackageExecuted) and not self.client.is_resend(msg):
                self.tally.fill(self.firm, msg)
            self.on_report(msg)

    def on_report(self, msg) -> None:
        """A report of this session (after the client's own order view took it)."""

    def new_order(self, symbol: str, side: Side, qty: int, price: int, **kw) -> int:
        self.tally.orders[self.firm] += 1
        return self.client.new_order(symbol, side, qty, price, **kw)

    def stop(self) -> None:
        """Cancel every order of the firm's session, log out, take the last reports, close.

        Errors are ignored: the venue may be gone. The reports that arrived before the logout's answer count."""
        with contextlib.suppress(ClientError, zmq.ZMQError):
            if self.client.logged_on:
                self.client.mass_cancel()
                self.client.logout()
                self.read()
        self.client.close()


class Provider(Participant):
    """Offers GTC asks on every instrument of the universe, 2-7 % above fair value; offers again when sold."""

    firms = ("PROV1", "PROV2")

    def __init__(self, *args):
        super().__init__(*args)
        self.pending: dict[int, str] = {}  # client order id -> symbol, until Accepted or Rejected

    def act(self, k: int) -> None:
        offered = {o.symbol for o in self.client.orders.values()} | set(self.pending.values())
        for symbol in self.market.universe:
            if symbol not in offered:
                qty = self.rng.randrange(5, 21) * (20 if ".INTERRUPTIBLE." in symbol else 10)
                price = self.market.price(symbol, self.market.fair(symbol) * self.rng.uniform(1.02, 1.07))
                self.pending[self.new_order(symbol, Side.SELL, qty, price)] = symbol

    def on_report(self, msg) -> None:
        if isinstance(msg, p.Accepted | p.Rejected):
            self.pending.pop(msg.client_order_id, None)


class MarketMaker(Participant):
    """Quotes both sides of the universe with MassQuote around the feed's last trade, skewed by inventory."""

    firms = ("MM1", "MM2")
    SLICES = 5  # each round requotes one slice of the universe

    def __init__(self, *args):
        super().__init__(*args)
        self.position: Counter[str] = Counter()  # symbol -> GPUs bought minus sold
        self.quote_id = 0

    def act(self, k: int) -> None:
        m = self.market
        entries = []
        for symbol in m.universe[(k + self.index) % self.SLICES:: self.SLICES]:
            fair = m.fair(symbol)
            mid = m.reference(symbol) - self.position[symbol] * fair / 2000 + self.rng.choice((-1, 0, 1)) * fair / 200
            mid = min(max(mid, fair / 2), fair * 2)
            half = fair * (0.01 + 0.005 * self.index)
            bid, ask = m.price(symbol, mid - half), m.price(symbol, mid + half)
            if bid < ask:
                entries.append((symbol, bid, self.rng.randrange(2, 11) * 5, ask, self.rng.randrange(2, 11) * 5))
        if entries:
            self.quote_id += 1
            self.tally.orders[self.firm] += len(entries)
            self.client.mass_quote(self.quote_id, entries)

    def on_report(self, msg) -> None:
        if isinstance(msg, p.Executed):
            self.position[msg.symbol] += msg.qty if msg.side == Side.BUY else -msg.qty


class Taker(Participant):
    """IOC limit and market orders, one accelerator after the other; the labs mostly buy, GAMMA both ways."""

    firms = ("LAB1", "LAB2", "GAMMA")

    def __init__(self, *args):
        super().__init__(*args)
        self.buy_bias = 0.8 if self.firm.startswith("LAB") else 0.5

    def act(self, k: int) -> None:
        m = self.market
        if not m.accelerators or self.rng.random() < 0.3:
            return
        accelerators = sorted(m.accelerators)
        symbol = self.rng.choice(m.accelerators[accelerators[(k + self.index) % len(accelerators)]])
        side = Side.BUY if self.rng.random() < self.buy_bias else Side.SELL
        qty = self.rng.randrange(1, 41)
        best = m.best(symbol, 1 if side == Side.BUY else 0)
        if best is not None and self.rng.random() < 0.25:
            self.new_order(symbol, side, qty, 0, ord_type=OrderType.MARKET, tif=TimeInForce.IOC)
            return
        fair = m.fair(symbol)
        reach = self.rng.randrange(0, 3) * fair / 200
        limit = (best if best is not None else fair) + (reach if side == Side.BUY else -reach)
        self.new_order(symbol, side, qty, m.price(symbol, limit), tif=TimeInForce.IOC)


class PackageBuyer(Participant):
    """An AI lab in the call auction: keeps up to MAX_LIVE package bids, each "g GPUs for h uninterrupted
    hours somewhere in the traded hours", often with another accelerator as the alternative."""

    firms = ("LAB1", "LAB2")
    MAX_LIVE = 2

    def act(self, k: int) -> None:
        m = self.market
        if len(self.client.packages) >= self.MAX_LIVE or not m.accelerators or self.rng.random() < 0.9:
            return
        choices = sorted(m.accelerators)
        picked = self.rng.sample(choices, min(len(choices), self.rng.choice((1, 2))))
        requests = [r for r in (self._request(acc) for acc in picked) if r is not None]
        if requests:
            self.tally.orders[self.firm] += 1
            self.client.send_block_package(requests)

    def _request(self, accelerator: str) -> p.BlockRequest | None:
        got = self.market.firm_hours(accelerator, self.rng)
        if got is None:
            return None
        region, starts, fair = got
        limit = self.market.price_of(accelerator, fair * self.rng.uniform(1.0, 1.25))
        hours = self.rng.randint(1, min(3, len(starts)))
        return p.BlockRequest(accelerator, region, self.rng.randrange(2, 9) * 2, hours, starts[0],
                              starts[-1] + NS_PER_HOUR, limit)


class BlockProvider(Participant):
    """A provider in the call auction: keeps one block offer live, "g GPUs for h consecutive hours, at least
    this per GPU-hour", a little under fair value."""

    firms = ("PROV1", "PROV2")

    def act(self, k: int) -> None:
        m = self.market
        if self.client.packages or not m.accelerators or self.rng.random() < 0.9:
            return
        accelerator = self.rng.choice(sorted(m.accelerators))
        got = m.firm_hours(accelerator, self.rng)
        if got is None:
            return
        region, starts, fair = got
        hours = self.rng.randint(1, len(starts))
        start = starts[self.rng.randrange(0, len(starts) - hours + 1)]
        self.tally.orders[self.firm] += 1
        minimum = m.price_of(accelerator, fair * self.rng.uniform(0.85, 1.0))
        self.client.send_block_package(p.BlockOffer(accelerator, region, self.rng.randrange(2, 9) * 4, hours, start,
                                                    minimum))


# The simulated population: each participant class trades as each of its firms (its own session).
POPULATION: list[type[Participant]] = [Provider, MarketMaker, Taker, PackageBuyer, BlockProvider]


class Simulation:
    """The population on one gateway and one feed; ``run(stop, duration)`` trades until stopped."""

    def __init__(self, gateway: str, feed: str, snapshots: str, listing: ListingConfig, seed: int = 1,
                 hours: int = 4, out: TextIO | None = None, population: list[type[Participant]] = POPULATION,
                 wait_s: float = DEFAULT_WAIT_S):
        self.gateway, self.feed_endpoints, self.listing, self.wait_s = gateway, (feed, snapshots), listing, wait_s
        self.seed, self.hours, self.out, self.population = seed, hours, out, population
        self.tally = Tally()

    def say(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)  # None: the stdout of the moment

    def run(self, stop: threading.Event, duration: float = 0) -> int:
        """Trade until ``stop`` is set or ``duration`` s passed (0: no limit).

        Returns 0, 1 if the gateway went away, 2 if it could not start (no snapshot, no firm logged on)."""
        feed = FeedClient(*self.feed_endpoints, ctx=zmq.Context.instance()).connect()
        market = Market(feed, self.listing, self.hours)
        participants: list[Participant] = []
        code = 0
        try:
            if not wait_synced(feed, "cx simulate", self.wait_s, stop, self.out):
                if not stop.is_set():
                    self.say(f"cx simulate: no market-data snapshot from {self.feed_endpoints[1]} within "
                             f"{self.wait_s:g}s (is `cx serve` running?)")
                return 2
            session = f"sim-{time.time_ns()}"  # a fresh session: no history from an earlier run to resend
            for cls in self.population:
                for i, firm in enumerate(cls.firms):
                    part = cls(firm, i, market, self.seed, self.tally)
                    try:
                        part.connect(self.gateway, f"{session}-{cls.__name__.lower()}")
                    except LogonError as exc:
                        if not exc.rejected:  # no answer: there is no gateway to trade with
                            self.say(f"cx simulate: {exc}")
                            return 2
                        self.say(f"cx simulate: {firm} cannot trade ({exc}); going on without it")
                        continue
                    participants.append(part)
            if not participants:
                self.say(f"cx simulate: no simulated firm could log on to {self.gateway}")
                return 2
            firms = list(dict.fromkeys(x.firm for x in participants))
            self.say(f"cx simulate: {len(firms)} firms trading through {self.gateway} ({', '.join(firms)}; "
                     f"{len(participants)} sessions), seed {self.seed}")
            self._rounds(participants, market, stop, duration)
        except ClientError as exc:
            self.say(f"cx simulate: the gateway is gone ({exc}); stopping")
            code = 1
        finally:
            for part in participants:
                part.stop()
            feed.close()
            if participants:
                self.say(self.tally.summary())
        return code

    def _rounds(self, participants: list[Participant], market: Market, stop: threading.Event,
                duration: float) -> None:
        start = time.monotonic()
        end = start + duration if duration > 0 else None
        next_report = start + REPORT_EVERY_S
        k = 0
        while not stop.is_set() and (end is None or time.monotonic() < end):
            feed_until = time.monotonic() + ROUND_S
            while (left := feed_until - time.monotonic()) > 0 and not stop.is_set():
                market.feed.poll(max(int(left * 1000), 1))
            now = time.monotonic()
            market.refresh(now)
            for part in participants:
                part.act(k)
                part.read()
            k += 1
            if now >= next_report:
                next_report = now + REPORT_EVERY_S
                self.say(f"sim {format_elapsed(int((now - start) * 1e9))}: {self.tally.line()}")


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        listing = load_listing(args.listing)
    except (ListingError, OSError) as exc:
        print(f"cx simulate: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C: a clean stop, not an exception
    try:
        return Simulation(args.gateway, args.feed, args.snapshots, listing, args.seed, args.hours,
                          wait_s=args.venue_timeout).run(stop, args.duration)
    finally:
        signal.signal(signal.SIGINT, previous)


def add_command(sub: argparse._SubParsersAction) -> None:
    p_ = sub.add_parser("simulate", help="simulated providers, market makers and takers trading through the gateway",
                        description=__doc__.splitlines()[0])
    p_.add_argument("--gateway", default="tcp://127.0.0.1:5555", help="order entry (default %(default)s)")
    p_.add_argument("--feed", default="tcp://127.0.0.1:5556", help="market data (default %(default)s)")
    p_.add_argument("--snapshots", default="tcp://127.0.0.1:5557", help="snapshot service (default %(default)s)")
    p_.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    p_.add_argument("--seed", type=int, default=1, help="seed of the participants (default 1)")
    p_.add_argument("--hours", type=int, default=4, help="delivery hours traded per product (default 4)")
    p_.add_argument("--listing", metavar="FILE", default=None, help="the venue's listing TOML (default: built-in)")
    add_wait_argument(p_)
    p_.set_defaults(func=cmd_simulate)
