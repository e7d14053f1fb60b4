"""The ``cx`` command line.

Subcommands:

* ``cx demo [--seed N] [--steps N] [--listing FILE] [--engine auto|core|reference]``:
  a short local simulation on the listed instruments. A few market makers
  MassQuote two-sided quotes around a random-walk mid on a handful of
  instruments; takers send IOC limit and market orders that cross. Every trade
  is printed as it happens, the top of one book every so often, then a summary.
  The run is deterministic for a given seed: all randomness comes from
  ``random.Random(seed)`` here (the engine itself is deterministic and never
  draws random numbers), and simulated time starts at a fixed anchor hour, not
  at the wall clock.

Other commands register themselves with ``_build_parser`` the same way
``demo`` does. ``main(argv)`` returns the process exit code (0 ok, 2 bad usage
or configuration).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TextIO

from engine.codes import EventKind, OrderType, Side, TimeInForce
from engine.instruments import NS_PER_SECOND, Instrument, parse_hour
from engine.listing import ListingConfig, ListingError, load_listing
from engine.records import (
    EVENT_KIND_OF,
    AdvanceTime,
    Fill,
    MassQuote,
    NewOrder,
    QuoteEntry,
    Trade,
)
from gateway.units import format_elapsed, format_notional, format_price, format_qty, format_ts

# ------------------------------------------------------------------ engine


def make_exchange(instruments: list[Instrument], engine: str = "auto", max_firms: int = 256) -> Any:
    """An exchange over ``instruments``.

    ``engine``: ``"core"`` = ``engine.exchange.Exchange`` (numba), ``"reference"`` =
    ``engine.reference.ReferenceExchange`` (plain Python), ``"auto"`` = the core when
    the module exists, else the reference. Only a missing module triggers the
    fallback; an import error inside an existing module is raised.
    """
    if engine not in ("auto", "core", "reference"):
        raise ValueError(f"unknown engine {engine!r}")
    if engine in ("auto", "core"):
        try:
            from engine.exchange import Exchange
        except ModuleNotFoundError as exc:
            if engine == "core" or exc.name != "engine.exchange":
                raise
        else:
            return Exchange(instruments, max_firms=max_firms)
    from engine.reference import ReferenceExchange

    return ReferenceExchange(instruments, max_firms=max_firms)


# -------------------------------------------------------------------- demo

DEMO_ANCHOR_NS = parse_hour("2026-12-01T00")  # fixed, so that runs do not depend on the wall clock
DEMO_START_NS = DEMO_ANCHOR_NS + 60 * NS_PER_SECOND
STEP_NS = 2 * NS_PER_SECOND
DEMO_INSTRUMENTS = 4
BOOK_LEVELS = 5
MAKER_FIRMS = (1, 2, 3)
TAKER_FIRMS = (10, 11)


def pick_demo_instruments(instruments: list[Instrument], until_ns: int, n: int = DEMO_INSTRUMENTS) -> list[Instrument]:
    """Up to ``n`` instruments open for the whole run, spread over the listed products.

    Per product (in listing order) the hours still trading at ``until_ns`` are
    candidates; ``n`` products are taken at an even stride, the k-th chosen one at
    its k-th such hour, so the demo shows different accelerators, regions,
    service classes and hours.
    """
    per_product: dict[tuple[str, str, str], list[Instrument]] = {}
    for ins in instruments:
        if ins.open_ns <= DEMO_START_NS and ins.close_ns > until_ns:
            per_product.setdefault((ins.accelerator, ins.region, ins.service_class), []).append(ins)
    products = list(per_product.values())
    if len(products) <= n:
        chosen = products
    else:
        stride = (len(products) - 1) // (n - 1) if n > 1 else 1
        chosen = [products[k * stride] for k in range(n)]
    return [hours[min(k, len(hours) - 1)] for k, hours in enumerate(chosen)]


class _Stats:
    def __init__(self) -> None:
        self.trades = 0
        self.volume = 0
        self.notional = 0  # ticks x GPUs
        self.low: int | None = None
        self.high: int | None = None
        self.last: int | None = None

    def add(self, price: int, qty: int) -> None:
        self.trades += 1
        self.volume += qty
        self.notional += price * qty
        self.low = price if self.low is None else min(self.low, price)
        self.high = price if self.high is None else max(self.high, price)
        self.last = price


class Demo:
    """One demo run; ``run()`` prints to ``out`` and returns the number of trades."""

    def __init__(self, listing: ListingConfig, seed: int, steps: int, engine: str, out: TextIO):
        self.rng = random.Random(seed)
        self.seed = seed
        self.steps = steps
        self.out = out
        self.tick = listing.tick
        self.instruments = listing.instruments(DEMO_ANCHOR_NS)
        self.end_ns = DEMO_START_NS + steps * STEP_NS
        self.chosen = pick_demo_instruments(self.instruments, self.end_ns)
        if not self.chosen:
            raise ListingError("", "no listed instrument trades for the whole demo (window or gate closure too short)")
        self.ex = make_exchange(self.instruments, engine)
        self.engine_name = type(self.ex).__name__
        self.event_counts: Counter[str] = Counter()
        self.commands = 0
        self.client_ids: Counter[int] = Counter()
        self.quote_id = 0
        self.fills: list[Fill] = []
        self.stats = {ins.instrument_id: _Stats() for ins in self.chosen}
        self.width = max(len(ins.symbol) for ins in self.chosen)
        self.mid: dict[int, int] = {}
        self.unit: dict[int, int] = {}
        for ins in self.chosen:
            inc = ins.price_increment
            unit = inc * max(1, 5 // inc)  # a move of about 5 ticks
            mid = ins.min_price + (ins.max_price - ins.min_price) // 10
            self.mid[ins.instrument_id] = mid - mid % inc
            self.unit[ins.instrument_id] = unit

    # ---------------------------------------------------------- plumbing

    def print(self, *args: Any) -> None:
        print(*args, file=self.out)

    def px(self, ticks: int) -> str:
        return format_price(ticks, self.tick)

    def submit(self, cmd: Any) -> None:
        self.commands += 1
        for ev in self.ex.submit(cmd):
            kind = EventKind(EVENT_KIND_OF[type(ev)]).name
            self.event_counts[kind] += 1
            if isinstance(ev, Fill):
                self.fills.append(ev)
            elif isinstance(ev, Trade):
                self.on_trade(ev)

    def on_trade(self, t: Trade) -> None:
        maker, taker = (self.fills[-2], self.fills[-1]) if len(self.fills) >= 2 else (None, None)
        self.fills.clear()
        stats = self.stats.get(t.instrument)
        if stats is not None:
            stats.add(t.price, t.qty)
        symbol = self.instruments[t.instrument].symbol
        who = f"firm {taker.firm} took from firm {maker.firm}" if maker and taker else ""
        self.print(
            f"{format_elapsed(t.ts - DEMO_START_NS)}  trade {t.trade_id:>4}  {symbol:<{self.width}} "
            f"{Side(t.side).name:<4} {format_qty(t.qty):>6} @ {self.px(t.price):>8}  {who}"
        )

    def next_client_id(self, firm: int) -> int:
        self.client_ids[firm] += 1
        return self.client_ids[firm]

    # --------------------------------------------------------- behaviour

    def walk(self) -> None:
        for ins in self.chosen:
            i, u = ins.instrument_id, self.unit[ins.instrument_id]
            lo = min(ins.min_price + 10 * u, ins.max_price)
            hi = max(ins.max_price - 10 * u, lo)
            self.mid[i] = min(max(self.mid[i] + self.rng.choice((-2, -1, 0, 0, 1, 2)) * u, lo), hi)

    def quote(self, ts: int) -> None:
        k = self.rng.randrange(len(MAKER_FIRMS))
        firm = MAKER_FIRMS[k]
        entries = []
        for ins in self.chosen:
            i, u = ins.instrument_id, self.unit[ins.instrument_id]
            half = u * (2 + k)
            bid = max(self.mid[i] - half - self.rng.choice((0, u)), ins.min_price)
            ask = min(self.mid[i] + half + self.rng.choice((0, u)), ins.max_price)
            if bid >= ask:
                continue
            size = min(self.rng.randrange(5, 41) * 10, ins.max_order_qty)
            entries.append(QuoteEntry(i, bid, size, ask, min(self.rng.randrange(5, 41) * 10, ins.max_order_qty)))
        if entries:
            self.quote_id += 1
            self.submit(MassQuote(ts, firm, self.quote_id, entries))

    def take(self, ts: int) -> None:
        firm = self.rng.choice(TAKER_FIRMS)
        ins = self.rng.choice(self.chosen)
        i, u = ins.instrument_id, self.unit[ins.instrument_id]
        side = self.rng.choice((Side.BUY, Side.SELL))
        qty = min(self.rng.randrange(1, 31) * 10, ins.max_order_qty)
        cid = self.next_client_id(firm)
        if self.rng.random() < 0.3:
            self.submit(NewOrder(ts, firm, cid, i, side, 0, qty, OrderType.MARKET, TimeInForce.IOC))
            return
        # An IOC limit at the opposite best, or up to 2 moves through it (the mid when that side is empty).
        best = self.ex.best_ask(i) if side == Side.BUY else self.ex.best_bid(i)
        reach = self.rng.randrange(0, 3) * u
        price = self.mid[i] if best is None else best.price + reach if side == Side.BUY else best.price - reach
        price = min(max(price, ins.min_price), ins.max_price)
        self.submit(NewOrder(ts, firm, cid, i, side, price, qty, OrderType.LIMIT, TimeInForce.IOC))

    def show_book(self, ins: Instrument, ts: int) -> None:
        bids, asks = self.ex.depth(ins.instrument_id, BOOK_LEVELS)
        self.print()
        self.print(f"  book {ins.symbol} at {format_elapsed(ts - DEMO_START_NS)}")
        self.print(f"  {'orders':>6} {'qty':>7} {'bid':>9} | {'ask':<9} {'qty':>7} {'orders':>6}")
        for k in range(max(len(bids), len(asks), 1)):
            b = bids[k] if k < len(bids) else None
            a = asks[k] if k < len(asks) else None
            left = f"{b.count:>6} {format_qty(b.qty):>7} {self.px(b.price):>9}" if b else f"{'':>6} {'':>7} {'-':>9}"
            right = f"{self.px(a.price):<9} {format_qty(a.qty):>7} {a.count:>6}" if a else f"{'-':<9} {'':>7} {'':>6}"
            self.print(f"  {left} | {right}")
        self.print()

    # --------------------------------------------------------------- run

    def run(self) -> int:
        self.print(
            f"cx demo: seed {self.seed}, {self.steps} steps of {STEP_NS // NS_PER_SECOND}s from "
            f"{format_ts(DEMO_START_NS)}, engine {self.engine_name}, {len(self.instruments)} instruments listed"
        )
        for ins in self.chosen:
            self.print(f"  trading {ins.symbol} (id {ins.instrument_id}), mid {self.px(self.mid[ins.instrument_id])}")
        self.print()
        self.submit(AdvanceTime(DEMO_START_NS))  # opens the listing; hours past their gate close here
        book_every = max(1, self.steps // 4)
        shown = 0
        ts = DEMO_START_NS
        for step in range(self.steps):
            ts = DEMO_START_NS + step * STEP_NS
            self.walk()
            for _ in range(self.rng.choice((1, 1, 2))):
                self.quote(ts)
            for _ in range(self.rng.choice((0, 1, 1, 2))):
                self.take(ts)
            if (step + 1) % book_every == 0:
                self.show_book(self.chosen[shown % len(self.chosen)], ts)
                shown += 1
        self.summary(ts)
        return sum(s.trades for s in self.stats.values())

    def summary(self, ts: int) -> None:
        trades = sum(s.trades for s in self.stats.values())
        volume = sum(s.volume for s in self.stats.values())
        notional = sum(s.notional for s in self.stats.values())
        self.print(
            f"summary: {self.steps} steps ({format_elapsed(ts - DEMO_START_NS)} simulated), {self.commands} commands, "
            f"{sum(self.event_counts.values())} events, {trades} trades, {format_qty(volume)} GPU-hours, "
            f"${format_notional(notional, 1, self.tick)} notional"
        )
        heads = " ".join(f"{h:>9}" for h in ("vwap", "low", "high", "last"))
        self.print(f"  {'instrument':<{self.width}} {'trades':>6} {'GPU-h':>7} {heads}")
        for ins in self.chosen:
            s = self.stats[ins.instrument_id]
            if s.trades:
                vwap = int((Decimal(s.notional) / s.volume).to_integral_value(ROUND_HALF_EVEN))
                cols = [self.px(vwap), self.px(s.low), self.px(s.high), self.px(s.last)]
            else:
                cols = ["-"] * 4
            values = " ".join(f"{c:>9}" for c in cols)
            self.print(f"  {ins.symbol:<{self.width}} {s.trades:>6} {format_qty(s.volume):>7} {values}")
        self.print("  events: " + ", ".join(f"{k.lower()} {n}" for k, n in sorted(self.event_counts.items())))


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        listing = load_listing(args.listing)
        demo = Demo(listing, seed=args.seed, steps=args.steps, engine=args.engine, out=sys.stdout)
    except (ListingError, OSError) as exc:
        print(f"cx demo: {exc}", file=sys.stderr)
        return 2
    demo.run()
    return 0


# -------------------------------------------------------------------- main


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run a short local market simulation and print trades and books",
        description="Market makers quote around a random-walk mid, takers cross; deterministic for a seed.",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed of the simulated participants (default 1)")
    p.add_argument("--steps", type=_non_negative_int, default=200, help="simulation steps of 2s each (default 200)")
    p.add_argument("--listing", metavar="FILE", default=None, help="listing TOML (default: the built-in listing)")
    p.add_argument(
        "--engine",
        choices=("auto", "core", "reference"),
        default="auto",
        help="core = numba engine.exchange, reference = plain-Python engine.reference, auto = core if present",
    )
    p.set_defaults(func=cmd_demo)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cx", description="Compute-capacity exchange tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. `cx demo | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
