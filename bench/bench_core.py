"""Messages per second of the matching engine against its reference and other engines.

Builds the cancel-heavy flow of ``bench.flow`` once (default 2 million messages
on one instrument), then times:

(a) ``core batch``: ``engine.exchange.Exchange.process_batch`` over the flow
    in chunks of 65,536 records, the events of each chunk read in place from
    ``last_events`` (counted by kind), as a gateway would encode them; the
    engine is sized for the session up front (``expected_orders``), as a venue
    configures it (numba compile time excluded: a warm-up run on a separate
    small flow with another Exchange comes first);
(b) ``core single``: one command at a time through ``new_order`` / ``cancel`` /
    ``modify`` (the flow pre-converted to a Python list of tuples, so numpy
    indexing is not what is measured);
(c) ``reference``: ``engine.reference.ReferenceExchange.submit_batch`` over a
    prefix of the flow (default 200,000 messages; it is plain Python);
(d) each peer of ``bench.peers`` that imports, on the whole flow (or
    ``--peer-messages``);
(e) the wall time of every single command of the flow, one API call each, with
    the arena sized for the session (as a venue runs it) and with it grown on
    demand: p99.99, the longest (``core_max_pause_us`` sized,
    ``core_max_pause_grown_us`` grown) and how many took over 1 ms; then one
    growth of each region of an arena sized for 2 million orders.

Sanity checks: (a), (b) and (c) must emit identical events on the prefix they
share; (a) and (b) the same number of events over the whole flow; the number of
trades must equal what the flow's own book model expects, and no cancel may be
rejected. Peers print their match counts next to the expected one.

Prints a table, then as its last line
``core_batch_msgs_per_s=... core_single_msgs_per_s=... reference_msgs_per_s=... best_peer_msgs_per_s=...
core_max_pause_us=... core_max_pause_grown_us=...``
(``nan`` for what could not run). Usage: ``python bench/bench_core.py [--messages N]``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flow import flow_ops, generate_flow, make_flow, make_instruments  # noqa: E402
from bench.peers import PEERS  # noqa: E402
from engine.codes import CommandKind, EventKind  # noqa: E402
from engine.core.layout import (  # noqa: E402
    FULL_DUP,
    FULL_HEAP,
    FULL_IDS,
    FULL_LADDER,
    FULL_LEVELS,
    FULL_ORDERS,
    capacities,
    grow,
)
from engine.exchange import Exchange  # noqa: E402

CHUNK = 65_536
KIND_NAMES = {int(k): k.name for k in EventKind}


def kind_counts(events: np.ndarray) -> np.ndarray:
    return np.bincount(events["kind"].astype(np.int64), minlength=len(EventKind) + 1)


def run_batch(ex, records: np.ndarray, chunk: int = CHUNK) -> tuple[float, np.ndarray]:
    """Process records chunk by chunk, counting each chunk's events in place; (seconds, counts by kind)."""
    counts = np.zeros(len(EventKind) + 1, dtype=np.int64)
    process = ex.process_batch
    t0 = time.perf_counter()
    for start in range(0, len(records), chunk):
        process(records[start:start + chunk])
        counts += kind_counts(ex.last_events)
    return time.perf_counter() - t0, counts


def single_commands(records: np.ndarray) -> list[tuple]:
    """(kind, ts, firm, client_order_id, side, price, qty, tif, order_id) per record, as Python ints."""
    cols = ("kind", "ts", "firm", "client_order_id", "side", "price", "qty", "tif", "order_id")
    return list(zip(*(records[c].tolist() for c in cols), strict=True))


def one_command(ex):
    """A function that runs one tuple of ``single_commands`` through ``ex``'s one-at-a-time API; its events."""
    new_order, cancel, modify = ex.new_order, ex.cancel, ex.modify
    new, can = int(CommandKind.NEW_ORDER), int(CommandKind.CANCEL)

    def run(cmd: tuple) -> int:
        kind, ts, firm, coid, side, price, qty, tif, oid = cmd
        if kind == new:
            return new_order(ts, firm, coid, 0, side, price, qty, 0, tif)
        if kind == can:
            return cancel(ts, firm, oid)
        return modify(ts, firm, oid, price, qty)

    return run


def run_single(ex, cmds: list[tuple], keep_events: bool = False) -> tuple[float, int, list]:
    """One API call per command; (seconds, events, [event records] if keep_events).

    The timed loop (without ``keep_events``) is written out with the methods bound to locals: a function call
    per command would be part of what it measures."""
    new_order, cancel, modify = ex.new_order, ex.cancel, ex.modify
    new, can = int(CommandKind.NEW_ORDER), int(CommandKind.CANCEL)
    n_events = 0
    kept = []
    t0 = time.perf_counter()
    if keep_events:
        run = one_command(ex)
        for cmd in cmds:
            run(cmd)
            kept.append(np.array(ex.last_events, copy=True))
    else:
        for kind, ts, firm, coid, side, price, qty, tif, oid in cmds:
            if kind == new:
                n_events += new_order(ts, firm, coid, 0, side, price, qty, 0, tif)
            elif kind == can:
                n_events += cancel(ts, firm, oid)
            else:
                n_events += modify(ts, firm, oid, price, qty)
    return time.perf_counter() - t0, n_events, kept


