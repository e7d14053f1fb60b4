"""Web-page test helpers: headless Chromium (installed on demand), a venue with the web bridge, a small market.

``chromium`` (session fixture): the path of the ``chromium`` binary. When it is
not on PATH and the tests run as root with apt-get, it installs the Debian
packages ``chromium`` and ``chromium-driver`` (bounded by a timeout); when that
is impossible the tests that need it are skipped, saying why.

``WebVenue``: ``tests.feeds.conftest.FeedVenue`` (engine, gateway and feed
publisher on free 127.0.0.1 ports, fake clock) plus a ``WebBridge`` and a
``WebServer`` on a free port. The publisher's clock does not move, so it sends
no heartbeats after its first round: the bridge's dead-feed timeout is set
long. Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from engine.codes import TimeInForce
from feeds import protocol as fp
from feeds.web import WebBridge, WebServer
from gateway import protocol as p
from tests.feeds.conftest import FeedVenue
from tests.gateway.conftest import Client

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--no-default-browser-check", "--hide-scrollbars", "--mute-audio"]
APT_TIMEOUT_S = 900


def _install_chromium() -> str | None:
    """Why chromium cannot be installed, or None once it is."""
    if os.geteuid() != 0:
        return "chromium is not on PATH and the tests do not run as root (apt-get install -y chromium)"
    if shutil.which("apt-get") is None:
        return "chromium is not on PATH and there is no apt-get to install it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium", "chromium-driver"]):
        try:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return f"{' '.join(cmd)} did not finish within {APT_TIMEOUT_S} s"
        if r.returncode != 0:
            return f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-300:]}"
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = _install_chromium()
        path = shutil.which("chromium")
        if path is None:
            pytest.skip(reason or "chromium was installed but is not on PATH")
    return path


def run_chromium(chromium: str, url: str, profile: Path, *extra: str, budget_ms: int = 3000,
                 timeout_s: float = 60) -> str:
    """Load url headless, let the page run ``budget_ms`` of virtual time; returns stdout (the DOM with --dump-dom)."""
    cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *extra, url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    assert r.returncode == 0, f"chromium failed ({r.returncode}): {r.stderr[-2000:]}"
    return r.stdout


class WebVenue(FeedVenue):
    def __init__(self):
        super().__init__(firms=("ALPHA", "BETA", "GAMMA", "MM", "TAKER"))
        self.bridge = WebBridge(self.publisher.endpoint, self.publisher.snapshot_endpoint, flush_s=0.05,
                                heartbeat_timeout_s=600, ctx=self.ctx).start()
        self.server = WebServer(self.bridge, 0, keepalive_s=1.0).start()
        self.wait(lambda s: s["synced"], "the bridge never synced")

    def wait(self, predicate, what: str, timeout: float = 10.0) -> dict:
        """Poll the bridge's state until predicate(state) (AssertionError after timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.bridge.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: synced {state['synced']}, {len(state['books'])} books shown")
            time.sleep(0.01)

    def book(self, symbol: str) -> dict | None:
        return next((b for b in self.bridge.state()["books"] if b["symbol"] == symbol), None)

    def settle(self, symbols) -> dict:
        """Wait until the bridge shows every symbol at the publisher's seq."""
        def done(state):
            seqs = {b["symbol"]: b["seq"] for b in state["books"]}
            return all(seqs.get(s) == self.publisher_seq(s) for s in symbols)
        return self.wait(done, f"the bridge did not reach the publisher's seq of {symbols}")

    def close(self) -> None:
        self.server.stop()
        self.bridge.stop()
        super().close()


@pytest.fixture
def web():
    v = WebVenue()
    yield v
    v.close()


def round_trip(trader, msgs) -> list:
    """Send msgs, then a marker cancel; the replies up to the marker (the gateway answers in order)."""
    for m in msgs:
        trader.send(m)
    trader.send(p.Cancel(0))
    return trader.until(lambda m: isinstance(m, p.CancelRejected) and m.order_id == 0, 10.0)


# ------------------------------------------------------------- a small market

