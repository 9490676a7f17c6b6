"""Who may do what, as data: every REST route and every GraphQL query, mutation and
subscription, tried by five callers, against one table of expected outcomes.

The callers: nobody (no credentials), a revoked key, the owner of what the operation
names (a plain user), another plain user, and an admin. Each row's call is made about
the OWNER's things (their session, their message, their key), so "other" is always a
stranger to them. An operation the app serves without a row here fails
`test_every_operation_has_a_row`: a new route or field cannot ship without deciding
who may call it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from db.services import users
from schema import build_schema
from tests.factories import Account, create_session, make_account, make_config, send
from tests.servers import LiveServer, live_server


class Who(StrEnum):
    ANONYMOUS = "anonymous"
    REVOKED = "revoked key"
    OWNER = "owner"
    OTHER = "other user"
    ADMIN = "admin"


class Outcome(StrEnum):
    OK = "ok"
    UNAUTHENTICATED = "unauthenticated"  # 401 / UNAUTHENTICATED
    FORBIDDEN = "forbidden"  # 403 / FORBIDDEN
    NOT_FOUND = "not found"  # 404 / NOT_FOUND, or null where GraphQL reads an id


@dataclass
class World:
    """What the calls are about: the owner's things, and one client per caller."""

    http: httpx.AsyncClient
    live: LiveServer
    owner: Account
    other: Account
    admin: Account
    revoked: Account  # the owner's second key, revoked
    session_id: str
    reply_id: str  # the AI message of the session's first exchange
    config_id: str

    def headers(self, who: Who) -> dict[str, str]:
        account = {
            Who.ANONYMOUS: None,
            Who.REVOKED: self.revoked,
            Who.OWNER: self.owner,
            Who.OTHER: self.other,
            Who.ADMIN: self.admin,
        }[who]
        return {} if account is None else account.headers


Call = Callable[[World, Who], Awaitable[Outcome]]

# Outcome columns, in Who's order.
ANYONE = (Outcome.OK,) * 5
SIGNED_IN = (Outcome.UNAUTHENTICATED, Outcome.UNAUTHENTICATED, Outcome.OK, Outcome.OK, Outcome.OK)
OWNER_OR_ADMIN = (
    Outcome.UNAUTHENTICATED,
    Outcome.UNAUTHENTICATED,
    Outcome.OK,
    Outcome.NOT_FOUND,
    Outcome.OK,
)
# Naming the owner as the one acted for (REST's user_id, GraphQL's userId): a stranger
# is refused by name, as only admins act for others.
ACTING_FOR = (
    Outcome.UNAUTHENTICATED,
    Outcome.UNAUTHENTICATED,
    Outcome.OK,
    Outcome.FORBIDDEN,
    Outcome.OK,
)
ADMIN_ONLY = (
    Outcome.UNAUTHENTICATED,
    Outcome.UNAUTHENTICATED,
    Outcome.FORBIDDEN,
    Outcome.FORBIDDEN,
    Outcome.OK,
)


# REST ------------------------------------------------------------------------------------


def rest_outcome(response: httpx.Response) -> Outcome:
    status = response.status_code
    if status == 200:
        return Outcome.OK
    by_status = {401: Outcome.UNAUTHENTICATED, 403: Outcome.FORBIDDEN, 404: Outcome.NOT_FOUND}
    assert status in by_status, (status, response.text)
    assert response.json()["code"] == status, response.text
    return by_status[status]


def rest(method: str, path: str, body: Callable[[World], Any] | None = None) -> Call:
    async def call(world: World, who: Who) -> Outcome:
        url = "/api/v1" + path.format(
            session_id=world.session_id, message_id=world.reply_id, config_id=world.config_id
        )
        response = await world.http.request(
            method,
            url,
            json=None if body is None else body(world),
            headers=world.headers(who),
        )
        return rest_outcome(response)

    return call


# GraphQL over HTTP -------------------------------------------------------------------------

CODES = {
    "UNAUTHENTICATED": Outcome.UNAUTHENTICATED,
    "FORBIDDEN": Outcome.FORBIDDEN,
    "NOT_FOUND": Outcome.NOT_FOUND,
}


def graphql_outcome(answer: dict[str, Any], field: str) -> Outcome:
    errors = answer.get("errors")
    if errors:
        codes = {error["extensions"]["code"] for error in errors}
        assert len(codes) == 1 and codes <= CODES.keys(), errors
        return CODES[codes.pop()]
    return Outcome.OK if answer["data"][field] is not None else Outcome.NOT_FOUND


