"""Authentication and authorisation on every route of /api/v1."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from db.services import model_configs, users
from tests.factories import Account, create_session
from tests.rest.expect import ok, refused, url
from tests.rest.routes import RouteCall, Target, each_route

NO_SUCH_SESSION = "0f6a4e1c-7f0e-4c55-9a3c-2b7b8f0c1d2e"


@dataclass(frozen=True)
class World:
    alice: Account
    bob: Account
    root: Account
    mine: Target  # alice's session and the default config, acting as alice

    def as_user(self, account: Account, *, session_id: str | None = None) -> Target:
        session = session_id or self.mine.session_id
        return Target(session, self.mine.config_id, account.user_id)


@pytest.fixture
async def world(client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account) -> World:
    session_id = await create_session(client, alice)
    config = await model_configs.get_default()
    return World(alice, bob, admin, Target(session_id, str(config.id), alice.user_id))


def _basic(account: Account) -> str:
    return "Basic " + base64.b64encode(f"{account.user_id}:{account.key}".encode()).decode()


CREDENTIALS: dict[str, Callable[[Account], str | None]] = {
    "no header": lambda account: None,
    "empty header": lambda account: "",
    "basic scheme": _basic,
    "bearer without token": lambda account: "Bearer ",
    "token without scheme": lambda account: account.key,
    "other scheme": lambda account: f"Token {account.key}",
    "unknown token": lambda account: "Bearer cgw_" + "x" * 43,
    "token with a typo": lambda account: f"Bearer {account.key[:-1]}",
}


@each_route()
@pytest.mark.parametrize("kind", CREDENTIALS)
async def test_missing_or_malformed_credentials_are_401(
    client: httpx.AsyncClient, world: World, route: RouteCall, kind: str
) -> None:
    authorization = CREDENTIALS[kind](world.alice)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await route.call(client, world.mine, headers)
    refused(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@each_route()
async def test_revoked_key_is_401(
    client: httpx.AsyncClient, world: World, route: RouteCall
) -> None:
    await users.revoke_key(key_id_or_prefix=world.alice.key_id)
    await users.revoke_key(key_id_or_prefix=world.root.key_id)
    for account in (world.alice, world.root):
        response = await route.call(client, world.as_user(account), account.headers)
        assert "revoked" in refused(response, 401)


@each_route()
async def test_bearer_scheme_is_case_insensitive(
    client: httpx.AsyncClient, world: World, route: RouteCall
) -> None:
    ok(await route.call(client, world.mine, {"Authorization": f"bearer {world.root.key}"}))


@each_route()
async def test_admin_may_act_for_any_user(
    client: httpx.AsyncClient, world: World, route: RouteCall
) -> None:
    ok(await route.call(client, world.mine, world.root.headers))


@each_route(admin_only=False)
async def test_users_may_use_their_own_data(
    client: httpx.AsyncClient, world: World, route: RouteCall
) -> None:
    ok(await route.call(client, world.mine, world.alice.headers))


@each_route(admin_only=True)
async def test_admin_routes_refuse_users(
    client: httpx.AsyncClient, world: World, route: RouteCall
) -> None:
    message = refused(await route.call(client, world.mine, world.alice.headers), 403)
    assert "admin" in message
    configs = ok(await client.get(url("/model-configs"), headers=world.alice.headers))
    assert [model["version"] for model in configs["models"]] == [1]  # nothing was changed


@each_route(on_session=True)
async def test_another_users_session_is_not_found(
    client: httpx.AsyncClient, world: World, route: RouteCall
) -> None:
    hidden = refused(await route.call(client, world.as_user(world.bob), world.bob.headers), 404)
    missing = world.as_user(world.bob, session_id=NO_SUCH_SESSION)
    absent = refused(await route.call(client, missing, world.bob.headers), 404)
    assert hidden == absent  # nothing tells bob that alice's session exists
    path = url(f"/sessions/{world.mine.session_id}/messages")
    assert ok(await client.get(path, headers=world.alice.headers))["total"] == 0


@each_route(names_user=True)
async def test_acting_as_another_user_is_forbidden(
    client: httpx.AsyncClient, world: World, route: RouteCall
) -> None:
    response = await route.call(client, world.as_user(world.bob), world.alice.headers)
    assert "user_id" in refused(response, 403)
    path = url(f"/sessions/{world.mine.session_id}/messages")
    assert ok(await client.get(path, headers=world.alice.headers))["total"] == 0
