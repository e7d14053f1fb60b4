"""journal.snapshot: snapshot + journal tail gives exactly the straight replay; files are atomic and checked."""

from __future__ import annotations

import numpy as np
import pytest

from engine.exchange import Exchange
from journal.log import (
    FORMAT_VERSION,
    RECORD_DTYPE_TEXT,
    RECORD_SIZE,
    SegmentHeader,
    encode_frame,
    list_segments,
    segment_name,
)
from journal.sequencer import JournaledExchange, replay_journal
from journal.snapshot import (
    arena_state_hash,
    capture,
    list_snapshots,
    prune_snapshots,
    read_snapshot,
    read_snapshot_header,
    snapshot_name,
    state_hash,
)
from tests.conftest import make_instruments
from tests.journal.helpers import make_batches, small_config, write_journal
from tests.journal.test_journal import crash, straight


def books(ex) -> list:
    return [ex.book_orders(i, side) for i in range(len(make_instruments())) for side in (0, 1)]


def test_snapshot_plus_tail_replay_equals_straight_replay(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(20, 300)
    je = JournaledExchange.create(d, make_instruments(), config=small_config(snapshot_every_commands=2500))
    live_events = [je.submit_batch(b) for b in batches]
    final = je.state_hash()
    crash(je)
    snaps = list_snapshots(d)
    assert len(snaps) == 2  # keep_snapshots
    snap_seq = snaps[-1][0]
    assert 0 < snap_seq < sum(map(len, batches))

    je = JournaledExchange.recover(d, small_config())
    assert je.recovery.snapshot_seq == snap_seq
    assert je.recovery.replayed_commands == je.last_seq - snap_seq > 0
    ref = straight(batches)
    assert je.state_hash() == final == state_hash(ref)
    assert books(je) == books(ref)

    # the events replayed after the snapshot are exactly the live ones after it
    tail = []
    replay_journal(d, from_snapshot=True, on_events=lambda ev: tail.append(ev.copy()))
    event_seq = read_snapshot_header(snaps[-1][1]).event_seq
    live = np.concatenate(live_events)
    assert (np.concatenate(tail) == live[live["seq"] > event_seq]).all()
    je.close()


def test_a_snapshot_names_the_command_it_covers_and_holds_its_state_hash(tmp_path):
    d = tmp_path / "j"
    je = write_journal(d, make_batches(21, 40), close=False)
    je.snapshot(wait=True)
    (seq, path), = list_snapshots(d)
    assert path.name == snapshot_name(seq) and seq == je.last_seq
    snap = read_snapshot(path)
    assert snap.header.state_hash == je.state_hash()
    assert (snap.arena == capture(je.exchange)).all()
    assert snap.header.instruments == make_instruments() and snap.header.max_firms == 256
    je.close()


def test_a_background_snapshot_holds_the_state_when_it_was_taken(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(22, 60)
    je = write_journal(d, batches[:30], close=False)
    at = je.state_hash()
    je.snapshot(wait=False)  # copies the arena, then writes in a thread while matching goes on
    for b in batches[30:]:
        je.process_batch(b)
    je.wait_for_snapshot()
    (seq, path), = list_snapshots(d)
    assert seq == sum(map(len, batches[:30])) and read_snapshot(path).header.state_hash == at
    je.close()


def test_state_hash_does_not_depend_on_batch_boundaries():
    batches = make_batches(23, 50)
    whole = np.concatenate(batches)
    a, b, c = Exchange(make_instruments()), Exchange(make_instruments()), Exchange(make_instruments())
    a.process_batch(whole)
    for x in batches:
        b.process_batch(x)
    for k in range(len(whole)):
        c.process_batch(whole[k : k + 1])
    assert state_hash(a) == state_hash(b) == state_hash(c)
    a.process_batch(make_batches(24, 1)[0])
    assert state_hash(a) != state_hash(b)


def test_leftover_temp_files_are_ignored_and_removed(tmp_path):
    d = tmp_path / "j"
    crash(write_journal(d, make_batches(25, 20), close=False))
    tmp = d / (snapshot_name(5) + ".tmp")
    tmp.write_bytes(b"half a snapshot")
    assert list_snapshots(d) == []
    je = JournaledExchange.recover(d, small_config())
    assert not tmp.exists() and je.recovery.removed_temp_files == [tmp]
    je.close()


def test_an_unreadable_snapshot_is_skipped_with_a_warning_and_the_journal_replayed(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(26, 100)
    je = write_journal(d, batches[:50], close=False)
    je.snapshot()
    older = je.last_seq
    for b in batches[50:]:
        je.process_batch(b)
    je.snapshot()
    crash(je)
    newest = list_snapshots(d)[-1][1]
    data = bytearray(newest.read_bytes())
    data[-100] ^= 1
    newest.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=rf"skipping .*{newest.name}: arena checksum mismatch"):
        je = JournaledExchange.recover(d, small_config())
    assert je.recovery.snapshot_seq == older
    assert je.state_hash() == state_hash(straight(batches))
    je.close()


def test_old_snapshots_are_pruned_and_close_writes_one(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(27, 120)
    cfg = small_config(snapshot_every_commands=300, snapshot_on_close=True, keep_snapshots=3)
    je = write_journal(d, batches, cfg, close=False)
    je.close()
    snaps = list_snapshots(d)
    assert len(snaps) == 3 and snaps[-1][0] == je.last_seq
    je = JournaledExchange.recover(d, cfg)
    assert je.recovery.replayed_commands == 0 and je.state_hash() == state_hash(straight(batches))
    je.close()


def test_a_snapshot_followed_only_by_an_empty_segment_recovers(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(28, 60)
    je = write_journal(d, batches, small_config(snapshot_on_close=True), close=False)
    je.close()
    last = je.last_seq
    # a writer that rotated (header only) and died before its first batch
    header = SegmentHeader(FORMAT_VERSION, last + 1, RECORD_DTYPE_TEXT, RECORD_SIZE)
    (d / segment_name(last + 1)).write_bytes(b"".join(encode_frame(header)))
    assert list_segments(d)[-1][0] == last + 1
    je = JournaledExchange.recover(d, small_config())
    assert je.last_seq == last and je.recovery.snapshot_seq == last
    assert je.state_hash() == state_hash(straight(batches))
    je.close()


def test_consecutive_snapshots_reusing_the_copy_buffer_each_hold_their_own_state(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(29, 90)
    je = write_journal(d, batches[:30], small_config(keep_snapshots=5), close=False)
    hashes = {}
    for part in (batches[30:60], batches[60:]):
        hashes[je.last_seq] = je.state_hash()
        je.snapshot(wait=False)
        for b in part:
            je.process_batch(b)
    hashes[je.last_seq] = je.state_hash()
    je.snapshot(wait=True)
    snaps = list_snapshots(d)
    assert [s for s, _ in snaps] == sorted(hashes)
    for seq, path in snaps:
        snap = read_snapshot(path)
        assert snap.header.state_hash == arena_state_hash(snap.arena) == hashes[seq]
    je.close()


def test_pruning_never_deletes_a_sound_snapshot_to_keep_a_corrupt_one(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(28, 100)
    je = write_journal(d, batches[:50], close=False)
    je.snapshot()
    for b in batches[50:]:
        je.process_batch(b)
    je.snapshot()
    crash(je)
    (older_seq, older), (_, newest) = list_snapshots(d)
    data = bytearray(newest.read_bytes())
    data[-100] ^= 1
    newest.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=rf"keeping unsound .*{newest.name}: arena checksum mismatch"):
        assert prune_snapshots(d, 1) == []  # the only sound one is the older: it stays, and so does the corrupt one
    assert [p for _, p in list_snapshots(d)] == [older, newest]
    with pytest.warns(RuntimeWarning, match="skipping"):
        je = JournaledExchange.recover(d, small_config())
    assert je.recovery.snapshot_seq == older_seq and je.state_hash() == state_hash(straight(batches))
    crash(je)
    sound = tmp_path / "sound"
    write_journal(sound, batches[:50], close=False).snapshot()
    assert len(list_snapshots(sound)) == 1 and prune_snapshots(sound, 1) == []


def test_pruning_keeps_the_newest_sound_ones_and_deletes_what_is_older(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(29, 40)
    je = write_journal(d, batches[:10], small_config(keep_snapshots=10), close=False)
    for k in range(4):
        je.snapshot()
        for b in batches[10 + 7 * k: 17 + 7 * k]:
            je.process_batch(b)
    je.snapshot()
    crash(je)
    snaps = [p for _, p in list_snapshots(d)]
    assert len(snaps) == 5
    data = bytearray(snaps[-1].read_bytes())
    data[-10] ^= 1
    snaps[-1].write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="keeping unsound"):
        gone = prune_snapshots(d, 2)
    assert gone == snaps[:2] and [p for _, p in list_snapshots(d)] == snaps[2:]