def graphql(
    field: str, document: str, variables: Callable[[World], dict[str, Any]] | None = None
) -> Call:
    async def call(world: World, who: Who) -> Outcome:
        response = await world.http.post(
            "/graphql",
            json={"query": document, "variables": {} if variables is None else variables(world)},
            headers=world.headers(who),
        )
        assert response.status_code == 200, response.text
        return graphql_outcome(response.json(), field)

    return call


def subscription(
    field: str,
    document: str,
    variables: Callable[[World], dict[str, Any]],
    *,
    waits_for_news: bool = False,
) -> Call:
    """The first answer of a subscription over graphql-transport-ws, credentials in the
    upgrade's headers. One that `waits_for_news` answers only when something happens: the
    owner sends a message (again, until the first answer comes)."""

    async def call(world: World, who: Who) -> Outcome:
        try:
            async with connect(
                world.live.ws_url,
                subprotocols=[Subprotocol("graphql-transport-ws")],
                additional_headers=world.headers(who),
                open_timeout=10,
            ) as socket:
                await socket.send(json.dumps({"type": "connection_init", "payload": {}}))
                ack = json.loads(await asyncio.wait_for(socket.recv(), 10))
                assert ack["type"] == "connection_ack", ack
                payload = {"query": document, "variables": variables(world)}
                await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
                for _ in range(NEWS_TRIES):
                    if waits_for_news:
                        sent = await send(world.http, world.owner, world.session_id)
                        assert sent.status_code == 200, sent.text
                    try:
                        raw = await asyncio.wait_for(socket.recv(), 1 if waits_for_news else 10)
                    except TimeoutError:
                        continue  # the message came before the subscription: again
                    message = json.loads(raw)
                    if message["type"] in ("ping", "pong"):
                        continue
                    if message["type"] == "error":
                        return graphql_outcome({"errors": message["payload"]}, field)
                    assert message["type"] == "next", message
                    return graphql_outcome(message["payload"], field)
                raise AssertionError(f"no answer to {field} after {NEWS_TRIES} tries")
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 4401, closed
            return Outcome.UNAUTHENTICATED

    return call


NEWS_TRIES = 20


def on_fresh(field: str, document: str, make: Callable[[World], Awaitable[dict[str, Any]]]) -> Call:
    """A GraphQL call about something made anew for each caller (`make` gives the
    variables): what a successful call uses up (a key it revokes, a user it disables)."""

    async def call(world: World, who: Who) -> Outcome:
        variables = await make(world)
        return await graphql(field, document, lambda _: variables)(world, who)

    return call


async def owners_new_key(world: World) -> dict[str, Any]:
    issued = await users.create_key(user_id=world.owner.user_id, label="to revoke")
    return {"id": str(issued.key.id)}


async def someone_new(world: World) -> dict[str, Any]:
    user = await make_account("someone")
    return {"id": user.user_id}


CREATE_CONFIG = """mutation { createModelConfig(input:
  {modelName: "versioned", modelVersion: "1", provider: "echo"}) { id version } }"""


