"""The publisher's compiled core: event records -> message rows (``Fold``) -> msgpack frames (``FrameEncoder``).

``Fold`` keeps, in numba containers, what the feed knows of every instrument
(docs/matching-rules.md, *Event order*, says why it is enough):
* per instrument and side a *ladder*: the price levels sorted with the best
  last (key = price for bids, -price for asks), each level's L2 aggregate
  (qty, count, from ``BookLevel``) and L3 aggregate (the leaves and number of
  the publisher's own resting orders there);
* every resting order: id -> (instrument, side, price, leaves, added), where
  ``added`` is the instrument seq of its ``OrderAdded``; a level's queue is its
  orders by ``added`` (an order joins at the tail, an in-place reduction keeps
  its place, anything else takes it out of the book);
* the *incoming* order (the one being matched: ``Accepted``, or a ``Replaced``
  that lost priority), per instrument seq, status and top of book;
* the call auction: per instrument the row of its last final and last
  indicative ``AuctionPrice``, and the rows of the last final and indicative
  ``AuctionResult``, for snapshots. A resting order filled by the auction (a
  ``Fill`` with liquidity AUCTION) is executed like a maker fill. The
  ``AuctionResult`` channel is the pseudo-instrument ``n`` (one past the last
  instrument): it has a seq, nothing else. ``PACKAGE_*`` events are private:
  skipped, never a message.
``Fold.run(records)`` folds a batch in one compiled call and returns one
int64 row per message: ``code`` (position in ``protocol.FEED_CLASSES``),
instrument (``n`` for an ``AuctionResult``), seq, event_seq, ts, then the
message's own fields in declaration order. The L3 inference is the one
described in ``feeds.publisher``.

``FrameEncoder.encode(rows, session)`` writes the rows as msgpack, one frame
(a msgpack array of at most ``protocol.MAX_FRAME_MESSAGES`` messages) per run
of one instrument's rows, into a reused buffer; the bytes equal
``protocol.encoder.encode(list_of_structs)`` (a test checks it). Its templates
(map headers, keys, tags, symbols) are derived from the Structs of
``feeds.protocol``, which stays the only definition of the messages.

Costs: O(1) dict work plus O(log levels) per event (a level that appears or
disappears shifts the levels behind it in its ladder, best last so the touch
is cheap); encoding O(bytes) plus a stable sort of the rows by instrument.
"""

from __future__ import annotations

import msgspec
import numpy as np
from numba import njit, types
from numba.typed import Dict, List

from engine.codes import EventKind, Liquidity, PackageEventKind
from engine.records import EVENT_DTYPE
from feeds import protocol as fp

(TOP, LEVEL, ADDED, EXECUTED, REDUCED, DELETED, REPLACED, TRADE, STATUS, HEARTBEAT, AUCTION_PRICE,
 AUCTION_RESULT) = range(len(fp.FEED_CLASSES))
assert [c.__name__ for c in fp.FEED_CLASSES] == [
    "TopOfBook", "LevelUpdate", "OrderAdded", "OrderExecuted", "OrderReduced", "OrderDeleted", "OrderReplaced",
    "Trade", "InstrumentStatus", "Heartbeat", "AuctionPrice", "AuctionResult"]
HEAD = ("symbol", "session", "seq", "event_seq", "ts")  # the fields every feed message starts with
ROW = 5 + max(len(c.__struct_fields__) - len(HEAD) for c in fp.FEED_CLASSES)  # code, inst, seq, event_seq, ts, ...
R_CODE, R_INST, R_SEQ = 0, 1, 2  # message row columns (then event_seq, ts, fields)
R_AUCTION, R_INDICATIVE = 5, 6  # AuctionPrice and AuctionResult: auction number, indicative flag
R_SOLVE_US = 5 + fp.AuctionResult.__struct_fields__.index("solve_us") - len(HEAD)  # AuctionResult's solve time
KEY, L2Q, L2C, L3Q, L3C = range(5)  # ladder columns
G_EVENT_SEQ, G_TS, G_FOLD_ERRORS, G_L3_MISMATCH = range(4)  # Fold.g
I_VALID, I_OID, I_INST, I_SIDE, I_PRICE, I_LEAVES = range(6)  # Fold.incoming
LADDER_CAPACITY = 8  # initial levels per ladder; a full one doubles
_ORDER = types.UniTuple(types.int64, 5)


