"""JWT sign-in: an identity provider's tokens, verified against its JWKS (served on
loopback) or a static public key, accepted by both doors (REST, GraphQL over HTTP and
WebSocket); every bad token is a 401 with a reason, never a 500. The key set's clock is a
fake one the tests move (`jwks_clock`): nothing waits for a refresh interval to pass."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.models import LogEntry, User
from db.services import auth_failures, identities
from gateway import auth
from gateway.jwt_auth import MAX_JWKS_BYTES
from gateway.settings import Settings, SettingsError, load_settings
from tests.factories import Account
from tests.gateway.identity_provider import (
    AUDIENCE,
    ISSUER,
    IdentityProvider,
    Signer,
    claims_of,
    forged,
)
from tests.schema.gql import Answer, post
from tests.schema.ws import TransportWS
from tests.servers import free_port, live_server

# Made once: RSA key generation takes a while.
RSA_KEY = Signer.rsa("rsa-1")
EC_KEY = Signer.ec("ec-1")
ROTATED = Signer.rsa("rsa-2")
STATIC = Signer.ec("static")
IMPOSTOR = Signer.rsa("rsa-1")  # another key claiming a published key id
REFRESH_SECONDS = 30.0  # on the fake clock
ME = "{ me { id name role } }"
REST_ROUTE = "/api/v1/model-configs"


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    async with IdentityProvider(RSA_KEY, EC_KEY) as provider:
        yield provider


@pytest.fixture
def jwt_settings() -> dict[str, Any]:
    """Settings a test changes from the JWKS configuration below (parametrize it)."""
    return {}


@pytest.fixture
def settings(database_url: str, idp: IdentityProvider, jwt_settings: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "jwt_jwks_url": idp.url,
        "jwt_jwks_refresh_seconds": REFRESH_SECONDS,
        **jwt_settings,
    }
    return load_settings(
        database_url=database_url, shutdown_grace_seconds=5, _env_file=None, **values
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def jwks_clock(client: httpx.AsyncClient) -> FakeClock:
    """The running app's JWKS key set, on a clock the test moves."""
    verifier = auth._jwt
    assert verifier is not None and verifier.jwks is not None
    clock = FakeClock()
    verifier.jwks.clock = clock
    return clock


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    answer = await post(client, ME, bearer(token))
    assert not answer.errors, answer.errors
    found: dict[str, Any] = answer.data["me"]
    return found


async def refused(client: httpx.AsyncClient, token: str) -> str:
    """The 401 message of both doors for `token` (they must agree)."""
    response = await client.get(REST_ROUTE, headers=bearer(token))
    assert response.status_code == 401, response.text
    message: str = response.json()["message"]
    answer: Answer = await post(client, ME, bearer(token))
    error = answer.error()
    assert (error["extensions"]["code"], error["message"]) == ("UNAUTHENTICATED", message)
    return message


async def test_a_valid_token_signs_a_new_user_in_and_the_next_finds_the_same_user(
    client: httpx.AsyncClient,
) -> None:
    first = await me(client, RSA_KEY.token(sub="alice@idp", name="  Alice Example  "))
    # Another key of the provider: the same user, named by the provider.
    again = await me(client, EC_KEY.token(sub="alice@idp", name="Alice Example"))
    rest = await client.get(REST_ROUTE, headers=bearer(RSA_KEY.token(sub="alice@idp")))

    assert first == again == {"id": first["id"], "name": "Alice Example", "role": "USER"}
    assert rest.status_code == 200, rest.text
    stored = await User.filter(issuer=ISSUER, subject="alice@idp")
    assert [str(user.id) for user in stored] == [first["id"]]
    # No name claim says nothing of the name: the stored one stays.
    assert stored[0].name == "Alice Example"


