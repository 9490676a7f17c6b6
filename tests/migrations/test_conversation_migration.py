"""Migration 4 (conversation features) on a database holding data: a database at
migration 3 with users, configs, sessions and messages (written in plain SQL, as the
release before it stored them) is migrated, and then its messages are searchable, every
config has its first version, every stored reply is counted as usage, nothing else has
changed, and replies can have variants."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
import orjson
import pytest
from aerich import Command
from tortoise.context import TortoiseContext

from db import migrate
from db.config import APP_LABEL, database_dialect, tortoise_config
from db.identity import Caller
from db.models import Role
from db.services import search
from tests.migrations.schema import fetch
from tests.servers import scratch_database_async

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
ALICE, BOB = str(uuid.uuid4()), str(uuid.uuid4())
ECHO, OPENAI = str(uuid.uuid4()), str(uuid.uuid4())
BREAD, KYOTO = str(uuid.uuid4()), str(uuid.uuid4())
U1, A1, U2, A2, U3, A3 = (str(uuid.uuid4()) for _ in range(6))


async def upgrade_to(url: str, tmp_path: Path, last: int) -> list[str]:
    """Apply the shipped migrations numbered up to `last` only (a copy of them, on their
    own, is all aerich sees)."""
    dialect = database_dialect(url)
    folder = tmp_path / "migrations" / dialect
    (folder / APP_LABEL).mkdir(parents=True)
    for name in migrate.shipped(dialect):
        if int(name.split("_", 1)[0]) <= last:
            shutil.copy(migrate.location(dialect) / APP_LABEL / name, folder / APP_LABEL / name)
    async with TortoiseContext():
        command = Command(tortoise_config=tortoise_config(url), app=APP_LABEL, location=str(folder))
        async with command:
            return await command.upgrade(run_in_transaction=True)


async def upgrade(url: str) -> list[str]:
    """Apply every shipped migration the database lacks (in a Tortoise context of its own,
    as aerich initialises Tortoise in the current one)."""
    async with TortoiseContext():
        return await migrate.upgrade(url)


async def execute(url: str, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Run statements written with `?` markers, in one transaction, on either database."""
    if database_dialect(url) == "sqlite":
        async with aiosqlite.connect(url.split("://", 1)[1].split("?", 1)[0]) as connection:
            for sql, args in statements:
                await connection.execute(sql, args)
            await connection.commit()
        return
    connection = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
    try:
        async with connection.transaction():
            for sql, args in statements:
                await connection.execute(_numbered(sql), *args)
    finally:
        await connection.close()


def _numbered(sql: str) -> str:
    """`?` markers as PostgreSQL's $1, $2..."""
    pieces = sql.split("?")
    return pieces[0] + "".join(f"${n}{piece}" for n, piece in enumerate(pieces[1:], 1))


def seed_statements(sqlite: bool) -> list[tuple[str, Sequence[Any]]]:
    """Two users, two configs, two sessions with four and two messages, as migration 3's
    schema holds them."""

    def at(minutes: int) -> Any:
        moment = T0 + timedelta(minutes=minutes)
        return moment.isoformat(" ") if sqlite else moment

    def flag(value: bool) -> Any:
        return int(value) if sqlite else value

    def reply(metadata: dict[str, Any] | None) -> str | None:
        return None if metadata is None else json.dumps(metadata)

    users = "INSERT INTO users (id, name, role, created_at) VALUES (?, ?, ?, ?)"
    configs = (
        "INSERT INTO model_configs (id, provider, model_name, model_version, parameters, "
        "base_url, api_key_env, is_default, version, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    sessions = (
        "INSERT INTO chat_sessions (id, user_id, model_config_id, created_at, updated_at, "
        "last_seq) VALUES (?, ?, ?, ?, ?, ?)"
    )
    messages = (
        "INSERT INTO messages (id, session_id, seq, type, content, metadata, created_at, "
        "reply_to_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    first_usage = {
        "model_config_id": ECHO,
        "usage": {"prompt_tokens": 11, "completion_tokens": 22},
        "latency_ms": 123.5,
        "finish_reason": "stop",
    }
    second_usage = {"usage": {"prompt_tokens": 5, "completion_tokens": 7}, "latency_ms": 50}
    # Written before today's rules: a key in the parameters and credentials in the URL.
    echo_parameters = '{"prefix": "Echo: "}'
    openai_parameters = '{"temperature": 0.2, "api_key": "sk-legacy-secret"}'
    bread = "How do I bake sourdough bread?"
    rye = "And <b>rye</b> loaves?"
    return [
        (users, (ALICE, "alice", "user", at(0))),
        (users, (BOB, "bob", "user", at(0))),
        (
            configs,
            (ECHO, "echo", "echo", "1", echo_parameters, None, None, flag(True), 3, at(0), at(5)),
        ),
        (
            configs,
            (
                OPENAI,
                "openai",
                "gpt-4o",
                "2024-08-06",
                openai_parameters,
                "https://user:pw@llm.example/v1",
                "OPENAI_KEY",
                flag(False),
                1,
                at(1),
                at(1),
            ),
        ),
        (sessions, (BREAD, ALICE, ECHO, at(10), at(14), 4)),
        (sessions, (KYOTO, BOB, OPENAI, at(20), at(21), 2)),
        (messages, (U1, BREAD, 1, "user", bread, None, at(11), None)),
        (messages, (A1, BREAD, 2, "ai", "Echo: " + bread, reply(first_usage), at(12), U1)),
        (messages, (U2, BREAD, 3, "user", rye, None, at(13), None)),
        (messages, (A2, BREAD, 4, "ai", "Echo: " + rye, reply(second_usage), at(14), U2)),
        (messages, (U3, KYOTO, 1, "user", "Trains to Kyoto", None, at(20), None)),
        (
            messages,
            (
                A3,
                KYOTO,
                2,
                "ai",
                "Take the Shinkansen",
                reply({"model_config_id": OPENAI}),
                at(21),
                U3,
            ),
        ),
    ]


