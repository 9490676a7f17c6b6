"""Known traffic for the usage reports, and what each report of it must add up to.

The replies come through the real doors from the `echo` model (whose token counts are
deterministic), the `flaky` one made to fail, and a slow echo stopped part way. What a
report must say is worked out from what each reply answered (its metadata: usage and
latency), never from the usage table the report reads.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from tortoise import Tortoise

from db.models import UsageRecord
from tests.factories import Account, create_session, make_config, send
from tests.providers import FlakyProvider
from tests.rest.expect import ok, refused, url
from tests.schema.gql import send_gql

CANCEL_WAIT_SECONDS = 10.0


async def clear_usage() -> None:
    """usage_records has no foreign key, so emptying the other tables leaves its rows."""
    await Tortoise.get_connection("default").execute_script("DELETE FROM usage_records")


async def record_usage(
    at: datetime,
    user_id: str,
    config_id: str,
    *,
    failed: bool = False,
    prompt: int = 0,
    completion: int = 0,
    latency: float | None = None,
) -> None:
    """A usage row written at a chosen time (the doors only count replies made now)."""
    await UsageRecord.create(
        created_at=at,
        user_id=user_id,
        model_config_id=config_id,
        failed=failed,
        prompt_tokens=prompt,
        completion_tokens=completion,
        latency_ms=latency,
    )


@dataclass
class Figures:
    """What a report row must say, added up from the replies' own answers."""

    replies: int = 0
    failed_replies: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies: list[float] = field(default_factory=list)

    def add_reply(self, metadata: dict[str, Any]) -> None:
        used = metadata.get("usage") or {}
        self.replies += 1
        self.prompt_tokens += used.get("prompt_tokens", 0)
        self.completion_tokens += used.get("completion_tokens", 0)
        self.latencies.append(metadata["latency_ms"])

    def add_failure(self) -> None:
        self.failed_replies += 1

    def counts(self) -> tuple[int, int, int, int]:
        return (self.replies, self.failed_replies, self.prompt_tokens, self.completion_tokens)


def counts_of(row: dict[str, Any]) -> tuple[int, int, int, int]:
    """A REST row's counts (snake_case), comparable with `Figures.counts`."""
    return (row["replies"], row["failed_replies"], row["prompt_tokens"], row["completion_tokens"])


def mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


@dataclass
class Traffic:
    echo_id: str  # the plain echo config
    flaky_id: str  # fails on demand
    slow_id: str  # echoes slowly, so a reply can be stopped part way
    by_user: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_config: dict[str, Figures] = field(default_factory=lambda: defaultdict(Figures))
    by_pair: dict[tuple[str, str], Figures] = field(  # (user, config)
        default_factory=lambda: defaultdict(Figures)
    )
    cancelled: dict[str, Any] | None = None  # the stopped reply, as its sender got it

    def reply(self, user_id: str, config_id: str, metadata: dict[str, Any]) -> None:
        self.by_user[user_id].add_reply(metadata)
        self.by_config[config_id].add_reply(metadata)
        self.by_pair[user_id, config_id].add_reply(metadata)

    def failure(self, user_id: str, config_id: str) -> None:
        self.by_user[user_id].add_failure()
        self.by_config[config_id].add_failure()
        self.by_pair[user_id, config_id].add_failure()


async def sent(
    client: httpx.AsyncClient, who: Account, session_id: str, text: str, **extra: Any
) -> dict[str, Any]:
    """The metadata of the reply to a REST send that must succeed."""
    metadata: dict[str, Any] = ok(await send(client, who, session_id, text, **extra))["ai_message"][
        "metadata"
    ]
    return metadata


async def make_traffic(
    client: httpx.AsyncClient,
    flaky: FlakyProvider,
    alice: Account,
    bob: Account,
    admin: Account,
) -> Traffic:
    """Alice: three echo replies (REST and GraphQL), two failed and one good flaky reply,
    one slow reply cancelled part way. Bob: two echo replies, one sent for him by an
    admin (usage is the session owner's)."""
    echo = await make_config(model_name="usage-echo")
    failing = await make_config(provider="flaky", model_name="usage-flaky")
    slow = await make_config(model_name="usage-slow", parameters={"chunk_delay_ms": 50})
    traffic = Traffic(str(echo.id), str(failing.id), str(slow.id))

    session = await create_session(client, alice, model_config_id=traffic.echo_id)
    for text in ("hello", "a longer question about usage"):
        traffic.reply(alice.user_id, traffic.echo_id, await sent(client, alice, session, text))
    answer = await send_gql(client, alice, session, "and through GraphQL")
    traffic.reply(alice.user_id, traffic.echo_id, answer["aiMessage"]["metadata"])

    session = await create_session(client, alice, model_config_id=traffic.flaky_id)
    flaky.fail_next(2)
    for _ in range(2):
        refused(await send(client, alice, session, "will fail"), 500)
        traffic.failure(alice.user_id, traffic.flaky_id)
    traffic.reply(alice.user_id, traffic.flaky_id, await sent(client, alice, session, "works"))

    session = await create_session(client, alice, model_config_id=traffic.slow_id)
    stopped = await _cancelled_reply(client, alice, session)
    traffic.cancelled = stopped
    traffic.reply(alice.user_id, traffic.slow_id, stopped["metadata"])

    session = await create_session(client, bob, model_config_id=traffic.echo_id)
    traffic.reply(bob.user_id, traffic.echo_id, await sent(client, bob, session, "hi"))
    for_bob = await sent(client, admin, session, "for bob", user_id=bob.user_id)
    traffic.reply(bob.user_id, traffic.echo_id, for_bob)
    return traffic


async def _cancelled_reply(
    client: httpx.AsyncClient, who: Account, session_id: str
) -> dict[str, Any]:
    """A slow reply stopped while the model is still typing; the reply as stored."""
    words = " ".join(f"word{n}" for n in range(60))  # 60 pieces at 50 ms: seconds
    sending = asyncio.create_task(send(client, who, session_id, words))
    async with asyncio.timeout(CANCEL_WAIT_SECONDS):
        while True:  # until the reply is running: then the stop finds it
            stop = await client.post(url(f"/sessions/{session_id}/cancel"), headers=who.headers)
            if ok(stop)["cancelled"]:
                break
            await asyncio.sleep(0.02)
        reply: dict[str, Any] = ok(await sending)["ai_message"]
    assert reply["metadata"]["finish_reason"] == "cancelled", reply
    return reply
