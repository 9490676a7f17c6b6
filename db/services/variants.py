"""Variants of a reply: every reply to the same user message (at most one of them is in
the history, the others were replaced by regenerating)."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise import connections

from db.identity import Caller
from db.models import Message
from db.services import sessions
from db.services.ids import is_uuid
from db.sql import markers

# For each AI message asked about, every AI message answering the same user message (itself
# included), oldest first. `v.id = m.id` keeps a reply whose question is gone (reply_to_id
# set to NULL) as its own only variant. One statement for any number of messages.
_VARIANTS = """
SELECT m.id AS variant_of, v.*
FROM messages AS m
JOIN chat_sessions AS s ON s.id = m.session_id
JOIN messages AS v ON v.type = 'ai' AND (v.reply_to_id = m.reply_to_id OR v.id = m.id)
WHERE m.id IN ({ids}) AND m.type = 'ai' AND {visible}
ORDER BY v.created_at, v.id
"""


async def variants_of(*, caller: Caller, message_ids: Sequence[str]) -> dict[str, list[Message]]:
    """For each of `message_ids`: an AI message's variants, oldest first (created_at, id),
    itself included; [] for a user message, or one the caller may not see."""
    found: dict[str, list[Message]] = {m: [] for m in message_ids}
    wanted = sorted({m for m in message_ids if is_uuid(m)})
    if not wanted:
        return found
    marks = markers(len(wanted) + 2)
    viewer, admin, ids = marks[0], marks[1], marks[2:]
    sql = _VARIANTS.format(
        ids=", ".join(ids), visible=sessions.visible_sql("s", viewer=viewer, admin=admin)
    )
    values = [caller.user_id, caller.is_admin, *wanted]
    for row in await connections.get("default").execute_query_dict(sql, values):
        found[str(row["variant_of"])].append(Message.from_row(row))
    return found
