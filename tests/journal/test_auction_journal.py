"""The call auction through the journal: replay and recovery reproduce every result; positions balance."""

import numpy as np
import pytest

import engine.auction.clearing as clearing
from engine.auction.market import package_records, run_auction_record
from engine.auction.orders import Alternative, Leg
from engine.codes import EventKind, PackageEventKind, Side
from engine.records import NewOrder, commands_to_records
from gateway.positions import JournalPositions
from journal.log import read_genesis
from journal.sequencer import JournaledExchange, fresh_exchange, replay_journal
from tests.auction.test_market import listing

from .helpers import small_config

BUYER, PROVIDER, MAKER, TAKER = 1, 2, 3, 4


def _script() -> list[np.ndarray]:
    """Continuous trading, packages, two auctions (the second after more packages arrive)."""
    def block(first, hours, gpus):
        return [Leg(h, gpus) for h in range(first, first + hours)]

    return [
        commands_to_records([NewOrder(1, MAKER, 1, 0, Side.BUY, 130, 4), NewOrder(1, MAKER, 2, 1, Side.BUY, 120, 4),
                             NewOrder(1, MAKER, 3, 2, Side.SELL, 150, 6)]),
        package_records(2, PROVIDER, 1, Side.SELL, [Alternative(block(0, 2, 12), 2000)]),
        package_records(2, BUYER, 1, Side.BUY, [Alternative(block(0, 2, 8), 2400), Alternative(block(1, 2, 8), 2600)]),
        commands_to_records([NewOrder(3, TAKER, 1, 2, Side.BUY, 150, 2)]),
        run_auction_record(4, 5000, 0),
        package_records(5, BUYER, 2, Side.BUY, [Alternative(block(2, 1, 3), 600)]),
        package_records(5, PROVIDER, 2, Side.SELL, [Alternative(block(3, 1, 5), 100)]),
        run_auction_record(6, 5000, 0, indicative=True),
        run_auction_record(7, 5000, 0),
    ]


def test_replay_and_recovery_reproduce_auction_results_and_positions_balance(tmp_path):
    d = tmp_path / "j"
    je = JournaledExchange.create(d, listing(), 8, config=small_config(snapshot_every_commands=0))
    live: list[np.ndarray] = []
    for batch in _script():
        je.process_batch(batch)
        live.append(je.last_events.copy())
        if len(live) == 6:
            je.snapshot()  # a snapshot with live packages in it
    state = je.state_hash()
    auction_state = je.exchange.auction_state
    je.close()
    events = np.concatenate(live)
    assert len(events[events["kind"] == PackageEventKind.AUCTION_RESULT]) == 3
    assert len(events[events["kind"] == PackageEventKind.PACKAGE_FILL]) > 0

    replayed: list[np.ndarray] = []
    fresh = replay_journal(d, on_events=lambda ev: replayed.append(ev.copy()))
    assert fresh.state_hash() == state and not fresh.mismatches
    assert np.concatenate(replayed).tolist() == events.tolist()  # every auction cleared the same way

    again = JournaledExchange.recover(d)  # from the snapshot taken with packages live
    assert again.recovery.snapshot is not None
    assert again.state_hash() == state and again.exchange.auction_state == auction_state
    again.close()

    positions = JournalPositions(d)
    for inst in range(len(listing())):
        held = [p for (firm, i), p in positions.positions.items() if i == inst]
        assert sum(p.net for p in held) == 0 and sum(p.cash for p in held) == 0
    package_gpus = sum(int(e["qty"]) for e in events[(events["kind"] == PackageEventKind.PACKAGE_FILL)
                                                     & (events["firm"] == BUYER)])
    assert sum(p.bought for (firm, _), p in positions.positions.items() if firm == BUYER) == package_gpus
    assert any(e["liquidity"] == 3 for e in events[events["kind"] == EventKind.FILL])  # a book order in an auction


def test_replay_in_tiny_chunks_never_cuts_a_package_and_malformed_packages_are_not_journaled(tmp_path):
    d = tmp_path / "j"
    je = JournaledExchange.create(d, listing(), 8, config=small_config(snapshot_every_commands=0))
    live = []
    for batch in _script():
        je.process_batch(batch)
        live.append(je.last_events.copy())
    whole = package_records(9, BUYER, 9, Side.BUY, [Alternative([Leg(0, 1)], 500)])
    for bad in (whole[:2], whole[1:], np.concatenate([whole, whole[2:]])):
        with pytest.raises(ValueError, match="package"):
            je.process_batch(bad)
    state = je.state_hash()
    je.close()
    digests = set()
    for chunk in (1, 2, 3, 5, 1 << 16):
        got = []
        res = replay_journal(d, chunk=chunk, digest=True, on_events=lambda ev, got=got: got.append(ev.copy()))
        assert res.state_hash() == state
        assert np.concatenate(got).tolist() == np.concatenate(live).tolist()
        digests.add(res.event_digest)
    assert len(digests) == 1  # the same bytes, padding included, however the journal is cut


def test_a_replay_reproduces_an_auction_its_solver_cut_short_from_the_journaled_decision(tmp_path, monkeypatch):
    # Live, every clearing stops at its time limit before finding anything (as a 10,000-bid auction does
    # on a slow machine): the auctions clear the book orders alone. A replay on this machine would solve
    # them fully and fill packages; the journaled decisions make it reproduce what happened instead.
    d = tmp_path / "j"
    je = JournaledExchange.create(d, listing(), 8, config=small_config(snapshot_every_commands=0))
    # the solver reaches its limit at once, holding only the empty decision (its start when even the LP is cut)
    monkeypatch.setattr(clearing._Wdp, "dive", lambda self, limit, floor: (np.zeros(len(self.milp.cost)), limit))
    monkeypatch.setattr(clearing._Wdp, "solve", lambda self, start, limit: ([], False, float("inf"), limit))
    live = []
    for batch in _script():
        je.process_batch(batch)
        live.append(je.last_events.copy())
    state = je.state_hash()
    je.close()
    monkeypatch.undo()
    events = np.concatenate(live)
    assert len(events[events["kind"] == PackageEventKind.AUCTION_RESULT]) == 3
    assert len(events[events["kind"] == PackageEventKind.PACKAGE_FILL]) == 0  # cut short: no package filled

    replayed: list[np.ndarray] = []
    fresh = replay_journal(d, on_events=lambda ev: replayed.append(ev.copy()))
    assert fresh.state_hash() == state and not fresh.mismatches
    assert np.concatenate(replayed).tolist() == events.tolist()
    again = JournaledExchange.recover(d)
    assert again.state_hash() == state
    again.close()

    # the same commands without the decisions (a plain replay of the records) clear differently
    plain = fresh_exchange(read_genesis(d))
    for batch in _script():
        plain.process_batch(batch)
    assert len(plain.last_events) and plain.packages != fresh.exchange.packages
