"""``cx package buy|sell|cancel``: packages of the call auction from the command line, in human units.

* ``cx package buy ACCEL --region R [--class C] --gpus N --hours H --window START/END --max PRICE
  [--or ACCEL ...]``: one package bid in block terms. Each block request asks for N GPUs for H
  uninterrupted hours starting within the window, paying at most PRICE dollars per GPU-hour;
  ``--or ACCEL`` starts another request of the same exclusive group (at most one is accepted),
  which inherits the region, service class and window of the request before it unless it gives
  its own (gpus, hours and max it must give). The gateway expands each request into one
  alternative per feasible start hour.
* ``cx package sell ACCEL --region R [--class C] --gpus N --hours H --start HOUR --min PRICE``:
  one package offer, N GPUs for H consecutive hours from HOUR, all or none, for at least PRICE
  dollars per GPU-hour.
* ``cx package cancel PACKAGE_ID``.

Hours are ``YYYY-MM-DDTHH`` (UTC), or any time ``cx order --gtd`` takes. The connection options
are those of ``cx order`` (``--endpoint``, ``--firm``, ``--session``, ``--keys``, ...): the
command logs on with cancel on disconnect off, so the package outlives it. It prints the
package's reports (``gateway.client.format_report``, dollars); ``--wait`` then waits, at most
``--wait-timeout`` seconds, for the outcome of the next auction (``PackageExecuted`` legs or
``PackageNotFilled``). Exit status: 0 accepted (and with ``--wait``: an outcome came), 1 rejected
or no answer in time, 2 usage, logon or connection error. Cost: one round trip, then the wait.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from engine.codes import TimeInForce
from engine.instruments import parse_hour
from gateway.units import format_price, format_qty, format_ts, parse_price, parse_qty

BLOCK_FIELDS = ("region", "service_class", "gpus", "hours", "window", "price")
INHERITED = ("region", "service_class", "window")  # a --or request takes these from the one before
DEFAULT_WAIT_S = 120.0


class _BlockField(argparse.Action):
    """Stores its value in the block request being described (the last ``--or`` started a new one)."""

    def __call__(self, parser, namespace, values, option_string=None):
        blocks = namespace.blocks if namespace.blocks is not None else [{}]
        namespace.blocks = blocks
        if self.dest == "accelerator":  # --or ACCEL: a new request
            blocks.append({"accelerator": values})
            return
        if self.dest in blocks[-1]:
            parser.error(f"{option_string} given twice for one block request (use --or to start another)")
        blocks[-1][self.dest] = values


def _time(text: str) -> int:
    """``YYYY-MM-DDTHH`` (UTC), or what ``cx order --gtd`` takes (ISO time, +30m, ns)."""
    from gateway.cli import _parse_time

    try:
        return parse_hour(text)
    except ValueError:
        return _parse_time(text)


def _window(text: str) -> tuple[int, int]:
    start, sep, end = text.partition("/")
    if not sep:
        raise ValueError(f"--window {text!r}: expected START/END, e.g. 2026-12-01T08/2026-12-01T20")
    return _time(start), _time(end)


def block_requests(accelerator: str, blocks: list[dict], tick: str) -> list:
    """The ``gateway.protocol.BlockRequest``s a ``buy`` command line describes. ``ValueError`` if one is
    incomplete or a value is malformed."""
    from gateway.protocol import BlockRequest

    out = []
    previous: dict = {}
    for k, given in enumerate(blocks):
        b = {f: previous[f] for f in INHERITED if f in previous} | given
        b.setdefault("accelerator", accelerator)
        b.setdefault("service_class", "FIRM")
        which = f"block request {k + 1} ({b['accelerator']})"
        missing = [f"--{f.replace('price', 'max')}" for f in ("region", "gpus", "hours", "window", "price")
                   if f not in b]
        if missing:
            raise ValueError(f"{which} needs {', '.join(missing)}")
        start, end = _window(b["window"])
        out.append(BlockRequest(b["accelerator"], b["region"], parse_qty(b["gpus"]), parse_qty(b["hours"]), start, end,
                                parse_price(b["price"], tick), b["service_class"]))
        previous = b
    return out


def _describe_request(r: Any, tick: str) -> str:
    return (f"{r.accelerator}.{r.region}.{r.service_class} {format_qty(r.gpus)} GPUs x {r.hours} h within "
            f"{format_ts(r.window_start)[:16]}/{format_ts(r.window_end)[:16]} at most "
            f"{format_price(r.max_price, tick)}/GPU-h")


def _await_outcome(c: Any, args: argparse.Namespace, cid: int, name: str) -> int:
    """Print the package's answer; with --wait, then its next auction outcome. The exit status."""
    from gateway import protocol as p
    from gateway.client import format_report

    deadline = time.monotonic() + args.timeout
    package_id = None
    while (msg := c.recv(max(deadline - time.monotonic(), 0.0))) is not None:
        if isinstance(msg, p.ProtocolError):
            print(f"cx package {name}: {format_report(msg)}", file=sys.stderr)
            return 1
        if c.is_resend(msg):
            continue
        if package_id is None:
            if isinstance(msg, p.PackageAccepted | p.PackageRejected) and msg.client_order_id == cid:
                print(format_report(msg, args.tick))
                if isinstance(msg, p.PackageRejected):
                    return 1
                if not args.wait:
                    return 0
                package_id = msg.package_id
                deadline = time.monotonic() + args.wait_timeout
            continue
        if getattr(msg, "package_id", None) != package_id:
            continue
        print(format_report(msg, args.tick))
        if isinstance(msg, p.PackageNotFilled | p.PackageCancelled) or (isinstance(msg, p.PackageExecuted)
                                                                        and msg.last):
            return 0
    what = "answer" if package_id is None else "auction outcome"
    print(f"cx package {name}: no {what} within {args.timeout if package_id is None else args.wait_timeout:g}s",
          file=sys.stderr)
    return 1


