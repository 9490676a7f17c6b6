"""GET /api/v1/sessions/{session_id}/export: the whole session as a download.

Through the in-process door (every answer checked against the OpenAPI document) and,
for what only a real server shows (a body that arrives as it is written, a transfer
broken on purpose), through uvicorn on a loopback port.
"""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message as AsgiMessage
from starlette.types import Receive, Scope, Send
from tortoise import connections

from db.models import ChatSession, LogEntry, Message
from db.services import exports
from tests.exporting import (
    TRICKY,
    TRICKY_METADATA,
    read_markdown,
    seed_messages,
    seeded_contents,
)
from tests.factories import Account, create_session, read_all_messages, send
from tests.rest.expect import refused, url
from tests.servers import live_server

SAFE_FILENAME = re.compile(r'^attachment; filename="([a-z0-9-]+\.(json|md))"$')


def export_url(session_id: str, format: str | None = None) -> str:
    query = "" if format is None else f"?format={format}"
    return url(f"/sessions/{session_id}/export{query}")


async def export(
    client: httpx.AsyncClient, account: Account, session_id: str, format: str
) -> httpx.Response:
    response = await client.get(export_url(session_id, format), headers=account.headers)
    assert response.status_code == 200, response.text
    return response


async def tricky_session(client: httpx.AsyncClient, alice: Account) -> tuple[str, list[str]]:
    """A session whose every message is hostile to Markdown, sent through the door (the
    echo model repeats each one back); the texts as sent."""
    session_id = await create_session(client, alice)
    for number, text in enumerate(TRICKY):
        metadata = TRICKY_METADATA[number % len(TRICKY_METADATA)]
        sent = await send(client, alice, session_id, text, metadata=metadata)
        assert sent.status_code == 200, sent.text
    return session_id, TRICKY


