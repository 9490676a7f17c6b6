"""A revoked key stops working at once in every server process, though servers keep the
keys they verified (AUTH_CACHE_SECONDS, on PostgreSQL) to spare a lookup per request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from starlette.applications import Starlette

from tests.factories import Account
from tests.gateway.e2e.processes import gateway_env, start_gateways
from tests.servers import StartServer, run_cli

ROUTE = "/api/v1/model-configs"


async def test_a_key_revoked_with_the_cli_is_refused_at_once_by_every_server(
    app: Starlette,
    servers: StartServer,
    database_url: str,
    api_key: str,
    alice: Account,
    bob: Account,
    tmp_path: Path,
) -> None:
    env = gateway_env(database_url, api_key, AUTH_CACHE_SECONDS="600")
    gateways = await start_gateways(servers, 2, env)
    async with httpx.AsyncClient(timeout=10) as http:
        urls = [f"http://127.0.0.1:{server.port}{ROUTE}" for server in gateways]
        for url in urls:  # each server has verified (and kept) both keys
            for account in (alice, bob):
                assert (await http.get(url, headers=account.headers)).status_code == 200

        revoked = await asyncio.to_thread(
            run_cli, "key", "revoke", alice.key_id, env=env, cwd=tmp_path
        )
        assert revoked.returncode == 0, revoked.stderr

        for url in urls:
            refused = await http.get(url, headers=alice.headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["message"] == "API key has been revoked"
            assert (await http.get(url, headers=bob.headers)).status_code == 200
