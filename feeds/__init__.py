"""Market data: the engine's events published as L1/L2/L3, trades, status and the call auction's prices and
results, with a snapshot service.

* ``feeds.protocol``: every feed message (msgspec Structs, msgpack), frames, topics, sequencing, sessions,
  JSON Schema;
* ``feeds.publisher``: ``FeedPublisher``, folds event records into its own books, PUB + snapshot ROUTER;
* ``feeds.fold``: the publisher's compiled core (numba): event records -> message rows -> msgpack frames;
* ``feeds.client``: ``FeedClient``, subscribe, snapshot, apply, detect gaps, dead feeds and publisher
  restarts, resync;
* ``feeds.cli``: ``cx feed SYMBOL`` and ``cx feed --tape`` (``add_feed_command`` / ``cmd_feed``);
* ``feeds.web``: ``cx web``, the feed bridged to a browser page.
"""