def command_pauses(ex, cmds: list[tuple]) -> np.ndarray:
    """The wall time of each command, one API call each (ns), growth of the arena included where it happens."""
    run, clock = one_command(ex), time.perf_counter_ns
    out = np.empty(len(cmds), dtype=np.int64)
    for i, cmd in enumerate(cmds):
        t0 = clock()
        run(cmd)
        out[i] = clock() - t0
    return out


def growth_times(instruments, expected_orders: int) -> list[tuple[str, int, float]]:
    """(region, arena MiB, ms) of one growth of each region of an arena sized for ``expected_orders``."""
    base = Exchange(instruments, expected_orders=expected_orders).arena
    out = []
    for name, full in (("orders", FULL_ORDERS), ("levels", FULL_LEVELS), ("ladder", FULL_LADDER),
                       ("order ids", FULL_IDS), ("client ids", FULL_DUP), ("expiries", FULL_HEAP)):
        t0 = time.perf_counter()
        grow(base, full)
        out.append((name, base.nbytes >> 20, (time.perf_counter() - t0) * 1e3))
    return out


def first_difference(a: np.ndarray, b: np.ndarray) -> str:
    """Where two event record arrays first differ, and which columns differ how often."""
    if len(a) != len(b):
        return f"lengths {len(a)} and {len(b)}"
    cols = []
    for name in a.dtype.names:
        diff = np.nonzero(a[name] != b[name])[0]
        if len(diff):
            kinds = sorted({KIND_NAMES[int(k)].lower() for k in a["kind"][diff]})
            cols.append(f"column {name} in {len(diff)} records (first #{diff[0]}; {'/'.join(kinds)})")
    return "; ".join(cols) or "identical"


def describe(counts: np.ndarray) -> str:
    return ", ".join(f"{KIND_NAMES[k].lower()} {int(counts[k])}" for k in KIND_NAMES if counts[k])


