"""cx positions: end-of-day positions folded from a journal of random order flow."""

from __future__ import annotations

from collections import Counter

import pytest

from engine.codes import EventKind, Side
from engine.listing import load_listing
from engine.records import commands_to_records
from gateway.cli import main
from gateway.positions import JournalPositions
from journal.sequencer import JournaledExchange
from tests.feeds.conftest import EngineFlow
from tests.gateway.conftest import ANCHOR_NS

FIRMS = ("ALPHA", "BETA", "GAMMA")


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    """A journal of random flow by 3 firms on 3 instruments, and the fills the engine reported while writing it."""
    directory = tmp_path_factory.mktemp("journal")
    instruments = load_listing(None).instruments(ANCHOR_NS)
    ids = [ins.instrument_id for ins in instruments if ins.symbol in (
        "H100.US-EAST.FIRM.2026-12-01T13", "B200.EU-NORTH.INTERRUPTIBLE.2026-12-01T20",
        "MI300X.US-EAST.FIRM.2026-12-01T20")]
    flow = EngineFlow(7, [(i, 2000, 1) for i in ids], firms=len(FIRMS), ts=ANCHOR_NS + 10**9)
    fills: Counter[tuple] = Counter()  # (firm, instrument, side) -> GPUs; (firm, instrument, side, "cash")
    engine = JournaledExchange.create(directory, instruments, len(FIRMS))
    for _ in range(20):
        engine.process_batch(commands_to_records(flow.batch(200)))
        events = engine.last_events.copy()
        flow.observe(events)
        for ev in events[events["kind"] == EventKind.FILL].tolist():
            e = dict(zip(events.dtype.names, ev, strict=True))
            fills[(e["firm"], e["instrument"], e["side"])] += e["qty"]
            fills[(e["firm"], e["instrument"], e["side"], "cash")] += e["qty"] * e["price"]
    engine.close()
    assert fills, "the flow traded nothing"
    config = directory.parent / "gw.toml"
    config.write_text('[gateway]\nplaintext = true\n' + "".join(f'[[firms]]\nname = "{f}"\n' for f in FIRMS))
    return directory, config, fills, instruments


def test_positions_sum_to_zero_per_instrument_across_firms(journal):
    book = JournalPositions(journal[0])
    per_instrument: dict[int, list[int]] = {}
    for (_, inst), pos in book.positions.items():
        totals = per_instrument.setdefault(inst, [0, 0, 0])
        totals[0] += pos.net
        totals[1] += pos.cash
        totals[2] += pos.fills
    assert per_instrument and all(net == 0 and cash == 0 and fills > 0 for net, cash, fills in per_instrument.values())


def test_positions_match_the_fills_the_engine_reported(journal):
    book = JournalPositions(journal[0])
    fills = journal[2]
    for (firm, inst), pos in book.positions.items():
        assert pos.bought == fills[(firm, inst, Side.BUY)] and pos.sold == fills[(firm, inst, Side.SELL)]
        assert pos.paid == fills[(firm, inst, Side.BUY, "cash")]
        assert pos.received == fills[(firm, inst, Side.SELL, "cash")]
    assert sum(pos.bought + pos.sold for pos in book.positions.values()) == sum(
        qty for key, qty in fills.items() if len(key) == 3)


def test_cx_positions_prints_a_firms_hours_and_totals(journal, capsys):
    directory, config, _, instruments = journal
    assert main(["positions", "BETA", "--journal", str(directory), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    book = JournalPositions(directory)
    mine = book.of_firm(1)
    assert out.startswith("BETA: positions from the journal")
    assert out.count("delivery hour ") == len({instruments[i].delivery_start_ns for i in mine})
    for inst, pos in mine.items():
        line = next(x for x in out.splitlines() if x.strip().startswith(instruments[inst].symbol))
        assert f"{pos.net:+,}" in line.split()
    assert f"total: {sum(p.fills for p in mine.values()):,} fills" in out


def test_cx_positions_all_reports_every_firm_and_an_unknown_firm_exits_2(journal, capsys):
    directory, config, _, _ = journal
    assert main(["positions", "--all", "--journal", str(directory), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines() if "positions from the journal" in line] == list(FIRMS)
    assert main(["positions", "NOBODY", "--journal", str(directory), "--config", str(config)]) == 2
    assert "unknown firm" in capsys.readouterr().err


def test_cx_positions_without_arguments_reads_state_journal_where_make_run_journals(journal, capsys, tmp_path,
                                                                                    monkeypatch):
    directory, config, _, _ = journal
    assert main(["positions", "--all", "--journal", str(directory), "--config", str(config)]) == 0
    every = capsys.readouterr().out
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "journal").symlink_to(directory, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert main(["positions", "--config", str(config)]) == 0
    assert capsys.readouterr().out == every