async def test_json_export_round_trips_every_message(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id, texts = await tricky_session(client, alice)
    response = await export(client, alice, session_id, "json")

    assert response.headers["content-type"] == "application/json"
    document = json.loads(response.content)
    history = await read_all_messages(client, alice, session_id)
    # Exactly REST's history: same messages, order, field names and values.
    assert document["messages"] == history
    assert len(history) == 2 * len(texts)
    questions = [m for m in document["messages"] if m["type"] == "user"]
    assert [m["content"] for m in questions] == texts
    assert [m["metadata"] for m in questions] == [
        TRICKY_METADATA[n % len(TRICKY_METADATA)] for n in range(len(texts))
    ]
    session = await ChatSession.get(id=session_id)
    assert document["session"] == {
        "session_id": session_id,
        "user_id": alice.user_id,
        "model_config_id": str(session.model_config_id),
        "title": session.title,
        "archived": False,
        "forked_from_message_id": None,
        "created_time": document["session"]["created_time"],
        "updated_time": document["session"]["updated_time"],
        "message_count": len(history),
    }


@pytest.mark.parametrize("parser", ["commonmark", "default"])
async def test_markdown_export_keeps_every_message_intact(
    client: httpx.AsyncClient, alice: Account, parser: str
) -> None:
    session_id, _ = await tricky_session(client, alice)
    title = "# Not | a `table` <b>trip</b> & 東京 🗾\nsecond line"
    await ChatSession.filter(id=session_id).update(title=title)
    response = await export(client, alice, session_id, "markdown")

    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    read = read_markdown(response.content.decode("utf-8"), parser)
    history = await read_all_messages(client, alice, session_id)
    assert [content for _, content in read.sections] == [m["content"] for m in history]
    for (heading, _), message in zip(read.sections, history, strict=True):
        label = "User" if message["type"] == "user" else "Assistant"
        assert heading == f"**{label}** · {message['created_time']}"
    assert read.title == " ".join(title.split())
    assert read.footer == f"*End of the session: {len(history)} messages.*"


async def test_a_long_session_is_exported_whole_across_pages(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    count = 2 * exports.PAGE_SIZE + 7
    await seed_messages(session_id, seeded_contents(count))
    history = await read_all_messages(client, alice, session_id)
    assert len(history) == count

    document = json.loads((await export(client, alice, session_id, "json")).content)
    assert document["messages"] == history
    assert document["session"]["message_count"] == count

    read = read_markdown((await export(client, alice, session_id, "markdown")).text)
    assert [content for _, content in read.sections] == [m["content"] for m in history]


async def test_an_empty_session_exports_as_an_empty_history(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    document = json.loads((await export(client, alice, session_id, "json")).content)
    assert document["messages"] == [] and document["session"]["message_count"] == 0
    read = read_markdown((await export(client, alice, session_id, "markdown")).text)
    assert read.sections == [] and read.title == "Chat session"


async def test_json_is_the_default_format(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await create_session(client, alice)
    response = await client.get(export_url(session_id), headers=alice.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content)["session"]["session_id"] == session_id


@pytest.mark.parametrize("format", ["json", "markdown"])
async def test_the_download_is_named_safely(
    client: httpx.AsyncClient, alice: Account, format: str
) -> None:
    session_id = await create_session(client, alice)
    await ChatSession.filter(id=session_id).update(title='a "quoted"; name=x/../../etc ☃')
    response = await export(client, alice, session_id, format)
    disposition = response.headers["content-disposition"]
    match = SAFE_FILENAME.match(disposition)
    assert match, disposition
    suffix = "json" if format == "json" else "md"
    assert match[1] == f"a-quoted-name-x-etc-{session_id[:8]}.{suffix}"
    assert response.headers["cache-control"] == "no-store"
    assert "content-length" not in response.headers  # streamed: the length is not known


async def test_head_answers_the_headers_without_reading_the_history(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    response = await client.head(export_url(session_id, "markdown"), headers=alice.headers)
    assert response.status_code == 200 and response.content == b""
    assert SAFE_FILENAME.match(response.headers["content-disposition"])
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"


async def test_only_the_owner_and_admins_may_export(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    session_id = await create_session(client, alice)
    await send(client, alice, session_id, "private")
    for format in ("json", "markdown"):
        answer = await client.get(export_url(session_id, format), headers=bob.headers)
        refused(answer, 404)
        as_admin = await client.get(export_url(session_id, format), headers=admin.headers)
        assert as_admin.status_code == 200
    document = json.loads((await export(client, admin, session_id, "json")).content)
    assert document["session"]["user_id"] == alice.user_id
    assert [m["content"] for m in document["messages"]] == ["private", "Echo: private"]
    for unknown in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        refused(await client.get(export_url(unknown), headers=alice.headers), 404)
    refused(await client.get(export_url(session_id)), 401)


@pytest.mark.parametrize("format", ["xml", "JSON", "md", "", "json,markdown"])
async def test_an_unknown_format_is_refused_by_name(
    client: httpx.AsyncClient, alice: Account, format: str
) -> None:
    session_id = await create_session(client, alice)
    answer = await client.get(
        url(f"/sessions/{session_id}/export"), params={"format": format}, headers=alice.headers
    )
    refused(answer, 400, field="format")


async def test_an_export_is_logged_with_its_actor(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    session_id = await create_session(client, alice)
    await export(client, admin, session_id, "markdown")
    [entry] = await LogEntry.filter(event="session.exported")
    assert entry.actor_id == admin.user_id
    assert entry.details is not None
    assert entry.details["session_id"] == session_id and entry.details["format"] == "markdown"


# Through a real server --------------------------------------------------------------------


class HoldAfterChunks:
    """ASGI wrapper: an export's answer pauses after `chunks` body chunks until released,
    as it would when its client stops reading (made deterministic)."""

    def __init__(self, app: Starlette, chunks: int) -> None:
        self.app = app
        self.chunks = chunks
        self.held = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/export"):
            await self.app(scope, receive, send)
            return
        sent = 0

        async def holding(message: AsgiMessage) -> None:
            nonlocal sent
            await send(message)
            if message["type"] == "http.response.body" and message.get("more_body"):
                sent += 1
                if sent == self.chunks:
                    self.held.set()
                    await self.release.wait()

        await self.app(scope, receive, holding)


async def long_session(client: httpx.AsyncClient, alice: Account) -> tuple[str, int]:
    """A session of three pages, each encoding to more than two chunks."""
    session_id = await create_session(client, alice)
    length = 2 * exports.CHUNK_BYTES // exports.PAGE_SIZE + 10
    count = 3 * exports.PAGE_SIZE
    await seed_messages(session_id, [f"{n:05d}" + "x" * length for n in range(count)])
    return session_id, count


async def test_the_body_streams_page_by_page_through_a_real_server(
    app: Starlette, client: httpx.AsyncClient, alice: Account
) -> None:
    session_id, count = await long_session(client, alice)
    gate = HoldAfterChunks(app, chunks=2)  # the head, then a chunk of the first page
    async with (
        live_server(gate) as live,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=live.http_url, timeout=30) as http,
        http.stream("GET", export_url(session_id, "json"), headers=alice.headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        pieces = response.aiter_raw()
        received = [await anext(pieces)]
        await gate.held.wait()
        # The server has sent part of the first page and waits: what it reads from now on
        # is read now. The last message changes, and a turn adds two messages.
        await Message.filter(session_id=session_id, seq=count).update(content="changed late")
        sent = await send(client, alice, session_id, "sent during the export")
        assert sent.status_code == 200, sent.text
        gate.release.set()
        received += [piece async for piece in pieces]

    assert len(received) > 2  # read as it came, in several pieces
    document = json.loads(b"".join(received))
    assert document["messages"][-1]["content"] == "changed late"
    # The end was fixed when the export started: the new turn is not in it.
    assert len(document["messages"]) == count == document["session"]["message_count"]
    assert [m["content"][:5] for m in document["messages"][:-1]] == [
        f"{n:05d}" for n in range(count - 1)
    ]


@pytest.mark.internal_errors  # uvicorn reports the answer it had to cut short
@pytest.mark.parametrize("failure", ["session deleted", "database failed"])
async def test_an_export_that_cannot_finish_breaks_the_transfer(
    app: Starlette,
    client: httpx.AsyncClient,
    alice: Account,
    failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A client must not take a cut-short export for a whole one: the connection closes
    before the body's end, which any HTTP client reports as an error."""
    session_id, count = await long_session(client, alice)
    gate = HoldAfterChunks(app, chunks=2)
    database = connections.get("default")
    received: list[bytes] = []
    async with (
        live_server(gate) as live,  # type: ignore[arg-type]
        httpx.AsyncClient(base_url=live.http_url, timeout=30) as http,
        http.stream("GET", export_url(session_id, "markdown"), headers=alice.headers) as response,
    ):
        assert response.status_code == 200
        pieces = response.aiter_raw()
        received.append(await anext(pieces))
        await gate.held.wait()
        try:
            if failure == "session deleted":
                await Message.filter(session_id=session_id).delete()
                await ChatSession.filter(id=session_id).delete()
            else:
                await database.execute_script('ALTER TABLE "messages" RENAME TO "messages_away"')
            gate.release.set()
            with pytest.raises(httpx.RemoteProtocolError):
                async for piece in pieces:
                    received.append(piece)
        finally:
            if failure == "database failed":
                await database.execute_script('ALTER TABLE "messages_away" RENAME TO "messages"')

    text = b"".join(received).decode()
    assert "End of the session" not in text
    stopped = [r for r in caplog.records if r.name == exports.__name__]
    assert len(stopped) == 1 and f"of {count} messages" in stopped[0].getMessage()
    if failure == "database failed":
        assert stopped[0].exc_info is not None
    # The server goes on serving.
    assert (await client.get(url("/model-configs"), headers=alice.headers)).status_code == 200
