"""Replaying the LOBSTER sample (real Nasdaq AAPL order flow) through an exchange.

The sample lives outside the repository, in ``../shared/data/lobster/`` (see its
README.md); ``LOBSTER_DIR`` points there and ``available()`` says whether it is.

Interpretation (the README's recipe):

* One instrument; a LOBSTER price (dollars x 10000) is used as the tick price
  as is, with increment 1 and a band covering every price of the sample.
* Seed: the book before message 0 is orderbook row 0 with message 0 undone;
  each visible level becomes one resting GTC order (firm 0), ahead of every
  order of the file. That order stands for every order that rested at that
  level before the file starts: a LOBSTER id the replay has not seen is one of
  them, so its reductions, deletions and executions apply to the seed order of
  its (side, price).
* Type 1: a new GTC limit order (firm 0). Type 2: a Modify to the reduced
  quantity at the same price (keeps priority; a Cancel if nothing is left).
  Type 3: a Cancel. Type 7 (halt) does not occur in the sample and is ignored.
  (The sample happens to contain no type 2 row.)
* Types 4/5: consecutive rows with one timestamp and one direction form one
  incoming order on the other side, plus a trailing opposite-side type-1 row at
  the same timestamp (the remainder that rests). Its size is the sum of the
  visible (type 4) executions plus that remainder; its limit is the type-1
  price, or else the worst visible execution price; it is GTC when a remainder
  rests, IOC otherwise. Hidden executions (type 5) do not touch the visible
  book and add nothing. A run that executes the same resting order twice is
  split there: one incoming order would have taken both parts at once, so
  these were two incoming orders. Buy aggressors are firm 1, sell aggressors
  firm 2, so no order ever meets its own firm (no self-trade prevention).
* Only the 10 best levels of each side are ever recorded: a change beyond the
  10th level shown has no message, and such a level can later come into view
  at the edge of a row (first at message 13). So per side the replay keeps a
  horizon, the deepest price the last row showed (none when it showed fewer
  than 10 levels: then it showed the whole side). After each step (a single
  message, or a whole incoming order, compared with the row of its last
  message) the levels up to the horizon must equal the row exactly; levels the
  row shows beyond the horizon are then re-seeded from it (the engine's
  orders there are cancelled and one order per level takes their place, as at
  the start) and the horizon moves to the row's deepest price.

Reading the files is O(rows); a replay is O(messages) engine commands.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from engine.codes import Liquidity, Side, TimeInForce
from engine.instruments import Instrument
from engine.records import Accepted, Cancel, Fill, Modify, NewOrder

LOBSTER_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
MESSAGE_FILE = "AAPL_2012-06-21_34200000_57600000_message_10.csv"
ORDERBOOK_FILE = "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv"
SHA256 = {
    MESSAGE_FILE: "2e2c9733b3bc831e38b66e9324afc3b8167ba67a556e9a133c4c2060963a8976",
    ORDERBOOK_FILE: "277aba2634356baa2f355598ffa7ae124abc60670ea4a56dc66b617bae33a12d",
}
LEVELS = 10
EMPTY_ASK, EMPTY_BID = 9999999999, -9999999999

MAKER_FIRM = 0
TAKER_FIRM = {Side.BUY: 1, Side.SELL: 2}

NEW, REDUCE, DELETE, EXECUTE, HIDDEN, HALT = 1, 2, 3, 4, 5, 7


def available() -> bool:
    return all((LOBSTER_DIR / name).is_file() for name in SHA256)


def sha256_of(name: str) -> str:
    return hashlib.sha256((LOBSTER_DIR / name).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Message:
    index: int  # row number in the message file (= its orderbook row)
    ts: int  # ns after midnight
    type: int
    lid: int  # LOBSTER order id (0 for hidden executions)
    size: int
    price: int
    direction: int  # 1 buy, -1 sell; for executions, the resting order's side

    @property
    def side(self) -> int:
        return Side.BUY if self.direction == 1 else Side.SELL


@dataclass(frozen=True)
class BookRow:
    """Visible levels after one message, best first, as (price, size); empty levels dropped."""

    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]

    def side(self, side: int) -> tuple[tuple[int, int], ...]:
        return self.bids if side == Side.BUY else self.asks


@dataclass
class Aggression:
    """One incoming order reconstructed from a run of executions."""

    first: int  # index of its first message
    last: int  # index of its last message (the trailing type-1 row if any)
    side: int  # the incoming order's side
    executions: list[Message] = field(default_factory=list)  # visible (type 4) rows, in order
    hidden: int = 0  # hidden (type 5) rows
    rest: Message | None = None  # trailing type-1 row: the remainder that rests

    @property
    def qty(self) -> int:
        return sum(m.size for m in self.executions) + (self.rest.size if self.rest else 0)

    @property
    def limit(self) -> int:
        if self.rest is not None:
            return self.rest.price
        prices = [m.price for m in self.executions]
        return max(prices) if self.side == Side.BUY else min(prices)

    @property
    def tif(self) -> int:
        return TimeInForce.GTC if self.rest is not None else TimeInForce.IOC


def parse_time(text: str) -> int:
    """'34200.00426064' -> ns after midnight, exactly (no float)."""
    seconds, _, frac = text.strip().partition(".")
    return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9])


def read_messages(path: Path | None = None) -> list[Message]:
    path = path or LOBSTER_DIR / MESSAGE_FILE
    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        t, typ, lid, size, price, direction = line.split(",")
        out.append(Message(i, parse_time(t), int(typ), int(lid), int(size), int(price), int(direction)))
    return out


def read_orderbook(path: Path | None = None) -> list[BookRow]:
    path = path or LOBSTER_DIR / ORDERBOOK_FILE
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        v = [int(x) for x in line.split(",")]
        asks = tuple((v[4 * k], v[4 * k + 1]) for k in range(LEVELS) if v[4 * k] != EMPTY_ASK and v[4 * k + 1])
        bids = tuple((v[4 * k + 2], v[4 * k + 3]) for k in range(LEVELS)
                     if v[4 * k + 2] != EMPTY_BID and v[4 * k + 3])
        rows.append(BookRow(bids, asks))
    return rows


def seed_book(row0: BookRow, msg0: Message) -> tuple[dict[int, int], dict[int, int]]:
    """Visible levels before message 0 as {price: size} per side (bids, asks): row 0 with message 0 undone."""
    books = ({p: q for p, q in row0.bids}, {p: q for p, q in row0.asks})
    book = books[msg0.side]
    if msg0.type == NEW:
        book[msg0.price] = book.get(msg0.price, 0) - msg0.size
    elif msg0.type in (REDUCE, DELETE, EXECUTE):
        book[msg0.price] = book.get(msg0.price, 0) + msg0.size
    for b in books:
        for p in [p for p, q in b.items() if q <= 0]:
            del b[p]
    return books


def edge(row: BookRow, side: int) -> int | None:
    """The deepest price the row shows on that side when it shows all 10 levels (more may lie beyond), else None."""
    levels = row.side(side)
    return levels[-1][0] if len(levels) == LEVELS else None


def within(side: int, price: int, limit: int | None) -> bool:
    """``price`` is at or better than ``limit`` (None: no limit)."""
    return limit is None or (price >= limit if side == Side.BUY else price <= limit)


def steps(messages: list[Message]) -> list[Message | Aggression]:
    """The messages as replay steps: single type-1/2/3/7 messages and Aggressions."""
    out: list[Message | Aggression] = []
    i, n = 0, len(messages)
    while i < n:
        m = messages[i]
        if m.type not in (EXECUTE, HIDDEN):
            out.append(m)
            i += 1
            continue
        incoming = Side.SELL if m.side == Side.BUY else Side.BUY
        agg = Aggression(first=i, last=i, side=incoming)
        j = i
        while j < n and messages[j].type in (EXECUTE, HIDDEN) and messages[j].ts == m.ts \
                and messages[j].direction == m.direction:
            r = messages[j]
            if r.type == EXECUTE and any(e.lid == r.lid for e in agg.executions):
                out.append(agg)  # the same resting order again: a second incoming order
                agg = Aggression(first=j, last=j, side=incoming)
            if r.type == EXECUTE:
                agg.executions.append(r)
            else:
                agg.hidden += 1
            agg.last = j
            j += 1
        if j < n and messages[j].type == NEW and messages[j].ts == m.ts and messages[j].side == incoming:
            agg.rest = messages[j]
            agg.last = j
            j += 1
        out.append(agg)
        i = j
    return out


def make_instrument(messages: list[Message], rows: list[BookRow]) -> Instrument:
    prices = [m.price for m in messages] + [p for r in rows[:1] for p, _ in r.bids + r.asks]
    return Instrument(
        instrument_id=0, accelerator="AAPL", region="NASDAQ", service_class="FIRM", delivery_start_ns=0,
        open_ns=0, close_ns=2**62, min_price=max(1, min(prices) // 2), max_price=max(prices) * 2,
        price_increment=1, max_order_qty=10_000_000, protection_ticks=1_000_000,
    )


@dataclass
class ReplayResult:
    fill_mismatches: list[str] = field(default_factory=list)
    book_mismatches: list[str] = field(default_factory=list)
    aggressions: int = 0  # incoming orders submitted
    fills_checked: int = 0  # maker fills compared
    books_checked: int = 0  # orderbook rows compared
    levels_compared: int = 0
    reseeded_levels: int = 0  # levels that came into view with no message, taken from the row
    unknown_skipped: list[str] = field(default_factory=list)  # reduce/delete of orders no one can know


class Replay:
    """Drives one exchange (any ExchangeAPI) through the sample and records what disagrees.

    ``horizon[side]`` is the deepest price up to which the engine's side is
    known to be complete (None: all of it): the deepest level the last row
    showed. Levels beyond it change with no message; when a row shows levels
    beyond the horizon they are re-seeded from it (the engine's orders there
    are cancelled and one order per shown level takes their place).
    """

    def __init__(self, exchange_class, messages: list[Message], rows: list[BookRow]):
        self.messages, self.rows = messages, rows
        self.ex = exchange_class([make_instrument(messages, rows)])
        self.ids: dict[int, int] = {}  # LOBSTER id -> engine order id
        self.lid_of: dict[int, int] = {}  # engine order id -> LOBSTER id
        self.firm: dict[int, int] = {}  # engine order id -> firm
        self.seeds: dict[tuple[int, int], int] = {}  # (side, price) -> engine id of the seed order
        self.horizon = {side: edge(rows[0], side) for side in (Side.BUY, Side.SELL)}
        self.coid = 0
        self.result = ReplayResult()

    # ------------------------------------------------------------ helpers
    def _new(self, ts: int, firm: int, side: int, price: int, qty: int, tif: int = TimeInForce.GTC) -> tuple:
        """Submit a new order; (its engine id, its events)."""
        self.coid += 1
        events = self.ex.submit(NewOrder(ts, firm, self.coid, 0, side, price, qty, tif=tif))
        accepted = [e for e in events if isinstance(e, Accepted)]
        assert accepted, f"order refused: {events}"
        self.firm[accepted[0].order_id] = firm
        return accepted[0].order_id, events

    def _seed(self, ts: int, side: int, price: int, qty: int) -> None:
        self.seeds[(side, price)] = self._new(ts, MAKER_FIRM, side, price, qty)[0]

    def _engine_id(self, m: Message) -> int | None:
        """The live engine order a LOBSTER id stands for: its own, or the seed order of its level."""
        oid = self.ids.get(m.lid)
        if oid is None:
            oid = self.seeds.get((m.side, m.price))
        if oid is not None and self.ex.order(oid) is None:
            return None
        return oid

    # ------------------------------------------------------------ replay
    def run(self) -> ReplayResult:
        bids, asks = seed_book(self.rows[0], self.messages[0])
        t0 = self.messages[0].ts - 1
        for side, book in ((Side.BUY, bids), (Side.SELL, asks)):
            for price in sorted(book, reverse=side == Side.BUY):
                self._seed(t0, side, price, book[price])
        for step in steps(self.messages):
            if isinstance(step, Aggression):
                self._aggress(step)
                last = step.last
            else:
                self._message(step)
                last = step.index
            self._compare_book(last)
        return self.result

    def _message(self, m: Message) -> None:
        if m.type == NEW:
            oid = self._new(m.ts, MAKER_FIRM, m.side, m.price, m.size)[0]
            self.ids[m.lid], self.lid_of[oid] = oid, m.lid
            return
        if m.type not in (REDUCE, DELETE):
            return  # HALT: none in the sample
        oid = self._engine_id(m)
        if oid is None:
            if within(m.side, m.price, self.horizon[m.side]):
                self.result.fill_mismatches.append(f"message {m.index}: {m} names no live order")
            else:
                self.result.unknown_skipped.append(f"message {m.index}: type {m.type} beyond the known levels")
            return
        leaves = self.ex.order(oid).leaves
        own = self.ids.get(m.lid) == oid
        if m.type == DELETE and own or leaves <= m.size:
            self.ex.submit(Cancel(m.ts, self.firm[oid], oid))
        else:  # a partial cancel, or the deletion of one of the orders a seed order stands for
            self.ex.submit(Modify(m.ts, self.firm[oid], oid, m.price, leaves - m.size))

    def _aggress(self, a: Aggression) -> None:
        if a.qty == 0:
            return  # hidden executions only: the visible book does not change
        expected = []  # (engine id, price, qty), consecutive fills of one engine order merged
        for m in a.executions:
            oid = self._engine_id(m)
            if expected and expected[-1][0] == oid and expected[-1][1] == m.price:
                expected[-1] = (oid, m.price, expected[-1][2] + m.size)
            else:
                expected.append((oid, m.price, m.size))
        ts = self.messages[a.first].ts
        taker, events = self._new(ts, TAKER_FIRM[a.side], a.side, a.limit, a.qty, a.tif)
        self.result.aggressions += 1
        got = [(e.order_id, e.price, e.qty) for e in events if isinstance(e, Fill) and e.liquidity == Liquidity.MAKER]
        self.result.fills_checked += len(expected)
        if got != expected:
            self.result.fill_mismatches.append(
                f"messages {a.first}-{a.last}: incoming {'buy' if a.side == Side.BUY else 'sell'} "
                f"{a.qty} @ {a.limit}: engine maker fills {got}, LOBSTER {expected}")
        if a.rest is not None:
            self.ids[a.rest.lid], self.lid_of[taker] = taker, a.rest.lid
            status = self.ex.order(taker)
            if status is None or status.leaves != a.rest.size:
                self.result.fill_mismatches.append(
                    f"messages {a.first}-{a.last}: remainder {a.rest.size} should rest, engine has {status}")

    def _compare_book(self, index: int) -> None:
        """Compare the known levels with row ``index``, then re-seed what came into view."""
        row = self.rows[index]
        ts = self.messages[index].ts
        bids, asks = self.ex.depth(0, LEVELS)
        self.result.books_checked += 1
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            shown, h, e = row.side(side), self.horizon[side], edge(row, side)
            want = [(p, q) for p, q in shown if within(side, p, h)]
            have = [(lv.price, lv.qty) for lv in levels if within(side, lv.price, h) and within(side, lv.price, e)]
            self.result.levels_compared += len(want)
            if have != want:
                self.result.book_mismatches.append(
                    f"after message {index} ({self.messages[index]}), {'bids' if side == Side.BUY else 'asks'}: "
                    f"engine {have}, LOBSTER {want}")
            if h is not None and (e is None or not within(side, e, h)):
                self._reseed(ts, side, h, e, shown)
            self.horizon[side] = e

    def _reseed(self, ts: int, side: int, beyond: int, upto: int | None, shown) -> None:
        """Replace the engine's levels strictly beyond ``beyond`` and up to ``upto`` by the row's."""
        for o in self.ex.book_orders(0, side):
            if not within(side, o.price, beyond) and within(side, o.price, upto):
                self.ex.submit(Cancel(ts, o.firm, o.order_id))
                lid = self.lid_of.pop(o.order_id, None)
                if lid is not None:
                    del self.ids[lid]
        for p, q in shown:
            if not within(side, p, beyond):
                self._seed(ts, side, p, q)
                self.result.reseeded_levels += 1
