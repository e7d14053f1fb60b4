"""Fuzzing the running gateway: garbage and half-valid frames never crash it, never reach the books.

A gateway on loopback (``tests.gateway.conftest.make_venue``, its clock held
still) is sent at least ``FRAMES`` (100,000) frames from several DEALER
sockets, in bursts, each burst's replies drained before the next:

* random bytes (empty, short, up to a few KiB); valid msgpack of wrong shapes
  (scalars, arrays, maps without ``type``, deep nesting, ext types); maps with
  unknown ``type`` values (including the gateway's own message names);
* client messages with a field of the wrong type, a missing required field,
  an unknown extra field, truncated or with trailing bytes;
* out-of-range integers: enum codes outside their set, negative and
  int64/uint64 extremes (2**63 and above fit msgpack but not the engine's
  int64 records); huge strings (up to just under ``MAX_FRAME_BYTES``);
* oversized frames (above ``protocol.MAX_FRAME_BYTES``, a few above the
  ZeroMQ hard limit, which drops the connection) and multipart messages;
* Logons of unknown firms or with invalid fields.

Three sockets never log on: there, even well-formed orders on real symbols
must be refused, and every frame must get exactly one reply (ProtocolError or
LogonRejected). Three sockets log on as firms that own no orders (after a
first round of garbage) and send the same garbage plus half-valid order
messages that are invalid by construction: a NewOrder, quote, package leg or
block package on a listed symbol always carries a quantity the firm may not
send (<= 0 or above its maximum), anything else names an unknown symbol;
cancels and modifies name order ids of other firms or none (there are no
packages to cancel). So no fuzz frame can create, change or
remove an order, and the test checks exactly that: the engine's books, its
order/trade counters, the rest of its arena (hashed) and the gateway's order
table are as before. Then a valid client still logs on and gets an order
Accepted. Every reply must decode as a ServerMessage, and none may report an
order (Accepted, Executed, Cancelled, Replaced) to a fuzz socket.

Bounded: frame generation is seeded (``SEED``), the fuzzing stops after
``FRAMES`` frames or ``TIME_LIMIT_S`` seconds, whichever first, and every
wait has a timeout.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import traceback
from collections import Counter

import msgspec
import pytest
import zmq

from engine.codes import OrderType, SelfTradePrevention, Side, TimeInForce
from engine.core.layout import H_LIVE, H_NEXT_OID, H_NEXT_TID, HEADER
from gateway import protocol as p
from tests.gateway.conftest import OTHER, SYMBOL, make_venue

SEED = 20261201
FRAMES = 100_000
TIME_LIMIT_S = 40.0
BURST = 150  # frames per socket per burst
OWNERS = ("ALPHA", "BETA")  # firms with resting orders; no fuzz socket ever speaks for them
FUZZ_FIRMS = ("FUZZA", "FUZZB", "FUZZC")  # firms the logged-on fuzz sockets use; they never own an order
UNKNOWN_FIRMS = ("", "NOBODY", "alpha", "ALPHA ", " ALPHA", "FUZZ", "fuzza", "A" * 33, "X" * 5000, "ÄLPHA", "\x00")
HARD_LIMIT = 1 << 20  # above this ZeroMQ drops the sender's connection (gateway.server.HARD_FRAME_LIMIT)
ORDER_REPORTS = (p.Accepted, p.Executed, p.Cancelled, p.Replaced, p.PackageAccepted, p.PackageExecuted,
                 p.PackageCancelled, p.PackageNotFilled)

INT_EXTREMES = (-1, 0, -(2**31), 2**31, 2**32, -(2**63), 2**63 - 1, 2**63, 2**64 - 1)
ENUM_BAD = (-1, 2, 3, 4, 7, 9, 127, 128, 255, 256, 2**31, 2**63, 2**64 - 1)
ENUM_FIELDS = ("side", "ord_type", "tif", "stp")
WRONG_TYPES = (None, True, False, 1.5, float("nan"), float("inf"), -0.0, "", "1", "BUY", b"\x00\x01",
               [], [1, 2], {}, {"a": 1}, 2**64 - 1, -(2**63))


# ------------------------------------------------------------------ frames


class FrameMaker:
    """Draws fuzz frames. ``logged_on`` sockets never get an order that could be accepted (see module doc)."""

    def __init__(self, rng: random.Random, symbols: list[str], order_ids: list[int]):
        self.rng = rng
        self.symbols = symbols
        self.order_ids = order_ids  # live orders of OWNERS: a fuzz firm may name them, never own them
        self.kinds: Counter[str] = Counter()
        table = [
            (12, "random_bytes", self.random_bytes),
            (2, "random_bytes_long", self.random_bytes_long),
            (8, "msgpack_wrong_shape", self.wrong_shape),
            (6, "unknown_type", self.unknown_type),
            (16, "wrong_field_type", self.wrong_field_type),
            (6, "missing_or_extra_field", self.missing_or_extra_field),
            (14, "out_of_range_int", self.out_of_range_int),
            (8, "truncated_or_trailing", self.truncated_or_trailing),
            (2, "huge_string", self.huge_string),
            (4, "multipart", self.multipart),
            (6, "bad_logon", self.bad_logon),
            (10, "well_formed_refusable", self.well_formed),
        ]
        self.weights = [w for w, _, _ in table]
        self.makers = [(name, fn) for _, name, fn in table]

    # -- helpers

    def symbol(self, listed_ok: bool) -> str:
        r = self.rng.random()
        if listed_ok and r < 0.5:
            return self.rng.choice(self.symbols)
        return self.rng.choice(["", "H100", "h100.us-east.firm.2026-12-01T13", SYMBOL + "X", SYMBOL[:-1],
                                "H100.US-EAST.FIRM.2026-12-01T13\x00", "NOPE.NOPE.FIRM.2026-12-01T13",
                                "H100.US-EAST.FIRM.2030-01-01T00", "☃" * 20, SYMBOL.replace("FIRM", "SPOT")])

    def bad_qty(self) -> int:
        """A quantity no order may rest with: <= 0, or above every firm's max_order_qty (10,000)."""
        return self.rng.choice([0, -1, -5, -(2**31), -(2**63), 10_001, 10**6, 2**31, 2**62])

    def any_int(self) -> int:
        return self.rng.choice([*INT_EXTREMES, self.rng.randrange(-(2**63), 2**63), self.rng.randrange(100)])

    def random_value(self, depth: int = 0):
        r = self.rng.random()
        if depth > 3 or r < 0.5:
            return self.rng.choice([None, True, 0, -1, 2**64 - 1, -(2**63), 3.25, "x", "type", b"\xff",
                                    "NewOrder", self.rng.randrange(1 << 16)])
        if r < 0.75:
            return [self.random_value(depth + 1) for _ in range(self.rng.randrange(4))]
        return {self.rng.choice(["type", "symbol", "qty", "k", "", "client_order_id"]): self.random_value(depth + 1)
                for _ in range(self.rng.randrange(4))}

    def valid_dict(self, logged_on: bool) -> dict:
        """A client message as a dict that decodes as-is and can never create an order on ``logged_on``."""
        kind = self.rng.choice(["NewOrder", "NewOrder", "Cancel", "Modify", "MassCancel", "MassQuote", "Heartbeat",
                                "NewPackage", "NewBlockPackage", "CancelPackage"])
        if kind == "NewOrder":
            listed = self.rng.random() < 0.5
            sym = self.symbol(listed_ok=True) if listed else self.symbol(listed_ok=False)
            qty = self.bad_qty() if logged_on and sym in self.symbols else self.rng.randint(1, 10)
            return {"type": "NewOrder", "client_order_id": self.rng.randrange(1, 1 << 40), "symbol": sym,
                    "side": self.rng.randrange(2), "qty": qty, "price": self.rng.choice([1000, 2000, 5000]),
                    "ord_type": int(OrderType.LIMIT), "tif": int(TimeInForce.GTC),
                    "stp": int(SelfTradePrevention.CANCEL_NEWEST)}
        if kind == "Cancel":
            return {"type": "Cancel", "order_id": self.order_id()}
        if kind == "Modify":
            return {"type": "Modify", "order_id": self.order_id(), "price": self.rng.choice([1000, 2000]),
                    "qty": self.rng.randint(1, 10)}
        if kind == "MassCancel":
            return {"type": "MassCancel", "symbol": self.symbol(listed_ok=True)}
        if kind == "MassQuote":
            entries = []
            for _ in range(self.rng.randrange(1, 4)):
                sym = self.symbol(listed_ok=True)
                bid_qty, ask_qty = self.rng.randint(1, 10), self.rng.randint(1, 10)
                if logged_on and sym in self.symbols:
                    bid_qty, ask_qty = self.bad_qty(), self.bad_qty()
                    if bid_qty == ask_qty == 0:  # both 0 means "no quote": harmless, but keep it invalid
                        bid_qty = -1
                entries.append({"symbol": sym, "bid_price": 1000, "bid_qty": bid_qty, "ask_price": 1100,
                                "ask_qty": ask_qty})
            return {"type": "MassQuote", "quote_id": self.rng.randrange(1, 1 << 40), "entries": entries}
        if kind == "NewPackage":
            alternatives = []
            for _ in range(self.rng.randrange(1, 3)):
                legs = [{"symbol": sym, "qty": self.bad_qty() if logged_on and sym in self.symbols else 1}
                        for sym in (self.symbol(listed_ok=True) for _ in range(self.rng.randrange(1, 3)))]
                alternatives.append({"legs": legs, "limit": self.rng.choice([1000, 10**6])})
            return {"type": "NewPackage", "client_order_id": self.rng.randrange(1, 1 << 40),
                    "side": self.rng.randrange(2), "alternatives": alternatives}
        if kind == "NewBlockPackage":
            block = {"accelerator": self.rng.choice(["H100", "B200", "NOPE"]), "region": "US-EAST",
                     "gpus": self.bad_qty() if logged_on else 1, "hours": self.rng.choice([1, 4, 10**6]),
                     "service_class": "FIRM"}
            if self.rng.random() < 0.5:
                block |= {"window_start": 0, "window_end": self.rng.choice([2**63 - 1, 2**62]), "max_price": 3000}
                return {"type": "NewBlockPackage", "client_order_id": self.rng.randrange(1, 1 << 40), "bid": [block]}
            block |= {"start": 1_796_126_400 * 10**9, "min_price": 1000}
            return {"type": "NewBlockPackage", "client_order_id": self.rng.randrange(1, 1 << 40), "offer": block}
        if kind == "CancelPackage":
            return {"type": "CancelPackage", "package_id": self.order_id()}
        return {"type": "Heartbeat"}

    def order_id(self) -> int:
        if self.order_ids and self.rng.random() < 0.5:
            return self.rng.choice(self.order_ids)
        return self.rng.choice([0, 1, 2, 3, 10**6, -1, 2**63 - 1, self.rng.randrange(1, 1000)])

    @staticmethod
    def pack(obj) -> bytes:
        return msgspec.msgpack.encode(obj)

    def check_harmless(self, d: dict, logged_on: bool) -> dict:
        """Belt and braces: a dict that would decode to an order-creating message on a logged-on socket is a bug
        in this generator (the assertion keeps the 'no state change' check meaningful)."""
        if not logged_on:
            return d
        try:
            msg = p.client_decoder.decode(self.pack(d))
        except (msgspec.DecodeError, msgspec.ValidationError, OverflowError):
            return d
        if isinstance(msg, p.NewOrder) and msg.symbol in self.symbols:
            assert msg.qty <= 0 or msg.qty > 10_000, msg
        if isinstance(msg, p.MassQuote):
            for e in msg.entries:
                if e.symbol in self.symbols:  # refused by the gateway (too big) or by the engine (both sides <= 0)
                    assert max(e.bid_qty, e.ask_qty) > 10_000 or (
                        e.bid_qty <= 0 and e.ask_qty <= 0 and (e.bid_qty, e.ask_qty) != (0, 0)), msg
        if isinstance(msg, p.NewPackage):  # every alternative has a leg the gateway refuses, or none is listed
            assert all(any(leg.qty <= 0 or leg.qty > 10_000 or leg.symbol not in self.symbols for leg in a.legs)
                       for a in msg.alternatives), msg
        if isinstance(msg, p.NewBlockPackage):
            blocks = msg.bid if msg.offer is None else [msg.offer]
            assert all(b.gpus <= 0 or b.gpus > 10_000 for b in blocks), msg
        if isinstance(msg, p.Logon):
            assert msg.firm not in OWNERS, msg
        return d

    # -- categories: each returns a list of frames (one message)

    def random_bytes(self, logged_on: bool) -> list[bytes]:
        return [self.rng.randbytes(self.rng.choice([0, 1, 2, 3, 5, 8, 16, 40, 64, 100]))]

    def random_bytes_long(self, logged_on: bool) -> list[bytes]:
        return [self.rng.randbytes(self.rng.randrange(100, 4096))]

    def wrong_shape(self, logged_on: bool) -> list[bytes]:
        r = self.rng.random()
        if r < 0.1:
            depth = self.rng.choice([50, 1000, 30_000])
            return [b"\x91" * depth + b"\xc0"]  # [[[...[nil]...]]]
        if r < 0.2:
            return [b"\x81\xa4type" + b"\x91" * 5000 + b"\xc0"]  # {"type": [[[...]]]}
        if r < 0.3:
            return [msgspec.msgpack.encode(msgspec.msgpack.Ext(self.rng.randrange(-128, 128), b"abc"))]
        return [self.pack(self.random_value())]

    def unknown_type(self, logged_on: bool) -> list[bytes]:
        t = self.rng.choice(["", "Foo", "neworder", "NEWORDER", "NewOrder ", "Accepted", "LogonAccepted",
                             "ProtocolError", "Executed", "SystemEvent", "QuoteEntry", "_Message", 1, None, True,
                             b"NewOrder", ["NewOrder"], {"NewOrder": 1}])
        d = {"type": t, "client_order_id": 1, "symbol": self.symbol(False), "side": 0, "qty": 0}
        return [self.pack(d)]

    def wrong_field_type(self, logged_on: bool) -> list[bytes]:
        d = self.valid_dict(logged_on)
        fields = [k for k in d if k != "type"]
        if not fields:
            d["extra"] = 1
            return [self.pack(d)]
        f = self.rng.choice(fields)
        d[f] = self.rng.choice(WRONG_TYPES)
        if f == "entries" and self.rng.random() < 0.5:
            d[f] = [{"symbol": 1, "bid_price": "x"}, None]
        return [self.pack(self.check_harmless(d, logged_on))]

    def missing_or_extra_field(self, logged_on: bool) -> list[bytes]:
        d = self.valid_dict(logged_on)
        fields = [k for k in d if k != "type"]
        if fields and self.rng.random() < 0.5:
            del d[self.rng.choice(fields)]
        else:
            d[self.rng.choice(["firm", "seq", "extra", "Symbol", "", "order_id", "ts"])] = self.rng.choice(
                [1, "ALPHA", None])
        return [self.pack(self.check_harmless(d, logged_on))]

    def out_of_range_int(self, logged_on: bool) -> list[bytes]:
        d = self.valid_dict(logged_on)
        t = d["type"]
        if t == "NewOrder":
            f = self.rng.choice([*ENUM_FIELDS, "client_order_id", "price", "qty", "expire_ts"])
            d[f] = self.rng.choice(ENUM_BAD) if f in ENUM_FIELDS else self.any_int()
            if f == "qty" and logged_on and d["symbol"] in self.symbols:
                d["qty"] = self.bad_qty()
        elif t in ("Cancel", "Modify"):
            f = self.rng.choice(["order_id", "price", "qty"] if t == "Modify" else ["order_id"])
            d[f] = self.any_int()
        elif t == "MassQuote":
            if self.rng.random() < 0.5:
                d["quote_id"] = self.any_int()
            else:
                e = d["entries"][0]
                f = self.rng.choice(["bid_price", "ask_price", "bid_qty", "ask_qty"])
                e[f] = self.any_int()
                if logged_on and e["symbol"] in self.symbols and f.endswith("qty"):
                    e[f] = self.bad_qty()
                    if e["bid_qty"] == e["ask_qty"] == 0:
                        e["bid_qty"] = -1
        else:
            d = {"type": "Logon", "session": "s", "firm": self.rng.choice(UNKNOWN_FIRMS),
                 self.rng.choice(["next_seq", "heartbeat_ms"]): self.any_int()}
        return [self.pack(self.check_harmless(d, logged_on))]

    def truncated_or_trailing(self, logged_on: bool) -> list[bytes]:
        frame = self.pack(self.check_harmless(self.valid_dict(logged_on), logged_on))
        if self.rng.random() < 0.5 and len(frame) > 1:
            return [frame[: self.rng.randrange(1, len(frame))]]
        return [frame + self.rng.choice([b"\x00", b"\xc0", frame, self.rng.randbytes(8)])]

    def huge_string(self, logged_on: bool) -> list[bytes]:
        n = self.rng.choice([1000, 20_000, p.MAX_FRAME_BYTES - 200])
        big = "Z" * n
        d = self.rng.choice([
            {"type": "NewOrder", "client_order_id": 1, "symbol": big, "side": 0, "qty": 1, "price": 1000},
            {"type": "MassCancel", "symbol": big},
            {"type": "Logon", "session": big, "firm": self.rng.choice(UNKNOWN_FIRMS)},
            {"type": "Logon", "session": "s", "firm": big},
            {"type": "MassQuote", "quote_id": 1, "entries": [{"symbol": big, "bid_price": 1, "bid_qty": 1,
                                                                "ask_price": 2, "ask_qty": 1}]},
        ])
        return [self.pack(d)]

    def oversized(self, logged_on: bool) -> list[bytes]:
        n = self.rng.choice([p.MAX_FRAME_BYTES + 1, p.MAX_FRAME_BYTES + 1000, 200_000, HARD_LIMIT - 16])
        if self.rng.random() < 0.5:
            return [self.rng.randbytes(n)]
        d = self.valid_dict(logged_on)
        d["symbol" if "symbol" in d else "pad"] = "Q" * (n - 1000)  # well-formed, too big to be read at all
        return [self.pack(d)]

    def multipart(self, logged_on: bool) -> list[bytes]:
        parts = [self.pack({"type": "Heartbeat"}), b"", self.pack(self.check_harmless(self.valid_dict(logged_on),
                                                                                       logged_on))]
        k = self.rng.randrange(2, 5)
        return [self.rng.choice(parts) for _ in range(k)]

    def bad_logon(self, logged_on: bool) -> list[bytes]:
        d = {"type": "Logon", "session": self.rng.choice(["s", "", "x" * 65, "fuzz"]),
             "firm": self.rng.choice(UNKNOWN_FIRMS)}
        if self.rng.random() < 0.3:
            d[self.rng.choice(["next_seq", "heartbeat_ms", "cancel_on_disconnect"])] = self.rng.choice(
                [*WRONG_TYPES, *INT_EXTREMES])
        return [self.pack(d)]

    def well_formed(self, logged_on: bool) -> list[bytes]:
        """Decodes cleanly: refused because the socket never logged on, or (logged on) invalid by construction."""
        return [self.pack(self.check_harmless(self.valid_dict(logged_on), logged_on))]

    def draw(self, logged_on: bool) -> tuple[str, list[bytes]]:
        (name, fn), = self.rng.choices(self.makers, self.weights)
        self.kinds[name] += 1
        return name, fn(logged_on)


