"""The sequenced log: what numbers every batch of commands and keeps it before the engine sees it.

``journal.log`` holds the file journal (frames, segments, the writer with its fsync policies, the reader
that tells a torn tail from corruption), ``journal.snapshot`` the snapshot files and the state hash, and
``journal.sequencer`` ``JournaledExchange``, which puts the log in front of the pure engine
(``engine/``): numbering, journaling, snapshots, recovery and replay. The engine itself never touches a
file, a clock or a thread; this package does, for it.
"""
