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

* ``cx replay JOURNAL_DIR [--summary] [--from-snapshot] [--verify]``: replays a
  journal (``journal.log``) through a fresh engine and prints the event
  stream, one line per event (or with ``--summary`` only the totals).
  ``--verify`` replays twice and checks that both give identical events and
  the same state, equal to every checkpoint and snapshot recorded in the
  directory (and that replay from the newest snapshot ends in the same
  state); exit status 1 if not. A corrupt journal exits 2 naming the file and
  offset; a torn tail is reported, never modified.

* ``cx order buy|sell SYMBOL QTY @ PRICE [--ioc|--fok|--gtd TIME] [--post-only]
  [--market]``, ``cx cancel ORDER_ID``, ``cx orders [--symbol S]``: order entry
  through a running gateway (``gateway.client``), prices in dollars. Common
  options: ``--endpoint`` (default tcp://127.0.0.1:5555), ``--firm`` (default
  DEMO, plain text), ``--keys DIR`` / ``--server-key FILE`` (CurveZMQ),
  ``--session`` (default ``cli``), ``--timeout`` (for the reports),
  ``--venue-timeout`` (for the logon: the venue may be starting). Each logs on to the session
  with next_seq=1 and cancel_on_disconnect off, so orders outlive the command.
  ``cx order`` prints the reports until the order is final or rests; ``cx
  orders`` rebuilds the open orders from the session's history (the protocol
  has no query): it lists the orders entered on that session name only.
  Exit status 1: rejected or no answer; 2: usage, logon or connection error.
  ``cx package buy|sell|cancel`` (``gateway.package_cli``): packages of the
  call auction, with the same connection options.

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
from gateway.waiting import add_wait_argument

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


# ------------------------------------------------------------------ replay


def format_event_line(ev: Any) -> str:
    """One event struct as one readable line: seq, time (UTC, ns), kind, then its fields with codes named."""
    from engine.codes import (
        AuctionReject,
        AuctionStatus,
        CancelReason,
        InstrumentStatus,
        Liquidity,
        Outcome,
        RejectReason,
    )
    from engine.records import AuctionCleared, Cancelled, PackageCancelled, PackageRejected, PackageUnfilled

    reasons = {Cancelled: CancelReason, PackageCancelled: CancelReason, PackageRejected: AuctionReject,
               PackageUnfilled: Outcome}
    names = {"side": Side, "liquidity": Liquidity, "reason": reasons.get(type(ev), RejectReason),
             "status": AuctionStatus if isinstance(ev, AuctionCleared) else InstrumentStatus}
    secs, ns = divmod(ev.ts, NS_PER_SECOND)
    when = format_ts(secs * NS_PER_SECOND)[:-5] + f".{ns:09d}Z"
    parts = [f"{ev.seq:>10}", when, f"{type(ev).__name__:<23}"]
    for f in ev.__struct_fields__[2:]:
        v = getattr(ev, f)
        if f in names:
            v = {m.value: m.name for m in names[f]}.get(v, v)
        parts.append(f"{f}={v}")
    return " ".join(parts)


