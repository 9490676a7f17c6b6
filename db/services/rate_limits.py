"""Rate limits per caller, shared by every process, at no round trip in the common case.

Three limits (RateLimits; 0 switches one off):
- requests per minute per credential (`Caller.credential`, else the user id), checked
  once per authenticated request by the doors (`admit_request`);
- model replies per minute per credential, checked where a turn starts (`admit_reply`,
  in `turns.run_turn`, both doors, streamed or not); an idempotent retry whose answer was
  already stored gives its count back (`refund_reply`);
- open streamed replies per user (`streaming`/`open_stream`): REST event streams and the
  GraphQL sendMessageStream/replyStream subscriptions.

How the per-minute counts are shared (`db.rate_stores`: PostgreSQL `rate_windows`, Redis
with REDIS_URL, memory on SQLite's one process). Fixed 60 s windows, the previous one
weighted by how much of it the sliding minute still covers. Each process counts its own
hits locally and decides from the last shared total it saw plus its unsent hits; a
background task sends every pending delta every RATE_LIMIT_FLUSH_SECONDS in ONE
statement (or one Redis pipeline) that returns the new totals, refreshing what this
process knows of the others (and sooner, never more than every 50 ms, once a counter has
spent half its local share). A request goes to the store itself only near its limit:
once this process's unsent hits would pass a quarter of what was left when it last saw
the total (LOCAL_SHARE), or within 10% of the limit; that step adds the hit and reads
the exact total, in one round trip. What this process knows is a lower bound, so a
request over it is refused without asking anyone. The slack: while deciding locally,
each other process may admit at most a quarter of what it last saw left before it asks
the store, so N processes admit at most the limit plus (N - 1) quarters of it (two:
1.25 times the limit) in the worst burst, and exactly the limit once the flushes catch
up. A refused request is given back, so a client hammering at its limit is not locked
out for longer. Expired rows are pruned in batches of PRUNE_BATCH in the background. A
store that cannot be reached fails open: requests are admitted on local counts, with a
warning logged at most once a minute.

Streams are counted exactly, at one short transaction per stream opened (a stream is
costly anyway): each open stream is an entry of its own (a `rate_windows` row
"stream:<user>:<id>", or a member of the user's Redis sorted set) with an expiry renewed
by the background task while it lasts; opening one inserts it and counts the user's live
entries under a per-user lock (PostgreSQL: an advisory lock, then one statement; Redis: a
MULTI pipeline), so opens at once admit no more than the limit, and takes it back out if
that is over the limit. Closing
forgets it in the background (and at this process's next open for the user, in the same
statement). A process that dies leaves its streams counted until they expire
(STREAM_TTL), not forever; leases (db/services/leases.py) were not reused because a
resumed stream (replyStream) holds no lease and a turn's lease outlives its listener.

Every refusal is written to the operation log, at most one entry per limit and caller a
minute (then a summary of how many more), naming the key id, never a secret.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from db.errors import RateLimited
from db.identity import Caller
from db.models import LogLevel
from db.rate_stores import RateStore
from db.services import logs

logger = logging.getLogger("gateway.rate_limits")

WINDOW_SECONDS = 60
# A counter row lives through its own window and the next, which weighs it.
COUNTER_TTL = 2 * WINDOW_SECONDS
# An open stream's entry lasts this long unless renewed (every third of it).
STREAM_TTL = 30.0
# What a client refused a stream is told to wait: streams end when their replies do.
STREAM_RETRY_AFTER = 5
# Within this share of the limit, every request is decided by the store.
NEAR_LIMIT_SHARE = 0.1
# A process admits on its own at most this share of what was left when it last saw the
# shared total; then it asks the store (and learns the total again).
LOCAL_SHARE = 0.25
# The background flush runs early when a counter spent half its local share, but never
# more often than this.
EARLY_FLUSH_GAP = 0.05
PRUNE_EVERY_SECONDS = 30.0
PRUNE_BATCH = 500
# A store that is down is reported at most this often.
WARN_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits; field names are the settings' names. 0 means no limit."""

    rate_limit_per_minute: int = 600
    reply_rate_limit_per_minute: int = 60
    max_streams_per_user: int = 4
    rate_limit_flush_seconds: float = 0.5


@dataclass(frozen=True, slots=True)
class Quota:
    """Where a caller stands after a request: for the RateLimit-* headers."""

    limit: int
    remaining: int
    reset: int  # whole seconds until the current window ends