async def test_the_admin_role_claim_makes_an_admin_and_another_role_a_user(
    client: httpx.AsyncClient,
) -> None:
    admin_token = RSA_KEY.token(sub="boss", name="Boss", role="admin")

    assert (await me(client, admin_token))["role"] == "ADMIN"
    logs = await client.get("/api/v1/logs", headers=bearer(admin_token))  # admins only
    assert logs.status_code == 200, logs.text
    # A token without the role claim says nothing of the role: still an admin.
    assert (await me(client, RSA_KEY.token(sub="boss")))["role"] == "ADMIN"
    # The provider took the role away: the next sign-in says so, and it is logged.
    assert (await me(client, RSA_KEY.token(sub="boss", name="Boss", role="viewer")))["role"] == (
        "USER"
    )
    changed = [entry.details or {} for entry in await LogEntry.filter(event="user.role_changed")]
    assert [(d["from"], d["to"]) for d in changed] == [("admin", "user")]


async def test_a_list_of_roles_holding_admin_makes_an_admin(client: httpx.AsyncClient) -> None:
    token = EC_KEY.token(sub="ops", roles=["reader", "admin"])
    assert (await me(client, token))["role"] == "USER"  # JWT_ROLE_CLAIM is `role`

    assert (await me(client, EC_KEY.token(sub="ops", role=["reader", "admin"])))["role"] == "ADMIN"


@pytest.mark.parametrize(
    "jwt_settings", [{"jwt_name_claim": "preferred_username", "jwt_role_claim": "grp"}]
)
async def test_the_claims_named_by_the_settings_give_the_name_and_role(
    client: httpx.AsyncClient,
) -> None:
    token = RSA_KEY.token(sub="s", name="ignored", preferred_username="carol", grp="admin")

    assert {k: v for k, v in (await me(client, token)).items() if k != "id"} == {
        "name": "carol",
        "role": "ADMIN",
    }


def _now() -> int:
    return int(time.time())


# (what is wrong, the token, the message both doors answer)
BAD_TOKENS = [
    ("expired", lambda: RSA_KEY.token(exp=_now() - 120), "token has expired"),
    ("not yet valid", lambda: RSA_KEY.token(nbf=_now() + 120), "token is not valid yet"),
    ("issued in the future", lambda: RSA_KEY.token(iat=_now() + 120), "token is not valid yet"),
    ("wrong issuer", lambda: RSA_KEY.token(iss="https://evil.test/"), "token has the wrong issuer"),
    ("wrong audience", lambda: EC_KEY.token(aud="another-app"), "token has the wrong audience"),
    ("no exp", lambda: RSA_KEY.token(exp=None), "token lacks a required claim"),
    ("no sub", lambda: RSA_KEY.token(sub=None), "token lacks a required claim"),
    ("forged signature", lambda: IMPOSTOR.token(), "token signature is invalid"),
    ("unknown key id", lambda: RSA_KEY.token(kid="nobody"), "token signed by an unknown key"),
    ("not a JWT", lambda: "a.b.c", "token is not a well-formed JWT"),
    (
        "ES256 claimed for an RSA key",
        lambda: forged({"alg": "ES256", "kid": "rsa-1"}, claims_of(), hmac_secret=b"x"),
        "token signed by an unknown key",
    ),
]


@pytest.mark.parametrize(("case", "make", "message"), BAD_TOKENS, ids=[c[0] for c in BAD_TOKENS])
async def test_bad_tokens_are_refused_with_a_reason(
    client: httpx.AsyncClient, case: str, make: Any, message: str
) -> None:
    assert await refused(client, make()) == message
    assert await User.filter(issuer=ISSUER).count() == 0


async def test_a_small_clock_skew_is_tolerated(client: httpx.AsyncClient) -> None:
    # JWT_LEEWAY_SECONDS is 30 by default.
    token = RSA_KEY.token(exp=_now() - 10, nbf=_now() + 10, iat=_now() + 10)

    assert (await me(client, token))["role"] == "USER"