def cmd_replay(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.records import EVENT_CLASSES, events_from_records
    from journal.log import JournalError
    from journal.sequencer import replay_journal

    counts: Counter[str] = Counter()

    def show(records: Any) -> None:
        for ev in events_from_records(records):
            print(format_event_line(ev))

    def count(records: Any) -> None:
        for k, n in zip(*np.unique(records["kind"], return_counts=True), strict=True):
            counts[EVENT_CLASSES[int(k)].__name__] += int(n)

    try:
        if args.verify:
            return _verify_replay(args.journal_dir)
        res = replay_journal(args.journal_dir, from_snapshot=args.from_snapshot,
                             on_events=count if args.summary else show)
    except BrokenPipeError:
        raise
    except (JournalError, OSError) as exc:
        print(f"cx replay: {exc}", file=sys.stderr)
        return 2
    if res.torn is not None:
        print(f"cx replay: warning: journal ends in a torn record: {res.torn}", file=sys.stderr)
    for m in res.mismatches:
        print(f"cx replay: MISMATCH {m}", file=sys.stderr)
    if args.summary:
        start = f"snapshot {res.snapshot.name}" if res.snapshot else "genesis"
        print(f"replayed commands {res.start_seq + 1}..{res.last_seq} ({res.commands}) from {start} in "
              f"{res.seconds:.3f}s: {res.events} events, {res.checkpoints_checked} checkpoints checked")
        print("  events: " + ", ".join(f"{k.lower()} {n}" for k, n in sorted(counts.items())))
        print(f"  state hash {res.state_hash()}")
    return 1 if res.mismatches else 0


def _verify_replay(journal_dir: str) -> int:
    """Replay twice from the genesis (and once from the newest snapshot); compare events, states, records."""
    from journal.sequencer import replay_journal

    runs = [replay_journal(journal_dir, check_snapshots=True, digest=True) for _ in range(2)]
    a, b = runs
    problems = list(a.mismatches)
    if a.event_digest != b.event_digest or a.events != b.events:
        problems.append(f"two replays gave different events ({a.events} events {a.event_digest} vs "
                        f"{b.events} events {b.event_digest})")
    final = a.state_hash()
    if b.state_hash() != final:
        problems.append("two replays ended in different states")
    snap = replay_journal(journal_dir, from_snapshot=True)
    if snap.snapshot is not None and snap.state_hash() != final:
        problems.append(f"replay from {snap.snapshot.name} ends in state {snap.state_hash()}, "
                        f"from the genesis in {final}")
    if a.torn is not None:
        print(f"cx replay: warning: journal ends in a torn record: {a.torn}", file=sys.stderr)
    print(f"replayed commands 1..{a.last_seq} twice: {a.events} events each, event digest {a.event_digest}")
    print(f"  checked {a.checkpoints_checked} checkpoints and {a.snapshots_checked} snapshots; "
          f"from {snap.snapshot.name if snap.snapshot else 'no snapshot'}: {snap.commands} commands replayed")
    print(f"  state hash {final}")
    for p in problems:
        print(f"verify: MISMATCH {p}")
    print("verify: FAILED" if problems else "verify: OK")
    return 1 if problems else 0


def _add_replay(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a journal through a fresh engine and print its events",
        description="Replay a journal directory (and snapshot) through a fresh engine; print the events, a "
                    "summary, or verify determinism against the recorded state hashes.",
    )
    p.add_argument("journal_dir", metavar="JOURNAL_DIR", help="a journal directory (journal.log)")
    p.add_argument("--summary", action="store_true", help="print totals instead of one line per event")
    p.add_argument("--from-snapshot", action="store_true",
                   help="start from the newest snapshot (events before it are not printed)")
    p.add_argument("--verify", action="store_true",
                   help="replay twice; check identical events and the recorded checkpoint and snapshot hashes")
    p.set_defaults(func=cmd_replay)


# ------------------------------------------------------------- order entry

CLI_SESSION = "cli"
REST_GRACE_S = 0.2  # after Accepted, how long a resting order's immediate fills may take to arrive
LOGON_ATTEMPT_S = 2.0  # one logon's wait for its answer, while waiting for the venue


def _connect_cli(name: str, args: argparse.Namespace) -> Any:
    """An OrderEntryClient logged on to ``args.session`` with next_seq=1 and cancel_on_disconnect off.

    next_seq=1: the gateway resends the session's history (``cx orders`` needs it; the other commands skip
    it). cancel_on_disconnect off: an order entered here must outlive the command.
    """
    from pathlib import Path

    from gateway.client import ClientError, LogonError, OrderEntryClient, load_client_keys, load_server_key
    from gateway.waiting import wait_for

    keys = server_key = None
    if args.keys:
        keys = load_client_keys(args.keys, args.firm)
        server_key = load_server_key(args.server_key or Path(args.keys) / "gateway.key")
    elif args.server_key:
        raise ClientError("--server-key needs --keys DIR (the firm's key pair)")
    client = OrderEntryClient()

    def logon(seconds: float) -> Any:
        client.logon_timeout = seconds
        try:
            client.connect(args.endpoint, args.session, firm=None if keys else args.firm, client_keys=keys,
                           server_key=server_key, next_seq=1, cancel_on_disconnect=False)
        except LogonError as exc:
            if exc.rejected:
                raise
            return None  # no answer yet: the venue may be starting
        return client

    if wait_for(logon, f"cx {name}", f"a logon answer from {args.endpoint}", args.venue_timeout,
                attempt_s=LOGON_ATTEMPT_S) is None:
        raise LogonError(f"no answer to the logon from {args.endpoint} within {args.venue_timeout:g}s "
                         "(is `cx serve` running?)")
    return client


def _run_order_entry(name: str, args: argparse.Namespace, body: Any) -> int:
    """Connect, run ``body(client)``, log out; client, logon and connection errors exit 2."""
    import contextlib

    from gateway.client import ClientError

    try:
        client = _connect_cli(name, args)
    except (ClientError, ValueError) as exc:
        print(f"cx {name}: {exc}", file=sys.stderr)
        return 2
    try:
        return body(client)
    except (ClientError, ValueError) as exc:
        print(f"cx {name}: {exc}", file=sys.stderr)
        return 2
    finally:
        with contextlib.suppress(Exception):
            client.logout(timeout=0.5)
        client.close()


def _order_price(words: list[str], market: bool) -> str | None:
    """``["@", "2.450"]``, ``["@2.450"]`` or ``["2.450"]`` -> ``"2.450"``; ``[]`` only for --market."""
    text = " ".join(words).strip()
    text = text[1:].strip() if text.startswith("@") else text
    if market:
        if text:
            raise ValueError("a market order takes no price")
        return None
    if not text or " " in text:
        raise ValueError("expected '@ PRICE' in dollars, e.g. '@ 2.450' (or --market)")
    return text


def _parse_time(text: str) -> int:
    """GTD time: ISO 8601 (UTC unless it says otherwise), ``+90s`` / ``+30m`` / ``+2h`` from now, or ns."""
    import time
    from datetime import UTC, datetime

    if text.isdigit():
        return int(text)
    if text.startswith("+") and text[-1:] in ("s", "m", "h") and text[1:-1].isdigit():
        return time.time_ns() + int(text[1:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]] * NS_PER_SECOND
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--gtd {text!r}: expected an ISO time such as 2026-12-01T13:30Z, +30m, or ns") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * NS_PER_SECOND + dt.microsecond * 1000


def cmd_order(args: argparse.Namespace) -> int:
    import time

    from gateway import protocol as p
    from gateway.client import format_report
    from gateway.units import parse_price, parse_qty

    try:
        qty = parse_qty(args.qty)
        text = _order_price(args.price, args.market)
        price = 0 if text is None else parse_price(text, args.tick)
        expire_ts = _parse_time(args.gtd) if args.gtd else 0
    except ValueError as exc:
        print(f"cx order: {exc}", file=sys.stderr)
        return 2
    tif = TimeInForce.IOC if args.ioc else TimeInForce.FOK if args.fok else TimeInForce.GTD if args.gtd else (
        TimeInForce.IOC if args.market else TimeInForce.GTC)
    ord_type = OrderType.MARKET if args.market else OrderType.LIMIT
    side = Side[args.side.upper()]
    rests = ord_type == OrderType.LIMIT and tif in (TimeInForce.GTC, TimeInForce.GTD)

    def body(c: Any) -> int:
        cid = c.new_order(args.symbol, side, qty, price, ord_type=ord_type, tif=tif, post_only=args.post_only,
                          expire_ts=expire_ts, client_order_id=args.client_id)
        limit = "market" if args.market else f"@ {format_price(price, args.tick)}"
        print(f"{c.firm} session {c.session!r}: {side.name} {format_qty(qty)} {args.symbol} {limit} {tif.name}"
              f"{' post-only' if args.post_only else ''} (client id {cid})")
        deadline = time.monotonic() + args.timeout
        order_id = settle_at = None
        while True:
            now = time.monotonic()
            end = deadline if settle_at is None else min(deadline, settle_at)
            msg = c.recv(max(end - now, 0.0))
            if msg is None:
                if settle_at is not None:
                    o = c.orders.get(order_id)
                    if o is not None:
                        print(f"order {order_id} rests: {format_qty(o.leaves)} open @ "
                              f"{format_price(o.price, args.tick)}")
                    return 0
                print(f"cx order: no final report within {args.timeout:g}s", file=sys.stderr)
                return 1
            if isinstance(msg, p.ProtocolError):
                print(f"cx order: {format_report(msg)}", file=sys.stderr)
                return 1
            if c.is_resend(msg) or not (getattr(msg, "client_order_id", None) == cid
                                        or (order_id is not None and getattr(msg, "order_id", None) == order_id)):
                continue
            print(format_report(msg, args.tick))
            if isinstance(msg, p.Accepted):
                order_id = msg.order_id
                settle_at = time.monotonic() + REST_GRACE_S if rests else None
            elif isinstance(msg, p.Rejected):
                return 1
            elif isinstance(msg, p.Cancelled) or (isinstance(msg, p.Executed) and msg.leaves == 0):
                return 0
            elif isinstance(msg, p.Executed) and rests:
                settle_at = time.monotonic() + REST_GRACE_S

    return _run_order_entry("order", args, body)


def cmd_cancel(args: argparse.Namespace) -> int:
    import time

    from gateway import protocol as p
    from gateway.client import format_report

    def body(c: Any) -> int:
        c.cancel(args.order_id)
        deadline = time.monotonic() + args.timeout
        while (msg := c.recv(max(deadline - time.monotonic(), 0.0))) is not None:
            if isinstance(msg, p.ProtocolError):
                print(f"cx cancel: {format_report(msg)}", file=sys.stderr)
                return 1
            if not c.is_resend(msg) and isinstance(msg, p.Cancelled | p.CancelRejected) \
                    and msg.order_id == args.order_id:
                print(format_report(msg, args.tick))
                return 0 if isinstance(msg, p.Cancelled) else 1
        print(f"cancel of order {args.order_id} sent; no report on session {c.session!r} within {args.timeout:g}s "
              "(the report goes to the session that entered the order: pass its --session)")
        return 0

    return _run_order_entry("cancel", args, body)


def cmd_orders(args: argparse.Namespace) -> int:
    import time

    def body(c: Any) -> int:
        deadline = time.monotonic() + args.timeout
        while not c.resend_complete():
            if c.recv(max(deadline - time.monotonic(), 0.0)) is None and time.monotonic() >= deadline:
                print(f"cx orders: the session history did not arrive within {args.timeout:g}s", file=sys.stderr)
                return 1
        orders = c.open_orders(args.symbol)
        print(f"{c.firm} session {c.session!r}: {len(orders)} open order{'' if len(orders) == 1 else 's'} "
              f"({c.last_seq} messages of history)")
        if orders:
            width = max(len(o.symbol) for o in orders)
            print(f"  {'order':>8} {'side':<4} {'open':>7} {'symbol':<{width}} {'price':>9} {'filled':>7}  client id")
            for o in orders:
                print(f"  {o.order_id:>8} {o.side.name:<4} {format_qty(o.leaves):>7} {o.symbol:<{width}} "
                      f"{format_price(o.price, args.tick):>9} {format_qty(o.cum):>7}  {o.client_order_id}")
        return 0

    return _run_order_entry("orders", args, body)


def _order_entry_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5555", help="gateway order entry (default %(default)s)")
    p.add_argument("--firm", default="DEMO", help="the firm (plain text), or whose keys --keys holds (default DEMO)")
    p.add_argument("--session", default=CLI_SESSION, help="session name (default %(default)s)")
    p.add_argument("--keys", metavar="DIR", help="CurveZMQ: DIR/FIRM.key_secret (from `cx keys new FIRM`)")
    p.add_argument("--server-key", metavar="FILE", help="the gateway's public key (default DIR/gateway.key)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the reports (default 5)")
    add_wait_argument(p)
    p.add_argument("--tick", default="0.001", help="dollars per tick of the listing (default 0.001)")


def _add_order_entry(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("order", help="send one order to the gateway and print its execution reports",
                       description="Send a NewOrder (price in dollars) and print the reports until the order is "
                                   "final or rests. Example: cx order buy H100.US-EAST.FIRM.2026-12-01T14 10 @ "
                                   "2.450 --ioc")
    p.add_argument("side", type=str.lower, choices=("buy", "sell"))
    p.add_argument("symbol", metavar="SYMBOL")
    p.add_argument("qty", metavar="QTY", help="GPUs")
    p.add_argument("price", nargs="*", metavar="@ PRICE", help="limit in dollars per GPU-hour (none with --market)")
    tif = p.add_mutually_exclusive_group()
    tif.add_argument("--ioc", action="store_true", help="immediate or cancel")
    tif.add_argument("--fok", action="store_true", help="fill or kill")
    tif.add_argument("--gtd", metavar="TIME", help="good till TIME: 2026-12-01T13:30Z (UTC), +30m, or ns")
    p.add_argument("--post-only", action="store_true", help="reject rather than take liquidity")
    p.add_argument("--market", action="store_true", help="market order (IOC unless --fok)")
    p.add_argument("--client-id", type=int, help="client order id (default: time-based, unique)")
    _order_entry_options(p)
    p.set_defaults(func=cmd_order)

    p = sub.add_parser("cancel", help="cancel one order by its order id",
                       description="Cancel an order of the firm and print the report (sent to the session that "
                                   "entered the order).")
    p.add_argument("order_id", type=int, metavar="ORDER_ID")
    _order_entry_options(p)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("orders", help="list the open orders of a session",
                       description="Log on with next_seq=1, rebuild the open orders from the session's history, "
                                   "print them. Lists the orders entered on that session name only.")
    p.add_argument("--symbol", help="only this instrument")
    _order_entry_options(p)
    p.set_defaults(func=cmd_orders)


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
    _add_replay(sub)
    _add_order_entry(sub)
    from feeds.cli import add_feed_command
    from feeds.web import add_web_command
    from gateway import admin_cli, package_cli, positions, simulate, top
    from gateway.venue import add_commands  # serve, keys, schema

    add_commands(sub)
    add_feed_command(sub)
    add_web_command(sub)
    simulate.add_command(sub)
    admin_cli.add_commands(sub)  # admin, status
    package_cli.add_command(sub)
    positions.add_command(sub)
    top.add_command(sub)
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