@dataclass(slots=True)
class _Counter:
    """One limit of one caller, as this process knows it."""

    window: int
    previous: int = 0  # the previous window's shared total, as last seen
    known: int = 0  # this window's shared total, as last seen
    inflight: int = 0  # hits being sent by the background flush
    unsent: int = 0  # hits counted here, not sent yet


@dataclass(slots=True)
class _Refusals:
    window: int
    count: int
    user_id: str


@dataclass
class _Limiter:
    limits: RateLimits
    store: RateStore
    clock: Callable[[], float]
    counters: dict[tuple[str, str], _Counter] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)
    streams: dict[str, set[str]] = field(default_factory=dict)
    closing: dict[str, list[str]] = field(default_factory=dict)
    refusals: dict[tuple[str, str], _Refusals] = field(default_factory=dict)
    writes: set[asyncio.Task[None]] = field(default_factory=set)
    streams_renewed_at: float = 0.0
    warned_at: float = -math.inf
    # Whether this process wrote to the store since it last pruned it.
    wrote: bool = False
    # Set to flush before the interval is over.
    wake: asyncio.Event = field(default_factory=asyncio.Event)


_active: _Limiter | None = None


def _key(kind: str, ident: str, window: int) -> str:
    return f"{kind}:{ident}:{window}"


def _ident(caller: Caller) -> str:
    return caller.credential or caller.user_id


async def admit_request(caller: Caller) -> Quota | None:
    """Count one request of `caller`; raises `RateLimited` over RATE_LIMIT_PER_MINUTE.
    None when the limit is off (or no limiter runs, as in most service tests)."""
    limiter = _active
    if limiter is None or limiter.limits.rate_limit_per_minute <= 0:
        return None
    return await _admit(limiter, "req", caller, limiter.limits.rate_limit_per_minute)


def standing(caller: Caller) -> Quota | None:
    """Where `caller` stands against RATE_LIMIT_PER_MINUTE, from this process's counts
    (no round trip): right after `admit_request`, what it decided."""
    limiter = _active
    limit = limiter.limits.rate_limit_per_minute if limiter is not None else 0
    if limiter is None or limit <= 0:
        return None
    counter = limiter.counters.get(("req", _ident(caller)))
    now = limiter.clock()
    window = _window(now)
    if counter is None or counter.window != window:
        return _quota(limit, 0, window, now)
    weight = 1.0 - (now - window * WINDOW_SECONDS) / WINDOW_SECONDS
    used = counter.previous * weight + counter.known + counter.inflight + counter.unsent
    return _quota(limit, used, window, now)


async def admit_reply(caller: Caller) -> None:
    """Count one request for a model reply; raises `RateLimited` over the reply limit."""
    limiter = _active
    if limiter is None or limiter.limits.reply_rate_limit_per_minute <= 0:
        return
    await _admit(limiter, "reply", caller, limiter.limits.reply_rate_limit_per_minute)


def refund_reply(caller: Caller) -> None:
    """Give back the count of a send that asked no model (its answer was stored already)."""
    limiter = _active
    if limiter is None or limiter.limits.reply_rate_limit_per_minute <= 0:
        return
    counter = limiter.counters.get(("reply", _ident(caller)))
    if counter is not None and counter.window == _window(limiter.clock()):
        _count(limiter, "reply", _ident(caller), counter, -1)


