"""The retry policy on its own: Retry-After parsing, backoff bounds, the attempt budget."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from gateway.providers.retry import Attempts, RetryPolicy, retry_after_seconds

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("retry_after", "retry_after_ms", "expected"),
    [
        ("3", None, 3.0),
        (" 0 ", None, 0.0),
        (format_datetime(datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC), usegmt=True), None, 30.0),
        ("Sun, 01 Mar 2026 11:59:00 GMT", None, 0.0),  # a date already past: retry now
        ("Sunday, 01-Mar-26 12:00:10 GMT", None, 10.0),  # the obsolete RFC 850 form
        ("soon", None, None),
        ("-5", None, None),
        ("", None, None),
        (None, None, None),
        ("3", "1500", 1.5),  # OpenAI's millisecond header is the more precise one
        ("3", "junk", 3.0),
        ("3", "-1", 3.0),
    ],
)
def test_retry_after(
    retry_after: str | None, retry_after_ms: str | None, expected: float | None
) -> None:
    assert retry_after_seconds(retry_after, retry_after_ms, now=NOW) == expected


@pytest.mark.parametrize("unit_random", [0.0, 0.5, 0.999])
def test_backoff_doubles_with_jitter_and_is_capped(unit_random: float) -> None:
    policy = RetryPolicy(max_retries=10, base_delay=0.5, max_delay=3.0)
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0]
    for retry, ceiling in enumerate(ceilings, start=1):
        delay = policy.backoff(retry, unit_random)
        assert ceiling / 2 <= delay <= ceiling


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def attempts(max_retries: int = 2, *, budget: float = 60.0) -> tuple[Attempts, Clock]:
    clock = Clock()
    policy = RetryPolicy(max_retries=max_retries, base_delay=1.0, max_delay=8.0)
    tracker = Attempts(policy, deadline=clock.now + budget, clock=clock, unit_random=lambda: 1.0)
    return tracker, clock


def test_gives_up_after_max_retries() -> None:
    tracker, _ = attempts(max_retries=2)
    delays = []
    for _ in range(3):
        tracker.start()
        delays.append(tracker.delay_before_retry(None))
    assert delays == [1.0, 2.0, None]
    assert tracker.count == 3


def test_retry_after_replaces_the_backoff() -> None:
    tracker, _ = attempts()
    tracker.start()
    assert tracker.delay_before_retry(7.0) == 7.0
    tracker.start()
    assert tracker.delay_before_retry(0.0) == 0.0


def test_no_wait_that_would_outlast_the_deadline() -> None:
    tracker, clock = attempts(max_retries=5, budget=10.0)
    tracker.start()
    assert tracker.delay_before_retry(30.0) is None  # Retry-After beyond the budget
    assert tracker.delay_before_retry(9.0) == 9.0
    clock.now += 9.5
    assert tracker.delay_before_retry(None) is None  # even the 1 s backoff is too long now
    assert tracker.remaining() == pytest.approx(0.5)


def test_zero_retries_means_one_attempt() -> None:
    tracker, _ = attempts(max_retries=0)
    tracker.start()
    assert tracker.delay_before_retry(None) is None