# --------------------------------------------------------------------- fold


@njit(cache=True)
def _new_ladders(n: int, capacity: int):
    out = List()
    for _ in range(n):
        out.append(np.zeros((capacity, 5), np.int64))
    return out


@njit(cache=True)
def _lower_bound(lad, m, key):
    """First position among the m levels of lad whose key is >= key. O(log m)."""
    lo, hi = 0, m
    while lo < hi:
        mid = (lo + hi) >> 1
        if lad[mid, KEY] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _find(lad, m, key):
    j = _lower_bound(lad, m, key)
    return j if j < m and lad[j, KEY] == key else -1


@njit(cache=True)
def _insert(ladders, sizes, r, j, key):
    """A zeroed level with key at position j of ladder r (grown if full); returns the ladder."""
    lad = ladders[r]
    m = sizes[r]
    if m == lad.shape[0]:
        bigger = np.zeros((2 * m, 5), np.int64)
        bigger[:m] = lad
        ladders[r] = bigger
        lad = bigger
    lad[j + 1: m + 1] = lad[j:m].copy()
    lad[j] = 0
    lad[j, KEY] = key
    sizes[r] = m + 1
    return lad


@njit(cache=True)
def _emit(out, n, seqs, code, inst, eseq, ts, a, b, c, d, e, f):
    seqs[inst] += 1
    row = out[n]
    row[0], row[1], row[2], row[3], row[4] = code, inst, seqs[inst], eseq, ts
    row[5], row[6], row[7], row[8], row[9], row[10] = a, b, c, d, e, f
    return n + 1


@njit(cache=True)
def _reduce(ladders, sizes, orders, oid, o, by):
    """Take by off resting order oid (o its tuple); it leaves the book at 0. False: its level is unknown."""
    inst, side, price, leaves, added = o
    r = 2 * inst + side
    j = _find(ladders[r], sizes[r], price if side == 0 else -price)
    if j < 0:
        return False
    lad = ladders[r]
    lad[j, L3Q] -= by
    if leaves == by:
        lad[j, L3C] -= 1
        del orders[oid]
    else:
        orders[oid] = (inst, side, price, leaves - by, added)
    return True


@njit(cache=True)
def _book_level(out, n, seqs, tops, ladders, sizes, orders, inc, g, inst, side, price, qty, count, eseq, ts):
    r = 2 * inst + side
    key = price if side == 0 else -price
    lad = ladders[r]
    j = _lower_bound(lad, sizes[r], key)
    found = j < sizes[r] and lad[j, KEY] == key
    have_qty = lad[j, L3Q] if found else 0
    have_count = lad[j, L3C] if found else 0
    if count != have_count or qty != have_qty:
        leaves = inc[I_LEAVES]
        if (inc[I_VALID] == 1 and inc[I_INST] == inst and inc[I_SIDE] == side and inc[I_PRICE] == price
                and count == have_count + 1 and qty == have_qty + leaves):
            if not found:
                lad = _insert(ladders, sizes, r, j, key)
                found = True
            lad[j, L3Q] += leaves
            lad[j, L3C] += 1
            n = _emit(out, n, seqs, ADDED, inst, eseq, ts, inc[I_OID], side, price, leaves, 0, 0)
            orders[inc[I_OID]] = (inst, side, price, leaves, seqs[inst])
            inc[I_VALID] = 0
        else:
            g[G_L3_MISMATCH] += 1
    if qty == 0:
        if found:
            m = sizes[r]
            lad[j: m - 1] = lad[j + 1: m].copy()
            sizes[r] = m - 1
    else:
        if not found:
            lad = _insert(ladders, sizes, r, j, key)
        lad[j, L2Q] = qty
        lad[j, L2C] = count
    n = _emit(out, n, seqs, LEVEL, inst, eseq, ts, side, price, qty, count, 0, 0)
    top = tops[inst]
    bids, asks = ladders[2 * inst], ladders[2 * inst + 1]
    nb, na = sizes[2 * inst], sizes[2 * inst + 1]
    bp, bq, bc = (bids[nb - 1, KEY], bids[nb - 1, L2Q], bids[nb - 1, L2C]) if nb else (0, 0, 0)
    ap, aq, ac = (-asks[na - 1, KEY], asks[na - 1, L2Q], asks[na - 1, L2C]) if na else (0, 0, 0)
    if (bp, bq, bc, ap, aq, ac) != (top[0], top[1], top[2], top[3], top[4], top[5]):
        top[0], top[1], top[2], top[3], top[4], top[5] = bp, bq, bc, ap, aq, ac
        n = _emit(out, n, seqs, TOP, inst, eseq, ts, bp, bq, bc, ap, aq, ac)
    return n


