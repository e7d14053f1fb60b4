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
adopts the recovered resting orders (session ``recovered`` of their firm).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import threading
import time
from pathlib import Path

import zmq.auth

from engine.codes import Side, TimeInForce
from engine.exchange import Exchange
from engine.instruments import NS_PER_HOUR
from engine.listing import load_listing
from engine.sequencer import JournaledExchange, replay_journal
from feeds.protocol import write_schema as write_feed_schema
from feeds.publisher import FeedPublisher
from gateway import protocol
from gateway.client import OrderEntryClient
from gateway.config import load_config
from gateway.server import Gateway
from gateway.units import format_price

SCHEMA_PATH = Path(__file__).parent / "schema" / "order_entry.json"
EXPECTED_ORDERS = 250_000  # initial engine size; it grows beyond (each snapshot holds the whole arena)
ROLLING_DAY_HOURS = 24  # hours listed beyond the window: they open one by one as the window rolls


def cmd_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config(args.config)
    anchor = time.time_ns() // NS_PER_HOUR * NS_PER_HOUR
    listing = load_listing(args.listing)
    instruments = listing.instruments(anchor, listing.window_hours + ROLLING_DAY_HOURS)
    if args.journal:
        engine = JournaledExchange.open(args.journal, instruments, len(config.firms),
                                        expected_orders=EXPECTED_ORDERS)
        instruments = engine.instruments  # a recovered journal keeps the listing it was started with
        if engine.recovery is not None:
            print(f"cx serve: {engine.recovery}", flush=True)
    else:
        engine = Exchange(instruments, len(config.firms), expected_orders=EXPECTED_ORDERS)
    feeds = FeedPublisher(instruments, config.market_data, config.snapshots).bind()
    if args.journal and engine.recovery is not None:
        # the feeds learn the books only from events: give them the journal's whole history first
        replay_journal(args.journal, verify_checkpoints=False, on_events=feeds.on_events)
    feeds.start()
    gateway = Gateway(config, engine, on_events=feeds.on_events).start()
    print(f"cx serve: {len(instruments)} instruments, order entry on {gateway.endpoint}, admin on "
          f"{gateway.admin_endpoint} ({'plain text' if config.plaintext else 'CurveZMQ'}), market data on "
          f"{feeds.endpoint}, snapshots on {feeds.snapshot_endpoint}", flush=True)
    stop = threading.Event()
    demo = None
    if args.demo:
        demo = DemoTraders(gateway.endpoint, demo_symbols(instruments, anchor + 5 * NS_PER_HOUR), stop, args.seed)
        demo.start()
    deadline = time.monotonic() + args.duration if args.duration > 0 else None
    with contextlib.suppress(KeyboardInterrupt):
        while not gateway.failed and (deadline is None or time.monotonic() < deadline):
            stop.wait(0.2)
    stop.set()
    if demo is not None:
        demo.join()
    gateway.stop()
    feeds.stop()
    if args.journal:
        engine.close()  # final checkpoint and snapshot
    if gateway.failed:
        print(f"cx serve: the gateway failed: {gateway.error!r}", flush=True)
        return 1
    print(f"cx serve: stopped; {dict(gateway.stats)}")
    return 0


def demo_symbols(instruments, delivery_start_ns: int) -> list[str]:
    """One FIRM instrument per accelerator for that delivery hour (the first region listed)."""
    chosen: dict[str, str] = {}
    for i in instruments:
        if i.delivery_start_ns == delivery_start_ns and i.service_class == "FIRM":
            chosen.setdefault(i.accelerator, i.symbol)
    return list(chosen.values())


class DemoTraders(threading.Thread):
    """A market maker quoting a few instruments and a taker crossing it, through the gateway."""

    def __init__(self, endpoint: str, symbols: list[str], stop: threading.Event, seed: int):
        super().__init__(name="cx-demo", daemon=True)
        self.endpoint, self.symbols, self.stop_event = endpoint, symbols, stop
        self.rng = random.Random(seed)
        self.trades = 0

    def run(self) -> None:
        maker, taker = OrderEntryClient(), OrderEntryClient()
        maker.connect(self.endpoint, "demo-maker", firm="MM1")
        taker.connect(self.endpoint, "demo-taker", firm="DEMO")
        mids = {s: 2000 + 500 * k for k, s in enumerate(self.symbols)}
        quote_id = 0
        while not self.stop_event.wait(0.25):
            quote_id += 1
            for s in mids:
                mids[s] = max(200, mids[s] + self.rng.choice((-5, 0, 0, 5)))
            maker.mass_quote(quote_id, [(s, m - 10, 20, m + 10, 20) for s, m in mids.items()])
            if self.rng.random() < 0.6:
                s = self.rng.choice(self.symbols)
                side = self.rng.choice((Side.BUY, Side.SELL))
                limit = mids[s] + (15 if side == Side.BUY else -15)
                taker.new_order(s, side, self.rng.randint(1, 8), limit, tif=TimeInForce.IOC)
            for msg in (*_drain(maker), *_drain(taker)):
                if isinstance(msg, protocol.Executed) and msg.liquidity == 2:
                    self.trades += 1
                    print(f"trade {msg.symbol} {'BUY ' if msg.side == Side.BUY else 'SELL'} {msg.qty:>3} GPUs "
                          f"@ ${format_price(msg.price)}", flush=True)
        for c in (maker, taker):
            c.logout()
            c.close()


def _drain(client: OrderEntryClient):
    while (msg := client.recv(0)) is not None:
        yield msg


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
    p.add_argument("--demo", action="store_true", help="also run a demo market maker and taker through the gateway")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (0: until Ctrl-C)")
    p.add_argument("--seed", type=int, default=1, help="seed of the demo traders")
    p.set_defaults(func=cmd_serve)
    keys = sub.add_parser("keys", help="CurveZMQ key pairs").add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("new", help="write NAME.key and NAME.key_secret")
    k.add_argument("name", metavar="NAME", help="a firm name, or 'gateway' for the gateway's own pair")
    k.add_argument("--dir", default="keys", help="where to write them (default ./keys)")
    k.set_defaults(func=cmd_keys_new)
    s = sub.add_parser("schema", help="write the JSON Schema of the order-entry protocol")
    s.add_argument("--out", default=str(SCHEMA_PATH), help=f"output file (default {SCHEMA_PATH})")
    s.set_defaults(func=cmd_schema)
