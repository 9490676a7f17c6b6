"""Failed streams: errors mid-stream, dropped connections, and no retry once text is out."""

from __future__ import annotations

import pytest

from db.ports import ChatTurn, ModelError, ReplyDelta
from tests.providers.conftest import RETRY, MakeClient, collect
from tests.providers.fake_openai import FakeOpenAI, error, stalled, stream
from tests.providers.frames import DONE, chunk, frame, reply_frames

TURNS = [ChatTurn(role="user", content="Tell me something")]


async def test_error_object_mid_stream(fake_openai: FakeOpenAI, make_client: MakeClient) -> None:
    failure = {"error": {"message": "the model overloaded", "type": "server_error", "code": 503}}
    fake_openai.script(stream([frame(chunk("partial ")), frame(failure), DONE]))
    client = await make_client()

    seen: list[str] = []
    with pytest.raises(ModelError, match="the model overloaded") as caught:
        async for item in client.stream(TURNS):
            assert isinstance(item, ReplyDelta)
            seen.append(item.text)

    assert seen == ["partial "]
    assert caught.value.details["reason"] == "upstream_error"
    assert caught.value.details["upstream_code"] == 503
    assert len(fake_openai.received) == 1


async def test_named_error_event(fake_openai: FakeOpenAI, make_client: MakeClient) -> None:
    fake_openai.script(stream([b'event: error\ndata: {"message": "bad things"}\n\n']))
    client = await make_client()
    with pytest.raises(ModelError, match="bad things"):
        await collect(client)


async def test_malformed_json_mid_stream(fake_openai: FakeOpenAI, make_client: MakeClient) -> None:
    fake_openai.script(stream([frame(chunk("ok ")), b'data: {"choices": [\n\n', DONE]))
    client = await make_client()
    with pytest.raises(ModelError, match="malformed JSON") as caught:
        await collect(client)
    assert caught.value.details["reason"] == "malformed_response"
    assert len(fake_openai.received) == 1


async def test_connection_dropped_after_tokens_is_not_retried(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(stream([frame(chunk("Once upon ")), frame(chunk("a time"))], drop=True))
    client = await make_client()

    seen: list[str] = []
    with pytest.raises(ModelError, match="connection to the model server broke") as caught:
        async for item in client.stream(TURNS):
            assert isinstance(item, ReplyDelta)
            seen.append(item.text)

    assert seen == ["Once upon ", "a time"]
    assert caught.value.details["attempts"] == 1
    assert len(fake_openai.received) == 1


async def test_connection_dropped_before_tokens_is_retried(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(
        stream([frame(chunk(role="assistant"))], drop=True), stream([reply_frames(["fine"])])
    )
    client = await make_client()
    deltas, final = await collect(client)
    assert deltas == ["fine"]
    assert final.labels["attempts"] == 2
    assert len(fake_openai.received) == 2


async def test_read_timeout_after_tokens_is_not_retried(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(stream([frame(chunk("thinking"))], pause=5.0))
    client = await make_client()
    with pytest.raises(ModelError, match=r"sent nothing for 0\.5 s"):
        await collect(client)
    assert len(fake_openai.received) == 1


async def test_stream_ended_early_is_an_error(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    # A clean end of the body, but no [DONE] and no finish reason: possibly cut short.
    fake_openai.script(stream([frame(chunk("half a"))]))
    client = await make_client()
    with pytest.raises(ModelError, match="ended early") as caught:
        await collect(client)
    assert caught.value.details["reason"] == "stream_ended_early"
    assert len(fake_openai.received) == 1


async def test_missing_done_after_a_finish_reason_is_accepted(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(stream([reply_frames(["complete"], done=False)]))
    client = await make_client()
    _, final = await collect(client)
    assert final.content == "complete"
    assert final.finish_reason == "stop"


async def test_429_before_the_stream_is_retried(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(
        error(429, headers={"retry-after-ms": "50"}), stream([reply_frames(["after wait"])])
    )
    client = await make_client()
    _, final = await collect(client)
    assert final.content == "after wait"
    first, second = fake_openai.received
    assert second.at - first.at >= 0.05 - 0.001


async def test_500s_before_the_stream_spend_the_retry_budget(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(error(500))
    client = await make_client()
    with pytest.raises(ModelError) as caught:
        await collect(client)
    assert caught.value.status == 500
    assert len(fake_openai.received) == RETRY.max_retries + 1


async def test_a_slow_first_byte_is_a_read_timeout_and_retried(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(stalled(5.0, stream([reply_frames(["late"])])))
    client = await make_client()
    with pytest.raises(ModelError, match="sent nothing") as caught:
        await collect(client)
    assert caught.value.details["reason"] == "read_timeout"
    assert len(fake_openai.received) == RETRY.max_retries + 1
