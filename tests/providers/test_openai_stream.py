"""Streamed replies from the `openai` provider: server-sent events over a real socket."""

from __future__ import annotations

import asyncio
import json

import pytest

from db.ports import Usage
from tests.providers.conftest import MakeClient, collect
from tests.providers.fake_openai import FakeOpenAI, completion, raw, stream
from tests.providers.frames import chunk, frame, reply_frames, split_every

PIECES = ["Caf\u00e9 ", "\u4e2d\u6587 ", "\U0001f600", " done.\r\n"]


async def test_streamed_happy_path_with_usage_in_the_final_chunk(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(stream([reply_frames(PIECES, usage=(21, 6))]))
    client = await make_client()

    deltas, final = await collect(client)

    assert deltas == PIECES
    assert final.content == "".join(PIECES)
    assert final.finish_reason == "stop"
    assert final.usage == Usage(prompt_tokens=21, completion_tokens=6)
    assert final.labels["upstream_model"] == "gpt-fake-2024-01-01"
    assert final.labels["attempts"] == 1
    [request] = fake_openai.received
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.headers["Accept"] == "text/event-stream"


async def test_stream_options_null_is_left_out(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(stream([reply_frames(["x"], usage=None)]))
    client = await make_client(parameters={"stream_options": None})
    _, final = await collect(client)
    assert final.usage is None
    assert "stream_options" not in fake_openai.received[0].body


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
async def test_stream_split_at_awkward_byte_boundaries(
    fake_openai: FakeOpenAI, make_client: MakeClient, size: int
) -> None:
    # Small flushed writes: cuts land inside multibyte characters, inside "data:" and
    # between the \r and \n of the CRLF line endings used here.
    body = reply_frames(PIECES).replace(b"\n\n", b"\r\n\r\n")
    fake_openai.script(stream(split_every(body, size), pause=0.001))
    client = await make_client()

    deltas, final = await collect(client)

    assert "".join(deltas) == "".join(PIECES)
    assert final.content == "".join(PIECES)
    assert final.usage == Usage(prompt_tokens=9, completion_tokens=4)


async def test_keep_alive_comments_are_skipped(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    frames = [
        b": keep-alive\n\n",
        frame(chunk("a")),
        b"data:\n\n",
        b": ping\n\n",
        reply_frames(["b"]),
    ]
    fake_openai.script(stream(frames, pause=0.01))
    client = await make_client()
    deltas, final = await collect(client)
    assert deltas == ["a", "b"]
    assert final.content == "ab"


async def test_keep_alives_hold_the_read_timeout_off(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    # 1.2 s without a token, longer than the 0.5 s read timeout, but a comment every 0.2 s.
    frames = [frame(chunk("slow ")), *([b": keep-alive\n\n"] * 5), reply_frames(["thinker"])]
    fake_openai.script(stream(frames, pause=0.2))
    client = await make_client()
    _, final = await collect(client)
    assert final.content == "slow thinker"


async def test_a_server_that_ignores_stream_true(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(raw(json.dumps(completion("whole")).encode()))
    client = await make_client()
    deltas, final = await collect(client)
    assert deltas == ["whole"]
    assert final.content == "whole"
    assert final.usage == Usage(prompt_tokens=12, completion_tokens=5)


async def test_the_connection_is_reused_when_the_body_ends_after_done(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    # The end of the body comes 50 ms after [DONE]: worth waiting for, to keep the socket.
    fake_openai.script(stream([reply_frames(["one"])], pause=0.05))
    client = await make_client()
    await collect(client)
    await collect(client)
    first, second = fake_openai.received
    assert first.peer == second.peer
    assert fake_openai.open_connections == 1


async def test_a_body_left_open_after_done_does_not_fail_the_reply(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    never = asyncio.Event()
    fake_openai.script(stream([reply_frames(["answer"]), never]))
    client = await make_client()
    _, final = await collect(client)
    assert final.content == "answer"
    assert final.finish_reason == "stop"
