"""Online backups of a SQLite database file (PostgreSQL has its own tools)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from db.config import database_dialect, normalise_database_url

# All pages in one step of the backup API: one read transaction, a snapshot that the
# server's writers do not wait for (WAL). In smaller steps, every write from another
# connection between two steps restarts the backup, which a busy server could do forever.
PAGES_PER_STEP = -1


class BackupRefused(Exception):
    """The database cannot be backed up this way."""


def sqlite_path(database_url: str) -> Path:
    """The file of a sqlite:// URL; anything else is refused, naming what to use instead."""
    url = normalise_database_url(database_url)
    if database_dialect(url) != "sqlite":
        raise BackupRefused(
            "db backup is for SQLite; on PostgreSQL use its own tools: "
            "`pg_dump -Fc -f gateway.dump $DATABASE_URL` (restore with pg_restore) for a "
            "logical backup, or pg_basebackup (with WAL archiving) for point-in-time recovery"
        )
    path = url.split("://", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:" or not Path(path).is_file():
        raise BackupRefused(f"no SQLite database file at {path!r}")
    return Path(path)


def backup_sqlite(*, database_url: str, destination: Path) -> int:
    """Copy the database into `destination`, consistent even while a server writes to it;
    returns the pages copied. The file appears whole or not at all (written aside, then
    renamed)."""
    source_path = sqlite_path(database_url)
    if destination.exists():
        raise BackupRefused(f"{destination} exists already: name a new file")
    partial = destination.with_name(destination.name + ".partial")
    source = sqlite3.connect(source_path, timeout=10)
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target, pages=PAGES_PER_STEP)
            pages = int(target.execute("PRAGMA page_count").fetchone()[0])
        finally:
            target.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    os.replace(partial, destination)
    return pages
