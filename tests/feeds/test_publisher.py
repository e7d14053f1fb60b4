"""FeedPublisher against the engine directly: its own books, the L3 stream and snapshots equal the engine's books."""

from __future__ import annotations

import json
import random
import time

import msgspec
import numpy as np
import zmq

from engine.codes import InstrumentStatus, Side
from engine.exchange import Exchange
from engine.records import AdvanceTime, Modify, NewOrder, commands_to_records
from feeds import protocol as fp
from feeds.client import LocalBook, snapshot_books
from feeds.fold import ROW, FrameEncoder
from feeds.publisher import FeedPublisher
from tests.conftest import CLOSE_NS, make_instruments
from tests.feeds.conftest import LOOPBACK, EngineFlow, engine_books, local_books, publisher_books, replay
from tests.gateway.conftest import FakeClock
from tests.schema_contract import contract


def test_publisher_books_equal_the_engine_after_every_batch_of_random_flow(bench):
    flow = EngineFlow(7, [(0, 2000, 1), (1, 2000, 5), (2, 2000, 1)])
    for _ in range(150):
        flow.observe(bench.run(flow.batch(8)))
        for i in range(3):
            assert publisher_books(bench.pub, i) == engine_books(bench.engine, i)
    assert bench.pub.stats["l3_mismatch"] == 0
    assert bench.pub.published > 1000


def test_l3_replay_alone_rebuilds_the_engine_books_with_queue_order(bench):
    flow = EngineFlow(11, [(0, 2000, 1), (1, 2000, 5), (2, 2000, 1)])
    for _ in range(120):
        flow.observe(bench.run(flow.batch(8)))
    bench.run([AdvanceTime(CLOSE_NS + 1)])  # gate closure of instrument 2: expiries, CLOSED
    msgs = bench.drain()
    for i, ins in enumerate(bench.engine.instruments):
        l3_only = [m for m in msgs if m.symbol == ins.symbol and type(m) in (
            fp.OrderAdded, fp.OrderExecuted, fp.OrderReduced, fp.OrderDeleted, fp.OrderReplaced)]
        book = LocalBook(ins.symbol, 0, 0)
        for m in l3_only:
            book.apply(m)
        truth = engine_books(bench.engine, i)
        assert (book.queue(0), book.queue(1)) == truth[2:]
        assert book.l3_depth() == truth[:2]
        full = replay(msgs, ins.symbol)  # every channel: contiguous seqs, L2 too
        assert local_books(full) == truth
        assert full.seq == bench.pub.seq(ins.symbol)
    assert any(isinstance(m, fp.InstrumentStatus) and m.status == InstrumentStatus.CLOSED for m in msgs)


def test_price_change_loses_priority_and_in_place_reduction_keeps_it(bench):
    t = 10
    bench.run([NewOrder(t, 0, 1, 0, Side.BUY, 100, 5), NewOrder(t, 1, 1, 0, Side.BUY, 100, 7),
               NewOrder(t, 2, 1, 0, Side.BUY, 99, 3)])
    bench.drain()
    bench.run([Modify(t, 0, 1, 100, 2)])  # in place
    reduced = bench.drain()
    assert [type(m) for m in reduced] == [fp.OrderReduced, fp.LevelUpdate, fp.TopOfBook]
    assert (reduced[0].order_id, reduced[0].qty, reduced[0].leaves) == (1, 3, 2)
    bench.run([Modify(t, 0, 1, 100, 9)])  # quantity increase: back of the queue
    moved = bench.drain()
    assert [type(m) for m in moved] == [fp.OrderReplaced, fp.LevelUpdate, fp.TopOfBook, fp.OrderAdded,
                                        fp.LevelUpdate, fp.TopOfBook]
    assert [o[0] for o in publisher_books(bench.pub, 0)[2]] == [2, 1, 3]
    bench.run([NewOrder(t, 2, 2, 0, Side.SELL, 100, 10)])  # takes 7 of order 2, then 3 of order 1
    traded = bench.drain()
    execs = [(m.order_id, m.qty, m.leaves) for m in traded if isinstance(m, fp.OrderExecuted)]
    assert execs == [(2, 7, 0), (1, 3, 6)]
    assert [m.qty for m in traded if isinstance(m, fp.Trade)] == [7, 3]
    assert publisher_books(bench.pub, 0) == engine_books(bench.engine, 0)


