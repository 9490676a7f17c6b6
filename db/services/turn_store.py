"""The writes of a turn, each in as few round trips as its database allows.

On PostgreSQL every step is ONE statement (data-modifying CTEs, RETURNING): taking the
session's lease also checks that the caller may use the session and reads its model
config; storing the question advances the session's sequence and announces the message;
storing the reply advances the sequence, gives the lease back, drops the reply's buffer,
writes the log entry and announces the reply. An announcement made by the statement
itself (`pg_notify`, when the event broker listens on PostgreSQL) is delivered when it
commits, like the write. On SQLite, in-process, a round trip is a function call: the
same steps are ORM statements in a transaction, and announcements follow them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from db.errors import NotFound
from db.events import session_topic
from db.fields import Json
from db.identity import Caller
from db.models import (
    ChatSession,
    LogEntry,
    LogLevel,
    Message,
    MessageType,
    ModelConfig,
    ReplyStream,
)
from db.ports import EventBroker, ModelSpec, Runtime
from db.services.ids import is_uuid
from db.services.model_configs import spec_of
from db.services.text import storable

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Asking:
    """The question a turn's first attempt stores as it takes the lease (PostgreSQL)."""

    content: str
    metadata: Any
    client_message_id: str | None
    request_digest: str
    history_messages: int  # the server's message budget, where the config sets none


@dataclass(frozen=True, slots=True)
class Asked:
    """What the statement that took the lease did with the question."""

    question: Message | None  # None: its retry key is in use (a retry)
    # The messages before it, newest first, as (type, content); None: read them.
    earlier: list[tuple[str, str]] | None


@dataclass(frozen=True, slots=True)
class Taken:
    """A session whose turn lease this turn holds, its model config as it is now, and
    (when the same statement stored it) the question."""

    session: ChatSession
    spec: ModelSpec
    asked: Asked | None = None


@dataclass(frozen=True, slots=True)
class LogLine:
    """The log entry a stored reply writes with it."""

    event: str
    message: str
    actor_id: str | None
    details: Mapping[str, Any]


def _postgres() -> bool:
    return bool(connections.get("default").capabilities.dialect == "postgres")


# -- taking the session --------------------------------------------------------------------


async def take(
    runtime: Runtime,
    *,
    session_id: str,
    caller: Caller,
    owner_id: str | None,
    token: str,
    expires_at: datetime,
    asking: Asking | None = None,
) -> Taken | None:
    """Take the session's lease if it is free and the caller may use the session (an
    admin any, a user their own; the owner's when `owner_id` names one). None when it
    is busy, or not found for this caller: `sessions.get` tells which.

    With `asking`, PostgreSQL also stores the question and reads the history before it
    in the same statement (`Taken.asked`); SQLite leaves that to `store_question`."""
    if not is_uuid(session_id) or (owner_id is not None and not is_uuid(owner_id)):
        return None
    viewer = None if caller.is_admin else caller.user_id
    if _postgres():
        if asking is not None:
            try:
                return await _take_and_ask(
                    runtime.events, session_id, viewer, owner_id, token, expires_at, asking
                )
            except IntegrityError:
                # Its retry key was stored after the statement's snapshot was taken (it
                # waited for the session's row): take the lease alone, and the question
                # is found to be a retry once the lease is held.
                pass
        return await _take_in_one_statement(session_id, viewer, owner_id, token, expires_at)
    free = Q(turn_token__isnull=True) | Q(turn_expires_at__lt=datetime.now(UTC))
    query = ChatSession.filter(free, id=session_id)
    for owner in (viewer, owner_id):
        if owner is not None:
            query = query.filter(user_id=owner)
    if not await query.update(turn_token=token, turn_expires_at=expires_at):
        return None
    return await read_taken(session_id)


async def read_taken(session_id: str) -> Taken:
    """The session (its lease already this turn's) and its model config."""
    session = await ChatSession.get(id=session_id)
    return Taken(session=session, spec=spec_of(await ModelConfig.get(id=session.model_config_id)))


