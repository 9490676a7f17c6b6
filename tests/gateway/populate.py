"""Fill a fresh database with a bit of everything, for the data move tests.

Run as a process (`python -m tests.gateway.populate URL LOGS`): Tortoise keeps one dialect
per process, and the test process may be using the other one."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from tortoise import Tortoise

from db import migrate
from db.config import tortoise_config
from db.fields import Json
from db.models import (
    ApiKey,
    ChatSession,
    LogEntry,
    LogLevel,
    Message,
    MessageFeedback,
    MessageType,
    ModelConfig,
    ModelConfigVersion,
    RateWindow,
    Rating,
    Role,
    UsageRecord,
    User,
)
from db.services import model_configs

UNICODE = "héllo 👋 日本語 — «quotes» \u2028 line\tsep \"' \\ null\u0001"
# A time without microseconds: isoformat() writes it without a fraction.
ROUND = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


async def populate(url: str, logs: int) -> None:
    await migrate.upgrade(url)
    await Tortoise.init(config=tortoise_config(url))
    try:
        await model_configs.ensure_builtin()
        echo = await model_configs.get_default()
        other = await ModelConfig.create(
            provider="openai",
            model_name="gpt-ünï",
            parameters={"temperature": 0.25, "nested": {"b": [1, 2.5, None, True]}, "z": "日本"},
            base_url="https://example.test/v1",
            api_key_env="OPENAI_API_KEY",
            version=3,
        )
        admin = await User.create(name="root 🛡", role=Role.ADMIN, created_at=ROUND)
        alice = await User.create(name="alice", issuer="https://idp.test", subject="sub|1")
        gone = await User.create(name="gone", disabled_at=datetime.now(UTC))
        for number, user in enumerate((admin, alice, gone)):
            await ApiKey.create(
                user=user,
                key_digest=f"{number:064d}",
                prefix=f"cgw_{number}",
                label="laptop" if number else "",
                last_used_at=ROUND if number == 1 else None,
                revoked_at=datetime.now(UTC) if number == 2 else None,
            )
        for owner, config in ((alice, echo), (admin, other)):
            session = await ChatSession.create(
                user=owner,
                model_config=config,
                turn_token="t" * 36 if owner is admin else None,
                turn_expires_at=datetime.now(UTC) + timedelta(seconds=30),
            )
            for seq in range(1, 41, 2):
                question = await Message.create(
                    session=session,
                    seq=seq,
                    type=MessageType.USER,
                    content=f"{UNICODE} {seq}",
                    metadata={"client": "tést", "tags": ["a", "ü"], "n": seq, "deep": [{"x": []}]},
                    client_message_id=f"c{seq}",
                    request_digest="d" * 64,
                )
                await Message.create(
                    session=session,
                    seq=seq + 1,
                    type=MessageType.AI,
                    content=f"Echo: {UNICODE}",
                    metadata=Json("just a JSON string") if seq % 3 else None,
                    reply_to=question,
                )
            session.last_seq = 40
            await session.save()
        # What the conversation features add: a replaced reply (a variant, no seq), a
        # titled, archived fork, a rating, usage (one failed reply), a config's version.
        question = await Message.get(session=session, seq=39)
        variant = await Message.create(
            session=session,
            seq=None,
            type=MessageType.AI,
            content=f"An earlier answer {UNICODE}",
            metadata={"finish_reason": "stop"},
            reply_to=question,
            client_message_id="regen-1",
            request_digest="e" * 64,
        )
        session.title = f"Tïtle {UNICODE}"[:200]
        session.archived = True
        session.forked_from_id = variant.id
        session.fork_key = "fork-1"
        session.fork_digest = "f" * 64
        await session.save()
        await MessageFeedback.create(message=variant, user=admin, rating=Rating.DOWN, note=UNICODE)
        for failed in (False, True):
            await UsageRecord.create(
                created_at=ROUND,
                user_id=admin.id,
                model_config_id=other.id,
                session_id=session.id,
                message_id=None if failed else variant.id,
                failed=failed,
                prompt_tokens=0 if failed else 12,
                completion_tokens=0 if failed else 34,
                latency_ms=None if failed else 56.5,
            )
        await ModelConfigVersion.create(
            config=other,
            version=3,
            actor_id=str(admin.id),
            changed_fields=["model_name", "parameters"],
            snapshot={"model_name": "gpt-ünï", "parameters": {"temperature": 0.25}},
        )
        await LogEntry.bulk_create(
            [
                LogEntry(
                    level=(LogLevel.INFO, LogLevel.WARNING, LogLevel.ERROR)[number % 3],
                    event="test.event",
                    message=f"entry {number} {UNICODE}",
                    actor_id=str(alice.id) if number % 2 else None,
                    details={"number": number, "ünï": [number, "x"]} if number % 5 else None,
                    created_at=ROUND + timedelta(microseconds=number),
                )
                for number in range(logs)
            ]
        )
        # Ephemeral: not copied.
        await RateWindow.create(key="rpm:x:1", hits=3, expires_at=datetime.now(UTC))
    finally:
        await Tortoise.close_connections()


if __name__ == "__main__":
    asyncio.run(populate(sys.argv[1], int(sys.argv[2])))
