"""A running gateway on loopback with a clock the test drives, and raw DEALER clients.

``venue`` starts an engine over the default listing (anchored at 2026-12-01T08
UTC), with the package call auction (``engine.auction.market.Market``), behind
a Gateway whose clock is ``venue.clock`` (set ``venue.clock.now`` to move time;
the gateway loop notices within ~20 ms). ``venue.client(firm,
session)`` connects a DEALER and logs on in plain text. Every wait is bounded.
``Venue(config, engine, clock, rebuild)`` puts another engine (a journaled
one) behind the gateway; ``rebuild(gateway)`` runs before the gateway starts.
"""

from __future__ import annotations

import time

import pytest
import zmq

from engine.auction.market import Market
from engine.exchange import Exchange
from engine.listing import load_listing
from gateway import protocol as p
from gateway.config import FirmConfig, GatewayConfig
from gateway.server import Gateway

ANCHOR_NS = 1_796_112_000 * 10**9  # 2026-12-01T08:00Z
SYMBOL = "H100.US-EAST.FIRM.2026-12-01T13"
OTHER = "B200.EU-NORTH.FIRM.2026-12-01T20"


class FakeClock:
    def __init__(self, now: int):
        self.now = now

    def __call__(self) -> int:
        return self.now


class Client:
    """A DEALER speaking the protocol, for tests."""

    def __init__(self, ctx: zmq.Context, endpoint: str, **curve):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        for k, v in curve.items():
            setattr(self.sock, k, v)
        self.sock.connect(endpoint)
        self.seen: list = []
        self._queued: list = []  # decoded messages of a frame not yet returned

    def send(self, msg) -> None:
        self.sock.send(p.client_encoder.encode(msg))

    def recv(self, timeout: float = 2.0):
        """The next message, or None after timeout seconds."""
        if not self._queued:
            if not self.sock.poll(int(timeout * 1000)):
                return None
            self._queued.extend(p.decode_server_frame(self.sock.recv()))
        msg = self._queued.pop(0)
        self.seen.append(msg)
        return msg

    def until(self, predicate, timeout: float = 3.0) -> list:
        """Messages up to and including the first that satisfies predicate (AssertionError if none)."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(max(deadline - time.monotonic(), 0.001))
            if msg is None:
                break
            if isinstance(msg, p.Heartbeat):
                continue
            got.append(msg)
            if predicate(msg):
                return got
        raise AssertionError(f"no matching message; got {got}")

    def expect(self, cls, timeout: float = 3.0):
        return self.until(lambda m: isinstance(m, cls), timeout)[-1]

    def quiet(self, timeout: float = 0.2) -> list:
        """Everything but heartbeats that arrives within timeout."""
        got = []
        while (msg := self.recv(timeout)) is not None:
            if not isinstance(msg, p.Heartbeat):
                got.append(msg)
        return got

    def logon(self, session: str, firm: str = "", next_seq: int = 1, **kw) -> p.LogonAccepted:
        self.send(p.Logon(session, next_seq=next_seq, firm=firm, **kw))
        return self.until(lambda m: isinstance(m, p.LogonAccepted | p.LogonRejected))[-1]

    def close(self) -> None:
        self.sock.close(linger=0)


def listing_instruments() -> list:
    return load_listing(None).instruments(ANCHOR_NS)


class Venue:
    def __init__(self, config: GatewayConfig, engine=None, clock: FakeClock | None = None, rebuild=None):
        self.clock = clock or FakeClock(ANCHOR_NS + 5 * 10**9)
        self.engine = engine if engine is not None else Market(Exchange(listing_instruments(), len(config.firms)))
        self.gateway = Gateway(config, self.engine, clock=self.clock)
        if rebuild is not None:
            rebuild(self.gateway)
        self.gateway.start()
        self.ctx = zmq.Context()
        self.clients: list[Client] = []

    def client(self, firm: str | None = None, session: str = "s1", **curve) -> Client:
        c = Client(self.ctx, self.gateway.endpoint, **curve)
        self.clients.append(c)
        if firm is not None:
            reply = c.logon(session, firm)
            assert isinstance(reply, p.LogonAccepted), reply
        return c

    def admin(self, **request):
        from gateway.admin_protocol import AdminRequest, admin_encoder, reply_decoder
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.gateway.admin_endpoint)
        s.send(admin_encoder.encode(AdminRequest(**request)))
        assert s.poll(3000), "admin did not answer"
        reply = reply_decoder.decode(s.recv())
        s.close()
        return reply

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.gateway.stop()
        self.ctx.destroy(linger=0)


def make_venue(**overrides) -> Venue:
    firms = overrides.pop("firms", ["ALPHA", "BETA", FirmConfig("SMALL", max_order_qty=10, max_open_qty=30,
                                                                max_msgs_per_s=5)])
    return Venue(GatewayConfig.for_tests(firms=firms, **overrides))


@pytest.fixture
def venue():
    v = make_venue()
    yield v
    v.close()
