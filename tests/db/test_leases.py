"""leases.exclusive: one turn at a time per session, held as a lease in the session's row.

A lease left in the row stands for another process's turn (alive or dead): the tests write
one directly where they need it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest

from db.errors import Busy
from db.models import ChatSession
from db.services import leases, sessions, users
from tests.factories import Account

WAIT = 1.0
SHORT_WAIT = 0.1
# Long enough that no heartbeat runs during a test unless it asks for a short lease.
LEASE = 30.0


@asynccontextmanager
async def hold(
    session_id: str, *, wait_seconds: float = WAIT, lease_seconds: float = LEASE
) -> AsyncIterator[str]:
    """Hold the session's lease; the block gets its token."""
    async with leases.exclusive(
        session_id, wait_seconds=wait_seconds, lease_seconds=lease_seconds
    ) as lease:
        yield lease.token


async def new_session(account: Account) -> str:
    caller = await users.authenticate(token=account.key)
    return str((await sessions.create(caller=caller)).id)


@pytest.fixture
async def session_id(alice: Account) -> str:
    return await new_session(alice)


async def lease_of(session_id: str) -> tuple[str | None, datetime | None]:
    row = await ChatSession.get(id=session_id)
    return row.turn_token, row.turn_expires_at


async def plant(session_id: str, *, expires_at: datetime) -> str:
    """Another process's lease, written into the row as that process would have."""
    token = uuid.uuid4().hex
    await ChatSession.filter(id=session_id).update(turn_token=token, turn_expires_at=expires_at)
    return token


def from_now(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_the_lease_is_in_the_row_while_held_and_cleared_on_exit(session_id: str) -> None:
    assert await lease_of(session_id) == (None, None)

    async with hold(session_id) as token:
        held, expires_at = await lease_of(session_id)
        assert held == token
        assert expires_at is not None and expires_at > datetime.now(UTC)

    assert await lease_of(session_id) == (None, None)


async def test_one_holder_at_a_time_and_the_next_one_gets_it(session_id: str) -> None:
    order: list[str] = []
    tokens: list[str] = []
    first_in, let_go = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with hold(session_id) as token:
            tokens.append(token)
            order.append("first in")
            first_in.set()
            await let_go.wait()
            order.append("first out")

    async def second() -> None:
        await first_in.wait()
        async with hold(session_id) as token:
            tokens.append(token)
            order.append("second in")
            assert (await lease_of(session_id))[0] == token

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_in.wait()
    await asyncio.sleep(0.05)  # time for the second to get in, were it let in
    assert order == ["first in"]

    let_go.set()
    await asyncio.gather(*tasks)

    assert order == ["first in", "first out", "second in"]
    assert len(set(tokens)) == 2
    assert await lease_of(session_id) == (None, None)


async def test_busy_after_the_wait_while_another_turn_holds_the_session(session_id: str) -> None:
    async with hold(session_id) as token:
        with pytest.raises(Busy):
            async with hold(session_id, wait_seconds=SHORT_WAIT):
                pytest.fail("entered a session held by another turn")
        assert (await lease_of(session_id))[0] == token

    # The waiter that gave up left nothing behind.
    async with hold(session_id, wait_seconds=SHORT_WAIT) as token:
        assert (await lease_of(session_id))[0] == token


async def test_different_sessions_do_not_block_each_other(alice: Account, session_id: str) -> None:
    other = await new_session(alice)
    third = await new_session(alice)
    await plant(third, expires_at=from_now(3600))

    async with hold(session_id) as mine, hold(other, wait_seconds=SHORT_WAIT) as theirs:
        assert (await lease_of(session_id))[0] == mine
        assert (await lease_of(other))[0] == theirs
    async with hold(other, wait_seconds=SHORT_WAIT):
        pass


async def test_a_live_lease_of_another_process_is_not_taken(session_id: str) -> None:
    expires_at = from_now(3600)
    theirs = await plant(session_id, expires_at=expires_at)

    with pytest.raises(Busy):
        async with hold(session_id, wait_seconds=SHORT_WAIT):
            pytest.fail("took a lease before it expired")

    assert (await lease_of(session_id))[0] == theirs


async def test_an_expired_lease_of_a_dead_process_is_taken_over(session_id: str) -> None:
    dead = await plant(session_id, expires_at=from_now(-1))

    async with hold(session_id, wait_seconds=SHORT_WAIT) as token:
        assert token != dead
        assert (await lease_of(session_id))[0] == token

    assert await lease_of(session_id) == (None, None)


async def test_a_dead_process_lease_is_taken_over_once_it_expires_and_not_before(
    session_id: str,
) -> None:
    expires_at = from_now(0.2)
    dead = await plant(session_id, expires_at=expires_at)

    async with hold(session_id, wait_seconds=WAIT) as token:
        assert datetime.now(UTC) >= expires_at
        assert token != dead
        assert (await lease_of(session_id))[0] == token

    assert await lease_of(session_id) == (None, None)


async def test_the_lease_is_given_back_when_the_block_raises(session_id: str) -> None:
    with pytest.raises(RuntimeError, match="the reply failed"):
        async with hold(session_id):
            raise RuntimeError("the reply failed")

    assert await lease_of(session_id) == (None, None)
    async with hold(session_id, wait_seconds=SHORT_WAIT):
        pass


async def test_the_lease_is_given_back_when_the_holder_is_cancelled(session_id: str) -> None:
    entered = asyncio.Event()

    async def holder() -> None:
        async with hold(session_id):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(holder())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await lease_of(session_id) == (None, None)
    async with hold(session_id, wait_seconds=SHORT_WAIT):
        pass


async def test_the_heartbeat_keeps_a_long_turn_s_lease_alive(session_id: str) -> None:
    async with hold(session_id, lease_seconds=0.3) as token:
        _, first_expiry = await lease_of(session_id)
        assert first_expiry is not None
        for _ in range(20):
            await asyncio.sleep(0.05)
            held, expires_at = await lease_of(session_id)
            assert held == token
            assert expires_at is not None
            if expires_at > first_expiry:
                break
        else:
            pytest.fail("the lease was never extended")


async def test_a_release_never_clears_a_later_holder_s_lease(session_id: str) -> None:
    later_expiry = from_now(3600)
    async with hold(session_id, lease_seconds=0.3) as token:
        # This turn's lease was lost (it expired while the process stalled, say) and
        # another process took the session.
        later = await plant(session_id, expires_at=later_expiry)
        assert later != token
        await asyncio.sleep(0.3)  # heartbeats come and go: none may touch the later lease
        assert (await lease_of(session_id))[0] == later

    held, expires_at = await lease_of(session_id)
    assert held == later
    assert expires_at == later_expiry


async def test_a_lease_an_attempt_took_before_it_failed_is_given_back(alice: Account) -> None:
    """A statement that times out may take the lease all the same when the database gets
    to it; the turn that gave up on it must not keep the session until the lease expires."""
    session_id = await new_session(alice)

    async def take_then_fail(token: str, expires_at: datetime) -> bool:
        await ChatSession.filter(id=session_id).update(turn_token=token, turn_expires_at=expires_at)
        raise ConnectionError("the answer was lost")

    with pytest.raises(ConnectionError):
        async with leases.exclusive(
            session_id, wait_seconds=WAIT, lease_seconds=LEASE, take_first=take_then_fail
        ):
            pass

    async with hold(session_id, wait_seconds=WAIT) as token:
        assert (await lease_of(session_id))[0] == token
