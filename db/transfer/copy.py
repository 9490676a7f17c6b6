"""Copy every row of one gateway database into another, empty one, of either dialect."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from db import migrate
from db.config import database_dialect
from db.transfer.endpoints import Endpoint, Row, open_endpoint
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
    """Migrate the target, copy every table in one target transaction, then count both."""
    _check_files(source_url=source_url, target_url=target_url)
    source = await open_endpoint(source_url)
    try:
        await _check_source(source, target_url)
        # The target gets the schema the source has (both at the newest migration).
        await migrate.upgrade(target_url)
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


async def _check_source(source: Endpoint, target_url: str) -> None:
    version = await source.schema_version()
    newest = sorted(migrate.location(source.dialect).glob("models/*.py"))[-1].name
    if version is None:
        raise TransferRefused("the source has no gateway tables (no aerich migrations)")
    if version != newest.split("_", 1)[0]:
        raise TransferRefused(
            f"the source is at migration {version}, this version of the gateway at "
            f"{newest}: run `chat-gateway migrate` on the source first"
        )


async def _copy(
    source: Endpoint, target: Endpoint, *, progress: Progress, batch_size: int
) -> list[TableCount]:
    tables = copied_tables()
    filled = [(table.name, n) for table in tables if (n := await target.count(table))]
    if filled:
        listed = ", ".join(f"{name} ({rows} rows)" for name, rows in filled)
        raise TransferRefused(
            f"the target is not empty: {listed}. db copy writes only into an empty database "
            "(a new one, or one with no tables: it is migrated first); do not run "
            "`chat-gateway migrate` on it before (that adds the built-in echo config)"
        )
    await source.begin(read_only=True)
    try:
        await target.begin(read_only=False)
        try:
            counts = []
            for table in tables:
                counts.append(await _copy_table(source, target, table, progress, batch_size))
            await target.commit()
        except BaseException:
            await target.rollback()
            raise
    finally:
        await source.rollback()  # a read-only snapshot: nothing to keep
    # Counted again after the commit: what the target really holds now.
    return [
        TableCount(table=table.name, source=expected, target=await target.count(table))
        for table, expected in zip(tables, counts, strict=True)
    ]


async def _copy_table(
    source: Endpoint, target: Endpoint, table: Table, progress: Progress, batch_size: int
) -> int:
    """Copy one table; returns the source's rows (counted in the read snapshot)."""
    total = await source.count(table)
    names = [column.name for column in table.columns]
    deferred = [names.index(name) for name in table.deferred]
    key = names.index(table.primary_key)
    later: dict[str, list[Row]] = {name: [] for name in table.deferred}
    with progress(table.name, total) as advance:
        async for batch in source.read(table, batch_size=batch_size):
            rows = []
            for row in batch:
                values = list(row)
                for name, index in zip(table.deferred, deferred, strict=True):
                    if values[index] is not None:
                        later[name].append((values[index], values[key]))
                        values[index] = None  # the row it points at may come later
                rows.append(tuple(values))
            await target.insert(table, rows)
            advance(len(rows))
    for name, pairs in later.items():
        for start in range(0, len(pairs), batch_size):
            await target.set_column(table, name, pairs[start : start + batch_size])
    if table.serial:
        await target.follow_sequence(table)
    return total
