"""The API key never leaves in an error, its details or a log line, whatever the server says."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from db.ports import ChatTurn, ModelError
from tests.providers.conftest import MakeClient
from tests.providers.fake_openai import FakeOpenAI, Handler, error, raw, stream
from tests.providers.frames import chunk, frame

TURNS = [ChatTurn(role="user", content="hi")]

# Each scenario makes the server repeat the key (given to it) somewhere in a failure.
SCENARIOS: dict[str, Callable[[str], Handler]] = {
    "401 echoing the header": lambda key: error(401, "Incorrect API key", echo_key=True),
    "500s echoing the header": lambda key: error(500, "boom", echo_key=True),
    "key in type and code": lambda key: raw(
        f'{{"error": {{"message": "m", "type": "{key}", "code": "{key}"}}}}'.encode(), status=400
    ),
    "plain-text body": lambda key: raw(
        f"denied for key={key}".encode(), status=403, content_type="text/plain"
    ),
    "error object mid-stream": lambda key: stream(
        [frame(chunk("a")), frame({"error": {"message": f"key {key} revoked"}})]
    ),
    "malformed JSON around the key": lambda key: stream([f"data: {{{key}\n\n".encode()]),
    "200 error body": lambda key: raw(f'{{"error": "Bearer {key} expired"}}'.encode()),
    # The log keeps the start of a malformed body; the key straddles where it is cut.
    "key across the cut of a malformed body": lambda key: raw(("{" + "x" * 60 + key).encode()),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("mode", ["complete", "stream"])
async def test_the_key_is_never_in_an_error_or_a_log(
    fake_openai: FakeOpenAI,
    make_client: MakeClient,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
    mode: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.script(SCENARIOS[scenario](api_key))
    client = await make_client()

    with pytest.raises(ModelError) as caught:
        if mode == "complete":
            await client.complete(TURNS)
        else:
            [item async for item in client.stream(TURNS)]

    assert fake_openai.received[0].headers["Authorization"] == f"Bearer {api_key}"
    shown = f"{caught.value} {caught.value!r} {caught.value.details!r}"
    assert api_key not in shown
    assert api_key not in caplog.text
    assert caught.value.details["attempts"] >= 1


async def test_a_key_echoed_by_the_server_is_redacted_but_the_message_kept(
    fake_openai: FakeOpenAI, make_client: MakeClient, api_key: str
) -> None:
    fake_openai.script(error(401, "Incorrect API key", echo_key=True))
    client = await make_client()
    with pytest.raises(ModelError) as caught:
        await client.complete(TURNS)
    assert str(caught.value) == (
        "the model server answered HTTP 401: Incorrect API key (you sent Bearer [redacted])"
    )


async def test_a_key_header_other_than_authorization_is_redacted_too(
    fake_openai: FakeOpenAI, make_client: MakeClient, api_key: str
) -> None:
    fake_openai.script(
        raw(f'{{"error": {{"message": "bad api-key {api_key}"}}}}'.encode(), status=401)
    )
    client = await make_client(parameters={"api_key_header": "api-key"})
    with pytest.raises(ModelError) as caught:
        await client.complete(TURNS)
    assert fake_openai.received[0].headers["api-key"] == api_key
    assert api_key not in str(caught.value)
    assert "bad api-key [redacted]" in str(caught.value)
