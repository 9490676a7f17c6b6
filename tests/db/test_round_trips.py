"""What a chat turn and a history page cost in round trips to PostgreSQL, counted on the
wire (a proxy between the app and the server reads what the driver really sends): a
whole reply 2 (the session taken with the question stored and the history read; the
reply stored with the lease given back and the log entry), a streamed one 3 (its buffer
row), a history page 1, once the driver has prepared its statements and the caller's
key is known."""

from __future__ import annotations

from collections.abc import Awaitable

import httpx
import pytest

from bench.pg_wire import PgWireProxy
from gateway.settings import Settings, load_settings
from tests.conftest import BACKEND, needs_compiled_reads
from tests.db.conftest import proxied_url
from tests.factories import Account, create_session, send

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="round trips of PostgreSQL")
TURNS = 3


@pytest.fixture
def settings(database_url: str, proxy: PgWireProxy) -> Settings:
    """The app reaches the run's database through the counting proxy."""
    proxied = proxied_url(database_url, proxy)
    # Rate limits off: their background flushes would land among the counted round trips
    # (what they cost: test_rate_limit_round_trips.py).
    return load_settings(
        database_url=proxied,
        shutdown_grace_seconds=5,
        rate_limit_per_minute=0,
        reply_rate_limit_per_minute=0,
        max_streams_per_user=0,
        _env_file=None,
    )


async def round_trips(proxy: PgWireProxy, work: Awaitable[object]) -> tuple[int, list[str]]:
    """The round trips `work` makes (statements included, for a failure's message)."""
    await proxy.quiet()
    before = proxy.snapshot()
    await work
    await proxy.quiet()
    spent = proxy.snapshot() - before
    return spent.round_trips, spent.statements()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({}, 2), ({"Accept": "text/event-stream"}, 3), ({"Idempotency-Key": "k"}, 2)],
    ids=["whole", "streamed", "keyed"],
)
async def test_a_turn_costs_few_round_trips(
    client: httpx.AsyncClient,
    alice: Account,
    proxy: PgWireProxy,
    headers: dict[str, str],
    expected: int,
) -> None:
    session_id = await create_session(client, alice)
    counts = []
    for turn in range(TURNS):
        extra = {
            key: f"{value}{turn}" if key == "Idempotency-Key" else value
            for key, value in headers.items()
        }
        response = send(client, alice, session_id, f"question {turn}", headers=extra)
        spent, statements = await round_trips(proxy, response)
        counts.append((spent, statements))
    # The first turn prepares the statements (one more round trip each); then it is steady.
    steady = [spent for spent, _ in counts[1:]]
    assert steady == [expected] * (TURNS - 1), counts


async def test_a_history_page_is_one_round_trip(
    client: httpx.AsyncClient, alice: Account, proxy: PgWireProxy
) -> None:
    session_id = await create_session(client, alice)
    await send(client, alice, session_id, "hello")
    url = f"/api/v1/sessions/{session_id}/messages"
    await client.get(url, headers=alice.headers)  # prepares the statement

    spent, statements = await round_trips(proxy, client.get(url, headers=alice.headers))

    assert spent == 1, statements


GRAPHQL_READS = {
    "nested": """{ sessions(first: 10) { edges { node { id createdAt messageCount
        modelConfig { modelName } messages(first: 5) { edges { node { id type content } } } } }
        pageInfo { hasNextPage endCursor } totalCount } }""",
    "flat": """query($id: ID!) { session(id: $id) { messages(first: 20) {
        edges { cursor node { id type content metadata createdAt } }
        pageInfo { hasNextPage } } } }""",
}


@needs_compiled_reads
@pytest.mark.parametrize("document", GRAPHQL_READS.values(), ids=GRAPHQL_READS.keys())
async def test_a_graphql_read_is_one_round_trip(
    client: httpx.AsyncClient, alice: Account, proxy: PgWireProxy, document: str
) -> None:
    """One statement writes the whole answer (schema.compiled); the key is known."""
    session_id = await create_session(client, alice)
    await send(client, alice, session_id, "hello")
    body = {"query": document, "variables": {"id": session_id} if "$id" in document else {}}
    first = await client.post("/graphql", json=body, headers=alice.headers)  # prepares
    assert "errors" not in first.json(), first.text

    answer = client.post("/graphql", json=body, headers=alice.headers)
    spent, statements = await round_trips(proxy, answer)

    assert spent == 1, statements
