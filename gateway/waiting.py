"""Waiting for the venue: how every tool that needs a running venue waits for one.

A tool started before the venue is ready (``make run`` compiles the matching core on a machine's first
run; a restart takes seconds) does not give up at its first silence. ``wait_for`` keeps trying, says once
on standard error that it is waiting (what for, and for how long at most) when no answer came within
``QUIET_S``, says it again every
``REPEAT_S`` seconds, and gives up only after the tool's ``--venue-timeout`` seconds (default ``DEFAULT_WAIT_S``),
leaving the error that names what did not answer to its caller. Every tool that talks to the venue
(``cx simulate``, ``cx status``, ``cx admin``, ``cx top``, ``cx order`` and the other order-entry
commands, ``cx package``, ``cx feed``, ``cx web``) takes ``--venue-timeout`` from ``add_wait_argument``.

Cost: one ``attempt`` call per ``ATTEMPT_S`` of waiting at most (an attempt may return sooner).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO, TypeVar

T = TypeVar("T")

DEFAULT_WAIT_S = 120.0  # a first run's compile takes about 50 s on 2 cores; a restart a few seconds
REPEAT_S = 10.0  # how often "still waiting" is said
ATTEMPT_S = 1.0  # the longest single attempt
QUIET_S = 2.0  # a venue that answers within this is not reported as waited for


def wait_for(attempt: Callable[[float], T | None], tool: str, what: str, wait_s: float,
             out: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
             attempt_s: float = ATTEMPT_S) -> T | None:
    """``attempt(seconds)`` until it returns something other than None (returned), or ``wait_s`` passed (None).

    ``attempt`` is given how long it may take (at most ``attempt_s``, at least 10 ms, never past ``wait_s``).
    ``tool`` (``cx top``) and ``what`` (``market-data snapshot from tcp://...``) make the waiting lines: the
    first once ``QUIET_S`` passed without an answer (or at the timeout, if that is sooner)."""
    start = clock()
    said = None  # when the last waiting line was printed
    while True:
        left = wait_s - (clock() - start)
        result = attempt(min(max(left, 0.01), attempt_s))
        if result is not None:
            return result
        now = clock()
        if said is None and (now - start >= QUIET_S or now - start >= wait_s):
            print(f"{tool}: waiting for the venue ({what}), for {wait_s:g} s at most (--venue-timeout)",
                  file=out or sys.stderr, flush=True)
            said = now
        elif said is not None and now - start < wait_s and now - said >= REPEAT_S:
            print(f"{tool}: still waiting for the venue ({what}): {now - start:.0f} s of {wait_s:g} s",
                  file=out or sys.stderr, flush=True)
            said = now
        if now - start >= wait_s:
            return None


def wait_synced(feed, tool: str, timeout: float, stop: threading.Event | None = None,
                out: TextIO | None = None) -> bool:
    """Poll a ``feeds.client.FeedClient`` until its snapshot is installed (True), ``timeout`` passed or ``stop``
    was set (False), saying that it waits."""

    def synced(seconds: float) -> bool | None:
        feed.poll(int(seconds * 1000))
        return True if feed.synced or (stop is not None and stop.is_set()) else None

    return bool(wait_for(synced, tool, f"a market-data snapshot from {feed.snapshot_endpoint}", timeout, out)) \
        and feed.synced


def add_wait_argument(parser: argparse.ArgumentParser, *aliases: str) -> None:
    """``--venue-timeout SECONDS`` (and older spellings in ``aliases``): how long to wait for the venue."""
    parser.add_argument("--venue-timeout", *aliases, dest="venue_timeout", type=float, default=DEFAULT_WAIT_S,
                        metavar="SECONDS", help=f"seconds to wait for the venue to answer (default {DEFAULT_WAIT_S:g})")