def test_snapshot_names_each_instrument_with_its_seq_and_lists_queues_in_priority_order(bench):
    flow = EngineFlow(3, [(0, 2000, 1), (1, 2000, 5)])
    for _ in range(40):
        flow.observe(bench.run(flow.batch(8)))
    symbols = [ins.symbol for ins in bench.engine.instruments]
    reply = bench.pub.snapshot(fp.SnapshotRequest(9, [symbols[1], "NOPE"]))
    assert reply[-1] == fp.SnapshotEnd(9, bench.pub.session, bench.pub.last_event_seq, bench.pub.last_ts, 1,
                                       ["NOPE"])
    head = reply[0]
    assert isinstance(head, fp.SnapshotInstrument) and head.symbol == symbols[1]
    assert head.seq == bench.pub.seq(symbols[1])
    book = snapshot_books(reply[:-1])[symbols[1]]
    assert local_books(book) == engine_books(bench.engine, 1)
    bid, ask = bench.engine.best_bid(1), bench.engine.best_ask(1)
    assert book.top == (*((bid.price, bid.qty, bid.count) if bid else (0, 0, 0)),
                        *((ask.price, ask.qty, ask.count) if ask else (0, 0, 0)))
    everything = bench.pub.snapshot(fp.SnapshotRequest(1))
    assert everything[-1].instruments == 3


def test_frames_are_msgspec_encodings_of_the_messages_split_per_instrument_and_the_schema_names_them():
    symbols = ["S", "H100.US-EAST.FIRM.2026-12-01T14"]
    rng = random.Random(1)
    values = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**62, -1, -32, -33, -128, -129, -32769,
              -(2**31) - 1, -(2**62)]
    rows = np.zeros((300, ROW), np.int64)
    expected: list[list] = [[], []]
    for k in range(len(rows)):
        code, inst = rng.randrange(len(fp.FEED_CLASSES)), rng.randrange(2)
        values_k = [rng.choice(values) for _ in range(ROW - 2)]
        rows[k] = [code, inst, *values_k]
        cls = fp.FEED_CLASSES[code]
        expected[inst].append(cls(symbols[inst], -5, *values_k[: len(cls.__struct_fields__) - 2]))
    buf, frames = FrameEncoder(symbols).encode(rows, -5)
    chunks = [(inst, msgs[i: i + fp.MAX_FRAME_MESSAGES]) for inst, msgs in enumerate(expected)
              for i in range(0, len(msgs), fp.MAX_FRAME_MESSAGES)]
    assert [(inst, count) for inst, _, _, count in frames] == [(inst, len(c)) for inst, c in chunks]
    for (_, start, end, _), (_, chunk) in zip(frames, chunks, strict=True):
        assert bytes(buf[start:end]) == fp.encoder.encode(chunk)
    m = fp.OrderExecuted("S", 1, 3, 9, 10, 4, Side.SELL, 100, 2, 1, 7)
    assert fp.feed_frame_decoder.decode(fp.encoder.encode([m])) == [m]
    schema = fp.json_schema()
    names = set(schema["$defs"])
    for cls in (*fp.FEED_CLASSES, fp.SnapshotInstrument, fp.SnapshotLevel, fp.SnapshotOrder, fp.SnapshotAuction,
                fp.SnapshotEnd, fp.SnapshotRejected, fp.SnapshotRequest):
        assert cls.__name__ in names
    assert "firm" not in str(schema)
    assert contract(json.loads(fp.SCHEMA_PATH.read_text())) == contract(json.loads(json.dumps(schema)))  # committed


