"""The write-ahead journal: every engine command, numbered, on disk before its events leave.

"The journal is the truth": the engine state is the fold of the commands in
this journal; a snapshot (``journal.snapshot``) only shortens the replay. This
module does the file I/O of the journal and nothing else: it never touches an
engine (``journal.sequencer`` joins the two).

Directory
---------
One directory per exchange::

    genesis.cxj                     what the engine was created with (written once)
    00000000000000000001.seg        journal segments, named by the sequence number
    00000000000000170001.seg        of their first command (20 digits, so names sort)
    snapshot-00000000000000250000.snap   snapshots (journal.snapshot; *.tmp while written)
    LOCK                            flock'ed by the one process that writes

Frames
------
Every file is a sequence of frames::

    offset 0   4 bytes  magic b"CXJF"
    offset 4   u32 LE   payload length n (at most MAX_PAYLOAD)
    offset 8   u32 LE   zlib.crc32 of the payload
    offset 12  n bytes  payload: msgpack (msgspec) of one tagged, array-like Struct

A segment holds one ``SegmentHeader`` frame, then ``Batch`` and ``Checkpoint``
frames. A ``Batch`` is a group of ``count`` commands numbered ``first_seq`` ..
``first_seq + count - 1``, stored as the raw bytes of their
``engine.records.COMMAND_DTYPE`` records (little-endian, 80 bytes each; the
dtype is spelled out in every segment header and checked on read), and a
``note``: bytes the submitter attaches to the batch and the engine never
reads (the gateway's record of which session sent each command and what it
told its sessions itself, see ``gateway.sessions.BatchNote``; empty for other
submitters, and absent in batches written before notes existed). Being in the
batch's own frame, a note is durable exactly when its batch is. A
``Checkpoint`` says: after the command ``seq`` the engine's state hash is
``state_hash`` (see ``journal.snapshot.state_hash``) and its last event sequence
number is ``event_seq``.

Invariants
----------
* Sequence numbers start at 1 and have no gaps: each batch starts right after
  the previous one, across segments; a segment's name is its first batch's
  ``first_seq``; a checkpoint's ``seq`` is the last command before it.
* A batch is appended with one ``os.writev`` before the engine processes it
  (a crash may leave it whole, absent, or - a SIGKILL during a large write,
  a power loss before the fsync - cut short: a torn tail, see below); with
  ``fsync="batch"`` the sequencer lets no event of the batch out before its
  ``fdatasync`` has returned.
* Only the last segment is ever written; a segment is fsynced before the next
  one is created, and the directory is fsynced after a segment is created.
* Journal files are never rewritten; the only destructive operation is
  ``repair`` of a torn tail, which truncates the last segment (or removes it
  when not even its header survived). Nothing deletes old segments (no
  retention yet): the genesis and every segment stay, so a full replay is
  always possible.

Durability policy (``JournalConfig.fsync``)
-------------------------------------------
* ``"batch"`` (default): group commit, one ``fdatasync`` per appended batch,
  finished before any of its events leave (a caller that groups many client
  messages into one batch pays one fsync for all of them). Nothing
  acknowledged is ever lost, even on power loss.
* ``"interval"``: a background thread fsyncs every ``fsync_interval_ms`` when
  there is unsynced data (and ``commit`` fsyncs if the last fsync is older
  than that). A process crash loses nothing (the data is in the page cache);
  a power loss may lose up to that interval of acknowledged commands.
* ``"none"``: never fsync except on ``sync``/``close`` (benchmarks, tests).

Reading, torn tails and corruption
----------------------------------
``JournalReader`` checks every frame (magic, length, crc, decoding, sequence
continuity, header). A frame in the *last* segment whose bytes are missing
(cut short by the end of the file, or only zeros: ``cut_short``) and after
which no valid frame follows (not anywhere in the rest of the file: the search
looks for the magic and checks length and crc) is a torn tail, the trace of a
crash in the middle of a write; the reader stops there and reports it
(``reader.torn``); ``repair`` truncates it, with a warning. Any other bad
frame is corruption, including a complete last frame whose checksum fails (an
acknowledged batch may be in it): ``JournalCorruptError`` names the file and
the byte offset of the frame, and nothing is modified.

Costs
-----
``append``: no copy of the records (the msgpack frame is assembled around
them), one crc32 (~4 GB/s), one writev (a memcpy into the page cache); the
batch policy adds one fdatasync (0.2 ms for a small batch on the benchmark
machine, ~2-10 ms for 5 MB). ``append_start``/``append_wait`` run that
fdatasync in a thread while the engine matches the batch (the numba core
holds the GIL, fdatasync does not). Reading: a segment is
read whole (``segment_bytes``, 64 MiB by default), then O(bytes) crc32 and
O(frames) Python work; the records are handed out as zero-copy memoryviews.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import struct
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from engine.instruments import Instrument
from engine.records import COMMAND_DTYPE

MAGIC = b"CXJF"
FRAME_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32(payload)
HEADER_SIZE = FRAME_HEADER.size
MAX_PAYLOAD = 1 << 30
FORMAT_VERSION = 1
RECORD_DTYPE_TEXT = str(COMMAND_DTYPE)
RECORD_SIZE = COMMAND_DTYPE.itemsize

GENESIS_NAME = "genesis.cxj"
LOCK_NAME = "LOCK"
SEGMENT_SUFFIX = ".seg"
_SEGMENT_RE = re.compile(r"^(\d{20})\.seg$")
FSYNC_POLICIES = ("batch", "interval", "none")


# ------------------------------------------------------------------ frames


class SegmentHeader(msgspec.Struct, tag="segment", array_like=True, frozen=True):
    format: int
    first_seq: int
    record_dtype: str
    record_size: int


class Batch(msgspec.Struct, tag="batch", array_like=True):
    """``count`` commands numbered from ``first_seq``: raw COMMAND_DTYPE bytes (a memoryview when read).

    ``note``: opaque bytes of the submitter, journaled with the batch (the engine ignores them).
    ``decisions``: what the engine's call auctions decided while processing the batch (their
    solver may stop at a time limit, so a replay is handed these instead of solving again)."""

    first_seq: int
    count: int
    records: memoryview  # bytes-like when writing
    note: memoryview = b""  # bytes-like; b"" when the batch has none
    decisions: memoryview = b""  # the call auctions' decisions made in this batch (engine.auction.market)

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1


class Checkpoint(msgspec.Struct, tag="checkpoint", array_like=True, frozen=True):
    """The engine state hash after the command ``seq`` (and its last event sequence number)."""

    seq: int
    state_hash: str
    event_seq: int


class Genesis(msgspec.Struct, tag="genesis", array_like=True, frozen=True):
    """What a fresh engine for this journal is built from: ``Exchange(instruments, max_firms, **engine_options)``."""

    format: int
    instruments: list[Instrument]
    max_firms: int
    engine_options: dict[str, int]
    record_dtype: str


Frame = SegmentHeader | Batch | Checkpoint

_encoder = msgspec.msgpack.Encoder()
_frame_decoder = msgspec.msgpack.Decoder(Frame)
_genesis_decoder = msgspec.msgpack.Decoder(Genesis)


def encode_frame(obj: msgspec.Struct) -> list[bytes]:
    """[frame header, payload] of one frame (write them with one writev)."""
    payload = _encoder.encode(obj)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"frame payload of {len(payload)} bytes is above the maximum {MAX_PAYLOAD}")
    return [FRAME_HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)), payload]


def frame_at(data: bytes | memoryview, offset: int) -> tuple[memoryview | None, str]:
    """(payload, "") of a sound frame at ``offset`` (magic, length, crc checked), else (None, what is wrong)."""
    size = len(data)
    if offset + HEADER_SIZE > size:
        return None, f"incomplete frame header ({size - offset} of {HEADER_SIZE} bytes)"
    magic, n, crc = FRAME_HEADER.unpack_from(data, offset)
    if magic != MAGIC:
        return None, f"bad magic {bytes(magic)!r}"
    if n > MAX_PAYLOAD:
        return None, f"payload length {n} above the maximum"
    end = offset + HEADER_SIZE + n
    if end > size:
        return None, f"incomplete payload ({size - offset - HEADER_SIZE} of {n} bytes)"
    payload = memoryview(data)[offset + HEADER_SIZE : end]
    if zlib.crc32(payload) != crc:
        return None, "checksum mismatch"
    return payload, ""


def cut_short(data: bytes | memoryview, offset: int) -> bool:
    """Whether the bytes from ``offset`` to the end are the trace of an append that never finished: a frame cut
    short by the end of the file (its header, or its payload by the length its header gives), or nothing but
    zeros (a file extended but not written). A complete frame whose checksum fails is not: that is corruption.
    O(bytes after offset)."""
    rest = len(data) - offset
    if rest >= HEADER_SIZE:
        magic, n, _ = FRAME_HEADER.unpack_from(data, offset)
        if magic == MAGIC and n <= MAX_PAYLOAD and HEADER_SIZE + n > rest:
            return True  # the payload is cut short
    written = bytes(memoryview(data)[offset:]).rstrip(b"\0")  # what was written before the zeros (or the end)
    return len(written) < HEADER_SIZE and MAGIC.startswith(written[: len(MAGIC)])


def next_sound_frame(data: bytes | memoryview, start: int) -> int | None:
    """Offset of the first sound frame starting at or after ``start``, or None. O(bytes)."""
    raw = data if isinstance(data, bytes) else bytes(data)
    pos = raw.find(MAGIC, start)
    while pos != -1:
        if frame_at(raw, pos)[0] is not None:
            return pos
        pos = raw.find(MAGIC, pos + 1)
    return None


# ------------------------------------------------------------------ config


class JournalConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Durability and housekeeping policy of a journaled engine (``[journal]`` table of a TOML file).

    fsync: "batch" (one fdatasync per batch, before processing), "interval"
    (every ``fsync_interval_ms``) or "none" (tests, benchmarks).
    segment_bytes: a segment is closed and a new one started once it reaches this size.
    checkpoint_every_commands / checkpoint_interval_s: write a Checkpoint frame
    (state hash, O(arena) to compute: ~1 ms per MB of arena) after this many
    commands / seconds of wall time since the last one; 0 disables. One is
    always written on close.
    snapshot_every_commands: write a snapshot (in a background thread, after a
    copy of the arena) every this many commands; 0 disables.
    snapshot_on_close: write a snapshot on close. keep_snapshots: older ones are deleted.
    """

    fsync: str = "batch"
    fsync_interval_ms: int = 5
    segment_bytes: int = 64 << 20
    checkpoint_every_commands: int = 0
    checkpoint_interval_s: float = 60.0
    snapshot_every_commands: int = 5_000_000
    snapshot_on_close: bool = True
    keep_snapshots: int = 2

    def __post_init__(self) -> None:
        if self.fsync not in FSYNC_POLICIES:
            raise ValueError(f"journal.fsync must be one of {', '.join(FSYNC_POLICIES)}, not {self.fsync!r}")
        if self.fsync_interval_ms <= 0:
            raise ValueError("journal.fsync_interval_ms must be > 0")
        if self.segment_bytes < 4096:
            raise ValueError("journal.segment_bytes must be >= 4096")
        if self.checkpoint_every_commands < 0 or self.checkpoint_interval_s < 0:
            raise ValueError("journal checkpoint intervals must be >= 0")
        if self.snapshot_every_commands < 0 or self.keep_snapshots < 1:
            raise ValueError("journal.snapshot_every_commands must be >= 0 and keep_snapshots >= 1")


