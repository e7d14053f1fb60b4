"""The write-ahead journal: replay speed, restart time, and what journaling costs the core.

Builds a long deterministic flow: the cancel-heavy flow of ``bench.flow``
(``--base`` messages, default 1 million, generated once), repeated until
``--commands`` (default 10 million) with order ids, client order ids and
times shifted, each repetition followed by one MassCancel per firm so that the
next one starts from an empty book exactly as the generator assumed (so no
cancel is ever rejected and the trade count is known: both are checked).

Then measures, in a scratch directory (``--dir``, default under /var/tmp, on
a real disk: fsync on tmpfs would cost nothing):

(a) journaling overhead: ``Exchange.process_batch`` alone vs
    ``journal.sequencer.JournaledExchange.process_batch`` with ``fsync=none``
    and ``fsync=batch`` (one durable write per batch), on the first
    ``--overhead-commands`` (default 2 million) in batches of 1,024, 8,192 and
    65,536 commands, arenas pre-sized (no growth inside the timing), best of
    ``--repeat`` runs each. The summary uses fsync=batch at 65,536 commands per
    batch, the batch size ``bench_core.py`` measures the core at;
(b) writing the whole journal with the default policy (fsync per batch,
    snapshot every 5 million commands and on close), 65,536 per batch, next to
    the same flow through a bare engine (both arenas growing as needed);
(c) replay speed: ``replay_journal`` from the genesis (read, check, match), in
    this process;
(d) restart time of a new process (``python -c ... JournaledExchange.recover``:
    interpreter, imports, compiled-code cache, recovery): without snapshot
    (replays everything), from the snapshot written at shutdown, and after a
    crash (the shutdown snapshot set aside: the periodic snapshot plus the
    journal tail after it). Every restart must reach the same state hash.

Prints a table, then last the line
``replay_cmds_per_s=... restart_10m_s=... journal_overhead_pct=...``
(``restart_10m_s`` is the after-a-crash restart, the slowest one that uses a
snapshot). Usage: ``python bench/bench_journal.py [--commands N] [--base N]
[--overhead-commands N] [--repeat N] [--dir DIR] [--keep]``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.flow import MAKER_FIRMS, TAKER_FIRMS, TS_STEP, generate_flow, make_instruments  # noqa: E402
from engine.codes import CommandKind, EventKind  # noqa: E402
from engine.exchange import Exchange  # noqa: E402
from engine.records import COMMAND_DTYPE  # noqa: E402
from journal.log import JournalConfig, list_segments  # noqa: E402
from journal.sequencer import JournaledExchange, replay_journal  # noqa: E402
from journal.snapshot import list_snapshots  # noqa: E402

WRITE_BATCH = 65_536
OVERHEAD_BATCHES = (1_024, 8_192, 65_536)
SUMMARY_BATCH = 65_536
FIRMS = MAKER_FIRMS + len(TAKER_FIRMS)

RESTART = """
import json, os, sys, time
t0 = time.perf_counter()
from journal.sequencer import JournaledExchange
t1 = time.perf_counter()
je = JournaledExchange.recover(sys.argv[1], use_snapshot=sys.argv[2] == "1")
t2 = time.perf_counter()
r = je.recovery
print(json.dumps({"import_s": t1 - t0, "recover_s": t2 - t1, "snapshot_seq": r.snapshot_seq,
                  "replayed": r.replayed_commands, "last_seq": r.last_seq, "hash": je.state_hash()}), flush=True)
