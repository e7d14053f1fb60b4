"""``cx web``: the market data in a browser. A bridge from the feed to a small web page on loopback.

Pieces:
* ``WebBridge``: a ``feeds.client.FeedClient`` subscribed to every instrument,
  run by one background thread (the only thread that touches it). Every
  ``flush_s`` (0.1 s) that thread turns what changed into JSON *messages* and
  appends them, as one *batch* with the next batch id, to a ring of the last
  ``ring`` batches; waiting HTTP handlers are woken by a condition variable.
  Messages:
  - ``Meta``: the tick (exact: ``decimals`` and ``unit``, a price in dollars is
    ``ticks * unit / 10**decimals``) and the listed instruments (parsed
    symbols, delivery start in ms); sent when the set of instruments changes;
  - ``Book``: one instrument's top ``levels`` levels per side (price ticks,
    GPUs, orders), status, seq, the bridge's trade statistics (last trade,
    volume, trade count since the bridge started) and the last final and
    indicative auction prices (``auction``, ``indicative``: {auction, price,
    qty} or null, from the feed, snapshots included); sent when it changed;
  - ``AuctionResult``: the feed's message as ``msgspec.to_builtins``, sent
    when the FeedClient's last final or indicative result changes (live, or
    from a snapshot after a late start or a resync);
  - ``Feed``: the state of the bridge's own feed (``feed_state``: live, stale
    or waiting), sent when it changes, so the page marks a frozen feed stale;
  - every other applied feed message whose type is not in ``SKIP`` (the
    L1/L2/L3 book messages and auction prices, which ``Book`` summarises,
    results, heartbeats), forwarded generically as ``msgspec.to_builtins``
    (``type`` = the class name): today ``Trade`` and ``InstrumentStatus``; a
    message type added to the feed later reaches the page without a change
    here;
  - anything given to ``publish(dict)`` (thread-safe), for sources other than
    the feed.
  ``state()`` is a ``State`` message: Meta, every non-empty Book (levels, a
  trade or an auction price), the last final and indicative AuctionResult
  (``auctions``: [final, indicative], null if none), the last ``recent``
  other forwarded messages, and the batch id it reflects.
* The HTTP server (``http.server.ThreadingHTTPServer``, standard library only)
  binds 127.0.0.1 and answers only requests whose Host header names loopback
  (no DNS rebinding): ``/`` the page (``feeds/web_static/index.html``, no
  external resource), ``/api/state`` the State, ``/api/events`` Server-Sent
  Events (first a State, then one ``data:`` line per batch, a JSON array of
  messages, ``id:`` the batch id; ``Last-Event-ID`` resumes; a comment every
  ``keepalive_s``), ``/api/poll?after=ID&wait=S`` long polling (the batches
  after ID, waiting up to S seconds; a State instead if ID fell out of the ring).

The page (one file, vanilla JS and CSS, no external fetch) keeps the last
Book per instrument and the last 100 trades, and draws: the depth ladder of
the instrument chosen in its selector (or ``#SYMBOL`` in the URL), the forward
curve (one SVG chart per accelerator: per delivery hour the last trade, else
the mid quote, with the bid-ask range; one line per region x class; the last
auction's clearing prices as squares), the recent trades and the last auction
(its summary and allocation: clearing price and volume per instrument, grouped
by accelerator and delivery hour; the indicative prices of the next auction
while it collects). Each message type has a function in its ``RENDER`` table;
other types are only counted. It uses
SSE, or long polling with ``?transport=poll`` (headless tests: an open SSE
stream stops Chromium's virtual time). Prices show in dollars per GPU-hour,
exactly (integer arithmetic on ticks), quantities in GPUs.

Invariants: a browser that applies the State, then every batch after its id,
in id order, sees each instrument's last Book (the FeedClient's synced book
cut to ``levels``) within ``flush_s`` of the FeedClient applying it; a client
too slow for the ring gets a new State (never a silently partial history).
While an instrument resyncs (gap, dead feed) its last Book stays shown.
Trades are those seen since the bridge started: snapshots carry books, not
trades, so a bridge started late shows no earlier trades or last prices; they
do carry the last auction's prices and results, so the auction panel is
complete after any start or resync.

Costs: per feed message O(1) (plus JSON for forwarded ones); per flush
O(changed instruments x levels log levels), and O(instruments x levels log
levels) after a snapshot is installed; per browser one thread (at most
``MAX_STREAMS`` streams) and O(batch bytes) per batch; memory O(ring x batch
size + instruments x levels).
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import importlib.resources
import json
import logging
import sys
import threading
import time
import urllib.parse
from collections import Counter, deque
from decimal import Decimal
from typing import Any

import msgspec
import zmq

from engine.instruments import SymbolError, parse_symbol
from feeds import protocol as fp
from feeds.client import FeedClient
from gateway.waiting import add_wait_argument, wait_for

log = logging.getLogger("cx.web")

SKIP = frozenset({fp.TopOfBook, fp.LevelUpdate, fp.OrderAdded, fp.OrderExecuted, fp.OrderReduced, fp.OrderDeleted,
                  fp.OrderReplaced, fp.Heartbeat, fp.AuctionPrice, fp.AuctionResult})
MAX_STREAMS = 32  # concurrent /api/events and /api/poll requests
MAX_WAIT_S = 30.0  # longest long poll


def feed_state(client: FeedClient) -> str:
    """``live`` (synced, heard within its heartbeat timeout), ``stale`` (it was synced once, now silent or
    resynchronising: what the page shows is frozen) or ``waiting`` (no snapshot yet)."""
    if client.synced:
        return "live"
    return "stale" if client.stats["snapshots_installed"] else "waiting"


def tick_units(tick: Decimal | str) -> tuple[int, int]:
    """``"0.001"`` -> (3, 1), ``"0.25"`` -> (2, 25): a price in dollars is ticks * unit / 10**decimals, exactly."""
    t = Decimal(tick)
    if not t.is_finite() or t <= 0:
        raise ValueError(f"tick must be a positive decimal, not {tick!r}")
    decimals = max(0, -t.as_tuple().exponent)
    return decimals, int(t.scaleb(decimals))


def page_html() -> bytes:
    return importlib.resources.files("feeds").joinpath("web_static/index.html").read_bytes()


class WebBridge:
    """The feed as JSON batches for browsers (see the module docstring)."""

    def __init__(self, feed_endpoint: str, snapshot_endpoint: str, tick: Decimal | str = "0.001", levels: int = 10,
                 flush_s: float = 0.1, ring: int = 512, recent: int = 200, heartbeat_timeout_s: float = 3.0,
                 ctx: zmq.Context | None = None):
        self.decimals, self.unit = tick_units(tick)
        self.tick = str(tick)
        self.levels = levels
        self.flush_s = flush_s
        self.client = FeedClient(feed_endpoint, snapshot_endpoint, None, on_update=self._on_update,
                                 heartbeat_timeout_s=heartbeat_timeout_s, ctx=ctx)
        self.stats: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._ring: deque[tuple[int, bytes]] = deque(maxlen=ring)  # (batch id, JSON array of messages)
        self._batch_id = 0
        self._meta: dict | None = None
        self._books: dict[str, dict] = {}  # symbol -> last Book message sent
        self._recent: deque[dict] = deque(maxlen=recent)  # forwarded messages, oldest first
        self._auctions: list[dict | None] = [None, None]  # the last AuctionResult sent: final, indicative
        # feed thread only:
        self._out: list[dict] = []
        self._dirty: set[str] = set()
        self._trades: dict[str, list] = {}  # symbol -> [last price, last qty, last ts, volume, trades]
        self._results: list[fp.AuctionResult | None] = [None, None]  # the FeedClient's, as of the last flush
        self._installed = 0
        self._synced = False  # the FeedClient's synced, as of the last flush
        self._feed = "waiting"  # feed_state() as of the last flush
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> WebBridge:
        self.client.connect()
        self._thread = threading.Thread(target=self._run, name="cx-web-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.client.close()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def synced(self) -> bool:
        """The feed was synced at the last flush (any thread may ask)."""
        return self._synced

    def _run(self) -> None:
        poll_ms = max(1, int(self.flush_s * 500))
        next_flush = time.monotonic() + self.flush_s
        try:
            while not self._stop.is_set():
                self.client.poll(poll_ms)
                now = time.monotonic()
                if now >= next_flush:
                    self._flush()
                    next_flush = now + self.flush_s
        except BaseException as exc:  # noqa: BLE001 - reported by the page (/api/state) and cx web
            self.error = exc
            log.exception("web bridge feed thread failed")
            self._stop.set()
            with self._cond:
                self._cond.notify_all()

    # ------------------------------------------------------------ feed side

    def _on_update(self, m) -> None:
        t = type(m)
        self._dirty.add(m.symbol)
        self.stats[t.__name__] += 1
        if t is fp.Trade:
            s = self._trades.get(m.symbol)
            if s is None:
                s = self._trades[m.symbol] = [0, 0, 0, 0, 0]
            s[0], s[1], s[2] = m.price, m.qty, m.ts
            s[3] += m.qty
            s[4] += 1
        if t not in SKIP:
            self._out.append(msgspec.to_builtins(m))

    def _book_message(self, b) -> dict:
        bids, asks = b.depth()
        s = self._trades.get(b.symbol)
        return {"type": "Book", "symbol": b.symbol, "seq": b.seq, "status": b.status,
                "bids": [list(x) for x in bids[: self.levels]], "asks": [list(x) for x in asks[: self.levels]],
                "bid_levels": len(bids), "ask_levels": len(asks),
                "last": s[:3] if s else None, "volume": s[3] if s else 0, "trades": s[4] if s else 0,
                "auction": _auction_price(b.auction), "indicative": _auction_price(b.indicative)}

    def _meta_message(self, symbols) -> dict:
        """The instruments in listing order (the snapshot's), products before hours."""
        instruments = []
        for sym in symbols:
            try:
                key, start_ns = parse_symbol(sym)
            except SymbolError:
                continue
            instruments.append({"symbol": sym, "accelerator": key.accelerator, "region": key.region,
                                "service_class": key.service_class, "delivery_ms": start_ns // 1_000_000})
        return {"type": "Meta", "tick": self.tick, "decimals": self.decimals, "unit": self.unit,
                "instruments": instruments}

    def _flush(self) -> None:
        c = self.client
        books = c.books
        out: list[dict] = []
        check: set[str] = set()  # after a snapshot (a gap, a dead feed, a publisher restart): any book may differ
        if c.stats["snapshots_installed"] != self._installed:
            self._installed = c.stats["snapshots_installed"]
            check = set(books)
            known = [i["symbol"] for i in self._meta["instruments"]] if self._meta else []
            if not set(known).issuperset(books):  # instruments are only ever added
                seen = set(known)
                out.append(self._meta_message(known + [s for s in books if s not in seen]))
        for sym in sorted(self._dirty | check):
            b = books.get(sym)
            if b is not None:  # a resyncing instrument keeps its last Book
                m = self._book_message(b)
                if sym in self._dirty or m != self._books.get(sym):
                    out.append(m)
        self._dirty.clear()
        self._synced = c.synced
        feed = feed_state(c)
        if feed != self._feed:
            self._feed = feed
            out.append({"type": "Feed", "state": feed})
        for k, r in enumerate((c.auction_result(), c.auction_result(indicative=True))):
            if r is not None and r != self._results[k]:
                out.append(msgspec.to_builtins(r))
            self._results[k] = r
        out.extend(self._out)
        self._out = []
        if out:
            self._append(out)

    # ------------------------------------------------------------ shared side

    def publish(self, message: dict) -> None:
        """Push one message (a JSON-able dict with a ``type``) to every browser; thread-safe."""
        if not isinstance(message.get("type"), str):
            raise ValueError("a message needs a string 'type'")
        self._append([message])

    def _append(self, messages: list[dict]) -> None:
        data = json.dumps(messages, separators=(",", ":")).encode()
        with self._cond:
            for m in messages:
                t = m["type"]
                if t == "Meta":
                    self._meta = m
                elif t == "Book":
                    self._books[m["symbol"]] = m
                elif t == "AuctionResult":
                    self._auctions[m["indicative"]] = m
                elif t != "Feed":  # the feed's state is the State's "feed"
                    self._recent.append(m)
            self._batch_id += 1
            self._ring.append((self._batch_id, data))
            self._cond.notify_all()

    def state(self) -> dict:
        """Everything a new browser needs, and the id of the last batch it reflects."""
        with self._cond:
            books = [b for b in self._books.values()
                     if b["bids"] or b["asks"] or b["last"] or b["auction"] or b["indicative"]]
            return {"type": "State", "id": self._batch_id, "meta": self._meta, "books": books,
                    "auctions": list(self._auctions), "recent": list(self._recent),
                    "synced": self._synced and self._meta is not None, "feed": self._feed,
                    "error": repr(self.error) if self.error else None}

    def batches_after(self, after: int, wait_s: float) -> list[tuple[int, bytes]] | None:
        """The batches with id > after, waiting up to wait_s for one; None if some fell out of the ring."""
        deadline = time.monotonic() + wait_s
        with self._cond:
            while self._batch_id == after and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
            if after > self._batch_id or (self._batch_id > after and (not self._ring or self._ring[0][0] > after + 1)):
                return None  # an id from another server run, or older than the ring
            return [(i, d) for i, d in self._ring if i > after]


def _auction_price(m: fp.AuctionPrice | None) -> dict | None:
    return None if m is None else {"auction": m.auction, "price": m.price, "qty": m.qty}


# ------------------------------------------------------------------ HTTP


class _Handler(http.server.BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.0"  # one request per connection; a stream ends when the connection closes

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json")

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost"):
            self._send(403, b"loopback only\n", "text/plain")
            return
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        bridge = self.server.bridge
        try:
            if url.path in ("/", "/index.html"):
                self._send(200, self.server.page, "text/html; charset=utf-8")
            elif url.path == "/api/state":
                self._json(bridge.state())
            elif url.path in ("/api/events", "/api/poll"):
                if not self.server.streams.acquire(blocking=False):
                    self._send(503, b"too many streams\n", "text/plain")
                    return
                try:
                    if url.path == "/api/events":
                        self._events(bridge)
                    else:
                        self._poll(bridge, query)
                finally:
                    self.server.streams.release()
            else:
                self._send(404, b"not found\n", "text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _poll(self, bridge: WebBridge, query: dict) -> None:
        try:
            after = int(query.get("after", ["-1"])[0])
            wait = min(max(float(query.get("wait", ["20"])[0]), 0.0), MAX_WAIT_S)
        except ValueError:
            self._send(400, b"after: integer, wait: seconds\n", "text/plain")
            return
        batches = None if after < 0 else bridge.batches_after(after, wait)
        if batches is None:
            state = bridge.state()
            self._json({"id": state["id"], "messages": [state]})
            return
        last = batches[-1][0] if batches else after
        body = b'{"id":%d,"messages":[' % last + b",".join(d[1:-1] for _, d in batches if len(d) > 2) + b"]}"
        self._send(200, body, "application/json")

    def _events(self, bridge: WebBridge) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        w = self.wfile
        w.write(b"retry: 1000\n\n")
        try:
            last = int(self.headers.get("Last-Event-ID", "-1"))
        except ValueError:
            last = -1
        batches = None if last < 0 else bridge.batches_after(last, 0)
        while not bridge.stopped and not self.server.closing:
            if batches is None:
                state = bridge.state()
                last = state["id"]
                w.write(b"id: %d\ndata: %s\n\n" % (last, json.dumps([state], separators=(",", ":")).encode()))
            elif batches:
                for i, data in batches:
                    w.write(b"id: %d\ndata: %s\n\n" % (i, data))
                last = batches[-1][0]
            else:
                w.write(b": keepalive\n\n")
            w.flush()
            batches = bridge.batches_after(last, self.server.keepalive_s)


class WebServer(http.server.ThreadingHTTPServer):
    """The page and the bridge's API on 127.0.0.1:port (0: a free port; ``port`` tells which)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, bridge: WebBridge, port: int = 8080, keepalive_s: float = 15.0):
        self.bridge = bridge
        self.page = page_html()
        self.keepalive_s = keepalive_s
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.closing = False
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> WebServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="cx-web-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; open streams end within ``keepalive_s`` (they are daemon threads)."""
        self.closing = True
        with self.bridge._cond:
            self.bridge._cond.notify_all()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


# ------------------------------------------------------------------- CLI


def cmd_web(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    bridge = WebBridge(args.feed, args.snapshots, tick=args.tick)
    try:
        server = WebServer(bridge, args.port)
    except OSError as exc:
        print(f"cx web: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    bridge.start()
    server.start()
    print(f"cx web: {server.url} (market data from {args.feed}, snapshots from {args.snapshots}); Ctrl-C stops",
          flush=True)
    deadline = time.monotonic() + args.seconds if args.seconds > 0 else None
    code = 0

    def synced_or_failed(seconds: float) -> bool | None:
        time.sleep(seconds)
        return True if bridge.synced or bridge.error is not None else None

    with contextlib.suppress(KeyboardInterrupt):
        if wait_for(synced_or_failed, "cx web", f"a market-data snapshot from {args.snapshots}",
                    args.venue_timeout) is None:
            print(f"cx web: no market-data snapshot from {args.snapshots} within {args.venue_timeout:g}s",
                  file=sys.stderr)
            code = 1
        while not code and bridge.error is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
    server.stop()
    bridge.stop()
    if bridge.error is not None:
        print(f"cx web: the feed bridge failed: {bridge.error!r}", file=sys.stderr)
        return 1
    return code


def add_web_command(sub) -> argparse.ArgumentParser:
    """Add ``web`` to an argparse sub-parser set (``parser.add_subparsers(...)``)."""
    p = sub.add_parser("web", help="serve a web page of the live market on loopback",
                       description="Serve a web page of the live market on 127.0.0.1: depth ladder, forward "
                                   "curve per accelerator, recent trades, last auction. Ctrl-C stops it.")
    p.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default %(default)s; 0: any free)")
    p.add_argument("--feed", default="tcp://127.0.0.1:5556", help="feed PUB endpoint (default %(default)s)")
    p.add_argument("--snapshots", default="tcp://127.0.0.1:5557", help="snapshot service (default %(default)s)")
    p.add_argument("--tick", default="0.001", help="dollars per tick of the listing (default %(default)s)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default 0: until Ctrl-C)")
    add_wait_argument(p)
    p.set_defaults(func=cmd_web)
    return p


__all__ = ["WebBridge", "WebServer", "add_web_command", "cmd_web", "tick_units"]
