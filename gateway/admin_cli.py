"""Operator commands over the gateway's admin socket: ``cx admin halt|resume SYMBOL``, ``cx admin kill|release
FIRM``, ``cx admin auction now|indicative`` and ``cx status``.

Each command sends one ``AdminRequest`` (``gateway.admin_protocol``) from a
DEALER to the admin endpoint (loopback only; default tcp://127.0.0.1:5558)
and waits at most ``--venue-timeout`` seconds (default 120, ``gateway.waiting``) for the ``AdminReply``,
saying that it waits: the command waits for a venue that is starting, and never hangs on one that is not there.

``cx status`` prints a readable summary of the ``VenueStatus`` in the reply
(instruments listed / open / halted, firms, sessions, live orders, traffic,
trades, the journal's position). With ``--interval S`` > 0 it asks twice, S
seconds apart, and adds the rates (messages, commands and trades per second)
over that interval.

``cx admin auction now`` runs one call auction at once (``indicative``: prices
only, nothing filled) and prints its summary: number, status, packages
accepted and not, surplus, and the price and volume of every instrument that
traded (the answer comes once the auction has cleared: the solver's time
limit, 2 s by default, is within the default ``--venue-timeout``).

Exit status: 0 done, 1 refused by the venue (unknown symbol or firm, an
instrument that is not open), 2 bad usage or no answer. Cost: one round trip
per request; the venue's side of ``status`` is O(instruments).
"""

from __future__ import annotations

import argparse
import sys
import time

import zmq

from feeds.cli import format_auction_status, format_solve_time
from gateway.admin_protocol import AdminReply, AdminRequest, AuctionSummary, VenueStatus, admin_encoder, reply_decoder
from gateway.units import format_notional, format_price, format_qty, format_ts
from gateway.waiting import add_wait_argument, wait_for

DEFAULT_ADMIN = "tcp://127.0.0.1:5558"
HALTED_SHOWN = 8  # halted symbols listed by name at most


class AdminUnreachable(Exception):
    """No (decodable) answer from the admin endpoint within the timeout."""


def admin_request(endpoint: str, request: AdminRequest, timeout: float, tool: str | None = None) -> AdminReply:
    """One request, its reply; ``AdminUnreachable`` after ``timeout`` s without one.

    With ``tool`` (``cx status``), it says on standard error that it is waiting (``gateway.waiting``) while
    the venue does not answer. The request is sent once: ZeroMQ delivers it when the venue comes up."""
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(admin_encoder.encode(request))
        if tool is None:
            answered = sock.poll(int(timeout * 1000))
        else:
            answered = wait_for(lambda s: sock.poll(int(s * 1000)) or None, tool, f"the admin endpoint {endpoint}",
                                timeout)
        if not answered:
            raise AdminUnreachable(f"no answer from {endpoint} within {timeout:g}s (is `cx serve` running?)")
        return reply_decoder.decode(sock.recv())
    except zmq.ZMQError as exc:
        raise AdminUnreachable(f"{endpoint}: {exc}") from exc
    finally:
        sock.close(linger=0)


def rates(before: VenueStatus, after: VenueStatus, seconds: float) -> dict[str, float]:
    """Per second over ``seconds``: gateway frames received, engine commands, trades."""
    return {name: (after.stats.get(key, 0) - before.stats.get(key, 0)) / seconds
            for name, key in (("msgs", "frames"), ("commands", "commands"), ("trades", "trades"))}


def format_status(st: VenueStatus, per_second: dict[str, float] | None = None) -> str:
    """The status as a few aligned lines."""
    listed = sum(st.instruments.values())
    counts = ", ".join(f"{st.instruments.get(name, 0)} {name.lower().replace('_', '-')}"
                       for name in ("OPEN", "HALTED", "PRE_OPEN", "CLOSED"))
    lines = [f"venue at {format_ts(st.clock_ns)}",
             f"  instruments  {listed} listed: {counts}"]
    if st.halted:
        more = f" and {len(st.halted) - HALTED_SHOWN} more" if len(st.halted) > HALTED_SHOWN else ""
        lines.append(f"  halted       {', '.join(st.halted[:HALTED_SHOWN])}{more}")
    lines.append(f"  firms        {len(st.firms)} configured; suspended: {', '.join(st.suspended) or 'none'}")
    lines.append(f"  sessions     {st.sessions} ({st.connected} connected), {st.live_orders} live orders, "
                 f"{st.live_packages} live packages")
    trades = (f"{st.stats['trades']:,} trades ({format_qty(st.stats.get('traded_qty', 0))} GPU-h)"
              if "trades" in st.stats else "trades not counted by this gateway")
    lines.append(f"  traffic      {st.stats.get('frames', 0):,} messages in, {st.stats.get('commands', 0):,} "
                 f"commands, {st.stats.get('gateway_rejects', 0):,} gateway rejects; {trades}")
    if per_second is not None:
        lines.append("  rates        " + ", ".join(f"{v:,.1f} {k}/s" for k, v in per_second.items()))
    lines.append(f"  journal      {f'command {st.journal_seq:,}' if st.journal_seq >= 0 else 'none'}")
    return "\n".join(lines)


