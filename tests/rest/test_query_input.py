"""Bad query parameters of the two list routes: a 400 naming the parameter."""

from __future__ import annotations

import httpx
import pytest

from db.services.pagination import MAX_PAGE_NUM, MAX_PAGE_SIZE
from tests.factories import Account, create_session
from tests.rest.expect import refused, url

BAD_NUMBERS = ["0", "-1", "abc", "", "1.5", "1e2", "0x10", "99999999999999999999999"]
TOO_LARGE = {"page_size": str(MAX_PAGE_SIZE + 1), "page_num": str(MAX_PAGE_NUM + 1)}


async def _list_path(client: httpx.AsyncClient, admin: Account, route: str) -> str:
    if route == "logs":
        return url("/logs")
    return url(f"/sessions/{await create_session(client, admin)}/messages")


@pytest.mark.parametrize("route", ["messages", "logs"])
@pytest.mark.parametrize("name", ["page_size", "page_num"])
async def test_bad_page_numbers(
    client: httpx.AsyncClient, admin: Account, route: str, name: str
) -> None:
    path = await _list_path(client, admin, route)
    for value in [*BAD_NUMBERS, TOO_LARGE[name]]:
        response = await client.get(path, params={name: value}, headers=admin.headers)
        refused(response, 400, field=name)


@pytest.mark.parametrize("level", ["debug", "INFO", "Error", "", "info,error", "critical"])
async def test_bad_level(client: httpx.AsyncClient, admin: Account, level: str) -> None:
    response = await client.get(url("/logs"), params={"level": level}, headers=admin.headers)
    message = refused(response, 400, field="level")
    assert all(name in message for name in ("info", "warning", "error"))


BAD_TIMES = [
    "yesterday",
    "",
    "2020-13-01T00:00:00Z",
    "2020-02-30T00:00:00Z",
    "2020-03-01T25:00:00Z",
    "2020-03-01T10:00:00+25:00",
    "1700000000",  # would be read as Unix seconds
    "20200301",  # would be read as Unix seconds (1970-08-23), not 1 March 2020
    "1583056800.5",
    "01/03/2020 10:00",
]


@pytest.mark.parametrize("name", ["start_time", "end_time"])
@pytest.mark.parametrize("value", BAD_TIMES)
async def test_bad_time(client: httpx.AsyncClient, admin: Account, name: str, value: str) -> None:
    response = await client.get(url("/logs"), params={name: value}, headers=admin.headers)
    assert "ISO 8601" in refused(response, 400, field=name)


async def test_start_after_end(client: httpx.AsyncClient, admin: Account) -> None:
    params = {"start_time": "2020-03-01T10:00:00.000001Z", "end_time": "2020-03-01T10:00:00Z"}
    response = await client.get(url("/logs"), params=params, headers=admin.headers)
    assert "end_time" in refused(response, 400, field="start_time")


async def test_start_after_end_across_offsets(client: httpx.AsyncClient, admin: Account) -> None:
    # 10:30+01:00 is 09:30 UTC: before 10:00 UTC, so this range is fine ...
    fine = {"start_time": "2020-03-01T10:30:00+01:00", "end_time": "2020-03-01T10:00:00Z"}
    assert (await client.get(url("/logs"), params=fine, headers=admin.headers)).status_code == 200
    # ... while 10:30-01:00 is 11:30 UTC: after it.
    bad = {"start_time": "2020-03-01T10:30:00-01:00", "end_time": "2020-03-01T10:00:00Z"}
    refused(
        await client.get(url("/logs"), params=bad, headers=admin.headers), 400, field="start_time"
    )
