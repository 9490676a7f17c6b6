"""One reply at a time per session, across every process sharing the database.

A turn holds a lease written into the session row by a conditional UPDATE, which works
the same on SQLite and PostgreSQL and needs no connection held open while the model
thinks. A heartbeat extends the lease; a crashed process's lease simply expires.
Waiters of one process queue on an asyncio.Lock so only one of them polls the database.
A lease that cannot be given back (the database is away) is given back in the background
as soon as the database answers again, so the session is not held until its lease expires.
The holder may give the lease back itself with its last write (`Lease.given_back`), which
saves the release its own round trip; the first attempt to take it may likewise be the
holder's own statement (`take_first`), which reads what the turn needs as it takes it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q

from db.errors import Busy, NotFound, ServiceError
from db.models import ChatSession

logger = logging.getLogger(__name__)

_local_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
# Releases retried in the background (a reference keeps each task alive until it ends).
_pending_releases: set[asyncio.Task[None]] = set()
RELEASE_RETRY_MAX_DELAY = 1.0


@dataclass(slots=True)
class Lease:
    """A held turn of a session. `token` names it (a stop request names it so); the
    holder sets `given_back` once a write of its own has cleared it."""

    session_id: str
    token: str
    given_back: bool = False


# A first attempt at taking the lease: (token, expiry) -> whether it was taken.
TakeFirst = Callable[[str, datetime], Awaitable[bool]]


@asynccontextmanager
async def exclusive(
    session_id: str,
    *,
    wait_seconds: float,
    lease_seconds: float,
    take_first: TakeFirst | None = None,
) -> AsyncIterator[Lease]:
    """Hold the session's turn for the duration of the block; `Busy` after `wait_seconds`.

    The lease lasts `lease_seconds` unless renewed: how long a dead process's turn blocks.
    `take_first`, when given, makes the first attempt (and may raise to refuse the turn);
    later attempts, while another turn holds the session, are this module's own."""
    lease = timedelta(seconds=lease_seconds)
    lock = _local_locks.get(session_id)
    if lock is None:
        lock = _local_locks[session_id] = asyncio.Lock()
    held = Lease(session_id=session_id, token=uuid.uuid4().hex)
    try:
        async with asyncio.timeout(wait_seconds):
            await lock.acquire()
            try:
                await _acquire(session_id, held.token, lease, take_first)
            except ServiceError:
                lock.release()  # refused (NotFound...): nothing was taken
                raise
            except BaseException:
                lock.release()
                # A statement that timed out or was cancelled may still take the lease
                # once the database gets to it: give it back whenever that is.
                _in_background(_release_after_failed_attempt(session_id, held.token, lease))
                raise
    except TimeoutError:
        raise Busy("the session is busy with another reply; retry later") from None
    heartbeat = asyncio.create_task(_keep_alive(held, lease))
    try:
        yield held
    finally:
        heartbeat.cancel()
        with suppress(asyncio.CancelledError):
            await heartbeat
        if not held.given_back:
            # Shielded: a cancelled turn must still give the session back.
            await asyncio.shield(_release(session_id, held.token, lease))
        lock.release()


async def _try_acquire(session_id: str, token: str, lease: timedelta) -> bool:
    now = datetime.now(UTC)
    taken = await ChatSession.filter(
        Q(id=session_id) & (Q(turn_token__isnull=True) | Q(turn_expires_at__lt=now))
    ).update(turn_token=token, turn_expires_at=now + lease)
    return taken == 1


async def _acquire(
    session_id: str, token: str, lease: timedelta, take_first: TakeFirst | None
) -> None:
    if take_first is not None and await take_first(token, datetime.now(UTC) + lease):
        return
    delay = 0.005
    while not await _try_acquire(session_id, token, lease):
        # A session deleted meanwhile (sessions.delete) would never be free again.
        if not await ChatSession.exists(id=session_id):
            raise NotFound("session not found")
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.25)


async def _keep_alive(held: Lease, lease: timedelta) -> None:
    session_id = held.session_id
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        if held.given_back:
            return
        try:
            kept = await ChatSession.filter(id=session_id, turn_token=held.token).update(
                turn_expires_at=datetime.now(UTC) + lease
            )
        except Exception:
            logger.exception("could not extend the turn lease of session %s", session_id)
            continue
        if not kept and not held.given_back:
            logger.warning("turn lease of session %s was lost", session_id)
            return


async def _give_back(session_id: str, token: str) -> None:
    # Only this turn's own lease: a later turn's is never touched.
    await ChatSession.filter(id=session_id, turn_token=token).update(
        turn_token=None, turn_expires_at=None
    )


async def _release(session_id: str, token: str, lease: timedelta) -> None:
    try:
        await _give_back(session_id, token)
    except Exception:
        logger.exception("could not release the turn lease of session %s", session_id)
    else:
        return
    # The turn ends now all the same (its caller must not wait for the database); the
    # lease is given back once the database answers, or expires by itself meanwhile.
    _in_background(_release_later(session_id, token, lease))


def held_here(session_id: str) -> bool:
    """Whether a turn of this process holds the session, or is taking it (others wait)."""
    lock = _local_locks.get(session_id)
    return lock is not None and lock.locked()


async def _release_after_failed_attempt(session_id: str, token: str, lease: timedelta) -> None:
    # When the abandoned statement commits is unknown (the database may be hung): give
    # back at growing intervals while the lease could still be alive; each try that
    # finds nothing of this token's clears nothing.
    for delay in (0.0, 0.5, 2.0, lease.total_seconds() / 3):
        await asyncio.sleep(delay)
        try:
            await _give_back(session_id, token)
        except Exception as exc:
            logger.info("turn lease of session %s not released yet (%s)", session_id, exc)


def _in_background(release: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(release)
    _pending_releases.add(task)
    task.add_done_callback(_pending_releases.discard)


async def _release_later(session_id: str, token: str, lease: timedelta) -> None:
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + lease.total_seconds()
    delay = 0.05
    while loop.time() < give_up_at:
        await asyncio.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, RELEASE_RETRY_MAX_DELAY)
        try:
            await _give_back(session_id, token)
        except Exception as exc:
            logger.info("turn lease of session %s not released yet (%s)", session_id, exc)
            continue
        logger.info("released the turn lease of session %s after a failure", session_id)
        return
