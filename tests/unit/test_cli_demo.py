"""``cx demo``: runs in-process, prints trades and books, is deterministic for a seed."""

from __future__ import annotations

import re

import pytest

from engine.instruments import parse_symbol
from engine.listing import load_listing
from gateway import cli

TRADE_LINE = re.compile(
    r"^\+\d\d:\d\d:\d\d  trade +(?P<id>\d+)  (?P<symbol>\S+) +(?P<side>BUY|SELL) +(?P<qty>[\d,]+)"
    r" @ +(?P<price>\d+\.\d+)  "
)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["demo", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_demo_prints_trades_books_and_summary(capsys, engine):
    code, out, err = run(capsys, "--steps", "40", "--seed", "7", "--engine", engine)
    assert code == 0, err
    trades = [m for m in map(TRADE_LINE.match, out.splitlines()) if m]
    assert trades, out
    assert [int(m["id"]) for m in trades] == list(range(1, len(trades) + 1))  # every trade printed, in order
    listed = {ins.symbol for ins in load_listing(None).instruments(cli.DEMO_ANCHOR_NS)}
    for m in trades:
        assert m["symbol"] in listed
        parse_symbol(m["symbol"])
        assert len(m["price"].split(".")[1]) == 3  # dollars with the default tick's 3 decimals
    assert "  book " in out
    assert re.search(r"^\s+\d+\s+[\d,]+\s+\d+\.\d{3} \| \d+\.\d{3}", out, re.M), out  # a two-sided book row
    summary = out[out.index("summary:") :]
    assert f"{len(trades)} trades" in summary


def test_demo_is_deterministic_for_a_seed(capsys):
    _, first, _ = run(capsys, "--steps", "30", "--seed", "3", "--engine", "reference")
    _, again, _ = run(capsys, "--steps", "30", "--seed", "3", "--engine", "reference")
    _, other, _ = run(capsys, "--steps", "30", "--seed", "4", "--engine", "reference")
    assert first == again
    assert first != other


def test_demo_trade_prices_stay_in_band(capsys):
    _, out, _ = run(capsys, "--steps", "60", "--seed", "11", "--engine", "reference")
    bands = {ins.symbol: (ins.min_price, ins.max_price) for ins in load_listing(None).instruments(cli.DEMO_ANCHOR_NS)}
    for m in filter(None, map(TRADE_LINE.match, out.splitlines())):
        lo, hi = bands[m["symbol"]]
        assert lo <= round(float(m["price"]) * 1000) <= hi


def test_demo_zero_steps(capsys):
    code, out, _ = run(capsys, "--steps", "0", "--engine", "reference")
    assert code == 0
    assert "0 trades" in out


def test_demo_with_listing_file(capsys, tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(
        """
tick = "0.01"
window_hours = 6
gate_closure_minutes = 30
[defaults]
price_band = ["0.50", "10.00"]
price_increment = "0.05"
max_order_qty = 100
market_protection = "1.00"
[[products]]
accelerator = "L40S"
regions = ["US-WEST"]
service_classes = ["FIRM"]
"""
    )
    code, out, err = run(capsys, "--steps", "40", "--listing", str(path), "--engine", "reference")
    assert code == 0, err
    trades = [m for m in map(TRADE_LINE.match, out.splitlines()) if m]
    assert trades, out
    for m in trades:
        assert m["symbol"].startswith("L40S.US-WEST.FIRM.")
        assert len(m["price"].split(".")[1]) == 2  # shown with the tick's two decimals


def test_demo_bad_listing_reports_the_field(capsys, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('tick = "0.001"\nwindow_hours = 48\ngate_closure_minutes = 60\nproducts = []\n')
    code, out, err = run(capsys, "--listing", str(path))
    assert code == 2
    assert "products" in err and "bad.toml" in err


def test_demo_missing_listing_file(capsys, tmp_path):
    code, _, err = run(capsys, "--listing", str(tmp_path / "missing.toml"))
    assert code == 2
    assert "missing.toml" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--steps", "-1"])
    assert info.value.code == 2


def test_pick_demo_instruments_spreads_over_products():
    instruments = load_listing(None).instruments(cli.DEMO_ANCHOR_NS)
    chosen = cli.pick_demo_instruments(instruments, cli.DEMO_START_NS + 3600 * 10**9)
    assert len(chosen) == cli.DEMO_INSTRUMENTS
    assert len({ins.accelerator for ins in chosen}) == len(chosen)
    for ins in chosen:
        assert ins.open_ns <= cli.DEMO_START_NS < cli.DEMO_START_NS + 3600 * 10**9 < ins.close_ns
