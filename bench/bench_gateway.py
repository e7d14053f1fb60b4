"""Order entry through the gateway on tcp loopback: acknowledged orders/s and round-trip latency.

Everything runs on this machine, each part in its own process (started with
``multiprocessing`` "spawn"): the gateway (``gateway.server.Gateway`` over an
``engine.exchange.Exchange`` of the default listing, plain text, loopback), the
client processes, and a bare pyzmq ROUTER echo server. All of them share the
machine's cores (the output says how many), so the clients' own CPU time is
CPU the gateway does not get: the figures are for the whole stack on one box.

Measured, in one run:

(1) throughput: ``--clients`` processes (default 2), each its own firm and
    session on a DEALER socket, send NewOrders closed loop with at most
    ``--window`` (default 1000) messages outstanding each, for ``--seconds``
    (default 5). The order flow rests or crosses (``order_pattern``): half
    are GTC limits a few ticks either side of a mid on 8 instruments, half
    IOCs through the mid that trade with them; a client also cancels its
    oldest resting order whenever it has more than 500 resting, so the books
    stay bounded. An acknowledgement is the Accepted or Rejected of a
    NewOrder; acks/s counts those received in the run. Cancels, Executed and
    Cancelled reports are counted too but are not acks.
(2) latency: one client, open loop: NewOrders sent on a fixed schedule at each
    offered rate of ``--rates`` (default 5,000, 20,000 and 50,000 orders/s) for
    ``--latency-seconds`` (default 3) each, whatever the replies do. The
    round trip of an order is from its *scheduled* send time to the arrival of
    its acknowledgement (found by client_order_id), so a client or gateway that
    falls behind shows up as queueing, not as fewer samples. The first 0.3 s of
    each rate are not counted (warm-up).
(3) the same client code, in both modes, against the echo server, which sends
    every frame straight back (the client counts an echoed NewOrder as its
    ack): the limit of Python + pyzmq + loopback tcp on this machine;
(4) abuse (gateway only): the latency client at 5,000 orders/s again, while
    another process (firm ABUSER, limited to 20,000 messages/s like a real
    firm) sends IOCs as fast as it can and never reads: its p99 against the
    quiet run's (``gw_abuse_p99_ratio``; target <= 2). The gateway's own
    defences act on it (THROTTLED, then FLOODING; SLOW_CONSUMER), and it takes
    CPU from the others on a 2-core machine, which no gateway can prevent.

Targets (from the issue): >= 200,000 acknowledged orders/s; p99 <= 250 us at
20,000 orders/s offered; gateway throughput >= 50% of the echo server's. The
script prints whether each is met; a target missed is not an error (exit 0).
Exit 1 if a part broke (a server did not start, acknowledgements went
missing). Without ``gateway.server`` the gateway rows are skipped and print
``nan``.

Prints a table, then as its last line
``gw_orders_per_s=... gw_p99_us_at_20k=... echo_msgs_per_s=... gw_p99_us_abused=... gw_abuse_p99_ratio=...``.
Usage: ``python bench/bench_gateway.py [--clients N] [--seconds S] [--rates 5000,20000,50000]
[--servers gateway,echo]`` (``--messages``, passed by ``run_all.py``, is ignored). The whole run is
bounded (about 35 s; every wait has a timeout) and every process it starts is stopped on exit or
SIGTERM; servers and waiting clients also stop within a second if this process dies.

Reading the latency figures: between sends the open-loop client sleeps in
``select`` on the socket's descriptor rather than spinning (a spinning client
takes a core from the server on a small machine), which costs some tens of us
per round trip compared with a blocking ping-pong; the echo rows show that
floor. And on a small or shared VM a stall of a few ms in any of the processes
delays every order scheduled during it, so p99 is as much a measure of the
machine's scheduling jitter as of the server: compare with the echo rows.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import queue
import random
import select as _select
import signal
import sys
import time
from pathlib import Path

import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import protocol as P  # noqa: E402

MID = 5_000  # ticks ($5.000): inside every product's price band in the default listing
N_SYMBOLS = 8
MAX_RESTING = 500  # per client: above this many accepted resting orders, cancel the oldest
PATTERN = 4096  # the order flow repeats every PATTERN orders (a power of two)
CLID_STRIDE = 10**9  # client order ids of one client run: base + 0 .. CLID_STRIDE - 1
SERVER_START_TIMEOUT_S = 60.0  # numba compile on a cold cache included
PARENT_CHECK_S = 0.5
SERVER_LIFETIME_S = 300.0  # a server process exits after this long whatever happens
THROUGHPUT_FIRMS = ("TPUT1", "TPUT2", "TPUT3", "TPUT4", "TPUT5", "TPUT6", "TPUT7", "TPUT8")
LATENCY_FIRM = "LATENCY"  # the open-loop client, also in the warm-up (client order ids from 0)
ABUSE_FIRM = "ABUSER"  # sends as fast as it can and never reads, under a real message-rate limit
ABUSE_RATE = 20_000  # ABUSE_FIRM's max_msgs_per_s (the other firms have none to speak of)
ABUSE_RATE_OFFERED = 5_000.0  # the latency client's rate in the abuse comparison


# ------------------------------------------------------------------ servers


def _serve_until_stopped(stop, parent: int, started: float) -> None:
    """Block until ``stop`` is set, the parent process is gone, or SERVER_LIFETIME_S passed."""
    while not stop.wait(PARENT_CHECK_S):
        if os.getppid() != parent or time.monotonic() - started > SERVER_LIFETIME_S:
            return


def gateway_process(conn, stop, firms: list[str], expected_orders: int, parent: int) -> None:
    """The gateway over a fresh engine of the default listing; sends {endpoint, symbols} or {error}."""
    started = time.monotonic()
    try:
        from engine.exchange import Exchange
        from engine.listing import load_listing
        from gateway.config import FirmConfig, GatewayConfig
        from gateway.server import Gateway
    except ImportError as exc:
        conn.send({"skip": f"gateway.server is not importable ({type(exc).__name__}: {exc})"})
        return
    try:
        now = time.time_ns()
        instruments = load_listing(None).instruments(now)
        # instruments open for at least the next 20 minutes (their gate closure is at least an hour ahead)
        symbols = [i.symbol for i in instruments if i.close_ns > now + 20 * 60 * 10**9][:N_SYMBOLS]
        engine = Exchange(instruments, max_firms=64, expected_orders=expected_orders)
        config = GatewayConfig.for_tests(
            firms=[FirmConfig(f, max_order_qty=10_000, max_open_qty=10**9,
                              max_msgs_per_s=ABUSE_RATE if f == ABUSE_FIRM else 10**8) for f in firms],
            plaintext=True, heartbeat_timeout_ms=120_000)
        gw = Gateway(config, engine, clock=time.time_ns)
        gw.start()
    except BaseException as exc:  # noqa: BLE001
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        return
    conn.send({"endpoint": gw.endpoint, "symbols": symbols})
    try:
        _serve_until_stopped(stop, parent, started)
    finally:
        gw.stop()


def echo_process(conn, stop, parent: int) -> None:
    """A bare ROUTER that sends every message (identity + frame) straight back."""
    started = time.monotonic()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    conn.send({"endpoint": f"tcp://127.0.0.1:{port}", "symbols": [f"ECHO.SYM.FIRM.2026-01-01T{h:02d}"
                                                                   for h in range(N_SYMBOLS)]})
    recv, send, again, noblock, sndmore = sock.recv, sock.send, zmq.Again, zmq.NOBLOCK, zmq.SNDMORE
    poll = sock.poll
    last_check = time.monotonic()
    try:
        while not stop.is_set():
            if poll(100):
                try:
                    for _ in range(10_000):
                        ident = recv(noblock)
                        body = recv()
                        send(ident, sndmore)
                        send(body)
                except again:
                    pass
            now = time.monotonic()
            if now - last_check > PARENT_CHECK_S:
                last_check = now
                if os.getppid() != parent or now - started > SERVER_LIFETIME_S:
                    break
    finally:
        sock.close(0)
        ctx.term()


class Server:
    """A server process and its stop event; a context manager that always stops it."""

    def __init__(self, ctx, target, *args):
        self.stop = ctx.Event()
        parent_conn, child_conn = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=target, args=(child_conn, self.stop, *args, os.getpid()), daemon=True)
        self.proc.start()
        child_conn.close()
        self.info: dict = {}
        if parent_conn.poll(SERVER_START_TIMEOUT_S):
            try:
                self.info = parent_conn.recv()
            except EOFError:
                self.info = {"error": f"server process exited with status {self.proc.exitcode}"}
        else:
            self.info = {"error": f"server did not start within {SERVER_START_TIMEOUT_S:.0f} s"}

    def close(self) -> None:
        self.stop.set()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------ client


def order_pattern(symbols: list[str], seed: int) -> list[tuple[str, int, int, int, int, int, bool]]:
    """PATTERN orders (symbol, side, price, qty, tif, stp, rests).

    Half rest: GTC 1..10 ticks off the mid. Half cross: IOC 10 ticks through
    the mid with self-trade prevention CANCEL_OLDEST, so each takes the best
    resting quantity on the other side whoever owns it (a trade, or its own
    resting order cancelled): on average the books neither grow nor shrink.
    """
    rng = random.Random(seed)
    out = []
    gtc, ioc = int(P.TimeInForce.GTC), int(P.TimeInForce.IOC)
    newest, oldest = int(P.SelfTradePrevention.CANCEL_NEWEST), int(P.SelfTradePrevention.CANCEL_OLDEST)
    for _ in range(PATTERN):
        sym = symbols[rng.randrange(len(symbols))]
        side = rng.randrange(2)
        qty = rng.randint(1, 10)
        if rng.random() < 0.5:
            price = MID + 10 if side == 0 else MID - 10
            out.append((sym, side, price, qty, ioc, oldest, False))
        else:
            off = rng.randint(1, 10)
            price = MID - off if side == 0 else MID + off
            out.append((sym, side, price, qty, gtc, newest, True))
    return out


def abuser_process(endpoint: str, symbol: str, seconds: float, parent: int, ready) -> None:
    """A client that logs on, then sends NewOrders (IOCs that trade or are cancelled) as fast as it can for
    ``seconds`` (5 million at most) and never reads what comes back."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 1)
    sock.setsockopt(zmq.RCVBUF, 4096)
    sock.setsockopt(zmq.SNDHWM, 10_000)
    sock.connect(endpoint)
    try:
        sock.send(P.client_encoder.encode(P.Logon(session="abuse", firm=ABUSE_FIRM, heartbeat_ms=60_000)))
        if not sock.poll(30_000):
            return
        sock.recv()
        ready.set()
        end = time.monotonic() + seconds
        k = 0
        while time.monotonic() < end and k < 5_000_000 and os.getppid() == parent:
            frame = P.client_encoder.encode([P.NewOrder(3 * CLID_STRIDE + k + j, symbol, (k + j) % 2, 1, MID,
                                                        tif=P.TimeInForce.IOC) for j in range(50)])
            try:
                sock.send(frame, zmq.NOBLOCK)
                k += 50
            except zmq.Again:
                time.sleep(0.001)
    finally:
        sock.close(0)
        ctx.term()


