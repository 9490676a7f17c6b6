"""Copy every row of one gateway database into another, empty one, of either dialect."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from db import migrate
from db.config import database_dialect
from db.transfer.endpoints import Endpoint, open_endpoint
from db.transfer.tables import Table, copied_tables

# Given a table's name and row count, a context whose value takes each batch's size.
Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]
BATCH_SIZE = 1_000


class TransferRefused(Exception):
    """The move cannot start (a non-empty target, a source behind on migrations...)."""


@dataclass(frozen=True, slots=True)
class TableCount:
    table: str
    source: int
    target: int

    @property
    def equal(self) -> bool:
        return self.source == self.target


async def copy_database(
    *, source_url: str, target_url: str, progress: Progress, batch_size: int = BATCH_SIZE
) -> list[TableCount]:
    """Check the target holds no rows, migrate it, then copy every table and count both
    in one target transaction."""
    _check_files(source_url=source_url, target_url=target_url)
    source = await open_endpoint(source_url)
    try:
        await _check_source(source)
        # Checked before migrating: a --to naming a live database by mistake must not get
        # our migrations run on it (its schema may be older than the models).
        target = await open_endpoint(target_url)
        try:
            await _refuse_filled(target, present_only=True)
        finally:
            await target.close()
        # The target gets the schema the source has (both at the newest migration).
        await migrate.upgrade(target_url)
        # Reopened: a connection from before the migration may cache the old schema.
        target = await open_endpoint(target_url)
        try:
            return await _copy(source, target, progress=progress, batch_size=batch_size)
        finally:
            await target.close()
    finally:
        await source.close()


def _check_files(*, source_url: str, target_url: str) -> None:
    """A SQLite source must exist (opening would create it); a target's folder may not."""
    for url, is_source in ((source_url, True), (target_url, False)):
        if database_dialect(url) != "sqlite":
            continue
        path = Path(url.split("://", 1)[1].split("?", 1)[0])
        if is_source and not path.is_file():
            raise TransferRefused(f"no SQLite database at {path}")
        if not is_source:
            path.parent.mkdir(parents=True, exist_ok=True)


_NUMBERED = re.compile(r"(\d+)_")


def newest_migration(names: Iterable[str]) -> tuple[int, str]:
    """The highest-numbered migration file among `names`, with its number.

    By number, not by text (`10_...` sorts before `9_...` as text); names without a
    numeric prefix (`__init__.py`) are not migrations."""
    numbered = [(int(match.group(1)), name) for name in names if (match := _NUMBERED.match(name))]
    if not numbered:
        raise ValueError("no numbered migration files")
    return max(numbered)


async def _check_source(source: Endpoint) -> None:
    version = await source.schema_version()
    files = migrate.location(source.dialect).glob("models/*.py")
    number, newest = newest_migration(path.name for path in files)
    if version is None:
        raise TransferRefused("the source has no gateway tables (no aerich migrations)")
    if not version.isdigit() or int(version) != number:
        raise TransferRefused(
            f"the source is at migration {version}, this version of the gateway at "
            f"{newest}: run `chat-gateway migrate` on the source first"
        )


async def _refuse_filled(target: Endpoint, *, present_only: bool) -> None:
    """Refuse a target where any table the copy writes holds rows. `present_only`: before
    the migration, where a table may not exist yet (a missing table is empty)."""
    filled = []
    for table in copied_tables():
        if present_only and not await target.has_table(table.name):
            continue
        if rows := await target.count(table):
            filled.append((table.name, rows))
    if filled:
        listed = ", ".join(f"{name} ({rows} rows)" for name, rows in filled)
        raise TransferRefused(
            f"the target is not empty: {listed}. db copy writes only into an empty database "
            "(a new one, or one with no tables: it is migrated first); do not run "
            "`chat-gateway migrate` on it before (that adds the built-in echo config)"
        )


async def _copy(
    source: Endpoint, target: Endpoint, *, progress: Progress, batch_size: int
) -> list[TableCount]:
    """Copy every table; committed only if the target's counts, taken in the same
    transaction, equal the source's (else rolled back: the target stays empty)."""
    # Checked again after the migration: a future migration may insert rows, and a
    # process may have written into the target between the first check and now.
    await _refuse_filled(target, present_only=False)
    tables = copied_tables()
    await source.begin(read_only=True)
    try:
        await target.begin(read_only=False)
        try:
            counts = []
            for table in tables:
                expected = await _copy_table(source, target, table, progress, batch_size)
                copied = await target.count(table)  # in the transaction: uncommitted rows
                counts.append(TableCount(table=table.name, source=expected, target=copied))
        except BaseException:
            await target.rollback()
            raise
        if all(count.equal for count in counts):
            await target.commit()
        else:
            await target.rollback()
    finally:
        await source.rollback()  # a read-only snapshot: nothing to keep
    return counts


async def _copy_table(
    source: Endpoint, target: Endpoint, table: Table, progress: Progress, batch_size: int
) -> int:
    """Copy one table; returns the source's rows (counted in the read snapshot)."""
    total = await source.count(table)
    names = [column.name for column in table.columns]
    deferred = [names.index(name) for name in table.deferred]
    with progress(table.name, total) as advance:
        async for batch in source.read(table, batch_size=batch_size):
            rows = []
            for row in batch:
                values = list(row)
                for index in deferred:
                    values[index] = None  # the row it points at may come later
                rows.append(tuple(values))
            await target.insert(table, rows)
            advance(len(rows))
    # Every row is in now: the self-references are read again from the same snapshot, a
    # batch at a time, so memory stays bounded however large the table.
    for name in table.deferred:
        async for pairs in source.read_pairs(table, name, batch_size=batch_size):
            await target.set_column(table, name, pairs)
    if table.serial:
        await target.follow_sequence(table)
    return total
