"""Verified API keys kept a while (`users.remember_callers`): a request with one costs no
lookup, and a revoked one is forgotten at once, here or (through the broker) anywhere."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import asyncpg
import pytest
from starlette.applications import Starlette

from db.errors import Unauthenticated
from db.models import ApiKey, User
from db.pg_events import connect_arguments
from db.ports import Runtime
from db.services import users
from tests.conftest import BACKEND
from tests.factories import Account
from tests.schema.statements import counted


@pytest.fixture
def remembered() -> Iterator[None]:
    users.remember_callers(60)
    yield
    users.remember_callers(0)


@pytest.fixture
async def following(app: Starlette, remembered: None) -> AsyncIterator[Runtime]:
    """A follower of revocations on the app's broker, as every server process runs one."""
    runtime: Runtime = app.state.runtime
    ready = asyncio.Event()
    task = asyncio.create_task(users.follow_revocations(runtime, ready))
    await ready.wait()
    yield runtime
    task.cancel()


async def test_a_remembered_key_costs_no_statement(
    alice: Account, remembered: None, caplog: pytest.LogCaptureFixture
) -> None:
    first = await users.authenticate(token=alice.key)

    async with counted(caplog) as statements:
        again = await users.authenticate(token=alice.key)

    assert again == first
    assert statements == []


async def test_keys_are_looked_up_every_time_unless_remembered(
    alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    users.remember_callers(0)
    await users.authenticate(token=alice.key)

    async with counted(caplog) as statements:
        await users.authenticate(token=alice.key)

    assert len(statements) == 1


async def test_a_key_revoked_in_this_process_is_refused_at_once(
    alice: Account, bob: Account, remembered: None
) -> None:
    await users.authenticate(token=alice.key)
    await users.authenticate(token=bob.key)

    await users.revoke_key(key_id_or_prefix=alice.key_id)

    with pytest.raises(Unauthenticated, match="revoked"):
        await users.authenticate(token=alice.key)
    assert (await users.authenticate(token=bob.key)).name == "bob"


async def test_a_key_revoked_by_another_process_is_forgotten_when_it_says_so(
    alice: Account, following: Runtime
) -> None:
    await users.authenticate(token=alice.key)
    # Another process revokes it: the row changes, and the broker carries the news.
    await ApiKey.filter(id=alice.key_id).update(revoked_at=datetime.now(UTC))
    assert (await users.authenticate(token=alice.key)).name == "alice"  # still remembered

    await following.events.publish(
        users.KEYS_TOPIC, {"kind": "key_revoked", "key_id": alice.key_id}
    )
    await asyncio.sleep(0.05)

    with pytest.raises(Unauthenticated, match="revoked"):
        await users.authenticate(token=alice.key)


async def test_a_user_changed_by_another_process_loses_every_remembered_key(
    alice: Account, bob: Account, following: Runtime
) -> None:
    second = await users.create_key(user_id=alice.user_id, label="phone")
    for token in (alice.key, second.secret, bob.key):
        await users.authenticate(token=token)
    # Another process disables alice: the row changes, and the broker carries the news.
    await User.filter(id=alice.user_id).update(disabled_at=datetime.now(UTC))
    assert (await users.authenticate(token=second.secret)).name == "alice"  # still remembered

    await following.events.publish(
        users.KEYS_TOPIC, {"kind": "user_changed", "user_id": alice.user_id}
    )
    await asyncio.sleep(0.05)

    for token in (alice.key, second.secret):
        with pytest.raises(Unauthenticated, match="disabled"):
            await users.authenticate(token=token)
    assert (await users.authenticate(token=bob.key)).name == "bob"


async def test_missed_events_forget_every_key(alice: Account, following: Runtime) -> None:
    await users.authenticate(token=alice.key)
    await ApiKey.filter(id=alice.key_id).update(revoked_at=datetime.now(UTC))
    # The broker lost its connection: a revocation may have been among what it missed.
    await following.events.publish(users.KEYS_TOPIC, {"kind": "missed"})
    await asyncio.sleep(0.05)

    with pytest.raises(Unauthenticated, match="revoked"):
        await users.authenticate(token=alice.key)


@pytest.mark.skipif(BACKEND != "postgres", reason="holds a row lock of PostgreSQL")
async def test_a_lookup_that_a_revocation_overtook_is_not_kept(
    alice: Account, following: Runtime, database_url: str
) -> None:
    """A revocation is committed and announced while a lookup of the key is under way
    (it read the row before, and waits to note the key's use): what the lookup read
    must not be kept, or the revoked key would work on for the whole TTL."""
    other = await asyncpg.connect(**connect_arguments(database_url))
    try:
        async with other.transaction():
            # Another process revokes the key; the lookup's write of last_used_at waits.
            await other.execute(
                "UPDATE api_keys SET revoked_at = now() WHERE id = $1", uuid.UUID(alice.key_id)
            )
            looking = asyncio.create_task(users.authenticate(token=alice.key))
            await asyncio.sleep(0.2)  # it has read the row, unrevoked, and now waits
            await following.events.publish(
                users.KEYS_TOPIC, {"kind": "key_revoked", "key_id": alice.key_id}
            )
            await asyncio.sleep(0.05)
        await looking  # read before the revocation: this request passes
    finally:
        await other.close()

    with pytest.raises(Unauthenticated, match="revoked"):
        await users.authenticate(token=alice.key)
