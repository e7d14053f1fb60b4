"""journal.log and the sequencer: numbering, framing, rotation, torn tails, corruption, policies."""

from __future__ import annotations

import itertools
import time

import msgspec
import numpy as np
import pytest

from engine.exchange import Exchange
from engine.records import COMMAND_DTYPE
from journal.log import (
    HEADER_SIZE,
    Batch,
    Checkpoint,
    JournalConfig,
    JournalCorruptError,
    JournalError,
    JournalReader,
    SegmentHeader,
    _frame_decoder,
    frame_at,
    list_segments,
    load_journal_config,
    segment_name,
)
from journal.sequencer import JournaledExchange, StateMismatchError, replay_journal
from journal.snapshot import state_hash
from tests.conftest import make_instruments
from tests.journal.helpers import file_states, make_batches, small_config, write_journal


def straight(batches: list[np.ndarray]) -> Exchange:
    """The state a fresh engine reaches on these batches, no journal involved."""
    ex = Exchange(make_instruments())
    for b in batches:
        ex.process_batch(b)
    return ex


def frames(path) -> list[tuple[int, int, object]]:
    """(offset, end, decoded frame) of every frame of a sound file."""
    data = path.read_bytes()
    out, off = [], 0
    while off < len(data):
        payload, why = frame_at(data, off)
        assert payload is not None, why
        end = off + HEADER_SIZE + len(payload)
        out.append((off, end, _frame_decoder.decode(payload)))
        off = end
    return out


def crash(je: JournaledExchange) -> None:
    """Stop writing without the orderly close (no checkpoint, no snapshot): what a killed process leaves."""
    je.wait_for_snapshot()
    je.journal.close()


def recover_quietly(directory, config=None) -> JournaledExchange:
    return JournaledExchange.recover(directory, config or small_config())


# ------------------------------------------------------------ numbering


def test_batches_get_consecutive_sequence_numbers_and_read_back_byte_for_byte(tmp_path):
    batches = make_batches(1, 60)
    je = write_journal(tmp_path / "j", [], close=False)
    firsts = []
    for b in batches:
        firsts.append(je.next_seq)
        je.process_batch(b)
    assert je.last_seq == sum(map(len, batches))
    je.close()
    reader = JournalReader(tmp_path / "j")
    got = [item for item in reader if isinstance(item, Batch)]
    assert [b.first_seq for b in got] == firsts == list(itertools.accumulate([1] + [len(b) for b in batches[:-1]]))
    assert b"".join(bytes(b.records) for b in got) == b"".join(b.tobytes() for b in batches)
    assert reader.torn is None and reader.last_seq == je.last_seq


def test_events_of_a_journaled_exchange_equal_those_of_a_bare_engine(tmp_path):
    batches = make_batches(2, 80)
    je = write_journal(tmp_path / "j", [], close=False)
    ex = Exchange(make_instruments())
    for b in batches:
        assert (je.submit_batch(b) == ex.submit_batch(b)).all()
    assert je.state_hash() == state_hash(ex)
    je.close()


def test_a_refused_batch_is_neither_journaled_nor_processed(tmp_path):
    je = write_journal(tmp_path / "j", make_batches(3, 5), close=False)
    last, h = je.last_seq, je.state_hash()
    bad = make_batches(4, 1)[0]
    bad["kind"][0] = 99
    with pytest.raises(ValueError, match="unknown command kind"):
        je.process_batch(bad)
    with pytest.raises(TypeError):
        je.process_batch(np.zeros(3, dtype=np.int64))
    assert je.last_seq == last and je.state_hash() == h
    je.close()
    assert replay_journal(tmp_path / "j").last_seq == last