_SESSION_COLUMNS = (
    "id",
    "user_id",
    "model_config_id",
    "created_at",
    "updated_at",
    "last_seq",
    "turn_token",
    "turn_expires_at",
)
_TAKE = f"""
UPDATE chat_sessions AS s SET turn_token = $1, turn_expires_at = $2
FROM model_configs AS c
WHERE s.id = $3 AND c.id = s.model_config_id
  AND (s.turn_token IS NULL OR s.turn_expires_at < $6)
  AND ($4::uuid IS NULL OR s.user_id = $4::uuid)
  AND ($5::uuid IS NULL OR s.user_id = $5::uuid)
RETURNING {", ".join(f"s.{name}" for name in _SESSION_COLUMNS)},
  c.version AS c_version, c.provider AS c_provider, c.model_name AS c_model_name,
  c.model_version AS c_model_version, c.parameters AS c_parameters,
  c.base_url AS c_base_url, c.api_key_env AS c_api_key_env
"""


async def _take_in_one_statement(
    session_id: str, viewer: str | None, owner_id: str | None, token: str, expires_at: datetime
) -> Taken | None:
    # execute_query_dict: Tortoise's execute_query returns no rows for an UPDATE.
    rows = await connections.get("default").execute_query_dict(
        # The app's clock, like every other lease expiry it writes and compares.
        _TAKE,
        [token, expires_at, session_id, viewer, owner_id, datetime.now(UTC)],
    )
    if not rows:
        return None
    session, spec = _taken_row(rows[0])
    return Taken(session=session, spec=spec)


def _taken_row(row: Mapping[str, Any]) -> tuple[ChatSession, ModelSpec]:
    session = ChatSession._init_from_db(**{name: row[name] for name in _SESSION_COLUMNS})
    spec = ModelSpec(
        config_id=str(row["model_config_id"]),
        version=row["c_version"],
        provider=row["c_provider"],
        model_name=row["c_model_name"],
        model_version=row["c_model_version"],
        parameters=orjson.loads(row["c_parameters"] or "{}"),
        base_url=row["c_base_url"],
        api_key_env=row["c_api_key_env"],
    )
    return session, spec


# The first attempt of a turn on PostgreSQL: _TAKE, plus the question stored with the
# session's next sequence number (unless its retry key is in use: then the lease alone)
# and the messages before it, up to the config's history budget, newest first.
_TAKE_AND_ASK = f"""
WITH t AS (
  UPDATE chat_sessions AS s SET turn_token = $1, turn_expires_at = $2,
    last_seq = s.last_seq + CASE WHEN k.used THEN 0 ELSE 1 END,
    updated_at = CASE WHEN k.used THEN s.updated_at ELSE $6 END
  FROM model_configs AS c, (
    SELECT $10::text IS NOT NULL AND EXISTS (
      SELECT 1 FROM messages WHERE session_id = $3 AND client_message_id = $10::text
    ) AS used
  ) AS k
  WHERE s.id = $3 AND c.id = s.model_config_id
    AND (s.turn_token IS NULL OR s.turn_expires_at < $6)
    AND ($4::uuid IS NULL OR s.user_id = $4::uuid)
    AND ($5::uuid IS NULL OR s.user_id = $5::uuid)
  RETURNING {", ".join(f"s.{name}" for name in _SESSION_COLUMNS)},
    c.version AS c_version, c.provider AS c_provider, c.model_name AS c_model_name,
    c.model_version AS c_model_version, c.parameters AS c_parameters,
    c.base_url AS c_base_url, c.api_key_env AS c_api_key_env, k.used AS key_used,
    CASE WHEN k.used THEN 0 ELSE COALESCE(
      NULLIF((c.parameters->>'max_history_messages')::numeric::bigint, 0), $12
    ) - 1 END AS earlier_limit
), m AS (
  INSERT INTO messages ({", ".join(Message.COLUMNS)})
  SELECT $7, t.id, t.last_seq, 'user', $8, $9::jsonb, $6, $10, $11, NULL FROM t
  WHERE NOT t.key_used
  RETURNING *
)
SELECT t.*, {", ".join(f"m.{name} AS m_{name}" for name in Message.COLUMNS)},
  (SELECT json_agg(json_build_array(e.seq, e.type, e.content))::text FROM (
    SELECT seq, type, content FROM messages WHERE session_id = $3
    ORDER BY seq DESC LIMIT (SELECT earlier_limit FROM t)
  ) AS e) AS earlier{{notify}}
FROM t LEFT JOIN m ON true
"""