def abuse_phase(ctx, info: dict, seconds: float, clid_base: int) -> Phase:
    """The latency client at ABUSE_RATE_OFFERED orders/s while an abusive client is attached."""
    ready = ctx.Event()
    abuser = ctx.Process(target=abuser_process, args=(info["endpoint"], info["symbols"][0], seconds + 5,
                                                      os.getpid(), ready), daemon=True)
    abuser.start()
    try:
        ready.wait(30)
        time.sleep(0.5)  # let it get going
        return latency_phase(ctx, "gateway", info, ABUSE_RATE_OFFERED, seconds, clid_base, "gateway-abused")
    finally:
        abuser.terminate()
        abuser.join(5)
        if abuser.is_alive():
            abuser.kill()
            abuser.join()


def client_process(spec: dict, results, go) -> None:
    """One client: logs on, says it is ready, waits for ``go`` (set once all are ready), runs, reports."""
    try:
        results.put(_client_run(spec, results, go))
    except BaseException as exc:  # noqa: BLE001
        results.put({"name": spec["name"], "error": f"{type(exc).__name__}: {exc}"})


def _fine_timer_slack() -> None:
    """Ask Linux to wake this process within 1 us of a timeout (the default slack is 50 us); best effort."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK, in ns
    except (OSError, AttributeError):
        pass


def _client_run(spec: dict, results, go) -> dict:
    _fine_timer_slack()
    echo = spec["mode"] == "echo"
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.connect(spec["endpoint"])
    try:
        return _client_session(spec, results, go, sock, echo)
    finally:
        sock.close(0)
        ctx.term()


def _client_session(spec: dict, results, go, sock, echo: bool) -> dict:
    name = spec["name"]
    encode = P.client_encoder.encode
    decode = P.decode_client_frame if echo else P.decode_server_frame  # a frame: one message or a list
    sock.send(encode(P.Logon(session=spec["session"], firm=spec["firm"], heartbeat_ms=60_000,
                             cancel_on_disconnect=True)))
    if not sock.poll(int(spec.get("logon_timeout_s", 30) * 1000)):
        return {"name": name, "error": "no reply to Logon"}
    reply = decode(sock.recv())[0]
    if not isinstance(reply, P.Logon if echo else P.LogonAccepted):
        return {"name": name, "error": f"Logon answered with {reply!r}"}
    results.put({"name": name, "ready": True})

    pattern = order_pattern(spec["symbols"], spec["seed"])
    base = spec["clid_base"]
    open_loop = spec["rate"] > 0
    duration_ns = int(spec["seconds"] * 1e9)
    warmup_ns = int(spec.get("warmup_s", 0.0) * 1e9)
    max_orders = int(spec["rate"] * spec["seconds"] * 1.2) + 16 if open_loop else CLID_STRIDE
    sent_at = [0] * (max_orders if open_loop else 0)  # order index -> scheduled send time, ns
    latencies: list[int] = []
    resting: dict[int, None] = {}  # order ids of this client's resting orders, oldest first

    NewOrder, Cancel, Logout = P.NewOrder, P.Cancel, P.Logout
    Accepted, Rejected = (P.NewOrder, P.NewOrder) if echo else (P.Accepted, P.Rejected)
    Executed, Cancelled, CancelRejected = (None, None, None) if echo else (P.Executed, P.Cancelled,
                                                                            P.CancelRejected)
    user = P.CancelReason.USER
    send, recv, poll = sock.send, sock.recv, sock.poll
    again, noblock = zmq.Again, zmq.NOBLOCK
    clock = time.perf_counter_ns
    mask = PATTERN - 1
    window = spec.get("window", 1000)

    n_sent = n_acks = n_accepted = n_rejected = n_other = n_cancels = n_cancel_acks = n_in_window = 0
    reject_reasons: dict[int, int] = {}

    parent, deadline = spec["parent"], time.monotonic() + 60
    while not go.wait(PARENT_CHECK_S):
        if os.getppid() != parent or time.monotonic() > deadline:
            return {"name": name, "error": "never told to start"}
    t0 = clock()
    t_end = t0 + duration_ns
    t_count = t0 + warmup_ns  # open loop: latencies of orders scheduled from here on count
    interval = 1e9 / spec["rate"] if open_loop else 0.0

    def send_order(i: int) -> None:
        sym, side, price, qty, tif, stp, _ = pattern[i & mask]
        send(encode(NewOrder(client_order_id=base + i, symbol=sym, side=side, qty=qty, price=price, tif=tif,
                             stp=stp)))

    def drain(limit: int, now_ns: int) -> None:
        """Receive whatever is waiting (at most ``limit`` frames) and account for it."""
        nonlocal n_acks, n_accepted, n_rejected, n_other, n_cancels, n_cancel_acks, n_in_window
        try:
            for _ in range(limit):
                for m in decode(recv(noblock)):
                    t = type(m)
                    if t is Accepted:
                        n_acks += 1
                        n_accepted += 1
                        i = m.client_order_id - base
                        if open_loop:
                            s = sent_at[i]
                            if s >= t_count:
                                latencies.append(clock() - s)
                        elif now_ns <= t_end:
                            n_in_window += 1
                        if not echo and pattern[i & mask][6]:
                            resting[m.order_id] = None
                            if len(resting) > MAX_RESTING:
                                oldest = next(iter(resting))
                                del resting[oldest]
                                send(encode(Cancel(order_id=oldest)))
                                n_cancels += 1
                    elif t is Rejected:
                        n_acks += 1
                        n_rejected += 1
                        reject_reasons[int(m.reason)] = reject_reasons.get(int(m.reason), 0) + 1
                        i = m.client_order_id - base
                        if open_loop:
                            s = sent_at[i]
                            if s >= t_count:
                                latencies.append(clock() - s)
                        elif now_ns <= t_end:
                            n_in_window += 1
                    elif t is Executed:
                        n_other += 1
                        if m.leaves == 0:
                            resting.pop(m.order_id, None)
                    elif t is Cancelled:
                        if m.reason == user:
                            n_cancel_acks += 1
                        else:
                            n_other += 1
                            resting.pop(m.order_id, None)
                    elif t is CancelRejected:
                        n_cancel_acks += 1
                    else:
                        n_other += 1
        except again:
            pass

    if open_loop:
        # between sends, sleep in select() on the socket's file descriptor (it signals when ZMQ_EVENTS may have
        # changed, so EVENTS is checked first): no busy loop taking a core from the server and the I/O threads
        fd, events, pollin, select = sock.getsockopt(zmq.FD), sock.getsockopt, zmq.POLLIN, _select.select
        while True:
            now = clock()
            if now >= t_end:
                break
            due = min(int((now - t0) / interval) + 1, max_orders)
            while n_sent < due:
                sent_at[n_sent] = t0 + int(n_sent * interval)
                send_order(n_sent)
                n_sent += 1
            drain(256, now)
            if events(zmq.EVENTS) & pollin:
                continue
            wait = (t0 + n_sent * interval - clock()) / 1e9
            if wait > 0:
                select((fd,), (), (), min(wait, 0.01))
    else:
        while True:
            now = clock()
            if now >= t_end:
                break
            room = window - (n_sent - n_acks) - (n_cancels - n_cancel_acks)
            for _ in range(room):
                send_order(n_sent)
                n_sent += 1
            if poll(50):
                drain(window, clock())
    elapsed = (clock() - t0) / 1e9

    # drain what is still on its way (not counted in the rate), bounded
    deadline = clock() + int(spec.get("drain_s", 3.0) * 1e9)
    while n_acks < n_sent and clock() < deadline:
        if poll(20):
            drain(10_000, t_end + 1)
    # log out and wait for the gateway's SystemEvent LOGOUT (or the echo): the session's resting orders are then
    # cancelled (cancel_on_disconnect) before the next run starts
    sock.send(encode(Logout()))
    deadline = clock() + 5_000_000_000
    logged_out = False
    while not logged_out and clock() < deadline:
        if poll(50):
            try:
                while not logged_out:
                    m = decode(recv(noblock))
                    logged_out = type(m) is (P.Logout if echo else P.SystemEvent) and (echo or m.code == "LOGOUT")
            except again:
                pass
    return {
        "name": name, "sent": n_sent, "acks": n_acks, "accepted": n_accepted, "rejected": n_rejected,
        "other": n_other, "cancels": n_cancels, "cancel_acks": n_cancel_acks, "in_window": n_in_window,
        "elapsed": elapsed, "latencies": latencies, "reject_reasons": reject_reasons, "logged_out": logged_out,
    }


def run_clients(ctx, specs: list[dict], timeout_s: float) -> list[dict]:
    """Start one process per spec, wait for all to log on, start them together, collect their results."""
    results, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=client_process, args=({**s, "parent": os.getpid()}, results, go), daemon=True)
             for s in specs]
    for p in procs:
        p.start()
    out: dict[str, dict] = {}
    ready = 0
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < len(specs) and time.monotonic() < deadline:
            try:
                r = results.get(timeout=max(0.05, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            if r.get("ready"):
                ready += 1
                if ready == len(specs):
                    go.set()  # every client has logged on: start them together
                continue
            out[r["name"]] = r
            if "error" in r:
                go.set()  # let the others run rather than wait for one that failed
    finally:
        for p in procs:
            p.join(2)
            if p.is_alive():
                p.terminate()
                p.join(2)
            if p.is_alive():
                p.kill()
                p.join()
    for s in specs:
        out.setdefault(s["name"], {"name": s["name"], "error": "client did not report (timed out or died)"})
    return [out[s["name"]] for s in specs]


# ------------------------------------------------------------------ phases


class Phase:
    """The figures of one run of clients against one server."""

    def __init__(self, server: str, kind: str, offered: float, results: list[dict], seconds: float):
        self.server, self.kind, self.offered, self.seconds = server, kind, offered, seconds
        self.errors = [f"{r['name']}: {r['error']}" for r in results if "error" in r]
        ok = [r for r in results if "error" not in r]
        total = lambda key: sum(r[key] for r in ok)  # noqa: E731
        self.clients = len(results)
        self.sent, self.acks, self.accepted, self.rejected = total("sent"), total("acks"), total("accepted"), \
            total("rejected")
        self.other, self.cancels, self.in_window = total("other"), total("cancels"), total("in_window")
        self.lost = self.sent - self.acks
        self.not_logged_out = sum(not r["logged_out"] for r in ok)
        self.reasons: dict[int, int] = {}
        for r in ok:
            for k, v in r["reject_reasons"].items():
                self.reasons[k] = self.reasons.get(k, 0) + v
        lats = sorted(x for r in ok for x in r["latencies"])
        self.samples = len(lats)
        self.pct = {q: (lats[min(len(lats) - 1, int(q * len(lats)))] / 1000 if lats else math.nan)
                    for q in (0.5, 0.99, 0.999)}
        self.max_us = lats[-1] / 1000 if lats else math.nan
        self.ok = not self.errors and bool(ok)

    @property
    def acks_per_s(self) -> float:
        if not self.ok:
            return math.nan
        if self.kind == "throughput":
            return self.in_window / self.seconds
        return self.samples / self.seconds  # acks of the orders scheduled after the warm-up


def throughput_phase(ctx, server: str, info: dict, n_clients: int, seconds: float, window: int,
                     firms: tuple[str, ...], tag: str) -> Phase:
    specs = [dict(name=f"{tag}-{k}", mode=server, endpoint=info["endpoint"], firm=firms[k], session=f"{tag}-{k}",
                  symbols=info["symbols"], seed=k, clid_base=0, rate=0, seconds=seconds, window=window)
             for k in range(n_clients)]
    return Phase(server, "throughput", math.nan, run_clients(ctx, specs, timeout_s=seconds + 40), seconds)


def latency_phase(ctx, server: str, info: dict, rate: float, seconds: float, clid_base: int, tag: str,
                  drain_s: float = 10.0) -> Phase:
    """One open-loop client; waits up to ``drain_s`` after the run for the acks of a backlog."""
    spec = dict(name=tag, mode=server, endpoint=info["endpoint"], firm=LATENCY_FIRM, session=tag,
                symbols=info["symbols"], seed=99, clid_base=clid_base, rate=rate, seconds=seconds, warmup_s=0.3,
                drain_s=drain_s)
    return Phase(server, "latency", rate, run_clients(ctx, [spec], timeout_s=seconds + drain_s + 40),
                 seconds - 0.3)


# ------------------------------------------------------------------ report


def fmt(x: float, digits: int = 0) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def plain(x: float, digits: int = 0) -> str:
    return "nan" if math.isnan(x) else f"{x:.{digits}f}"



def print_table(title: str, head: str, rows: list[str]) -> None:
    """A blank line, the title, the header, a rule and the rows."""
    print()
    print(title)
    print(head)
    print("-" * len(head))
    for row in rows:
        print(row)

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=2, help="client processes in the throughput run (1..8)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each throughput run")
    ap.add_argument("--window", type=int, default=1000, help="outstanding messages per throughput client")
    ap.add_argument("--rates", default="5000,20000,50000", help="offered orders/s of the latency runs")
    ap.add_argument("--latency-seconds", type=float, default=3.0, help="length of each latency run")
    ap.add_argument("--servers", default="gateway,echo", help="which servers to measure, in order")
    ap.add_argument("--messages", type=int, help="ignored (run_all.py passes it to every bench script)")
    args = ap.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every server and client process is stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    n_clients = max(1, min(args.clients, len(THROUGHPUT_FIRMS)))
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    t_start = time.monotonic()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {cores} cores in all, shared by the server process, {n_clients} throughput client "
          f"processes (1 for latency) and this process; tcp loopback, plain text")

    ctx = mp.get_context("spawn")
    phases: list[Phase] = []
    failures: list[str] = []
    skipped = ""
    firms = [*THROUGHPUT_FIRMS, LATENCY_FIRM, ABUSE_FIRM]
    expected = 2_000_000  # orders the gateway's engine is sized for up front (it grows past that if need be)

    for server in [x.strip() for x in args.servers.split(",") if x.strip() in ("gateway", "echo")]:
        t0 = time.monotonic()
        srv = Server(ctx, gateway_process, firms, expected) if server == "gateway" else Server(ctx, echo_process)
        with srv:
            if "skip" in srv.info:
                skipped = srv.info["skip"]
                print(f"SKIP {server}: {skipped}")
                continue
            if "error" in srv.info:
                failures.append(f"{server} did not start: {srv.info['error']}")
                print(f"FAILED {server}: {srv.info['error']}")
                continue
            print(f"{server} server up at {srv.info['endpoint']} in {time.monotonic() - t0:.1f} s; "
                  f"orders on {len(srv.info['symbols'])} instruments, e.g. {srv.info['symbols'][0]}", flush=True)
            # warm-up (numba compile or cache load, first connections): not counted; waits for every ack
            warm = latency_phase(ctx, server, srv.info, 5000, 1.0, 0, f"{server}-warmup",
                                 drain_s=SERVER_START_TIMEOUT_S)
            if warm.errors or warm.lost:
                why = "; ".join(warm.errors) or f"{warm.lost} of {warm.sent} orders never acknowledged"
                failures.append(f"{server} warm-up: {why}")
                print(f"FAILED {server} warm-up: {why}")
                continue
            ph = throughput_phase(ctx, server, srv.info, n_clients, args.seconds, args.window, THROUGHPUT_FIRMS,
                                  f"{server}-tput")
            phases.append(ph)
            print(f"  throughput: {fmt(ph.acks_per_s)} acks/s", flush=True)
            for k, rate in enumerate(rates):
                ph = latency_phase(ctx, server, srv.info, rate, args.latency_seconds, (k + 1) * CLID_STRIDE,
                                   f"{server}-lat-{int(rate)}")
                phases.append(ph)
                print(f"  latency at {fmt(rate)}/s offered: p50 {fmt(ph.pct[0.5], 1)} us, "
                      f"p99 {fmt(ph.pct[0.99], 1)} us", flush=True)
            if server == "gateway":
                ph = abuse_phase(ctx, srv.info, args.latency_seconds, (len(rates) + 2) * CLID_STRIDE)
                ph.server = "+abuser"  # the gateway, with the abusive client attached
                phases.append(ph)
                print(f"  latency at {fmt(ABUSE_RATE_OFFERED)}/s offered with an abusive client attached: "
                      f"p50 {fmt(ph.pct[0.5], 1)} us, p99 {fmt(ph.pct[0.99], 1)} us", flush=True)
    for ph in phases:
        for e in ph.errors:
            failures.append(f"{ph.server} {ph.kind}: {e}")
        if ph.ok and ph.lost:
            failures.append(f"{ph.server} {ph.kind} {fmt(ph.offered)}: {ph.lost} orders never acknowledged")
        if ph.ok and ph.not_logged_out:
            print(f"note: {ph.not_logged_out} client(s) of the {ph.server} {ph.kind} run saw no reply to Logout")

    # the tables
    print()
    print_table(f"throughput: closed loop, {n_clients} client processes, window {args.window} outstanding each, "
                f"{args.seconds:g} s",
                f"{'server':<8} {'clients':>7} {'orders sent':>12} {'acks':>10} {'accepted':>10} {'rejected':>9} "
                f"{'cancels':>8} {'other msgs':>10} {'acks/s':>10} {'msgs in/s':>10}",
                [f"{ph.server:<8} {ph.clients:>7} {ph.sent:>12,} {ph.acks:>10,} {ph.accepted:>10,} "
                 f"{ph.rejected:>9,} {ph.cancels:>8,} {ph.other:>10,} {fmt(ph.acks_per_s):>10} "
                 f"{fmt((ph.sent + ph.cancels) / ph.seconds):>10}" for ph in phases if ph.kind == "throughput"])
    print("(acks/s: Accepted + Rejected received within the run; msgs in/s: NewOrders + Cancels sent; other msgs: "
          "Executed, Cancelled of IOC/STP remainders)")
    print_table(f"latency: open loop, 1 client, {args.latency_seconds:g} s per rate (first 0.3 s not counted), "
                f"round trip from scheduled send to ack",
                f"{'server':<8} {'offered/s':>10} {'acks/s':>10} {'samples':>9} {'lost':>6} {'p50 us':>11} "
                f"{'p99 us':>11} {'p99.9 us':>11} {'max us':>11}",
                [f"{ph.server:<8} {fmt(ph.offered):>10} {fmt(ph.acks_per_s):>10} {ph.samples:>9,} {ph.lost:>6,} "
                 f"{fmt(ph.pct[0.5], 1):>11} {fmt(ph.pct[0.99], 1):>11} {fmt(ph.pct[0.999], 1):>11} "
                 f"{fmt(ph.max_us, 1):>11}" for ph in phases if ph.kind == "latency"])
    reasons = {}
    for ph in phases:
        for k, v in ph.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
    if reasons:
        print("rejections by reason: "
              + ", ".join(f"{P.RejectReason(k).name} {v:,}" for k, v in sorted(reasons.items())))

    def pick(server: str, kind: str, offered: float | None = None) -> Phase | None:
        for ph in phases:
            if ph.server == server and ph.kind == kind and (offered is None or ph.offered == offered):
                return ph
        return None

    gw, echo = pick("gateway", "throughput"), pick("echo", "throughput")
    gw20 = pick("gateway", "latency", 20_000.0)
    gw_rate = gw.acks_per_s if gw else math.nan
    echo_rate = echo.acks_per_s if echo else math.nan
    gw_p99 = gw20.pct[0.99] if gw20 and gw20.ok else math.nan
    ratio = gw_rate / echo_rate if echo_rate and not math.isnan(gw_rate) else math.nan

    quiet = pick("gateway", "latency", ABUSE_RATE_OFFERED)
    abused = pick("+abuser", "latency")
    abuse_p99 = abused.pct[0.99] if abused and abused.ok else math.nan
    abuse_ratio = abuse_p99 / quiet.pct[0.99] if quiet and quiet.ok and not math.isnan(abuse_p99) else math.nan
    if abused is not None:
        alone = quiet.pct[0.99] if quiet else math.nan
        print(f"abuse: the latency client at {fmt(ABUSE_RATE_OFFERED)}/s, p99 {fmt(alone, 1)} "
              f"us alone, {fmt(abuse_p99, 1)} us with a client attached that sends as fast as it can (its firm "
              f"limited to {ABUSE_RATE:,} messages/s) and never reads ({fmt(abuse_ratio, 2)}x)")

    def verdict(ok: bool | None) -> str:
        return "n/a (not measured)" if ok is None else ("met" if ok else "NOT MET")

    print()
    print("targets:")
    print(f"  acknowledged orders/s >= 200,000: {fmt(gw_rate)} -> "
          f"{verdict(None if math.isnan(gw_rate) else gw_rate >= 200_000)}")
    print(f"  p99 at 20,000 orders/s offered <= 250 us: {fmt(gw_p99, 1)} us -> "
          f"{verdict(None if math.isnan(gw_p99) else gw_p99 <= 250)}")
    print(f"  gateway >= 50% of the echo server's throughput: {fmt(100 * ratio, 1)}% -> "
          f"{verdict(None if math.isnan(ratio) else ratio >= 0.5)}")
    print(f"  p99 with an abusive client attached <= 2x without: {fmt(abuse_ratio, 2)}x -> "
          f"{verdict(None if math.isnan(abuse_ratio) else abuse_ratio <= 2.0)}")
    if skipped:
        print(f"gateway not measured: {skipped}")
    for f in failures:
        print(f"FAILURE: {f}")
    print(f"(whole run {time.monotonic() - t_start:.1f} s)")
    print(f"gw_orders_per_s={plain(gw_rate)} gw_p99_us_at_20k={plain(gw_p99, 1)} echo_msgs_per_s={plain(echo_rate)} "
          f"gw_p99_us_abused={plain(abuse_p99, 1)} gw_abuse_p99_ratio={plain(abuse_ratio, 2)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