@asynccontextmanager
async def orm(url: str) -> AsyncIterator[None]:
    """The models and the services on the migrated database."""
    async with TortoiseContext() as context:
        await context.init(config=tortoise_config(url))
        yield


def caller(user_id: str, role: Role = Role.USER) -> Caller:
    return Caller(user_id, user_id[:8], role)


def loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture
async def migrated(tmp_path: Path) -> AsyncIterator[str]:
    """A database at migration 3 holding the seed, then migrated to the latest."""
    async with scratch_database_async(tmp_path, "with-data") as url:
        applied = await upgrade_to(url, tmp_path, last=3)
        assert [name.split("_", 1)[0] for name in applied] == ["0", "1", "2", "3"]
        await execute(url, seed_statements(database_dialect(url) == "sqlite"))

        remaining = await upgrade(url)

        later = [n for n in migrate.shipped(database_dialect(url)) if int(n.split("_")[0]) > 3]
        assert remaining == later and remaining[0].startswith("4_")
        yield url


async def test_messages_stored_before_are_searchable(migrated: str) -> None:
    async with orm(migrated):
        found = await search.search(caller=caller(ALICE), query="sourdough")
        assert sorted(str(hit.message.id) for hit in found.hits) == sorted([U1, A1])
        assert found.hits[0].snippet.count("<mark>sourdough</mark>") == 1

        loaves = await search.search(caller=caller(ALICE), query="loaf -rye")
        assert (loaves.hits, loaves.total) == ([], 0)
        rye = await search.search(caller=caller(ALICE), query="rye", session_id=BREAD)
        assert {str(hit.message.id) for hit in rye.hits} == {U2, A2}
        assert "&lt;b&gt;<mark>rye</mark>&lt;/b&gt;" in rye.hits[0].snippet

        assert (await search.search(caller=caller(BOB), query="sourdough")).total == 0
        everyone = await search.search(caller=caller(BOB, Role.ADMIN), query="kyoto OR bread")
        assert {str(hit.message.id) for hit in everyone.hits} == {U1, A1, U3}


async def test_every_config_has_its_first_version(migrated: str) -> None:
    rows = await fetch(
        migrated,
        "SELECT config_id, version, actor_id, changed_fields, snapshot, created_at "
        "FROM model_config_versions ORDER BY version DESC",
    )

    versions = {str(row[0]): row[1:] for row in rows}
    assert set(versions) == {ECHO, OPENAI} and len(rows) == 2
    echo_version, actor, changed, snapshot, created = versions[ECHO]
    assert (echo_version, actor, loaded(changed)) == (3, None, [])
    assert loaded(snapshot) == {
        "provider": "echo",
        "model_name": "echo",
        "model_version": "1",
        "parameters": {"prefix": "Echo: "},
        "base_url": None,
        "api_key_env": None,
        "is_default": True,
    }
    assert str(created).startswith("2026-11-20 09:05:00")
    assert versions[OPENAI][0] == 1
    assert loaded(versions[OPENAI][3]) == {
        "provider": "openai",
        "model_name": "gpt-4o",
        "model_version": "2024-08-06",
        # Redacted as every later version is (config_rules.public).
        "parameters": {"temperature": 0.2, "api_key": "[redacted]"},
        "base_url": "[redacted]",
        "api_key_env": "OPENAI_KEY",
        "is_default": False,
    }


async def test_every_stored_reply_is_counted_as_usage(migrated: str) -> None:
    rows = await fetch(
        migrated,
        "SELECT message_id, user_id, model_config_id, session_id, failed, prompt_tokens, "
        "completion_tokens, latency_ms, created_at FROM usage_records",
    )

    usage = {
        str(row[0]): tuple(str(v) if isinstance(v, uuid.UUID) else v for v in row[1:])
        for row in rows
    }
    assert len(rows) == 3
    assert usage[A1][:7] == (ALICE, ECHO, BREAD, False, 11, 22, 123.5)
    # No config named in the reply: the session's.
    assert usage[A2][:7] == (ALICE, ECHO, BREAD, False, 5, 7, 50.0)
    # No usage reported: no tokens, no latency.
    assert usage[A3][:7] == (BOB, OPENAI, KYOTO, False, 0, 0, None)
    assert str(usage[A1][7]).startswith("2026-11-20 09:12:00")