def test_recovery_continues_the_sequence_and_the_state(tmp_path):
    batches = make_batches(5, 90)
    d = tmp_path / "j"
    write_journal(d, batches[:30])
    je = recover_quietly(d)
    assert je.next_seq == sum(map(len, batches[:30])) + 1
    for b in batches[30:60]:
        je.process_batch(b)
    crash(je)
    je = recover_quietly(d)
    for b in batches[60:]:
        je.process_batch(b)
    assert je.state_hash() == state_hash(straight(batches))
    je.close()


def test_a_batch_note_is_journaled_with_its_batch_and_handed_to_the_replay_at_the_batch_start(tmp_path):
    batches = make_batches(7, 40)
    notes = [f"note {i}".encode() if i % 3 else b"" for i in range(len(batches))]
    d = tmp_path / "j"
    je = JournaledExchange.create(d, make_instruments(), config=small_config())
    for b, note in zip(batches, notes, strict=True):
        je.process_batch(b, note)
    crash(je)
    assert [bytes(b.note) for b in JournalReader(d) if isinstance(b, Batch)] == notes
    starts = list(itertools.accumulate([0] + [len(b) for b in batches[:-1]]))
    seen, done = [], 0

    def on_commands(commands, events, ends, got):
        nonlocal done
        assert len(ends) == len(commands) and (ends[-1] if len(ends) else 0) == len(events)
        seen.extend((done + pos, bytes(note)) for pos, note in got)
        done += len(commands)

    # chunks of 16 commands: batches of up to 40 are cut, their note stays with their first command
    noted = replay_journal(d, chunk=16, digest=True, on_commands=on_commands)
    assert seen == [(start, note) for start, note in zip(starts, notes, strict=True) if note]
    assert done == sum(map(len, batches)) and noted.event_digest == replay_journal(d, digest=True).event_digest


def test_a_batch_frame_written_before_notes_existed_reads_with_an_empty_note():
    old = msgspec.msgpack.encode(["batch", 1, 1, bytes(COMMAND_DTYPE.itemsize)])
    frame = _frame_decoder.decode(old)
    assert isinstance(frame, Batch) and frame.count == 1 and not frame.note


# ------------------------------------------------------------- rotation


def test_segments_rotate_by_size_and_are_named_by_their_first_sequence_number(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(6, 200)
    write_journal(d, batches, small_config(segment_bytes=8192))
    segs = list_segments(d)
    assert len(segs) >= 5
    expected = 1
    for k, (first, path) in enumerate(segs):
        assert path.name == segment_name(first) and first == expected
        fr = frames(path)
        assert isinstance(fr[0][2], SegmentHeader) and fr[0][2].first_seq == first
        data_frames = [f for _, _, f in fr[1:]]
        assert all(isinstance(f, Batch | Checkpoint) for f in data_frames)
        assert next(f for f in data_frames if isinstance(f, Batch)).first_seq == first
        size = path.stat().st_size
        if k < len(segs) - 1:  # rotation happens at the first append once the size limit is reached
            assert size >= 8192 and size - (fr[-1][1] - fr[-1][0]) < 8192 + 4096
        expected = max(f.last_seq for f in data_frames if isinstance(f, Batch)) + 1
    assert expected == sum(map(len, batches)) + 1
    je = recover_quietly(d)
    assert je.state_hash() == state_hash(straight(batches))
    je.close()


# ------------------------------------------------------------ torn tail


@pytest.mark.parametrize("where", ["payload_start", "payload_end", "crc"])
def test_a_complete_last_frame_that_fails_its_checksum_is_corruption_not_a_torn_tail(tmp_path, where):
    """Every byte of the last batch is there, so it may have been acknowledged: refuse, name it, change nothing."""
    d = tmp_path / "j"
    crash(write_journal(d, make_batches(7, 40), small_config(segment_bytes=1 << 20), close=False))
    (_, path), = list_segments(d)
    off, end, last = frames(path)[-1]
    assert isinstance(last, Batch)
    data = bytearray(path.read_bytes())
    data[{"payload_start": off + HEADER_SIZE, "payload_end": end - 1, "crc": off + HEADER_SIZE - 1}[where]] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError) as info:
        recover_quietly(d)
    assert (info.value.path, info.value.offset) == (path, off) and "checksum mismatch" in str(info.value)
    assert path.read_bytes() == bytes(data)  # nothing was modified