async def _take_and_ask(
    events: EventBroker,
    session_id: str,
    viewer: str | None,
    owner_id: str | None,
    token: str,
    expires_at: datetime,
    asking: Asking,
) -> Taken | None:
    now = datetime.now(UTC)
    metadata = asking.metadata
    values: list[Any] = [
        token,
        expires_at,
        session_id,
        viewer,
        owner_id,
        now,
        uuid.uuid4(),
        asking.content,
        None if metadata is None else orjson.dumps(metadata).decode(),
        asking.client_message_id,
        asking.request_digest,
        asking.history_messages,
    ]
    notify = ""
    channel = events.sql_channel()
    if channel is not None:
        values += [channel, session_topic(session_id)]
        notify = f", (SELECT {_notify_call('$13', '$14')} FROM m) AS notified"
    rows = await connections.get("default").execute_query_dict(
        _TAKE_AND_ASK.replace("{notify}", notify), values
    )
    if not rows:
        return None
    row = rows[0]
    session, spec = _taken_row(row)
    if row["key_used"]:
        return Taken(session=session, spec=spec, asked=Asked(question=None, earlier=None))
    question = Message.from_row({name: row[f"m_{name}"] for name in Message.COLUMNS})
    if channel is None:
        await _announce(events, question)
    rows_before = orjson.loads(row["earlier"] or "[]")  # [seq, type, content], newest first
    earlier: list[tuple[str, str]] | None = [(kind, text) for _, kind, text in rows_before]
    newest = rows_before[0][0] if rows_before else None
    if row["earlier_limit"] > 0 and question.seq > 1 and newest != question.seq - 1:
        # The statement waited for the session's row: its snapshot may predate the
        # messages the turn it waited for stored. Read them once the lease is held.
        earlier = None
    return Taken(session=session, spec=spec, asked=Asked(question=question, earlier=earlier))


# -- storing messages ------------------------------------------------------------------------


async def store_question(
    runtime: Runtime,
    *,
    session_id: str,
    content: str,
    metadata: Any,
    client_message_id: str | None,
    request_digest: str,
) -> Message | None:
    """Store the user message with the session's next sequence number and announce it.
    None, storing nothing, when `client_message_id` is already used in the session."""
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "session_id": session_id,
        "type": MessageType.USER,
        "content": content,
        "metadata": metadata,
        "created_at": datetime.now(UTC),
        "client_message_id": client_message_id,
        "request_digest": request_digest,
        "reply_to_id": None,
    }
    if _postgres():
        return await _append_in_one_statement(runtime.events, fields, unused_key=True)
    # Checked before the transaction, which must start with its write: a SQLite reader
    # cannot become a writer once another process has committed. The lease keeps any
    # other turn of the session from storing the key meanwhile.
    if client_message_id is not None and await Message.exists(
        session_id=session_id, client_message_id=client_message_id
    ):
        return None
    async with in_transaction():
        message = await _append(fields)
    await _announce(runtime.events, message)
    return message


async def store_reply(
    runtime: Runtime,
    *,
    session_id: str,
    reply_id: uuid.UUID,
    question: Message,
    content: str,
    metadata: dict[str, Any],
    lease: str,
    buffered: bool,
    log: LogLine | None,
) -> Message:
    """Store the reply with the session's next sequence number; in the same write give
    the lease `lease` back (if still this turn's), drop the reply's buffer (`buffered`:
    it was streamed through one) and write
    `log` (so a log entry that cannot be written fails the reply with it: its text is
    made storable first, and its details are plain JSON); then announce it."""
    fields: dict[str, Any] = {
        "id": reply_id,
        "session_id": session_id,
        "type": MessageType.AI,
        "content": content,
        "metadata": metadata,
        "created_at": datetime.now(UTC),
        "client_message_id": None,
        "request_digest": None,
        "reply_to_id": question.id,
    }
    if _postgres():
        message = await _append_in_one_statement(
            runtime.events, fields, lease=lease, buffered=buffered, log=log
        )
        if message is None:
            raise NotFound("session not found")  # the session is gone
        return message
    async with in_transaction():
        message = await _append(fields)
        await ChatSession.filter(id=session_id, turn_token=lease).update(
            turn_token=None, turn_expires_at=None
        )
        if buffered:
            await ReplyStream.filter(id=reply_id).delete()
        if log is not None:
            await LogEntry.create(
                level=LogLevel.INFO,
                event=log.event,
                message=storable(log.message),
                actor_id=log.actor_id,
                details=Json(storable(dict(log.details))),
            )
    await _announce(runtime.events, message)
    return message


