"""Inputs that once crashed a request: each is now a clear client error in both doors.

One test per row of the issue's table (invalid UTF-8, a lone surrogate, deep nesting, a body
shorter than its Content-Length, a malformed user id), on whichever database the suite runs
on. Each stores nothing; without a key, nothing is written at all. The suite's invariant
(tests/conftest.py) fails any of them that logs an internal error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from tortoise import Tortoise
from websockets.exceptions import ConnectionClosed

from gateway.settings import Settings, load_settings
from tests.conftest import TABLES
from tests.factories import Account, create_session, read_history
from tests.rest.expect import refused, url
from tests.rest.openapi_check import checked_client
from tests.schema.gql import SEND, new_session
from tests.schema.ws import LegacyWS, TransportWS
from tests.servers import LiveServer, live_server

BODY_TIMEOUT = 0.5
SEND_DOCUMENT = (
    "mutation($input: SendMessageInput!) { sendMessage(input: $input) { aiMessage { id } } }"
)
STREAM_DOCUMENT = """subscription($input: SendMessageInput!) {
  sendMessageStream(input: $input) { ... on Message { id } } }"""


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url, request_body_timeout=BODY_TIMEOUT, _env_file=None
    )


@pytest.fixture
async def rest(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The REST door's client: every answer is checked against the OpenAPI document."""
    async with checked_client(app) as http:
        yield http


async def row_counts() -> dict[str, int]:
    connection = Tortoise.get_connection("default")
    counts = {}
    for table in TABLES:
        _, rows = await connection.execute_query(f'SELECT COUNT(*) AS n FROM "{table}"')
        counts[table] = rows[0]["n"]
    return counts


