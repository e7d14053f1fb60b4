"""A client resumes by itself after a fast restart of the venue (issue #14, item 1).

``cx serve --journal`` is SIGKILLed and started again within well under the client's silence limit while the
client sends orders: ZeroMQ reconnects the client's old socket to the new gateway, which knows no session on it
and answers ``LogonRequired``; the client (blocking and asyncio) logs on again with its ``next_seq``, receives
what it missed, and sends again the orders that stayed unanswered. Every order the client sent is answered
exactly once, no report is lost or doubled, and the client is logged on at the end.
"""

from __future__ import annotations

import asyncio
import time

from engine.codes import Side
from engine.instruments import NS_PER_HOUR, format_symbol
from gateway import protocol as p
from gateway.client import AsyncOrderEntryClient, ClientError, OrderEntryClient
from tests.journal.test_crash_gateway import Server, write_config

ORDERS = 300  # sent over about 3 s, the restart in the middle
KILL_AFTER = 100


def symbol() -> str:
    return format_symbol("H100", "US-EAST", "FIRM", (time.time_ns() // NS_PER_HOUR + 2) * NS_PER_HOUR)


class Tally:
    """Answers per client order id, and every sequenced message seen (no gap, no duplicate)."""

    def __init__(self):
        self.answers: dict[int, list] = {}
        self.seqs: list[int] = []

    def take(self, msg) -> None:
        if getattr(msg, "seq", None) is not None:
            self.seqs.append(msg.seq)
        if isinstance(msg, p.Accepted | p.Rejected):
            self.answers.setdefault(msg.client_order_id, []).append(type(msg).__name__)

    def check(self, sent: list[int]) -> None:
        assert self.seqs == list(range(1, len(self.seqs) + 1)), "a report was lost or doubled"
        assert {c: a for c, a in self.answers.items() if a != ["Accepted"]} == {}
        assert sorted(self.answers) == sorted(sent), "an order was not answered"


def restart(server: Server, config, journal, log) -> Server:
    server.kill()
    server.stop()
    fresh = Server(config, journal, log)
    fresh.wait_ready(60)
    return fresh


def test_the_blocking_client_resumes_by_itself_after_a_restart_in_under_a_second(tmp_path):
    config, journal = tmp_path / "venue.toml", tmp_path / "journal"
    write_config(config)
    server = Server(config, journal, tmp_path / "a.log")
    endpoint = server.wait_ready(60)
    tally, sent = Tally(), []
    client = OrderEntryClient()
    try:
        client.connect(endpoint, "flow", firm="A", cancel_on_disconnect=False)
        sym = symbol()
        down_s = None
        for k in range(ORDERS):
            if k == KILL_AFTER:
                t0 = time.monotonic()
                server = restart(server, config, journal, tmp_path / "b.log")
                down_s = time.monotonic() - t0
            try:
                sent.append(client.new_order(sym, Side.BUY, 1, 1000 + k % 50, client_order_id=10_000 + k))
            except ClientError:  # a send that timed out while the venue was down: the order was never sent
                continue
            while (msg := client.recv(0.01)) is not None:
                tally.take(msg)
        deadline = time.monotonic() + 15
        while sorted(tally.answers) != sorted(sent) and time.monotonic() < deadline:
            if (msg := client.recv(0.2)) is not None:
                tally.take(msg)
        assert down_s is not None and down_s < 3.0  # within the client's silence limit (3 x 1 s)
        assert client.logons_required >= 1 and client.reconnects >= 1 and client.logged_on
        tally.check(sent)
    finally:
        client.close()
        server.stop()


def test_the_asyncio_client_resumes_by_itself_after_a_fast_restart(tmp_path):
    config, journal = tmp_path / "venue.toml", tmp_path / "journal"
    write_config(config)
    servers = [Server(config, journal, tmp_path / "a.log")]
    endpoint = servers[0].wait_ready(60)
    tally, sent = Tally(), []

    async def run() -> AsyncOrderEntryClient:
        client = AsyncOrderEntryClient()
        await client.connect(endpoint, "flow", firm="A", cancel_on_disconnect=False)
        sym = symbol()
        for k in range(ORDERS):
            if k == KILL_AFTER:
                servers.append(await asyncio.to_thread(restart, servers.pop(), config, journal, tmp_path / "b.log"))
            try:
                sent.append(await client.new_order(sym, Side.SELL, 1, 5000 + k % 50, client_order_id=20_000 + k))
            except ClientError:
                continue
            while (msg := await client.recv(0.01)) is not None:
                tally.take(msg)
        deadline = time.monotonic() + 15
        while sorted(tally.answers) != sorted(sent) and time.monotonic() < deadline:
            if (msg := await client.recv(0.2)) is not None:
                tally.take(msg)
        await client.close()
        return client

    try:
        client = asyncio.run(run())
        assert client.logons_required >= 1 and client.reconnects >= 1
        tally.check(sent)
    finally:
        servers[-1].stop()
