"""The compiled matching core: numba functions over one preallocated int64 arena.

Modules, from the bottom up:

* ``layout``: where everything lives in the arena (header slots, column
  numbers of the instrument, order, level and firm tables), how an arena is
  built from a listing and grown when a region is full.
* ``book``: price ladders, levels, order FIFOs, order slots, the client-id set,
  the expiry heap and event emission: the primitive operations, each O(1) or
  O(log levels) except ladder insertion/removal away from the best price,
  which moves O(levels behind it) entries.
* ``matching``: the commands of docs/matching-rules.md on top of ``book``.
* ``entry``: the compiled entry points called from Python: one for a whole
  batch of command records, one per command kind for one-at-a-time calls.

Everything is ``@njit(cache=True, _nrt=False)``: the core never allocates,
so it needs no reference counting, and without it a call between its small
functions costs nothing (with it, each call paid atomic increments and
decrements on the arena and event buffer: about 10% of the throughput). The
arrays stay alive because the Python caller holds them during the call.
Compiled code is cached next to the sources. numba's cache follows each function's own file only, so after
editing a module here, remove ``engine/core/__pycache__`` before measuring.
"""