def graphql_refused(response: httpx.Response, *, status: int = 400, field: str) -> str:
    """The message of a request-level GraphQL error: BAD_USER_INPUT naming `field`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"errors"}, body  # no operation ran: no `data`
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
    message: str = error["message"]
    assert message.startswith(f"{field}: "), message
    return message


def send_body(session_id: str, content: str, metadata: str = "null") -> str:
    """A GraphQL sendMessage request as JSON text, `content` and `metadata` spliced in raw."""
    query = json.dumps(SEND_DOCUMENT)
    return (
        f'{{"query": {query}, "variables": {{"input": {{"sessionId": "{session_id}", '
        f'"content": {content}, "metadata": {metadata}}}}}}}'
    )


def rest_send_body(user_id: str, content: str, metadata: str = "null") -> str:
    return f'{{"user_id": "{user_id}", "message": {content}, "metadata": {metadata}}}'


async def post_graphql(
    client: httpx.AsyncClient, body: str | bytes, who: Account | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json", **(who.headers if who else {})}
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return await client.post("/graphql", content=data, headers=headers)


async def post_rest(
    client: httpx.AsyncClient, session_id: str, body: str | bytes, who: Account
) -> httpx.Response:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    path = url(f"/sessions/{session_id}/messages")
    return await client.post(path, content=data, headers=who.headers)


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# row -> (content as JSON text, metadata as JSON text, REST field, GraphQL field)
BAD_TEXT: dict[str, tuple[str | bytes, str, str, str]] = {
    "invalid UTF-8 in content": (b'"hi \xff\xfe"', "null", "message", "variables.input.content"),
    "invalid UTF-8 in metadata": (
        '"hi"',
        '{"tags": ["a", "\udcff"]}',  # the lone surrogate encodes (surrogatepass) as bad UTF-8
        "metadata.tags[1]",
        "variables.input.metadata.tags[1]",
    ),
    "lone surrogate in content": ('"\\ud800 hi"', "null", "message", "variables.input.content"),
    "lone low surrogate in content": ('"\\udc00"', "null", "message", "variables.input.content"),
    "lone surrogate in a metadata key": (
        '"hi"',
        '{"\\ud800": 1}',
        "metadata",
        "variables.input.metadata",
    ),
    "metadata 1,000 levels deep": ('"hi"', nested(1_000), "metadata", "variables.input.metadata"),
    "metadata 10,000 levels deep": ('"hi"', nested(10_000), "metadata", "variables.input.metadata"),
}


def _splice(template: str, content: str | bytes, metadata: str) -> bytes:
    raw = template.encode("utf-8", "surrogatepass")
    content_bytes = (
        content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass")
    )
    return raw.replace(b"@CONTENT@", content_bytes).replace(
        b"@METADATA@", metadata.encode("utf-8", "surrogatepass")
    )


@pytest.mark.parametrize("row", sorted(BAD_TEXT))
async def test_bad_text_is_refused_by_both_doors_and_stores_nothing(
    rest: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account, row: str
) -> None:
    content, metadata, rest_field, graphql_field = BAD_TEXT[row]
    session_id = await create_session(rest, alice)
    before = await row_counts()

    rest_body = _splice(rest_send_body(alice.user_id, "@CONTENT@", "@METADATA@"), content, metadata)
    message = refused(await post_rest(rest, session_id, rest_body, alice), 400, field=rest_field)
    assert message.startswith(f"{rest_field}: ")

    graphql_body = _splice(send_body(session_id, "@CONTENT@", "@METADATA@"), content, metadata)
    for who in (alice, None):  # the body is refused before anyone is authenticated
        graphql_refused(await post_graphql(client, graphql_body, who), field=graphql_field)

    assert await row_counts() == before
    assert (await read_history(rest, alice, session_id))["total"] == 0


@pytest.mark.parametrize(("depth", "accepted"), [(64, True), (65, False)])
async def test_metadata_depth_is_one_rule_with_one_answer_in_both_doors(
    rest: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account, depth: int, accepted: bool
) -> None:
    """At the edge of MAX_JSON_DEPTH the service decides, so both doors answer alike."""
    session_id = await create_session(rest, alice)
    rest_answer = await post_rest(
        rest, session_id, rest_send_body(alice.user_id, '"hi"', nested(depth)), alice
    )
    graphql_answer = await post_graphql(client, send_body(session_id, '"hi"', nested(depth)), alice)

    body = graphql_answer.json()
    if accepted:
        assert rest_answer.status_code == 200, rest_answer.text
        assert "errors" not in body, body
        assert (await read_history(rest, alice, session_id))["total"] == 4
    else:
        message = refused(rest_answer, 400, field="metadata")
        [error] = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "metadata"}
        assert error["message"] == message == "metadata: must not nest deeper than 64 levels"
        assert (await read_history(rest, alice, session_id))["total"] == 0


@pytest.mark.parametrize("where", ["body", "query string"])
async def test_graphql_variables_too_deep_for_a_parser(
    client: httpx.AsyncClient, alice: Account, where: str
) -> None:
    variables = '{"x": ' + nested(5_000) + "}"
    if where == "body":
        answer = await post_graphql(
            client, '{"query": "{ me { id } }", "variables": ' + variables + "}", None
        )
        graphql_refused(answer, field="variables.x")
    else:
        params = {"query": "{ me { id } }", "variables": variables}
        answer = await client.get("/graphql", params=params, headers=alice.headers)
        graphql_refused(answer, field="variables.x")


async def test_a_websocket_message_with_a_lone_surrogate_closes_the_connection(
    live: LiveServer, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    async with TransportWS.connect(live.ws_url, headers=alice.headers) as ws:
        await ws.subscribe(
            STREAM_DOCUMENT, {"input": {"sessionId": session_id, "content": "\ud800"}}
        )
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


@pytest.fixture
async def live(app: Starlette) -> AsyncIterator[LiveServer]:
    async with live_server(app) as server:
        yield server


async def _raw_exchange(
    server: LiveServer, head: str, body: bytes, *, hang_up: bool = False
) -> bytes:
    host, port = server.http_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        if hang_up:
            return b""
        async with asyncio.timeout(BODY_TIMEOUT + 10):
            return await reader.read()  # the server closes the connection after answering
    finally:
        writer.close()


# "GraphQL, signed in": a request the compiled reads' lane takes (gateway.fast_reads).
DOORS = ["REST", "GraphQL", "GraphQL, signed in"]


@pytest.mark.parametrize("door", DOORS)
async def test_a_body_shorter_than_its_content_length_is_answered_after_the_timeout(
    live: LiveServer, alice: Account, door: str
) -> None:
    path = "/api/v1/sessions" if door == "REST" else "/graphql"
    signed_in = f"Authorization: Bearer {alice.key}\r\n" if door == "GraphQL, signed in" else ""
    before = await row_counts()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: application/json\r\n"
        f"Content-Length: 100\r\n{signed_in}"
    )
    answer = await _raw_exchange(live, head, b'{"user_id": "x"')

    status_line, _, rest_of_answer = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request", answer
    headers, _, body = rest_of_answer.partition(b"\r\n\r\n")
    assert b"connection: close" in headers.lower()
    # As every answer: the request's id and the security headers.
    assert b"x-request-id: " in headers and b"x-content-type-options: nosniff" in headers
    payload = json.loads(body)
    if door == "REST":
        assert payload["code"] == 400 and payload["data"] is None
        message = payload["message"]
    else:
        [error] = payload["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "body"}
        message = error["message"]
    assert message == (
        f"body: request body incomplete: 15 bytes of the 100 announced arrived within "
        f"{BODY_TIMEOUT:g} s"
    )
    assert await row_counts() == before


@pytest.mark.parametrize("door", DOORS)
async def test_a_client_hanging_up_mid_body_is_no_error_of_ours(
    live: LiveServer, client: httpx.AsyncClient, alice: Account, door: str
) -> None:
    path = "/api/v1/sessions" if door == "REST" else "/graphql"
    signed_in = (
        f"Authorization: Bearer {alice.key}\r\nContent-Type: application/json\r\n"
        if door == "GraphQL, signed in"
        else ""
    )
    before = await row_counts()
    head = f"POST {path} HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 100\r\n{signed_in}"
    await _raw_exchange(live, head, b'{"user_id"', hang_up=True)
    await asyncio.sleep(BODY_TIMEOUT * 2)  # past the timeout too: nothing may happen later

    async with httpx.AsyncClient(base_url=live.http_url) as http:  # the server still serves
        assert (await http.get("/healthz")).status_code == 200
    assert await row_counts() == before  # no internal.error entry, nothing else


async def test_an_admin_acting_for_a_malformed_user_id_finds_nothing(
    rest: httpx.AsyncClient, admin: Account, alice: Account
) -> None:
    """The same 404 on SQLite and PostgreSQL: the id never reaches SQL."""
    own_session = await create_session(rest, admin)
    path = url(f"/sessions/{own_session}/messages")
    for user_id in ("x", "", "00000000-0000-0000-0000-00000000000g", "1" * 500):
        body = {"user_id": user_id, "message": "hi"}
        answer = await rest.post(path, json=body, headers=admin.headers)
        assert refused(answer, 404) == "session not found"
        created = await rest.post(
            url("/sessions"), json={"user_id": user_id}, headers=admin.headers
        )
        assert refused(created, 404) == "user not found"
    # A user naming someone else, malformed or not, is refused for who they are.
    alices = await create_session(rest, alice)
    answer = await rest.post(
        url(f"/sessions/{alices}/messages"),
        json={"user_id": "x", "message": "hi"},
        headers=alice.headers,
    )
    refused(answer, 403, field="user_id")
    assert (await read_history(rest, admin, own_session))["total"] == 0


async def test_requests_without_valid_credentials_write_nothing(
    rest: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(rest, alice)
    before = await row_counts()
    bad_keys: list[dict[str, str]] = [{}, {"Authorization": "Bearer cgw_nope"}]
    for headers in bad_keys:
        for body in (b'{"user_id": "\xff"}', b"[" * 3_000, b"{", b'{"user_id": "x"}'):
            answer = await rest.post(url("/sessions"), content=body, headers=headers)
            refused(answer, 401)
            answer = await rest.post(
                url(f"/sessions/{session_id}/messages"), content=body, headers=headers
            )
            refused(answer, 401)
            answer = await client.post(
                "/graphql", content=body, headers={**headers, "Content-Type": "application/json"}
            )
            assert answer.status_code == 400, answer.text
        answer = await post_graphql(client, send_body(session_id, '"hi"'), None)
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        refused(await rest.get(url("/logs?level=nope&start_time=x"), headers=headers), 401)
    assert await row_counts() == before


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (("PUT", "/model-configs/CONFIG", b'{"model_name": 5}'), 403),
        (("PUT", "/model-configs/CONFIG", b"{not json"), 403),
        (("PUT", "/model-configs/CONFIG", b'{"parameters": {"api_key": "sk-x"}}'), 403),
        (("PUT", "/model-configs/not-an-id", b'{"model_name": 5}'), 403),
        (("GET", "/logs?level=nope", None), 403),
        (("GET", "/logs?page_size=0&start_time=yesterday", None), 403),
    ],
)
async def test_admin_routes_refuse_users_before_reading_their_input(
    rest: httpx.AsyncClient, alice: Account, request_: tuple[str, str, bytes | None], status: int
) -> None:
    method, path, body = request_
    config_id = (await rest.get(url("/model-configs"), headers=alice.headers)).json()["data"][
        "models"
    ][0]["config_id"]
    answer = await rest.request(
        method, url(path.replace("CONFIG", config_id)), content=body, headers=alice.headers
    )
    assert "admins" in refused(answer, status)


@pytest.mark.parametrize(
    ("bound", "moment"),
    [("start_time", "0001-01-01T00:00:00+01:00"), ("end_time", "9999-12-31T23:59:59-01:00")],
)
async def test_a_time_bound_beyond_the_calendar_filters_nothing_in_both_doors(
    rest: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin: Account,
    bound: str,
    moment: str,
) -> None:
    """Year 1 at +01:00 has no UTC equivalent (it once overflowed into a 500): as a lower
    bound it is before everything, as an upper bound after everything."""
    await create_session(rest, admin)  # a log entry to find
    answer = await rest.get(url("/logs"), params={bound: moment}, headers=admin.headers)
    everything = await rest.get(url("/logs"), headers=admin.headers)
    assert answer.status_code == everything.status_code == 200, answer.text
    assert answer.json()["data"]["total"] == everything.json()["data"]["total"] > 0
    name = "startTime" if bound == "start_time" else "endTime"
    document = f"query($t: DateTime) {{ logs({name}: $t) {{ totalCount }} }}"
    answer = await client.post(
        "/graphql",
        json={"query": document, "variables": {"t": moment}},
        headers=admin.headers,
    )
    assert answer.json() == {"data": {"logs": {"totalCount": everything.json()["data"]["total"]}}}


NON_CANONICAL = ["{ID}", "urn:uuid:ID", "ID_UPPER", "ID_HEX"]


def _spelled(template: str, real_id: str) -> str:
    """Another spelling of a real id that Python's UUID() would accept."""
    return (
        template.replace("ID_UPPER", real_id.upper())
        .replace("ID_HEX", real_id.replace("-", ""))
        .replace("ID", real_id)
    )


