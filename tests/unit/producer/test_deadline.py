"""When the producer hands a file on: the margin it keeps before its invocation's end."""

from __future__ import annotations

from producer.continuation import Deadline


class Clock:
    """A Lambda context whose remaining time the test sets."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)


def test_the_margin_is_the_setting_when_the_invocation_is_long_enough() -> None:
    clock = Clock(300)
    deadline = Deadline.of_context(clock, handoff_seconds=60)
    clock.seconds = 61
    assert not deadline.expiring()
    clock.seconds = 59
    assert deadline.expiring()


def test_a_timeout_shorter_than_twice_the_margin_still_streams_half_of_each_invocation() -> None:
    # GIVEN a function deployed with a 30 s timeout and the default 60 s margin
    clock = Clock(30)
    deadline = Deadline.of_context(clock, handoff_seconds=60)
    # THEN it streams until half the time is used, not one slice
    clock.seconds = 16
    assert not deadline.expiring()
    clock.seconds = 14
    assert deadline.expiring()


def test_without_a_context_there_is_no_deadline() -> None:
    assert not Deadline.of_context(None, handoff_seconds=60).expiring()
