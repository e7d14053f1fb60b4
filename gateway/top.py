"""``cx top``: a terminal dashboard of the running venue, redrawn in place (plain ANSI escapes, no curses).

Sources: the public feed (a ``FeedClient`` over every instrument: books,
trades, statuses) and, when reachable, the gateway's admin ``status``
(sessions, live orders, gateway traffic). A frame shows:

* a header: time, uptime of the dashboard, the feed's state;
* the venue line (admin): instruments open / halted, sessions, live orders,
  and the gateway's messages/s and trades/s between the last two samples;
* the feed line: messages and trades seen, their rates, GPU-hours traded
  since the dashboard started (the feed has no history of earlier trades);
* the auction line (from the feed's AUCTION channel and auction prices): the
  last auction's number, status, surplus, packages accepted, solve time and
  its largest clearing volumes, and the prices of a newer indicative run
  ("no auction yet" before the first), led by the countdown to the next
  scheduled auction when the admin status gives it;
* one row per active instrument (a non-empty book or a trade seen), most
  traded first: status, best bid and ask with their sizes, last price,
  trades and volume since start; as many rows as ``--rows`` (default: what
  fits the terminal).

``--once`` prints one frame without escapes once the feed is synced, and
exits (exit status 1 if no snapshot arrives within ``--timeout``).

Cost per frame: O(instruments) to pick the rows and the auction prices plus O(rows log rows); the
feed costs O(1) per message; one admin round trip per refresh (its timeout
bounds the wait when the gateway is gone).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections import Counter

from engine.codes import InstrumentStatus
from feeds import protocol as fp
from feeds.cli import format_auction_status, format_solve_time
from feeds.client import FeedClient
from gateway.admin_cli import DEFAULT_ADMIN, AdminUnreachable, admin_request, rates
from gateway.admin_protocol import AdminRequest, VenueStatus
from gateway.units import format_elapsed, format_notional, format_price, format_qty, format_ts
from gateway.waiting import add_wait_argument, wait_synced

HOME, CLEAR_LINE, CLEAR_BELOW = "\x1b[H", "\x1b[K", "\x1b[J"
HIDE_CURSOR, SHOW_CURSOR, CLEAR_SCREEN = "\x1b[?25l", "\x1b[?25h", "\x1b[2J"
HEADER_LINES = 7  # lines above the instrument rows
AUCTION_PRICES = 3  # clearing prices on the auction line


class Dashboard:
    """What ``cx top`` shows, kept from the feed's updates and the admin samples."""

    def __init__(self, feed: FeedClient, admin: str | None, admin_timeout: float, tick: str):
        self.feed, self.admin, self.admin_timeout, self.tick = feed, admin, admin_timeout, tick
        feed.on_update = self.on_update
        self.started = time.monotonic()
        self.trades: Counter[str] = Counter()
        self.volume: Counter[str] = Counter()
        self.status: VenueStatus | None = None
        self.admin_error = ""
        self.gateway_rates: dict[str, float] | None = None
        self.feed_rates: dict[str, float] | None = None
        self._last_sample: tuple[float, int, int] | None = None  # (monotonic, feed messages, trades)

    def on_update(self, msg) -> None:
        if type(msg) is fp.Trade:
            self.trades[msg.symbol] += 1
            self.volume[msg.symbol] += msg.qty

    def sample(self) -> None:
        """Ask the admin for the status; update the rates since the previous sample."""
        now = time.monotonic()
        applied, trades = self.feed.stats["applied"], sum(self.trades.values())
        if self._last_sample is not None and now > self._last_sample[0]:
            then, applied_then, trades_then = self._last_sample
            self.feed_rates = {"msgs": (applied - applied_then) / (now - then),
                               "trades": (trades - trades_then) / (now - then)}
        self._last_sample = (now, applied, trades)
        if self.admin is None:
            return
        try:
            status = admin_request(self.admin, AdminRequest("status"), self.admin_timeout).status
        except AdminUnreachable as exc:
            self.status, self.gateway_rates, self.admin_error = None, None, str(exc)
            return
        if self.status is not None and status is not None and status.clock_ns > self.status.clock_ns:
            self.gateway_rates = rates(self.status, status, (status.clock_ns - self.status.clock_ns) / 1e9)
        self.status, self.admin_error = status, ""

    def auction_line(self) -> str:
        """The last auction: number, status, surplus, packages, solve time, its ``AUCTION_PRICES`` largest volumes;
        then the prices of an indicative run newer than it."""
        feed = self.feed
        final, indicative = feed.auction_result(), feed.auction_result(indicative=True)
        st = self.status
        due = f"next in {max(0, st.next_auction_ns - st.clock_ns) / 1e9:.0f}s; " if st and st.next_auction_ns else ""
        if final is None and indicative is None:
            return f"auction  {due}no auction yet"
        parts = [due.rstrip("; ")] if due else []
        if final is not None:
            status = format_auction_status(final.status).lower()
            parts.append(f"#{final.auction} {status}, surplus ${format_notional(final.surplus, 1, self.tick)}, "
                         f"{final.accepted} packages accepted, {final.not_accepted} not, "
                         f"{format_solve_time(final.solve_us)}; " + self._prices(final.auction, False))
        if indicative is not None and (final is None or indicative.auction > final.auction):
            parts.append(f"indicative #{indicative.auction}: " + self._prices(indicative.auction, True))
        return "auction  " + "   ".join(parts)

    def _prices(self, auction: int, indicative: bool) -> str:
        prices = [m for m in self.feed.auction_prices(indicative).values() if m.auction == auction and m.qty]
        prices.sort(key=lambda m: (-m.qty, m.symbol))
        shown = ", ".join(f"{m.symbol} {self._px(m.price)} x {format_qty(m.qty)}" for m in prices[:AUCTION_PRICES])
        more = f" and {len(prices) - AUCTION_PRICES} more" if len(prices) > AUCTION_PRICES else ""
        return (shown + more) if prices else "nothing traded"

    def venue_line(self) -> str:
        st = self.status
        if st is None:
            return f"venue    {self.admin_error or 'admin not asked (--admin none)'}"
        line = (f"venue    {st.instruments.get('OPEN', 0)} open, {st.instruments.get('HALTED', 0)} halted of "
                f"{sum(st.instruments.values())}; {st.sessions} sessions ({st.connected} connected), "
                f"{st.live_orders:,} live orders, suspended: {', '.join(st.suspended) or 'none'}")
        if self.gateway_rates is not None:
            line += "; gateway " + ", ".join(f"{v:,.1f} {k}/s" for k, v in self.gateway_rates.items())
        return line

    def rows(self, limit: int) -> list[str]:
        """The most traded instruments first, then the other non-empty books, at most ``limit``."""
        active = [(s, b) for s, b in self.feed.books.items() if self.trades[s] or b.levels[0] or b.levels[1]]
        active.sort(key=lambda sb: (-self.volume[sb[0]], sb[0]))
        if not active:
            return ["(no orders in any book yet)"]
        width = max(len(s) for s, _ in active[:limit])
        px = self._px
        out = [f"{'instrument':<{width}} {'status':<8} {'bid qty':>8} {'bid':>9} {'ask':>9} {'ask qty':>8} "
               f"{'last':>9} {'trades':>7} {'GPU-h':>8}"]
        for symbol, b in active[:limit]:
            bid_price, bid_qty, _, ask_price, ask_qty, _ = b.top
            status = InstrumentStatus(b.status).name if 0 <= b.status <= 3 else str(b.status)
            last = b.last_trade.price if b.last_trade is not None else 0
            out.append(f"{symbol:<{width}} {status:<8} {format_qty(bid_qty) if bid_price else '':>8} "
                       f"{px(bid_price):>9} {px(ask_price):>9} {format_qty(ask_qty) if ask_price else '':>8} "
                       f"{px(last):>9} {self.trades[symbol]:>7,} {format_qty(self.volume[symbol]):>8}")
        if len(active) > limit:
            out.append(f"... and {len(active) - limit} more active instruments")
        return out

    def _px(self, ticks: int) -> str:
        return format_price(ticks, self.tick) if ticks else "-"

    def frame(self, rows: int) -> list[str]:
        f = self.feed
        state = "dead (no data)" if f.dead else "synced" if f.synced else "syncing"
        rate = "" if self.feed_rates is None else " (" + ", ".join(
            f"{v:,.1f} {k}/s" for k, v in self.feed_rates.items()) + ")"
        up = format_elapsed(int((time.monotonic() - self.started) * 1e9))
        return [f"cx top  {format_ts(time.time_ns())}  up {up}  feed {state}, {len(f.books)} instruments",
                self.venue_line(),
                f"feed     {f.stats['applied']:,} messages, {sum(self.trades.values()):,} trades, "
                f"{format_qty(sum(self.volume.values()))} GPU-h traded since start{rate}",
                self.auction_line(),
                "",
                *self.rows(rows)]


