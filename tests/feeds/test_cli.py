"""``cx feed`` (feeds.cli): prints the synced book; no snapshot within the timeout is exit status 1."""

from __future__ import annotations

import argparse
import io

import pytest

from feeds import protocol as fp
from feeds.cli import add_feed_command, format_update
from gateway import protocol as p
from tests.feeds.conftest import FeedVenue
from tests.gateway.conftest import SYMBOL


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


def test_cx_feed_without_a_snapshot_fails_after_the_timeout(fv):
    args = parse("NO.SUCH.SYMBOL", "--endpoint", fv.publisher.endpoint, "--snapshot-endpoint",
                 fv.publisher.snapshot_endpoint, "--once", "--timeout", "0.3")
    assert args.func(args, io.StringIO()) == 1


def test_update_lines_for_trades_and_levels():
    assert format_update(fp.Trade("S", 1, 1, 1, 1, 7, 0, 2450, 3), "0.001").startswith("TRADE  3 @ 2.450")
    assert "BID 2.450 -> 0" in format_update(fp.LevelUpdate("S", 1, 1, 1, 1, 0, 2450, 0, 0), "0.001")
    assert format_update(fp.Heartbeat("S", 1, 1, 1, 1), "0.001") is None
