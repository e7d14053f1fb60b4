"""Crash test: SIGKILL a journaled exchange process at random points; nothing acknowledged is lost.

The exchange runs as a separate process (``python -m gateway.journal_server
DIR``, fsync per batch, tiny segments, frequent checkpoints and background
snapshots, so kills land in appends, fsyncs, rotations and snapshot writes
too). A client thread streams random command batches into it, another reads
the acks; after a random delay the process gets SIGKILL, and is restarted
(recovering from DIR) for the next trial; every fifth restart is also killed
while it is still recovering. At every restart the recovered journal must
reach at least the last acknowledged command. At the end:

* every acknowledged batch is in the journal, byte for byte, at the sequence
  numbers of its ack; the journal is exactly the sent batches in order with
  some unacknowledged ones missing (whole), nothing else;
* every acknowledged new order is accounted for in the replayed events
  (Accepted or Rejected; an accepted one is live in the recovered book, or
  filled or cancelled), and no order appears that the client never sent;
* the recovered engine (snapshot + journal tail) equals a fresh replay of the
  whole journal: same state hash, same books.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from engine.codes import CommandKind, EventKind
from engine.exchange import Exchange
from engine.records import COMMAND_DTYPE
from journal.log import Batch, JournalReader
from journal.sequencer import JournaledExchange, replay_journal
from journal.snapshot import state_hash
from tests.conftest import make_instruments
from tests.journal.helpers import QUOTE_ID_BASE, IdState, random_records, small_config

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 20
TIME_BUDGET_S = 50
SERVER_ARGS = ["--fsync", "batch", "--segment-bytes", "32768", "--checkpoint-every", "700", "--snapshot-every", "2500"]


class Trial:
    """One server process: a sender thread, an ack reader thread, then SIGKILL."""

    def __init__(self, directory: Path, rng: random.Random, ids: IdState, sent: list[bytes], log: Path):
        self.rng = rng
        self.ids = ids
        self.sent = sent  # every batch ever sent, by global id
        self.local: list[int] = []  # global ids of the batches sent to this process, in order
        self.acks: dict[int, tuple[int, int]] = {}  # global id -> (first seq, last seq)
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.stderr = open(log, "ab")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.journal_server", str(directory), *SERVER_ARGS],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
        )
        self.ready = self.proc.stdout.readline().decode()

    def send_loop(self) -> None:
        try:
            while not self.stop.is_set():
                recs = random_records(self.rng, self.rng.randrange(1, 30), self.ids)
                body = recs.tobytes()
                self.local.append(len(self.sent))
                self.sent.append(body)
                self.proc.stdin.write(struct.pack("<I", len(body)) + body)
                self.proc.stdin.flush()
                time.sleep(0.001 * self.rng.random())
        except (BrokenPipeError, OSError):
            pass

    def read_loop(self) -> None:
        for line in self.proc.stdout:
            parts = line.decode().split()
            if parts[0] == "ack":
                k, first, last = map(int, parts[1:])
                self.acks[self.local[k]] = (first, last)
            else:
                self.errors.append(line.decode())

    def run(self, seconds: float) -> None:
        threads = [threading.Thread(target=self.send_loop), threading.Thread(target=self.read_loop)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.stop.set()
        for t in threads:
            t.join()
        with contextlib.suppress(OSError):  # what the dead process did not read
            self.proc.stdin.close()
        self.proc.stdout.close()
        self.stderr.close()


def kill_during_recovery(directory: Path, seconds: float, log: Path) -> None:
    """Start a server and SIGKILL it after ``seconds``, ready or not (recovery, repair, a new segment...)."""
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.journal_server", str(directory), *SERVER_ARGS],
                                cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        time.sleep(seconds)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdin.close()


def warm_up_compiled_core() -> None:
    """Compile (or load) the numba core here, so a server killed early never kills a compilation."""
    ex = Exchange(make_instruments())
    ex.process_batch(np.concatenate([random_records(random.Random(k), 50) for k in range(3)]))


def journal_records(directory: Path) -> np.ndarray:
    parts = [bytes(b.records) for b in JournalReader(directory) if isinstance(b, Batch)]
    return np.frombuffer(b"".join(parts), dtype=COMMAND_DTYPE)


@pytest.mark.slow
def test_sigkill_at_random_points_loses_no_acknowledged_batch(tmp_path):
    warm_up_compiled_core()
    d = tmp_path / "j"
    JournaledExchange.create(d, make_instruments(), config=small_config()).close()
    rng = random.Random(20261124)
    ids = IdState()
    sent: list[bytes] = []
    acks: dict[int, tuple[int, int]] = {}
    deadline = time.monotonic() + TIME_BUDGET_S
    trials = early = 0
    while trials < TRIALS and time.monotonic() < deadline:
        if trials % 5 == 4 and early <= trials // 5:  # now and then: kill it while it is still recovering
            early += 1
            kill_during_recovery(d, rng.uniform(0.0, 0.4), tmp_path / "server.log")
            continue
        t = time.monotonic()
        trial = Trial(d, rng, ids, sent, tmp_path / "server.log")
        startup = time.monotonic() - t
        assert trial.ready.startswith("ready "), (trial.ready, (tmp_path / "server.log").read_text())
        next_seq = int(trial.ready.split()[1].split("=")[1])
        acked_to = max((last for _, last in acks.values()), default=0)
        assert next_seq >= acked_to + 1, f"trial {trials}: recovered to {next_seq - 1}, acked up to {acked_to}"
        # a random kill point; on a slow machine shorter runs keep the trial count within the budget
        per_trial = (deadline - time.monotonic()) / (TRIALS - trials) - 1.5 * startup
        trial.run(rng.uniform(0.05, max(0.1, min(0.6, per_trial))))
        assert not trial.errors, trial.errors
        acks.update(trial.acks)
        trials += 1
    assert trials >= TRIALS, f"only {trials} trials in {TIME_BUDGET_S}s"
    assert acks, "no batch was ever acknowledged"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a torn tail left by the last kill
        recovered = JournaledExchange.recover(d, small_config())
    journal = journal_records(d)
    raw = journal.tobytes()
    size = COMMAND_DTYPE.itemsize
    assert len(journal) == recovered.last_seq

    # every acked batch at its acked place; the journal = sent batches in order, some unacked ones missing
    for gid, (first, last) in acks.items():
        assert raw[(first - 1) * size : last * size] == sent[gid], f"acked batch {gid} not at {first}..{last}"
    pos = 0
    present: list[int] = []
    for gid, body in enumerate(sent):
        if raw[pos : pos + len(body)] == body:
            present.append(gid)
            pos += len(body)
        else:
            assert gid not in acks, f"acked batch {gid} missing from the journal"
    assert pos == len(raw), "the journal holds records the client never sent"

    # events of a fresh replay of the whole journal account for every acked order, and only sent ones
    events = []
    fresh = replay_journal(d, on_events=lambda ev: events.append(ev.copy()))
    ev = np.concatenate(events)
    def order_keys(recs: np.ndarray) -> set[tuple[int, int]]:
        m = recs["kind"] == CommandKind.NEW_ORDER
        return set(zip(recs["firm"][m].tolist(), recs["client_order_id"][m].tolist(), strict=True))

    sent_orders = order_keys(journal)
    sent_quotes = set(journal["client_order_id"][journal["kind"] == CommandKind.MASS_QUOTE].tolist())
    acked_orders = order_keys(np.frombuffer(b"".join(sent[g] for g in acks), dtype=COMMAND_DTYPE))
    answers: dict[tuple[int, int], list] = {}
    oid_of: dict[int, tuple[int, int]] = {}
    answered = ev[(ev["kind"] == EventKind.ACCEPTED) | (ev["kind"] == EventKind.REJECTED)]
    for kind, firm, clid, oid in zip(answered["kind"].tolist(), answered["firm"].tolist(),
                                     answered["client_order_id"].tolist(), answered["order_id"].tolist(), strict=True):
        key = (firm, clid)
        if clid >= QUOTE_ID_BASE:
            assert clid in sent_quotes, f"quote {key} never sent"
        else:
            assert key in sent_orders, f"order {key} never sent"
            answers.setdefault(key, []).append(kind)
        if kind == EventKind.ACCEPTED:
            oid_of[oid] = key
    done = set(ev["order_id"][ev["kind"] == EventKind.CANCELLED].tolist())
    done |= set(ev["order_id"][(ev["kind"] == EventKind.FILL) & (ev["leaves"] == 0)].tolist())
    live = {o.order_id for i in range(len(make_instruments())) for s in (0, 1) for o in recovered.book_orders(i, s)}
    assert live <= set(oid_of), "a resting order that was never accepted"
    accepted_oids = {oid for oid, key in oid_of.items() if key in acked_orders}
    for key in acked_orders:
        assert len(answers.get(key, [])) == 1, f"acked order {key} answered {answers.get(key)}"
    for oid in accepted_oids:
        assert (oid in live) != (oid in done), f"accepted order {oid}: live={oid in live} done={oid in done}"

    # recovered (snapshot + tail) == fresh replay of the journal
    assert recovered.recovery.snapshot_seq > 0
    assert recovered.state_hash() == state_hash(fresh.exchange)
    for i in range(len(make_instruments())):
        for s in (0, 1):
            assert recovered.book_orders(i, s) == fresh.exchange.book_orders(i, s)
    recovered.close()
    print(f"{trials} trials (+{early} killed while recovering), {len(sent)} batches sent, {len(acks)} acked, "
          f"{len(present)} in the journal ({len(journal)} commands)")