def screen(lines: list[str], columns: int) -> str:
    """One frame for a terminal ``columns`` wide: from the top left, each line cut (never wrapped) to fit and
    cleared to its end, no newline after the last (either would scroll the header off), the rest cleared."""
    return HOME + "\n".join(line[: columns - 1] + CLEAR_LINE for line in lines) + CLEAR_BELOW


def cmd_top(args: argparse.Namespace) -> int:
    out = sys.stdout
    feed = FeedClient(args.feed, args.snapshots).connect()
    board = Dashboard(feed, None if args.admin == "none" else args.admin, args.admin_timeout, args.tick)
    try:
        if not wait_synced(feed, "cx top", args.venue_timeout):
            print(f"cx top: no market-data snapshot from {args.snapshots} within {args.venue_timeout:g}s",
                  file=sys.stderr)
            return 1
        board.sample()
        if args.once:
            print("\n".join(board.frame(args.rows or 40)), file=out, flush=True)
            return 0
        out.write(HIDE_CURSOR + CLEAR_SCREEN)
        while True:
            size = shutil.get_terminal_size()
            rows = args.rows or max(size.lines - HEADER_LINES, 1)
            out.write(screen(board.frame(rows), size.columns))
            out.flush()
            until = time.monotonic() + args.interval
            while (left := until - time.monotonic()) > 0:
                feed.poll(max(int(left * 1000), 1))
            board.sample()
    except KeyboardInterrupt:
        return 0
    finally:
        if not args.once:
            out.write(SHOW_CURSOR)
            out.flush()
        feed.close()


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("top", help="a live terminal dashboard of the venue (books, trades, rates)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--feed", default="tcp://127.0.0.1:5556", help="market data (default %(default)s)")
    p.add_argument("--snapshots", default="tcp://127.0.0.1:5557", help="snapshot service (default %(default)s)")
    p.add_argument("--admin", default=DEFAULT_ADMIN, help="the gateway's admin endpoint, or 'none' "
                                                          "(default %(default)s)")
    p.add_argument("--admin-timeout", type=float, default=0.5, help="seconds to wait for the admin (default 0.5)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between frames (default 1)")
    p.add_argument("--rows", type=int, default=0, help="instrument rows (default: what fits the terminal)")
    p.add_argument("--once", action="store_true", help="print one frame (no escapes) and exit")
    add_wait_argument(p, "--timeout")
    p.add_argument("--tick", default="0.001", help="dollars per tick of the listing (default 0.001)")
    p.set_defaults(func=cmd_top)