# ------------------------------------------------------------------ sockets


class FuzzSocket:
    def __init__(self, ctx: zmq.Context, endpoint: str, name: str, firm: str | None):
        self.name, self.firm = name, firm
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.connect(endpoint)
        self.logged_on = False
        self.sent = 0  # messages sent (a multipart message counts once)
        self.replies: Counter[str] = Counter()
        self.bad_replies: list[bytes] = []
        self.order_reports: list = []

    def send(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)
        self.sent += 1

    def drain(self) -> int:
        n = 0
        while True:
            try:
                raw = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return n
            n += 1
            try:
                msgs = p.decode_server_frame(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.bad_replies.append(raw[:200])
                continue
            for msg in msgs:
                self.replies[type(msg).__name__] += 1
                if isinstance(msg, ORDER_REPORTS):
                    self.order_reports.append(msg)

    @property
    def answered(self) -> int:
        return sum(self.replies.values()) + len(self.bad_replies)


def drain_all(socks: list[FuzzSocket], quiet_s: float, until=None, limit_s: float = 10.0) -> None:
    """Receive on every socket until none has anything for ``quiet_s`` (or ``until()`` holds, or limit_s)."""
    poller = zmq.Poller()
    for s in socks:
        poller.register(s.sock, zmq.POLLIN)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if until is not None and until():
            return
        ready = dict(poller.poll(int(quiet_s * 1000)))
        if not ready:
            return
        for s in socks:
            if s.sock in ready:
                s.drain()


# ------------------------------------------------------------------ state


def engine_state(venue) -> dict:
    """What no fuzz frame may change: every book, the order and trade counters, the rest of the arena."""
    engine = venue.engine
    A = engine.arena
    return {
        "books": [(engine.book_orders(i, 0), engine.book_orders(i, 1)) for i in range(len(engine.instruments))],
        "next_order_id": int(A[H_NEXT_OID]),
        "next_trade_id": int(A[H_NEXT_TID]),
        "live_orders": int(A[H_LIVE]),
        "arena_body_sha256": hashlib.sha256(A[HEADER:].tobytes()).hexdigest(),
        "gateway_orders": sorted((oid, o.owner.firm, o.instrument, o.leaves)
                                 for oid, o in venue.gateway.orders.items()),
        "packages": (len(venue.engine.packages), dict(venue.gateway.packages)),
    }


def describe_difference(before: dict, after: dict) -> str:
    out = []
    for k in before:
        if before[k] != after[k]:
            if k == "books":
                changed = [i for i, (b, a) in enumerate(zip(before[k], after[k], strict=True)) if b != a]
                out.append(f"books of instruments {changed[:10]} changed, e.g. {before[k][changed[0]]} -> "
                           f"{after[k][changed[0]]}")
            else:
                out.append(f"{k}: {str(before[k])[:200]} -> {str(after[k])[:200]}")
    return "; ".join(out)


# ------------------------------------------------------------------ the test


@pytest.fixture
def fuzz_venue(monkeypatch):
    """The venue, and the exceptions that ended any thread (the gateway's loop) while it ran."""
    crashes: list[str] = []
    previous = threading.excepthook

    def hook(args):
        crashes.append("".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))
        previous(args)

    monkeypatch.setattr(threading, "excepthook", hook)
    v = make_venue(firms=[*OWNERS, *FUZZ_FIRMS])
    yield v, crashes
    v.close()


