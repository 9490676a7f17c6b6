"""Forks: a new session from a point of another, to branch or to edit a user message.

`fork` finds the message the caller forks at (any session they may see), works out
where it stands in its history (a replaced reply stands where the current one does),
then creates the caller's session and copies the history before that point in one
write, a bounded number of statements whatever the length (the copies get new ids and
their reply links follow them). Branching keeps the message itself too; editing sends
the new content as the fork's next user message, through an ordinary turn. A retry key
finds the fork again, so a retry creates nothing twice and, when the model failed the
first time, asks again.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from tortoise import connections
from tortoise.transactions import in_transaction

from db.errors import Invalid, NotFound
from db.identity import Caller
from db.models import ChatSession, LogLevel, Message, MessageType
from db.ports import Runtime
from db.services import logs, messages, titles, turns


@dataclass(frozen=True, slots=True)
class ForkRequest:
    """Fork at `message_id`; with `content`, that replaces the (user) message."""

    message_id: str
    content: Any = None
    client_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class ForkResult:
    session: ChatSession
    user_message: Message | None  # the edited message and its reply, when content was given
    ai_message: Message | None


async def fork(*, runtime: Runtime, caller: Caller, request: ForkRequest) -> ForkResult:
    """Create the caller's fork at the message and, for an edit, answer the new content."""
    editing = request.content is not None
    content = (
        turns.checked_content(request.content, runtime.limits.max_message_chars)
        if editing
        else None
    )
    key = turns.checked_key(request.client_message_id)
    source = await messages.get(caller=caller, message_id=request.message_id)
    if editing and source.type != MessageType.USER:
        raise Invalid("only a user message can be edited", field="message_id")
    digest = hashlib.sha256(orjson.dumps([str(source.id), content])).hexdigest()
    session = await _existing(caller, key, digest)
    if session is None:
        session = await _create(caller, source, keep_source=not editing, key=key, digest=digest)
    if content is None:
        return ForkResult(session=session, user_message=None, ai_message=None)
    result = await turns.send(
        runtime=runtime,
        caller=caller,
        request=turns.SendRequest(
            session_id=str(session.id), content=content, client_message_id=key
        ),
    )
    session = await ChatSession.get(id=session.id)  # its title, sequence and time moved
    return ForkResult(
        session=session, user_message=result.user_message, ai_message=result.ai_message
    )


async def _existing(caller: Caller, key: str | None, digest: str) -> ChatSession | None:
    """The fork a request with retry key `key` made before, if one did."""
    if key is None:
        return None
    found = await ChatSession.get_or_none(user_id=caller.user_id, fork_key=key)
    if found is not None and found.fork_digest != digest:
        raise Invalid("was already used for a different fork", field="client_message_id")
    return found


async def _position(source: Message) -> int:
    """Where the message stands in its session's history: its number, or, for a
    replaced reply (a variant), the number of the reply to its question now."""
    if source.seq is not None:
        return source.seq
    question = (
        await Message.get_or_none(id=source.reply_to_id) if source.reply_to_id is not None else None
    )
    if question is None or question.seq is None:
        raise NotFound("message not found")  # its question is gone
    return question.seq + 1


async def _create(
    caller: Caller, source: Message, *, keep_source: bool, key: str | None, digest: str
) -> ChatSession:
    position = await _position(source)
    copied = position - 1 + (1 if keep_source else 0)
    first = source if position == 1 and keep_source else None
    if first is None and position > 1:
        first = await Message.get_or_none(session_id=source.session_id, seq=1)
    title = (
        titles.generated(first.content)
        if first is not None and first.type == MessageType.USER
        else None
    )
    new_id = uuid.uuid4()
    values: list[Any] = [
        new_id,
        caller.user_id,
        datetime.now(UTC),
        copied,
        title,
        source.id,
        key,
        digest,
        source.session_id,
        position,
        source.id if keep_source else None,
    ]
    if connections.get("default").capabilities.dialect == "postgres":
        rows = await connections.get("default").execute_query_dict(_FORK_POSTGRES, values)
        made = rows[0]["session_id"] is not None
    else:
        made = await _fork_sqlite(values)
    if not made:
        # A retry with the same key made it meanwhile.
        found = await _existing(caller, key, digest)
        if found is None:
            raise NotFound("session not found")
        return found
    session = await ChatSession.get(id=new_id)
    await logs.record(
        level=LogLevel.INFO,
        event="session.forked",
        message=f"session forked by {caller.name} at message {source.id}",
        actor_id=caller.user_id,
        details={
            "session_id": str(new_id),
            "source_session_id": str(source.session_id),
            "message_id": str(source.id),
            "messages_copied": copied,
        },
    )
    return session