@pytest.mark.parametrize("template", NON_CANONICAL)
async def test_another_spelling_of_a_real_id_finds_nothing_on_every_database(
    rest: httpx.AsyncClient, client: httpx.AsyncClient, admin: Account, template: str
) -> None:
    """PostgreSQL refused `{...}` (a 500) and matched upper case where SQLite did not."""
    session_id = await create_session(rest, admin)
    spelled = _spelled(template, session_id)
    refused(await rest.get(url(f"/sessions/{spelled}/messages"), headers=admin.headers), 404)
    body = {"user_id": _spelled(template, admin.user_id)}
    refused(await rest.post(url("/sessions"), json=body, headers=admin.headers), 404)
    document = "query($id: ID!) { session(id: $id) { id } }"
    answer = await client.post(
        "/graphql", json={"query": document, "variables": {"id": spelled}}, headers=admin.headers
    )
    assert answer.json() == {"data": {"session": None}}


@pytest.mark.parametrize("malformed", ["x", "", "' OR 1=1 --", "0" * 37, "\u00e9" * 36])
async def test_malformed_ids_find_nothing_the_same_way_on_every_database(
    rest: httpx.AsyncClient, client: httpx.AsyncClient, admin: Account, malformed: str
) -> None:
    from urllib.parse import quote

    segment = quote(malformed, safe="") or "%20"
    refused(await rest.get(url(f"/sessions/{segment}/messages"), headers=admin.headers), 404)
    answer = await rest.put(
        url(f"/model-configs/{segment}"), json={"model_name": "m"}, headers=admin.headers
    )
    refused(answer, 404)
    answer = await rest.post(
        url("/sessions"),
        json={"user_id": admin.user_id, "model_config_id": malformed},
        headers=admin.headers,
    )
    refused(answer, 404)
    document = """query($id: ID!) { session(id: $id) { id } modelConfig(id: $id) { id }
      sessions(userId: $id) { totalCount } }"""
    answer = await client.post(
        "/graphql", json={"query": document, "variables": {"id": malformed}}, headers=admin.headers
    )
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body
    assert body["data"] == {"session": None, "modelConfig": None, "sessions": {"totalCount": 0}}
    sent = await client.post(
        "/graphql",
        json={"query": SEND, "variables": {"input": {"sessionId": malformed, "content": "hi"}}},
        headers=admin.headers,
    )
    assert sent.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_answered_to_a_client_still_writing_it(
    live: LiveServer, settings: Settings, streamed: bool
) -> None:
    """httpx writes the whole request before it reads: it must still get the answer."""
    body = b'{"user_id": "' + b"x" * (3 * settings.max_body_bytes) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    async with httpx.AsyncClient(base_url=live.http_url, timeout=30) as http:
        for path, status in (("/api/v1/sessions", 400), ("/graphql", 413)):
            content = chunks() if streamed else body
            answer = await http.post(path, content=content)
            assert answer.status_code == status, answer.text
            assert f"request body exceeds {settings.max_body_bytes} bytes" in answer.text


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (
            'mutation($s: ID!) { sendMessage(input: {sessionId: $s, content: "hi", '
            "metadata: {n: 99999999999999999999999}}) { aiMessage { id } } }",
            "metadata",
        ),
        (
            'mutation { createModelConfig(input: {modelName: "m", modelVersion: "1", '
            'provider: "echo", parameters: {n: [-99999999999999999999999]}}) { id } }',
            "parameters",
        ),
    ],
)
async def test_a_graphql_literal_holding_an_integer_json_cannot_store_is_refused(
    client: httpx.AsyncClient, admin: Account, document: str, field: str
) -> None:
    """GraphQL literals carry integers of any size; a JSON column keeps 64 bits."""
    session_id = await new_session(client, admin)
    before = await row_counts()
    answer = await client.post(
        "/graphql", json={"query": document, "variables": {"s": session_id}}, headers=admin.headers
    )
    [error] = answer.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
    assert await row_counts() == before


