"""Timeouts and the retry policy of network providers: when to ask again, and how long to wait."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Worth asking again: rate limited, or the server (or a proxy in front of it) failed.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class ProviderTimeouts:
    """Seconds. `read` bounds each wait for data (a keep-alive comment resets it);
    `total` bounds a whole reply: every attempt, every backoff and the streamed body."""

    connect: float = 10.0
    read: float = 60.0
    total: float = 180.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry n (1-based) waits a random time between half and all of
    `min(max_delay, base_delay * 2**(n-1))`, unless the server named a time (Retry-After)."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def backoff(self, retry: int, unit_random: float) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        # Half fixed, half random: spreads clients apart yet never retries at once.
        return ceiling * (0.5 + unit_random / 2)


def retry_after_seconds(
    retry_after: str | None, retry_after_ms: str | None = None, *, now: datetime | None = None
) -> float | None:
    """The wait a server asked for: `retry-after-ms` (OpenAI's), else `Retry-After` given
    as delay-seconds or as an HTTP date. None when absent or unreadable."""
    if retry_after_ms is not None:
        try:
            millis = float(retry_after_ms)
        except ValueError:
            millis = -1.0
        if 0 <= millis < float("inf"):
            return millis / 1000
    if retry_after is None or not retry_after.strip():
        return None
    value = retry_after.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; an obsolete format may parse naive
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Attempts:
    """The retry budget of one reply: counts attempts and guards the total-time deadline."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        deadline: float,
        clock: Callable[[], float],
        unit_random: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.deadline = deadline
        self.count = 0
        self._clock = clock
        self._random = unit_random

    def start(self) -> None:
        self.count += 1

    def remaining(self) -> float:
        return self.deadline - self._clock()

    def delay_before_retry(self, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None to give up.

        A wait that would end at or past the deadline is not worth starting: the attempt
        after it would have no time left, so we fail now with the real error instead.
        """
        if self.count > self.policy.max_retries:
            return None
        if retry_after is not None:
            delay = retry_after
        else:
            delay = self.policy.backoff(self.count, self._random())
        return delay if delay < self.remaining() else None
