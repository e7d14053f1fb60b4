"""The whole venue from the outside: ``cx serve --journal`` and ``cx simulate`` as two processes on loopback.

Checked without looking inside either process: trades on every accelerator, call auctions cleared with
packages accepted, the books a subscriber built from the feed equal to the books of the journal's replay,
positions summing to zero per instrument, and a clean shutdown on Ctrl-C (SIGINT).
"""

import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import zmq

from engine.codes import EventKind, InstrumentStatus, PackageEventKind, Side
from feeds.client import FeedClient
from gateway.client import OrderEntryClient
from gateway.config import DEFAULT_FIRMS
from gateway.positions import JournalPositions
from journal.sequencer import replay_journal
from tests.feeds.conftest import engine_books, local_books

SIMULATION_S = 16
ACCELERATORS = {"H100", "H200", "B200", "MI300X"}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _read_until(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} not printed within {timeout}s:\n{''.join(seen)}")


def test_serve_and_simulate_trade_clear_auctions_and_agree_with_the_journal(tmp_path):
    oe, admin, md, snap = (f"tcp://127.0.0.1:{p}" for p in _free_ports(4))
    cfg = tmp_path / "venue.toml"
    cfg.write_text(f'[gateway]\norder_entry = "{oe}"\nadmin = "{admin}"\nmarket_data = "{md}"\n'
                   f'snapshots = "{snap}"\nplaintext = true\nauction_interval_s = 4\nindicative_interval_s = 2\n'
                   + "".join(f'[[firms]]\nname = "{f}"\n' for f in DEFAULT_FIRMS))
    journal = tmp_path / "journal"
    serve = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(cfg), "--journal",
                              str(journal)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ctx = zmq.Context()
    feed = client = None
    try:
        _read_until(serve, "order entry on", 120)
        feed = FeedClient(md, snap, ctx=ctx).connect()
        client = OrderEntryClient(context=ctx)
        client.connect(oe, "e2e", firm="DEMO", cancel_on_disconnect=False)
        sim = subprocess.Popen([sys.executable, "-m", "gateway.cli", "simulate", "--gateway", oe, "--feed", md,
                                "--snapshots", snap, "--duration", str(SIMULATION_S), "--seed", "7"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + SIMULATION_S + 90
        placed = False
        while sim.poll() is None and time.monotonic() < deadline:
            feed.poll(20)
            client.recv(0)
            open_books = sorted(s for s, b in feed.books.items() if b.status == InstrumentStatus.OPEN)
            if not placed and feed.synced and len(open_books) >= 8:
                # resting bids of our own, far under the market, that outlive the simulation (it cancels all
                # of its orders when it stops), so the final books are not empty
                for k, symbol in enumerate(open_books[:8]):
                    client.new_order(symbol, Side.BUY, 3 + k, 1100 + 5 * k)
                placed = True
        sim_out = sim.communicate(timeout=30)[0]
        assert sim.returncode == 0, sim_out
        assert "firms trading through" in sim_out and "GPU-h bought / sold" in sim_out
        quiet_until = time.monotonic() + 2.5  # heartbeats reveal any lost tail; the client resyncs by itself
        while time.monotonic() < quiet_until:
            feed.poll(20)
            client.recv(0)
        feed_books = {s: local_books(b) for s, b in feed.books.items()}
        auction = feed.auction_result()
    finally:
        if client is not None:
            client.close()
        if feed is not None:
            feed.close()
        ctx.destroy(linger=0)
        serve.send_signal(signal.SIGINT)
        out = serve.communicate(timeout=120)[0]
    assert serve.returncode == 0 and "cx serve: stopped" in out and "Traceback" not in out, out

    events: list[np.ndarray] = []
    replay = replay_journal(journal, on_events=lambda ev: events.append(ev.copy()))
    ev = np.concatenate(events)
    engine = replay.exchange
    symbols = [i.symbol for i in engine.instruments]
    traded = Counter(symbols[i].split(".")[0] for i in ev[ev["kind"] == EventKind.TRADE]["instrument"].tolist())
    assert set(traded) == ACCELERATORS, traded
    results = ev[ev["kind"] == PackageEventKind.AUCTION_RESULT]
    final = results[results["side"] == 0]
    assert len(final) >= 2 and int(final["qty"].sum()) > 0, final  # auctions cleared, packages accepted
    assert len(ev[ev["kind"] == PackageEventKind.PACKAGE_FILL]) > 0
    # the feed saw the auctions while it listened; the venue may clear one more between its close and the stop
    assert auction is not None and auction.auction >= int(final["order_id"].max()) - 1, auction
    same = final[final["order_id"] == auction.auction]
    assert len(same) == 1 and (int(same["price"][0]), int(same["qty"][0])) == (auction.surplus, auction.accepted)
    for i, s in enumerate(symbols):  # the subscriber's books are the engine's, queue order included
        if s in feed_books:
            assert feed_books[s] == engine_books(engine, i), s
    assert any(engine_books(engine, i)[0] for i in range(len(symbols)))  # our bids (some hours may have closed)
    positions = JournalPositions(journal)
    for i in range(len(symbols)):
        held = [p for (_, inst), p in positions.positions.items() if inst == i]
        assert sum(p.net for p in held) == 0 and sum(p.cash for p in held) == 0, symbols[i]
