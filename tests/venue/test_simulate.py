"""cx simulate against an in-process venue (engine, gateway, feeds on loopback): trades on every accelerator."""

from __future__ import annotations

import io
import threading
import time

from engine.listing import load_listing
from feeds import protocol as fp
from feeds.client import FeedClient
from gateway.admin_cli import admin_request
from gateway.admin_protocol import AdminRequest
from gateway.simulate import POPULATION, Simulation
from tests.journal.test_crash_gateway import free_ports
from tests.venue.conftest import LiveVenue


def test_simulated_firms_trade_every_accelerator_then_cancel_and_log_out():
    venue = LiveVenue()
    listing = load_listing(None)
    accelerators = {pr.accelerator for pr in listing.products}
    traded: set[str] = set()
    watcher = FeedClient(venue.publisher.endpoint, venue.publisher.snapshot_endpoint,
                         on_update=lambda m: traded.add(m.symbol.split(".")[0]) if type(m) is fp.Trade else None)
    watcher.connect()
    out = io.StringIO()
    sim = Simulation(venue.gateway.endpoint, venue.publisher.endpoint, venue.publisher.snapshot_endpoint, listing,
                     seed=5, hours=2, out=out)
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(sim.run(stop, duration=60)), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while traded != accelerators and time.monotonic() < deadline and thread.is_alive():
            watcher.poll(50)
    finally:
        stop.set()
        thread.join(15)
    try:
        assert traded == accelerators, out.getvalue()
        assert result == [0] and not thread.is_alive()
        text = out.getvalue()
        firms = {f for cls in POPULATION for f in cls.firms}
        assert f"{len(firms)} firms trading through" in text
        summary = text[text.index("cx simulate: ", text.index("firms trading through")):]
        assert all(f"  {a} " in summary for a in accelerators)  # a row of GPU-hours per accelerator
        assert sum(sim.tally.fills.values()) > 0 and set(sim.tally.orders) <= set(firms)
        status = admin_request(venue.gateway.admin_endpoint, AdminRequest("status"), 3).status
        assert status.live_orders == 0 and status.connected == 0  # cancelled, logged out
        assert status.stats["trades"] > 0 and status.stats["traded_qty"] >= status.stats["trades"]
    finally:
        watcher.close()
        venue.close()


def test_simulation_without_a_feed_waits_then_gives_up_and_says_so():
    out = io.StringIO()
    sim = Simulation("tcp://127.0.0.1:9", "tcp://127.0.0.1:9", "tcp://127.0.0.1:9", load_listing(None), out=out,
                     wait_s=1.5)
    assert sim.run(threading.Event()) == 2
    text = out.getvalue()
    assert "cx simulate: waiting for the venue (a market-data snapshot from tcp://127.0.0.1:9), for 1.5 s" in text
    assert "no market-data snapshot from tcp://127.0.0.1:9 within 1.5s" in text


def test_simulation_started_before_the_venue_waits_for_it_and_trades():
    """The venue comes up 2 s after the simulation started (as on a first run's compile): it waits, then trades."""
    out = io.StringIO()
    gateway, feed, snaps = (f"tcp://127.0.0.1:{port}" for port in free_ports(3))
    sim = Simulation(gateway, feed, snaps, load_listing(None), hours=1, out=out, wait_s=30)
    venue = None
    thread = threading.Thread(target=sim.run, args=(threading.Event(), 2.0))
    thread.start()
    try:
        time.sleep(2)
        venue = LiveVenue(order_entry=gateway, market_data=feed, snapshots=snaps)
        thread.join(60)
    finally:
        if venue is not None:
            venue.close()
    text = out.getvalue()
    assert "waiting for the venue" in text and "firms trading through" in text


def test_firms_missing_from_the_venues_configuration_are_left_out_and_named():
    venue = LiveVenue(firms=("PROV1", "MM1", "LAB1"))
    out = io.StringIO()
    try:
        sim = Simulation(venue.gateway.endpoint, venue.publisher.endpoint, venue.publisher.snapshot_endpoint,
                         load_listing(None), hours=1, out=out)
        assert sim.run(threading.Event(), duration=0.5) == 0
    finally:
        venue.close()
    text = out.getvalue()
    missing = [f for cls in POPULATION for f in cls.firms if f not in ("PROV1", "MM1", "LAB1")]
    assert all(f"cx simulate: {f} cannot trade" in text for f in missing)
    assert "3 firms trading through" in text and set(sim.tally.orders) <= {"PROV1", "MM1", "LAB1"}