@pytest.mark.parametrize("tear", ["mid_payload", "mid_header", "zero_filled", "never_written"])
def test_a_torn_record_at_the_tail_is_truncated_with_a_warning(tmp_path, tear):
    d = tmp_path / "j"
    batches = make_batches(7, 40)
    crash(write_journal(d, batches, small_config(segment_bytes=1 << 20), close=False))
    (_, path), = list_segments(d)
    off, end, last = frames(path)[-1]
    assert isinstance(last, Batch) and last.count == len(batches[-1])
    data = bytearray(path.read_bytes())
    if tear == "mid_payload":
        del data[off + HEADER_SIZE + 7 :]
    elif tear == "mid_header":
        del data[off + 5 :]
    elif tear == "zero_filled":  # the size was extended, the data never written
        data[off + 3 : end] = bytes(end - off - 3)
    else:  # not even the first byte of the frame
        data[off:end] = bytes(end - off)
    path.write_bytes(bytes(data))

    with pytest.warns(RuntimeWarning, match=rf"truncating .*{path.name}: torn record at offset {off}"):
        je = recover_quietly(d)
    assert path.stat().st_size == off
    assert je.recovery.torn.offset == off
    assert je.last_seq == sum(map(len, batches[:-1]))
    assert je.state_hash() == state_hash(straight(batches[:-1]))
    je.process_batch(batches[-1])  # the client never got an ack for it: it sends it again
    assert je.state_hash() == state_hash(straight(batches))
    je.close()


def test_a_segment_whose_header_is_torn_is_removed_and_started_again(tmp_path):
    d = tmp_path / "j"
    batches = make_batches(8, 30)
    crash(write_journal(d, batches, close=False))
    last = sum(map(len, batches))
    torn = d / segment_name(last + 1)  # a rotation that died while writing the new header
    torn.write_bytes(b"CXJF\x10")
    with pytest.warns(RuntimeWarning, match="truncating"):
        je = recover_quietly(d)
    assert je.next_seq == last + 1
    more = make_batches(9, 3)
    more_ts = int(batches[-1]["ts"][-1])
    for b in more:
        b["ts"] += more_ts
        je.process_batch(b)
    crash(je)
    assert replay_journal(d).last_seq == last + sum(map(len, more))


# ----------------------------------------------------------- corruption


