"""gateway.waiting: tools wait for a starting venue, say so once and then every 10 s, and give up on time."""

from __future__ import annotations

import io

from gateway.waiting import wait_for


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_waits_saying_so_every_ten_seconds_until_the_venue_answers():
    clock, out, asked = Clock(), io.StringIO(), []

    def attempt(seconds: float):
        asked.append(seconds)
        clock.now += seconds
        return "answer" if clock.now >= 25 else None

    assert wait_for(attempt, "cx top", "a snapshot from X", 120, out, clock) == "answer"
    lines = out.getvalue().splitlines()
    assert lines == ["cx top: waiting for the venue (a snapshot from X), for 120 s at most (--venue-timeout)",
                     "cx top: still waiting for the venue (a snapshot from X): 12 s of 120 s",
                     "cx top: still waiting for the venue (a snapshot from X): 22 s of 120 s"]
    assert max(asked) == 1.0  # one attempt per second at most


def test_gives_up_after_its_timeout_and_never_asks_past_it():
    clock, out, asked = Clock(), io.StringIO(), []

    def attempt(seconds: float):
        asked.append(seconds)
        clock.now += seconds
        return None

    assert wait_for(attempt, "cx status", "the admin endpoint X", 2.5, out, clock, attempt_s=2.0) is None
    assert clock.now == 2.5 and asked == [2.0, 0.5]
    assert out.getvalue().splitlines() == [
        "cx status: waiting for the venue (the admin endpoint X), for 2.5 s at most (--venue-timeout)"]


def test_an_answer_at_once_or_within_two_seconds_says_nothing():
    out = io.StringIO()
    assert wait_for(lambda s: 7, "cx feed", "x", 120, out, Clock()) == 7
    clock = Clock()

    def soon(seconds: float):
        clock.now += seconds
        return "snapshot" if clock.now >= 1.5 else None

    assert wait_for(soon, "cx feed", "x", 120, out, clock) == "snapshot"
    assert out.getvalue() == ""