def test_a_subscriber_that_never_reads_does_not_block_the_publisher():
    engine = Exchange(make_instruments(), 3)
    pub = FeedPublisher(engine.instruments, LOOPBACK, LOOPBACK, clock=FakeClock(10**9), sndhwm=50).bind()
    ctx = zmq.Context()
    try:
        stuck = ctx.socket(zmq.SUB)
        stuck.setsockopt(zmq.LINGER, 0)
        stuck.setsockopt(zmq.RCVHWM, 50)
        stuck.setsockopt(zmq.SUBSCRIBE, b"")
        stuck.connect(pub.endpoint)
        for _ in range(200):
            pub.heartbeat(force=True)
            if stuck.poll(20):
                break
        flow = EngineFlow(21, [(0, 2000, 1)])
        t0 = time.monotonic()
        for _ in range(200):
            engine.process_batch(commands_to_records(flow.batch(10)))
            flow.observe(engine.last_events)
            pub.on_events(engine.last_events)
        assert pub.published > 1000 and time.monotonic() - t0 < 10
    finally:
        pub.stop()
        ctx.destroy(linger=0)


def test_a_publisher_that_missed_the_start_counts_what_it_cannot_fold_and_keeps_l2_exact(bench):
    t = 10
    bench.run([NewOrder(t, 0, 1, 0, Side.BUY, 100, 5), NewOrder(t, 1, 1, 0, Side.BUY, 99, 3)])
    late = FeedPublisher(bench.engine.instruments, LOOPBACK, LOOPBACK, clock=bench.clock).bind()
    try:
        # a Replaced and a maker Fill of an order it never saw: skipped; the BookLevel after the first, and the
        # one of an order resting behind an order it never saw, disagree with its L3; L2 follows every BookLevel
        late.on_events(bench.run([Modify(t, 0, 1, 100, 2), NewOrder(t, 2, 1, 0, Side.SELL, 100, 2)]))
        late.on_events(bench.run([NewOrder(t, 1, 2, 0, Side.BUY, 99, 4)]))
        assert (late.stats["fold_errors"], late.stats["l3_mismatch"]) == (2, 2)
        assert publisher_books(late, 0)[:2] == ([(99, 7, 2)], []) == engine_books(bench.engine, 0)[:2]
        assert late.seq(late.symbols[0]) == late.published > 0
    finally:
        late.stop()


def test_snapshot_service_answers_a_dealer_rejects_malformed_requests_by_type_and_gives_a_req_nothing():
    engine = Exchange(make_instruments(), 3)
    pub = FeedPublisher(engine.instruments, LOOPBACK, LOOPBACK).start()
    symbol = engine.instruments[0].symbol
    ctx = zmq.Context()
    try:
        dealer = ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.connect(pub.snapshot_endpoint)

        def reply_to(frame: bytes) -> list:
            dealer.send(frame)
            out: list = []
            while not out or type(out[-1]) not in (fp.SnapshotEnd, fp.SnapshotRejected):
                assert dealer.poll(5000), "no reply from the snapshot service"
                out += fp.snapshot_frame_decoder.decode(dealer.recv())
            return out

        good = reply_to(fp.encoder.encode(fp.SnapshotRequest(7, [symbol, symbol[:4]])))
        assert type(good[0]) is fp.SnapshotInstrument and good[-1].request_id == 7
        assert good[-1].unknown == [symbol[:4]]  # symbols are exact: a prefix names no instrument
        for frame, rid in ((b"\xc1 not msgpack", -1), (msgspec.msgpack.encode({"type": "SnapshotRequest"}), -1),
                           (msgspec.msgpack.encode({"type": "SnapshotRequest", "request_id": 5, "symbols": 3}), 5)):
            [rejected] = reply_to(frame)
            assert type(rejected) is fp.SnapshotRejected and rejected.request_id == rid
            assert rejected.session == pub.session and rejected.text.startswith("not a SnapshotRequest: ")
        req = ctx.socket(zmq.REQ)  # the reply is several ZeroMQ messages without REQ's envelope: REQ gets nothing
        req.setsockopt(zmq.LINGER, 0)
        req.connect(pub.snapshot_endpoint)
        req.send(fp.encoder.encode(fp.SnapshotRequest(8, [symbol])))
        assert not req.poll(500)
    finally:
        pub.stop()
        ctx.destroy(linger=0)
