"""ENVIRONMENT=production: no GraphiQL, introspection for admins only, no bootstrap admin (nor
its key on the console), and settings unsafe in production refused at start."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings, SettingsError, load_settings
from tests.factories import Account
from tests.schema.gql import post
from tests.servers import CHAT_GATEWAY, StartServer, child_env, free_port, scratch_database

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
INTROSPECTIONS = ("{ __schema { queryType { name } } }", '{ __type(name: "User") { name } }')


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        environment="production",
        shutdown_grace_seconds=5,
        _env_file=None,
    )


async def test_graphiql_is_off(client: httpx.AsyncClient, alice: Account) -> None:
    page = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    answer = await client.post("/graphql", json={"query": "{ me { name } }"}, headers=alice.headers)

    assert page.status_code == 404 and "GraphiQL" not in page.text
    assert answer.json() == {"data": {"me": {"name": "alice"}}}


async def test_introspection_is_for_admins_only(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    for document in INTROSPECTIONS:
        for who in (alice, None):
            refused = await post(client, document, who)
            assert refused.data is None and set(refused.codes) == {"GRAPHQL_VALIDATION_FAILED"}
            assert "introspection has been disabled" in refused.errors[0]["message"]
        allowed = await post(client, document, admin)
        assert not allowed.errors and allowed.data, allowed.errors
    # __typename is no introspection; a name in a string is none either.
    typename = await post(client, "{ __typename me { name } }", alice)
    assert typename.data == {"__typename": "Query", "me": {"name": "alice"}}


async def test_no_one_introspects_when_introspection_is_off(
    database_url: str, admin: Account
) -> None:
    closed = load_settings(
        database_url=database_url,
        environment="production",
        graphql_introspection=False,
        _env_file=None,
    )
    transport = httpx.ASGITransport(app=create_app(closed), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as other:
        answer = await post(other, INTROSPECTIONS[0], admin)

    assert set(answer.codes) == {"GRAPHQL_VALIDATION_FAILED"}


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("cors_origins", "https://app.example,*", "CORS_ORIGINS must list the allowed origins"),
        ("jwt_leeway_seconds", 120, "JWT_LEEWAY_SECONDS must be at most 60"),
        ("log_level", "DEBUG", "LOG_LEVEL must not be debug"),
    ],
)
def test_unsafe_settings_are_refused(setting: str, value: object, named: str) -> None:
    with pytest.raises(SettingsError, match="unsafe with ENVIRONMENT=production") as refused:
        load_settings(environment="production", _env_file=None, **{setting: value})
    assert named in str(refused.value)
    # The same value is fine while developing.
    load_settings(_env_file=None, **{setting: value})


def test_a_jwks_url_must_be_https_in_production() -> None:
    jwt = {"jwt_issuer": "https://idp.test/", "jwt_audience": "gw"}
    with pytest.raises(SettingsError, match="JWT_JWKS_URL must be https://"):
        load_settings(
            environment="PRODUCTION", jwt_jwks_url="http://idp.test/jwks", _env_file=None, **jwt
        )
    assert load_settings(
        environment="production", jwt_jwks_url="https://idp.test/jwks", _env_file=None, **jwt
    ).jwt_enabled


def test_every_unsafe_setting_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environment="production", cors_origins="*", log_level="debug", _env_file=None)
    assert "CORS_ORIGINS" in str(refused.value) and "LOG_LEVEL" in str(refused.value)


def test_an_unknown_environment_is_refused() -> None:
    with pytest.raises(SettingsError, match="ENVIRONMENT"):
        load_settings(environment="staging", _env_file=None)


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """Ask for it before `servers`: the servers stop before their database is dropped."""
    with scratch_database(tmp_path) as url:
        yield url


def test_serve_creates_no_first_admin_and_prints_no_key(
    fresh_database: str, servers: StartServer
) -> None:
    port = free_port()
    env = child_env(DATABASE_URL=fresh_database, PORT=str(port), ENVIRONMENT="production")
    server = servers(command=[CHAT_GATEWAY, "serve"], port=port, env=env)
    server.wait_ready()
    output = server.output()

    assert "applied migration" in output
    assert "api_key" not in output and "cgw_" not in output
    assert "First admin created" not in output
    assert "chat-gateway user create NAME --admin" in output
    with httpx.Client(base_url=server.base_url) as http:
        page = http.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 404
