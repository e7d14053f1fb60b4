"""Crash test through the real gateway (issue #3): SIGKILL ``cx serve --journal DIR`` at random points.

``cx serve --config FILE --journal DIR`` runs as a separate process on fixed
free loopback ports (plain text, firms A and B). Each trial starts it (it
recovers from DIR), connects one DEALER client per firm, which logs on to
its firm's session "main" with ``next_seq`` = the seq after the last message
it ever received, so the venue first resends everything the client missed:
reports of batches journaled just before the last kill whose replies never
left, included. Every sequenced message must arrive with exactly the next
seq of the session (no gap, no duplicate, across all kills). The trial checks
that the venue answers (a crossing IOC per firm must reach a final report),
then streams resting GTC limits, crossing IOCs and cancels of the trial's own
accepted orders and records every Accepted, Executed and Cancelled the
clients receive, until a random moment when the process gets SIGKILL; what
was already in the clients' queues is drained and counts as received.

Each trial trades two instruments of its own, so the orders left resting by
earlier trials must survive every later kill and restart untouched. The
second test trades against orders resting from before a kill: the gateway
rebuilt their sessions from the journal, so they can be hit and cancelled,
their owner resumes its session and receives those reports, and the venue
keeps answering.

After the trials the venue is started once more (recovering from the last
kill), the clients resume and it is checked to answer; a new connection that
logs on to each session from seq 1 must get exactly the messages its client
received over all the trials. Then the venue is stopped with SIGINT (final
checkpoint and snapshot of the live state). Then, from a fresh replay of the
whole journal:

1. every order a client got Accepted for was accepted in the replay with the
   same order id, firm and client order id, and is either resting in the
   replayed books or filled/cancelled in the replayed events (exactly one);
   the clients got an Accepted for every order accepted in the replay, and
   exactly the fills and cancels of the replay (nothing was lost in a crash
   window: the resends delivered it);
2. no order appears that no client sent: every client order id in the
   journal's new orders and in the replayed Accepted / Rejected events is one
   a client sent, and every resting order was accepted in the replay;
3. the live state after the restarts equals a fresh replay: the checkpoint
   and snapshot the last server wrote on SIGINT match the replayed state
   hash, and two replays from the genesis give the same state hash and
   events (the checks of ``cx replay DIR --verify``, in this process).

Every loop is bounded in count and time; every server process is killed in a
``finally``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest
import zmq

from engine.codes import CommandKind, EventKind, OrderType, Side, TimeInForce
from engine.exchange import Exchange
from engine.records import COMMAND_DTYPE
from gateway import protocol as p
from gateway.config import GatewayConfig
from journal.log import Batch, JournalReader, read_genesis
from journal.sequencer import replay_journal
from tests.conftest import make_instruments
from tests.journal.helpers import random_records

ROOT = Path(__file__).resolve().parents[2]
CX = Path(sys.executable).with_name("cx")
FIRMS = ("A", "B")
TRIALS = 20
TIME_BUDGET_S = 120  # hard bound of the trial loop (~25-45 s: 20 restarts of ~0.6-2 s each, kill delays)
READY_TIMEOUT_S = 60  # the first start may load (or compile) the numba core
KILL_DELAY_S = (0.02, 0.4)
MAX_MESSAGES_PER_TRIAL = 2000
OFFSET = 8  # price levels either side of the mid: GTC limits rest within, IOCs cross all of them


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports that are free now (all bound at once, then released)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_config(path: Path) -> None:
    """Plain text, firms A and B, every endpoint of the gateway config (order entry, admin, feeds...) on a free port."""
    endpoints = [f.name for f in msgspec.structs.fields(GatewayConfig)
                 if isinstance(f.default, str) and f.default.startswith("tcp://")]
    assert {"order_entry", "admin"} <= set(endpoints), endpoints
    lines = [f'{name} = "tcp://127.0.0.1:{port}"' for name, port in zip(endpoints, free_ports(len(endpoints)),
                                                                        strict=True)]
    firms = "".join(f'[[firms]]\nname = "{f}"\n' for f in FIRMS)
    path.write_text("[gateway]\n" + "\n".join(lines) + f"\nplaintext = true\n{firms}")


class Server:
    """One ``cx serve --journal`` process; stdout and stderr go to ``log``."""

    def __init__(self, config: Path, journal: Path, log: Path):
        self.log = log
        self.out = open(log, "wb")  # noqa: SIM115 - closed in stop()
        cmd = [str(CX)] if CX.exists() else [sys.executable, "-c", "import sys; from gateway.cli import main; "
                                                                      "sys.exit(main())"]
        self.proc = subprocess.Popen([*cmd, "serve", "--config", str(config), "--journal", str(journal)],
                                     cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> str:
        """The order-entry endpoint, once the venue prints it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.text().splitlines():
                if line.startswith("cx serve:") and "order entry on" in line:
                    return line.split("order entry on ")[1].split(",")[0]
            assert self.proc.poll() is None, f"cx serve exited with {self.proc.returncode}:\n{self.text()}"
            time.sleep(0.01)
        raise AssertionError(f"cx serve not listening after {timeout}s:\n{self.text()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def interrupt(self, timeout: float) -> int:
        """Ctrl-C: the venue stops cleanly (final checkpoint and snapshot)."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        try:
            self.kill()
        finally:
            self.out.close()


class Ledger:
    """What the clients sent and received, over all trials."""

    def __init__(self):
        self.next_clid = {f: 1 for f in FIRMS}
        self.sent: dict[str, set[int]] = {f: set() for f in FIRMS}
        self.accepted: dict[int, tuple[str, int]] = {}  # order id -> (firm, client order id)
        self.fills: set[tuple[int, int, int, int]] = set()  # (order id, trade id, qty, leaves)
        self.cancelled: set[int] = set()
        self.live: dict[str, set[int]] = {f: set() for f in FIRMS}  # believed live: cancel candidates
        self.final: set[tuple[str, int]] = set()  # (firm, clid) with a final report (IOC checks)
        self.other: list = []  # Rejected, CancelRejected, ProtocolError, SystemEvent ...
        self.history: dict[tuple[str, str], list] = {}  # (firm, session) -> every sequenced message, by seq
        self.resent = 0  # messages first received in a resend after a restart (their replies died with a venue)

    def clid(self, firm: str) -> int:
        c = self.next_clid[firm]
        self.next_clid[firm] += 1
        self.sent[firm].add(c)
        return c

    def record(self, firm: str, msg) -> None:
        if isinstance(msg, p.Accepted):
            assert msg.order_id not in self.accepted, f"order id {msg.order_id} accepted twice"
            self.accepted[msg.order_id] = (firm, msg.client_order_id)
            self.live[firm].add(msg.order_id)
        elif isinstance(msg, p.Executed):
            self.fills.add((msg.order_id, msg.trade_id, msg.qty, msg.leaves))
            if msg.leaves == 0:
                self.live[firm].discard(msg.order_id)
                self.final.add((firm, msg.client_order_id))
        elif isinstance(msg, p.Cancelled):
            self.cancelled.add(msg.order_id)
            self.live[firm].discard(msg.order_id)
            self.final.add((firm, msg.client_order_id))
        elif isinstance(msg, p.Rejected):
            self.final.add((firm, msg.client_order_id))
            self.other.append(msg)
        elif not isinstance(msg, p.Heartbeat | p.LogonAccepted):
            self.other.append(msg)


def log_on(ctx: zmq.Context, endpoint: str, firm: str, session: str, next_seq: int) -> tuple[zmq.Socket, int]:
    """A DEALER logged on to the session from ``next_seq``; and the seq the venue's next new message gets."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sock.send(p.client_encoder.encode(p.Logon(session, next_seq=next_seq, firm=firm, cancel_on_disconnect=False)))
    assert sock.poll(10_000), f"no answer to the logon of {firm}"
    reply = p.decode_server_frame(sock.recv())
    assert isinstance(reply[0], p.LogonAccepted), reply
    return sock, reply[0].next_seq


class Trader:
    """A plain-text DEALER client of one firm's session: it resumes where its history ends.

    Logs on with ``next_seq`` after the last message the session ever
    delivered to it and waits until the venue's resend has caught up; every
    sequenced message must carry the next seq of the session."""

    def __init__(self, ctx: zmq.Context, endpoint: str, firm: str, session: str, ledger: Ledger):
        self.firm, self.ledger = firm, ledger
        self.history = ledger.history.setdefault((firm, session), [])
        self.sock, venue_next = log_on(ctx, endpoint, firm, session, len(self.history) + 1)
        assert venue_next >= len(self.history) + 1, f"{firm}/{session}: the venue lost messages {venue_next}.."
        deadline = time.monotonic() + 10
        before = len(self.history)
        while len(self.history) < venue_next - 1 and time.monotonic() < deadline:
            self.pump(10)
        assert len(self.history) == venue_next - 1, f"{firm}/{session}: resend stopped at {len(self.history)}"
        ledger.resent += venue_next - 1 - before

    def send(self, msg) -> None:
        self.sock.send(p.client_encoder.encode(msg))

    def pump(self, timeout_ms: int = 0) -> int:
        """Record every frame waiting (waiting up to timeout_ms for the first); the number of frames."""
        n = 0
        while n < 10_000 and self.sock.poll(timeout_ms if n == 0 else 0):
            for msg in p.decode_server_frame(self.sock.recv()):
                seq = getattr(msg, "seq", None)
                if seq is not None:
                    assert seq == len(self.history) + 1, f"{self.firm}: seq {seq} after {len(self.history)}"
                    self.history.append(msg)
                self.ledger.record(self.firm, msg)
            n += 1
        return n

    def drain(self, quiet_ms: int = 100, limit_s: float = 2.0) -> None:
        """Everything that reaches the socket until it stays quiet for quiet_ms (bounded by limit_s)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and self.pump(quiet_ms):
            pass

    def close(self) -> None:
        self.sock.close(linger=0)


class Flow:
    """Random order messages on the instruments of the current trial."""

    def __init__(self, rng: random.Random, ledger: Ledger):
        self.rng, self.ledger = rng, ledger
        self.books: list[tuple[str, int, int]] = []

    def use(self, instruments: list) -> None:
        """Trade these instruments from now on; cancel only orders accepted from now on."""
        self.books = [(i.symbol, i.min_price + 50 * i.price_increment, i.price_increment) for i in instruments]
        self.ledger.live = {f: set() for f in FIRMS}

    def ioc(self, firm: str, side: Side | None = None) -> p.NewOrder:
        symbol, mid, inc = self.rng.choice(self.books)
        side = side if side is not None else self.rng.choice((Side.BUY, Side.SELL))
        price = mid + OFFSET * inc if side == Side.BUY else mid - OFFSET * inc
        return p.NewOrder(self.ledger.clid(firm), symbol, side, self.rng.randint(1, 30), price,
                          OrderType.LIMIT, TimeInForce.IOC)

    def message(self, firm: str):
        u = self.rng.random()
        live = self.ledger.live[firm]
        if u < 0.2 and live:
            return p.Cancel(self.rng.choice(sorted(live)))
        if u < 0.45:
            return self.ioc(firm)
        symbol, mid, inc = self.rng.choice(self.books)
        side = self.rng.choice((Side.BUY, Side.SELL))
        k = self.rng.randint(1, OFFSET - 1)
        price = mid - k * inc if side == Side.BUY else mid + k * inc
        return p.NewOrder(self.ledger.clid(firm), symbol, side, self.rng.randint(1, 20), price)


def open_instruments(journal: Path, n: int) -> list:
    """n instruments of the journal's listing that stay open for hours."""
    now = time.time_ns()
    ok = [i for i in read_genesis(journal).instruments if i.open_ns <= now and i.close_ns > now + 6 * 3600 * 10**9]
    assert len(ok) >= n, f"only {len(ok)} instruments open for hours, {n} needed"
    return ok[:n]


def check_answers(traders: list[Trader], flow: Flow, ledger: Ledger, timeout: float = 10.0) -> None:
    """Each firm sends a crossing IOC; each must reach a final report (fills of old resting orders included)."""
    want = []
    for t, side in zip(traders, (Side.BUY, Side.SELL), strict=True):
        msg = flow.ioc(t.firm, side)
        t.send(msg)
        want.append((t.firm, msg.client_order_id))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(w in ledger.final for w in want):
        for t in traders:
            t.pump(10)
    assert all(w in ledger.final for w in want), f"the venue did not answer {want} within {timeout}s"


def warm_up_compiled_core() -> None:
    """Load (or compile) the numba core here, so no server is killed while compiling it."""
    ex = Exchange(make_instruments())
    ex.process_batch(np.concatenate([random_records(random.Random(k), 50) for k in range(3)]))


def session_history(ctx: zmq.Context, endpoint: str, firm: str, session: str, limit_s: float = 10.0) -> list:
    """Every message of the session from seq 1, as a new connection that takes the session over gets them."""
    sock, venue_next = log_on(ctx, endpoint, firm, session, 1)
    got: list = []
    deadline = time.monotonic() + limit_s
    try:
        while len(got) < venue_next - 1 and time.monotonic() < deadline:
            if sock.poll(50):
                got.extend(m for m in p.decode_server_frame(sock.recv()) if hasattr(m, "seq"))
    finally:
        sock.close(linger=0)
    return got


def run_trial(server: Server, ctx: zmq.Context, endpoint: str, instruments: list, flow: Flow, ledger: Ledger,
              kill_after: float) -> int:
    """Resume the sessions, stream orders for kill_after seconds, then SIGKILL; the number of messages sent."""
    traders = [Trader(ctx, endpoint, f, "main", ledger) for f in FIRMS]
    flow.use(instruments)  # after the resend: the orders of earlier trials are no cancel candidates
    try:
        check_answers(traders, flow, ledger)
        kill_at = time.monotonic() + kill_after
        sent = 0
        while time.monotonic() < kill_at and sent < MAX_MESSAGES_PER_TRIAL:
            for _ in range(flow.rng.randint(1, 4)):
                t = flow.rng.choice(traders)
                t.send(flow.message(t.firm))
                sent += 1
            for t in traders:
                t.pump(1)
        server.kill()
        for t in traders:  # what the venue sent before it died
            t.drain(50)
        return sent
    finally:
        for t in traders:
            t.close()


def journal_records(directory: Path) -> np.ndarray:
    parts = [bytes(b.records) for b in JournalReader(directory) if isinstance(b, Batch)]
    return np.frombuffer(b"".join(parts), dtype=COMMAND_DTYPE)


@pytest.mark.slow
def test_sigkill_cx_serve_loses_no_acknowledged_order(tmp_path):
    warm_up_compiled_core()
    config, d = tmp_path / "gateway.toml", tmp_path / "journal"
    write_config(config)
    rng = random.Random(20261124)
    ledger = Ledger()
    ctx = zmq.Context()
    servers: list[Server] = []
    flow = Flow(rng, ledger)
    instruments: list = []
    start = time.monotonic()
    deadline = start + TIME_BUDGET_S
    trials = sent = 0
    startups: list[float] = []
    try:
        while trials < TRIALS and time.monotonic() < deadline:
            t0 = time.monotonic()
            server = Server(config, d, tmp_path / f"serve-{trials}.log")
            servers.append(server)
            endpoint = server.wait_ready(READY_TIMEOUT_S if trials == 0 else 30)
            startups.append(time.monotonic() - t0)
            if not instruments:
                instruments = open_instruments(d, 2 * (TRIALS + 1))
            # a random kill point; shorter runs on a slow machine keep the trial count within the budget
            per_trial = (deadline - time.monotonic()) / (TRIALS - trials) - 1.5 * startups[-1]
            sent += run_trial(server, ctx, endpoint, instruments[2 * trials : 2 * trials + 2], flow, ledger,
                              rng.uniform(KILL_DELAY_S[0], max(0.1, min(KILL_DELAY_S[1], per_trial))))
            server.stop()
            trials += 1
        assert trials >= TRIALS, f"only {trials} trials in {TIME_BUDGET_S}s (startups {startups})"

        trial_time = time.monotonic() - start
        # the last restart recovers from the last kill, answers, and stops cleanly on Ctrl-C
        server = Server(config, d, tmp_path / "serve-final.log")
        servers.append(server)
        endpoint = server.wait_ready(30)
        assert "recovered to command" in server.text(), server.text()
        traders = [Trader(ctx, endpoint, f, "main", ledger) for f in FIRMS]
        flow.use(instruments[2 * TRIALS : 2 * TRIALS + 2])
        try:
            check_answers(traders, flow, ledger)
            for t in traders:
                t.drain(50)
        finally:
            for t in traders:
                t.close()
        for f in FIRMS:  # the venue's rebuilt store of each session is exactly what its client received
            assert session_history(ctx, endpoint, f, "main") == ledger.history[(f, "main")], f"session {f}/main"
        assert server.interrupt(timeout=60) == 0, server.text()
        assert "cx serve: stopped" in server.text(), server.text()
        server.stop()
    finally:
        for s in servers:
            s.stop()
        ctx.destroy(linger=0)
    for s in servers:
        assert "Traceback" not in s.text(), f"{s.log.name}:\n{s.text()}"
    final_time = time.monotonic() - start - trial_time
    assert ledger.accepted, "no order was ever accepted"

    # (3) the live state after the restarts (checkpoint and snapshot written on Ctrl-C) == a fresh replay
    events: list[np.ndarray] = []
    fresh = replay_journal(d, check_snapshots=True, digest=True, on_events=lambda ev: events.append(ev.copy()))
    assert fresh.checkpoints_checked >= 1 and fresh.snapshots_checked >= 1, fresh
    assert not fresh.mismatches, fresh.mismatches
    assert fresh.torn is None, fresh.torn
    again = replay_journal(d, digest=True)  # what `cx replay DIR --verify` does, without a second process
    assert (again.state_hash(), again.event_digest, again.last_seq) == (
        fresh.state_hash(), fresh.event_digest, fresh.last_seq), "two replays of the journal differ"

    ev = np.concatenate(events)
    firm_name = dict(enumerate(FIRMS))
    journal = journal_records(d)
    assert len(journal) == fresh.last_seq

    # (2) nothing the clients never sent
    new = journal[journal["kind"] == CommandKind.NEW_ORDER]
    for firm, clid in zip(new["firm"].tolist(), new["client_order_id"].tolist(), strict=True):
        assert clid in ledger.sent[firm_name[firm]], f"journaled order ({firm}, {clid}) never sent"
    replay_accepted: dict[int, tuple[str, int]] = {}
    answered = ev[(ev["kind"] == EventKind.ACCEPTED) | (ev["kind"] == EventKind.REJECTED)]
    for kind, firm, clid, oid in zip(answered["kind"].tolist(), answered["firm"].tolist(),
                                     answered["client_order_id"].tolist(), answered["order_id"].tolist(), strict=True):
        if firm < 0:  # a command of no firm (the gateway's own)
            continue
        assert clid in ledger.sent[firm_name[firm]], f"replayed order ({firm}, {clid}) never sent"
        if kind == EventKind.ACCEPTED:
            assert oid not in replay_accepted, f"order id {oid} accepted twice in the replay"
            replay_accepted[oid] = (firm_name[firm], clid)
    live = {o.order_id for i in range(len(fresh.genesis.instruments)) for s in (0, 1)
            for o in fresh.exchange.book_orders(i, s)}
    assert live <= set(replay_accepted), f"resting orders never accepted: {sorted(live - set(replay_accepted))}"

    # (1) every acknowledged order is resting, or filled / cancelled, in the replay
    fills = ev[ev["kind"] == EventKind.FILL]
    replay_fills = set(zip(fills["order_id"].tolist(), fills["trade_id"].tolist(), fills["qty"].tolist(),
                           fills["leaves"].tolist(), strict=True))
    replay_cancelled = set(ev["order_id"][ev["kind"] == EventKind.CANCELLED].tolist())
    done = replay_cancelled | set(fills["order_id"][fills["leaves"] == 0].tolist())
    for oid, key in ledger.accepted.items():
        assert replay_accepted.get(oid) == key, f"acknowledged order {oid} {key}: replay has {replay_accepted.get(oid)}"
        assert (oid in live) != (oid in done), f"acknowledged order {oid}: live={oid in live} done={oid in done}"
    assert set(replay_accepted) == set(ledger.accepted), "orders accepted in the journal but never acknowledged: " \
        f"{sorted(set(replay_accepted) - set(ledger.accepted))}"
    assert ledger.fills == replay_fills, f"fills received but not replayed: {sorted(ledger.fills - replay_fills)}, " \
        f"replayed but never received: {sorted(replay_fills - ledger.fills)}"
    assert ledger.cancelled == replay_cancelled, \
        f"cancels received xor replayed: {sorted(ledger.cancelled ^ replay_cancelled)}"
    print(f"{trials} trials in {trial_time:.1f}s (startup {min(startups):.2f}-{max(startups):.2f}s), final restart and "
          f"stop {final_time:.1f}s, replays {fresh.seconds:.1f}+{again.seconds:.1f}s; {sent} "
          f"messages sent, {len(ledger.accepted)} accepted, {len(ledger.fills)} fills and {len(ledger.cancelled)} "
          f"cancels received; journal {fresh.last_seq} commands, {len(live)} resting; session histories "
          f"{ {f: len(ledger.history[(f, 'main')]) for f in FIRMS} }, {ledger.resent} messages received only "
          "in a resend after a restart")
    shutil.rmtree(d)


@pytest.mark.slow
def test_orders_resting_from_before_a_kill_trade_and_cancel_after_restart(tmp_path):
    """An order resting at a SIGKILL can be hit and cancelled after the restart; its owner's session, resumed,
    gets those reports; the venue keeps answering."""
    warm_up_compiled_core()
    config, d = tmp_path / "gateway.toml", tmp_path / "journal"
    write_config(config)
    ledger = Ledger()
    flow = Flow(random.Random(3), ledger)
    ctx = zmq.Context()
    servers: list[Server] = []

    def final(firm: str, clid: int, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (firm, clid) not in ledger.final:
            for t in traders:
                t.pump(10)
        assert (firm, clid) in ledger.final, f"no final report for {firm} order {clid}: {ledger.other}"

    try:
        server = Server(config, d, tmp_path / "serve-0.log")
        servers.append(server)
        endpoint = server.wait_ready(READY_TIMEOUT_S)
        flow.use(open_instruments(d, 1))
        symbol, mid, _ = flow.books[0]
        traders = [Trader(ctx, endpoint, f, "s0", ledger) for f in FIRMS]
        bids = [p.NewOrder(ledger.clid("A"), symbol, Side.BUY, 10, mid) for _ in range(2)]
        for m in bids:
            traders[0].send(m)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(ledger.live["A"]) < 2:
            traders[0].pump(10)
        resting = sorted(ledger.live["A"])
        assert len(resting) == 2, ledger.other
        server.kill()
        for t in traders:
            t.close()

        server = Server(config, d, tmp_path / "serve-1.log")
        servers.append(server)
        endpoint = server.wait_ready(30)
        traders = [Trader(ctx, endpoint, "B", "s1", ledger)]
        ioc = flow.ioc("B", Side.SELL)
        traders[0].send(msgspec.structs.replace(ioc, qty=10))  # fills the first bid, resting from before the kill
        final("B", ioc.client_order_id)
        traders.append(Trader(ctx, endpoint, "A", "s0", ledger))  # resumes: gets the fill it missed
        final("A", bids[0].client_order_id)
        traders[1].send(p.Cancel(resting[1]))  # cancels the second
        final("A", bids[1].client_order_id)
        probe = p.NewOrder(ledger.clid("A"), symbol, Side.BUY, 1, mid - 1)
        traders[1].send(probe)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not any(k == ("A", probe.client_order_id)
                                                      for k in ledger.accepted.values()):
            traders[1].pump(10)
        assert ("A", probe.client_order_id) in ledger.accepted.values(), "the venue stopped answering"
        a = ledger.history[("A", "s0")]
        assert [(type(m), m.seq, m.order_id) for m in a[2:]] == [
            (p.Executed, 3, resting[0]), (p.Cancelled, 4, resting[1]), (p.Accepted, 5, a[-1].order_id)]
        for t in traders:
            t.close()
    finally:
        for s in servers:
            s.stop()
        ctx.destroy(linger=0)
    for s in servers:
        assert "Traceback" not in s.text(), f"{s.log.name}:\n{s.text()}"
    events: list[np.ndarray] = []
    replay_journal(d, on_events=lambda ev: events.append(ev.copy()))
    ev = np.concatenate(events)
    assert resting[0] in ev["order_id"][(ev["kind"] == EventKind.FILL) & (ev["leaves"] == 0)].tolist()
    assert resting[1] in ev["order_id"][ev["kind"] == EventKind.CANCELLED].tolist()
