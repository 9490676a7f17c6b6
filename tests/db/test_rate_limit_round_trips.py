"""Rate limits cost no round trip for a caller under its limit, counted on the wire (as
test_round_trips.py): a history page stays 1, a GraphQL read through the compiled path
stays 1, a whole turn stays 2; the counts reach PostgreSQL later, in one background
statement for every caller (flushed here by the test, not by the timer)."""

from __future__ import annotations

import httpx
import pytest

from bench.pg_wire import PgWireProxy
from db.models import RateWindow
from db.services import rate_limits, users
from gateway.settings import Settings, load_settings
from tests.conftest import BACKEND, needs_compiled_reads
from tests.db.conftest import proxied_url
from tests.db.test_round_trips import round_trips
from tests.factories import Account, create_session, send

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="round trips of PostgreSQL")


@pytest.fixture
def settings(database_url: str, proxy: PgWireProxy) -> Settings:
    """Limits on at their defaults; the timer never flushes within a test."""
    proxied = proxied_url(database_url, proxy)
    return load_settings(
        database_url=proxied,
        shutdown_grace_seconds=5,
        rate_limit_flush_seconds=60,
        _env_file=None,
    )


async def test_a_request_under_the_limit_costs_no_round_trip(
    client: httpx.AsyncClient, alice: Account, bob: Account, proxy: PgWireProxy
) -> None:
    session_id = await create_session(client, alice)
    page = f"/api/v1/sessions/{session_id}/messages"
    await client.get(page, headers=alice.headers)  # prepares
    spent, statements = await round_trips(proxy, client.get(page, headers=alice.headers))
    assert spent == 1, statements
    # A turn: its two round trips, the reply counted besides the request.
    await send(client, alice, session_id, "first")
    spent, statements = await round_trips(proxy, send(client, alice, session_id, "second"))
    assert spent == 2, statements

    # What was counted reaches the table in one statement for every key and limit
    # (once the driver has prepared it).
    await rate_limits.flush()
    await send(client, alice, session_id, "third")
    await client.get(page, headers=bob.headers)
    spent, statements = await round_trips(proxy, rate_limits.flush())
    assert spent == 1, statements
    credential = (await users.authenticate(token=alice.key)).credential
    rows = await RateWindow.filter(key__contains=f":{credential}:")
    assert {row.key.split(":")[0]: row.hits for row in rows} == {"req": 6, "reply": 3}


@needs_compiled_reads
async def test_a_compiled_graphql_read_stays_one_round_trip(
    client: httpx.AsyncClient, alice: Account, proxy: PgWireProxy
) -> None:
    body = {"query": "{ sessions(first: 5) { totalCount edges { node { id } } } }"}
    first = await client.post("/graphql", json=body, headers=alice.headers)  # prepares
    assert "errors" not in first.json(), first.text
    answer = client.post("/graphql", json=body, headers=alice.headers)
    spent, statements = await round_trips(proxy, answer)
    assert spent == 1, statements
    standing = rate_limits.standing(await users.authenticate(token=alice.key))
    assert standing is not None and standing.remaining == standing.limit - 2