@njit(cache=True)
def _fold(ev, seqs, status, tops, ladders, sizes, orders, inc, g, prices, results, out):
    n = 0
    n_inst = status.shape[0]
    for i in range(ev.shape[0]):
        e = ev[i]
        kind = e.kind
        eseq, ts = e.seq, e.ts
        g[G_EVENT_SEQ], g[G_TS] = eseq, ts
        if (kind == EventKind.REJECTED or kind == EventKind.CANCEL_REJECTED
                or PackageEventKind.PACKAGE_ACCEPTED <= kind <= PackageEventKind.PACKAGE_UNFILLED):
            continue  # private
        indicative = np.int64(e.side)
        if kind == PackageEventKind.AUCTION_RESULT:
            if indicative != 0 and indicative != 1:
                g[G_FOLD_ERRORS] += 1
                continue
            n = _emit(out, n, seqs, AUCTION_RESULT, n_inst, eseq, ts, e.order_id, indicative, e.status, e.price,
                      e.qty, e.leaves)
            row = out[n - 1]
            row[11], row[12], row[13], row[R_SOLVE_US] = e.cum, e.trade_id, e.count, 0  # solve_us: the venue's
            results[indicative] = row
            continue
        inst = np.int64(e.instrument)
        if inst < 0 or inst >= n_inst:
            g[G_FOLD_ERRORS] += 1
            continue
        oid = e.order_id
        if kind == EventKind.BOOK_LEVEL:
            n = _book_level(out, n, seqs, tops, ladders, sizes, orders, inc, g, inst, np.int64(e.side), e.price,
                            e.qty, np.int64(e.count), eseq, ts)
        elif kind == EventKind.ACCEPTED:
            inc[I_VALID], inc[I_OID], inc[I_INST], inc[I_SIDE], inc[I_PRICE], inc[I_LEAVES] = (
                1, oid, inst, e.side, e.price, e.qty)
        elif kind == EventKind.FILL:
            if e.liquidity == Liquidity.MAKER or e.liquidity == Liquidity.AUCTION:  # a resting order executed
                if oid not in orders:
                    g[G_FOLD_ERRORS] += 1
                    continue
                o = orders[oid]
                if not _reduce(ladders, sizes, orders, oid, o, e.qty):
                    g[G_FOLD_ERRORS] += 1
                    continue
                n = _emit(out, n, seqs, EXECUTED, inst, eseq, ts, oid, o[1], o[2], e.qty, e.leaves, e.trade_id)
            elif inc[I_VALID] == 1 and inc[I_OID] == oid:
                inc[I_LEAVES] = e.leaves
        elif kind == EventKind.TRADE:
            n = _emit(out, n, seqs, TRADE, inst, eseq, ts, e.trade_id, e.side, e.price, e.qty, 0, 0)
        elif kind == EventKind.CANCELLED:
            if oid in orders:
                o = orders[oid]
                if not _reduce(ladders, sizes, orders, oid, o, o[3]):
                    g[G_FOLD_ERRORS] += 1
                    continue
                n = _emit(out, n, seqs, DELETED, inst, eseq, ts, oid, o[1], o[2], o[3], e.reason, 0)
            elif inc[I_VALID] == 1 and inc[I_OID] == oid:
                inc[I_VALID] = 0
        elif kind == EventKind.REPLACED:
            if oid not in orders:
                g[G_FOLD_ERRORS] += 1
                continue
            o = orders[oid]
            side, price, leaves = o[1], e.price, e.leaves
            if price == o[2] and leaves <= o[3]:  # in place (leaves > 0): queue position kept
                if not _reduce(ladders, sizes, orders, oid, o, o[3] - leaves):
                    g[G_FOLD_ERRORS] += 1
                    continue
                n = _emit(out, n, seqs, REDUCED, inst, eseq, ts, oid, side, price, o[3] - leaves, leaves, 0)
            else:
                if not _reduce(ladders, sizes, orders, oid, o, o[3]):
                    g[G_FOLD_ERRORS] += 1
                    continue
                inc[I_VALID], inc[I_OID], inc[I_INST], inc[I_SIDE], inc[I_PRICE], inc[I_LEAVES] = (
                    1, oid, inst, side, price, leaves)
                n = _emit(out, n, seqs, REPLACED, inst, eseq, ts, oid, side, price, leaves, 0, 0)
        elif kind == EventKind.INSTRUMENT_STATUS:
            status[inst] = e.status
            n = _emit(out, n, seqs, STATUS, inst, eseq, ts, e.status, 0, 0, 0, 0, 0)
        elif kind == PackageEventKind.AUCTION_PRICE:
            if indicative != 0 and indicative != 1:
                g[G_FOLD_ERRORS] += 1
                continue
            n = _emit(out, n, seqs, AUCTION_PRICE, inst, eseq, ts, oid, indicative, e.price, e.qty, 0, 0)
            prices[inst, indicative] = out[n - 1]
    return n


