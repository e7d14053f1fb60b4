"""Market data: the engine's events published as L1/L2/L3, trades and status, with a snapshot service.

* ``feeds.protocol``: every feed message (msgspec Structs, msgpack), frames, topics, sequencing, sessions,
  JSON Schema;
* ``feeds.publisher``: ``FeedPublisher``, folds event records into its own books, PUB + snapshot ROUTER;
* ``feeds.fold``: the publisher's compiled core (numba): event records -> message rows -> msgpack frames;
* ``feeds.client``: ``FeedClient``, subscribe, snapshot, apply, detect gaps, dead feeds and publisher
  restarts, resync;
* ``feeds.cli``: ``cx feed SYMBOL`` (``add_feed_command`` / ``cmd_feed``).
"""