async def test_hs256_keyed_with_the_public_key_and_alg_none_are_refused(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    """The classic forgeries: a verifier that lets the token choose its algorithm would take
    the published RSA key as an HMAC secret, or check no signature at all."""
    public_pem = RSA_KEY.public_pem().encode()
    confused = forged({"alg": "HS256", "kid": "rsa-1"}, claims_of(), hmac_secret=public_pem)
    unsigned = forged({"alg": "none", "kid": "rsa-1"}, claims_of(), hmac_secret=None)
    unsigned_no_kid = forged({"alg": "none"}, claims_of(), hmac_secret=None)

    for token in (confused, unsigned, unsigned_no_kid):
        assert await refused(client, token) == "token algorithm must be one of RS256, ES256"
    assert idp.requests == 0  # refused before any key is looked for


async def test_a_rotated_key_is_fetched_once_and_made_up_key_ids_never_flood_the_provider(
    client: httpx.AsyncClient, idp: IdentityProvider, jwks_clock: FakeClock
) -> None:
    assert (await me(client, RSA_KEY.token(sub="r")))["role"] == "USER"
    assert idp.requests == 1
    # The provider publishes a new key and signs with it at once: within the refresh
    # interval the gateway does not ask again...
    idp.signers.append(ROTATED)
    assert await refused(client, ROTATED.token(sub="r")) == "token signed by an unknown key"
    assert idp.requests == 1
    # ...after it, one request for the unknown key id fetches the keys again.
    jwks_clock.now += REFRESH_SECONDS
    assert (await me(client, ROTATED.token(sub="r")))["role"] == "USER"
    assert idp.requests == 2

    made_up = [RSA_KEY.token(kid=str(uuid.uuid4())) for _ in range(20)]
    results = await asyncio.gather(*(client.get(REST_ROUTE, headers=bearer(t)) for t in made_up))

    assert {response.status_code for response in results} == {401}
    assert idp.requests == 2
    # Known keys keep working without a fetch.
    assert (await me(client, RSA_KEY.token(sub="r")))["role"] == "USER"
    assert idp.requests == 2


@pytest.mark.parametrize(
    "jwt_settings", [{"jwt_jwks_url": f"http://127.0.0.1:{free_port()}/jwks"}], ids=["refused"]
)
async def test_an_unreachable_jwks_is_a_401_not_a_500(client: httpx.AsyncClient) -> None:
    message = await refused(client, RSA_KEY.token())

    assert message == "cannot verify the token now: the identity provider's keys are unavailable"


async def test_a_failing_jwks_is_a_401_and_is_asked_again_after_the_interval(
    client: httpx.AsyncClient, idp: IdentityProvider, jwks_clock: FakeClock
) -> None:
    idp.status = 503
    assert "keys are unavailable" in await refused(client, RSA_KEY.token())
    asked = idp.requests
    idp.status = 200
    assert "keys are unavailable" in await refused(client, RSA_KEY.token())
    assert idp.requests == asked  # not within the interval
    jwks_clock.now += REFRESH_SECONDS - 1
    assert "keys are unavailable" in await refused(client, RSA_KEY.token())
    assert idp.requests == asked  # still not

    jwks_clock.now += 1

    assert (await me(client, RSA_KEY.token()))["role"] == "USER"
    assert idp.requests == asked + 1


@pytest.mark.parametrize("jwt_settings", [{"jwt_jwks_timeout": 0.2}], ids=["short timeout"])
async def test_a_jwks_that_does_not_answer_in_time_is_a_401(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    idp.delay = 2.0  # ten times JWT_JWKS_TIMEOUT

    assert "keys are unavailable" in await refused(client, RSA_KEY.token())
    # One attempt, given up (or the key set would be there): the second door's request,
    # within the refresh interval, did not ask again.
    assert idp.requests == 1


async def test_a_jwks_sent_in_small_pieces_is_read_whole(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    idp.piece, idp.pause = 64, 0.005

    assert (await me(client, RSA_KEY.token(sub="pieces")))["role"] == "USER"
    assert idp.requests == 1


async def test_an_oversized_jwks_is_refused_without_reading_it_all(
    client: httpx.AsyncClient, idp: IdentityProvider
) -> None:
    idp.piece, idp.padding = 64 * 1024, 64 * MAX_JWKS_BYTES

    message = await refused(client, RSA_KEY.token())

    assert message == "cannot verify the token now: the identity provider's keys are unavailable"
    assert idp.requests == 1
    assert idp.served < idp.padding / 2  # the gateway hung up long before the end


def test_the_jwks_refresh_interval_is_at_least_a_second() -> None:
    """0 would let every token naming an unknown key id fetch the key set again."""
    for value in (0, 0.5):
        with pytest.raises(SettingsError, match="JWT_JWKS_REFRESH_SECONDS"):
            load_settings(jwt_jwks_refresh_seconds=value, _env_file=None)
    assert load_settings(jwt_jwks_refresh_seconds=1, _env_file=None).jwt_jwks_refresh_seconds == 1


@pytest.mark.parametrize(
    "jwt_settings", [{"jwt_jwks_url": "", "jwt_public_key": STATIC.public_pem()}], ids=["pem"]
)
async def test_a_static_public_key(client: httpx.AsyncClient, idp: IdentityProvider) -> None:
    assert (await me(client, STATIC.token(kid=None, sub="p")))["role"] == "USER"
    assert await refused(client, RSA_KEY.token()) == "token algorithm must be ES256"
    assert await refused(client, EC_KEY.token()) == "token signature is invalid"
    assert idp.requests == 0


async def test_a_disabled_user_is_refused(client: httpx.AsyncClient) -> None:
    user_id = (await me(client, RSA_KEY.token(sub="gone")))["id"]

    await User.filter(id=user_id).update(disabled_at=datetime.now(UTC))
    identities.forget(user_id)  # what disabling a user does in every process

    assert await refused(client, RSA_KEY.token(sub="gone")) == "user is disabled"


async def test_failures_are_counted_then_logged_in_one_entry_without_the_token(
    client: httpx.AsyncClient,
) -> None:
    token = RSA_KEY.token(exp=_now() - 120)
    for _ in range(3):
        await refused(client, token)
    assert await LogEntry.filter(event="auth.failed").count() == 0  # nothing written per request

    await auth_failures.flush()

    entries = await LogEntry.filter(event="auth.failed")
    expired = [e.details or {} for e in entries if "expired" in e.message]
    assert {details["source"]: details["count"] for details in expired} == {
        f"GET {REST_ROUTE}": 3,
        "graphql": 3,
    }
    assert all(token not in f"{e.message} {e.details}" for e in entries)


async def test_api_keys_still_work_beside_tokens(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.get(REST_ROUTE, headers=alice.headers)

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("where", ["connection_init", "upgrade header"])
async def test_graphql_websockets_accept_a_token(app: Starlette, where: str) -> None:
    token = EC_KEY.token(sub="ws-user", name="Web Socket")
    init = bearer(token) if where == "connection_init" else None
    headers = bearer(token) if where == "upgrade header" else None

    async with (
        live_server(app) as live,
        TransportWS.connect(live.ws_url, headers=headers, init_payload=init) as socket,
    ):
        results = await socket.results(await socket.subscribe(ME))

    assert results[0]["data"]["me"]["name"] == "Web Socket"


def test_half_a_configuration_refuses_to_start() -> None:
    with pytest.raises(SettingsError, match="JWT_AUDIENCE and JWT_JWKS_URL or JWT_PUBLIC_KEY"):
        load_settings(jwt_issuer=ISSUER, _env_file=None)
    with pytest.raises(SettingsError, match="set JWT_ISSUER too"):
        load_settings(jwt_audience=AUDIENCE, jwt_jwks_url="https://idp.test/jwks", _env_file=None)
    with pytest.raises(SettingsError, match="not both"):
        load_settings(
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            jwt_jwks_url="https://idp.test/jwks",
            jwt_public_key=STATIC.public_pem(),
            _env_file=None,
        )


def test_a_public_key_must_be_rsa_or_ec_p256_pem() -> None:
    with pytest.raises(SettingsError, match=r"JWT_PUBLIC_KEY: .*not a PEM public key"):
        load_settings(jwt_public_key="hello", _env_file=None)
    # A one-line value with \n escapes (as .env files often hold it) is read as the PEM.
    one_line = STATIC.public_pem().strip().replace("\n", "\\n")
    settings = load_settings(
        jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_public_key=one_line, _env_file=None
    )
    assert settings.jwt_enabled
    with pytest.raises(SettingsError, match=r"JWT_JWKS_URL: .*http"):
        load_settings(jwt_jwks_url="ftp://idp.test/jwks", _env_file=None)
