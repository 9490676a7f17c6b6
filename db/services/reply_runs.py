"""Turns run as tasks of this process, so a listener that leaves does not stop its reply.

A door starts a turn and follows what it reports; the turn goes on to its end (and is
stored) whether or not anyone still listens, and a listener that comes back through
this process joins it again (`find`). Only an explicit request stops a turn
(`stop_turn`, from any process through the event broker), and graceful shutdown
(`drain`) gives running turns a grace period before it stops them. A stopped reply is
stored with `finish_reason: "cancelled"` by the turn (`turns`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing

from db.errors import ReplyStopped, ServiceError
from db.ports import EventBroker, Runtime
from db.services.turn_events import AiMessageStored, LeaseHeld, ReplyPiece, TurnEvent

logger = logging.getLogger(__name__)

# The reasons a run's task is cancelled with, so the turn can tell them apart.
STOP_REQUESTED = "the reply was cancelled on request"
SHUTTING_DOWN = "the server is shutting down"
# Cancel requests travel to every process on this topic.
CONTROL_TOPIC = "turns"
# How long a stopped turn may take to store its partial reply at shutdown.
STORE_ON_STOP_SECONDS = 10.0


class Run:
    """One turn of one session, running in this process, with everything it reported."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.reply_id: str | None = None
        self.events: list[TurnEvent] = []
        self.error: BaseException | None = None
        self.finished = False
        self.followers = 0
        # The token of the session's turn lease, once this run holds it.
        self.lease: str | None = None
        self.stopping = False
        self._wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def follow(self) -> AsyncGenerator[TurnEvent]:
        """Every event of the turn from its first, live until it ends; its error, if any."""
        self.followers += 1
        try:
            index = 0
            while True:
                while index < len(self.events):
                    yield self.events[index]
                    index += 1
                if self.finished:
                    if self.error is not None:
                        raise self.error
                    return
                await self._wake.wait()
        finally:
            self.followers -= 1

    def stop(self, reason: str) -> bool:
        """Cancel the turn's task with `reason`, once: a second stop would interrupt the
        first storing what was said. False if it had ended or was stopping already."""
        if self.stopping or self.task is None or self.task.done():
            return False
        self.stopping = True
        return self.task.cancel(msg=reason)

    async def _drive(self, turn: AsyncGenerator[TurnEvent | LeaseHeld]) -> None:
        try:
            async with aclosing(turn) as events:
                async for event in events:
                    self._record(event)
        except asyncio.CancelledError as exc:
            reason = exc.args[0] if exc.args else SHUTTING_DOWN
            self.error = ReplyStopped(f"{reason} before the model replied")
        except ServiceError as exc:
            self.error = exc
        except BaseException as exc:
            self.error = exc
            if self.followers == 0:  # a follower re-raises it and its door logs it
                logger.exception("a turn of session %s failed", self.session_id)
        finally:
            self.finished = True
            self._wake.set()

    def _record(self, event: TurnEvent | LeaseHeld) -> None:
        if isinstance(event, LeaseHeld):
            self.lease = event.lease
            return
        if isinstance(event, ReplyPiece | AiMessageStored) and self.reply_id is None:
            self.reply_id = (
                event.message_id if isinstance(event, ReplyPiece) else str(event.message.id)
            )
        self.events.append(event)
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()


_running: set[Run] = set()


def start(session_id: str, turn: AsyncGenerator[TurnEvent | LeaseHeld]) -> Run:
    """Run `turn` as a task of this process; follow it with `run.follow()`."""
    run = Run(session_id)
    run.task = asyncio.get_running_loop().create_task(
        run._drive(turn), name=f"turn of session {session_id}"
    )
    _running.add(run)
    run.task.add_done_callback(lambda _: _running.discard(run))
    return run


def find(reply_id: str) -> Run | None:
    """The run of this process producing the reply `reply_id`, if any."""
    return next((run for run in _running if run.reply_id == reply_id), None)


def stop_turn(session_id: str, lease: str) -> bool:
    """Stop the turn of this process holding the session's lease `lease` (not the turns
    still waiting for theirs); True if it was running here."""
    return any(
        run.stop(STOP_REQUESTED)
        for run in tuple(_running)
        if run.session_id == session_id and run.lease == lease
    )


async def request_stop(events: EventBroker, *, session_id: str, lease: str) -> None:
    """Ask every process (this one included) to stop the turn holding `lease`."""
    await events.publish(CONTROL_TOPIC, {"kind": "stop", "session_id": session_id, "lease": lease})


async def obey_stop_requests(runtime: Runtime, ready: asyncio.Event | None = None) -> None:
    """Stop turns of this process as other processes ask; runs until cancelled."""
    async with runtime.events.subscribe(CONTROL_TOPIC) as requests:
        if ready is not None:
            ready.set()
        async for request in requests:
            if request.get("kind") == "stop":
                stop_turn(str(request.get("session_id")), str(request.get("lease")))


def stop_all(reason: str = SHUTTING_DOWN) -> int:
    """Stop every running turn of this process; returns how many were running."""
    return sum(run.stop(reason) for run in tuple(_running))


async def drain(grace_seconds: float) -> int:
    """Let running turns finish within `grace_seconds`, then stop the rest and wait for
    them to store what they must; returns how many had to be stopped."""
    deadline = time.monotonic() + grace_seconds
    while _running and time.monotonic() < deadline:
        tasks = [run.task for run in _running if run.task is not None]
        await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()))
    left = list(_running)  # those stopping already are waited for too
    for run in left:
        run.stop(SHUTTING_DOWN)
    tasks = [run.task for run in left if run.task is not None]
    if tasks:
        # Storing what was said takes one write; a database that is down cannot take it.
        await asyncio.wait(tasks, timeout=STORE_ON_STOP_SECONDS)
    return len(left)