def _window(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def _counter(limiter: _Limiter, kind: str, ident: str, window: int) -> _Counter:
    counter = limiter.counters.get((kind, ident))
    if counter is None:
        counter = limiter.counters[(kind, ident)] = _Counter(window=window)
    elif counter.window != window:
        # A new window: this one's total (best known) becomes the weighed previous one.
        total = counter.known + counter.inflight + counter.unsent
        counter.previous = total if window == counter.window + 1 else 0
        counter.window, counter.known, counter.inflight, counter.unsent = window, 0, 0, 0
    return counter


def _count(limiter: _Limiter, kind: str, ident: str, counter: _Counter, hits: int) -> None:
    counter.unsent += hits
    key = _key(kind, ident, counter.window)
    limiter.pending[key] = limiter.pending.get(key, 0) + hits


async def _admit(limiter: _Limiter, kind: str, caller: Caller, limit: int) -> Quota:
    ident = _ident(caller)
    now = limiter.clock()
    window = _window(now)
    counter = _counter(limiter, kind, ident, window)
    weight = 1.0 - (now - window * WINDOW_SECONDS) / WINDOW_SECONDS
    seen = counter.previous * weight + counter.known
    local = counter.inflight + counter.unsent
    if seen + local + 1 > limit:
        # What this process knows is a lower bound of the truth: refuse without asking.
        _refuse(limiter, kind, caller, limit)
        raise RateLimited(_message(kind, limit), retry_after=_retry_after(counter, limit, now))
    margin = max(1.0, limit * NEAR_LIMIT_SHARE)
    budget = (limit - seen) * LOCAL_SHARE
    if local + 1 <= budget and seen + local + 1 <= limit - margin:
        _count(limiter, kind, ident, counter, 1)
        if local + 1 >= budget / 2:
            limiter.wake.set()  # half of it spent: refresh what we know soon, in the background
        return _quota(limit, seen + local + 1, window, now)
    return await _admit_by_store(limiter, kind, caller, limit, counter, now)


async def _admit_by_store(
    limiter: _Limiter, kind: str, caller: Caller, limit: int, counter: _Counter, now: float
) -> Quota:
    """Near the limit: add the hit (with this counter's unsent ones) and read the totals."""
    ident = _ident(caller)
    window = counter.window
    key, previous_key = _key(kind, ident, window), _key(kind, ident, window - 1)
    sending = limiter.pending.pop(key, 0) + 1
    # Refunds still owed to the previous window go too: the total read back is exact.
    owed = limiter.pending.pop(previous_key, 0)
    counter.unsent -= sending - 1
    counter.inflight += sending
    limiter.wrote = True
    try:
        totals = await limiter.store.add({key: sending, previous_key: owed}, ttl=COUNTER_TTL)
    except Exception as exc:
        _store_down(limiter, exc)
        if owed:
            limiter.pending[previous_key] = limiter.pending.get(previous_key, 0) + owed
        if counter.window == window:
            counter.inflight -= sending
            _count(limiter, kind, ident, counter, sending)
        else:
            limiter.pending[key] = limiter.pending.get(key, 0) + sending
        return _quota(limit, counter.previous + counter.known + counter.unsent, window, now)
    if counter.window != window:  # the window turned meanwhile: the hit counts anyway
        return _quota(limit, totals.get(key, 0), counter.window, now)
    counter.inflight -= sending
    counter.known = totals.get(key, counter.known + sending)
    counter.previous = totals.get(previous_key, counter.previous)
    weight = 1.0 - (now - window * WINDOW_SECONDS) / WINDOW_SECONDS
    estimate = counter.previous * weight + counter.known + counter.inflight + counter.unsent
    if estimate > limit:
        _count(limiter, kind, ident, counter, -1)  # a refused request is not counted
        _refuse(limiter, kind, caller, limit)
        raise RateLimited(_message(kind, limit), retry_after=_retry_after(counter, limit, now))
    return _quota(limit, estimate, window, now)


def _quota(limit: int, used: float, window: int, now: float) -> Quota:
    reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    return Quota(limit=limit, remaining=max(0, limit - math.ceil(used)), reset=reset)


def _retry_after(counter: _Counter, limit: int, now: float) -> int:
    """Whole seconds until one more request fits the sliding minute, were nothing else sent."""
    start = counter.window * WINDOW_SECONDS
    current = counter.known + counter.inflight + counter.unsent
    if current + 1 > limit:
        # Only once this window is the previous one and weighs little enough.
        share = 1.0 - (limit - 1) / current if current else 0.0
        wait = start + WINDOW_SECONDS + share * WINDOW_SECONDS - now
    elif counter.previous:
        share = 1.0 - (limit - 1 - current) / counter.previous
        wait = start + share * WINDOW_SECONDS - now
    else:
        wait = 1.0
    return max(1, math.ceil(wait))


def _message(kind: str, limit: int) -> str:
    what = "requests" if kind == "req" else "model replies"
    return f"rate limit exceeded: at most {limit} {what} a minute"


@dataclass(slots=True)
class StreamSlot:
    """One open stream counted against its user's limit; `release` it exactly once."""

    user_id: str = ""
    name: str = ""
    released: bool = False
    limiter: _Limiter | None = None  # the one that counted it

    def release(self) -> None:
        if self.released or self.limiter is None:
            return
        self.released = True
        limiter = self.limiter
        live = limiter.streams.get(self.user_id)
        if live is not None:
            live.discard(self.name)
            if not live:
                del limiter.streams[self.user_id]
        limiter.closing.setdefault(self.user_id, []).append(self.name)


async def open_stream(caller: Caller) -> StreamSlot:
    """Count a stream of `caller`'s user; raises `RateLimited` over MAX_STREAMS_PER_USER."""
    limiter = _active
    if limiter is None or limiter.limits.max_streams_per_user <= 0:
        return StreamSlot()
    limit = limiter.limits.max_streams_per_user
    user = caller.user_id
    name = uuid.uuid4().hex
    closing = limiter.closing.pop(user, [])
    limiter.wrote = True
    try:
        count = await limiter.store.open_stream(user, name, ttl=STREAM_TTL, closing=closing)
    except Exception as exc:
        _store_down(limiter, exc)
        limiter.closing.setdefault(user, []).extend(closing)
        count = len(limiter.streams.get(user, ())) + 1
    slot = StreamSlot(user_id=user, name=name, limiter=limiter)
    limiter.streams.setdefault(user, set()).add(name)
    if count > limit:
        slot.release()
        _refuse(limiter, "streams", caller, limit)
        raise RateLimited(
            f"rate limit exceeded: at most {limit} streamed replies open at once",
            retry_after=STREAM_RETRY_AFTER,
        )
    return slot


@asynccontextmanager
async def streaming(caller: Caller) -> AsyncIterator[None]:
    """Hold a stream slot of `caller`'s user while the block runs."""
    slot = await open_stream(caller)
    try:
        yield
    finally:
        slot.release()


def release_with(owner: object, slot: StreamSlot) -> None:
    """Release `slot` when `owner` (say a generator never started) is garbage collected."""
    if slot.limiter is not None:
        weakref.finalize(owner, slot.release)


def _refuse(limiter: _Limiter, kind: str, caller: Caller, limit: int) -> None:
    """Note a refusal in the log: the first of each minute at once, the rest as a summary."""
    ident = kind if kind == "streams" else _ident(caller)
    group = (kind, caller.user_id if kind == "streams" else ident)
    window = _window(limiter.clock())
    tally = limiter.refusals.get(group)
    if tally is not None and tally.window == window:
        tally.count += 1
        return
    if tally is not None:
        _write_summary(limiter, group, tally)
    limiter.refusals[group] = _Refusals(window=window, count=1, user_id=caller.user_id)
    _write(
        limiter,
        level=LogLevel.WARNING,
        message=f"rate limit hit: {_describe(kind, limit)} ({_whom(group)})",
        actor_id=caller.user_id,
        details={"limit": kind, "per_minute_or_open": limit, "caller": group[1]},
    )


def _describe(kind: str, limit: int) -> str:
    if kind == "streams":
        return f"{limit} open streams"
    return f"{limit} {'requests' if kind == 'req' else 'model replies'} a minute"


def _whom(group: tuple[str, str]) -> str:
    return f"user {group[1]}" if group[0] == "streams" else f"credential {group[1]}"


def _write_summary(limiter: _Limiter, group: tuple[str, str], tally: _Refusals) -> None:
    if tally.count > 1:
        _write(
            limiter,
            level=LogLevel.WARNING,
            message=(
                f"rate limit hit {tally.count - 1} more times in that minute ({_whom(group)})"
            ),
            actor_id=tally.user_id,
            details={"limit": group[0], "caller": group[1], "count": tally.count - 1},
        )


def _write(limiter: _Limiter, **entry: Any) -> None:
    task = asyncio.get_running_loop().create_task(logs.record(event="rate_limit.hit", **entry))
    limiter.writes.add(task)
    task.add_done_callback(limiter.writes.discard)


def _store_down(limiter: _Limiter, exc: Exception) -> None:
    now = time.monotonic()
    if now - limiter.warned_at >= WARN_EVERY_SECONDS:
        limiter.warned_at = now
        logger.warning("rate limit store unavailable, admitting on local counts: %r", exc)


async def flush(limiter: _Limiter | None = None) -> None:
    """Send every pending delta in one round trip and learn the totals; renew and close
    streams; summarise refusals of past minutes."""
    limiter = limiter or _active
    if limiter is None:
        return
    await _flush_counters(limiter)
    await _flush_streams(limiter)
    window = _window(limiter.clock())
    for group, tally in list(limiter.refusals.items()):
        if tally.window < window:
            del limiter.refusals[group]
            _write_summary(limiter, group, tally)


async def _flush_counters(limiter: _Limiter) -> None:
    batch, limiter.pending = {k: v for k, v in limiter.pending.items() if v}, {}
    if not batch:
        return
    sent: list[tuple[_Counter, int, int]] = []
    for key, delta in batch.items():
        kind, ident, window = _split(key)
        counter = limiter.counters.get((kind, ident))
        if counter is not None and counter.window == window:
            counter.unsent -= delta
            counter.inflight += delta
            sent.append((counter, window, delta))
    limiter.wrote = True
    try:
        totals = await limiter.store.add(batch, ttl=COUNTER_TTL)
    except Exception as exc:
        _store_down(limiter, exc)
        for counter, window, delta in sent:
            counter.inflight -= delta
            if counter.window == window:
                counter.unsent += delta
        current = _window(limiter.clock())
        for key, delta in batch.items():  # kept for the next flush, while still weighed
            if _split(key)[2] >= current - 1:
                limiter.pending[key] = limiter.pending.get(key, 0) + delta
        return
    for counter, window, delta in sent:
        if counter.window == window:
            counter.inflight -= delta
    for key, total in totals.items():
        kind, ident, window = _split(key)
        counter = limiter.counters.get((kind, ident))
        if counter is None:
            continue
        if counter.window == window:
            counter.known = total
        elif counter.window == window + 1:
            counter.previous = total


def _split(key: str) -> tuple[str, str, int]:
    kind, rest = key.split(":", 1)
    ident, window = rest.rsplit(":", 1)
    return kind, ident, int(window)


async def _flush_streams(limiter: _Limiter) -> None:
    closing, limiter.closing = limiter.closing, {}
    try:
        if closing:
            await limiter.store.close_streams(closing)
        now = time.monotonic()
        if limiter.streams and now - limiter.streams_renewed_at >= STREAM_TTL / 3:
            limiter.streams_renewed_at = now
            live = {user: sorted(names) for user, names in limiter.streams.items()}
            await limiter.store.renew_streams(live, ttl=STREAM_TTL)
    except Exception as exc:
        _store_down(limiter, exc)
        for user, names in closing.items():
            limiter.closing.setdefault(user, []).extend(names)


def _forget_idle(limiter: _Limiter) -> None:
    """Drop counters no longer weighed, so memory follows the active callers."""
    window = _window(limiter.clock())
    for key, counter in list(limiter.counters.items()):
        idle = counter.window < window - 1 and not (counter.unsent or counter.inflight)
        if idle:
            del limiter.counters[key]


@asynccontextmanager
async def running(
    *, limits: RateLimits, store: RateStore, clock: Callable[[], float] = time.time
) -> AsyncIterator[None]:
    """Enforce `limits` in this process, sharing counts through `store`, while open."""
    global _active
    limiter = _Limiter(limits=limits, store=store, clock=clock)

    async def loop() -> None:
        pruned_at = time.monotonic()
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(limits.rate_limit_flush_seconds):
                    await limiter.wake.wait()
            if limiter.wake.is_set():
                limiter.wake.clear()
                await asyncio.sleep(EARLY_FLUSH_GAP)
            await flush(limiter)
            _forget_idle(limiter)
            if limiter.wrote and time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
                pruned_at, limiter.wrote = time.monotonic(), False
                try:
                    await store.prune(batch=PRUNE_BATCH)
                except Exception as exc:
                    _store_down(limiter, exc)

    previous, _active = _active, limiter
    # With every limit off there is nothing to send: no task, no statement.
    counted = (limits.rate_limit_per_minute, limits.reply_rate_limit_per_minute)
    on = any(counted) or limits.max_streams_per_user
    task = asyncio.create_task(loop(), name="rate-limit-flush") if on else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        for slot_user, names in list(limiter.streams.items()):
            limiter.closing.setdefault(slot_user, []).extend(names)
        limiter.streams.clear()
        with suppress(Exception):
            await flush(limiter)
        if limiter.writes:
            await asyncio.gather(*tuple(limiter.writes), return_exceptions=True)
        _active = previous
        await store.aclose()