def cmd_admin(args: argparse.Namespace) -> int:
    if args.action == "auction":
        target = {"indicative": args.target == "indicative"}
    else:
        target = {"symbol": args.target} if args.action in ("halt", "resume") else {"firm": args.target}
    try:
        reply = admin_request(args.admin, AdminRequest(args.action, **target), args.venue_timeout, "cx admin")
    except AdminUnreachable as exc:
        print(f"cx admin: {exc}", file=sys.stderr)
        return 2
    if reply.auction is None:
        print(reply.text, file=sys.stdout if reply.ok else sys.stderr)
    else:
        print(format_auction_summary(reply.auction, args.tick))
    return 0 if reply.ok else 1


def format_auction_summary(a: AuctionSummary, tick: str) -> str:
    """An auction's summary in dollars (as ``cx top`` and ``cx web`` show it), then its traded hours."""
    volume = sum(v for _, _, v in a.traded)
    lines = [f"auction {a.auction}{' (indicative)' if a.indicative else ''}: {format_auction_status(a.status).lower()} "
             f"(gap {a.gap_ppm} ppm), {a.accepted} packages accepted, {a.not_accepted} not "
             f"({a.paradoxically_rejected} paradoxically rejected), surplus ${format_notional(a.surplus, 1, tick)} "
             f"(individual rationality cost ${format_notional(a.ir_cost, 1, tick)}), {len(a.traded)} instruments "
             f"traded, {format_qty(volume)} GPU-h, {format_solve_time(a.solve_us)}"]
    width = max((len(s) for s, _, _ in a.traded), default=0)
    lines += [f"  {symbol:<{width}} {format_price(price, tick):>9} {format_qty(v):>7} GPUs"
              for symbol, price, v in a.traded]
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    try:
        first = admin_request(args.admin, AdminRequest("status"), args.venue_timeout, "cx status")
        if first.status is None:  # an older gateway: its one-line summary
            print(first.text)
            return 0
        per_second = None
        if args.interval > 0:
            start = time.monotonic()
            time.sleep(args.interval)
            second = admin_request(args.admin, AdminRequest("status"), args.venue_timeout, "cx status")
            per_second = rates(first.status, second.status, time.monotonic() - start)
            first = second
    except AdminUnreachable as exc:
        print(f"cx status: {exc}", file=sys.stderr)
        return 2
    print(format_status(first.status, per_second))
    return 0


def _admin_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--admin", default=DEFAULT_ADMIN, help="the gateway's admin endpoint (default %(default)s)")
    add_wait_argument(p, "--timeout")
    p.add_argument("--tick", default="0.001", help="dollars per tick of the listing (default 0.001)")


def add_commands(sub: argparse._SubParsersAction) -> None:
    admin = sub.add_parser("admin", help="operator commands: halt/resume an instrument, kill/release a firm",
                           description="Send one operator command to the gateway's admin socket.")
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, target, text in (("halt", "SYMBOL", "halt trading in an instrument (resting orders stay)"),
                                 ("resume", "SYMBOL", "resume trading in a halted instrument"),
                                 ("kill", "FIRM", "cancel every order of a firm and refuse its new ones"),
                                 ("release", "FIRM", "let a killed firm trade again")):
        a = actions.add_parser(action, help=text, description=text)
        a.add_argument("target", metavar=target)
        _admin_options(a)
        a.set_defaults(func=cmd_admin)
    a = actions.add_parser("auction", help="run one call auction now (or indicative prices only)",
                           description="Run one call auction now and print its result.")
    a.add_argument("target", choices=("now", "indicative"), help="now: clear and fill; indicative: prices only")
    _admin_options(a)
    a.set_defaults(func=cmd_admin)
    s = sub.add_parser("status", help="a summary of the running venue (instruments, sessions, traffic, journal)",
                       description="Ask the gateway's admin socket for the venue's status and print it.")
    _admin_options(s)
    s.add_argument("--interval", type=float, default=1.0,
                   help="ask twice this many seconds apart to show rates (0: once, no rates; default 1)")
    s.set_defaults(func=cmd_status)
