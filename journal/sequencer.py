"""The sequencer: numbers every command, journals it, then lets the engine process it.

``JournaledExchange`` wraps an ``engine.exchange.Exchange`` and a
``journal.log.JournalWriter``. For each batch of command records:

1. the records get the next journal sequence numbers (``first_seq`` ..) and are
   appended to the journal as one frame (one writev), with the caller's
   ``note`` (opaque bytes journaled in the same frame, never read by the
   engine: the gateway's session record, ``gateway.sessions.BatchNote``);
2. under ``fsync="batch"`` the frame is made durable with one fdatasync for
   the whole batch (group commit): for a small batch before the engine
   processes it, for a batch of at least ``PIPELINE_MIN`` commands in the
   journal's thread while the engine processes it (the device and the
   matching overlap);
3. ``process_batch`` returns only after both, so the events (``last_events``)
   can leave the process only once the batch is in the journal (on disk under
   the batch policy).

A batch with a ``RUN_AUCTION`` is the exception to "journal first": the engine
processes it, then it is journaled with the decisions its call auctions made
(``Market.decisions``; the solver may stop at a time limit, so its outcome
depends on the machine) and committed, and only then do its events leave. A
replay hands those decisions back (``Market.expect_decisions``) and reproduces
the auction exactly, without solving. A crash before the commit loses the
batch, of which nothing had left the process.

So every event that ever left the process comes from a command that is in the
journal, and with ``fsync="batch"`` on disk. The engine itself stays pure: the
journal, the snapshot files, the wall clock (time-based checkpoints, the fsync
interval) and the snapshot writer thread all live here and in
``journal.log`` / ``journal.snapshot``; nothing here changes what the engine
computes.

Recovery (``JournaledExchange.recover(dir)``): read the genesis, load the
newest sound snapshot (an unreadable one is skipped with a warning: the journal
is the truth), replay the journal after it (``JournalReader`` checks every
frame; batches are fed to the engine in chunks of up to ``CHUNK`` commands),
check every Checkpoint met on the way against the replayed state hash, then
truncate a torn tail (with a warning) and reopen the journal for appending.
Corruption anywhere raises ``JournalCorruptError`` (file and offset) before
anything on disk is changed. The result is exactly the state after the last
complete batch in the journal, which includes every acknowledged batch.

Replaying for a consumer of the notes (``replay_journal(...,
on_commands=...)``; the gateway rebuilds its sessions so after a restart):
each engine call of the replay is reported with its command records, its
events, where each command's events end, and the notes of the journal batches
that start in it (by position), so the consumer can attribute every event to
its command and its command to the note's session. Without ``on_commands``
the notes cost nothing but their bytes.

Checkpoints: a Checkpoint frame (state hash after a command) is written every
``checkpoint_every_commands`` commands and/or every ``checkpoint_interval_s``
seconds (default 60 s: hashing is O(arena), ~1 ms per MB, so it is kept
rare), and always on close; each snapshot carries the state hash of the state
it holds. ``replay_journal(..., check_snapshots=True)`` (``cx replay
--verify``) checks both.

Costs (``bench/bench_journal.py``, 2-vCPU VM, ext4): ``process_batch`` =
the engine's own cost + the append (80 bytes per command copied into the page
cache by one writev, ~1 GB/s here, plus crc32) + under the batch policy one
fdatasync per batch (0.2-1 ms for a small batch; overlapped with matching for
big ones). That is about +30 % time at 65,536 commands per batch and ~3x for
1,024-command batches (sync latency dominates). A periodic snapshot pauses
matching for one arena memcpy (~25 ms for 400 MB) into a buffer pre-faulted
in a thread half-way through the interval; hashing, checksumming and writing
run in a background thread. Replay runs at ~2.5 M commands/s (the engine's
batch speed with a growing arena, plus reading, checking and copying);
restart of 10 M commands: ~1.2 s from a shutdown snapshot, ~4 s after a crash
with the periodic snapshot half-way, ~6 s from the genesis.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.codes import CommandKind, PackageCommandKind
from engine.core.layout import H_SEQ
from engine.records import COMMAND_DTYPE, Command, Event, commands_to_records, events_from_records, zero_padding
from journal.log import (
    GENESIS_NAME,
    Batch,
    Checkpoint,
    DirectoryLock,
    Genesis,
    JournalConfig,
    JournalError,
    JournalReader,
    JournalWriter,
    TornTail,
    read_genesis,
    records_of,
    repair,
    write_genesis,
)
from journal.snapshot import (
    Snapshot,
    arena_state_hash,
    capture,
    list_snapshots,
    newest_snapshot,
    prune_snapshots,
    read_snapshot_header,
    remove_temp_files,
    restore_exchange,
    state_hash,
    write_snapshot,
)

CHUNK = 65_536  # commands per engine call during replay
PIPELINE_MIN = 2048  # batches at least this big are fsynced by the journal thread during matching
_KNOWN_KINDS = np.zeros(128, dtype=bool)  # by kind value: the matching engine's and the auction's commands
_KNOWN_KINDS[[int(k) for k in (*CommandKind, *PackageCommandKind)]] = True


class StateMismatchError(JournalError):
    """A replayed state hash differs from the one recorded in a checkpoint or snapshot."""




def as_command_records(records: np.ndarray) -> np.ndarray:
    """Check a batch before it is journaled: COMMAND_DTYPE, known kinds, whole packages.

    Returns an aligned, writable, C-contiguous array (the same one when it
    already is) whose padding bytes are zero, so the journal holds canonical
    bytes (numpy leaves padding uninitialised in copies and concatenations).
    O(n), a few ns per record.
    """
    if not isinstance(records, np.ndarray) or records.dtype != COMMAND_DTYPE or records.ndim != 1:
        raise TypeError("a batch must be a 1-D numpy array of engine.records.COMMAND_DTYPE")
    if not (records.flags.c_contiguous and records.flags.aligned and records.flags.writeable):
        records = records.copy()
    if len(records):
        kinds = records["kind"]
        if kinds.min() < 0 or not _KNOWN_KINDS[kinds].all():
            known = {int(k) for k in (*CommandKind, *PackageCommandKind)}
            raise ValueError(f"unknown command kind in {sorted(set(kinds.tolist()) - known)}")
        if kinds.max() >= PackageCommandKind.PACKAGE:
            check_packages(records)
        zero_padding(records)
    return records


def fresh_exchange(genesis: Genesis):
    """The engine a journal starts from: the matching engine inside a ``Market`` (the package auction)."""
    from engine.auction.market import Market
    from engine.exchange import Exchange

    return Market(Exchange(genesis.instruments, max_firms=genesis.max_firms, **genesis.engine_options))


def event_seq_of(exchange) -> int:
    return int(exchange.arena[H_SEQ])


# ------------------------------------------------------------------ replay


def _open_package_at(records: np.ndarray) -> int:
    """Where the last package of ``records`` starts if its records continue past the end, else len(records)."""
    heads = np.flatnonzero(records["kind"] == PackageCommandKind.PACKAGE)
    if len(heads):
        p = int(heads[-1])
        if p + 1 + int(records["qty"][p]) > len(records):
            return p
    return len(records)


def check_packages(records: np.ndarray) -> None:
    """Raise ValueError unless every package in the batch is whole: a PACKAGE record followed by exactly
    its ``qty`` ALTERNATIVE/LEG records, and no ALTERNATIVE/LEG record outside a package. Journaled
    batches hold only whole packages, so the engine's answer to a package never depends on how the
    journal is cut into calls. O(package records) Python, only for batches that have some."""
    kinds = records["kind"]
    body = (kinds == PackageCommandKind.ALTERNATIVE) | (kinds == PackageCommandKind.LEG)
    covered = 0
    for p in np.flatnonzero(kinds == PackageCommandKind.PACKAGE).tolist():
        q = int(records["qty"][p])
        if q < 0 or p + 1 + q > len(records) or not body[p + 1 : p + 1 + q].all():
            raise ValueError(f"malformed package at record {p}: {q} ALTERNATIVE/LEG records must follow it")
        covered += q
    if covered != int(body.sum()):
        raise ValueError("ALTERNATIVE/LEG records outside a package")


OnCommands = Callable[[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, memoryview]]], None]


class Replayer:
    """Feeds journaled records to an exchange in chunks of up to ``chunk`` commands.

    Cutting the command stream differently never changes states or events
    (see ``journal.snapshot``), so small journal batches are merged into big
    engine calls. ``on_events(records)`` sees each call's events (a view valid
    during the callback); ``digest`` accumulates blake2b over all event bytes.
    ``on_commands(commands, events, command_ends, notes)`` sees each call's
    command records, events, ``last_command_ends`` (views valid during the
    callback) and ``notes``: (position of the first command of a journal
    batch in ``commands``, its note) for each batch with a note that starts
    in this call, in order (a batch cut by the chunk end continues at position
    0 of the next call, without its note). A cut never falls inside a package
    (its records are held back for the next call; a package larger than the
    chunk grows the buffer).
    """

    def __init__(self, exchange, seq: int = 0, chunk: int = CHUNK,
                 on_events: Callable[[np.ndarray], None] | None = None, digest: bool = False,
                 on_commands: OnCommands | None = None):
        self.exchange = exchange
        self.seq = seq  # last command handed over (buffered or processed)
        self.commands = 0
        self.events = 0
        self.on_events = on_events
        self.on_commands = on_commands
        self._digest = hashlib.blake2b(digest_size=32) if digest else None
        self._buf = np.empty(chunk, dtype=COMMAND_DTYPE)
        self._n = 0
        self._notes: list[tuple[int, memoryview]] = []

    def add(self, records: np.ndarray, note: bytes | memoryview = b"") -> None:
        """Append records (any COMMAND_DTYPE array, e.g. an unaligned read-only journal view). O(n) copy.

        ``note``: the note of the journal batch that starts with these records (kept for ``on_commands``)."""
        if note and self.on_commands is not None:
            self._notes.append((self._n, note))
        i, m = 0, len(records)
        while i < m:
            take = min(len(self._buf) - self._n, m - i)
            self._buf[self._n : self._n + take] = records[i : i + take]
            self._n += take
            i += take
            if self._n == len(self._buf):
                self._flush_whole_packages()
        self.seq += m

    def _flush_whole_packages(self) -> None:
        """Flush the full buffer but for a package whose records continue past it (a package's records
        go to the engine in one call, as they were journaled: see ``check_packages``)."""
        n = self._n
        cut = _open_package_at(self._buf[:n])
        if cut == 0:  # one package fills the whole buffer: make room
            self._buf = np.concatenate([self._buf, np.empty(len(self._buf), dtype=COMMAND_DTYPE)])
            return
        tail = self._buf[cut:n].copy()
        notes = self._notes
        self._notes = [(pos, note) for pos, note in notes if pos < cut]
        self._n = cut
        self.flush()
        self._buf[: len(tail)] = tail
        self._n = len(tail)
        self._notes = [(pos - cut, note) for pos, note in notes if pos >= cut]

    def flush(self) -> None:
        """Process what is buffered."""
        if not self._n:
            return
        n = self._n
        k = self.exchange.process_batch(self._buf[:n])
        self.commands += n
        self.events += k
        self._n = 0
        if self._digest is not None or self.on_events is not None or self.on_commands is not None:
            ev = self.exchange.last_events
            if self._digest is not None:
                self._digest.update(memoryview(ev).cast("B"))
            if self.on_events is not None:
                self.on_events(ev)
            if self.on_commands is not None:
                notes, self._notes = self._notes, []
                self.on_commands(self._buf[:n], ev, self.exchange.last_command_ends, notes)

    @property
    def event_digest(self) -> str | None:
        return self._digest.hexdigest() if self._digest is not None else None


@dataclass
class ReplayResult:
    exchange: object
    genesis: Genesis
    start_seq: int  # the state replay started from: after this command (0: the genesis)
    last_seq: int  # the last command in the journal
    snapshot: Path | None = None
    commands: int = 0
    events: int = 0
    checkpoints_checked: int = 0
    snapshots_checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    torn: TornTail | None = None
    event_digest: str | None = None
    seconds: float = 0.0

    def state_hash(self) -> str:
        return state_hash(self.exchange)


def replay_journal(directory: str | Path, *, from_snapshot: bool = False, verify_checkpoints: bool = True,
                   check_snapshots: bool = False, on_events: Callable[[np.ndarray], None] | None = None,
                   digest: bool = False, chunk: int = CHUNK, on_commands: OnCommands | None = None) -> ReplayResult:
    """Replay a journal through a fresh engine; read-only (a torn tail is reported in ``torn``, not cut).

    ``from_snapshot``: start from the newest sound snapshot instead of the
    genesis. ``verify_checkpoints``: compare every Checkpoint met with the
    replayed state hash; ``check_snapshots``: also every snapshot covering a
    command after the start (mismatches are collected in ``mismatches``).
    ``on_events`` / ``on_commands``: see ``Replayer``.
    Raises ``JournalError`` / ``JournalCorruptError``.
    """
    t0 = time.perf_counter()
    d = Path(directory)
    genesis = read_genesis(d)
    snap: Snapshot | None = newest_snapshot(d) if from_snapshot else None
    if snap is not None:
        h = snap.header
        exchange = restore_exchange(h.instruments, h.max_firms, h.engine_options, snap.arena, h.auction_state)
        start = snap.seq
    else:
        exchange = fresh_exchange(genesis)
        start = 0
    stops: dict[int, tuple[Path, str]] = {}
    if check_snapshots:
        for seq, path in list_snapshots(d):
            if seq > start:
                try:
                    stops[seq] = (path, read_snapshot_header(path).state_hash)
                except Exception as exc:  # noqa: BLE001 - an unreadable snapshot is a finding, not a crash
                    stops[seq] = (path, f"unreadable ({exc})")
    stop_seqs = sorted(stops)
    reader = JournalReader(d, after_seq=start)
    rp = Replayer(exchange, start, chunk, on_events, digest, on_commands)
    result = ReplayResult(exchange, genesis, start, start, snap.path if snap else None)

    def check(seq: int, expected: str, what: str) -> None:
        rp.flush()
        got = state_hash(exchange)
        if got != expected:
            result.mismatches.append(f"{what}: state hash after command {seq} is {got}, recorded {expected}")

    for item in reader:
        if isinstance(item, Batch):
            if item.decisions:  # keyed by event number: handing them over early is safe
                exchange.expect_decisions(item.decisions)
            recs = records_of(item)
            pos = item.first_seq
            note = item.note  # goes with the batch's first command
            while stop_seqs and stop_seqs[0] <= item.last_seq:
                s = stop_seqs.pop(0)
                if s >= pos:
                    rp.add(recs[pos - item.first_seq : s - item.first_seq + 1], note)
                    pos, note = s + 1, b""
                path, expected = stops[s]
                check(s, expected, f"snapshot {path.name}")
                result.snapshots_checked += 1
            rp.add(recs[pos - item.first_seq :], note)
        elif isinstance(item, Checkpoint) and verify_checkpoints:
            check(item.seq, item.state_hash, "checkpoint")
            result.checkpoints_checked += 1
    rp.flush()
    for s in stop_seqs:
        result.mismatches.append(f"snapshot {stops[s][0].name} covers command {s}, beyond the journal's end")
    result.last_seq = reader.last_seq
    if reader.last_seq < start:
        raise JournalError(f"{d}: snapshot {snap.path.name} covers command {start}, but the journal ends at "
                           f"command {reader.last_seq}")
    result.commands, result.events = rp.commands, rp.events
    result.torn = reader.torn
    result.event_digest = rp.event_digest
    result.seconds = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------- sequencer


@dataclass
class RecoveryReport:
    snapshot: Path | None
    snapshot_seq: int
    replayed_commands: int
    last_seq: int
    checkpoints_checked: int
    torn: TornTail | None
    removed_temp_files: list[Path]
    seconds: float

    def __str__(self) -> str:
        snap = f"snapshot {self.snapshot.name}" if self.snapshot else "no snapshot"
        torn = f", cut {self.torn}" if self.torn else ""
        return (f"recovered to command {self.last_seq} from {snap} + {self.replayed_commands} replayed commands "
                f"({self.checkpoints_checked} checkpoints checked) in {self.seconds:.3f}s{torn}")


_QUERIES = ("now", "status", "best_bid", "best_ask", "depth", "order", "book_orders", "instruments", "max_firms",
            "last_command_ends")


class JournaledExchange:
    """An ``Exchange`` whose every batch is journaled before it is processed (see the module docstring).

    Build with ``create`` (new journal), ``recover`` (existing journal) or
    ``open`` (either). Read-only queries (``best_bid``, ``order``, ...) are
    forwarded to ``exchange``. Not thread-safe: one caller submits.
    """

    def __init__(self, directory: Path, exchange, genesis: Genesis, writer: JournalWriter, config: JournalConfig):
        self.directory = directory
        self.exchange = exchange
        self.genesis = genesis
        self.journal = writer
        self.config = config
        self.recovery: RecoveryReport | None = None
        self._since_checkpoint = 0
        self._last_checkpoint_t = time.monotonic()
        self._since_snapshot = 0
        self._snapshot_thread: threading.Thread | None = None
        self._snapshot_seq = 0
        self.last_snapshot_pause_s = 0.0  # how long the last snapshot held matching up (sync + arena copy)
        self._snapshot_buf: np.ndarray | None = None  # reused by the next snapshot (costs one arena of memory)
        self._buffer_thread: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._closed = False

    # ------------------------------------------------------------ building

    @classmethod
    def create(cls, directory: str | Path, instruments, max_firms: int = 256, config: JournalConfig | None = None,
               **engine_options: int) -> JournaledExchange:
        """A new journal in ``directory`` (created; must not hold a journal) and a fresh engine."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        config = config or JournalConfig()
        lock = DirectoryLock(d)
        try:
            genesis = write_genesis(d, instruments, max_firms, engine_options)
            writer = JournalWriter(d, 1, config, lock)
        except BaseException:
            lock.release()
            raise
        return cls(d, fresh_exchange(genesis), genesis, writer, config)

    @classmethod
    def recover(cls, directory: str | Path, config: JournalConfig | None = None, *, use_snapshot: bool = True,
                verify_checkpoints: bool = True) -> JournaledExchange:
        """Rebuild the engine from the newest snapshot + journal tail, repair a torn tail, reopen for appending.

        Raises ``JournalCorruptError`` (nothing modified), ``StateMismatchError``, ``JournalError``.
        The report is in ``.recovery``.
        """
        t0 = time.perf_counter()
        d = Path(directory)
        if not (d / GENESIS_NAME).exists():
            raise JournalError(f"{d}: not a journal directory (no {GENESIS_NAME})")
        config = config or JournalConfig()
        lock = DirectoryLock(d)
        try:
            res = replay_journal(d, from_snapshot=use_snapshot, verify_checkpoints=verify_checkpoints)
            if res.mismatches:
                raise StateMismatchError(f"{d}: " + "; ".join(res.mismatches))
            if res.torn is not None:
                repair(res.torn)
            removed = remove_temp_files(d)
            writer = JournalWriter(d, res.last_seq + 1, config, lock)
        except BaseException:
            lock.release()
            raise
        obj = cls(d, res.exchange, res.genesis, writer, config)
        obj._snapshot_seq = res.start_seq
        obj.recovery = RecoveryReport(res.snapshot, res.start_seq, res.commands, res.last_seq,
                                      res.checkpoints_checked, res.torn, removed, time.perf_counter() - t0)
        return obj

    @classmethod
    def open(cls, directory: str | Path, instruments, max_firms: int = 256, config: JournalConfig | None = None,
             **engine_options: int) -> JournaledExchange:
        """``recover`` if ``directory`` holds a journal, else ``create``."""
        if (Path(directory) / GENESIS_NAME).exists():
            return cls.recover(directory, config)
        return cls.create(directory, instruments, max_firms, config, **engine_options)

    # ---------------------------------------------------------- submitting

    @property
    def next_seq(self) -> int:
        """The sequence number the next command will get."""
        return self.journal.next_seq

    @property
    def last_seq(self) -> int:
        return self.journal.next_seq - 1

    def process_batch(self, records: np.ndarray, note: bytes = b"") -> int:
        """Journal (and commit per policy), then process; the number of events, in ``last_events``.

        ``note``: opaque bytes journaled in the batch's frame (see the module
        docstring). The batch's commands get ``next_seq`` .. ``next_seq + len - 1``. A
        batch the sequencer refuses (wrong dtype, unknown kind) is neither
        journaled nor processed. If the engine fails on a journaled batch, this
        object refuses all further work (recover from the journal instead).
        """
        if self._failed is not None:
            raise JournalError("the engine failed on a journaled batch; recover from the journal") from self._failed
        if self._closed:
            raise JournalError("journaled exchange is closed")
        records = as_command_records(records)
        n = len(records)
        if n == 0:
            return self.exchange.process_batch(records)
        if (records["kind"] == PackageCommandKind.RUN_AUCTION).any():  # journaled after, with its decisions
            try:
                k = self.exchange.process_batch(records)
                self.journal.append(records, note, getattr(self.exchange, "decisions", b""))
                self.journal.commit()
            except BaseException as exc:
                self._failed = exc
                raise
        elif n < PIPELINE_MIN:
            self.journal.append(records, note)
            self.journal.commit()
            try:
                k = self.exchange.process_batch(records)
            except BaseException as exc:
                self._failed = exc
                raise
        else:  # fdatasync in the journal thread while the engine matches; nothing leaves before it is done
            self.journal.append_start(records, note)
            try:
                k = self.exchange.process_batch(records)
            except BaseException as exc:
                self._failed = exc
                with contextlib.suppress(Exception):
                    self.journal.append_wait()
                raise
            try:
                self.journal.append_wait()
                self.journal.commit()
            except BaseException as exc:  # the engine has the batch, the journal perhaps not: stop here
                self._failed = exc
                raise
        self._since_checkpoint += n
        self._since_snapshot += n
        cfg = self.config
        if (cfg.checkpoint_every_commands and self._since_checkpoint >= cfg.checkpoint_every_commands) or (
            cfg.checkpoint_interval_s and time.monotonic() - self._last_checkpoint_t >= cfg.checkpoint_interval_s
        ):
            self.checkpoint()
        if cfg.snapshot_every_commands:
            if self._since_snapshot >= cfg.snapshot_every_commands:
                self.snapshot(wait=False)
            elif self._since_snapshot >= cfg.snapshot_every_commands // 2:
                self._prepare_snapshot_buffer()
        return k

    def submit_batch(self, records: np.ndarray) -> np.ndarray:
        """Like ``process_batch``, but returns a copy of the events."""
        self.process_batch(records)
        return self.exchange.last_events.copy()

    def submit(self, cmd: Command) -> list[Event]:
        """One command as a struct, its events as structs (a batch of its records)."""
        return events_from_records(self.submit_batch(commands_to_records([cmd])))

    @property
    def last_events(self) -> np.ndarray:
        return self.exchange.last_events

    def __getattr__(self, name: str):
        if name in _QUERIES:
            return getattr(self.exchange, name)
        raise AttributeError(name)

    # ------------------------------------------------- hashes and snapshots

    def state_hash(self) -> str:
        return state_hash(self.exchange)

    def checkpoint(self) -> str:
        """Append a Checkpoint (state hash after the last command); returns the hash. O(arena)."""
        h = self.state_hash()
        self.journal.append_checkpoint(h, event_seq_of(self.exchange))
        self._since_checkpoint = 0
        self._last_checkpoint_t = time.monotonic()
        return h

    def snapshot(self, wait: bool = True) -> None:
        """Snapshot the state after the last command. Matching pauses only for the arena copy.

        The journal is synced first, so a snapshot never covers a command that
        is not durable. The copy goes into the buffer of the previous snapshot
        when the arena has not grown since (a memcpy; a fresh buffer costs page
        faults too). With ``wait=False`` hashing and writing happen in a
        background thread (one at a time; a new snapshot waits for the last).
        """
        self.wait_for_snapshot()
        self._since_snapshot = 0
        seq = self.last_seq
        if seq == self._snapshot_seq:
            return
        t = time.perf_counter()
        self.journal.sync()
        live = self.exchange.arena
        arena = self._snapshot_buf
        if arena is None or arena.shape != live.shape:  # the first time or after growth: a new buffer
            arena = capture(self.exchange)
        else:  # memory already mapped: a plain memcpy, several times faster than a fresh copy
            np.copyto(arena, live)
        self._snapshot_buf = arena
        args = (seq, arena, event_seq_of(self.exchange), self.exchange.auction_state)
        self._snapshot_seq = seq
        self.last_snapshot_pause_s = time.perf_counter() - t
        if wait:
            self._write_snapshot(*args)
        else:
            self._snapshot_thread = threading.Thread(target=self._write_snapshot, args=args, name="snapshot",
                                                     daemon=True)
            self._snapshot_thread.start()

    def _write_snapshot(self, seq: int, arena: np.ndarray, event_seq: int, auction_state: bytes) -> None:
        g = self.genesis
        try:
            write_snapshot(self.directory, seq, arena, g.instruments, g.max_firms, g.engine_options, event_seq,
                           arena_state_hash(arena, auction_state), auction_state)
            prune_snapshots(self.directory, self.config.keep_snapshots)
        except OSError as exc:  # the journal is the truth: a failed snapshot only means a longer replay
            warnings.warn(f"snapshot of command {seq} failed: {exc}", RuntimeWarning, stacklevel=2)

    def _prepare_snapshot_buffer(self) -> None:
        """Half-way to a periodic snapshot: map the memory of its copy buffer in a thread, off the matching path.

        A fresh buffer costs a page fault per 4 KiB on first touch (the
        larger part of a copy's time, 0.1-0.5 s for 400 MB); pre-faulted, the
        snapshot pause is a memcpy (~30 ms). Done again when the arena grows
        before the snapshot; nothing is done while the buffer fits the arena.
        """
        pending = self._buffer_thread
        if pending is not None:
            if pending.is_alive():
                return
            pending.join()
            self._buffer_thread = None
        shape = self.exchange.arena.shape
        buf = self._snapshot_buf
        if buf is not None and buf.shape == shape:
            return

        def fault_in() -> None:
            fresh = np.empty(shape, dtype=np.int64)
            fresh.fill(0)  # touches every page (numpy releases the GIL here)
            self._snapshot_buf = fresh

        # a snapshot writer still running keeps its own reference to the old buffer: no need to wait for it
        self._buffer_thread = threading.Thread(target=fault_in, name="snapshot-buffer", daemon=True)
        self._buffer_thread.start()

    def wait_for_snapshot(self) -> None:
        """Wait for a background snapshot (and a buffer being prepared for the next one)."""
        if self._snapshot_thread is not None:
            self._snapshot_thread.join()
            self._snapshot_thread = None
        if self._buffer_thread is not None:
            self._buffer_thread.join()
            self._buffer_thread = None

    def sync(self) -> None:
        """Make everything appended durable now, whatever the policy."""
        self.journal.sync()

    def close(self) -> None:
        """Checkpoint, sync, snapshot (``snapshot_on_close``), close the journal. Idempotent."""
        if self._closed:
            return
        try:
            self.wait_for_snapshot()
            if self._failed is None and self.last_seq > 0:
                self.checkpoint()
                self.journal.sync()
                if self.config.snapshot_on_close:
                    self.snapshot(wait=True)
        finally:
            self._closed = True
            self._snapshot_buf = None
            self.journal.close()

    def __enter__(self) -> JournaledExchange:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
