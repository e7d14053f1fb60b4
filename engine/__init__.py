"""The exchange engine: a pure, deterministic state machine.

Commands go in (``engine.records``), events come out, and nothing else happens:
no clock reads, no randomness, no I/O. The same command sequence always yields
the same event sequence, which is what makes journals replayable and the two
implementations (``engine.reference`` in plain Python, ``engine.exchange`` on
the numba core in ``engine.core``) comparable event for event.

Importing this package is cheap on purpose: it imports nothing, so tools that
only need codes, records, instruments or the listing never pay for numba.
"""
