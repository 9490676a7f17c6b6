"""Applying and generating aerich migrations, one folder per SQL dialect."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aerich import Command
from tortoise import Tortoise, connections

import migrations
from db.config import APP_LABEL, database_dialect, tortoise_config

MIGRATIONS_ROOT = Path(migrations.__file__).resolve().parent
DIALECTS = ("sqlite", "postgres")


def location(dialect: str) -> Path:
    """Folder holding this dialect's migrations (aerich adds the app label below it)."""
    return MIGRATIONS_ROOT / dialect


async def upgrade(database_url: str) -> list[str]:
    """Apply every pending migration of the URL's dialect; returns the files applied."""
    dialect = database_dialect(database_url)
    command = Command(
        tortoise_config=tortoise_config(database_url),
        app=APP_LABEL,
        location=str(location(dialect)),
    )
    async with command:
        return await command.upgrade(run_in_transaction=True)


def shipped(dialect: str) -> list[str]:
    """The migration files this release ships for `dialect`, in order."""
    folder = location(dialect) / APP_LABEL
    return sorted(path.name for path in folder.glob("*.py") if path.name[0].isdigit())


async def unapplied() -> list[str]:
    """Shipped migrations the open database (Tortoise's default connection) lacks.

    Raises what the database raises: a database never migrated has no `aerich` table."""
    connection = connections.get("default")
    dialect = "postgres" if connection.capabilities.dialect == "postgres" else "sqlite"
    _, rows = await connection.execute_query(
        "SELECT version FROM aerich WHERE app = " + ("$1" if dialect == "postgres" else "?"),
        [APP_LABEL],
    )
    applied = {row["version"] for row in rows}
    return [name for name in shipped(dialect) if name not in applied]


@asynccontextmanager
async def _offline(database_url: str, folder: Path) -> AsyncIterator[Command]:
    """A Command that diffs models against the migration files, not against a database."""
    command = Command(
        tortoise_config=tortoise_config(database_url), app=APP_LABEL, location=str(folder)
    )
    await command.init(offline=True)
    try:
        yield command
    finally:
        await Tortoise.close_connections()


async def pending_changes(database_url: str) -> str:
    """The migration aerich would generate now ('' when the models match the migrations).

    Works on a scratch copy of the folder, so checking never writes a file in the tree.
    """
    dialect = database_dialect(database_url)
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch, dialect)
        shutil.copytree(location(dialect), copy)
        async with _offline(database_url, copy) as command:
            generated = await command.migrate("check", no_input=True, offline=True)
            if not generated:
                return ""
            # A developer check on a small local file: blocking the loop here is harmless.
            return Path(copy, APP_LABEL, generated).read_text(encoding="utf-8")  # noqa: ASYNC240


async def make(database_url: str, *, name: str) -> str | None:
    """Generate the next migration for the URL's dialect from the model changes."""
    dialect = database_dialect(database_url)
    command = Command(
        tortoise_config=tortoise_config(database_url),
        app=APP_LABEL,
        location=str(location(dialect)),
    )
    folder = location(dialect) / APP_LABEL
    if not folder.exists() or not any(folder.glob("*.py")):
        # The first migration: aerich writes the whole schema (and applies it to this DB).
        await command.init_db(safe=True)
        await Tortoise.close_connections()
        return sorted(path.name for path in folder.glob("*.py"))[-1]
    async with _offline(database_url, location(dialect)) as command:
        generated = await command.migrate(name, no_input=True, offline=True)
    return generated or None
