"""The model provider's API key goes to the model server and nowhere else.

A real gateway process (debug logging, access log on) holds a real key in the variable
its config names. Replies, streams and failures (401, 500, timeouts, garbage, an error
mid-stream, each echoing the key back as a careless server might) go through every door;
then no answer, event, log entry or line of the process's output may contain the key.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from aiohttp import web
from starlette.applications import Starlette

from db.models import LogEntry
from tests.factories import Account, create_session, send
from tests.gateway.e2e.processes import gateway_env, start_gateways
from tests.gateway.e2e.sse import streamed_send
from tests.gateway.e2e.support import KEY_ENV, openai_config
from tests.providers.fake_openai import FakeOpenAI, Handler, error, reply, stalled, stream
from tests.providers.frames import chunk, frame, reply_frames
from tests.schema.ws import TransportWS
from tests.servers import StartServer

SEND = """mutation($i: SendMessageInput!) {
  sendMessage(input: $i) { aiMessage { content metadata } } }"""
STREAM = """subscription($i: SendMessageInput!) { sendMessageStream(input: $i) {
  ... on Message { id content metadata } ... on MessageDelta { delta } } }"""
EVERYTHING = """{
  __schema { types { name description fields { name description } } }
  modelConfigs { id modelName modelVersion provider parameters baseUrl apiKeyEnv isDefault }
  logs(first: 100) { totalCount edges { node { level event message details } } }
}"""
READ_TIMEOUT = 0.5  # seconds the gateway waits for a silent model server
SOON = {"retry-after-ms": "5"}  # a failing server asks for a quick retry


def answer(text: str) -> Handler:
    """A good reply, whole or streamed as the request asks."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if (await request.json()).get("stream"):
            return await stream([reply_frames(text.split(" "))])(request)
        return await reply(text)(request)

    return handler


def echoing(status: int, *, mid_stream: bool = False) -> Handler:
    """A non-JSON error page repeating the Authorization header, or an error event after
    some text repeating the bare key (which only redaction of that very value can hide)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        sent = request.headers["Authorization"]
        if mid_stream:
            oops = frame({"error": {"message": f"key {sent.removeprefix('Bearer ')} revoked"}})
            return await stream([frame(chunk("partial ")), oops])(request)
        page = f"<h1>Bad gateway</h1>{sent}"
        return web.Response(text=page, status=status, content_type="text/html", headers=SOON)

    return handler


SCENARIOS: dict[str, Handler] = {
    "hello": answer("all good here"),
    "unauthorised": error(401, "invalid api key", kind="invalid_request_error", echo_key=True),
    "server error": error(500, "internal trouble", echo_key=True, headers=SOON),
    "silence": stalled(READ_TIMEOUT * 5, answer("too late")),
    "garbage": echoing(502),
    "broken stream": echoing(200, mid_stream=True),
}


async def by_question(request: web.Request) -> web.StreamResponse:
    question = (await request.json())["messages"][-1]["content"]
    return await SCENARIOS[question](request)


def lines_with(secret: str, text: str) -> list[str]:
    return [line for line in text.splitlines() if secret in line]


@dataclass(frozen=True)
class Door:
    http: httpx.AsyncClient
    ws_url: str
    account: Account
    session_id: str

    async def rest(self, question: str) -> str:
        return (await send(self.http, self.account, self.session_id, question)).text

    async def rest_events(self, question: str) -> str:
        async with streamed_send(self.http, self.account, self.session_id, question) as events:
            await events.rest()
        return "\n".join(events.raw)

    async def graphql(self, question: str) -> str:
        variables = {"i": {"sessionId": self.session_id, "content": question}}
        body = {"query": SEND, "variables": variables}
        return (await self.http.post("/graphql", json=body, headers=self.account.headers)).text

    async def graphql_stream(self, question: str) -> str:
        async with TransportWS.connect(self.ws_url, headers=self.account.headers) as socket:
            operation = await socket.subscribe(
                STREAM, {"i": {"sessionId": self.session_id, "content": question}}
            )
            return json.dumps(await socket.results(operation))


async def test_the_key_appears_in_no_answer_event_log_or_output(
    servers: StartServer,
    database_url: str,
    app: Starlette,
    alice: Account,
    admin: Account,
    fake_openai: FakeOpenAI,
    api_key: str,
) -> None:
    config = await openai_config(fake_openai.base_url)
    fake_openai.script(by_question)
    env = gateway_env(
        database_url,
        api_key,
        LOG_LEVEL="debug",
        ACCESS_LOG="true",
        PROVIDER_READ_TIMEOUT=str(READ_TIMEOUT),
    )
    [server] = await start_gateways(servers, 1, env)
    seen: list[str] = []
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        session_id = await create_session(http, alice, model_config_id=str(config.id))
        door = Door(http, server.base_url.replace("http", "ws") + "/graphql", alice, session_id)
        ways: list[Callable[[str], Awaitable[str]]] = [
            door.rest,
            door.rest_events,
            door.graphql,
            door.graphql_stream,
        ]
        for way in ways:
            for question in SCENARIOS:
                seen.append(await way(question))
        seen.append((await http.get("/api/v1/model-configs", headers=alice.headers)).text)
        logs = await http.get("/api/v1/logs", params={"page_size": 100}, headers=admin.headers)
        seen.append(logs.text)
        everything = await http.post("/graphql", json={"query": EVERYTHING}, headers=admin.headers)
        seen.append(everything.text)
        history = await http.get(
            f"/api/v1/sessions/{session_id}/messages",
            params={"page_size": 100},
            headers=alice.headers,
        )
        seen.append(history.text)
    rows = await LogEntry.all().values("level", "event", "message", "details")
    output = server.output()

    # The model key went to the model server and nowhere else.
    assert fake_openai.received[0].headers["Authorization"] == f"Bearer {api_key}"
    answers = "\n".join(seen)
    stored_logs = json.dumps(rows, default=str)
    # Nor did the gateway's own keys, sent on every request, leak anywhere.
    for secret in (api_key, alice.key, admin.key):
        assert lines_with(secret, answers) == []
        assert lines_with(secret, stored_logs) == []
        assert lines_with(secret, output) == []
    # What was searched is what the scenarios should have produced: the failures really
    # echoed the key (now redacted), timed out, retried, and were logged.
    assert answers.count("[redacted]") >= 8, answers
    assert "the model server sent nothing" in answers
    assert "errors" not in everything.json(), everything.text
    assert [c["apiKeyEnv"] for c in everything.json()["data"]["modelConfigs"]] == [None, KEY_ENV]
    assert logs.json()["data"]["total"] == len(rows) < 100
    assert sum(row["event"] == "model.failed" for row in rows) == 4 * (len(SCENARIOS) - 1)
    assert "retrying" in output and "POST /api/v1/sessions" in output
