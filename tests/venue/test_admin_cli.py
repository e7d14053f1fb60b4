"""cx admin halt/resume/kill/release and cx status against a gateway on loopback (tests.gateway.conftest)."""

from __future__ import annotations

import msgspec
import pytest
import zmq

from engine.codes import CancelReason, RejectReason, Side
from gateway import protocol as p
from gateway.admin_protocol import AdminReply, admin_encoder, reply_decoder
from gateway.cli import main
from tests.gateway.conftest import SYMBOL


def cx(capsys, venue, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--admin", venue.gateway.admin_endpoint, "--timeout", "3"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_halt_refuses_new_orders_and_resume_lets_them_in(venue, capsys):
    alpha = venue.client("ALPHA")
    assert cx(capsys, venue, "admin", "halt", SYMBOL)[:2] == (0, f"{SYMBOL} halted\n")
    alpha.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 2000))
    assert alpha.expect(p.Rejected).reason == RejectReason.INSTRUMENT_HALTED
    assert cx(capsys, venue, "admin", "resume", SYMBOL)[:2] == (0, f"{SYMBOL} resumed\n")
    alpha.send(p.NewOrder(2, SYMBOL, Side.BUY, 5, 2000))
    assert alpha.expect(p.Accepted).client_order_id == 2


def test_kill_cancels_the_firms_orders_and_release_lets_it_trade_again(venue, capsys):
    alpha = venue.client("ALPHA")
    alpha.send(p.NewOrder(1, SYMBOL, Side.BUY, 5, 2000))
    order_id = alpha.expect(p.Accepted).order_id
    code, out, _ = cx(capsys, venue, "admin", "kill", "ALPHA")
    assert (code, out) == (0, "firm ALPHA suspended\n")
    cancelled = alpha.expect(p.Cancelled)
    assert (cancelled.order_id, cancelled.reason) == (order_id, CancelReason.ADMIN)
    alpha.send(p.NewOrder(2, SYMBOL, Side.BUY, 5, 2000))
    assert alpha.expect(p.Rejected).reason == RejectReason.FIRM_SUSPENDED
    code, out, _ = cx(capsys, venue, "status", "--interval", "0")
    assert code == 0 and "suspended: ALPHA" in out
    assert cx(capsys, venue, "admin", "release", "ALPHA")[:2] == (0, "firm ALPHA released\n")
    alpha.send(p.NewOrder(3, SYMBOL, Side.BUY, 5, 2000))
    assert alpha.expect(p.Accepted).client_order_id == 3


@pytest.mark.parametrize("argv, text", [
    (("admin", "halt", "NOPE.US-EAST.FIRM.2026-12-01T13"), "unknown symbol"),
    (("admin", "kill", "NOBODY"), "unknown firm"),
    (("admin", "halt", "H100.US-EAST.FIRM.2026-12-01T08"), "is CLOSED"),  # past its gate closure
])
def test_a_refused_command_exits_1_and_says_why(venue, capsys, argv, text):
    code, out, err = cx(capsys, venue, *argv)
    assert code == 1 and out == "" and text in err


def test_an_unreachable_admin_exits_2_within_the_timeout(capsys):
    with zmq.Context() as ctx:
        sock = ctx.socket(zmq.ROUTER)  # bound but never answering
        port = sock.bind_to_random_port("tcp://127.0.0.1")
        for argv in (["admin", "resume", SYMBOL], ["status"]):
            assert main([*argv, "--admin", f"tcp://127.0.0.1:{port}", "--timeout", "0.2"]) == 2
            assert "no answer" in capsys.readouterr().err
        sock.close(linger=0)


def test_status_summarises_instruments_sessions_and_halted_symbols(venue, capsys):
    venue.client("ALPHA")
    venue.client("BETA", session="desk")
    assert cx(capsys, venue, "admin", "halt", SYMBOL)[0] == 0
    code, out, _ = cx(capsys, venue, "status", "--interval", "0.05")
    assert code == 0
    listed = len(venue.gateway.symbols)
    assert f"{listed} listed:" in out and "1 halted" in out and f"halted       {SYMBOL}" in out
    assert "2 (2 connected)" in out and "3 configured" in out and "journal      none" in out
    assert "msgs/s" in out and "trades not counted by this gateway" in out


def test_status_reply_stays_compatible_with_the_one_line_form():
    class OldReply(msgspec.Struct):
        ok: bool
        text: str

    old = admin_encoder.encode(OldReply(True, "sessions 0"))
    assert reply_decoder.decode(old) == AdminReply(True, "sessions 0")
    new = admin_encoder.encode(AdminReply(True, "sessions 0"))
    assert msgspec.msgpack.decode(new, type=OldReply) == OldReply(True, "sessions 0")
