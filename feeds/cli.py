"""``cx feed SYMBOL``: watch one instrument's market data (snapshot, then updates) in a terminal.

Hook for ``gateway.cli``: ``add_feed_command(sub)`` adds the sub-command to an
argparse sub-parser set; ``cmd_feed(args)`` runs it. The command connects a
``feeds.client.FeedClient`` (so it resyncs by itself after a gap), prints the
book once it is synced (with the instrument's last auction price and, if
newer, its indicative price), then one line per trade, level change, status
change and auction price, and the book again every ``--book-every`` seconds.
``--tape`` also follows the AUCTION channel: the last auction result first,
then one line per result (final or indicative); without a SYMBOL it shows only
that. It stops after ``--seconds`` (0: until Ctrl-C) or, with ``--once``, as
soon as the first book (or result) is printed. Exit status 1 if no snapshot
arrives within ``--timeout``. Prices print in dollars (``--tick`` dollars per
tick), quantities in GPUs; ``format_auction_result`` is also ``cx top``'s.
"""

from __future__ import annotations

import argparse
import sys
import time
from enum import IntEnum
from typing import TextIO

from engine.codes import AuctionStatus, InstrumentStatus
from feeds import protocol as fp
from feeds.client import FeedClient, LocalBook
from gateway.units import format_notional, format_price, format_qty
from gateway.waiting import add_wait_argument, wait_synced

SIDE = ("BID", "ASK")


def format_book(book: LocalBook, levels: int, tick: str, l3: bool = False) -> str:
    """The top ``levels`` of each side, asks above bids, as a small table."""
    bids, asks = book.depth(levels)
    lines = [f"{book.symbol}  seq {book.seq}  status {code_name(InstrumentStatus, book.status)}"]
    lines.append(f"  {'side':<4} {'price':>10} {'qty':>8} {'orders':>6}")
    for price, qty, count in reversed(asks):
        lines.append(f"  {'ASK':<4} {format_price(price, tick):>10} {format_qty(qty):>8} {count:>6}")
    for price, qty, count in bids:
        lines.append(f"  {'BID':<4} {format_price(price, tick):>10} {format_qty(qty):>8} {count:>6}")
    if not bids and not asks:
        lines.append("  (empty book)")
    for m in (book.auction, book.indicative):
        if m is not None and (m is book.auction or book.auction is None or m.auction > book.auction.auction):
            lines.append("  " + format_auction_price(m, tick))
    if l3:
        for side in (1, 0):
            for oid, price, qty in book.queue(side)[: levels * 5]:
                lines.append(f"    {SIDE[side]} order {oid:>8} {format_price(price, tick):>10} {format_qty(qty):>8}")
    return "\n".join(lines)


def format_auction_price(m: fp.AuctionPrice, tick: str) -> str:
    kind = "INDICATIVE" if m.indicative else "AUCTION"
    return f"{kind} #{m.auction} {format_price(m.price, tick)} ({format_qty(m.qty)} GPUs)"


def format_solve_time(us: int) -> str:
    return f"{us / 1000:,.1f} ms" if us else "solve time unknown"


def code_name(codes: type[IntEnum], value: int) -> str:
    """The name of an ``engine.codes`` value (``OPEN``), or the number of a code this version does not know."""
    try:
        return codes(value).name
    except ValueError:
        return f"{codes.__name__} {value}"


def format_auction_status(status: int) -> str:
    """``engine.codes.AuctionStatus``: OPTIMAL, FEASIBLE (a code it does not know as a number)."""
    return code_name(AuctionStatus, status)


def format_auction_result(m: fp.AuctionResult, tick: str) -> str:
    """One line: number, kind, status, surplus, packages accepted / not, losses, gap, solve time."""
    return (f"{'INDICATIVE' if m.indicative else 'AUCTION'} #{m.auction} {format_auction_status(m.status)}: surplus "
            f"${format_notional(m.surplus, 1, tick)}, {m.accepted} packages accepted, {m.not_accepted} not, "
            f"{m.paradoxically_rejected} paradoxically rejected, ${format_notional(m.ir_cost, 1, tick)} lost to "
            f"individual rationality, gap {m.gap_ppm} ppm, {format_solve_time(m.solve_us)}")


