"""A revoked key, or the keys of a user disabled or given another role, stop working (or
carry the new role) at once in every server process, though servers keep the keys they
verified (AUTH_CACHE_SECONDS, on PostgreSQL) to spare a lookup per request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from starlette.applications import Starlette

from db.services import users
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


DISABLE = "mutation($id: ID!) { disableUser(id: $id) { disabledAt } }"


async def test_a_user_disabled_through_one_server_is_refused_at_once_by_every_server(
    app: Starlette,
    servers: StartServer,
    database_url: str,
    api_key: str,
    alice: Account,
    bob: Account,
    admin: Account,
) -> None:
    env = gateway_env(database_url, api_key, AUTH_CACHE_SECONDS="600")
    gateways = await start_gateways(servers, 2, env)
    second = await users.create_key(user_id=alice.user_id, label="phone")
    alices = [alice.headers, {"Authorization": f"Bearer {second.secret}"}]
    async with httpx.AsyncClient(timeout=10) as http:
        urls = [f"http://127.0.0.1:{server.port}{ROUTE}" for server in gateways]
        for url in urls:  # each server has verified (and kept) every key
            for headers in (*alices, bob.headers):
                assert (await http.get(url, headers=headers)).status_code == 200

        graphql = f"http://127.0.0.1:{gateways[0].port}/graphql"
        body = {"query": DISABLE, "variables": {"id": alice.user_id}}
        disabled = await http.post(graphql, json=body, headers=admin.headers)
        assert disabled.json()["data"]["disableUser"]["disabledAt"], disabled.text

        for url in urls:
            for headers in alices:
                refused = await http.get(url, headers=headers)
                assert refused.status_code == 401, refused.text
                assert refused.json()["message"] == "user is disabled"
            assert (await http.get(url, headers=bob.headers)).status_code == 200


async def test_a_role_changed_with_the_cli_holds_at_once_in_every_server(
    app: Starlette,
    servers: StartServer,
    database_url: str,
    api_key: str,
    alice: Account,
    admin: Account,
    tmp_path: Path,
) -> None:
    env = gateway_env(database_url, api_key, AUTH_CACHE_SECONDS="600")
    gateways = await start_gateways(servers, 2, env)
    async with httpx.AsyncClient(timeout=10) as http:
        logs = [f"http://127.0.0.1:{server.port}/api/v1/logs" for server in gateways]
        for url in logs:  # alice verified (and kept) as a user
            assert (await http.get(url, headers=alice.headers)).status_code == 403

        changed = await asyncio.to_thread(
            run_cli, "user", "role", alice.user_id, "admin", env=env, cwd=tmp_path
        )
        assert changed.returncode == 0, changed.stderr

        for url in logs:
            allowed = await http.get(url, headers=alice.headers)
            assert allowed.status_code == 200, allowed.text
