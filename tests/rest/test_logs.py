"""4.1 GET /api/v1/logs: newest first, level and time filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.models import LogLevel
from db.services import auth_failures
from tests.factories import Account, make_log
from tests.rest.expect import ok, url, utc_time

T0 = datetime(2020, 3, 1, 10, 0, tzinfo=UTC)
# (minutes after T0, level), written out of order so only the sort can put them right.
ENTRIES = [(2, LogLevel.ERROR), (0, LogLevel.INFO), (3, LogLevel.INFO), (1, LogLevel.WARNING)]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
async def root(admin: Account) -> Account:
    """The admin, with the ENTRIES written."""
    for minutes, level in ENTRIES:
        await make_log(f"entry {minutes}", at=at(minutes), level=level)
    return admin


async def _logs(client: httpx.AsyncClient, root: Account, query: str = "") -> dict[str, Any]:
    data: dict[str, Any] = ok(await client.get(url("/logs") + query, headers=root.headers))
    return data


def _minutes(data: dict[str, Any]) -> list[int]:
    return [int(entry["message"].removeprefix("entry ")) for entry in data["logs"]]


async def test_newest_first_with_the_contract_fields(
    client: httpx.AsyncClient, root: Account
) -> None:
    data = await _logs(client, root)
    assert data["total"] == 4
    assert _minutes(data) == [3, 2, 1, 0]
    for entry in data["logs"]:
        minutes = int(entry["message"].removeprefix("entry "))
        assert isinstance(entry["log_id"], str) and entry["log_id"]
        assert entry["level"] == dict(ENTRIES)[minutes]
        assert utc_time(entry["created_time"]) == at(minutes)
    assert len({entry["log_id"] for entry in data["logs"]}) == 4


async def test_entries_the_service_writes_now_come_before_older_ones(
    client: httpx.AsyncClient, root: Account
) -> None:
    await client.get(url("/logs"), headers={"Authorization": "Bearer nope"})
    await auth_failures.flush()
    data = await _logs(client, root)
    assert data["total"] == 5
    assert (
        data["logs"][0]["message"]
        == "authentication failed: unknown API key (once, GET /api/v1/logs)"
    )
    assert _minutes({"logs": data["logs"][1:]}) == [3, 2, 1, 0]


@pytest.mark.parametrize("level", ["info", "warning", "error"])
async def test_level_filter(client: httpx.AsyncClient, root: Account, level: str) -> None:
    data = await _logs(client, root, f"?level={level}")
    expected = [m for m, lv in sorted(ENTRIES, reverse=True) if lv == level]
    assert _minutes(data) == expected
    assert data["total"] == len(expected)
    assert {entry["level"] for entry in data["logs"]} == {level}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?start_time=2020-03-01T10:01:00%2B00:00", [3, 2, 1]),
        ("?end_time=2020-03-01T10:01:00%2B00:00", [1, 0]),
        ("?start_time=2020-03-01T10:02:00Z&end_time=2020-03-01T10:02:00Z", [2]),
        ("?start_time=2020-03-01T10:01:00Z&end_time=2020-03-01T10:02:00Z", [2, 1]),
        ("?start_time=2020-03-01T10:00:00.000001Z", [3, 2, 1]),
        ("?end_time=2020-03-01T10:02:59.999999Z", [2, 1, 0]),
        ("?start_time=2020-03-01T10:04:00Z", []),
    ],
)
async def test_time_bounds_are_inclusive(
    client: httpx.AsyncClient, root: Account, query: str, expected: list[int]
) -> None:
    data = await _logs(client, root, query)
    assert _minutes(data) == expected
    assert data["total"] == len(expected)


@pytest.mark.parametrize(
    "start",
    [
        "2020-03-01T10:01:00+00:00",  # `+` unencoded: arrives as a space
        "2020-03-01T10:01:00%2B00:00",
        "2020-03-01T10:01:00%2000:00",
        "2020-03-01T11:01:00+01:00",
        "2020-03-01T15:31:00+0530",
        "2020-03-01T05:01:00-05:00",
        "2020-03-01T10:01:00Z",
        "2020-03-01T10:01:00",  # no offset: UTC
        "2020-03-01T10:01:00.000000Z",
    ],
)
async def test_time_spellings(client: httpx.AsyncClient, root: Account, start: str) -> None:
    assert _minutes(await _logs(client, root, f"?start_time={start}")) == [3, 2, 1]


async def test_filters_combine(client: httpx.AsyncClient, root: Account) -> None:
    query = "?level=info&start_time=2020-03-01T10:00:00+00:00&end_time=2020-03-01T10:02:00+00:00"
    data = await _logs(client, root, query)
    assert (_minutes(data), data["total"]) == ([0], 1)
    paged = await _logs(client, root, "?level=info&page_size=1&page_num=2")
    assert (_minutes(paged), paged["total"]) == ([0], 2)
