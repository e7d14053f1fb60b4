"""Snapshots of the whole engine state, and the engine state hash.

The fast engine (``engine.exchange.Exchange``) keeps all of its market state
in one int64 arena, so a snapshot is: a copy of the arena, the instruments and
``max_firms`` it was built with, and the journal sequence number it covers
(the state after command ``seq``). Restoring it and replaying the journal
after ``seq`` gives exactly the state a straight replay from the genesis gives.

File ``snapshot-<seq, 20 digits>.snap``::

    one journal frame (journal.log framing: magic, length, crc32, msgpack)
        SnapshotHeader: format, seq, event_seq, state_hash, arena_words,
                        arena_crc32, instruments, max_firms, engine_options
    arena_words * 8 bytes: the raw little-endian int64 arena

Invariants: a snapshot file is complete or absent: it is written to
``<name>.tmp``, fsynced, renamed, then the directory is fsynced, and readers
ignore ``*.tmp`` (``remove_temp_files`` deletes leftovers of a crash). The
header's crc covers the header, ``arena_crc32`` the arena; ``state_hash`` is
``state_hash`` of the arena. A snapshot only ever covers commands that are
already durable in the journal (the sequencer syncs the journal first).

State hash: ``blake2b(digest_size=32)`` over the arena with the per-call slot
``H_NE`` (events written by the current call, which depends on how commands
were cut into batches) zeroed; every other slot is a deterministic function of
the command sequence, whatever the batch boundaries.

Costs: ``capture`` is one arena copy (memcpy speed: ~0.1 s for 500 MB; the
only pause matching sees); ``state_hash`` ~1 s per GB (blake2b, releases the
GIL); ``write_snapshot`` O(arena) crc32 (~4 GB/s) + write + fsync (device
speed); ``read_snapshot`` one read into a preallocated array + crc32.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from engine.core.layout import H_NE
from engine.instruments import Instrument
from journal.log import (
    FORMAT_VERSION,
    HEADER_SIZE,
    MAX_PAYLOAD,
    encode_frame,
    frame_at,
    write_file_atomically,
)

SNAPSHOT_PREFIX = "snapshot-"
SNAPSHOT_SUFFIX = ".snap"
_SNAPSHOT_RE = re.compile(r"^snapshot-(\d{20})\.snap$")


class SnapshotHeader(msgspec.Struct, tag="snapshot", array_like=True, frozen=True):
    format: int
    seq: int  # the state after this journal command
    event_seq: int  # the last event sequence number at that point
    state_hash: str
    arena_words: int
    arena_crc32: int
    instruments: list[Instrument]
    max_firms: int
    engine_options: dict[str, int]
    auction_state: bytes = b""  # engine.auction.market.Market.auction_state at seq


@dataclass
class Snapshot:
    path: Path
    header: SnapshotHeader
    arena: np.ndarray

    @property
    def seq(self) -> int:
        return self.header.seq


class SnapshotError(Exception):
    """A snapshot file that cannot be used (the message names it)."""


_header_decoder = msgspec.msgpack.Decoder(SnapshotHeader)


# ------------------------------------------------------------- state hash


def arena_state_hash(arena: np.ndarray, auction_state: bytes = b"") -> str:
    """Hex blake2b-256 of the arena with the per-call slot H_NE taken as 0, then the auction's state
    (nothing while it is empty, so a market without packages hashes as its arena). O(arena), ~1 GB/s."""
    head = np.array(arena[: H_NE + 1], dtype=np.int64)
    head[H_NE] = 0
    h = hashlib.blake2b(digest_size=32)
    h.update(memoryview(head).cast("B"))
    h.update(memoryview(np.ascontiguousarray(arena[H_NE + 1 :])).cast("B"))
    h.update(auction_state)
    return h.hexdigest()


def state_hash(engine) -> str:
    """The state hash of a ``Market`` (or a bare ``Exchange``): equal for equal states."""
    return arena_state_hash(engine.arena, getattr(engine, "auction_state", b""))


def capture(exchange) -> np.ndarray:
    """A copy of the engine's arena, taken between batches (the pause matching sees). O(arena) memcpy."""
    return exchange.arena.copy()


def restore_exchange(instruments: list[Instrument], max_firms: int, engine_options: dict[str, int],
                     arena: np.ndarray, auction_state: bytes = b""):
    """A ``Market`` whose state is ``arena`` (taken over, not copied) and ``auction_state``."""
    from engine.auction.market import Market
    from engine.exchange import Exchange

    options = {k: v for k, v in engine_options.items() if k != "expected_orders"}  # the arena has its size
    return Market(Exchange(instruments, max_firms=max_firms, arena=arena, **options), auction_state)


# ------------------------------------------------------------------ files


def snapshot_name(seq: int) -> str:
    return f"{SNAPSHOT_PREFIX}{seq:020d}{SNAPSHOT_SUFFIX}"


