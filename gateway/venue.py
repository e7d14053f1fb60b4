"""The running venue and its set-up commands: ``cx serve``, ``cx keys new``, ``cx schema``.

``cx serve`` assembles the venue in one process: the listing (anchored at the
current UTC hour), the matching engine sized for a trading day (with
``--journal DIR``, behind the sequencer: every batch is in the journal, on
disk, before any reply to it leaves, and a restart recovers the exact state),
the order-entry gateway and the market-data publisher (fed with every batch's
events by the gateway) on their configured endpoints, and, with ``--demo``, a demo market maker
and a demo taker trading against it through the real gateway (their own
DEALER connections) so that a newcomer sees a live market. It runs until
Ctrl-C or ``--duration`` seconds and prints a summary.

``cx keys new FIRM`` writes a CurveZMQ key pair (``FIRM.key`` public,
``FIRM.key_secret`` secret) for a firm or for the gateway itself.
``cx schema`` writes the JSON Schemas of the order-entry and market-data protocols.
After a restart from the journal, the publisher is first fed the journal's
whole event history (it learns the books only from events), and the gateway
rebuilds its sessions from the same replay (``Gateway.replay_commands``):
every session's sequenced messages, the orders and their owners, so a client
that logs on again with ``next_seq`` gets exactly what it missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import zmq.auth

from engine.auction.market import Market
from engine.codes import EventKind
from engine.core import entry
from engine.exchange import Exchange
from engine.exchange import warm_up as exchange_warm_up
from engine.instruments import NS_PER_HOUR
from engine.listing import ListingError, load_listing
from feeds import fold
from feeds.fold import warm_up as feed_warm_up
from feeds.protocol import write_schema as write_feed_schema
from feeds.publisher import FeedPublisher
from gateway import protocol
from gateway.config import ConfigError, load_config
from gateway.server import Gateway
from gateway.simulate import Simulation
from gateway.units import format_elapsed, format_qty
from journal.log import JournalError
from journal.sequencer import JournaledExchange, replay_journal
from journal.snapshot import SnapshotError

SCHEMA_PATH = Path(__file__).parent / "schema" / "order_entry.json"
# the engine sized for a trading day up front, so that matching does not pause to grow it (a growth copies the
# whole arena: tens of ms); it still grows beyond (each snapshot holds the whole arena)
ENGINE_SIZE = {"expected_orders": 250_000, "live_orders": 32_768, "levels": 32_768, "ladder_depth": 128}
ROLLING_DAY_HOURS = 24  # hours listed beyond the window: they open one by one as the window rolls
TICK_S = 10.0  # a compile in progress says so this often
# what the venue compiles before it opens its ports: (name, warm-up, one of its compiled functions, cold seconds
# measured on this project's 2-core machine)
COMPILED = (("the matching core", exchange_warm_up, entry.run_batch, 27),
            ("the market-data feed", feed_warm_up, fold._fold, 20))


def say(text: str) -> None:
    print(text, flush=True)


def load_compiled_code(say=say, clock=time.monotonic) -> None:
    """Compile (a machine's first run) or load from numba's cache every compiled function the venue runs,
    saying which and how long, before any port opens: no client's first order waits on a compiler."""
    cold = [name for name, _, dispatcher, _ in COMPILED if not is_cached(dispatcher)]
    if cold:
        about = sum(seconds for _, _, _, seconds in COMPILED)
        say(f"cx serve: compiling the matching core (first run only, about {about} s on 2 cores)...")
    else:
        say("cx serve: loading the compiled matching core from its cache...")
    start = clock()
    for k, (name, warm_up, _, _) in enumerate(COMPILED, 1):
        begun = clock()
        done = threading.Event()
        ticker = threading.Thread(target=_tick, args=(done, say, f"{name} ({k}/{len(COMPILED)})", clock),
                                  daemon=True)
        ticker.start()
        try:
            warm_up()
        finally:
            done.set()
            ticker.join()
        if cold:
            say(f"cx serve:   {name} ready in {clock() - begun:.0f} s ({k}/{len(COMPILED)})")
    say(f"cx serve: compiled code {'compiled' if cold else 'loaded'} in {clock() - start:.1f} s")


def _tick(done: threading.Event, say, what: str, clock) -> None:
    """Say every ``TICK_S`` seconds that ``what`` is still compiling, until ``done``."""
    begun = clock()
    while not done.wait(TICK_S):
        say(f"cx serve:   still compiling {what}: {clock() - begun:.0f} s so far")


def is_cached(dispatcher) -> bool:
    """Whether numba's cache holds an index for this ``@njit(cache=True)`` function (its first run is a load)."""
    func = dispatcher.py_func
    module = func.__module__.rsplit(".", 1)[-1]
    return any(Path(dispatcher.stats.cache_path).glob(f"{module}.{func.__qualname__}-*.nbi"))


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the venue; a configuration, listing, journal or port that cannot be used is one line and exit 2."""
    try:
        return serve(args)
    except (ConfigError, ListingError, JournalError, SnapshotError, OSError, zmq.ZMQError) as exc:
        print(f"cx serve: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 2


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    listing = load_listing(args.listing)
    load_compiled_code()
    anchor = time.time_ns() // NS_PER_HOUR * NS_PER_HOUR
    instruments = listing.instruments(anchor, listing.window_hours + ROLLING_DAY_HOURS)
    if args.journal:
        engine = JournaledExchange.open(args.journal, instruments, len(config.firms), **ENGINE_SIZE)
        instruments = engine.instruments  # a recovered journal keeps the listing it was started with
        if engine.recovery is not None:
            print(f"cx serve: {engine.recovery}", flush=True)
    else:
        engine = Market(Exchange(instruments, len(config.firms), **ENGINE_SIZE))
    (engine.exchange if args.journal else engine).clock = time.perf_counter  # the clearing's budget is wall time
    feeds = FeedPublisher(instruments, config.market_data, config.snapshots).bind()
    gateway = Gateway(config, engine)
    if args.journal and engine.recovery is not None:
        # the feeds learn the books only from events, the gateway its sessions from the batches' notes:
        # one replay of the journal's whole history gives both, before either opens
        replay_journal(args.journal, verify_checkpoints=False, on_events=feeds.on_events,
                       on_commands=gateway.replay_commands)
    feeds.auction_solve_us = lambda auction, indicative: gateway.clear_us  # the feed asks while the batch is published
    feeds.start()
    gateway.on_events = count_trades(feeds.on_events, gateway.stats)
    gateway.start()
    print(f"cx serve: ready: {len(instruments)} instruments, order entry on {gateway.endpoint}, admin on "
          f"{gateway.admin_endpoint} ({'plain text' if config.plaintext else 'CurveZMQ'}), market data on "
          f"{feeds.endpoint}, snapshots on {feeds.snapshot_endpoint}", flush=True)
    stop = threading.Event()
    simulation = None
    if args.simulate:
        sim = Simulation(gateway.endpoint, feeds.endpoint, feeds.snapshot_endpoint, listing, args.seed)
        simulation = threading.Thread(target=sim.run, args=(stop,), name="cx-simulate", daemon=True)
        simulation.start()
    started = time.monotonic()
    deadline = started + args.duration if args.duration > 0 else None
    with contextlib.suppress(KeyboardInterrupt):
        while not gateway.failed and (deadline is None or time.monotonic() < deadline):
            stop.wait(0.2)
    stop.set()
    if simulation is not None:
        simulation.join()  # it cancels its orders and logs out while the gateway still runs
    steps = [gateway.stop, feeds.stop] + ([engine.close] if args.journal else [])  # close: checkpoint, snapshot
    if not gateway.failed:
        for step in steps:
            step()
        print(format_stop_summary(gateway.stats, time.monotonic() - started), flush=True)
        return 0
    for step in steps:  # after a failure each step is tried; what they raise is said briefly, before the cause
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the cause below is what matters
            print(f"cx serve: while stopping: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    cause = gateway.error
    print(f"cx serve: the gateway failed, the venue stopped: {type(cause).__name__}: {cause}", file=sys.stderr,
          flush=True)
    return 1


STOP_SUMMARY = (("trades", "trades"), ("traded_qty", "GPU-h traded"), ("auctions", "auctions cleared"),
                ("indicative_auctions", "indicative auctions"), ("commands", "engine commands"),
                ("frames", "messages received"), ("gateway_rejects", "refused by the gateway"),
                ("protocol_errors", "protocol errors"), ("logon_rejected", "logons refused"),
                ("heartbeat_timeouts", "sessions timed out"), ("send_dropped", "reports dropped"),
                ("oversized", "oversized frames"), ("auth_refused", "CURVE keys refused"))


def format_stop_summary(stats, seconds: float) -> str:
    """The table ``cx serve`` prints when it stops: every counter of the gateway that is not zero, named."""
    named = dict(STOP_SUMMARY)
    keys = [k for k in named if stats.get(k)] + sorted(k for k, v in stats.items() if k not in named and v)
    width = max((len(named.get(k, k)) for k in keys), default=0)
    lines = [f"cx serve: stopped after {format_elapsed(int(seconds * 1e9))}"]
    lines += [f"  {named.get(k, k):<{width}} {format_qty(stats[k]):>12}" for k in keys]
    return "\n".join(lines)


def count_trades(publish, stats):
    """``on_events`` for the gateway: publish the batch, and count its trades and GPU-hours in ``stats``.

    The counts (``trades``, ``traded_qty``) reach the operator in the admin status reply. O(batch), vectorised."""

    def on_events(records: np.ndarray) -> None:
        publish(records)
        trades = records["kind"] == EventKind.TRADE
        stats["trades"] += int(np.count_nonzero(trades))
        stats["traded_qty"] += int(records["qty"][trades].sum())

    return on_events


def cmd_keys_new(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    public_file, secret_file = zmq.auth.create_certificates(out, args.name)
    public = zmq.auth.load_certificate(public_file)[0].decode()
    print(f"wrote {public_file} (public, give it to the gateway operator) and {secret_file} (secret, keep it)")
    print(f"[[firms]]\nname = \"{args.name}\"\npublic_key = \"{public}\"")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(protocol.json_schema(), indent=2, sort_keys=True) + "\n"
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path} and {write_feed_schema()}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the venue: engine and order-entry gateway",
                       description="Run the venue on its configured endpoints until Ctrl-C.")
    p.add_argument("--config", metavar="FILE", default=None, help="gateway TOML (default: built-in, loopback)")
    p.add_argument("--listing", metavar="FILE", default=None, help="listing TOML (default: built-in)")
    p.add_argument("--journal", metavar="DIR", default=None,
                   help="journal every command to DIR before its replies leave; recover from DIR on start")
    p.add_argument("--simulate", "--demo", action="store_true",
                   help="also run the simulated participants of `cx simulate` through the gateway")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    p.add_argument("--seed", type=int, default=1, help="seed of the simulated participants")
    p.set_defaults(func=cmd_serve)
    keys = sub.add_parser("keys", help="CurveZMQ key pairs").add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("new", help="write NAME.key and NAME.key_secret")
    k.add_argument("name", metavar="NAME", help="a firm name, or 'gateway' for the gateway's own pair")
    k.add_argument("--dir", default="keys", help="where to write them (default ./keys)")
    k.set_defaults(func=cmd_keys_new)
    s = sub.add_parser("schema", help="write the JSON Schema of the order-entry protocol")
    s.add_argument("--out", default=str(SCHEMA_PATH), help=f"output file (default {SCHEMA_PATH})")
    s.set_defaults(func=cmd_schema)
