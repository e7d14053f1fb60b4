"""``cx order``, ``cx cancel`` and ``cx orders`` in-process against a real Gateway on loopback."""

from __future__ import annotations

import re
import time

import pytest
import zmq.auth

from engine.instruments import NS_PER_SECOND
from gateway.cli import _parse_time, main
from gateway.config import FirmConfig
from tests.gateway.conftest import ANCHOR_NS, SYMBOL, make_venue


def cx(venue, capsys, *args: str, firm: str = "ALPHA") -> tuple[int, str, str]:
    code = main([*args, "--endpoint", venue.gateway.endpoint, "--firm", firm, "--timeout", "3"])
    out, err = capsys.readouterr()
    return code, out, err


def order_id(out: str) -> int:
    return int(re.search(r"accepted +order (\d+)", out).group(1))


def test_order_rests_fills_is_listed_and_cancelled(venue, capsys):
    code, out, _ = cx(venue, capsys, "order", "sell", SYMBOL, "10", "@", "2.000")
    assert code == 0, out
    oid = order_id(out)
    assert re.fullmatch(rf"ALPHA session 'cli': SELL 10 {SYMBOL} @ 2.000 GTC \(client id \d+\)", out.splitlines()[0])
    assert "accepted" in out and f"order {oid} rests: 10 open @ 2.000" in out
    code, out, _ = cx(venue, capsys, "order", "buy", SYMBOL, "4", "@2.100", "--ioc", firm="BETA")
    assert code == 0
    assert f"BUY 4 {SYMBOL} @ 2.000 (taker" in out and "filled 4, open 0" in out
    code, out, _ = cx(venue, capsys, "orders")
    assert code == 0 and "1 open order " in out
    row = out.splitlines()[-1].split()
    assert row[:6] == [str(oid), "SELL", "6", SYMBOL, "2.000", "4"]
    code, out, _ = cx(venue, capsys, "cancel", str(oid))
    assert code == 0 and f"cancelled  order {oid}: SELL 6 {SYMBOL} (USER)" in out
    code, out, _ = cx(venue, capsys, "orders")
    assert code == 0 and "0 open orders" in out
    code, out, _ = cx(venue, capsys, "orders", "--session", "other")
    assert code == 0 and "0 open orders (0 messages of history)" in out


def test_rejections_and_refusals_set_the_exit_status(venue, capsys):
    code, out, _ = cx(venue, capsys, "order", "buy", SYMBOL, "5", "@", "2.100", "--fok")
    assert code == 1 and "rejected" in out and "FOK_CANNOT_FILL" in out
    code, out, _ = cx(venue, capsys, "order", "buy", SYMBOL, "5", "--market")
    assert code == 1 and "NO_LIQUIDITY" in out
    code, out, _ = cx(venue, capsys, "cancel", "999")
    assert code == 1 and "UNKNOWN_ORDER" in out
    code, _, err = cx(venue, capsys, "order", "buy", SYMBOL, "5", "@", "2.0005")
    assert code == 2 and "tick" in err
    code, _, err = cx(venue, capsys, "order", "buy", SYMBOL, "5", "@", "2.1", "--market")
    assert code == 2 and "no price" in err
    code, _, err = cx(venue, capsys, "order", "buy", SYMBOL, "5")
    assert code == 2 and "@ PRICE" in err
    code, _, err = cx(venue, capsys, "orders", firm="NOBODY")
    assert code == 2 and "unknown firm" in err
    assert venue.gateway.stats["protocol_errors"] == 0


def test_market_order_and_gtd_expiry_seen_through_the_history(venue, capsys):
    assert cx(venue, capsys, "order", "sell", SYMBOL, "5", "@", "2.000", "--gtd", "2026-12-01T09:00Z")[0] == 0
    code, out, _ = cx(venue, capsys, "order", "buy", SYMBOL, "2", "--market", firm="BETA")
    assert code == 0 and "executed" in out and "MARKET_PROTECTION" not in out
    code, out, _ = cx(venue, capsys, "orders")
    assert "1 open order " in out and out.splitlines()[-1].split()[2] == "3"
    venue.clock.now = ANCHOR_NS + 3600 * NS_PER_SECOND  # 09:00: the GTD order expires
    deadline = time.monotonic() + 3
    while venue.gateway.orders and time.monotonic() < deadline:
        time.sleep(0.01)
    code, out, _ = cx(venue, capsys, "orders")
    assert code == 0 and "0 open orders" in out


def test_no_gateway_waits_saying_so_then_exits_2_within_its_venue_timeout(capsys):
    t0 = time.monotonic()
    code = main(["orders", "--endpoint", "tcp://127.0.0.1:9", "--venue-timeout", "1.5"])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - t0 < 6
    assert "cx orders: waiting for the venue (a logon answer from tcp://127.0.0.1:9), for 1.5 s at most" in err
    assert "no answer to the logon from tcp://127.0.0.1:9 within 1.5s" in err


def test_curve_keys_from_a_directory(tmp_path, capsys):
    for name in ("gateway", "ALPHA"):
        zmq.auth.create_certificates(tmp_path, name)
    venue = make_venue(firms=[FirmConfig("ALPHA", public_key_file=str(tmp_path / "ALPHA.key"))], plaintext=False,
                       server_secret_key_file=str(tmp_path / "gateway.key_secret"))
    try:
        code, out, _ = cx(venue, capsys, "order", "buy", SYMBOL, "1", "@", "1.900", "--keys", str(tmp_path))
        assert code == 0 and out.startswith("ALPHA session 'cli'") and "rests" in out
        code, _, err = cx(venue, capsys, "orders", "--keys", str(tmp_path / "missing"))
        assert code == 2 and "cannot read the key pair" in err
        code, _, err = cx(venue, capsys, "orders", "--server-key", str(tmp_path / "gateway.key"))
        assert code == 2 and "--keys" in err
    finally:
        venue.close()


@pytest.mark.parametrize("text, expected", [
    ("2026-12-01T09:30Z", ANCHOR_NS + 5400 * NS_PER_SECOND),
    ("2026-12-01T09:30", ANCHOR_NS + 5400 * NS_PER_SECOND),
    ("2026-12-01T10:30:00+01:00", ANCHOR_NS + 5400 * NS_PER_SECOND),
    ("2026-12-01T08:00:00.250Z", ANCHOR_NS + 250_000_000),
    (str(ANCHOR_NS), ANCHOR_NS),
])
def test_gtd_times(text, expected):
    assert _parse_time(text) == expected


def test_relative_gtd_times_and_nonsense():
    now = time.time_ns()
    assert abs(_parse_time("+30m") - (now + 1800 * NS_PER_SECOND)) < 10 * NS_PER_SECOND
    with pytest.raises(ValueError, match="ISO"):
        _parse_time("tomorrow")