def list_snapshots(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(seq, path) of every complete snapshot file, oldest first (``*.tmp`` are not listed)."""
    out = []
    for entry in os.scandir(directory):
        m = _SNAPSHOT_RE.match(entry.name)
        if m:
            out.append((int(m.group(1)), Path(entry.path)))
    out.sort()
    return out


def remove_temp_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete ``snapshot-*.tmp`` leftovers of a crash in the middle of a snapshot; the paths removed."""
    gone = []
    for entry in os.scandir(directory):
        if entry.name.startswith(SNAPSHOT_PREFIX) and entry.name.endswith(".tmp"):
            os.unlink(entry.path)
            gone.append(Path(entry.path))
    return gone


def write_snapshot(directory: str | os.PathLike[str], seq: int, arena: np.ndarray, instruments: list[Instrument],
                   max_firms: int, engine_options: dict[str, int] | None = None, event_seq: int = 0,
                   hash_hex: str | None = None, auction_state: bytes = b"") -> Path:
    """Write a snapshot of ``arena`` (a copy the caller no longer changes) covering command ``seq``.

    Temp file + fsync + atomic rename + directory fsync. Safe to run in a
    background thread (crc32, blake2b and file writes release the GIL).
    """
    arena = np.ascontiguousarray(arena, dtype=np.int64)
    raw = memoryview(arena).cast("B")
    header = SnapshotHeader(
        FORMAT_VERSION, int(seq), int(event_seq), hash_hex or arena_state_hash(arena, auction_state), len(arena),
        zlib.crc32(raw), list(instruments), int(max_firms), dict(engine_options or {}), auction_state,
    )
    path = Path(directory) / snapshot_name(seq)
    write_file_atomically(path, [*encode_frame(header), raw])
    return path


def read_snapshot_header(path: str | os.PathLike[str]) -> SnapshotHeader:
    """Only the header (cheap: the arena is not read). Raises SnapshotError."""
    return _read_header(Path(path))[0]


def _read_header(path: Path) -> tuple[SnapshotHeader, int]:
    """(header, bytes of its frame)."""
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
        if len(head) < HEADER_SIZE:
            raise SnapshotError(f"{path}: truncated snapshot header")
        n = int.from_bytes(head[4:8], "little")
        if n > MAX_PAYLOAD:
            raise SnapshotError(f"{path}: bad snapshot header length {n}")
        data = head + f.read(n)
    payload, why = frame_at(data, 0)
    if payload is None:
        raise SnapshotError(f"{path}: bad snapshot header: {why}")
    try:
        header = _header_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise SnapshotError(f"{path}: undecodable snapshot header: {exc}") from None
    if header.format != FORMAT_VERSION:
        raise SnapshotError(f"{path}: unsupported snapshot format {header.format}")
    if _SNAPSHOT_RE.match(path.name) and int(_SNAPSHOT_RE.match(path.name).group(1)) != header.seq:
        raise SnapshotError(f"{path}: header covers command {header.seq}, not the one in the file name")
    return header, len(data)


def read_snapshot(path: str | os.PathLike[str]) -> Snapshot:
    """Header and arena, both checksummed. Raises SnapshotError. O(arena)."""
    path = Path(path)
    header, start = _read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        arena = np.empty(header.arena_words, dtype=np.int64)
        got = f.readinto(memoryview(arena).cast("B"))
        extra = f.read(1)
    if got != arena.nbytes or extra:
        raise SnapshotError(f"{path}: arena is {got} bytes{' and more' if extra else ''}, expected {arena.nbytes}")
    if zlib.crc32(memoryview(arena).cast("B")) != header.arena_crc32:
        raise SnapshotError(f"{path}: arena checksum mismatch")
    return Snapshot(path, header, arena)


def newest_snapshot(directory: str | os.PathLike[str], max_seq: int | None = None) -> Snapshot | None:
    """The newest snapshot that reads back sound (covering at most ``max_seq``); bad ones are skipped with a warning."""
    for seq, path in reversed(list_snapshots(directory)):
        if max_seq is not None and seq > max_seq:
            continue
        try:
            return read_snapshot(path)
        except (SnapshotError, OSError) as exc:
            warnings.warn(f"snapshot: skipping {exc}", RuntimeWarning, stacklevel=2)
    return None


def prune_snapshots(directory: str | os.PathLike[str], keep: int) -> list[Path]:
    """Delete every snapshot older than the ``keep`` newest *sound* ones; the paths deleted.

    Snapshots are read back newest first (header and arena checksums, as recovery reads them) until ``keep``
    sound ones are found, so a corrupt snapshot never pushes a sound one out: the unsound ones newer than the
    last kept are left in place (recovery skips them with a warning), the ones older than it go. With fewer
    than ``keep`` sound snapshots nothing is deleted. O(arena) per snapshot read."""
    snaps = list_snapshots(directory)
    sound = 0
    for k in range(len(snaps) - 1, -1, -1):
        try:
            read_snapshot(snaps[k][1])
        except (SnapshotError, OSError) as exc:
            warnings.warn(f"snapshot: keeping unsound {exc} (recovery skips it)", RuntimeWarning, stacklevel=2)
            continue
        sound += 1
        if sound == keep:
            gone = [p for _, p in snaps[:k]]
            for p in gone:
                p.unlink(missing_ok=True)
            return gone
    return []
