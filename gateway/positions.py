"""``cx positions [FIRM] [--journal DIR]``: the end-of-day report of what firms traded, from the journal.

Without FIRM (or with ``--all``) every firm with fills; the journal defaults to ``state/journal``, where
``make run`` journals.

The journal is the truth: the report replays it (``journal.sequencer.replay_journal``,
through a fresh engine, checkpoints verified) and folds every ``Fill`` event (continuous
trading, and resting orders filled by the call auction) and every ``PACKAGE_FILL`` (a leg of a
package the auction accepted) into a ``Position`` per (firm, instrument): fills, GPU-hours bought and sold,
and the cash paid and received (ticks x GPUs). Firm names are the positions
in the gateway configuration the venue ran with (``--config``, default the
built-in one); instruments come from the journal's genesis.

Printed per firm, grouped by delivery hour: per instrument the fills, GPUs
bought and sold, average prices, the net position (GPUs the firm will
receive, or must deliver, for that hour) and the net cash; per hour the
GPUs to receive and to deliver and the cash; then the firm's totals. Dollars
and GPUs in human units (``gateway.units``).

Invariants: every trade gives one buyer fill and one seller fill of the same
quantity and price, and per instrument an auction's buyers and sellers exchange the same
GPUs at one price, so over all firms the net position and the net cash of
each instrument are zero. Cost: the replay (O(commands)) plus O(fills).
Exit status 2 for an unreadable journal or configuration or an unknown firm.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import numpy as np

from engine.codes import EventKind, PackageEventKind, Side
from engine.instruments import Instrument, format_hour
from gateway.config import DEFAULT_JOURNAL, ConfigError, load_config
from gateway.units import format_notional, format_price, format_qty
from journal.log import JournalError
from journal.sequencer import replay_journal


class Position:
    """One firm on one instrument: fills, GPUs bought and sold, cash paid and received (ticks x GPUs)."""

    __slots__ = ("fills", "bought", "sold", "paid", "received")

    def __init__(self) -> None:
        self.fills = self.bought = self.sold = self.paid = self.received = 0

    @property
    def net(self) -> int:
        """GPUs to receive (> 0) or to deliver (< 0) for the delivery hour."""
        return self.bought - self.sold

    @property
    def cash(self) -> int:
        """Ticks x GPUs received (> 0) or paid (< 0)."""
        return self.received - self.paid


class JournalPositions:
    """Every firm's positions after replaying a journal: ``positions[(firm, instrument)]``."""

    def __init__(self, directory: str | Path):
        self.positions: dict[tuple[int, int], Position] = defaultdict(Position)
        result = replay_journal(directory, on_events=self._fold)
        self.instruments: list[Instrument] = list(result.genesis.instruments)
        self.last_seq = result.last_seq

    def _fold(self, records: np.ndarray) -> None:
        kinds = records["kind"]
        fills = records[(kinds == EventKind.FILL) | (kinds == PackageEventKind.PACKAGE_FILL)]
        for firm, inst, side, price, qty in zip(*(fills[k].tolist() for k in ("firm", "instrument", "side",
                                                                               "price", "qty")), strict=True):
            pos = self.positions[(firm, inst)]
            pos.fills += 1
            if side == Side.BUY:
                pos.bought += qty
                pos.paid += price * qty
            else:
                pos.sold += qty
                pos.received += price * qty

    def firms(self) -> list[int]:
        return sorted({f for f, _ in self.positions})

    def of_firm(self, firm: int) -> dict[int, Position]:
        return {i: pos for (f, i), pos in self.positions.items() if f == firm}


def _average(amount: int, qty: int, tick: Decimal) -> str:
    return format_price(int((Decimal(amount) / qty).to_integral_value(ROUND_HALF_EVEN)), tick) if qty else "-"


def _cash(amount: int, tick: Decimal) -> str:
    return f"{'+' if amount > 0 else '-' if amount < 0 else ' '}${format_notional(abs(amount), 1, tick)}"