def load_journal_config(path: str | os.PathLike[str]) -> JournalConfig:
    """The ``[journal]`` table of a TOML file (all keys optional)."""
    import tomllib

    with open(path, "rb") as f:
        data = tomllib.load(f)
    try:
        return msgspec.convert(data.get("journal", {}), JournalConfig)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from None


# ------------------------------------------------------------------ errors


class JournalError(Exception):
    """A journal directory that cannot be used as it is."""


class JournalCorruptError(JournalError):
    """A bad frame that is not a torn tail; ``path`` and ``offset`` locate it."""

    def __init__(self, path: Path, offset: int, reason: str):
        self.path = Path(path)
        self.offset = offset
        self.reason = reason
        super().__init__(f"{self.path}: corrupt journal record at offset {offset}: {reason}; "
                         "refusing to start (nothing was modified)")


@dataclass(frozen=True)
class TornTail:
    """The unfinished last write of a crashed writer: bytes ``[offset, size)`` of the last segment."""

    path: Path
    offset: int
    size: int
    reason: str

    def __str__(self) -> str:
        return (f"{self.path}: torn record at offset {self.offset} ({self.size - self.offset} bytes, "
                f"{self.reason})")


# ------------------------------------------------------------- file helpers


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(first sequence number, path) of every segment, in order."""
    out = []
    for entry in os.scandir(directory):
        m = _SEGMENT_RE.match(entry.name)
        if m:
            out.append((int(m.group(1)), Path(entry.path)))
    out.sort()
    return out


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, parts: list[bytes | memoryview]) -> int:
    """writev every byte of ``parts`` (retrying short writes); the number of bytes."""
    total = sum(len(p) for p in parts)
    done = os.writev(fd, parts)
    while done < total:  # short write: finish the rest
        rest = memoryview(b"".join(bytes(p) for p in parts))[done:]
        done += os.write(fd, rest)
    return total


def write_file_atomically(path: Path, parts: list[bytes | memoryview]) -> None:
    """Write to ``path.tmp``, fsync, rename over ``path``, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for part in parts:
            write_all(fd, [part])
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _fdatasync(fd: int) -> None:
    (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(fd)


class DirectoryLock:
    """An exclusive flock on ``DIR/LOCK``: one writing process per journal (released when it dies)."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise JournalError(f"{directory}: journal is in use by another process ({self.path} is locked)") from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# ------------------------------------------------------------------ genesis


def write_genesis(directory: str | os.PathLike[str], instruments: list[Instrument], max_firms: int,
                  engine_options: dict[str, int] | None = None) -> Genesis:
    """Start a new journal in ``directory`` (created if needed; it must not hold a journal yet)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    if (d / GENESIS_NAME).exists() or list_segments(d):
        raise JournalError(f"{d}: already holds a journal")
    genesis = Genesis(FORMAT_VERSION, list(instruments), int(max_firms), dict(engine_options or {}),
                      RECORD_DTYPE_TEXT)
    write_file_atomically(d / GENESIS_NAME, encode_frame(genesis))
    return genesis


def read_genesis(directory: str | os.PathLike[str]) -> Genesis:
    path = Path(directory) / GENESIS_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"{directory}: not a journal directory (no {GENESIS_NAME})") from None
    payload, why = frame_at(data, 0)
    if payload is None:
        raise JournalCorruptError(path, 0, why)
    try:
        genesis = _genesis_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise JournalCorruptError(path, 0, f"undecodable genesis: {exc}") from None
    if genesis.format != FORMAT_VERSION or genesis.record_dtype != RECORD_DTYPE_TEXT:
        raise JournalError(f"{path}: journal format {genesis.format} / record layout not supported by this engine")
    return genesis


