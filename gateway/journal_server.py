"""A minimal local front for a journaled engine: command batches on stdin, one ack line per batch on stdout.

Usage::

    python -m gateway.journal_server DIR [--fsync batch|interval|none] [--fsync-interval-ms N]
        [--segment-bytes N] [--checkpoint-every N] [--snapshot-every N] [--listing FILE --anchor HOUR]

On start it recovers the engine from the journal in DIR
(``journal.sequencer.JournaledExchange.recover``; with ``--listing`` and
``--anchor`` a missing journal is created) and prints one line::

    ready next_seq=<n> state_hash=<hex> <recovery report>

Then it reads client batches from stdin, each a frame ``u32 LE byte length``
+ that many bytes of raw ``engine.records.COMMAND_DTYPE`` records. Whatever
complete batches are waiting are grouped: journaled as one batch with one
fsync (group commit), processed, and only then acknowledged, one line per
client batch, in order::

    ack <client batch index from 0> <first seq> <last seq>

A batch the sequencer refuses (length not a multiple of the record size,
unknown command kind) gets ``error <index> <message>`` and is not journaled.
A zero-length frame or the end of stdin closes the engine cleanly (checkpoint,
snapshot) and prints ``bye last_seq=<n> state_hash=<hex>``.

So an ack means: the batch is in the journal (on disk under ``fsync=batch``)
and processed; a client that saw the ack may rely on it after any crash. This
is a test and tooling interface, not the order-entry gateway.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys

import numpy as np

from engine.records import COMMAND_DTYPE
from journal.log import GENESIS_NAME, JournalConfig
from journal.sequencer import JournaledExchange, as_command_records

_LEN = struct.Struct("<I")
READ_SIZE = 1 << 20


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m gateway.journal_server", description=__doc__.split("\n\n")[0])
    p.add_argument("directory", metavar="DIR", help="journal directory")
    p.add_argument("--fsync", choices=("batch", "interval", "none"), default="batch")
    p.add_argument("--fsync-interval-ms", type=int, default=5)
    p.add_argument("--segment-bytes", type=int, default=64 << 20)
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N", help="checkpoint every N commands")
    p.add_argument("--snapshot-every", type=int, default=5_000_000, metavar="N", help="snapshot every N commands")
    p.add_argument("--listing", metavar="FILE", help="create a missing journal with this listing ...")
    p.add_argument("--anchor", metavar="HOUR", help="... anchored at this hour (YYYY-MM-DDTHH)")
    return p.parse_args(argv)


def _open(args: argparse.Namespace) -> JournaledExchange:
    config = JournalConfig(fsync=args.fsync, fsync_interval_ms=args.fsync_interval_ms,
                           segment_bytes=args.segment_bytes, checkpoint_every_commands=args.checkpoint_every,
                           snapshot_every_commands=args.snapshot_every)
    if not os.path.exists(os.path.join(args.directory, GENESIS_NAME)) and args.listing:
        from engine.instruments import parse_hour
        from engine.listing import load_listing

        instruments = load_listing(args.listing).instruments(parse_hour(args.anchor))
        return JournaledExchange.create(args.directory, instruments, config=config)
    return JournaledExchange.recover(args.directory, config)


def serve(je: JournaledExchange, fd_in: int = 0, out=None) -> None:
    """The stdin/stdout loop (see the module docstring); returns on a zero-length frame or end of input."""
    out = out or sys.stdout
    buf = bytearray()
    index = 0
    size = COMMAND_DTYPE.itemsize
    while True:
        chunk = os.read(fd_in, READ_SIZE)
        eof = not chunk
        buf += chunk
        group: list[tuple[int, np.ndarray]] = []
        lines: list[str] = []
        stop = eof
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n == 0:
                stop = True
                pos += 4
                break
            if len(buf) - pos - 4 < n:
                break
            body = bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
            try:
                if n % size:
                    raise ValueError(f"{n} bytes is not a whole number of {size}-byte records")
                group.append((index, as_command_records(np.frombuffer(body, dtype=COMMAND_DTYPE))))
            except (ValueError, TypeError) as exc:
                lines.append(f"error {index} {exc}")
            index += 1
        del buf[:pos]
        if group:
            first = je.next_seq
            je.process_batch(np.concatenate([r for _, r in group]))
            seq = first
            for k, recs in group:
                lines.append(f"ack {k} {seq} {seq + len(recs) - 1}")
                seq += len(recs)
            lines.sort(key=lambda line: int(line.split()[1]))
        if lines:
            out.write("\n".join(lines) + "\n")
            out.flush()
        if stop:
            return


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    je = _open(args)
    print(f"ready next_seq={je.next_seq} state_hash={je.state_hash()} {je.recovery or 'new journal'}", flush=True)
    try:
        serve(je)
    finally:
        je.close()
    print(f"bye last_seq={je.last_seq} state_hash={je.state_hash()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
