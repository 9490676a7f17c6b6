"""End to end through the REST door: a config with provider "openai" answered by the fake."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from db.models import LogEntry, LogLevel, ModelConfig
from tests.factories import Account, create_session, make_account, make_config, send
from tests.providers.conftest import KEY_ENV, RETRY
from tests.providers.fake_openai import FakeOpenAI, error, reply


async def openai_session(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, **parameters: Any
) -> tuple[Account, str, ModelConfig]:
    alice = await make_account("alice")
    config = await make_config(
        provider="openai",
        model_name="gpt-fake",
        model_version="2024-01-01",
        base_url=fake_openai.base_url,
        api_key_env=KEY_ENV,
        parameters=parameters,
    )
    session_id = await create_session(client, alice, model_config_id=str(config.id))
    return alice, session_id, config


async def log_rows() -> str:
    rows = await LogEntry.all().values("level", "event", "message", "details")
    return json.dumps(rows, default=str)


async def test_a_reply_with_its_metadata(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str
) -> None:
    alice, session_id, config = await openai_session(
        client, fake_openai, temperature=0.4, system_prompt="Be brief.", max_history_messages=5
    )
    fake_openai.script(reply("Hi! How can I help?", usage=(17, 6)))

    response = await send(client, alice, session_id, "hello")

    assert response.status_code == 200, response.text
    message = response.json()["data"]["ai_message"]
    assert message["content"] == "Hi! How can I help?"
    metadata = message["metadata"]
    assert metadata["provider"] == "openai"
    assert metadata["model_name"] == "gpt-fake"
    assert metadata["model_version"] == "2024-01-01"
    assert metadata["upstream_model"] == "gpt-fake-2024-01-01"
    assert metadata["usage"] == {"prompt_tokens": 17, "completion_tokens": 6}
    assert metadata["finish_reason"] == "stop"
    assert metadata["latency_ms"] >= 0
    assert metadata["attempts"] == 1
    assert metadata["config_version"] == config.version
    [request] = fake_openai.received
    assert request.body["temperature"] == 0.4
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert not {"system_prompt", "max_history_messages"} & request.body.keys()


async def test_upstream_failure_is_a_500_and_an_error_log_without_the_key(
    client: httpx.AsyncClient,
    fake_openai: FakeOpenAI,
    api_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, session_id, _ = await openai_session(client, fake_openai)
    # A careless server that repeats the Authorization header in its error message.
    fake_openai.script(error(503, "overloaded", echo_key=True))

    response = await send(client, alice, session_id, "anyone there?")

    assert response.status_code == 500
    body = response.json()
    assert body["code"] == 500 and body["data"] is None
    assert "HTTP 503: overloaded" in body["message"]
    assert len(fake_openai.received) == RETRY.max_retries + 1
    [entry] = await LogEntry.filter(level=LogLevel.ERROR, event="model.failed")
    assert entry.details["status"] == 503
    assert entry.details["attempts"] == RETRY.max_retries + 1
    assert entry.details["provider"] == "openai"
    assert "overloaded" in entry.message
    # The key reached the fake server, and nowhere else.
    assert fake_openai.received[0].headers["Authorization"] == f"Bearer {api_key}"
    assert api_key not in response.text
    assert api_key not in await log_rows()
    assert api_key not in caplog.text
    configs = await client.get("/api/v1/model-configs", headers=alice.headers)
    assert api_key not in configs.text


async def test_the_question_is_kept_and_an_idempotent_retry_asks_again(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, api_key: str
) -> None:
    alice, session_id, _ = await openai_session(client, fake_openai)
    failures = [error(500)] * (RETRY.max_retries + 1)
    fake_openai.script(*failures, reply("second time lucky"))
    retry = {"headers": {"Idempotency-Key": "k-1"}}

    first = await send(client, alice, session_id, "please answer", **retry)
    assert first.status_code == 500
    second = await send(client, alice, session_id, "please answer", **retry)

    assert second.status_code == 200, second.text
    assert second.json()["data"]["ai_message"]["content"] == "second time lucky"
    history = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=alice.headers)
    stored = [(m["type"], m["content"]) for m in history.json()["data"]["messages"]]
    assert stored == [("user", "please answer"), ("ai", "second time lucky")]
    # The re-asked model saw the stored question once, not twice.
    assert fake_openai.received[-1].body["messages"] == [
        {"role": "user", "content": "please answer"}
    ]


async def test_a_missing_key_variable_fails_the_reply_naming_it(
    client: httpx.AsyncClient, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    alice, session_id, _ = await openai_session(client, fake_openai)
    response = await send(client, alice, session_id, "hello")
    assert response.status_code == 500
    assert KEY_ENV in response.json()["message"]
    assert fake_openai.received == []
    [entry] = await LogEntry.filter(level=LogLevel.ERROR, event="model.failed")
    assert entry.details["reason"] == "missing_api_key"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider": "no-such-provider"}, "provider"),
        ({"base_url": "ftp://models.example"}, "base_url"),
        ({"base_url": "https://user:pw@models.example/v1"}, "base_url"),
        ({"api_key_env": "1NOT-A-NAME"}, "api_key_env"),
        ({"parameters": {"temperature": "warm"}}, "parameters"),
        ({"parameters": {"max_tokens": 0}}, "parameters"),
        ({"parameters": {"stop": [1, 2]}}, "parameters"),
        ({"parameters": {"extra_headers": {"Authorization": "Bearer x"}}}, "parameters"),
    ],
)
async def test_a_config_that_cannot_work_is_refused_when_saved(
    client: httpx.AsyncClient,
    admin: Account,
    fake_openai: FakeOpenAI,
    api_key: str,
    changes: dict[str, Any],
    field: str,
) -> None:
    _, _, config = await openai_session(client, fake_openai)

    response = await client.put(
        f"/api/v1/model-configs/{config.id}", json=changes, headers=admin.headers
    )

    assert response.status_code == 400, response.text
    assert field in response.json()["message"]
    await config.refresh_from_db()
    assert config.version == 1
