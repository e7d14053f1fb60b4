"""``cx replay JOURNAL_DIR [--summary] [--from-snapshot] [--verify]``."""

from __future__ import annotations

import numpy as np

from engine.records import events_from_records
from gateway.cli import main
from journal.log import HEADER_SIZE, list_segments
from journal.snapshot import capture, write_snapshot
from tests.conftest import make_instruments
from tests.journal.helpers import file_states, make_batches, small_config, write_journal
from tests.journal.test_journal import crash, frames, straight


def test_replay_prints_one_line_per_event(tmp_path, capsys):
    d = tmp_path / "j"
    batches = make_batches(30, 40)
    write_journal(d, batches)
    assert main(["replay", str(d)]) == 0
    lines = capsys.readouterr().out.splitlines()
    ex = straight([])
    events = events_from_records(np.concatenate([ex.submit_batch(b) for b in batches]))
    assert len(lines) == len(events)
    first = events[0]
    assert lines[0].split()[0] == str(first.seq) and type(first).__name__ in lines[0]
    pairs = zip(events, lines, strict=True)
    assert all(f"order_id={e.order_id}" in line for e, line in pairs if hasattr(e, "order_id"))
    assert any("side=BUY" in line for line in lines) and any("reason=" in line for line in lines)


def test_replay_summary(tmp_path, capsys):
    d = tmp_path / "j"
    write_journal(d, make_batches(31, 40))
    assert main(["replay", str(d), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "replayed commands 1.." in out and "accepted" in out and "state hash" in out


def test_verify_passes_on_a_sound_journal_with_snapshots(tmp_path, capsys):
    d = tmp_path / "j"
    write_journal(d, make_batches(32, 150), small_config(snapshot_every_commands=1000, snapshot_on_close=True))
    assert main(["replay", str(d), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "verify: OK" in out and "checked" in out and " 2 snapshots" in out


def test_verify_fails_when_a_checkpoint_disagrees(tmp_path, capsys):
    d = tmp_path / "j"
    je = write_journal(d, make_batches(33, 20), close=False)
    je.journal.append_checkpoint("f" * 64, 0)
    je.close()
    assert main(["replay", str(d), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH checkpoint" in out and "verify: FAILED" in out


def test_verify_fails_when_a_snapshot_disagrees_with_the_journal(tmp_path, capsys):
    d = tmp_path / "j"
    batches = make_batches(34, 20)
    je = write_journal(d, batches, close=False)
    arena = capture(je.exchange)
    je.close()
    # a snapshot claiming command 10 holds the final state
    write_snapshot(d, 10, arena, make_instruments(), 256)
    assert main(["replay", str(d), "--verify"]) == 1
    assert "MISMATCH snapshot" in capsys.readouterr().out


def test_replay_of_a_corrupt_journal_exits_2_naming_file_and_offset(tmp_path, capsys):
    d = tmp_path / "j"
    crash(write_journal(d, make_batches(35, 100), small_config(segment_bytes=8192), close=False))
    path = list_segments(d)[1][1]
    off = frames(path)[2][0]
    data = bytearray(path.read_bytes())
    data[off + HEADER_SIZE] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["replay", str(d), "--summary"]) == 2
    assert f"{path}: corrupt journal record at offset {off}" in capsys.readouterr().err


def test_replay_reports_a_torn_tail_and_leaves_it(tmp_path, capsys):
    d = tmp_path / "j"
    batches = make_batches(36, 30)
    crash(write_journal(d, batches, small_config(segment_bytes=1 << 20), close=False))
    path = list_segments(d)[-1][1]
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 3)
    before = file_states(d)
    assert main(["replay", str(d), "--verify"]) == 0
    captured = capsys.readouterr()
    assert "torn record" in captured.err and "verify: OK" in captured.out
    assert f"1..{sum(map(len, batches[:-1]))} twice" in captured.out
    assert file_states(d) == before


def test_cx_replay_prints_and_summarises_the_journal_of_a_simulated_venue_with_auctions(tmp_path, capsys):
    """Package and auction events (final and indicative) are named, not a KeyError (a `cx serve --simulate` run)."""
    from gateway.config import DEFAULT_FIRMS

    config = tmp_path / "venue.toml"
    config.write_text('[gateway]\norder_entry = "tcp://127.0.0.1:*"\nadmin = "tcp://127.0.0.1:*"\n'
                      'market_data = "tcp://127.0.0.1:*"\nsnapshots = "tcp://127.0.0.1:*"\nplaintext = true\n'
                      'auction_interval_s = 4\nindicative_interval_s = 2\n'
                      + "".join(f'[[firms]]\nname = "{f}"\n' for f in DEFAULT_FIRMS))
    journal = tmp_path / "journal"
    assert main(["serve", "--config", str(config), "--journal", str(journal), "--simulate", "--duration", "9"]) == 0
    capsys.readouterr()
    assert main(["replay", str(journal)]) == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = {line.split()[2] for line in lines}
    assert {"PackageAccepted", "AuctionPriceSet", "AuctionCleared"} <= kinds, sorted(kinds)
    cleared = [line for line in lines if line.split()[2] == "AuctionCleared"]
    assert any("indicative=1" in line for line in cleared) and any("indicative=0" in line for line in cleared)
    assert all("status=OPTIMAL" in line or "status=FEASIBLE" in line for line in cleared)
    assert main(["replay", str(journal), "--summary"]) == 0
    summary = capsys.readouterr().out
    assert "auctioncleared " in summary and "packageaccepted " in summary and "fill " in summary