def fmt_rate(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2_000_000, help="flow length (default 2,000,000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reference-messages", type=int, default=200_000,
                    help="prefix of the flow run through the reference (default 200,000)")
    ap.add_argument("--peer-messages", type=int, default=0, help="prefix for the peers (default: whole flow)")
    ap.add_argument("--chunk", type=int, default=CHUNK, help="records per submit_batch call")
    ap.add_argument("--no-peers", action="store_true")
    args = ap.parse_args(argv)

    n = args.messages
    t0 = time.perf_counter()
    records, stats = generate_flow(n, args.seed)
    print(f"flow: {stats.summary()} (generated in {time.perf_counter() - t0:.1f} s)")
    instruments = make_instruments()
    rows = []  # (implementation, messages, seconds, trades or None)
    failures = []
    prefix = min(args.reference_messages, n)

    # (a) and (b): the numba core
    core_batch = core_single = math.nan
    warm = make_flow(20_000, seed=args.seed + 1000)
    t0 = time.perf_counter()
    Exchange(instruments).submit_batch(warm)
    run_single(Exchange(instruments), single_commands(warm))
    print(f"core warm-up (numba compile or cache load): {time.perf_counter() - t0:.1f} s")

    secs, counts = run_batch(Exchange(instruments, expected_orders=n), records, args.chunk)
    core_batch = n / secs
    rows.append(("core batch (process_batch)", n, secs, int(counts[EventKind.TRADE])))
    print(f"core batch events: {describe(counts)}")
    if counts[EventKind.TRADE] != stats.trades:
        failures.append(f"core batch made {counts[EventKind.TRADE]} trades, the flow model {stats.trades}")
    if counts[EventKind.CANCEL_REJECTED] or counts[EventKind.REJECTED]:
        failures.append("core batch rejected commands the flow meant to be valid")

    cmds = single_commands(records)
    secs, n_events, _ = run_single(Exchange(instruments, expected_orders=n), cmds)
    core_single = n / secs
    rows.append(("core single (new_order/cancel/modify)", n, secs, None))
    if n_events != int(counts.sum()):
        failures.append(f"core single emitted {n_events} events, core batch {int(counts.sum())}")
    del cmds

    # (c): the reference, on a prefix
    reference = math.nan
    ref_events = None
    try:
        from engine.reference import ReferenceExchange
    except Exception as exc:  # noqa: BLE001
        print(f"SKIP reference (c): engine.reference is not importable ({type(exc).__name__}: {exc})")
    else:
        ref = ReferenceExchange(instruments)
        t0 = time.perf_counter()
        ref_events = ref.submit_batch(records[:prefix])
        secs = time.perf_counter() - t0
        reference = prefix / secs
        rows.append((f"reference (submit_batch, first {prefix})", prefix, secs,
                     int(kind_counts(ref_events)[EventKind.TRADE])))
        if prefix == n and kind_counts(ref_events)[EventKind.TRADE] != stats.trades:
            failures.append("reference trades differ from the flow model")

    # sanity on the shared prefix: (a), (b) and (c) emit identical events
    ex = Exchange(instruments)
    batch_events = np.concatenate([ex.submit_batch(records[s:min(s + args.chunk, prefix)])
                                   for s in range(0, prefix, args.chunk)])
    _, _, kept = run_single(Exchange(instruments), single_commands(records[:prefix]), keep_events=True)
    single_events = np.concatenate(kept) if kept else batch_events[:0]
    same_single = np.array_equal(batch_events, single_events)
    line = f"sanity on the first {prefix} messages: core batch {len(batch_events)} events, " \
           f"core single {len(single_events)}"
    if ref_events is not None:
        same_ref = np.array_equal(batch_events, ref_events)
        line += f", reference {len(ref_events)}; identical: single {same_single}, reference {same_ref}"
        if not same_ref:
            failures.append("core batch and reference events differ on the shared prefix: "
                            + first_difference(batch_events, ref_events))
    else:
        line += f"; identical: single {same_single}"
    if not same_single:
        failures.append("core batch and core single events differ on the shared prefix: "
                        + first_difference(batch_events, single_events))
    print(line)
    print(f"  event counts: {describe(kind_counts(batch_events))}")

    # (d): the peers
    best_peer = math.nan
    if not args.no_peers:
        peer_n = min(args.peer_messages or n, n)
        ops = flow_ops(records[:peer_n])
        for peer in PEERS:
            err = peer.import_error()
            if err is not None:
                print(f"SKIP peer {peer.name}: not importable ({err}); run bench/run_all.py to install it")
                continue
            t0 = time.perf_counter()
            c = peer.replay(ops)
            secs = time.perf_counter() - t0
            rows.append((f"peer {peer.name}", peer_n, secs, c.trades))
            best_peer = peer_n / secs if math.isnan(best_peer) else max(best_peer, peer_n / secs)
            expected = f" (flow model: {stats.trades})" if peer_n == n else ""
            print(f"peer {peer.name}: {c.trades} trades{expected}, traded qty {c.traded_qty}, "
                  f"{c.skipped} cancels/modifies of orders it had already filled; {peer.limitations}")

    # (e): the longest single-command pause, with the arena sized for the session and grown on demand
    cmds = single_commands(records)
    pause_rows = []
    for label, ex in (("sized for the session", Exchange(instruments, expected_orders=n)),
                      ("grown on demand", Exchange(instruments))):
        before = capacities(ex.arena)
        t = command_pauses(ex, cmds)
        grown = sum(int(math.log(capacities(ex.arena)[k] / before[k], 4)) for k in before)
        pause_rows.append((label, np.percentile(t, 99.99) / 1e3, t.max() / 1e3, int((t > 1_000_000).sum()), grown))
    del cmds
    core_max_pause_us, grown_max_pause_us = pause_rows[0][2], pause_rows[1][2]
    print()
    print(f"{'single-command pauses':<24} {'p99.99 us':>10} {'max us':>10} {'> 1 ms':>7} {'growths':>8}")
    for label, p9999, worst, over, grown in pause_rows:
        print(f"{label:<24} {p9999:>10.1f} {worst:>10.1f} {over:>7} {grown:>8}")
    big = 2_000_000
    print(f"\none growth of each region of an arena sized for {big:,} orders (a copy of the arena; the client-id "
          "set rehashed only when it grows):")
    for name, mib, ms in growth_times(instruments, big):
        print(f"  {name:<11} {mib:>4} MiB {ms:>8.1f} ms")

    # the table
    print()
    head = f"{'implementation':<44} {'messages':>10} {'seconds':>9} {'msgs/s':>12} {'vs batch core':>14} {'trades':>9}"
    print(head)
    print("-" * len(head))
    for name, msgs, secs, trades in rows:
        rate = msgs / secs
        ratio = "n/a" if math.isnan(core_batch) else f"{rate / core_batch:.4f}x"
        print(f"{name:<44} {msgs:>10} {secs:>9.3f} {rate:>12.0f} {ratio:>14} {'-' if trades is None else trades:>9}")
    print()
    if not math.isnan(core_batch):
        for name, msgs, secs, _ in rows[1:]:
            print(f"core batch is {core_batch / (msgs / secs):.1f}x {name}")
    for f in failures:
        print(f"SANITY FAILURE: {f}")
    print(f"core_batch_msgs_per_s={fmt_rate(core_batch)} core_single_msgs_per_s={fmt_rate(core_single)} "
          f"reference_msgs_per_s={fmt_rate(reference)} best_peer_msgs_per_s={fmt_rate(best_peer)} "
          f"core_max_pause_us={core_max_pause_us:.0f} core_max_pause_grown_us={grown_max_pause_us:.0f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