def cmd_package_buy(args: argparse.Namespace) -> int:
    from gateway.cli import _parse_time, _run_order_entry

    try:
        requests = block_requests(args.accelerator, args.blocks or [{}], args.tick)
        expire_ts = _parse_time(args.gtd) if args.gtd else 0
    except ValueError as exc:
        print(f"cx package buy: {exc}", file=sys.stderr)
        return 2

    def body(c: Any) -> int:
        cid = c.send_block_package(requests, tif=TimeInForce.GTD if args.gtd else TimeInForce.GTC,
                                   expire_ts=expire_ts, client_order_id=args.client_id)
        print(f"{c.firm} session {c.session!r}: BUY package (client id {cid}): "
              + "\n  or ".join(_describe_request(r, args.tick) for r in requests))
        return _await_outcome(c, args, cid, "buy")

    return _run_order_entry("package buy", args, body)


def cmd_package_sell(args: argparse.Namespace) -> int:
    from gateway.cli import _parse_time, _run_order_entry
    from gateway.protocol import BlockOffer

    try:
        block = BlockOffer(args.accelerator, args.region, parse_qty(args.gpus), parse_qty(args.hours),
                           _time(args.start), parse_price(args.min, args.tick), args.service_class)
        expire_ts = _parse_time(args.gtd) if args.gtd else 0
    except ValueError as exc:
        print(f"cx package sell: {exc}", file=sys.stderr)
        return 2

    def body(c: Any) -> int:
        cid = c.send_block_package(block, tif=TimeInForce.GTD if args.gtd else TimeInForce.GTC, expire_ts=expire_ts,
                                   client_order_id=args.client_id)
        print(f"{c.firm} session {c.session!r}: SELL {format_qty(block.gpus)} GPUs {block.accelerator}."
              f"{block.region}.{block.service_class} x {block.hours} h from {format_ts(block.start)[:13]} min "
              f"{format_price(block.min_price, args.tick)}/GPU-h (client id {cid})")
        return _await_outcome(c, args, cid, "sell")

    return _run_order_entry("package sell", args, body)