def format_update(m, tick: str) -> str | None:
    """One line for a trade, level update, status change or auction message; None for the rest."""
    if isinstance(m, fp.Trade):
        return f"TRADE  {format_qty(m.qty)} @ {format_price(m.price, tick)} (aggressor {SIDE[m.side]}) #{m.trade_id}"
    if isinstance(m, fp.LevelUpdate):
        return f"LEVEL  {SIDE[m.side]} {format_price(m.price, tick)} -> {format_qty(m.qty)} ({m.count} orders)"
    if isinstance(m, fp.InstrumentStatus):
        return f"STATUS {code_name(InstrumentStatus, m.status)}"
    if isinstance(m, fp.AuctionPrice):
        return format_auction_price(m, tick)
    if isinstance(m, fp.AuctionResult):
        return format_auction_result(m, tick)
    return None


def cmd_feed(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    if args.symbol is None and not args.tape:
        print("cx feed: name a SYMBOL, or --tape for the auction results", file=sys.stderr)
        return 2
    updates: list = []
    channels = [c for c in (args.symbol, fp.AUCTION_SYMBOL if args.tape else None) if c is not None]
    client = FeedClient(args.endpoint, args.snapshot_endpoint, channels, on_update=updates.append,
                        heartbeat_timeout_s=args.heartbeat_timeout)
    client.connect()

    def show() -> None:
        if args.symbol is not None and client.book(args.symbol) is not None:
            print(format_book(client.book(args.symbol), args.levels, args.tick, args.l3), file=out, flush=True)

    try:
        if not wait_synced(client, "cx feed", args.venue_timeout):
            print(f"cx feed: no snapshot of {', '.join(channels)} within {args.venue_timeout:g}s", file=sys.stderr)
            return 1
        show()
        if args.tape:
            last = [r for r in (client.auction_result(), client.auction_result(indicative=True)) if r is not None]
            for r in sorted(last, key=lambda r: r.seq):
                print("last " + format_auction_result(r, args.tick), file=out, flush=True)
            if not last:
                print("no auction yet", file=out, flush=True)
        if args.once:
            return 0
        end = time.monotonic() + args.seconds if args.seconds > 0 else None
        next_book = time.monotonic() + args.book_every
        resyncs, restarts = client.stats["resyncs"], client.stats["publisher_restarts"]
        while end is None or time.monotonic() < end:
            client.poll(100)
            for m in updates:
                line = format_update(m, args.tick)
                if line:
                    print(line, file=out, flush=True)
            updates.clear()
            if client.stats["resyncs"] != resyncs:
                resyncs = client.stats["resyncs"]
                print("(gap: resynchronising from a snapshot)", file=out, flush=True)
            if client.stats["publisher_restarts"] != restarts:
                restarts = client.stats["publisher_restarts"]
                print("(the publisher restarted: resynchronising from a snapshot)", file=out, flush=True)
            if time.monotonic() >= next_book:
                show()
                next_book = time.monotonic() + args.book_every
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


def add_feed_command(sub) -> argparse.ArgumentParser:
    """Add ``feed`` to an argparse sub-parser set (``parser.add_subparsers(...)``)."""
    p = sub.add_parser("feed", help="watch one instrument's market data (book, trades, levels, auction prices)",
                       description=__doc__.splitlines()[0])
    p.add_argument("symbol", nargs="?", help="e.g. H100.US-EAST.FIRM.2026-12-01T14 (optional with --tape)")
    p.add_argument("--tape", action="store_true", help="also print the call auction's results")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="feed PUB endpoint (default %(default)s)")
    p.add_argument("--snapshot-endpoint", default="tcp://127.0.0.1:5557",
                   help="snapshot service (default %(default)s)")
    p.add_argument("--levels", type=int, default=5, help="levels per side to print (default 5)")
    p.add_argument("--l3", action="store_true", help="print the order queues too")
    p.add_argument("--once", action="store_true", help="print the book (and last auction) once and exit")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default 0: until Ctrl-C)")
    p.add_argument("--book-every", type=float, default=10.0, help="print the book every S seconds (default 10)")
    add_wait_argument(p, "--timeout")
    p.add_argument("--heartbeat-timeout", type=float, default=3.0, help="feed silent this long = dead (default 3)")
    p.add_argument("--tick", default="0.001", help="dollars per tick of the listing (default 0.001)")
    p.set_defaults(func=cmd_feed)
    return p