os._exit(0)  # no close(): that would write a checkpoint and a snapshot
"""


def long_flow(commands: int, base_n: int, seed: int = 1) -> tuple[np.ndarray, int, int]:
    """(records, repetitions, expected trades): the base flow repeated, each time shifted, then mass cancels."""
    base, stats = generate_flow(base_n, seed)
    sep = np.zeros(FIRMS, dtype=COMMAND_DTYPE)
    sep["kind"] = CommandKind.MASS_CANCEL
    sep["firm"] = np.arange(FIRMS)
    sep["instrument"] = -1
    sep["ts"] = base["ts"][-1] + TS_STEP * np.arange(1, FIRMS + 1)
    unit = np.concatenate([base, sep])
    reps = -(-commands // len(unit))
    new_orders = int((base["kind"] == CommandKind.NEW_ORDER).sum())
    out = np.tile(unit, reps)
    k = np.repeat(np.arange(reps, dtype=np.int64), len(unit))
    new = out["kind"] == CommandKind.NEW_ORDER
    out["client_order_id"][new] += k[new] * new_orders
    target = (out["kind"] == CommandKind.CANCEL) | (out["kind"] == CommandKind.MODIFY)
    out["order_id"][target] += k[target] * new_orders
    out["ts"] += k * (len(unit) * TS_STEP)
    return out, reps, reps * stats.trades


def new_orders_in(records: np.ndarray) -> int:
    return int((records["kind"] == CommandKind.NEW_ORDER).sum())


def time_plain(flow: np.ndarray, batch: int) -> float:
    ex = Exchange(make_instruments(), expected_orders=new_orders_in(flow))
    t = time.perf_counter()
    for i in range(0, len(flow), batch):
        ex.process_batch(flow[i : i + batch])
    return time.perf_counter() - t


def time_journaled(flow: np.ndarray, batch: int, policy: str, scratch: Path) -> float:
    d = Path(tempfile.mkdtemp(dir=scratch))
    cfg = JournalConfig(fsync=policy, checkpoint_interval_s=0, snapshot_every_commands=0, snapshot_on_close=False)
    je = JournaledExchange.create(d, make_instruments(), config=cfg, expected_orders=new_orders_in(flow))
    t = time.perf_counter()
    for i in range(0, len(flow), batch):
        je.process_batch(flow[i : i + batch])
    elapsed = time.perf_counter() - t
    je.close()
    shutil.rmtree(d)
    return elapsed


def restart(directory: Path, use_snapshot: bool) -> dict:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RESTART, str(directory), "1" if use_snapshot else "0"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if done.returncode:
        raise RuntimeError(f"restart failed: {done.stderr}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


def dir_bytes(d: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in d.glob(pattern))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commands", type=int, default=10_000_000)
    ap.add_argument("--base", type=int, default=1_000_000, help="length of the generated flow that is repeated")
    ap.add_argument("--overhead-commands", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per overhead measurement (best is kept)")
    ap.add_argument("--dir", default="/var/tmp", help="where the scratch journal directory goes")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--messages", type=int, help="(from run_all.py) ignored: this benchmark sizes its own flow")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    flow, reps, expected_trades = long_flow(args.commands, min(args.base, args.commands))
    n = len(flow)
    print(f"flow: {n:,} commands ({reps} x {args.base:,}-message bench.flow + mass cancels), "
          f"built in {time.perf_counter() - t:.1f}s")
    scratch = Path(tempfile.mkdtemp(prefix="bench_journal_", dir=args.dir))
    rows: list[tuple[str, str, str, str]] = []
    try:
        # warm-up: compile / load the numba core and the journal path outside every timing
        time_journaled(flow[:20_000], 4096, "none", scratch)
        time_plain(flow[:20_000], 4096)

        # (a) overhead
        part = flow[: min(args.overhead_commands, n)]
        overhead: dict[int, float] = {}
        for batch in OVERHEAD_BATCHES:
            best = {"plain": math.inf, "none": math.inf, "batch": math.inf}
            for _ in range(args.repeat):  # interleaved, best of each: the machine's noise hits all three alike
                best["plain"] = min(best["plain"], time_plain(part, batch))
                for policy in ("none", "batch"):
                    best[policy] = min(best[policy], time_journaled(part, batch, policy, scratch))
            plain = best["plain"]
            rows.append(("core, no journal", f"{batch:,}", f"{len(part) / plain:,.0f} cmd/s", ""))
            for policy in ("none", "batch"):
                jt = best[policy]
                pct = 100 * (jt - plain) / plain
                if policy == "batch":
                    overhead[batch] = pct
                rows.append((f"journaled, fsync={policy}", f"{batch:,}", f"{len(part) / jt:,.0f} cmd/s",
                             f"{pct:+.1f}% time"))

        # (b) the long journal, after the same flow without one (arena growing as the journal's engine's does)
        ex = Exchange(make_instruments())
        t = time.perf_counter()
        for i in range(0, n, WRITE_BATCH):
            ex.process_batch(flow[i : i + WRITE_BATCH])
        plain_long_s = time.perf_counter() - t
        del ex
        rows.append((f"core, no journal, all {n / 1e6:.0f}M", f"{WRITE_BATCH:,}", f"{n / plain_long_s:,.0f} cmd/s",
                     "arena grows as needed"))
        d = scratch / "journal"
        je = JournaledExchange.create(d, make_instruments(), config=JournalConfig())
        counts = np.zeros(16, dtype=np.int64)
        t = time.perf_counter()
        for i in range(0, n, WRITE_BATCH):
            je.process_batch(flow[i : i + WRITE_BATCH])
            counts += np.bincount(je.last_events["kind"], minlength=16)
        je.wait_for_snapshot()
        write_s = time.perf_counter() - t
        pause_s = je.last_snapshot_pause_s  # the periodic snapshot's copy of the arena
        t = time.perf_counter()
        je.close()
        close_s = time.perf_counter() - t
        if counts[EventKind.CANCEL_REJECTED] or counts[EventKind.TRADE] != expected_trades:
            raise RuntimeError(f"flow not matched as generated: {counts[EventKind.CANCEL_REJECTED]} cancel rejects, "
                               f"{counts[EventKind.TRADE]} trades, expected {expected_trades}")
        snaps = list_snapshots(d)
        arena_mb = snaps[-1][1].stat().st_size / 1e6
        rows.append((f"write {n / 1e6:.0f}M journal, fsync=batch", f"{WRITE_BATCH:,}", f"{n / write_s:,.0f} cmd/s",
                     f"{100 * (write_s - plain_long_s) / plain_long_s:+.1f}% time; close {close_s:.2f}s"))
        rows.append(("  journal on disk", "", f"{dir_bytes(d, '*.seg') / 1e6:,.0f} MB",
                     f"{len(list_segments(d))} segments"))
        rows.append(("  snapshots", "", f"{arena_mb:,.0f} MB each", ", ".join(f"@{s:,}" for s, _ in snaps)))
        rows.append(("  matching paused per snapshot", "", f"{pause_s * 1e3:,.0f} ms" if len(snaps) > 1 else "n/a",
                     "arena copy into a pre-faulted buffer; written after"))

        # (c) replay speed
        res = replay_journal(d, verify_checkpoints=False)
        replay_rate = res.commands / res.seconds
        rows.append(("replay from genesis (in process)", f"{65_536:,}", f"{replay_rate:,.0f} cmd/s",
                     f"{res.seconds:.2f}s"))

        # (d) restarts
        full = restart(d, use_snapshot=False)
        clean = restart(d, use_snapshot=True)
        newest = snaps[-1][1]
        aside = newest.with_name(newest.name + ".aside")
        newest.rename(aside)
        try:
            crashed = restart(d, use_snapshot=True)
        finally:
            aside.rename(newest)
        for name, r in (("restart, no snapshot", full), ("restart, snapshot at shutdown", clean),
                        ("restart after crash, periodic snapshot", crashed)):
            rows.append((name, "", f"{r['wall_s']:.2f}s",
                         f"recover {r['recover_s']:.2f}s: snapshot @{r['snapshot_seq']:,} + {r['replayed']:,} cmds"))
        if len({full["hash"], clean["hash"], crashed["hash"], res.state_hash()}) != 1:
            raise RuntimeError("restarts reached different states")
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    w = max(len(r[0]) for r in rows)
    print(f"\n{'':<{w}}  {'batch':>7}  {'result':>18}  notes")
    for name, batch, result, note in rows:
        print(f"{name:<{w}}  {batch:>7}  {result:>18}  {note}")
    print(f"\nall restarts reached state {full['hash'][:16]}...; last command {full['last_seq']:,}")
    print(f"replay_cmds_per_s={replay_rate:.0f} restart_10m_s={crashed['wall_s']:.2f} "
          f"journal_overhead_pct={overhead[SUMMARY_BATCH]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