async def _append(fields: dict[str, Any]) -> Message:
    """ORM: the next sequence number, then the message (inside the caller's transaction)."""
    session_id = fields["session_id"]
    # The UPDATE takes the row lock, so numbering is exact across processes.
    await ChatSession.filter(id=session_id).update(
        last_seq=F("last_seq") + 1, updated_at=fields["created_at"]
    )
    seq = await ChatSession.filter(id=session_id).first().values_list("last_seq", flat=True)
    values = dict(fields, metadata=Json(fields["metadata"]))
    return await Message.create(seq=seq, **values)


async def _announce(events: EventBroker, message: Message) -> None:
    try:
        await events.publish(session_topic(str(message.session_id)), _added(message))
    except Exception as exc:
        # The message is stored: failing the request now would make the client retry
        # what succeeded. Subscribers read by sequence number, so they get this message
        # with the session's next event (or when they subscribe again).
        logger.warning("could not announce message %s: %s", message.id, exc)


def _added(message: Message) -> dict[str, Any]:
    return {
        "kind": "message_added",
        "session_id": str(message.session_id),
        "message_id": str(message.id),
        "seq": message.seq,
    }


def _notify_call(channel: str, topic: str) -> str:
    """SQL announcing the message `m` on `channel` (parameter markers), as `_added` does."""
    event = (
        "json_build_object('kind', 'message_added', 'session_id', m.session_id,"
        " 'message_id', m.id, 'seq', m.seq)"
    )
    return (
        f"pg_notify({channel}, json_build_object('topic', {topic}::text, 'event', {event})::text)"
    )


async def _append_in_one_statement(
    events: EventBroker,
    fields: dict[str, Any],
    *,
    unused_key: bool = False,
    lease: str | None = None,
    buffered: bool = False,
    log: LogLine | None = None,
) -> Message | None:
    """PostgreSQL: the sequence advanced and the message inserted by one statement, with
    what else the caller asks for; None if nothing was stored (the retry key is in use,
    or the session is gone)."""
    values: list[Any] = [
        fields["session_id"],
        fields["created_at"],
        fields["id"],
        str(fields["type"]),
        fields["content"],
        None if fields["metadata"] is None else orjson.dumps(fields["metadata"]).decode(),
        fields["client_message_id"],
        fields["request_digest"],
        fields["reply_to_id"],
    ]

    def parameter(value: Any) -> str:
        values.append(value)
        return f"${len(values)}"

    condition = ""
    if unused_key:
        condition = (
            " AND NOT EXISTS (SELECT 1 FROM messages WHERE session_id = $1"
            " AND client_message_id = $7)"
        )
    lease_sets = ""
    if lease is not None:
        token = parameter(lease)
        lease_sets = (
            f", turn_token = CASE WHEN turn_token = {token} THEN NULL ELSE turn_token END"
            f", turn_expires_at = CASE WHEN turn_token = {token} THEN NULL"
            " ELSE turn_expires_at END"
        )
    extra = ""
    if buffered:
        extra += ", dropped AS (DELETE FROM reply_streams WHERE id = $3)"
    if log is not None:
        extra += (
            ", logged AS (INSERT INTO logs (level, event, message, actor_id, details,"
            f" created_at) SELECT 'info', {parameter(log.event)},"
            f" {parameter(storable(log.message))}, {parameter(log.actor_id)},"
            f" {parameter(orjson.dumps(storable(dict(log.details))).decode())}::jsonb, $2"
            " FROM m)"
        )
    notify = ""
    channel = events.sql_channel()
    if channel is not None:
        topic = parameter(session_topic(str(fields["session_id"])))
        notify = f", {_notify_call(parameter(channel), topic)}"
    statement = f"""
WITH s AS (
  UPDATE chat_sessions SET last_seq = last_seq + 1, updated_at = $2{lease_sets}
  WHERE id = $1{condition}
  RETURNING last_seq
), m AS (
  INSERT INTO messages ({", ".join(Message.COLUMNS)})
  SELECT $3, $1, s.last_seq, $4, $5, $6::jsonb, $2, $7, $8, $9 FROM s
  RETURNING *
){extra}
SELECT m.*{notify} FROM m
"""
    rows = await connections.get("default").execute_query_dict(statement, values)
    if not rows:
        return None
    message = Message.from_row(rows[0])
    if channel is None:
        await _announce(events, message)
    return message