@pytest.mark.parametrize("where", ["earlier_segment", "last_segment", "segment_header"])
def test_a_corrupt_record_in_the_middle_stops_the_start_naming_file_and_offset(tmp_path, where):
    d = tmp_path / "j"
    crash(write_journal(d, make_batches(10, 150), small_config(segment_bytes=8192), close=False))
    segs = list_segments(d)
    path = segs[1][1] if where != "last_segment" else segs[-1][1]
    fr = frames(path)
    assert len(fr) >= 3
    off = fr[0][0] if where == "segment_header" else fr[len(fr) // 2][0]
    data = bytearray(path.read_bytes())
    data[off + HEADER_SIZE + 2] ^= 0x40
    path.write_bytes(bytes(data))
    before = file_states(d)

    with pytest.raises(JournalCorruptError) as err:
        recover_quietly(d)
    assert err.value.path == path and err.value.offset == off
    assert f"{path}: corrupt journal record at offset {off}: checksum mismatch" in str(err.value)
    assert file_states(d) == before  # nothing truncated, nothing appended
    with pytest.raises(JournalCorruptError):
        replay_journal(d)


def test_a_missing_segment_is_corruption(tmp_path):
    d = tmp_path / "j"
    crash(write_journal(d, make_batches(11, 150), small_config(segment_bytes=8192), close=False))
    segs = list_segments(d)
    segs[2][1].unlink()
    with pytest.raises(JournalCorruptError, match=rf"{segs[3][1].name}.*offset 0.*segment starts at command"):
        recover_quietly(d)


def test_a_checkpoint_that_disagrees_with_the_replayed_state_stops_the_start(tmp_path):
    d = tmp_path / "j"
    je = write_journal(d, make_batches(12, 20), close=False)
    je.journal.append_checkpoint("0" * 64, 0)
    je.process_batch(make_batches(13, 1)[0])
    crash(je)
    with pytest.raises(StateMismatchError, match="recorded 0000"):
        recover_quietly(d)


def test_a_second_writer_is_refused_while_the_journal_is_open(tmp_path):
    d = tmp_path / "j"
    je = write_journal(d, make_batches(14, 3), close=False)
    with pytest.raises(JournalError, match="in use"):
        JournaledExchange.recover(d)
    je.close()
    JournaledExchange.recover(d).close()


def test_a_directory_without_genesis_is_not_a_journal(tmp_path):
    with pytest.raises(JournalError, match="not a journal directory"):
        JournaledExchange.recover(tmp_path)
    write_journal(tmp_path / "j", [])
    with pytest.raises(JournalError, match="already holds a journal"):
        JournaledExchange.create(tmp_path / "j", make_instruments())


# ------------------------------------------------------------- policies


def test_batch_policy_is_one_fsync_per_batch_before_processing(tmp_path):
    batches = make_batches(15, 25)
    je = write_journal(tmp_path / "j", [], small_config(fsync="batch", segment_bytes=1 << 20), close=False)
    for b in batches:
        je.process_batch(b)
        assert je.journal.unsynced_bytes == 0
    assert je.journal.fsyncs == len(batches)
    je.close()


def test_interval_policy_syncs_in_the_background(tmp_path):
    cfg = small_config(fsync="interval", fsync_interval_ms=5, segment_bytes=1 << 20)
    je = write_journal(tmp_path / "j", [], cfg, close=False)
    je.journal._last_sync = time.monotonic() + 3600  # so that commit itself does not sync
    je.process_batch(make_batches(16, 1)[0])
    deadline = time.monotonic() + 2
    while je.journal.unsynced_bytes and time.monotonic() < deadline:
        time.sleep(0.002)
    assert je.journal.unsynced_bytes == 0 and je.journal.fsyncs >= 1
    je.close()


def test_none_policy_syncs_only_on_request(tmp_path):
    je = write_journal(tmp_path / "j", make_batches(17, 5), small_config(fsync="none", segment_bytes=1 << 20),
                       close=False)
    assert je.journal.fsyncs == 0 and je.journal.unsynced_bytes > 0
    je.sync()
    assert je.journal.unsynced_bytes == 0
    je.close()


def test_config_is_read_from_a_toml_journal_table(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[journal]\nfsync = "interval"\nfsync_interval_ms = 20\nsegment_bytes = 1048576\n')
    cfg = load_journal_config(p)
    assert (cfg.fsync, cfg.fsync_interval_ms, cfg.segment_bytes) == ("interval", 20, 1 << 20)
    assert cfg.snapshot_every_commands == JournalConfig().snapshot_every_commands
    p.write_text('[journal]\nfsync = "sometimes"\n')
    with pytest.raises(ValueError, match="fsync must be one of"):
        load_journal_config(p)
    p.write_text('[journal]\nfsnyc = "batch"\n')
    with pytest.raises(ValueError, match="fsnyc"):
        load_journal_config(p)


def test_record_layout_is_the_engines(tmp_path):
    d = tmp_path / "j"
    write_journal(d, make_batches(18, 2))
    header = frames(list_segments(d)[0][1])[0][2]
    assert header.record_size == COMMAND_DTYPE.itemsize and header.record_dtype == str(COMMAND_DTYPE)
