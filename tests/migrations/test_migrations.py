"""The committed migrations of the backend under test: in sync with the models, complete,
and applied safely (once, and again as a no-op), in process and by `chat-gateway migrate`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tortoise.context import TortoiseContext

from db import migrate
from db.config import database_dialect, tortoise_config
from tests.migrations.schema import describe, fetch, hand_written
from tests.servers import child_env, run_cli, scratch_database, scratch_database_async

# Each in-process aerich run gets a TortoiseContext of its own (aerich initialises
# Tortoise "globally", i.e. in the current context), so the app fixture's ORM is untouched.


async def upgrade(url: str) -> list[str]:
    async with TortoiseContext():
        return await migrate.upgrade(url)


async def generate_schema(url: str) -> None:
    async with TortoiseContext() as context:
        await context.init(config=tortoise_config(url))
        await context.generate_schemas(safe=False)


def migration_files(url: str) -> list[Path]:
    folder = migrate.location(database_dialect(url)) / "models"
    return [path for path in folder.glob("*.py") if not path.name.startswith("__")]


async def test_migrations_match_the_models(database_url: str) -> None:
    async with TortoiseContext():
        assert await migrate.pending_changes(database_url) == ""


async def test_migrations_build_the_schema_the_models_describe(tmp_path: Path) -> None:
    async with (
        scratch_database_async(tmp_path, "migrated") as migrated,
        scratch_database_async(tmp_path, "generated") as generated,
    ):
        applied = await upgrade(migrated)
        await generate_schema(generated)

        assert applied == sorted(path.name for path in migration_files(migrated))
        expected, actual = await describe(generated), await describe(migrated)
        assert set(actual) == set(expected)
        for name, table in expected.items():
            assert actual[name] == table, name
        assert "messages" in actual
        assert (True, ("session_id", "seq")) in actual["messages"].indexes
        assert await hand_written(generated) == set()
        sqlite = database_dialect(migrated) == "sqlite"
        assert await hand_written(migrated) == {
            "uid_messages_current_reply",
            *(
                (
                    "message_search",
                    "message_search_ids",
                    "messages_search_insert",
                    "messages_search_delete",
                    "messages_search_update",
                )
                if sqlite
                else ("idx_messages_search", "messages.metadata_json")
            ),
        }


async def test_upgrading_twice_is_a_no_op(tmp_path: Path) -> None:
    async with scratch_database_async(tmp_path) as url:
        assert await upgrade(url)
        schema = await describe(url)
        recorded = await fetch(url, "SELECT version FROM aerich ORDER BY id")

        assert await upgrade(url) == []
        assert await describe(url) == schema
        assert await fetch(url, "SELECT version FROM aerich ORDER BY id") == recorded
        assert len(recorded) == len(migration_files(url))


def test_migrate_command_prepares_an_empty_database_once(tmp_path: Path) -> None:
    with scratch_database(tmp_path) as url:
        env = child_env(DATABASE_URL=url)
        first = run_cli("migrate", env=env, cwd=tmp_path)

        assert first.returncode == 0, first.stderr
        applied = [line for line in first.stdout.splitlines() if line.startswith("applied")]
        assert len(applied) == len(migration_files(url))
        assert "created the built-in echo model config (default)" in first.stdout
        configs = "SELECT provider, model_name, is_default FROM model_configs"
        (provider, name, is_default), *others = asyncio.run(fetch(url, configs))
        assert (provider, name, others) == ("echo", "echo", [])
        assert is_default == 1  # SQLite's 1 is PostgreSQL's true

        again = run_cli("migrate", env=env, cwd=tmp_path)

        assert again.returncode == 0, again.stderr
        assert again.stdout.strip() == "database is up to date"
        assert len(asyncio.run(fetch(url, configs))) == 1
