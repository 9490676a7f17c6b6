"""page_size / page_num on the two list routes: defaults, edges and the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from tests.factories import Account, create_session, make_log, send
from tests.rest.expect import ok, refused, url

T0 = datetime(2020, 3, 1, tzinfo=UTC)
COUNT = 22  # more than the default page; even, as messages come in pairs


async def _page(client: httpx.AsyncClient, path: str, admin: Account, **params: Any) -> Any:
    return ok(await client.get(path, params=params, headers=admin.headers))


async def _items(client: httpx.AsyncClient, path: str, admin: Account, **params: Any) -> list[str]:
    data = await _page(client, path, admin, **params)
    assert data["total"] == COUNT
    items = data["messages"] if "messages" in data else data["logs"]
    return [item["message_id"] if "message_id" in item else item["log_id"] for item in items]


@pytest.fixture(params=["messages", "logs"])
async def listing(request: pytest.FixtureRequest, client: httpx.AsyncClient, admin: Account) -> str:
    """The path of a list holding COUNT items."""
    if request.param == "logs":
        for n in range(COUNT):
            await make_log(f"entry {n}", at=T0 + timedelta(seconds=n))
        return url("/logs")
    session_id = await create_session(client, admin)
    for n in range(COUNT // 2):
        ok(await send(client, admin, session_id, f"q{n}"))
    return url(f"/sessions/{session_id}/messages")


async def test_default_page_size(client: httpx.AsyncClient, admin: Account, listing: str) -> None:
    everything = await _items(client, listing, admin, page_size=MAX_PAGE_SIZE)
    assert len(everything) == COUNT
    assert await _items(client, listing, admin) == everything[:DEFAULT_PAGE_SIZE]
    assert await _items(client, listing, admin, page_num=2) == everything[DEFAULT_PAGE_SIZE:]


@pytest.mark.parametrize("size", [1, 3, 5, 11, 22])
async def test_pages_cover_everything_once_in_order(
    client: httpx.AsyncClient, admin: Account, listing: str, size: int
) -> None:
    everything = await _items(client, listing, admin, page_size=MAX_PAGE_SIZE)
    pages = [
        await _items(client, listing, admin, page_size=size, page_num=n)
        for n in range(1, -(-COUNT // size) + 1)
    ]
    assert [len(page) for page in pages[:-1]] == [size] * (len(pages) - 1)
    last = COUNT % size or size  # partially full, or exactly full
    assert len(pages[-1]) == last
    assert [item for page in pages for item in page] == everything


@pytest.mark.parametrize("beyond", [1, 2, 1000])
async def test_beyond_the_last_page_is_empty(
    client: httpx.AsyncClient, admin: Account, listing: str, beyond: int
) -> None:
    page_num = -(-COUNT // 5) + beyond
    assert await _items(client, listing, admin, page_size=5, page_num=page_num) == []


async def test_page_size_cap(client: httpx.AsyncClient, admin: Account, listing: str) -> None:
    assert len(await _items(client, listing, admin, page_size=MAX_PAGE_SIZE)) == COUNT
    response = await client.get(
        listing, params={"page_size": MAX_PAGE_SIZE + 1}, headers=admin.headers
    )
    assert str(MAX_PAGE_SIZE) in refused(response, 400, field="page_size")


async def test_logs_pages_are_newest_first(client: httpx.AsyncClient, admin: Account) -> None:
    for n in range(COUNT):
        await make_log(f"entry {n}", at=T0 + timedelta(seconds=n))
    first = await _page(client, url("/logs"), admin, page_size=3)
    second = await _page(client, url("/logs"), admin, page_size=3, page_num=2)
    names = [entry["message"] for entry in first["logs"] + second["logs"]]
    assert names == [f"entry {n}" for n in range(COUNT - 1, COUNT - 7, -1)]


async def test_empty_list(client: httpx.AsyncClient, admin: Account) -> None:
    session_id = await create_session(client, admin)
    path = url(f"/sessions/{session_id}/messages")
    assert await _page(client, path, admin) == {"messages": [], "total": 0}
    assert await _page(client, url("/logs"), admin, level="warning") == {"logs": [], "total": 0}
