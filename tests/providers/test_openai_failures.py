"""Failed whole replies: what is retried, for how long, and what the caller is told."""

from __future__ import annotations

import pytest

from db.ports import ChatTurn, ModelError
from gateway.providers import OpenAIProvider
from gateway.providers.retry import ProviderTimeouts, RetryPolicy
from tests.providers.conftest import RETRY, MakeClient
from tests.providers.fake_openai import FakeOpenAI, error, raw, reply, stalled
from tests.providers.sockets import closed_port, unanswered_port

TURNS = [
    ChatTurn(role="system", content="Be brief."),
    ChatTurn(role="user", content="Hi"),
    ChatTurn(role="assistant", content="Hello!"),
    ChatTurn(role="user", content="How are you?"),
]


async def test_429_with_retry_after_then_success(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(error(429, "slow down", headers={"Retry-After": "1"}), reply("ok"))
    client = await make_client()

    answer = await client.complete(TURNS)

    assert answer.content == "ok"
    assert answer.labels["attempts"] == 2
    first, second = fake_openai.received
    # The server's clock saw the second request at least Retry-After after the first
    # (a millisecond of slack for the event loop's clock resolution).
    assert second.at - first.at >= 1.0 - 0.001
    assert second.body == first.body


async def test_500s_until_the_retry_budget_is_spent(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(error(500, "boom"))
    client = await make_client()

    with pytest.raises(ModelError) as caught:
        await client.complete(TURNS)

    assert len(fake_openai.received) == RETRY.max_retries + 1
    assert caught.value.status == 500
    assert caught.value.details["attempts"] == RETRY.max_retries + 1
    assert caught.value.details["upstream_type"] == "server_error"
    assert (
        str(caught.value) == "the model server answered HTTP 500: boom (gave up after 3 attempts)"
    )


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_gateway_errors_are_retried(
    fake_openai: FakeOpenAI, make_client: MakeClient, status: int
) -> None:
    fake_openai.script(error(status), reply("recovered"))
    client = await make_client()
    assert (await client.complete(TURNS)).content == "recovered"
    assert len(fake_openai.received) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_fail_at_once_with_the_servers_message(
    fake_openai: FakeOpenAI, make_client: MakeClient, status: int
) -> None:
    fake_openai.script(error(status, "model 'gpt-fake' does not exist", kind="invalid_request"))
    client = await make_client()

    with pytest.raises(ModelError) as caught:
        await client.complete(TURNS)

    assert len(fake_openai.received) == 1
    assert caught.value.status == status
    assert "model 'gpt-fake' does not exist" in str(caught.value)
    assert caught.value.details["upstream_type"] == "invalid_request"
    assert caught.value.details["attempts"] == 1


async def test_retry_after_beyond_the_total_budget_fails_now(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(error(429, "quota", headers={"Retry-After": "3600"}), reply())
    client = await make_client()
    with pytest.raises(ModelError) as caught:
        await client.complete(TURNS)
    assert len(fake_openai.received) == 1
    assert caught.value.status == 429
    assert caught.value.details["retry_after"] == 3600


async def test_malformed_json(fake_openai: FakeOpenAI, make_client: MakeClient) -> None:
    fake_openai.script(raw(b'{"choices": [{"message": '))
    client = await make_client()
    with pytest.raises(ModelError, match="malformed JSON") as caught:
        await client.complete(TURNS)
    assert caught.value.details["reason"] == "malformed_response"
    assert len(fake_openai.received) == 1  # the server answered; asking again will not help


async def test_error_object_in_a_200_body(fake_openai: FakeOpenAI, make_client: MakeClient) -> None:
    fake_openai.script(raw(b'{"error": {"message": "context too long", "type": "invalid"}}'))
    client = await make_client()
    with pytest.raises(ModelError, match="context too long"):
        await client.complete(TURNS)


async def test_read_timeout_is_retried_then_reported(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    fake_openai.script(stalled(5.0, reply()))
    client = await make_client()  # read timeout 0.5 s

    with pytest.raises(ModelError, match=r"sent nothing for 0\.5 s") as caught:
        await client.complete(TURNS)

    assert caught.value.details["reason"] == "read_timeout"
    assert len(fake_openai.received) == RETRY.max_retries + 1


async def test_connect_timeout(make_client: MakeClient) -> None:
    async with unanswered_port() as base_url:
        client = await make_client(base_url=base_url)
        with pytest.raises(ModelError, match=r"could not connect .* within 0\.3 s") as caught:
            await client.complete(TURNS)
    assert caught.value.details["reason"] == "connect_timeout"
    assert caught.value.details["attempts"] == RETRY.max_retries + 1


async def test_connection_refused_is_retried_then_reported(make_client: MakeClient) -> None:
    client = await make_client(base_url=closed_port())
    with pytest.raises(ModelError, match="could not connect to the model server") as caught:
        await client.complete(TURNS)
    assert caught.value.details["reason"] == "connection"
    assert caught.value.details["attempts"] == RETRY.max_retries + 1


async def test_total_time_bounds_one_slow_attempt(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    # The server trickles nothing for longer than the total limit but under the read timeout.
    provider = OpenAIProvider(
        timeouts=ProviderTimeouts(connect=1.0, read=30.0, total=0.5), retry=RETRY
    )
    fake_openai.script(stalled(10.0, reply()))
    client = await make_client(provider=provider)

    with pytest.raises(ModelError, match=r"took longer than the 0\.5 s limit") as caught:
        await client.complete(TURNS)

    assert caught.value.details["reason"] == "total_timeout"
    assert len(fake_openai.received) == 1  # the budget is spent: no retry


async def test_total_time_bounds_the_number_of_retries(
    fake_openai: FakeOpenAI, make_client: MakeClient
) -> None:
    # 1000 retries allowed, but each waits at least 0.025 s (half of the 0.05 s backoff)
    # and all of them must fit in 0.5 s.
    provider = OpenAIProvider(
        timeouts=ProviderTimeouts(connect=1.0, read=5.0, total=0.5),
        retry=RetryPolicy(max_retries=1000, base_delay=0.05, max_delay=0.05),
    )
    fake_openai.script(error(503))
    client = await make_client(provider=provider)

    with pytest.raises(ModelError) as caught:
        await client.complete(TURNS)

    received = len(fake_openai.received)
    assert 2 <= received <= 0.5 / 0.025 + 1
    # The deadline may end the last attempt before the server saw it.
    assert received <= caught.value.details["attempts"] <= received + 1