def cmd_package_cancel(args: argparse.Namespace) -> int:
    from gateway import protocol as p
    from gateway.cli import _run_order_entry
    from gateway.client import format_report

    def body(c: Any) -> int:
        c.cancel_package(args.package_id)
        deadline = time.monotonic() + args.timeout
        while (msg := c.recv(max(deadline - time.monotonic(), 0.0))) is not None:
            if not c.is_resend(msg) and isinstance(msg, p.PackageCancelled | p.PackageCancelRejected) \
                    and msg.package_id == args.package_id:
                print(format_report(msg, args.tick))
                return 0 if isinstance(msg, p.PackageCancelled) else 1
        print(f"cancel of package {args.package_id} sent; no report on session {c.session!r} within "
              f"{args.timeout:g}s (the report goes to the session that entered the package: pass its --session)")
        return 0

    return _run_order_entry("package cancel", args, body)


def _product_options(p: argparse.ArgumentParser, action: type[argparse.Action] | str = "store") -> None:
    p.add_argument("--region", action=action, required=action == "store", help="region, e.g. US-EAST")
    p.add_argument("--class", dest="service_class", action=action, help="service class (default FIRM)")
    p.add_argument("--gpus", action=action, required=action == "store", help="GPUs in every hour")
    p.add_argument("--hours", action=action, required=action == "store", help="consecutive hours")


def _common(p: argparse.ArgumentParser) -> None:
    from gateway.cli import _order_entry_options

    p.add_argument("--gtd", metavar="TIME", help="good till TIME (else good till cancelled)")
    p.add_argument("--client-id", type=int, help="client order id (default: time-based, unique)")
    p.add_argument("--wait", action="store_true", help="after the acceptance, wait for the next auction's outcome")
    p.add_argument("--wait-timeout", type=float, default=DEFAULT_WAIT_S,
                   help=f"seconds --wait waits at most (default {DEFAULT_WAIT_S:g})")
    _order_entry_options(p)


def add_command(sub: argparse._SubParsersAction) -> None:
    pkg = sub.add_parser("package", help="package bids and offers for the call auction (buy, sell, cancel)",
                         description="Enter or cancel a package of the call auction through the gateway.")
    actions = pkg.add_subparsers(dest="package_command", required=True, metavar="ACTION")
    b = actions.add_parser(
        "buy", help="a package bid: block requests joined by --or, at most one accepted",
        description="A package bid in block terms. Example: cx package buy B200 --region US-EAST --gpus 8 --hours 6 "
                    "--window 2026-12-01T08/2026-12-01T20 --max 4.100 --or H100 --gpus 12 --hours 8 --max 2.900")
    b.add_argument("accelerator", metavar="ACCEL")
    _product_options(b, _BlockField)
    b.add_argument("--window", action=_BlockField, metavar="START/END", help="the hours may lie within START..END")
    b.add_argument("--max", dest="price", action=_BlockField, metavar="PRICE", help="dollars per GPU-hour at most")
    b.add_argument("--or", dest="accelerator", action=_BlockField, metavar="ACCEL",
                   help="start another block request (it inherits region, class and window)")
    b.set_defaults(blocks=None, func=cmd_package_buy)
    _common(b)
    s = actions.add_parser("sell", help="a package offer: a block of consecutive hours, all or none",
                           description="Example: cx package sell H100 --region US-EAST --gpus 16 --hours 8 "
                                       "--start 2026-12-01T08 --min 2.000")
    s.add_argument("accelerator", metavar="ACCEL")
    _product_options(s)
    s.set_defaults(service_class="FIRM", func=cmd_package_sell)
    s.add_argument("--start", required=True, metavar="HOUR", help="the first delivery hour")
    s.add_argument("--min", required=True, metavar="PRICE", help="dollars per GPU-hour at least")
    _common(s)
    c = actions.add_parser("cancel", help="cancel a package by its id")
    c.add_argument("package_id", type=int, metavar="PACKAGE_ID")
    c.set_defaults(func=cmd_package_cancel)
    from gateway.cli import _order_entry_options

    _order_entry_options(c)
