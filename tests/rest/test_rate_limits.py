"""Rate limits through the REST door: 429 in the envelope with Retry-After, RateLimit-*
headers, the reply limit (the streams limit: test_stream_limits.py).

Flushes are left to the tests (a long interval): on one process every decision is exact.
"""

from __future__ import annotations

import httpx
import pytest

from gateway.settings import Settings, load_settings
from tests.factories import Account, create_session, send
from tests.rest.expect import ok

PER_MINUTE = 8
REPLIES = 2


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url,
        shutdown_grace_seconds=5,
        rate_limit_per_minute=PER_MINUTE,
        reply_rate_limit_per_minute=REPLIES,
        max_streams_per_user=1,
        rate_limit_flush_seconds=60,
        _env_file=None,
    )


async def configs(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    return await client.get("/api/v1/model-configs", headers=account.headers)


async def test_over_the_limit_429_in_the_envelope_with_retry_after(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    for _ in range(PER_MINUTE):
        ok(await configs(client, alice))
    response = await configs(client, alice)
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == 429 and body["data"] is None
    assert "rate limit" in body["message"]
    assert int(response.headers["Retry-After"]) >= 1
    ok(await configs(client, bob))  # another key counts on its own


async def test_ratelimit_headers_count_down(client: httpx.AsyncClient, alice: Account) -> None:
    remaining = []
    for _ in range(3):
        response = await configs(client, alice)
        assert response.headers["RateLimit-Limit"] == str(PER_MINUTE)
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [PER_MINUTE - 1, PER_MINUTE - 2, PER_MINUTE - 3]
    # An error answer after authentication carries them too.
    missing = await client.get("/api/v1/sessions/nope/messages", headers=alice.headers)
    assert missing.status_code == 404
    assert missing.headers["RateLimit-Remaining"] == str(PER_MINUTE - 4)


async def test_unauthenticated_requests_and_health_are_not_counted(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for _ in range(PER_MINUTE + 2):
        assert (await client.get("/api/v1/model-configs")).status_code == 401
        wrong = {"Authorization": "Bearer cgw_not-a-key"}
        assert (await client.get("/api/v1/model-configs", headers=wrong)).status_code == 401
        assert (await client.get("/healthz")).status_code == 200
    response = await configs(client, alice)
    assert response.headers["RateLimit-Remaining"] == str(PER_MINUTE - 1)


async def test_reply_limit_and_an_idempotent_retry_counts_once(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    keyed = {"headers": {"Idempotency-Key": "once"}}
    first = ok(await send(client, alice, session_id, "one", **keyed))
    again = ok(await send(client, alice, session_id, "one", **keyed))
    assert again["ai_message"]["message_id"] == first["ai_message"]["message_id"]
    ok(await send(client, alice, session_id, "two"))
    refused = await send(client, alice, session_id, "three")
    assert refused.status_code == 429, refused.text
    assert "model replies" in refused.json()["message"]
    assert int(refused.headers["Retry-After"]) >= 1
    streamed = await send(
        client, alice, session_id, "four", headers={"Accept": "text/event-stream"}
    )
    assert streamed.status_code == 429  # refused before the stream starts
    history = ok(await client.get(f"/api/v1/sessions/{session_id}/messages", headers=alice.headers))
    assert history["total"] == 4  # nothing stored for the refused sends
