"""cx top --once: one frame of the dashboard from the feed and the admin status."""

from __future__ import annotations

from engine.codes import Side, TimeInForce
from gateway import protocol as p
from gateway.cli import main
from tests.feeds.conftest import OTHER, SYMBOL, FeedVenue


def test_top_once_shows_the_active_instruments_the_venue_and_the_last_auction(capsys):
    venue = FeedVenue()
    try:
        alpha, beta = venue.trader("ALPHA"), venue.trader("BETA")
        alpha.send(p.NewOrder(1, SYMBOL, Side.BUY, 12, 2450))
        alpha.send(p.NewOrder(2, OTHER, Side.SELL, 7, 3100))
        assert [alpha.expect(p.Accepted).client_order_id for _ in range(2)] == [1, 2]
        beta.send(p.NewOrder(3, OTHER, Side.BUY, 3, 3100, tif=TimeInForce.IOC))
        beta.expect(p.Executed)
        argv = ["top", "--once", "--feed", venue.publisher.endpoint, "--snapshots", venue.publisher.snapshot_endpoint,
                "--admin", venue.gateway.admin_endpoint, "--timeout", "5"]
        code = main(argv)
        out = capsys.readouterr().out
        # an auction (the solve time from the venue), then an indicative run for the next one
        venue.publisher.auction_solve_us = lambda auction, indicative: 2500
        venue.publish_auction({SYMBOL: (2470, 12), OTHER: (3050, 30)}, 1, surplus=12_345, accepted=3, not_accepted=2)
        venue.publish_auction({SYMBOL: (2480, 6)}, 2, indicative=1)
        assert main(argv) == 0
        auction = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("auction"))
    finally:
        venue.close()
    assert auction == (f"auction  #1 optimal, surplus $12.345, 3 packages accepted, 2 not, 2.5 ms; {OTHER} 3.050 x 30, "
                       f"{SYMBOL} 2.470 x 12   indicative #2: {SYMBOL} 2.480 x 6")
    assert code == 0 and "\x1b[" not in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith((SYMBOL, OTHER))}
    assert rows[SYMBOL][1:5] == ["OPEN", "12", "2.450", "-"]  # a bid of 12 GPUs, no ask
    assert rows[OTHER][1:5] == ["OPEN", "-", "3.100", "4"]  # no bid; the ask of 7 GPUs less the 3 traded
    assert "2 sessions (2 connected)" in out
    assert "no auction yet" in out


def test_top_without_a_feed_exits_1(capsys):
    assert main(["top", "--once", "--feed", "tcp://127.0.0.1:9", "--snapshots", "tcp://127.0.0.1:9",
                 "--admin", "none", "--timeout", "0.3"]) == 1
    assert "no market-data snapshot" in capsys.readouterr().err


def test_a_frame_fits_its_terminal_lines_cut_never_wrapped_and_no_newline_after_the_last():
    from gateway.top import CLEAR_BELOW, CLEAR_LINE, HOME, screen

    lines = ["cx top  header", "venue    " + "x" * 300, *(f"row {i}" for i in range(22))]  # 24 lines, 120 columns
    text = screen(lines, 120)
    assert text.startswith(HOME + "cx top  header") and text.endswith("row 21" + CLEAR_LINE + CLEAR_BELOW)
    shown = text[len(HOME): -len(CLEAR_BELOW)].split("\n")
    assert len(shown) == 24 and all(len(line.replace(CLEAR_LINE, "")) <= 119 for line in shown)