ACCELERATORS = {"H100": 2400, "H200": 3100, "B200": 5200, "MI300X": 1900}  # base price, ticks ($0.001)
PRODUCTS = {("US-EAST", "FIRM"): 1.0, ("EU-NORTH", "FIRM"): 0.94, ("US-EAST", "INTERRUPTIBLE"): 0.68}


def _patient_trader(venue: FeedVenue, firm: str) -> Client:
    """A trader that may stay silent while the test moves the clock (no cancel on disconnect)."""
    c = Client(venue.ctx, venue.gateway.endpoint)
    venue.traders.append(c)
    reply = c.logon("web", firm, heartbeat_ms=60_000, cancel_on_disconnect=False)
    assert isinstance(reply, p.LogonAccepted), reply
    return c


def realistic_market(venue: FeedVenue, hours: list[str], seed: int = 7) -> list[str]:
    """Market makers quote a few levels around a daily price curve, takers trade part of it; the symbols touched.

    ``hours``: delivery hours such as ``"2026-12-01T14"``. Prices peak in the US afternoon (UTC 15-21). The
    takers' orders are spread over a few minutes of the venue's (fake) clock.
    """
    import random

    rng = random.Random(seed)
    mm, taker = _patient_trader(venue, "MM"), _patient_trader(venue, "TAKER")
    symbols, clid = [], 0
    quotes, takes = [], []
    for acc, base in ACCELERATORS.items():
        for (region, cls), factor in PRODUCTS.items():
            for hour in hours:
                h = int(hour[-2:])
                shape = 1.0 + 0.12 * max(0.0, 1 - abs(h - 18) / 6) - 0.05 * (h < 6)
                mid = int(base * factor * shape * (1 + rng.uniform(-0.015, 0.015)))
                sym = f"{acc}.{region}.{cls}.{hour}"
                symbols.append(sym)
                half = max(3, mid // 400)
                for level in range(6 if region == "US-EAST" and cls == "FIRM" else 2):
                    for side, price in ((0, mid - half - 5 * level), (1, mid + half + 5 * level)):
                        clid += 1
                        qty = rng.choice((8, 12, 16, 24, 32, 40)) + 8 * level
                        quotes.append(p.NewOrder(clid, sym, side, qty, price))
                if rng.random() < 0.75:
                    side = rng.randrange(2)
                    clid += 1
                    takes.append(p.NewOrder(clid, sym, side, rng.choice((2, 4, 5, 8, 10)),
                                            mid + (50 if side == 0 else -50), tif=TimeInForce.IOC))
    for i in range(0, len(quotes), 200):
        round_trip(mm, quotes[i: i + 200])
    rng.shuffle(takes)
    for i in range(0, len(takes), 4):
        venue.clock.now += rng.randint(200, 1500) * 10**6  # well within the traders' heartbeat interval
        round_trip(taker, takes[i: i + 4])
    return symbols


def auction_market(venue: FeedVenue, symbols: list[str], seed: int = 11) -> None:
    """A call auction (number 1) clearing a third of the symbols near their mids, then the indicative prices of
    auction 2 on a few of them; the venue reports a solve time of 184.2 ms."""
    import random

    rng = random.Random(seed)
    venue.publisher.auction_solve_us = lambda auction, indicative: 184_200
    mids = {}
    for s in symbols:
        b = venue.publisher.snapshot(fp.SnapshotRequest(0, [s]))
        levels = [m.price for m in b if isinstance(m, fp.SnapshotLevel)]
        mids[s] = sum(levels) // len(levels) if levels else 2000
    cleared = sorted(rng.sample(symbols, len(symbols) // 3))
    venue.publish_auction({s: (mids[s], rng.choice((8, 16, 24, 40))) for s in cleared}, 1, surplus=1_284_400,
                          accepted=9, not_accepted=4, paradoxically_rejected=1, ir_cost=3_100)
    venue.publish_auction({s: (mids[s] + rng.randint(-20, 20), 8) for s in cleared[:6]}, 2, indicative=1, accepted=3)