@pytest.mark.parametrize("body", [b"1", b'"x"', b"null", b"true"])
async def test_a_graphql_body_that_is_not_an_object_is_refused(
    client: httpx.AsyncClient, body: bytes
) -> None:
    """Without a key: once a 500 and an internal.error row."""
    before = await row_counts()
    graphql_refused(await post_graphql(client, body, None), field="body")
    assert await row_counts() == before


async def test_invalid_utf8_after_an_undecodable_key_is_still_named(
    rest: httpx.AsyncClient, client: httpx.AsyncClient, alice: Account
) -> None:
    """The path to a bad byte may cross a key that is itself bad: it is named as written."""
    body = b'{"\\ud800": "\xff"}'
    message = refused(await rest.post(url("/sessions"), content=body, headers=alice.headers), 400)
    assert "not valid UTF-8" in message
    graphql_refused(await post_graphql(client, body, None), field="\\ud800")


BAD_SOCKET_MESSAGES = [
    "1",
    "[]",
    "null",
    '{"type": 1}',
    '{"type": "subscribe", "id": "1", "payload": 1}',
    '{"type": "subscribe", "id": "1", "payload": null}',
    '{"type": "subscribe", "id": "1", "payload": {"query": 1}}',
    '{"type": "subscribe", "id": "1", "payload": {"query": "{ me { id } }", "variables": []}}',
    '{"type": "ping", "payload": "x"}',
]


@pytest.mark.parametrize("message", BAD_SOCKET_MESSAGES)
async def test_a_malformed_websocket_message_closes_the_connection(
    live: LiveServer, alice: Account, message: str
) -> None:
    """Once strawberry's handler failed on these with an internal error and no close code."""
    async with TransportWS.connect(live.ws_url, headers=alice.headers) as ws:
        await ws.socket.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


@pytest.mark.parametrize("message", BAD_SOCKET_MESSAGES)
async def test_the_legacy_protocol_skips_a_malformed_message(
    live: LiveServer, alice: Account, message: str
) -> None:
    """graphql-ws ignores what it cannot read; the connection goes on serving."""
    async with LegacyWS.connect(live.ws_url, headers=alice.headers) as ws:
        await ws.socket.send(message.replace('"subscribe"', '"start"'))
        operation = await ws.subscribe(
            "subscription($s: ID!) { messageAdded(sessionId: $s) { id } }", {"s": "x"}
        )
        payload = await ws.next_result(operation)
        assert payload["errors"][0]["extensions"]["code"] == "NOT_FOUND"
