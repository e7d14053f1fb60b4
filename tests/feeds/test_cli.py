"""``cx feed`` (feeds.cli): prints the synced book; no snapshot within the timeout is exit status 1."""

from __future__ import annotations

import argparse
import io

import pytest

from feeds import protocol as fp
from feeds.cli import add_feed_command, format_update
from gateway import protocol as p
from tests.feeds.conftest import FeedVenue
from tests.gateway.conftest import OTHER, SYMBOL


@pytest.fixture
def fv():
    v = FeedVenue()
    yield v
    v.close()


def parse(*argv: str):
    parser = argparse.ArgumentParser()
    add_feed_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(["feed", *argv])


def test_cx_feed_once_prints_the_book_of_the_symbol(fv):
    t = fv.trader("ALPHA")
    t.send(p.NewOrder(1, SYMBOL, 0, 5, 2450))
    t.expect(p.Accepted)
    t.send(p.NewOrder(2, SYMBOL, 1, 3, 2500))
    t.expect(p.Accepted)
    args = parse(SYMBOL, "--endpoint", fv.publisher.endpoint, "--snapshot-endpoint", fv.publisher.snapshot_endpoint,
                 "--once", "--l3")
    out = io.StringIO()
    assert args.func(args, out) == 0
    text = out.getvalue()
    assert SYMBOL in text and "2.450" in text and "2.500" in text and "BID order" in text
    assert "status OPEN" in text  # a name, not the code


def test_cx_feed_without_a_snapshot_fails_after_the_timeout(fv):
    args = parse("NO.SUCH.SYMBOL", "--endpoint", fv.publisher.endpoint, "--snapshot-endpoint",
                 fv.publisher.snapshot_endpoint, "--once", "--timeout", "0.3")
    assert args.func(args, io.StringIO()) == 1


def test_cx_feed_shows_the_last_auction_price_and_the_tape_the_auction_results(fv):
    fv.publisher.auction_solve_us = lambda auction, indicative: 1500
    fv.publish_auction({SYMBOL: (2470, 12), OTHER: (3050, 0)}, 3, surplus=98_765, accepted=4, not_accepted=1)
    fv.publish_auction({SYMBOL: (2480, 10)}, 4, indicative=1, accepted=2)
    endpoints = ("--endpoint", fv.publisher.endpoint, "--snapshot-endpoint", fv.publisher.snapshot_endpoint)
    out = io.StringIO()
    args = parse(SYMBOL, *endpoints, "--once")
    assert args.func(args, out) == 0
    assert "AUCTION #3 2.470 (12 GPUs)" in out.getvalue() and "INDICATIVE #4 2.480 (10 GPUs)" in out.getvalue()
    out = io.StringIO()
    args = parse("--tape", *endpoints, "--once")
    assert args.func(args, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("last AUCTION #3 OPTIMAL: surplus $98.765, 4 packages accepted, 1 not,")
    assert lines[0].endswith("gap 0 ppm, 1.5 ms") and lines[1].startswith("last INDICATIVE #4 OPTIMAL")
    args = parse(*endpoints)
    assert args.func(args, io.StringIO()) == 2  # neither a symbol nor --tape


def test_update_lines_for_trades_levels_and_auctions():
    assert format_update(fp.Trade("S", 1, 1, 1, 1, 7, 0, 2450, 3), "0.001").startswith("TRADE  3 @ 2.450")
    assert "BID 2.450 -> 0" in format_update(fp.LevelUpdate("S", 1, 1, 1, 1, 0, 2450, 0, 0), "0.001")
    assert format_update(fp.Heartbeat("S", 1, 1, 1, 1), "0.001") is None
    assert format_update(fp.InstrumentStatus("S", 1, 1, 1, 1, 2), "0.001") == "STATUS HALTED"
    assert format_update(fp.AuctionPrice("S", 1, 1, 1, 1, 7, 1, 2450, 30), "0.001") == "INDICATIVE #7 2.450 (30 GPUs)"
    line = format_update(fp.AuctionResult(fp.AUCTION_SYMBOL, 1, 1, 1, 1, 7, 0, 2, 1_234_000, 3, 0, 1, 500, 100, 0),
                         "0.001")
    assert line == ("AUCTION #7 FEASIBLE: surplus $1,234.000, 3 packages accepted, 0 not, 1 paradoxically rejected, "
                    "$0.500 lost to individual rationality, gap 100 ppm, solve time unknown")