@njit(cache=True)
def _resting(orders, wanted):
    """(order id, instrument, side, price, leaves, added) of the resting orders of the wanted instruments."""
    k = 0
    for o in orders.values():
        if wanted[o[0]]:
            k += 1
    out = np.empty((k, 6), np.int64)
    k = 0
    for oid, o in orders.items():
        if wanted[o[0]]:
            out[k, 0] = oid
            out[k, 1:] = o
            k += 1
    return out


class Fold:
    """The feed's books of ``n`` instruments and the compiled fold over them."""

    def __init__(self, n: int):
        self.seqs = np.zeros(n + 1, np.int64)  # last seq published, per instrument, then of the AUCTION channel
        self.status = np.full(n, -1, np.int64)  # -1: no InstrumentStatusChanged seen yet
        self.tops = np.zeros((n, 6), np.int64)
        self.ladders = _new_ladders(2 * n, LADDER_CAPACITY)  # row 2 * instrument + side
        self.sizes = np.zeros(2 * n, np.int64)
        self.orders = Dict.empty(types.int64, _ORDER)
        self.incoming = np.zeros(6, np.int64)
        self.g = np.zeros(4, np.int64)
        self.prices = np.zeros((n, 2, ROW), np.int64)  # last AuctionPrice row per instrument, final / indicative
        self.results = np.zeros((2, ROW), np.int64)  # last AuctionResult row, final / indicative (seq 0: none)
        self._out = np.zeros((1024, ROW), np.int64)
        self.run(np.zeros(0, EVENT_DTYPE))  # compile (or load from numba's cache) now, not on the first batch

    def run(self, records: np.ndarray) -> np.ndarray:
        """Fold a batch of EVENT_DTYPE records; the message rows it produced (a view, valid until the next run)."""
        records = np.require(records, EVENT_DTYPE, "CW")  # one compiled signature (copies only an odd layout)
        if len(self._out) < 3 * len(records):  # at most 3 messages per event (OrderAdded, LevelUpdate, TopOfBook)
            self._out = np.zeros((6 * len(records), ROW), np.int64)
        n = _fold(records, self.seqs, self.status, self.tops, self.ladders, self.sizes, self.orders, self.incoming,
                  self.g, self.prices, self.results, self._out)
        return self._out[:n]

    def levels(self, instrument: int, side: int) -> list[tuple[int, int, int]]:
        """L2 of one side, best first: (price, qty, count). O(levels)."""
        r = 2 * instrument + side
        lad = self.ladders[r][: self.sizes[r]][::-1]
        sign = 1 if side == 0 else -1
        return [(sign * k, q, c) for k, q, c in lad[:, :3].tolist()]

    def resting(self, instruments) -> np.ndarray:
        """The resting orders of those instruments as rows (order id, instrument, side, price, leaves),
        sorted by instrument, side, level (best first) and queue position. O(all resting orders)."""
        wanted = np.zeros(len(self.status), np.bool_)
        wanted[list(instruments)] = True
        o = _resting(self.orders, wanted)
        priority = np.where(o[:, 2] == 0, -o[:, 3], o[:, 3])
        return o[np.lexsort((o[:, 5], priority, o[:, 2], o[:, 1])), :5]


