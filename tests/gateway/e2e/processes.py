"""Gateway server processes on the test run's database, for what one process cannot show.

Each is `python -m uvicorn gateway.asgi:app` (see tests/servers.py) configured only by
the environment given here: the run's database, the key variable a config names, and
quick provider policies.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.factories import Account
from tests.gateway.e2e.support import KEY_ENV
from tests.servers import Server, StartServer, child_env

CREATE_CONFIG = """
mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { id version }
}"""


def gateway_env(database_url: str, api_key: str, **settings: str) -> dict[str, str]:
    """A server's environment: the database, the key (passed explicitly), `settings`."""
    values = {
        "DATABASE_URL": database_url,
        KEY_ENV: api_key,
        "BOOTSTRAP_ADMIN": "false",
        "PROVIDER_MAX_RETRIES": "1",
        "PROVIDER_CONNECT_TIMEOUT": "2",
        "PROVIDER_READ_TIMEOUT": "20",
        "PROVIDER_TOTAL_TIMEOUT": "30",
        # Off unless a test sets them (test_rate_limits.py): others open many streams.
        "RATE_LIMIT_PER_MINUTE": "0",
        "REPLY_RATE_LIMIT_PER_MINUTE": "0",
        "MAX_STREAMS_PER_USER": "0",
    }
    values.update(settings)
    return child_env(**values)


async def start_gateways(servers: StartServer, count: int, env: dict[str, str]) -> list[Server]:
    """`count` processes on free ports, once all of them answer."""
    started = [servers(env=env) for _ in range(count)]
    await asyncio.gather(*(server.wait_ready_async() for server in started))
    return started


async def create_openai_config(
    http: httpx.AsyncClient, admin: Account, base_url: str, model_name: str
) -> dict[str, Any]:
    """createModelConfig through GraphQL, as an admin adds a model: {id, version}."""
    variables = {
        "input": {
            "provider": "openai",
            "modelName": model_name,
            "modelVersion": "1",
            "baseUrl": base_url,
            "apiKeyEnv": KEY_ENV,
        }
    }
    response = await http.post(
        "/graphql", json={"query": CREATE_CONFIG, "variables": variables}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    config: dict[str, Any] = body["data"]["createModelConfig"]
    return config
