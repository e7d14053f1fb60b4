"""Market data on tcp loopback: feed messages/s published, delivery to 1, 10 and 50 subscribers, latency, a stall.

The events are made once, up front: ``bench.flow.make_flow`` commands (one
instrument, cancel-heavy, a few thousand live orders) run through
``engine.exchange.Exchange`` in batches of 500, the event records kept. Each
run then hands the same batches to a fresh ``feeds.publisher.FeedPublisher``
(``on_events``, as the gateway would), so the engine is not in the figures:
they are the feed's cost (folding events into its books, encoding, PUB sends)
and ZeroMQ's fan-out.

Subscribers live in one other process (``multiprocessing`` "spawn"), each a
SUB socket subscribed to everything, draining with a poller; they count
frames and do not decode (except in the latency run). A run starts once every
subscriber has received a heartbeat (so subscriptions are in place).

Measured:
(1) throughput with 1, 10 and 50 subscribers: messages published / wall time
    of the publishing loop, and the share each subscriber received (PUB drops
    for a subscriber that falls behind instead of waiting for it); a
    subscriber counts what it read by ``DRAIN_S`` (2 s) after the publisher
    finished, so with 50 Python subscribers in one process on a small machine
    the share says how far behind they fell, not what ZeroMQ dropped;
(2) latency at 50,000 messages/s offered: one subscriber, batches of 20
    commands' events (about 60 messages) released on a schedule so messages leave at 50k/s; a
    message's latency is from its batch's scheduled time (stamped in ``ts``)
    to its decoding in the subscriber (``time.time_ns`` on both sides), the
    first 0.3 s not counted;
(3) a stalled subscriber: 1 live subscriber plus one that connects and never
    reads (RCVHWM 1000); the publisher's throughput as a percentage of (1)'s
    single-subscriber figure. ~100 % means a stuck client costs the venue
    nothing (it just loses messages and must resync).

The machine's cores are shared by all processes (the output says how many).
Prints a table, then as its last line
``feed_msgs_per_s=... feed_p99_us_at_50k=... stalled_sub_throughput_pct=...``.
Usage: ``python bench/bench_feeds.py [--messages N]`` (N commands, default
100,000, at most 500,000; ``run_all.py`` passes its own). Every wait is
bounded; the subscriber process is stopped on exit.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import queue
import sys
import time
from pathlib import Path

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.flow import make_flow, make_instruments  # noqa: E402
from engine.exchange import Exchange  # noqa: E402
from feeds import protocol as fp  # noqa: E402
from feeds.publisher import FeedPublisher  # noqa: E402

LOOPBACK = "tcp://127.0.0.1:*"
LATENCY_RATE = 50_000
LATENCY_SECONDS = 3.0
WARMUP_NS = 300_000_000
DRAIN_S = 2.0  # subscribers read for at most this long after the publisher is done


def subscriber_main(endpoint: str, n: int, mode: str, ready, results, stop, deadline_s: float) -> None:
    """n SUB sockets; mode "count" (frames per socket), "latency" (decode, ts to now) or "stalled" (never read)."""
    ctx = zmq.Context()
    socks = []
    for _ in range(n):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, 1000 if mode == "stalled" else 200_000)
        s.setsockopt(zmq.SUBSCRIBE, b"")
        s.connect(endpoint)
        socks.append(s)
    poller = zmq.Poller()
    for s in socks:
        poller.register(s, zmq.POLLIN)
    end = time.monotonic() + deadline_s
    heard = set()
    while len(heard) < n and time.monotonic() < end:
        for s, _ in poller.poll(50):
            s.recv_multipart()
            heard.add(s)
    ready.put(len(heard) == n)
    if mode == "stalled":
        stop.wait(deadline_s)
        ctx.destroy(linger=0)
        return
    counts = [0] * n
    lat: list[int] = []
    decode = fp.feed_decoder.decode
    idle_since = None
    started = time.time_ns()
    stopped_at = None
    while time.monotonic() < end:
        if stopped_at is None and stop.is_set():
            stopped_at = time.monotonic()
        if stopped_at is not None and (time.monotonic() - stopped_at > DRAIN_S
                                       or (idle_since and time.monotonic() - idle_since > 0.3)):
            break
        ready_socks = poller.poll(100)
        if not ready_socks:
            idle_since = idle_since or time.monotonic()
            continue
        idle_since = None
        for s, _ in ready_socks:
            i = socks.index(s)
            for _ in range(10_000):
                try:
                    topic, payload = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if topic[:2] == b"HB":
                    continue
                counts[i] += 1
                if mode == "latency":
                    now = time.time_ns()
                    if now - started > WARMUP_NS:
                        lat.append(now - decode(payload).ts)
    results.put((counts, lat))
    ctx.destroy(linger=0)


class Subscribers:
    def __init__(self, endpoint: str, n: int, mode: str, pub: FeedPublisher):
        mpc = mp.get_context("spawn")
        self.ready, self.results, self.stop = mpc.Queue(), mpc.Queue(), mpc.Event()
        self.proc = mpc.Process(target=subscriber_main, args=(endpoint, n, mode, self.ready, self.results, self.stop,
                                                              60.0), daemon=True)
        self.proc.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pub.heartbeat(force=True)
            try:
                if not self.ready.get(timeout=0.05):
                    raise RuntimeError("subscribers did not all hear the publisher")
                return
            except queue.Empty:
                continue
        raise RuntimeError("subscriber process did not start")

    def finish(self):
        self.stop.set()
        try:
            return self.results.get(timeout=30)
        finally:
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.terminate()

    def kill(self):
        self.stop.set()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()


def make_events(n_commands: int, batch: int) -> list[np.ndarray]:
    ex = Exchange(make_instruments(), 8, expected_orders=n_commands)
    flow = make_flow(n_commands)
    out = []
    for i in range(0, len(flow), batch):
        ex.process_batch(flow[i: i + batch])
        out.append(ex.last_events.copy())
    return out


def throughput(events: list[np.ndarray], n_subs: int, stalled: bool = False) -> tuple[float, float, int]:
    """(messages/s published, mean % delivered per live subscriber, messages)."""
    pub = FeedPublisher(make_instruments(), LOOPBACK, LOOPBACK, clock=time.time_ns).bind()
    stuck = None
    try:
        if stalled:
            stuck = Subscribers(pub.endpoint, 1, "stalled", pub)
        subs = Subscribers(pub.endpoint, n_subs, "count", pub)
        t0 = time.perf_counter()
        for ev in events:
            pub.on_events(ev)
        elapsed = time.perf_counter() - t0
        published = pub.published
        counts, _ = subs.finish()
    finally:
        if stuck is not None:
            stuck.kill()
        pub.stop()
    return published / elapsed, 100.0 * sum(counts) / (len(counts) * published), published


def latency(events: list[np.ndarray]) -> tuple[float, float, float, int]:
    """(p50, p99, max) us and samples at LATENCY_RATE messages/s offered."""
    pub = FeedPublisher(make_instruments(), LOOPBACK, LOOPBACK, clock=time.time_ns).bind()
    try:
        subs = Subscribers(pub.endpoint, 1, "latency", pub)
        start = time.time_ns()
        stop_at = start + int(LATENCY_SECONDS * 1e9)
        for ev in events:
            due = start + pub.published * 1_000_000_000 // LATENCY_RATE
            if due >= stop_at:
                break
            while (now := time.time_ns()) < due:
                if due - now > 200_000:
                    time.sleep((due - now - 100_000) / 1e9)
            ev = ev.copy()
            ev["ts"] = due
            pub.on_events(ev)
        _, lat = subs.finish()
    finally:
        pub.stop()
    if not lat:
        return math.nan, math.nan, math.nan, 0
    a = np.array(lat) / 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max()), len(a)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=100_000, help="commands of the flow (at most 500,000)")
    args = ap.parse_args()
    n = max(10_000, min(args.messages, 500_000))
    print(f"cores: {os.cpu_count()}; making events of {n:,} commands ...", flush=True)
    events = make_events(n, 500)
    small = make_events(min(n, 60_000), 20)
    rows = []
    for subs in (1, 10, 50):
        rate, pct, published = throughput(events, subs)
        rows.append((f"{subs} subscriber(s)", rate, pct, published))
    stalled_rate, stalled_pct, published = throughput(events, 1, stalled=True)
    rows.append(("1 live + 1 stalled", stalled_rate, stalled_pct, published))
    print(f"{'run':<22}{'msgs/s published':>18}{'% delivered/sub':>17}{'messages':>11}")
    for name, rate, pct, published in rows:
        print(f"{name:<22}{rate:>18,.0f}{pct:>17.1f}{published:>11,}")
    p50, p99, mx, samples = latency(small)
    print(f"latency at {LATENCY_RATE:,} msgs/s offered, 1 subscriber: p50 {p50:.0f} us, p99 {p99:.0f} us, "
          f"max {mx:.0f} us ({samples:,} samples)")
    stalled_pct_of_base = 100.0 * stalled_rate / rows[0][1]
    print(f"feed_msgs_per_s={rows[0][1]:.0f} feed_p99_us_at_50k={p99:.0f} "
          f"stalled_sub_throughput_pct={stalled_pct_of_base:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
