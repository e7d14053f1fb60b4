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
messages from each frame's msgpack array header and do not decode (except in
the latency run). A run starts once every subscriber has received a heartbeat
(so subscriptions are in place).

Measured:
(1) throughput with 1, 10 and 50 subscribers: messages published / wall time
    of the publishing loop (the median of ``REPEATS`` runs, each with a fresh
    publisher and subscriber process), and the share each subscriber received (PUB drops
    for a subscriber that falls behind instead of waiting for it); a
    subscriber counts what it read by ``DRAIN_S`` (2 s) after the publisher
    finished, so with 50 Python subscribers in one process on a small machine
    the share says how far behind they fell, not what ZeroMQ dropped;
(2) latency at 50,000 messages/s offered: one subscriber, batches of 20
    commands' events (about 60 messages, one frame) released on a schedule so
    messages leave at 50k/s; a message's latency is from the moment its batch
    is handed to ``on_events`` (stamped in ``ts``, as the engine's event time
    would be) to the decoding of its frame in the subscriber (``time.time_ns``
    on both sides), the first 0.3 s not counted; how late the loop woke for
    its schedule (this process waiting for a core) is printed apart;
(3) a stalled subscriber: 1 live subscriber plus one that connects and never
    reads (RCVHWM ``STALLED_RCVHWM`` frames, about 1,000 messages); the
    publisher's throughput as a percentage of (1)'s single-subscriber figure
    (medians both). ~100 % means a stuck client costs the venue nothing (it
    just loses messages and must resync); until its queues (PUB's ``sndhwm``
    frames, TCP's buffers, its RCVHWM) are full it costs what a live one does.

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
STALLED_RCVHWM = 8  # frames: about 1,000 messages, what the stalled SUB held when every message was a frame
REPEATS = 3  # each throughput figure is the median of this many runs (they are short; the cores are shared)
_HB = fp.encoder.encode([fp.Heartbeat("", 0, 0, 0, 0)])
HEARTBEAT_FRAME = _HB[: _HB.index(b"Heartbeat") + len(b"Heartbeat")]  # how a frame of one Heartbeat starts


def frame_messages(frame: bytes) -> int:
    """The number of messages in a feed frame, from its msgpack array header (fixarray or array 16)."""
    return frame[0] & 0x0F if frame[0] < 0xDC else int.from_bytes(frame[1:3], "big")


def subscriber_main(endpoint: str, n: int, mode: str, ready, results, stop, deadline_s: float) -> None:
    """n SUB sockets; mode "count" (frames per socket), "latency" (decode, ts to now) or "stalled" (never read)."""
    ctx = zmq.Context()
    socks = []
    for _ in range(n):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, STALLED_RCVHWM if mode == "stalled" else 200_000)
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
    decode = fp.feed_frame_decoder.decode
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
                    _topic, payload = s.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                if payload.startswith(HEARTBEAT_FRAME):
                    continue
                counts[i] += frame_messages(payload)
                if mode == "latency":
                    now = time.time_ns()
                    if now - started > WARMUP_NS:
                        lat.extend(now - m.ts for m in decode(payload))
    results.put((counts, lat))
    ctx.destroy(linger=0)


class Subscribers:
    def __init__(self, endpoint: str, n: int, mode: str, pub: FeedPublisher):
        mpc = mp.get_context("spawn")
        self.ready, self.results, self.stop = mpc.Queue(), mpc.Queue(), mpc.Event()
        self.proc = mpc.Process(target=subscriber_main, args=(endpoint, n, mode, self.ready, self.results, self.stop,
                                                              60.0), daemon=True)
        self.proc.start()
        deadline = time.monotonic() + 60  # spawning and importing take a while on a loaded machine
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


def median_run(events: list[np.ndarray], n_subs: int, stalled: bool = False) -> tuple[float, float, int]:
    """``throughput`` run REPEATS times: the run of median rate."""
    runs = sorted((throughput(events, n_subs, stalled) for _ in range(REPEATS)), key=lambda run: run[0])
    return runs[REPEATS // 2]


def latency(events: list[np.ndarray]) -> tuple[float, float, float, int, float]:
    """(p50, p99, max) us and samples at LATENCY_RATE messages/s offered, then the p99 (us) of how late the
    publishing loop handed batches over (scheduling delay of this process, not part of the latency)."""
    pub = FeedPublisher(make_instruments(), LOOPBACK, LOOPBACK, clock=time.time_ns).bind()
    late = []
    try:
        subs = Subscribers(pub.endpoint, 1, "latency", pub)
        start = time.time_ns()
        stop_at = start + int(LATENCY_SECONDS * 1e9)
        for ev in events:
            due = start + pub.published * 1_000_000_000 // LATENCY_RATE
            if due >= stop_at:
                break
            ev = ev.copy()
            while (now := time.time_ns()) < due:
                if due - now > 200_000:
                    time.sleep((due - now - 100_000) / 1e9)
            ev["ts"] = now  # the events' time: when the engine hands them to the feed
            late.append(now - due)
            pub.on_events(ev)
        _, lat = subs.finish()
    finally:
        pub.stop()
    if not lat:
        return math.nan, math.nan, math.nan, 0, math.nan
    a = np.array(lat) / 1000
    return (float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max()), len(a),
            float(np.percentile(late, 99)) / 1000)


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
        rate, pct, published = median_run(events, subs)
        rows.append((f"{subs} subscriber(s)", rate, pct, published))
    stalled_rate, stalled_pct, published = median_run(events, 1, stalled=True)
    rows.append(("1 live + 1 stalled", stalled_rate, stalled_pct, published))
    print(f"{'run':<22}{'msgs/s published':>18}{'% delivered/sub':>17}{'messages':>11}")
    for name, rate, pct, published in rows:
        print(f"{name:<22}{rate:>18,.0f}{pct:>17.1f}{published:>11,}")
    p50, p99, mx, samples, late = latency(small)
    print(f"latency at {LATENCY_RATE:,} msgs/s offered, 1 subscriber: p50 {p50:.0f} us, p99 {p99:.0f} us, "
          f"max {mx:.0f} us ({samples:,} samples; batches handed over late by p99 {late:.0f} us, not counted)")
    stalled_pct_of_base = 100.0 * stalled_rate / rows[0][1]
    print(f"feed_msgs_per_s={rows[0][1]:.0f} feed_p99_us_at_50k={p99:.0f} "
          f"stalled_sub_throughput_pct={stalled_pct_of_base:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
