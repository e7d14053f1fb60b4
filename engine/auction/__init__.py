"""The call auction for packages: EUPHEMIA-style clearing of GPU-hour instruments.

``orders`` holds the order Structs, their validation and the convenience forms (no solver);
``clearing.clear`` is the pure clearing core (winner determination with HiGHS, uniform prices,
individual rationality); ``market.Market`` puts the auction into the engine's command and event
stream. Its codes (``AuctionReject``, ``Outcome``, ``AuctionStatus``) are in ``engine.codes``.
Importing this package imports none of its modules, so a client that needs only ``orders`` never
loads the solver. Nothing here touches sockets, clocks or random numbers.
"""
