"""Appending to a session's history: the one place messages are written."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from db.events import session_topic
from db.fields import Json
from db.models import ChatSession, Message
from db.ports import Runtime

logger = logging.getLogger(__name__)


async def append(runtime: Runtime, session: ChatSession, **fields: Any) -> Message:
    """Append a message with the next sequence number, then announce it."""
    async with in_transaction():
        # The UPDATE takes the row lock on PostgreSQL, so numbering is exact across processes.
        await ChatSession.filter(id=session.id).update(
            last_seq=F("last_seq") + 1, updated_at=datetime.now(UTC)
        )
        seq = await ChatSession.filter(id=session.id).first().values_list("last_seq", flat=True)
        fields["metadata"] = Json(fields.get("metadata"))
        message = await Message.create(session_id=session.id, seq=seq, **fields)
    event = {
        "kind": "message_added",
        "session_id": str(session.id),
        "message_id": str(message.id),
        "seq": seq,
    }
    try:
        await runtime.events.publish(session_topic(str(session.id)), event)
    except Exception as exc:
        # The message is stored: failing the request now would make the client retry
        # what succeeded. Subscribers read by sequence number, so they get this message
        # with the session's next event (or when they subscribe again).
        logger.warning("could not announce message %s: %s", message.id, exc)
    return message