async def test_the_data_is_otherwise_unchanged(migrated: str) -> None:
    rows = await fetch(
        migrated,
        "SELECT id, session_id, seq, type, content, reply_to_id FROM messages ORDER BY created_at",
    )
    sessions = await fetch(
        migrated,
        "SELECT id, last_seq, title, archived, forked_from_id FROM chat_sessions "
        "ORDER BY created_at",
    )

    as_text = [tuple(None if v is None else str(v) for v in row) for row in rows]
    assert as_text == [
        (U1, BREAD, "1", "user", "How do I bake sourdough bread?", None),
        (A1, BREAD, "2", "ai", "Echo: How do I bake sourdough bread?", U1),
        (U2, BREAD, "3", "user", "And <b>rye</b> loaves?", None),
        (A2, BREAD, "4", "ai", "Echo: And <b>rye</b> loaves?", U2),
        (U3, KYOTO, "1", "user", "Trains to Kyoto", None),
        (A3, KYOTO, "2", "ai", "Take the Shinkansen", U3),
    ]
    assert [(str(s[0]), s[1], s[2], bool(s[3]), s[4]) for s in sessions] == [
        (BREAD, 4, None, False, None),
        (KYOTO, 2, None, False, None),
    ]


async def test_a_reply_can_have_variants_but_one_current_reply(migrated: str) -> None:
    sqlite = database_dialect(migrated) == "sqlite"
    moment: Any = (T0 + timedelta(hours=1)).isoformat(" ") if sqlite else T0 + timedelta(hours=1)
    insert = (
        "INSERT INTO messages (id, session_id, seq, type, content, created_at, reply_to_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    variant, next_question, next_reply = (str(uuid.uuid4()) for _ in range(3))

    # A replaced reply (no place in the history) beside the current one; a new turn.
    await execute(
        migrated,
        [
            (insert, (variant, BREAD, None, "ai", "An earlier sourdough answer", moment, U1)),
            (insert, (next_question, BREAD, 5, "user", "What about spelt?", moment, None)),
            (insert, (next_reply, BREAD, 6, "ai", "Spelt works too", moment, next_question)),
        ],
    )
    # A second current reply to the same question is refused.
    with pytest.raises((aiosqlite.IntegrityError, asyncpg.UniqueViolationError)):
        await execute(
            migrated, [(insert, (str(uuid.uuid4()), BREAD, 7, "ai", "Twice", moment, U1))]
        )

    async with orm(migrated):
        found = await search.search(caller=caller(ALICE), query="sourdough OR spelt")
    assert {str(hit.message.id) for hit in found.hits} == {
        U1,
        A1,
        variant,
        next_question,
        next_reply,
    }


async def test_metadata_is_kept_compacted_on_postgresql(migrated: str) -> None:
    """Migration 5: `metadata_json` holds orjson's text of each message's metadata, for the
    rows there before it and for those written since; NULL where orjson would write a
    number otherwise than jsonb keeps it (the compiled path leaves those to Strawberry)."""
    if database_dialect(migrated) == "sqlite":
        assert "metadata_json" not in {
            name for (name,) in await fetch(migrated, "SELECT name FROM pragma_table_info('messages')")
        }
        return
    before = await fetch(migrated, "SELECT metadata::text, metadata_json FROM messages")
    assert len(before) == 6
    for metadata, compact in before:
        expected = "null" if metadata is None else orjson.dumps(json.loads(metadata)).decode()
        assert compact == expected
    assert sum(metadata is not None for metadata, _ in before) == 3  # the three replies

    written = {
        '{"a": "x: y, \\"z\\": w", "b": [1, 2, {"c": null}], "d": true}': (
            '{"a":"x: y, \\"z\\": w","b":[1,2,{"c":null}],"d":true}'
        ),
        '{"text": "tab\\there", "n": -3.25, "e": 1e+300}': None,  # jsonb writes 1e300 out
        '{"latency": 1.50}': None,  # jsonb keeps 1.50, orjson writes 1.5
        '{"tiny": 0.00001}': None,  # orjson writes 1e-05
        '{"big": 123456789012345678901}': None,  # past 64 bits: a float to orjson
        '"just a string"': '"just a string"',
        "null": "null",
    }
    rows = [
        (
            "INSERT INTO messages (id, session_id, seq, type, content, metadata, created_at) "
            "VALUES (?, ?, ?, 'ai', 'x', ?::jsonb, ?)",
            (str(uuid.uuid4()), KYOTO, 100 + number, metadata, T0),
        )
        for number, metadata in enumerate(written)
    ]
    await execute(migrated, rows)
    stored = dict(
        await fetch(migrated, "SELECT metadata::text, metadata_json FROM messages WHERE seq >= 100")
    )
    for metadata, expected in written.items():
        as_jsonb = (await fetch(migrated, "SELECT $1::jsonb::text", metadata))[0][0]
        assert stored[as_jsonb] == expected, metadata
        if expected is not None:
            assert expected == orjson.dumps(json.loads(metadata)).decode()