def row_message(row, symbol: str, session: int):
    """The feed message (a ``feeds.protocol`` Struct) of one message row. O(fields)."""
    cls = fp.FEED_CLASSES[int(row[R_CODE])]
    return cls(symbol, session, *(int(v) for v in row[R_SEQ: R_SEQ + len(cls.__struct_fields__) - 2]))


# ------------------------------------------------------------------ encoding


@njit(cache=True)
def _put_int(buf, pos, v):
    """v as the shortest msgpack integer (as msgspec writes it)."""
    if 0 <= v < 128:
        buf[pos] = v
        return pos + 1
    if -32 <= v < 0:
        buf[pos] = v & 0xFF
        return pos + 1
    if v >= 0:
        if v < 1 << 8:
            code, size = 0xCC, 1
        elif v < 1 << 16:
            code, size = 0xCD, 2
        elif v < 1 << 32:
            code, size = 0xCE, 4
        else:
            code, size = 0xCF, 8
    elif v >= -(1 << 7):
        code, size = 0xD0, 1
    elif v >= -(1 << 15):
        code, size = 0xD1, 2
    elif v >= -(1 << 31):
        code, size = 0xD2, 4
    else:
        code, size = 0xD3, 8
    buf[pos] = code
    for k in range(size):
        buf[pos + size - k] = (v >> (8 * k)) & 0xFF
    return pos + 1 + size


@njit(cache=True)
def _put(buf, pos, blob, a, b):
    for q in range(a, b):  # a loop: cheaper than a slice copy for a few bytes
        buf[pos] = blob[q]
        pos += 1
    return pos


@njit(cache=True)
def _encode(rows, order, session, blob, prefix, keys, nkeys, symbols, max_frame, buf, frames):
    """Frames of rows (in order) grouped by instrument; frames[k] = (instrument, start, end, messages)."""
    n = len(order)
    pos = nf = k = 0
    while k < n:
        inst = rows[order[k], R_INST]
        end = k + 1
        while end < n and end - k < max_frame and rows[order[end], R_INST] == inst:
            end += 1
        start = pos
        cnt = end - k
        if cnt < 16:
            buf[pos] = 0x90 | cnt
            pos += 1
        else:  # max_frame < 65536
            buf[pos], buf[pos + 1], buf[pos + 2] = 0xDC, cnt >> 8, cnt & 0xFF
            pos += 3
        for t in range(k, end):
            row = rows[order[t]]
            code = row[R_CODE]
            pos = _put(buf, pos, blob, prefix[code, 0], prefix[code, 1])
            pos = _put(buf, pos, blob, symbols[inst, 0], symbols[inst, 1])
            pos = _put(buf, pos, blob, keys[code, 0, 0], keys[code, 0, 1])
            pos = _put_int(buf, pos, session)
            for j in range(1, nkeys[code]):  # integer field j (1: seq, 2: event_seq, 3: ts, ...) is row column j + 1
                pos = _put(buf, pos, blob, keys[code, j, 0], keys[code, j, 1])
                pos = _put_int(buf, pos, row[j + 1])
        frames[nf, 0], frames[nf, 1], frames[nf, 2], frames[nf, 3] = inst, start, pos, cnt
        nf += 1
        k = end
    return nf