def test_fuzz_frames_never_crash_the_gateway_nor_change_any_book(fuzz_venue):
    venue, crashes = fuzz_venue
    rng = random.Random(SEED)
    now = venue.clock.now
    symbols = [ins.symbol for ins in venue.engine.instruments if ins.close_ns > now]
    assert SYMBOL in symbols and OTHER in symbols

    # resting orders of two firms, on both sides of two books, from sessions that stay connected throughout
    owners = {f: venue.client(f, session="resting") for f in OWNERS}
    order_ids = []
    for k, c in enumerate(owners.values()):
        for j, (sym, side, price) in enumerate([(SYMBOL, Side.BUY, 1500 + k), (SYMBOL, Side.SELL, 2500 + k),
                                                (OTHER, Side.BUY, 3000 + k), (OTHER, Side.SELL, 4000 + k)]):
            c.send(p.NewOrder(100 + j, sym, side, 5 + j, price))
            acc = c.expect(p.Accepted, timeout=60)  # the first one may wait for numba's compile or cache load
            order_ids.append(acc.order_id)
    before = engine_state(venue)
    assert sum(len(b) + len(a) for b, a in before["books"]) == len(order_ids) == 8

    maker = FrameMaker(rng, symbols, order_ids)
    never = [FuzzSocket(venue.ctx, venue.gateway.endpoint, f"anon{i}", None) for i in range(3)]
    logged = [FuzzSocket(venue.ctx, venue.gateway.endpoint, f"fuzz{i}", f) for i, f in enumerate(FUZZ_FIRMS)]
    dropper = FuzzSocket(venue.ctx, venue.gateway.endpoint, "dropper", None)  # frames above ZeroMQ's hard limit
    socks = [*never, *logged]
    oversized_sent = 0

    rounds = 0
    t0 = time.monotonic()
    # round 1: garbage before any logon, on every socket
    for s in socks:
        for _ in range(BURST):
            s.send(maker.draw(logged_on=False)[1])
    drain_all(socks, 0.05)
    # log the fuzz firms on; from now on their sockets get only frames that cannot create an order
    for s in logged:
        drain_all([s], 0.01)
        s.send([maker.pack({"type": "Logon", "session": s.name, "firm": s.firm, "heartbeat_ms": 60_000,
                            "cancel_on_disconnect": True})])
        drain_all([s], 0.5, until=lambda s=s: s.replies["LogonAccepted"] > 0, limit_s=10)
        assert s.replies["LogonAccepted"] == 1, f"{s.name} could not log on: {s.replies}"
        s.logged_on = True

    total = sum(s.sent for s in socks)
    while total < FRAMES and time.monotonic() - t0 < TIME_LIMIT_S:
        for s in socks:
            for _ in range(BURST):
                if rng.random() < 0.002:  # oversized: refused unread
                    s.send(maker.oversized(s.logged_on))
                    maker.kinds["oversized"] += 1
                    oversized_sent += 1
                else:
                    s.send(maker.draw(s.logged_on)[1])
        rounds += 1
        if rounds % 20 == 0:
            dropper.send([rng.randbytes(HARD_LIMIT + rng.randrange(1, 1000))])
            dropper.send([maker.pack({"type": "NewOrder", "client_order_id": 1, "symbol": SYMBOL, "side": 0,
                                      "qty": 1, "price": 1000})])
            maker.kinds["above_zmq_hard_limit"] += 1
        drain_all(socks, 0.01, limit_s=2)
        total = sum(s.sent for s in socks) + dropper.sent
    elapsed = time.monotonic() - t0
    # every frame on a socket that never logged on gets exactly one reply: wait for the stragglers
    drain_all([*socks, dropper], 0.5, until=lambda: all(s.answered >= s.sent for s in never) or crashes,
              limit_s=20)
    drain_all([*socks, dropper], 0.2, limit_s=5)

    replies = Counter()
    for s in [*socks, dropper]:
        replies.update(s.replies)
    alive = getattr(getattr(venue.gateway, "_thread", None), "is_alive", lambda: True)()
    print(f"\nfuzz: {total:,} frames in {elapsed:.1f} s ({total / max(elapsed, 1e-9):,.0f}/s), by kind "
          f"{dict(sorted(maker.kinds.items()))}")
    print(f"replies: {dict(sorted(replies.items()))}; ProtocolError {replies['ProtocolError']:,}; "
          f"gateway stats {dict(venue.gateway.stats)}; gateway thread alive: {alive}")

    assert alive and not crashes, "the gateway's thread died during the fuzzing:\n" + "\n".join(crashes)
    assert total >= FRAMES, f"only {total:,} frames within {TIME_LIMIT_S} s"
    for s in [*socks, dropper]:
        assert not s.bad_replies, f"{s.name} got replies that are not ServerMessages: {s.bad_replies[:3]}"
        assert not s.order_reports, f"fuzz socket {s.name} got order reports: {s.order_reports[:5]}"
    for s in never:
        assert s.replies["LogonAccepted"] == 0, f"{s.name} was logged on by a fuzz frame"
        assert s.answered == s.sent, f"{s.name}: {s.sent:,} frames sent, {s.answered:,} answered: {s.replies}"
    assert replies["ProtocolError"] >= sum(s.sent for s in never) // 2
    assert oversized_sent > 0

    # no fuzz frame changed the market
    after = engine_state(venue)
    assert after == before, describe_difference(before, after)

    # and the gateway still serves: the resting sessions are alive, a new valid client gets an order accepted
    owners["ALPHA"].quiet(0.05)
    owners["ALPHA"].send(p.NewOrder(999, SYMBOL, Side.BUY, 3, 1400))
    assert owners["ALPHA"].expect(p.Accepted, timeout=5).client_order_id == 999
    fresh = venue.client("BETA", session="after-fuzz")
    fresh.send(p.NewOrder(1, OTHER, Side.SELL, 2, 4100))
    acc = fresh.expect(p.Accepted, timeout=5)
    assert (acc.client_order_id, acc.symbol, acc.qty, acc.price) == (1, OTHER, 2, 4100)
    book = venue.engine.book_orders(venue.gateway.instrument_of[OTHER], Side.SELL)
    assert [o.order_id for o in book][-1] == acc.order_id