# The fork and its copy of the history, in one statement. `o` numbers each copy (a
# replaced reply kept takes the place it forks at) and gives it a new id once
# (MATERIALIZED), so the reply links can follow their questions' new ids.
_SESSION_COLUMNS = (
    "id, user_id, model_config_id, created_at, updated_at, last_seq, title, archived,"
    " forked_from_id, fork_key, fork_digest"
)
_COPY_COLUMNS = (
    "id, session_id, seq, type, content, metadata, created_at, client_message_id,"
    " request_digest, reply_to_id"
)
_FORK_POSTGRES = f"""
WITH s AS (
  INSERT INTO chat_sessions ({_SESSION_COLUMNS})
  SELECT $1, $2, src.model_config_id, $3, $3, $4, $5, false, $6, $7, $8
  FROM chat_sessions AS src WHERE src.id = $9
  ON CONFLICT (user_id, fork_key) DO NOTHING
  RETURNING id
), o AS MATERIALIZED (
  SELECT id, COALESCE(seq, $10) AS seq, type, content, metadata, created_at, reply_to_id,
    gen_random_uuid() AS new_id
  FROM messages WHERE session_id = $9 AND (seq < $10 OR id = $11::uuid)
), m AS (
  INSERT INTO messages ({_COPY_COLUMNS})
  SELECT o.new_id, s.id, o.seq, o.type, o.content, o.metadata, o.created_at, NULL, NULL,
    q.new_id
  FROM o CROSS JOIN s LEFT JOIN o AS q ON q.id = o.reply_to_id
  RETURNING 1
)
SELECT (SELECT id FROM s) AS session_id, (SELECT count(*) FROM m) AS copied
"""
# SQLite has no data-modifying CTEs: the same in two statements of one transaction, with
# a version 4 UUID made from random bytes.
_SQLITE_UUID = (
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||"
    " substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) ||"
    " substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
)
_FORK_SQLITE_SESSION = f"""
INSERT INTO chat_sessions ({_SESSION_COLUMNS})
SELECT ?1, ?2, src.model_config_id, ?3, ?3, ?4, ?5, 0, ?6, ?7, ?8
FROM chat_sessions AS src WHERE src.id = ?9
ON CONFLICT (user_id, fork_key) DO NOTHING
RETURNING id
"""
_FORK_SQLITE_MESSAGES = f"""
WITH o AS MATERIALIZED (
  SELECT id, COALESCE(seq, ?2) AS seq, type, content, metadata, created_at, reply_to_id,
    {_SQLITE_UUID} AS new_id
  FROM messages WHERE session_id = ?1 AND (seq < ?2 OR id = ?3)
)
INSERT INTO messages ({_COPY_COLUMNS})
SELECT o.new_id, ?4, o.seq, o.type, o.content, o.metadata, o.created_at, NULL, NULL, q.new_id
FROM o LEFT JOIN o AS q ON q.id = o.reply_to_id
"""


async def _fork_sqlite(values: list[Any]) -> bool:
    new_id, source_session, position, kept = values[0], values[8], values[9], values[10]
    as_text = [str(v) if isinstance(v, uuid.UUID) else v for v in values[:9]]
    async with in_transaction() as connection:
        rows = await connection.execute_query_dict(_FORK_SQLITE_SESSION, as_text)
        if not rows:
            return False
        await connection.execute_query(
            _FORK_SQLITE_MESSAGES,
            [str(source_session), position, None if kept is None else str(kept), str(new_id)],
        )
    return True
