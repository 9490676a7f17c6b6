"""Rate limits across two real server processes on PostgreSQL, sharing counts through the
database's rate_windows or through Redis (REDIS_URL, a key prefix of the test's own).

Each process decides locally and sends its counts in the background, so two processes
admit together at most the limit plus a documented slack (db/services/rate_limits.py):
each other process may admit, before it learns the total again, at most a quarter of what
was left when it last saw it; a test crossing a minute boundary may see up to a couple
more (the previous window weighs a little less each second).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
from starlette.applications import Starlette

from tests.conftest import BACKEND
from tests.factories import Account, create_session, make_config
from tests.gateway.e2e.processes import gateway_env, start_gateways
from tests.servers import StartServer

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="several processes: PostgreSQL")

LIMIT = 40
# Past the limit: a quarter of it (what one other process may admit on its own) and two
# for a minute boundary crossed during the test.
SLACK = LIMIT // 4 + 2
ROUTE = "/api/v1/model-configs"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PATIENCE = 100  # probes, at 0.05 s apart, before a test gives up waiting for a flush


def store_settings(store: str) -> dict[str, str]:
    if store == "redis":
        return {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": f"cgw:test:{uuid.uuid4().hex}:"}
    return {}


@pytest.mark.parametrize("store", ["postgres", "redis"])
async def test_two_processes_hold_one_limit(
    app: Starlette,
    servers: StartServer,
    database_url: str,
    api_key: str,
    alice: Account,
    store: str,
) -> None:
    env = gateway_env(
        database_url,
        api_key,
        RATE_LIMIT_PER_MINUTE=str(LIMIT),
        RATE_LIMIT_FLUSH_SECONDS="0.1",
        **store_settings(store),
    )
    first, second = await start_gateways(servers, 2, env)
    async with httpx.AsyncClient(timeout=10) as http:
        urls = [f"http://127.0.0.1:{server.port}{ROUTE}" for server in (first, second)]
        accepted = 0
        for _ in range(10):
            response = await http.get(urls[0], headers=alice.headers)
            assert response.status_code == 200
            accepted += 1
        # The other process learns of them (its own counts sent, the total read back).
        for _ in range(PATIENCE):
            response = await http.get(urls[1], headers=alice.headers)
            assert response.status_code == 200
            accepted += 1
            if int(response.headers["RateLimit-Remaining"]) <= LIMIT - accepted:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the second process never saw the first one's requests")

        # Both in turn, as fast as they answer, until each refuses three in a row.
        refused_in_a_row = [0, 0]
        turn = 0
        while min(refused_in_a_row) < 3:
            which = turn % 2
            response = await http.get(urls[which], headers=alice.headers)
            turn += 1
            if response.status_code == 200:
                accepted += 1
                refused_in_a_row[which] = 0
                continue
            assert response.status_code == 429, response.text
            assert response.json() == {
                "code": 429,
                "message": response.json()["message"],
                "data": None,
            }
            assert int(response.headers["Retry-After"]) >= 1
            refused_in_a_row[which] += 1
        assert LIMIT - 2 <= accepted <= LIMIT + SLACK, accepted


async def test_streams_are_counted_across_processes(
    app: Starlette,
    servers: StartServer,
    database_url: str,
    api_key: str,
    alice: Account,
    client: httpx.AsyncClient,
) -> None:
    env = gateway_env(
        database_url, api_key, MAX_STREAMS_PER_USER="1", RATE_LIMIT_FLUSH_SECONDS="0.1"
    )
    first, second = await start_gateways(servers, 2, env)
    config = await make_config(model_name="slow", parameters={"chunk_delay_ms": 100})
    slow = await create_session(client, alice, model_config_id=str(config.id))
    other = await create_session(client, alice)
    question = " ".join(f"word{n}" for n in range(40))
    streamed = {**alice.headers, "Accept": "text/event-stream"}

    def sender(port: int, session_id: str) -> Callable[[], Awaitable[httpx.Response]]:
        url = f"http://127.0.0.1:{port}/api/v1/sessions/{session_id}/messages"
        body = {"user_id": alice.user_id, "message": "hi"}
        return lambda: http.post(url, json=body, headers=streamed)

    async with httpx.AsyncClient(timeout=10) as http:
        url = f"http://127.0.0.1:{first.port}/api/v1/sessions/{slow}/messages"
        body = {"user_id": alice.user_id, "message": question}
        async with http.stream("POST", url, json=body, headers=streamed) as held:
            assert held.status_code == 200
            lines = held.aiter_lines()
            while "event: delta" not in await anext(lines):
                pass
            refused = await sender(second.port, other)()
            assert refused.status_code == 429, refused.text
            assert int(refused.headers["Retry-After"]) >= 1
        # The first process forgets the closed stream in the background: soon admitted.
        for _ in range(PATIENCE):
            response = await sender(second.port, other)()
            if response.status_code == 200:
                break
            assert response.status_code == 429
            await asyncio.sleep(0.05)
        assert response.status_code == 200, response.text
