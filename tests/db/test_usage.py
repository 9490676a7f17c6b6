"""The usage report as the service runs it: one statement on usage_records, read through
its indexes, whoever may read what, and UTC days however a time was stored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from tortoise import Tortoise

from db.errors import Forbidden, Invalid
from db.identity import Caller
from db.models import Role
from db.services import usage
from db.services.usage import UsageGroup
from tests.conftest import BACKEND
from tests.schema.statements import LOGGER, counted
from tests.usage_traffic import clear_usage, record_usage

ALL_GROUPS = (UsageGroup.USER, UsageGroup.MODEL_CONFIG, UsageGroup.DAY)
START = datetime(2020, 3, 1, tzinfo=UTC)


def caller(*, admin: bool = False) -> Caller:
    return Caller(str(uuid.uuid4()), "someone", Role.ADMIN if admin else Role.USER)


@pytest.fixture(autouse=True)
async def no_usage_yet(app: Any) -> AsyncIterator[None]:
    await clear_usage()
    yield


async def test_groups_combine_in_one_ordered_row_each(app: Any) -> None:
    users = sorted(str(uuid.uuid4()) for _ in range(2))
    configs = sorted(str(uuid.uuid4()) for _ in range(2))
    # Written out of order, so the order of the answer is the report's own.
    for day, user, config, prompt in [
        (1, users[1], configs[0], 1),
        (0, users[1], configs[1], 2),
        (1, users[0], configs[1], 4),
        (0, users[0], configs[0], 8),
        (0, users[0], configs[0], 16),
        (0, users[0], configs[1], 32),
    ]:
        await record_usage(START + timedelta(days=day, hours=3), user, config, prompt=prompt)

    rows = await usage.report(caller=caller(admin=True), group_by=ALL_GROUPS)
    per_user_and_day = await usage.report(
        caller=caller(admin=True), group_by=[UsageGroup.DAY, UsageGroup.USER]
    )

    assert [(r.day, r.user_id, r.model_config_id, r.replies, r.prompt_tokens) for r in rows] == [
        ("2020-03-01", users[0], configs[0], 2, 24),
        ("2020-03-01", users[0], configs[1], 1, 32),
        ("2020-03-01", users[1], configs[1], 1, 2),
        ("2020-03-02", users[0], configs[1], 1, 4),
        ("2020-03-02", users[1], configs[0], 1, 1),
    ]
    assert [(r.day, r.user_id, r.model_config_id, r.prompt_tokens) for r in per_user_and_day] == [
        ("2020-03-01", users[0], None, 56),
        ("2020-03-01", users[1], None, 2),
        ("2020-03-02", users[0], None, 4),
        ("2020-03-02", users[1], None, 1),
    ]


async def test_a_day_is_the_utc_date_whatever_offset_a_time_was_stored_with(app: Any) -> None:
    """SQLite keeps the text of the time as it was given (its offset too); PostgreSQL a
    timestamptz. Either way the day is the UTC one."""
    user, config = str(uuid.uuid4()), str(uuid.uuid4())
    east = timezone(timedelta(hours=2))
    await record_usage(datetime(2020, 3, 2, 1, 0, tzinfo=east), user, config, prompt=1)
    await record_usage(datetime(2020, 3, 1, 23, 59, 59, 999999, tzinfo=UTC), user, config, prompt=2)
    await record_usage(datetime(2020, 3, 2, tzinfo=UTC), user, config, prompt=4)

    rows = await usage.report(caller=caller(admin=True), group_by=[UsageGroup.DAY])

    assert [(row.day, row.prompt_tokens) for row in rows] == [("2020-03-01", 3), ("2020-03-02", 4)]


async def test_who_reads_whose_usage(app: Any) -> None:
    alice, bob, admin = caller(), caller(), caller(admin=True)
    config = str(uuid.uuid4())
    await record_usage(START, alice.user_id, config, prompt=1)
    await record_usage(START, bob.user_id, config, prompt=2)

    def shown(rows: list[usage.UsageRow]) -> list[tuple[str | None, int]]:
        return [(row.user_id, row.prompt_tokens) for row in rows]

    assert shown(await usage.report(caller=alice)) == [(alice.user_id, 1)]
    assert shown(await usage.report(caller=alice, user_id=alice.user_id)) == [(alice.user_id, 1)]
    with pytest.raises(Forbidden):
        await usage.report(caller=alice, user_id=bob.user_id)
    with pytest.raises(Forbidden):  # refused by name, even for an id nobody has
        await usage.report(caller=alice, user_id="not-a-uuid")
    assert shown(await usage.report(caller=admin, user_id=bob.user_id)) == [(bob.user_id, 2)]
    assert sorted(shown(await usage.report(caller=admin))) == sorted(
        [(alice.user_id, 1), (bob.user_id, 2)]
    )
    assert await usage.report(caller=admin, user_id=admin.user_id) == []
    assert await usage.report(caller=admin, user_id="not-a-uuid") == []
    [nothing] = await usage.report(caller=admin, user_id="not-a-uuid", group_by=[])
    assert (nothing.replies, nothing.prompt_tokens, nothing.average_latency_ms) == (0, 0, None)


async def test_bounds(app: Any) -> None:
    user, config = str(uuid.uuid4()), str(uuid.uuid4())
    for minutes in (0, 1, 2):
        await record_usage(START + timedelta(minutes=minutes), user, config, prompt=10**minutes)
    admin = caller(admin=True)

    async def tokens(**bounds: datetime) -> int:
        [total] = await usage.report(caller=admin, group_by=(), **bounds)
        return total.prompt_tokens

    assert await tokens(start_time=START) == 111
    assert await tokens(start_time=START, end_time=START + timedelta(minutes=2)) == 11
    assert await tokens(start_time=START + timedelta(microseconds=1)) == 110
    assert await tokens(end_time=START + timedelta(minutes=1, microseconds=1)) == 11
    assert await tokens(start_time=START, end_time=START) == 0
    # Without an offset a time is UTC; with one, it is brought to UTC first.
    assert await tokens(start_time=datetime(2020, 3, 1, 0, 1)) == 110
    assert (
        await tokens(end_time=datetime(2020, 3, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 1
    )
    with pytest.raises(Invalid) as refused:
        await usage.report(caller=admin, start_time=START, end_time=START - timedelta(seconds=1))
    assert refused.value.field == "start_time"


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "idx_usage_recor_created_abe4dd"),
        ({"user": True}, "idx_usage_recor_user_id_2993a1"),
        ({"config": True}, "idx_usage_recor_model_c_3ead24"),
    ],
    ids=["everyone", "one user", "one config"],
)
async def test_a_report_is_one_statement_read_through_an_index(
    app: Any, caplog: pytest.LogCaptureFixture, filters: dict[str, bool], index: str
) -> None:
    user, config = str(uuid.uuid4()), str(uuid.uuid4())
    for day in range(40):
        await record_usage(START + timedelta(days=day), user, config, prompt=1)

    async with counted(caplog) as statements:
        rows = await usage.report(
            caller=caller(admin=True),
            start_time=START + timedelta(days=5),
            end_time=START + timedelta(days=35),
            user_id=user if filters.get("user") else None,
            model_config_id=config if filters.get("config") else None,
            group_by=ALL_GROUPS,
        )

    assert len(rows) == 30
    assert len(statements) == 1, statements
    [statement] = statements
    assert "usage_records" in statement and "messages" not in statement
    record = [r for r in caplog.records if r.name == LOGGER][-1]
    sql, values = record.args  # type: ignore[misc]
    plan = await plan_of(sql, values)
    assert index in plan, plan
    # Not the whole table, nor the whole index: a range of it.
    assert "Seq Scan" not in plan and "SCAN usage_records" not in plan, plan


async def plan_of(sql: str, values: list[Any]) -> str:
    """The plan of a statement with its values; on PostgreSQL with sequential scans
    priced out (a small table would rightly be scanned whole otherwise)."""
    connection = Tortoise.get_connection("default")
    if BACKEND == "postgres":
        async with connection.acquire_connection() as raw, raw.transaction():
            await raw.execute("SET LOCAL enable_seqscan = off")
            return "\n".join(row[0] for row in await raw.fetch("EXPLAIN " + sql, *values))
    _, rows = await connection.execute_query("EXPLAIN QUERY PLAN " + sql, values)
    return "\n".join(str(row["detail"]) for row in rows)
