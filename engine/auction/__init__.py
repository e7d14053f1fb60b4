"""The call auction for packages (issue #6): EUPHEMIA-style clearing of GPU-hour instruments.

``orders`` holds the order Structs, their validation and the convenience forms;
``clearing.clear`` is the pure clearing core (winner determination, uniform prices,
individual rationality). Nothing here touches sockets, clocks or random numbers.
"""

from engine.auction.clearing import (
    AuctionResult,
    AuctionStatus,
    Decision,
    Fill,
    InstrumentClearing,
    Milp,
    OrderKind,
    OrderOutcome,
    Outcome,
    clear,
    decision_of,
    result_of,
    winner_determination_milp,
)
from engine.auction.orders import (
    Alternative,
    AuctionReject,
    BlockOffer,
    BlockRequest,
    DivisibleBid,
    DivisibleOffer,
    Leg,
    PackageBid,
    PackageOffer,
    expand_block_request,
    instrument_lookup,
    package_bid_from_requests,
    package_offer_from_block,
)

__all__ = [
    "Alternative",
    "AuctionReject",
    "AuctionResult",
    "AuctionStatus",
    "BlockOffer",
    "BlockRequest",
    "Decision",
    "DivisibleBid",
    "DivisibleOffer",
    "Fill",
    "InstrumentClearing",
    "Leg",
    "Milp",
    "OrderKind",
    "OrderOutcome",
    "Outcome",
    "PackageBid",
    "PackageOffer",
    "clear",
    "decision_of",
    "expand_block_request",
    "instrument_lookup",
    "package_bid_from_requests",
    "package_offer_from_block",
    "result_of",
    "winner_determination_milp",
]