# ------------------------------------------------------------------- writer


def encode_batch(first_seq: int, records: np.ndarray, note: bytes = b"",
                 decisions: bytes = b"") -> list[bytes | memoryview]:
    """The frame of a Batch without copying the records: [frame header, msgpack prefix, raw records, rest].

    The payload is ordinary msgpack of ``Batch(first_seq, count, records,
    note, decisions)`` (the records as one bin32 object), so ``decode`` reads
    it like any frame; it is just assembled around the caller's buffer.
    O(bytes) for the crc32, plus a copy of the note and the decisions.
    """
    raw = memoryview(records.view(np.uint8))
    empty = _encoder.encode(Batch(first_seq, len(records), b"", b"", b""))
    assert empty[-6:] == b"\xc4\x00" * 3  # three bin 8 of length 0: records, note, decisions
    prefix = empty[:-6] + b"\xc6" + len(raw).to_bytes(4, "big")
    suffix = _encoder.encode(note) + _encoder.encode(decisions)
    n = len(prefix) + len(raw) + len(suffix)
    if n > MAX_PAYLOAD:
        raise ValueError(f"batch of {len(records)} commands is above the maximum frame size {MAX_PAYLOAD}")
    crc = zlib.crc32(suffix, zlib.crc32(raw, zlib.crc32(prefix)))
    return [FRAME_HEADER.pack(MAGIC, n, crc), prefix, raw, suffix]