class FrameEncoder:
    """msgpack frames of message rows, for the instruments named ``symbols`` (ids = positions)."""

    def __init__(self, symbols: list[str]):
        enc = msgspec.msgpack.encode
        n_classes = len(fp.FEED_CLASSES)
        prefixes, keys = [], []  # per class: map header, tag key and value, "symbol"; the integer fields' keys
        for cls in fp.FEED_CLASSES:
            fields, config = cls.__struct_fields__, cls.__struct_config__
            assert fields[: len(HEAD)] == HEAD and not config.array_like, cls
            entries = len(fields) + 1  # a fixmap up to 15 entries, then a map16 (as msgspec writes them)
            header = bytes([0x80 | entries]) if entries < 16 else b"\xde" + entries.to_bytes(2, "big")
            prefixes.append(header + enc(config.tag_field) + enc(config.tag) + enc("symbol"))
            keys.append([enc(name) for name in fields[1:]])
        parts = prefixes + [enc(s) for s in symbols] + [k for ks in keys for k in ks]
        ends = np.cumsum([len(p) for p in parts], dtype=np.int64)
        spans = np.stack([ends - [len(p) for p in parts], ends], axis=1)  # (start, end) of each part in the blob
        self._blob = np.frombuffer(b"".join(parts), np.uint8)
        self._prefix, self._symbols = spans[:n_classes], spans[n_classes: n_classes + len(symbols)]
        self._keys = np.zeros((n_classes, ROW, 2), np.int64)
        self._nkeys = np.array([len(ks) for ks in keys], np.int64)
        at = n_classes + len(symbols)
        for code, ks in enumerate(keys):
            self._keys[code, : len(ks)] = spans[at: at + len(ks)]
            at += len(ks)
        self._max_message = max(len(p) + sum(len(k) + 9 for k in ks) for p, ks in zip(prefixes, keys, strict=True)) \
            + max((len(p) for p in parts[n_classes: n_classes + len(symbols)]), default=0)
        self._buf = np.zeros(0, np.uint8)
        self._view = memoryview(self._buf)
        self._frames = np.zeros((0, 4), np.int64)
        self.encode(np.zeros((0, ROW), np.int64), 0)  # compile (or load from numba's cache) now

    def encode(self, rows: np.ndarray, session: int) -> tuple[memoryview, list]:
        """(buffer, [(instrument, start, end, messages), ...]): each buffer[start:end] one frame.

        Rows of one instrument stay in order; the buffer is reused by the next call."""
        n = len(rows)
        if len(self._frames) < n:
            self._frames = np.zeros((2 * n, 4), np.int64)
        if len(self._buf) < n * (self._max_message + 3):
            self._buf = np.zeros(2 * n * (self._max_message + 3), np.uint8)
            self._view = memoryview(self._buf)
        order = np.argsort(rows[:, R_INST], kind="stable")
        nf = _encode(rows, order, session, self._blob, self._prefix, self._keys, self._nkeys, self._symbols,
                     fp.MAX_FRAME_MESSAGES, self._buf, self._frames)
        return self._view, self._frames[:nf].tolist()


def warm_up() -> None:
    """Compile (on a machine's first run) or load from numba's cache every compiled function of the feed: the
    fold, the encoder and the snapshot's resting orders, on one instrument with no events."""
    fold = Fold(1)
    fold.resting([0])
    FrameEncoder(["X"])
