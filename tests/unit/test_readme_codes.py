"""The README's tables of codes are exactly the enumerations of ``engine.codes``: every member, its value."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

from engine import codes

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def section(heading_fragment: str) -> str:
    """The README text from the heading that contains ``heading_fragment`` to the next heading."""
    start = README.index(heading_fragment)
    end = README.find("\n#", start)
    return README[start:end]


def code_table(cls: type[IntEnum]) -> dict[str, int]:
    """``| value | NAME | ... |`` rows of the section headed by ``engine.codes.<cls>``."""
    rows = re.findall(r"^\| (\d+) \| ([A-Z_]+) \|", section(f"(`engine.codes.{cls.__name__}`)"), re.M)
    return {name: int(value) for value, name in rows}


def members(cls: type[IntEnum]) -> dict[str, int]:
    return {m.name: m.value for m in cls}


def test_reject_cancel_and_auction_reject_tables_list_every_code():
    for cls in (codes.RejectReason, codes.CancelReason, codes.AuctionReject):
        assert code_table(cls) == members(cls), cls.__name__


def test_the_other_codes_table_lists_every_member_of_each_enumeration():
    table = section("### Other codes")
    rows = dict(re.findall(r"^\| ([A-Za-z]+) \| ([A-Z_0-9, ]+) \|$", table, re.M))
    assert set(rows) == {"Side", "OrderType", "TimeInForce", "SelfTradePrevention", "Liquidity", "InstrumentStatus",
                         "Outcome", "AuctionStatus", "CommandKind"}
    for name, values in rows.items():
        listed = {n: int(v) for n, v in (pair.rsplit(" ", 1) for pair in values.split(", "))}
        assert listed == members(getattr(codes, name)), name
