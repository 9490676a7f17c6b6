"""Keeping this process in step with the others that share the database.

For the life of the app: the event broker listens (on PostgreSQL, one connection per
process), this process obeys stop requests for its turns, drops clients of model
configs changed anywhere and forgets API keys revoked anywhere, and expired reply buffers
and event payloads are swept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from db.pg_events import PostgresBroker
from db.ports import Runtime
from db.services import model_configs, reply_buffer, reply_runs, users

logger = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 60.0


@asynccontextmanager
async def shared(runtime: Runtime) -> AsyncIterator[None]:
    """Run the broker and the followers; every follower listens before the app serves."""
    broker = runtime.events if isinstance(runtime.events, PostgresBroker) else None
    if broker is not None:
        await broker.start()
    followers: list[Callable[[Runtime, asyncio.Event], Awaitable[None]]] = [
        reply_runs.obey_stop_requests,
        model_configs.follow_changes,
        users.follow_revocations,
    ]
    tasks: list[asyncio.Task[None]] = []
    try:
        for follower in followers:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(_keep_following(follower, runtime, ready)))
            await ready.wait()
        tasks.append(asyncio.create_task(_sweep_regularly(broker)))
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        if broker is not None:
            await broker.aclose()


async def _keep_following(
    follower: Callable[[Runtime, asyncio.Event], Awaitable[None]],
    runtime: Runtime,
    ready: asyncio.Event,
) -> None:
    # A subscription ends only if its subscriber fell too far behind: join again.
    while True:
        try:
            await follower(runtime, ready)
        except Exception as exc:
            logger.warning("a follower of shared events stopped (%s); joining again", exc)
            await asyncio.sleep(1.0)


async def _sweep_regularly(broker: PostgresBroker | None) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_SECONDS)
        try:
            await reply_buffer.sweep()
            if broker is not None:
                await broker.sweep()
        except Exception as exc:
            logger.warning("could not sweep expired buffers: %s", exc)
