"""``cx web`` (feeds.web): the bridge's API (state, long poll, Server-Sent Events) and the page in headless Chromium.

The browser test starts the venue in-process, trades through the gateway, and
loads the page with ``chromium --headless --dump-dom`` (long-polling transport:
an open SSE stream would keep Chromium's virtual time from advancing); it reads
the rendered ladder, forward curve, trades and auction panel from the DOM, and
takes a screenshot.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.request

import pytest

from feeds.web import WebBridge, WebServer, tick_units
from gateway import cli
from gateway import protocol as p
from tests.gateway.conftest import OTHER, SYMBOL
from tests.web.conftest import round_trip, run_chromium


def get(web, path: str, host: str | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", web.server.port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Host": host} if host else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def small_book(web) -> None:
    """Resting bids 5 @ 2.450 and 7 @ 2.440, asks 3 @ 2.500 and 4 @ 2.510 on SYMBOL; a buy of 2 trades at 2.500."""
    alpha, beta = web.trader("ALPHA"), web.trader("BETA")
    round_trip(alpha, [p.NewOrder(1, SYMBOL, 0, 5, 2450), p.NewOrder(2, SYMBOL, 0, 7, 2440),
                       p.NewOrder(3, SYMBOL, 1, 3, 2500), p.NewOrder(4, SYMBOL, 1, 4, 2510),
                       p.NewOrder(5, OTHER, 0, 10, 5100), p.NewOrder(6, OTHER, 1, 10, 5200)])
    round_trip(beta, [p.NewOrder(1, SYMBOL, 0, 2, 2500, tif=p.TimeInForce.IOC)])
    web.settle([SYMBOL, OTHER])


def test_tick_units_are_exact():
    assert tick_units("0.001") == (3, 1)
    assert tick_units("0.25") == (2, 25)
    assert tick_units("5") == (0, 5)
    with pytest.raises(ValueError):
        tick_units("0")


def test_state_and_long_poll_carry_books_trades_and_published_messages(web):
    status, body = get(web, "/api/state")
    assert status == 200
    state = json.loads(body)
    meta = state["meta"]
    assert meta["decimals"] == 3 and meta["unit"] == 1 and len(meta["instruments"]) == 768
    assert {"symbol": SYMBOL, "accelerator": "H100", "region": "US-EAST", "service_class": "FIRM",
            "delivery_ms": 1_796_130_000_000} in meta["instruments"]
    after = state["id"]
    small_book(web)
    status, body = get(web, f"/api/poll?after={after}&wait=2")
    got = json.loads(body)
    books = {m["symbol"]: m for m in got["messages"] if m["type"] == "Book"}  # the last Book of each symbol wins
    assert books[SYMBOL]["bids"] == [[2450, 5, 1], [2440, 7, 1]] and books[SYMBOL]["asks"] == [[2500, 1, 1],
                                                                                              [2510, 4, 1]]
    assert books[SYMBOL]["last"][:2] == [2500, 2] and books[SYMBOL]["volume"] == 2
    trades = [m for m in got["messages"] if m["type"] == "Trade"]
    assert [(t["symbol"], t["price"], t["qty"], t["side"]) for t in trades] == [(SYMBOL, 2500, 2, 0)]
    # anything published is forwarded as is, and kept for new browsers
    web.bridge.publish({"type": "Notice", "text": "maintenance at 18:00"})
    status, body = get(web, f"/api/poll?after={got['id']}&wait=2")
    assert json.loads(body)["messages"] == [{"type": "Notice", "text": "maintenance at 18:00"}]
    assert web.bridge.state()["recent"][-1]["type"] == "Notice"
    # an auction from the feed: the Books carry the prices, the result follows; the State keeps both
    web.publish_auction({SYMBOL: (2470, 12)}, 1, surplus=5000, accepted=2)
    state = web.wait(lambda s: s["auctions"][0] is not None, "no auction result reached the bridge")
    assert next(b for b in state["books"] if b["symbol"] == SYMBOL)["auction"] == {"auction": 1, "price": 2470,
                                                                                  "qty": 12}
    result = state["auctions"][0]
    assert (result["type"], result["symbol"], result["auction"], result["surplus"], result["accepted"]) == (
        "AuctionResult", "AUCTION", 1, 5000, 2) and state["auctions"][1] is None
    # an id older than the ring (or -1) gets a State instead
    status, body = get(web, "/api/poll?after=-1&wait=0")
    assert json.loads(body)["messages"][0]["type"] == "State"


def test_a_bridge_started_after_an_auction_learns_it_from_the_snapshot(web):
    web.publish_auction({SYMBOL: (2470, 12)}, 5, accepted=1)
    web.publish_auction({SYMBOL: (2475, 3)}, 6, indicative=1)
    late = WebBridge(web.publisher.endpoint, web.publisher.snapshot_endpoint, flush_s=0.05, heartbeat_timeout_s=600,
                     ctx=web.ctx).start()
    try:
        deadline = time.monotonic() + 10
        while not ((state := late.state())["synced"] and state["auctions"][1] is not None):
            assert time.monotonic() < deadline, "the late bridge never showed the auction"
            time.sleep(0.01)
    finally:
        late.stop()
    assert [(r["auction"], r["indicative"], r["accepted"]) for r in state["auctions"]] == [(5, 0, 1), (6, 1, 0)]
    book = next(b for b in state["books"] if b["symbol"] == SYMBOL)
    assert (book["auction"], book["indicative"]) == ({"auction": 5, "price": 2470, "qty": 12},
                                                     {"auction": 6, "price": 2475, "qty": 3})


def test_server_sent_events_start_with_the_state_then_stream_batches(web):
    c = http.client.HTTPConnection("127.0.0.1", web.server.port, timeout=5)
    c.request("GET", "/api/events")
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"

    def next_data() -> list:
        while True:
            line = r.fp.readline()
            assert line, "stream closed"
            if line.startswith(b"data: "):
                return json.loads(line[6:])

    assert next_data()[0]["type"] == "State"
    small_book(web)
    seen, deadline = [], time.monotonic() + 10
    while not any(m["type"] == "Trade" for m in seen):
        assert time.monotonic() < deadline, f"no trade streamed: {seen}"
        seen += next_data()
    assert any(m["type"] == "Book" and m["symbol"] == SYMBOL for m in seen)
    c.close()


def test_only_loopback_host_names_are_served(web):
    assert get(web, "/", host="evil.example:80")[0] == 403
    status, body = get(web, "/")
    assert status == 200 and b"Depth ladder" in body and b"http://" not in body and b"https://" not in body
    assert get(web, "/nothing")[0] == 404


def test_cx_web_is_registered_and_runs_for_a_while(web, capsys):
    assert cli.main(["web", "--port", "0", "--feed", web.publisher.endpoint, "--snapshots",
                     web.publisher.snapshot_endpoint, "--seconds", "0.3"]) == 0
    assert "cx web: http://127.0.0.1:" in capsys.readouterr().out


def _dom(chromium, web, tmp_path, name: str) -> str:
    url = f"{web.server.url}?transport=poll&wait=0.2&gap=400#{SYMBOL}"
    dom = run_chromium(chromium, url, tmp_path / name, "--dump-dom", budget_ms=3000)
    return re.sub(r"<script>.*?</script>", "", dom, flags=re.S)  # the rendered elements, not the page's code


def test_the_page_in_headless_chromium(chromium, web, tmp_path):
    small_book(web)
    dom = _dom(chromium, web, tmp_path, "p1")
    # (a) the ladder of the chosen instrument, in dollars and GPUs
    ladder = re.search(r'<tbody id="ladder-body">(.*?)</tbody>', dom, re.S).group(1)
    rows = re.findall(r'<tr class="(bid|ask)" data-price="(\d+)" data-qty="(\d+)">(.*?)</tr>', ladder, re.S)
    assert [(side, price, qty) for side, price, qty, _ in rows] == [
        ("ask", "2510", "4"), ("ask", "2500", "1"), ("bid", "2450", "5"), ("bid", "2440", "7")]
    assert [re.search(r'class="price">([^<]*)<', html).group(1) for *_, html in rows] == [
        "2.510", "2.500", "2.450", "2.440"]
    assert "spread $0.050" in ladder
    assert f'<option value="{SYMBOL}">H100 · US-EAST · FIRM · Dec 1 13:00 UTC</option>' in dom
    # (b) the forward curve has the traded H100 hour as a "last" point, B200 as a mid quote
    h100 = re.search(r'<svg[^>]*data-accelerator="H100".*?</svg>', dom, re.S).group(0)
    assert re.search(rf'<circle[^>]*data-symbol="{re.escape(SYMBOL)}" data-kind="last" data-price="2500"', h100)
    b200 = re.search(r'<svg[^>]*data-accelerator="B200".*?</svg>', dom, re.S).group(0)
    assert re.search(rf'<circle[^>]*data-symbol="{re.escape(OTHER)}" data-kind="mid" data-price="5150"', b200)
    # (d) the trade
    trades = re.findall(r'<tr class="trade" data-symbol="([^"]+)"[^>]*>(.*?)</tr>', dom, re.S)
    assert len(trades) == 1 and trades[0][0] == SYMBOL
    cells = re.findall(r"<td[^>]*>(.*?)</td>", trades[0][1], re.S)
    assert "BUY" in cells[2] and cells[3] == "2" and cells[4] == "2.500" and cells[5] == "5.00"
    # (c) no auction yet
    assert "no auction yet" in dom
    # the indicator: the page's link and the bridge's feed are both live
    assert '<div id="conn" class="live">live</div>' in dom
    # a screenshot (1280 x 900) is a non-empty PNG
    png = tmp_path / "web.png"
    run_chromium(chromium, f"{web.server.url}?transport=poll&wait=0.2&gap=400#{SYMBOL}", tmp_path / "p2",
                 f"--screenshot={png}", "--window-size=1280,900", budget_ms=3000)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    # an auction on the feed: its summary and allocation (by accelerator, then hour), then the next auction's
    # indicative prices; the curve marks the clearing prices
    later = SYMBOL[:-2] + "14"
    web.publisher.auction_solve_us = lambda auction, indicative: 12_345
    web.publish_auction({SYMBOL: (2470, 12), later: (2490, 8), OTHER: (5120, 30)}, 42, surplus=98_765, accepted=3,
                        not_accepted=1, ir_cost=250)
    web.publish_auction({SYMBOL: (2480, 4)}, 43, indicative=1, accepted=1)
    web.wait(lambda s: s["auctions"][1] is not None, "the indicative result did not reach the bridge")
    dom = _dom(chromium, web, tmp_path, "p3")
    auction = re.search(r'<div id="auction">(.*?)</section>', dom, re.S).group(1)
    assert "no auction yet" not in auction
    summary = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", auction))
    assert (summary["Auction"], summary["Status"], summary["Surplus"], summary["Packages"], summary["Lost to IR"],
            summary["Solve time"]) == ("#42", "optimal", "$98.765", "3 accepted · 1 not", "$0.250", "12.3 ms")
    tables = re.findall(r'<table class="allocation" data-kind="(\w+)" data-accelerator="(\w+)">(.*?)</table>', auction,
                        re.S)
    rows = [(kind, acc, re.findall(r'<tr class="auction-price" data-symbol="([^"]+)" data-price="(\d+)" '
                                   r'data-qty="(\d+)">', body)) for kind, acc, body in tables]
    assert rows == [("auction", "B200", [(OTHER, "5120", "30")]),
                    ("auction", "H100", [(SYMBOL, "2470", "12"), (later, "2490", "8")]),
                    ("indicative", "H100", [(SYMBOL, "2480", "4")])]
    assert "Indicative prices of auction #43" in auction
    h100 = re.search(r'<svg[^>]*data-accelerator="H100".*?</svg>', dom, re.S).group(0)
    assert re.search(rf'<rect[^>]*data-symbol="{re.escape(later)}" data-kind="auction" data-price="2490"', h100)


def test_urlopen_gets_the_page(web):
    with urllib.request.urlopen(web.server.url, timeout=5) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")


def test_the_page_is_told_when_its_feed_goes_stale_and_the_state_says_so(web):
    watcher = WebBridge(web.publisher.endpoint, web.publisher.snapshot_endpoint, flush_s=0.05, heartbeat_timeout_s=1.5,
                        ctx=web.ctx).start()
    try:
        deadline = time.monotonic() + 10
        while watcher.state()["feed"] != "live":
            assert time.monotonic() < deadline, "the bridge never went live"
            time.sleep(0.02)
        mark = watcher.state()["id"]
        web.publisher.stop()  # the venue's feed goes silent: no heartbeat, no data
        while watcher.state()["feed"] != "stale":
            assert time.monotonic() < deadline + 10, "a silent feed was never marked stale"
            time.sleep(0.05)
        told = [m for _, data in watcher.batches_after(mark, 0) for m in json.loads(data)]
        assert {"type": "Feed", "state": "stale"} in told
    finally:
        watcher.stop()


def test_the_page_shows_a_stale_feed_in_headless_chromium(chromium, web, tmp_path):
    watcher = WebBridge(web.publisher.endpoint, web.publisher.snapshot_endpoint, flush_s=0.05, heartbeat_timeout_s=1.0,
                        ctx=web.ctx).start()
    server = WebServer(watcher, 0, keepalive_s=1.0).start()
    try:
        deadline = time.monotonic() + 10
        while watcher.state()["feed"] != "live":
            assert time.monotonic() < deadline, "the bridge never went live"
            time.sleep(0.02)
        web.publisher.stop()
        while watcher.state()["feed"] != "stale":
            assert time.monotonic() < deadline + 10, "a silent feed was never marked stale"
            time.sleep(0.05)
        dom = run_chromium(chromium, f"{server.url}?transport=poll&wait=0.2&gap=400", tmp_path / "stale",
                           "--dump-dom", budget_ms=2000)
    finally:
        server.stop()
        watcher.stop()
    assert '<div id="conn" class="stale">stale: no market data from the venue</div>' in dom
