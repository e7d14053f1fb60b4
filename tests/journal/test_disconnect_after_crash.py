"""Cancel on disconnect across a crash: ``cx serve --journal`` is SIGKILLed under sessions with resting orders and
a live package; after the restart, a session with ``cancel_on_disconnect`` that does not log on again within its
heartbeat timeout has them cancelled with DISCONNECT (as if it had gone silent), one without it keeps them, and
one that comes back in time keeps them too. Its owner, logging on later, finds the cancels in its resend."""

from __future__ import annotations

import re
import time
import tomllib

import zmq

from engine.codes import CancelReason, Side
from engine.instruments import NS_PER_HOUR, format_symbol
from gateway import protocol as p
from gateway.admin_cli import admin_request
from gateway.admin_protocol import AdminRequest
from tests.journal.test_crash_gateway import Server, write_config

TRIALS = 3


def symbol(hours_ahead: int) -> str:
    return format_symbol("H100", "US-EAST", "FIRM", (time.time_ns() // NS_PER_HOUR + hours_ahead) * NS_PER_HOUR)


def logon(ctx: zmq.Context, endpoint: str, firm: str, session: str, cancel_on_disconnect: bool,
          next_seq: int = 1) -> tuple[zmq.Socket, list]:
    """A DEALER logged on; the messages of the resend that follows (until 0.5 s of quiet)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    sock.send(p.client_encoder.encode(p.Logon(session, next_seq=next_seq, firm=firm,
                                              cancel_on_disconnect=cancel_on_disconnect)))
    got: list = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sock.poll(500 if got else 20_000):
        got += p.decode_server_frame(sock.recv())
    assert got and isinstance(got[0], p.LogonAccepted), got
    return sock, got[1:]


def resting(ctx, endpoint, firm, session, cod, hours_ahead: int, package: bool) -> tuple[zmq.Socket, int]:
    """Log on, rest three bids (and a package bid); the number of sequenced messages received."""
    sock, _ = logon(ctx, endpoint, firm, session, cod)
    clid = time.time_ns()  # unique for the firm's day
    for k in range(3):
        sock.send(p.client_encoder.encode(p.NewOrder(clid + k, symbol(hours_ahead), Side.BUY, 2, 1000 + k)))
    if package:
        alt = p.PackageAlternative([p.PackageLeg(symbol(hours_ahead + 1), 2)], 2000)
        sock.send(p.client_encoder.encode(p.NewPackage(clid, Side.BUY, [alt])))
    want = 3 + package
    got: list = []
    deadline = time.monotonic() + 10
    while len(got) < want and time.monotonic() < deadline and sock.poll(1000):
        got += [m for m in p.decode_server_frame(sock.recv()) if isinstance(m, p.Accepted | p.PackageAccepted)]
    assert [type(m) for m in got] == [p.Accepted] * 3 + [p.PackageAccepted] * package, (firm, session, got)
    return sock, want


def test_a_session_with_cancel_on_disconnect_that_does_not_come_back_after_a_crash_is_cancelled(tmp_path):
    config = tmp_path / "venue.toml"
    write_config(config)
    admin = tomllib.loads(config.read_text())["gateway"]["admin"]
    journal, ctx = tmp_path / "journal", zmq.Context()
    server = None
    try:
        for trial in range(TRIALS):
            server = Server(config, journal, tmp_path / f"serve-{trial}.log")
            endpoint = server.wait_ready(60)
            gone, seen = resting(ctx, endpoint, "A", f"gone-{trial}", True, 2, package=True)
            keep, _ = resting(ctx, endpoint, "B", f"keep-{trial}", False, 2, package=False)
            back, _ = resting(ctx, endpoint, "A", f"back-{trial}", True, 3, package=False)
            before = admin_request(admin, AdminRequest("status"), 10).status
            for sock in (gone, keep, back):
                sock.close(linger=0)
            server.kill()
            server.stop()
            server = Server(config, journal, tmp_path / f"serve-{trial}-after.log")
            endpoint = server.wait_ready(60)
            back, _ = logon(ctx, endpoint, "A", f"back-{trial}", True, next_seq=4)  # within the timeout
            deadline = time.monotonic() + 15  # the heartbeat timeout is 3 s
            while time.monotonic() < deadline:
                status = admin_request(admin, AdminRequest("status"), 10).status
                if status.live_orders == before.live_orders - 3:
                    break
                back.send(p.client_encoder.encode(p.Heartbeat()))
                time.sleep(0.3)
            assert (status.live_orders, status.live_packages) == (before.live_orders - 3, before.live_packages - 1)
            late, resent = logon(ctx, endpoint, "A", f"gone-{trial}", True, next_seq=seen + 1)
            cancels = [m for m in resent if isinstance(m, p.Cancelled)]
            assert [m.reason for m in cancels] == [CancelReason.DISCONNECT] * 3
            assert [m.reason for m in resent if isinstance(m, p.PackageCancelled)] == [CancelReason.DISCONNECT]
            ends = [m for m in resent if isinstance(m, p.SystemEvent)]
            assert [m.code for m in ends] == ["DISCONNECT"] and re.search("after the venue restarted", ends[0].text)
            for sock in (late, back):  # logged out: nothing of this trial is left to time out in the next one
                sock.send(p.client_encoder.encode(p.Logout()))
                assert sock.poll(5000)
                sock.close(linger=0)
            assert server.interrupt(30) == 0
            server.stop()
            server = None
    finally:
        if server is not None:
            server.stop()
        ctx.destroy(linger=0)