async def config_made_by_admin(world: World) -> dict[str, Any]:
    """A config an admin created (so it has a version 1 to roll back to), for each caller:
    a rollback changes it."""
    response = await world.http.post(
        "/graphql", json={"query": CREATE_CONFIG}, headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    created = response.json()["data"]["createModelConfig"]
    return {"id": created["id"], "version": created["version"]}


def rest_on_fresh_config(method: str, path: str, body: Callable[[int], Any]) -> Call:
    """A REST call about a config made anew for each caller (`path` names {config_id};
    `body` is made from its version)."""

    async def call(world: World, who: Who) -> Outcome:
        made = await config_made_by_admin(world)
        response = await world.http.request(
            method,
            "/api/v1" + path.format(config_id=made["id"]),
            json=body(made["version"]),
            headers=world.headers(who),
        )
        return rest_outcome(response)

    return call


async def owners_new_session(world: World) -> dict[str, Any]:
    return {"id": await create_session(world.http, world.owner)}


def rest_on_fresh_session(method: str, path: str) -> Call:
    """A REST call about a session of the owner's made anew for each caller (`path` names
    {session_id}): what a successful call uses up (a session it deletes)."""

    async def call(world: World, who: Who) -> Outcome:
        made = await owners_new_session(world)
        response = await world.http.request(
            method, "/api/v1" + path.format(session_id=made["id"]), headers=world.headers(who)
        )
        return rest_outcome(response)

    return call


def rest_listing_owners_sessions() -> Call:
    """GET /sessions naming the owner (`user_id`), as GraphQL's `sessions(userId:)`."""

    async def call(world: World, who: Who) -> Outcome:
        response = await world.http.get(
            "/api/v1/sessions", params={"user_id": world.owner.user_id}, headers=world.headers(who)
        )
        return rest_outcome(response)

    return call


def rest_usage_of_owner() -> Call:
    """GET /usage naming the owner (`user_id`), as GraphQL's `usage(userId:)`."""

    async def call(world: World, who: Who) -> Outcome:
        response = await world.http.get(
            "/api/v1/usage", params={"user_id": world.owner.user_id}, headers=world.headers(who)
        )
        return rest_outcome(response)

    return call


# The table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    operation: str  # "REST <METHOD> <template>" or "GraphQL <query|mutation|subscription> <field>"
    call: Call
    expected: tuple[Outcome, ...]  # in Who's order


def ask(world: World) -> dict[str, Any]:
    return {"user_id": world.owner.user_id, "message": "hi"}


def for_owner(world: World) -> dict[str, Any]:
    return {"user_id": world.owner.user_id}


SESSION = "query($id: ID!) { session(id: $id) { id } }"
SEND_INPUT = 'input: {sessionId: $id, content: "hi"}'

ROWS = [
    # REST: every route of /api/v1, about the owner's session and message.
    Row("REST POST /sessions", rest("POST", "/sessions", for_owner), ACTING_FOR),
    # Another user's list is refused by name (404 would claim there is none).
    Row("REST GET /sessions", rest_listing_owners_sessions(), ACTING_FOR),
    Row(
        "REST PATCH /sessions/{session_id}",
        rest("PATCH", "/sessions/{session_id}", lambda w: {"title": "renamed"}),
        OWNER_OR_ADMIN,
    ),
    Row(
        "REST DELETE /sessions/{session_id}",
        rest_on_fresh_session("DELETE", "/sessions/{session_id}"),
        OWNER_OR_ADMIN,
    ),
    Row(
        "REST GET /sessions/{session_id}/messages",
        rest("GET", "/sessions/{session_id}/messages"),
        OWNER_OR_ADMIN,
    ),
    Row(
        "REST POST /sessions/{session_id}/messages",
        rest("POST", "/sessions/{session_id}/messages", ask),
        ACTING_FOR,
    ),
    Row(
        "REST GET /sessions/{session_id}/messages/{message_id}/stream",
        rest("GET", "/sessions/{session_id}/messages/{message_id}/stream"),
        OWNER_OR_ADMIN,
    ),
    Row(
        "REST POST /sessions/{session_id}/cancel",
        rest("POST", "/sessions/{session_id}/cancel"),
        OWNER_OR_ADMIN,
    ),
    Row(
        "REST GET /sessions/{session_id}/export",
        rest("GET", "/sessions/{session_id}/export"),
        OWNER_OR_ADMIN,
    ),
    Row(
        "REST POST /sessions/{session_id}/regenerate",
        rest("POST", "/sessions/{session_id}/regenerate", for_owner),
        ACTING_FOR,
    ),
    Row(
        "REST PUT /messages/{message_id}/feedback",
        rest("PUT", "/messages/{message_id}/feedback", lambda w: {"rating": "up"}),
        OWNER_OR_ADMIN,
    ),
    Row("REST GET /model-configs", rest("GET", "/model-configs"), SIGNED_IN),
    Row(
        "REST PUT /model-configs/{config_id}",
        rest("PUT", "/model-configs/{config_id}", lambda w: {"model_version": "2"}),
        ADMIN_ONLY,
    ),
    Row(
        "REST GET /model-configs/{config_id}/versions",
        rest("GET", "/model-configs/{config_id}/versions"),
        ADMIN_ONLY,
    ),
    Row(
        "REST POST /model-configs/{config_id}/rollback",
        rest_on_fresh_config(
            "POST", "/model-configs/{config_id}/rollback", lambda version: {"version": version}
        ),
        ADMIN_ONLY,
    ),
    Row("REST GET /logs", rest("GET", "/logs"), ADMIN_ONLY),
    # Search names the owner's session: a stranger is told it does not exist.
    Row(
        "REST GET /search",
        rest("GET", "/search?q=hello&session_id={session_id}"),
        OWNER_OR_ADMIN,
    ),
    # Another user's usage is refused by name (an empty report would claim they used nothing).
    Row("REST GET /usage", rest_usage_of_owner(), ACTING_FOR),
    Row("REST GET /openapi.json", rest("GET", "/openapi.json"), ANYONE),
    # GraphQL queries.
    Row("GraphQL query me", graphql("me", "{ me { id } }"), SIGNED_IN),
    Row(
        "GraphQL query session",
        graphql("session", SESSION, lambda w: {"id": w.session_id}),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL query sessions",
        graphql(
            "sessions",
            "query($u: ID) { sessions(userId: $u) { totalCount } }",
            lambda w: {"u": w.owner.user_id},
        ),
        # Another user's list is refused by name (NOT_FOUND would claim there is none).
        (
            Outcome.UNAUTHENTICATED,
            Outcome.UNAUTHENTICATED,
            Outcome.OK,
            Outcome.FORBIDDEN,
            Outcome.OK,
        ),
    ),
    Row(
        "GraphQL query modelConfig",
        graphql(
            "modelConfig",
            "query($id: ID!) { modelConfig(id: $id) { id } }",
            lambda w: {"id": w.config_id},
        ),
        SIGNED_IN,
    ),
    Row(
        "GraphQL query modelConfigs", graphql("modelConfigs", "{ modelConfigs { id } }"), SIGNED_IN
    ),
    Row("GraphQL query logs", graphql("logs", "{ logs { totalCount } }"), ADMIN_ONLY),
    Row(
        "GraphQL query searchMessages",
        graphql(
            "searchMessages",
            'query($id: ID!) { searchMessages(query: "hello", sessionId: $id) { totalCount } }',
            lambda w: {"id": w.session_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL query usage",
        graphql(
            "usage",
            "query($u: ID) { usage(userId: $u) { replies } }",
            lambda w: {"u": w.owner.user_id},
        ),
        ACTING_FOR,
    ),
    # GraphQL mutations.
    Row(
        "GraphQL mutation createSession",
        graphql(
            "createSession",
            "mutation($u: ID) { createSession(input: {userId: $u}) { id } }",
            lambda w: {"u": w.owner.user_id},
        ),
        (
            Outcome.UNAUTHENTICATED,
            Outcome.UNAUTHENTICATED,
            Outcome.OK,
            Outcome.FORBIDDEN,
            Outcome.OK,
        ),
    ),
    Row(
        "GraphQL mutation updateSession",
        graphql(
            "updateSession",
            'mutation($id: ID!) { updateSession(id: $id, input: {title: "renamed"}) { id } }',
            lambda w: {"id": w.session_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL mutation deleteSession",
        on_fresh(
            "deleteSession", "mutation($id: ID!) { deleteSession(id: $id) }", owners_new_session
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL mutation sendMessage",
        graphql(
            "sendMessage",
            "mutation($id: ID!) { sendMessage(" + SEND_INPUT + ") { aiMessage { id } } }",
            lambda w: {"id": w.session_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL mutation regenerateReply",
        graphql(
            "regenerateReply",
            "mutation($id: ID!) { regenerateReply(input: {sessionId: $id}) { id } }",
            lambda w: {"id": w.session_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL mutation forkSession",
        graphql(
            "forkSession",
            "mutation($m: ID!) { forkSession(input: {messageId: $m}) { session { id } } }",
            lambda w: {"m": w.reply_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL mutation cancelReply",
        graphql(
            "cancelReply",
            "mutation($id: ID!) { cancelReply(sessionId: $id) }",
            lambda w: {"id": w.session_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL mutation rateMessage",
        graphql(
            "rateMessage",
            "mutation($id: ID!) { rateMessage(id: $id, input: {rating: UP}) { id } }",
            lambda w: {"id": w.reply_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL mutation updateModelConfig",
        graphql(
            "updateModelConfig",
            'mutation($id: ID!) { updateModelConfig(id: $id, input: {modelVersion: "3"}) { id } }',
            lambda w: {"id": w.config_id},
        ),
        ADMIN_ONLY,
    ),
    Row(
        "GraphQL mutation createModelConfig",
        graphql(
            "createModelConfig",
            "mutation { createModelConfig(input: "
            '{modelName: "m", modelVersion: "1", provider: "echo"}) { id } }',
        ),
        ADMIN_ONLY,
    ),
    Row(
        "GraphQL mutation rollbackModelConfig",
        on_fresh(
            "rollbackModelConfig",
            "mutation($id: ID!, $version: Int!) "
            "{ rollbackModelConfig(id: $id, version: $version) { id version } }",
            config_made_by_admin,
        ),
        ADMIN_ONLY,
    ),
    # Keys: each caller's own; users: admins only.
    Row(
        "GraphQL mutation createApiKey",
        graphql("createApiKey", 'mutation { createApiKey(label: "laptop") { apiKey { id } } }'),
        SIGNED_IN,
    ),
    Row(
        "GraphQL mutation revokeApiKey",
        on_fresh(
            "revokeApiKey", "mutation($id: ID!) { revokeApiKey(id: $id) { id } }", owners_new_key
        ),
        OWNER_OR_ADMIN,
    ),
    Row("GraphQL query users", graphql("users", "{ users { totalCount } }"), ADMIN_ONLY),
    Row(
        "GraphQL mutation createUser",
        graphql("createUser", 'mutation { createUser(name: "new") { user { id } } }'),
        ADMIN_ONLY,
    ),
    Row(
        "GraphQL mutation setUserRole",
        graphql(
            "setUserRole",
            "mutation($id: ID!) { setUserRole(id: $id, role: USER) { id } }",
            lambda w: {"id": w.owner.user_id},
        ),
        ADMIN_ONLY,
    ),
    Row(
        "GraphQL mutation disableUser",
        on_fresh("disableUser", "mutation($id: ID!) { disableUser(id: $id) { id } }", someone_new),
        ADMIN_ONLY,
    ),
    # GraphQL subscriptions, over a real WebSocket.
    Row(
        "GraphQL subscription sendMessageStream",
        subscription(
            "sendMessageStream",
            "subscription($id: ID!) { sendMessageStream(" + SEND_INPUT + ") { __typename } }",
            lambda w: {"id": w.session_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL subscription regenerateReplyStream",
        subscription(
            "regenerateReplyStream",
            "subscription($id: ID!) { regenerateReplyStream(input: {sessionId: $id}) "
            "{ __typename } }",
            lambda w: {"id": w.session_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL subscription replyStream",
        subscription(
            "replyStream",
            "subscription($m: ID!) { replyStream(messageId: $m) { __typename } }",
            lambda w: {"m": w.reply_id},
        ),
        OWNER_OR_ADMIN,
    ),
    Row(
        "GraphQL subscription messageAdded",
        subscription(
            "messageAdded",
            "subscription($id: ID!) { messageAdded(sessionId: $id) { id } }",
            lambda w: {"id": w.session_id},
            waits_for_news=True,
        ),
        OWNER_OR_ADMIN,
    ),
]

# Served without authentication on purpose, outside the doors' operations.
PUBLIC_ROUTES = {"GET /healthz", "GET /graphql", "POST /graphql", "WS /graphql"}


def served_operations(app: Starlette) -> set[str]:
    """Every operation the app serves: REST routes by template, GraphQL root fields."""
    operations: set[str] = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/api/v1"):
            for method in route.methods or ():
                if method != "HEAD":
                    operations.add(f"REST {method} {route.path.removeprefix('/api/v1')}")
    schema = build_schema()._schema
    for kind, root in (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    ):
        for name in root.fields if root is not None else ():
            operations.add(f"GraphQL {kind} {name}")
    return operations


def test_every_operation_has_a_row(app: Starlette) -> None:
    rows = [row.operation for row in ROWS]
    assert len(rows) == len(set(rows)), "an operation has two rows"
    served = served_operations(app)
    assert sorted(served - set(rows)) == [], "operations without rows in the matrix"
    assert sorted(set(rows) - served) == [], "rows for operations the app does not serve"


@pytest.fixture
async def world(app: Starlette, client: httpx.AsyncClient) -> AsyncIterator[World]:
    owner = await make_account("owner")
    other = await make_account("other")
    admin = await make_account("admin", admin=True)
    spare = await users.create_key(user_id=owner.user_id, label="spare")
    await users.revoke_key(key_id_or_prefix=str(spare.key.id))
    revoked = Account(owner.user_id, spare.secret, str(spare.key.id), "owner")
    config = await make_config()
    session_id = await create_session(client, owner)
    sent = await send(client, owner, session_id)
    assert sent.status_code == 200, sent.text
    reply_id = sent.json()["data"]["ai_message"]["message_id"]
    async with live_server(app) as live:
        yield World(
            client, live, owner, other, admin, revoked, session_id, reply_id, str(config.id)
        )


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.operation)
async def test_the_matrix(world: World, row: Row) -> None:
    found = {who: await row.call(world, who) for who in Who}

    assert found == dict(zip(Who, row.expected, strict=True))
