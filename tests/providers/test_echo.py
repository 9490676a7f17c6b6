"""The built-in `echo` model: its simulated typing never holds a reply (and its session)
for longer than MAX_TYPING_SECONDS, whatever a config's chunk_delay_ms."""

from __future__ import annotations

import pytest

from db.ports import ChatTurn, ModelReply, ModelSpec, ReplyDelta
from gateway.providers import EchoProvider
from gateway.providers import echo as echo_module

LONG_QUESTION = [ChatTurn(role="user", content="word " * 500)]


def _client(delay_ms: float) -> echo_module.EchoClient:
    spec = ModelSpec(
        config_id="c",
        version=1,
        provider="echo",
        model_name="echo",
        model_version="1",
        parameters={"chunk_delay_ms": delay_ms, "prefix": ""},
    )
    return EchoProvider().build(spec)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every pause the echo model takes, recorded instead of slept."""
    taken: list[float] = []

    async def record(seconds: float) -> None:
        taken.append(seconds)

    monkeypatch.setattr(echo_module.asyncio, "sleep", record)
    return taken


async def test_a_whole_reply_types_for_at_most_the_cap(pauses: list[float]) -> None:
    reply = await _client(5000).complete(LONG_QUESTION)
    assert reply.content == "word " * 500
    assert sum(pauses) == echo_module.MAX_TYPING_SECONDS


async def test_a_streamed_reply_types_for_at_most_the_cap(pauses: list[float]) -> None:
    events = [event async for event in _client(5000).stream(LONG_QUESTION)]
    assert sum(len(e.text) for e in events if isinstance(e, ReplyDelta)) == len("word " * 500)
    assert isinstance(events[-1], ModelReply)
    assert sum(pauses) == echo_module.MAX_TYPING_SECONDS


async def test_short_delays_are_kept_as_configured(pauses: list[float]) -> None:
    await _client(2).complete([ChatTurn(role="user", content="a b c")])
    assert pauses == [pytest.approx(0.006)]
