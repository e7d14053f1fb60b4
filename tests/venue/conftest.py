"""Venues for the venue tests: the fake-clock gateway of tests.gateway.conftest (fixture ``venue``), and
``LiveVenue``: what ``cx serve`` assembles, on the wall clock, on free loopback ports.

The wall clock matters where the gateway's heartbeats must flow (clients that hear nothing for three
heartbeat intervals give the gateway up), as for the simulated participants.
"""

import time

from engine.auction.market import Market
from engine.exchange import Exchange
from engine.instruments import NS_PER_HOUR
from engine.listing import load_listing
from feeds.publisher import FeedPublisher
from gateway.config import DEFAULT_FIRMS, GatewayConfig
from gateway.server import Gateway
from gateway.venue import count_trades
from tests.gateway.conftest import venue  # noqa: F401  (a fixture, found by pytest through this import)

LOOPBACK = "tcp://127.0.0.1:*"


class LiveVenue:
    """Engine (with the package auction) over the default listing anchored at the current hour, feeds,
    gateway counting trades."""

    def __init__(self, firms=DEFAULT_FIRMS, order_entry=LOOPBACK, market_data=LOOPBACK, snapshots=LOOPBACK):
        instruments = load_listing(None).instruments(time.time_ns() // NS_PER_HOUR * NS_PER_HOUR)
        self.engine = Market(Exchange(instruments, len(firms)))
        self.publisher = FeedPublisher(instruments, market_data, snapshots).start()
        self.gateway = Gateway(GatewayConfig.for_tests(firms=list(firms), order_entry=order_entry), self.engine)
        self.gateway.on_events = count_trades(self.publisher.on_events, self.gateway.stats)
        self.gateway.start()

    def close(self) -> None:
        self.gateway.stop()
        self.publisher.stop()
