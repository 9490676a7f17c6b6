"""db copy (move the data to another database) and db backup (SQLite)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import click

from db import transfer
from db.backup import BackupRefused, backup_sqlite
from db.config import database_dialect, normalise_database_url
from gateway.cli.common import FIXABLE, clean_failure, main, settings


@main.group("db")
def db_group() -> None:
    """Moving and backing up the database."""


@contextmanager
def _bar(table: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for one table (stdout keeps the summary)."""
    with click.progressbar(length=total, label=f"{table:<14}", file=sys.stderr) as bar:
        yield bar.update


def _url(value: str) -> str:
    try:
        url = normalise_database_url(value)
        database_dialect(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return url


@db_group.command("copy")
@click.option(
    "--from",
    "source",
    required=True,
    help="The database to read (sqlite://PATH or postgres://...).",
)
@click.option("--to", "target", required=True, help="An empty database to fill (migrated first).")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=transfer.BATCH_SIZE,
    show_default=True,
    help="Rows per statement.",
)
def copy(source: str, target: str, batch_size: int) -> None:
    """Copy every row into an EMPTY database of either dialect, verifying the counts
    before committing.

    Stop the server first (or copy from a backup): rows written after the copy has begun
    are not copied. Ephemeral tables (reply pieces, event bodies, rate counters) are skipped.
    """
    source_url, target_url = _url(source), _url(target)
    if source_url == target_url:
        raise click.BadParameter("--from and --to name the same database")
    try:
        counts = asyncio.run(
            transfer.copy_database(
                source_url=source_url,
                target_url=target_url,
                progress=_bar,
                batch_size=batch_size,
            )
        )
    except transfer.TransferRefused as exc:
        raise click.ClickException(str(exc)) from None
    except (asyncpg.PostgresError, sqlite3.Error) as exc:
        raise click.ClickException(f"database error: {exc}") from None
    except FIXABLE as exc:
        raise clean_failure(exc) from exc
    width = max(len(count.table) for count in counts)
    for count in counts:
        verdict = "ok" if count.equal else "DIFFERS"
        click.echo(f"{count.table:<{width}}  {count.source:>9} -> {count.target:>9}  {verdict}")
    if not all(count.equal for count in counts):
        raise click.ClickException(
            "row counts differ between the source and the target: nothing was committed, "
            "the target holds no rows"
        )


@db_group.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def backup(path: Path) -> None:
    """Write a consistent copy of the SQLite database to PATH, even while it is served."""
    config = settings()
    try:
        pages = backup_sqlite(database_url=config.database_url, destination=path)
    except BackupRefused as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"backup failed: {exc}") from None
    click.echo(f"wrote {path} ({pages} pages)")