def format_firm(name: str, book: JournalPositions, firm: int, tick: Decimal) -> str:
    """The report of one firm: per delivery hour, its instruments and the hour's totals; then the firm's."""
    mine = book.of_firm(firm)
    if not mine:
        return f"{name}: no fills in the journal (commands 1..{book.last_seq})"
    by_hour: dict[int, list[int]] = defaultdict(list)
    for inst in sorted(mine):
        by_hour[book.instruments[inst].delivery_start_ns].append(inst)
    width = max(len(book.instruments[i].symbol) for i in mine)
    total = Position()
    lines = [f"{name}: positions from the journal (commands 1..{book.last_seq}); net > 0: GPUs to receive, "
             f"< 0: to deliver; cash > 0: to receive"]
    for hour in sorted(by_hour):
        lines.append(f"  delivery hour {format_hour(hour)}:00Z")
        lines.append(f"    {'instrument':<{width}} {'fills':>6} {'bought':>8} {'sold':>8} {'avg buy':>9} "
                     f"{'avg sell':>9} {'net GPUs':>9} {'cash':>14}")
        receive = deliver = cash = 0
        for inst in by_hour[hour]:
            pos = mine[inst]
            lines.append(f"    {book.instruments[inst].symbol:<{width}} {pos.fills:>6} {format_qty(pos.bought):>8} "
                         f"{format_qty(pos.sold):>8} {_average(pos.paid, pos.bought, tick):>9} "
                         f"{_average(pos.received, pos.sold, tick):>9} {pos.net:>+9,} {_cash(pos.cash, tick):>14}")
            receive += max(pos.net, 0)
            deliver += max(-pos.net, 0)
            cash += pos.cash
            for k in Position.__slots__:
                setattr(total, k, getattr(total, k) + getattr(pos, k))
        lines.append(f"    hour total: receive {format_qty(receive)} GPUs, deliver {format_qty(deliver)} GPUs, "
                     f"cash {_cash(cash, tick)}")
    lines.append(f"  total: {total.fills:,} fills, bought {format_qty(total.bought)} GPU-h for "
                 f"${format_notional(total.paid, 1, tick)}, sold {format_qty(total.sold)} GPU-h for "
                 f"${format_notional(total.received, 1, tick)}, net cash {_cash(total.cash, tick)}")
    return "\n".join(lines)


def cmd_positions(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        book = JournalPositions(args.journal)
    except (ConfigError, JournalError, OSError) as exc:
        print(f"cx positions: {exc}", file=sys.stderr)
        return 2
    names = [f.name for f in config.firms]
    if args.all or args.firm is None:
        firms = book.firms()
    elif args.firm in names:
        firms = [names.index(args.firm)]
    else:
        print(f"cx positions: unknown firm {args.firm!r} (firms: {', '.join(names)})", file=sys.stderr)
        return 2
    tick = Decimal(args.tick)
    print("\n\n".join(format_firm(names[f] if f < len(names) else f"firm #{f}", book, f, tick) for f in firms)
          or f"no fills in the journal (commands 1..{book.last_seq})")
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("positions", help="end-of-day positions of a firm (or all) from the journal",
                       description="Replay a journal; print per firm, instrument and delivery hour the GPU-hours "
                                   "bought and sold, average prices, net GPUs to receive or deliver and the cash.")
    who = p.add_mutually_exclusive_group()
    who.add_argument("firm", nargs="?", metavar="FIRM", help="a firm of the gateway configuration (default: all)")
    who.add_argument("--all", action="store_true", help="every firm with fills (the default)")
    p.add_argument("--journal", metavar="DIR", default=DEFAULT_JOURNAL,
                   help="the journal directory of `cx serve --journal` (default %(default)s, where `make run` "
                        "journals)")
    p.add_argument("--config", metavar="FILE", default=None, help="the gateway TOML the venue ran with "
                                                                  "(firm names; default: built-in)")
    p.add_argument("--tick", default="0.001", help="dollars per tick of the listing (default 0.001)")
    p.set_defaults(func=cmd_positions)