class JournalWriter:
    """Appends batches to the journal of one directory, rotating segments by size.

    ``append`` writes (page cache), ``commit`` makes durable per the policy
    ("batch": one fdatasync now), ``sync`` always.

    ``append_start`` / ``append_wait`` split a batch append so the caller can
    work meanwhile: ``append_start`` writes the frame (one writev) and hands
    the fdatasync of the batch policy to the writer's thread; ``append_wait``
    waits for it. The caller must not let anything depending on the batch out
    before ``append_wait`` returns. One append is in flight at most. Not
    thread-safe otherwise.
    """

    def __init__(self, directory: str | os.PathLike[str], next_seq: int, config: JournalConfig | None = None,
                 lock: DirectoryLock | None = None):
        """Open for appending at ``next_seq``: to the last segment if it is not full, else a new one.

        The caller has checked (``JournalReader``) and repaired the journal first.
        """
        self.directory = Path(directory)
        self.config = config or JournalConfig()
        self.next_seq = next_seq
        self._lock = lock or DirectoryLock(self.directory)
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self.segment_path: Path | None = None
        self.segment_size = 0
        self._written = 0  # bytes appended / made durable (counters over the writer's life)
        self._synced = 0
        self._last_sync = time.monotonic()
        self.fsyncs = 0
        segments = list_segments(self.directory)
        if segments and segments[-1][1].stat().st_size < self.config.segment_bytes:
            self.segment_path = segments[-1][1]
            self._fd = os.open(self.segment_path, os.O_WRONLY | os.O_APPEND)
            self.segment_size = os.fstat(self._fd).st_size
        else:
            self._new_segment()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if self.config.fsync == "interval":
            self._flusher = threading.Thread(target=self._flush_loop, name="journal-fsync", daemon=True)
            self._flusher.start()
        self._worker: threading.Thread | None = None
        self._in_flight = False
        self._job_ready = threading.Event()
        self._job_started = threading.Event()
        self._job_done = threading.Event()
        self._job_error: BaseException | None = None

    def _new_segment(self) -> None:
        path = self.directory / segment_name(self.next_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        header = SegmentHeader(FORMAT_VERSION, self.next_seq, RECORD_DTYPE_TEXT, RECORD_SIZE)
        n = write_all(fd, encode_frame(header))
        _fdatasync(fd)
        fsync_dir(self.directory)
        self._fd, self.segment_path, self.segment_size = fd, path, n

    def _rotate(self) -> None:
        with self._mutex:
            self._sync_locked()
            os.close(self._fd)
            self._fd = None
            self._new_segment()

    def append(self, records: np.ndarray, note: bytes = b"", decisions: bytes = b"") -> int:
        """Append one batch (COMMAND_DTYPE records, its ``note`` and ``decisions``); its first sequence number.

        O(bytes): no copy of the records, one crc32, one writev. Durable only
        after ``commit``/``sync``. An empty batch writes nothing.
        """
        first = self.next_seq
        if len(records) == 0:
            return first
        if self._in_flight:
            raise RuntimeError("append while a pipelined append is in flight (call append_wait first)")
        if self.segment_size >= self.config.segment_bytes:
            self._rotate()
        written = write_all(self._fd, encode_batch(first, np.ascontiguousarray(records), note, decisions))
        self.segment_size += written
        self._written += written
        self.next_seq = first + len(records)
        return first

    def append_start(self, records: np.ndarray, note: bytes = b"") -> int:
        """``append``, then the batch policy's fdatasync started in the writer thread; the first sequence number.

        ``append_wait`` must follow before anything depending on the batch
        being durable happens.
        """
        first = self.append(records, note)
        if self.config.fsync != "batch" or self._written == self._synced:
            return first
        if self._worker is None:
            self._worker = threading.Thread(target=self._work_loop, name="journal-sync", daemon=True)
            self._worker.start()
        self._in_flight = True
        self._job_error = None
        self._job_started.clear()
        self._job_done.clear()
        self._job_ready.set()
        self._job_started.wait()  # the thread holds the job: let it reach the fdatasync (which releases the GIL)
        return first

    def append_wait(self) -> None:
        """Wait for the sync started by ``append_start``; raises its error (the batch is then not durable)."""
        if not self._in_flight:
            return
        self._job_done.wait()
        self._in_flight = False
        if self._job_error is not None:
            raise self._job_error

    def _work_loop(self) -> None:
        while True:
            self._job_ready.wait()
            self._job_ready.clear()
            if self._stop.is_set():
                return
            self._job_started.set()
            try:
                self.sync()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by append_wait
                self._job_error = exc
            self._job_done.set()

    def append_checkpoint(self, state_hash: str, event_seq: int) -> None:
        """A Checkpoint for the state after the last appended command (written, not synced)."""
        written = write_all(self._fd, encode_frame(Checkpoint(self.next_seq - 1, state_hash, event_seq)))
        self.segment_size += written
        self._written += written

    def commit(self) -> None:
        """Make the appended batches durable as the policy says (group commit: one fsync for all of them)."""
        policy = self.config.fsync
        if policy == "batch" or (
            policy == "interval" and time.monotonic() - self._last_sync >= self.config.fsync_interval_ms / 1000
        ):
            self.sync()

    def sync(self) -> None:
        """fdatasync now if anything is unsynced."""
        with self._mutex:
            self._sync_locked()

    def _sync_locked(self) -> None:
        written = self._written
        if self._fd is not None and written > self._synced:
            _fdatasync(self._fd)
            self.fsyncs += 1
            self._synced = written
        self._last_sync = time.monotonic()

    def _flush_loop(self) -> None:
        period = self.config.fsync_interval_ms / 1000
        while not self._stop.wait(period):
            with contextlib.suppress(OSError):
                self.sync()

    @property
    def unsynced_bytes(self) -> int:
        return self._written - self._synced

    def close(self) -> None:
        """Finish a pipelined write, sync, close the segment and release the directory lock."""
        try:
            self.append_wait()
        finally:
            self._stop.set()
            if self._worker is not None:
                self._job_ready.set()
                self._worker.join()
            if self._flusher is not None:
                self._flusher.join()
            if self._fd is not None:
                try:
                    self.sync()
                finally:
                    os.close(self._fd)
                    self._fd = None
            self._lock.release()


# ------------------------------------------------------------------- reader


class JournalReader:
    """Iterates a journal's Batch and Checkpoint frames in order, checking everything. Read-only.

    ``JournalReader(dir, after_seq=s)`` starts after command ``s``: whole
    segments before it are not read; a batch that straddles ``s`` is cut (and
    loses its note, which speaks of all its commands; it keeps its decisions). A
    Checkpoint is yielded only after ``s``. After the iteration ends (without
    an exception): ``last_seq`` (0 for an empty journal), ``torn`` (a
    ``TornTail`` or None), ``tail_end`` (where the sound part of the last
    segment ends), ``batches``, ``bytes_read``. Raises ``JournalCorruptError``.
    """

    def __init__(self, directory: str | os.PathLike[str], after_seq: int = 0):
        self.directory = Path(directory)
        self.after_seq = after_seq
        self.segments = list_segments(self.directory)
        self.last_seq = 0
        self.torn: TornTail | None = None
        self.tail_end = 0
        self.batches = 0
        self.bytes_read = 0
        self.first_seq = self.segments[0][0] if self.segments else None

    def __iter__(self) -> Iterator[Batch | Checkpoint]:
        segs = self.segments
        after = self.after_seq
        start = 0
        while start + 1 < len(segs) and segs[start + 1][0] <= after + 1:
            start += 1
        if segs:  # commands before the first segment read are covered by the caller's snapshot
            self.last_seq = max(0, min(segs[start][0] - 1, after))
        expected = None  # the next sequence number
        for k in range(start, len(segs)):
            first, path = segs[k]
            is_last = k == len(segs) - 1
            if expected is None:
                if first > after + 1:
                    raise JournalError(f"{path}: the journal starts at command {first}, but command {after + 1} "
                                       "is needed (segments are missing)")
            elif first != expected:
                raise JournalCorruptError(path, 0, f"segment starts at command {first}, expected {expected} "
                                                   "(a segment is missing or the previous one is incomplete)")
            expected = yield from self._segment(path, first, is_last, first)

    def _segment(self, path: Path, first: int, is_last: bool, expected: int):
        """Yield the frames of one segment; return the sequence number expected next."""
        with open(path, "rb") as f:
            data = f.read()
        self.bytes_read += len(data)
        size = len(data)
        after = self.after_seq
        offset = 0
        decode = _frame_decoder.decode
        while offset < size:
            payload, why = frame_at(data, offset)
            frame = None
            if payload is not None:
                try:
                    frame = decode(payload)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise JournalCorruptError(path, offset, f"undecodable frame: {exc}") from None
            elif is_last and cut_short(data, offset) and next_sound_frame(data, offset + 1) is None:
                self.torn = TornTail(path, offset, size, why)
                break
            else:
                raise JournalCorruptError(path, offset, why)
            if offset == 0:
                if not isinstance(frame, SegmentHeader):
                    raise JournalCorruptError(path, 0, "segment does not start with a segment header")
                if frame.format != FORMAT_VERSION or frame.record_dtype != RECORD_DTYPE_TEXT:
                    raise JournalCorruptError(path, 0, f"unsupported segment format {frame.format} / record layout")
                if frame.first_seq != first:
                    raise JournalCorruptError(path, 0, f"header says first command {frame.first_seq}, name {first}")
            elif isinstance(frame, Batch):
                if frame.first_seq != expected:
                    raise JournalCorruptError(path, offset, f"batch starts at command {frame.first_seq}, "
                                                            f"expected {expected}")
                if frame.count <= 0 or len(frame.records) != frame.count * RECORD_SIZE:
                    raise JournalCorruptError(path, offset, f"batch of {frame.count} commands holds "
                                                            f"{len(frame.records)} bytes")
                expected = frame.first_seq + frame.count
                self.last_seq = expected - 1
                self.batches += 1
                if frame.last_seq > after:
                    if frame.first_seq <= after:
                        cut = after + 1 - frame.first_seq
                        frame = Batch(after + 1, frame.count - cut, frame.records[cut * RECORD_SIZE :],
                                      b"", frame.decisions)
                    yield frame
            elif isinstance(frame, Checkpoint):
                if frame.seq != expected - 1:
                    raise JournalCorruptError(path, offset, f"checkpoint for command {frame.seq} after command "
                                                            f"{expected - 1}")
                if frame.seq > after:
                    yield frame
            else:
                raise JournalCorruptError(path, offset, "segment header in the middle of a segment")
            offset += HEADER_SIZE + len(payload)
        if size == 0:
            if not is_last:
                raise JournalCorruptError(path, 0, "empty segment before the last one")
            self.torn = TornTail(path, 0, 0, "empty segment")
        if is_last:
            self.tail_end = offset if self.torn is None else self.torn.offset
        return expected


def repair(torn: TornTail) -> None:
    """Cut a torn tail off the last segment (remove the segment if its header is torn), with a warning.

    O(1) + two fsyncs. Call only after the whole journal was read without a ``JournalCorruptError``.
    """
    warnings.warn(f"journal: truncating {torn}", RuntimeWarning, stacklevel=2)
    if torn.offset == 0:
        torn.path.unlink()
    else:
        with open(torn.path, "r+b") as f:
            f.truncate(torn.offset)
            os.fsync(f.fileno())
    fsync_dir(torn.path.parent)


def records_of(batch: Batch) -> np.ndarray:
    """A batch's records as a read-only COMMAND_DTYPE view (zero-copy; maybe unaligned: copy before use)."""
    return np.frombuffer(batch.records, dtype=COMMAND_DTYPE)
