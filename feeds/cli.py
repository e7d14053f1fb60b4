"""``cx feed SYMBOL``: watch one instrument's market data (snapshot, then updates) in a terminal.

Hook for ``gateway.cli``: ``add_feed_command(sub)`` adds the sub-command to an
argparse sub-parser set; ``cmd_feed(args)`` runs it. The command connects a
``feeds.client.FeedClient`` (so it resyncs by itself after a gap), prints the
book once it is synced, then one line per trade, level change and status
change, and the book again every ``--book-every`` seconds. It stops after
``--seconds`` (0: until Ctrl-C) or, with ``--once``, as soon as the first book
is printed. Exit status 1 if no snapshot arrives within ``--timeout``.
Prices print in dollars (``--tick`` dollars per tick), quantities in GPUs.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from feeds import protocol as fp
from feeds.client import FeedClient, LocalBook
from gateway.units import format_price, format_qty

SIDE = ("BID", "ASK")


def format_book(book: LocalBook, levels: int, tick: str, l3: bool = False) -> str:
    """The top ``levels`` of each side, asks above bids, as a small table."""
    bids, asks = book.depth(levels)
    lines = [f"{book.symbol}  seq {book.seq}  status {book.status}"]
    lines.append(f"  {'side':<4} {'price':>10} {'qty':>8} {'orders':>6}")
    for price, qty, count in reversed(asks):
        lines.append(f"  {'ASK':<4} {format_price(price, tick):>10} {format_qty(qty):>8} {count:>6}")
    for price, qty, count in bids:
        lines.append(f"  {'BID':<4} {format_price(price, tick):>10} {format_qty(qty):>8} {count:>6}")
    if not bids and not asks:
        lines.append("  (empty book)")
    if l3:
        for side in (1, 0):
            for oid, price, qty in book.queue(side)[: levels * 5]:
                lines.append(f"    {SIDE[side]} order {oid:>8} {format_price(price, tick):>10} {format_qty(qty):>8}")
    return "\n".join(lines)


def format_update(m, tick: str) -> str | None:
    """One line for a trade, level update or status change; None for the rest."""
    if isinstance(m, fp.Trade):
        return f"TRADE  {format_qty(m.qty)} @ {format_price(m.price, tick)} (aggressor {SIDE[m.side]}) #{m.trade_id}"
    if isinstance(m, fp.LevelUpdate):
        return f"LEVEL  {SIDE[m.side]} {format_price(m.price, tick)} -> {format_qty(m.qty)} ({m.count} orders)"
    if isinstance(m, fp.InstrumentStatus):
        return f"STATUS {m.status}"
    return None


def cmd_feed(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    updates: list = []
    client = FeedClient(args.endpoint, args.snapshot_endpoint, [args.symbol], on_update=updates.append,
                        heartbeat_timeout_s=args.heartbeat_timeout)
    client.connect()
    try:
        deadline = time.monotonic() + args.timeout
        while client.book(args.symbol) is None:
            if time.monotonic() > deadline:
                print(f"cx feed: no snapshot of {args.symbol} within {args.timeout:g}s", file=sys.stderr)
                return 1
            client.poll(50)
        book = client.book(args.symbol)
        print(format_book(book, args.levels, args.tick, args.l3), file=out, flush=True)
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
            if time.monotonic() >= next_book and client.book(args.symbol) is not None:
                print(format_book(client.book(args.symbol), args.levels, args.tick, args.l3), file=out, flush=True)
                next_book = time.monotonic() + args.book_every
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


def add_feed_command(sub) -> argparse.ArgumentParser:
    """Add ``feed`` to an argparse sub-parser set (``parser.add_subparsers(...)``)."""
    p = sub.add_parser("feed", help="watch one instrument's market data (book, trades, levels)",
                       description=__doc__.splitlines()[0])
    p.add_argument("symbol", help="e.g. H100.US-EAST.FIRM.2026-12-01T14")
    p.add_argument("--endpoint", default="tcp://127.0.0.1:5556", help="feed PUB endpoint (default %(default)s)")
    p.add_argument("--snapshot-endpoint", default="tcp://127.0.0.1:5557",
                   help="snapshot service (default %(default)s)")
    p.add_argument("--levels", type=int, default=5, help="levels per side to print (default 5)")
    p.add_argument("--l3", action="store_true", help="print the order queues too")
    p.add_argument("--once", action="store_true", help="print the book once and exit")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default 0: until Ctrl-C)")
    p.add_argument("--book-every", type=float, default=10.0, help="print the book every S seconds (default 10)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the snapshot (default 5)")
    p.add_argument("--heartbeat-timeout", type=float, default=3.0, help="feed silent this long = dead (default 3)")
    p.add_argument("--tick", default="0.001", help="dollars per tick of the listing (default 0.001)")
    p.set_defaults(func=cmd_feed)
    return p
