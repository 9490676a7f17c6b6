"""The writes of a turn, each in as few round trips as its database allows.

On PostgreSQL every step is ONE statement (data-modifying CTEs, RETURNING): taking the
session's lease also checks that the caller may use the session and reads its model
config; storing the question advances the session's sequence and announces the message;
storing the reply advances the sequence, gives the lease back, drops the reply's buffer,
writes the log entry and announces the reply. An announcement made by the statement
itself (`pg_notify`, when the event broker listens on PostgreSQL) is delivered when it
commits, like the write. On SQLite each step is one call on the database's own thread
(`_on_sqlite_thread`): a write transaction of plain statements, read back exactly as the
ORM reads them, and announcements follow it.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from tortoise import connections
from tortoise.exceptions import IntegrityError, OperationalError

from db.errors import NotFound
from db.events import session_topic
from db.identity import Caller
from db.models import Message, MessageType
from db.ports import EventBroker, ModelSpec, Runtime, estimate_tokens_sql
from db.services import titles
from db.services.ids import is_uuid
from db.services.text import storable
from db.sql import markers

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Asking:
    """The question a turn's first attempt stores as it takes the lease."""

    content: str
    metadata: Any
    client_message_id: str | None
    request_digest: str
    history_messages: int  # the server's message budget, where the config sets none
    history_tokens: int  # the same for the token budget


@dataclass(frozen=True, slots=True)
class Asked:
    """What the write that took the lease did with the question."""

    question: Message | None  # None: its retry key is in use (a retry)
    # The messages before it, newest first, as (type, content); None: read them.
    earlier: list[tuple[str, str]] | None


@dataclass(frozen=True, slots=True)
class Taken:
    """The model config, as it is now, of a session whose turn lease this turn holds;
    and the question, when the write that took the lease stored it."""

    spec: ModelSpec
    asked: Asked | None = None


@dataclass(frozen=True, slots=True)
class UsageLine:
    """What a reply used, counted (db/models/usage.py) by the write that stores it."""

    model_config_id: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float | None
    failed: bool = False


@dataclass(frozen=True, slots=True)
class Variant:
    """A regenerated reply: the reply it replaces in the history (None when the question
    had none), and the regenerate request's retry key and digest, stored with it."""

    replacing: Message | None
    client_message_id: str | None
    request_digest: str


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
    asking: Asking,
) -> Taken | None:
    """Take the session's lease if it is free and the caller may use the session (an
    admin any, a user their own; the owner's when `owner_id` names one); the same
    statement (PostgreSQL) or transaction (SQLite) stores the question and reads the
    history before it (`Taken.asked`). None when it is busy, or not found for this
    caller: `sessions.get` tells which."""
    if not is_uuid(session_id) or (owner_id is not None and not is_uuid(owner_id)):
        return None
    viewer = None if caller.is_admin else caller.user_id
    question = _question_values(
        session_id, asking.content, asking.metadata, asking.client_message_id, asking.request_digest
    )
    if _postgres():
        try:
            return await _take_and_ask(
                runtime.events, viewer, owner_id, token, expires_at, question, asking
            )
        except IntegrityError:
            # Its retry key was stored after the statement's snapshot was taken (it
            # waited for the session's row): take the lease alone, and the question is
            # found to be a retry once the lease is held.
            return await _take_in_one_statement(session_id, viewer, owner_id, token, expires_at)
    lease = _SqliteLease(token, expires_at, datetime.now(UTC), viewer, owner_id)
    taken = await _on_sqlite_thread(
        lambda db: _writing(db, lambda: _sqlite_take(db, lease, question, asking))
    )
    if taken is not None and taken.asked is not None and taken.asked.question is not None:
        await _announce(runtime.events, taken.asked.question)
    return taken


async def take_lease(
    *, session_id: str, caller: Caller, owner_id: str | None, token: str, expires_at: datetime
) -> Taken | None:
    """Take the session's lease alone (no question stored), as `take` does otherwise."""
    if not is_uuid(session_id) or (owner_id is not None and not is_uuid(owner_id)):
        return None
    viewer = None if caller.is_admin else caller.user_id
    if _postgres():
        return await _take_in_one_statement(session_id, viewer, owner_id, token, expires_at)
    lease = _SqliteLease(token, expires_at, datetime.now(UTC), viewer, owner_id)
    return await _on_sqlite_thread(
        lambda db: _writing(db, lambda: _sqlite_take_lease(db, lease, session_id))
    )


async def latest_turn(session_id: str) -> tuple[Message, Message | None] | None:
    """The session's latest turn as (user message, its reply in the history or None);
    None when the history holds no user message to answer again."""
    rows = await connections.get("default").execute_query_dict(
        _LATEST_TURN.format(*markers(1)), [session_id]
    )
    found = [Message.from_row(row) for row in rows]
    if not found:
        return None
    last = found[0]
    if last.type == MessageType.USER:
        return last, None
    question = next((m for m in found if str(m.id) == str(last.reply_to_id)), None)
    if question is None and last.reply_to_id is not None:
        question = await Message.get_or_none(id=last.reply_to_id)
    if question is None:
        return None  # a reply whose question is gone: nothing to ask again
    return question, last


# The newest two messages of the history: a reply follows its question at once (turns of
# a session are serialised), so they hold the latest turn.
_LATEST_TURN = f"""
SELECT {Message.columns_of("m")} FROM chat_sessions AS s
JOIN messages AS m ON m.session_id = s.id AND m.seq >= s.last_seq - 1 AND m.seq <= s.last_seq
WHERE s.id = {{0}} ORDER BY m.seq DESC
"""


async def read_taken(session_id: str) -> Taken:
    """The model config of the session (its lease already this turn's)."""
    rows = await connections.get("default").execute_query_dict(
        _READ_TAKEN.format(*markers(1)), [session_id]
    )
    if not rows:
        raise NotFound("session not found")  # the session is gone
    return Taken(spec=_spec_of(rows[0]))


_CONFIG_COLUMNS = """
  c.version AS c_version, c.provider AS c_provider, c.model_name AS c_model_name,
  c.model_version AS c_model_version, c.parameters AS c_parameters,
  c.base_url AS c_base_url, c.api_key_env AS c_api_key_env"""
_READ_TAKEN = f"""
SELECT s.model_config_id, {_CONFIG_COLUMNS}
FROM chat_sessions AS s JOIN model_configs AS c ON c.id = s.model_config_id WHERE s.id = {{0}}
"""
_TAKE = f"""
UPDATE chat_sessions AS s SET turn_token = $1, turn_expires_at = $2
FROM model_configs AS c
WHERE s.id = $3 AND c.id = s.model_config_id
  AND (s.turn_token IS NULL OR s.turn_expires_at < $6)
  AND ($4::uuid IS NULL OR s.user_id = $4::uuid)
  AND ($5::uuid IS NULL OR s.user_id = $5::uuid)
RETURNING s.model_config_id, {_CONFIG_COLUMNS}
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
    return Taken(spec=_spec_of(rows[0]))


def _spec_of(row: Mapping[str, Any]) -> ModelSpec:
    """The model config of a row holding the session's `model_config_id` and c_* columns."""
    return ModelSpec(
        config_id=str(row["model_config_id"]),
        version=row["c_version"],
        provider=row["c_provider"],
        model_name=row["c_model_name"],
        model_version=row["c_model_version"],
        parameters=orjson.loads(row["c_parameters"] or "{}"),
        base_url=row["c_base_url"],
        api_key_env=row["c_api_key_env"],
    )


# The first attempt of a turn on PostgreSQL: _TAKE, plus the question stored with the
# session's next sequence number (unless its retry key is in use: then the lease alone)
# and the messages before it, newest first, up to the config's message budget and, of
# those, the ones within its token budget (the model input takes no more, and long
# messages beyond it are not read); as arrays: one text of them all would be as long as
# the whole history. `newest_seq` counts them all (see `_take_and_ask`).
_TAKE_AND_ASK = f"""
WITH t AS (
  UPDATE chat_sessions AS s SET turn_token = $1, turn_expires_at = $2,
    last_seq = s.last_seq + CASE WHEN k.used THEN 0 ELSE 1 END,
    updated_at = CASE WHEN k.used THEN s.updated_at ELSE $6 END,
    title = CASE WHEN NOT k.used AND s.last_seq = 0 AND s.title IS NULL THEN $14 ELSE s.title END
  FROM model_configs AS c, (
    SELECT $10::text IS NOT NULL AND EXISTS (
      SELECT 1 FROM messages WHERE session_id = $3 AND client_message_id = $10::text
    ) AS used
  ) AS k
  WHERE s.id = $3 AND c.id = s.model_config_id
    AND (s.turn_token IS NULL OR s.turn_expires_at < $6)
    AND ($4::uuid IS NULL OR s.user_id = $4::uuid)
    AND ($5::uuid IS NULL OR s.user_id = $5::uuid)
  RETURNING s.id, s.last_seq, s.model_config_id, {_CONFIG_COLUMNS}, k.used AS key_used,
    CASE WHEN k.used THEN 0 ELSE COALESCE(
      NULLIF((c.parameters->>'max_history_messages')::numeric::bigint, 0), $12
    ) - 1 END AS earlier_limit,
    COALESCE(
      NULLIF((c.parameters->>'max_history_tokens')::numeric::bigint, 0), $13
    ) AS token_limit
), m AS (
  INSERT INTO messages ({", ".join(Message.COLUMNS)})
  SELECT $7, t.id, t.last_seq, 'user', $8, $9::jsonb, $6, $10, $11, NULL FROM t
  WHERE NOT t.key_used
  RETURNING *
)
SELECT t.*, {", ".join(f"m.{name} AS m_{name}" for name in Message.COLUMNS)},
  h.newest_seq, h.types, h.contents{{notify}}
FROM t LEFT JOIN m ON true LEFT JOIN LATERAL (
  SELECT max(e.seq) AS newest_seq,
    array_agg(e.type ORDER BY e.seq DESC) FILTER (WHERE e.running <= t.token_limit) AS types,
    array_agg(e.content ORDER BY e.seq DESC) FILTER (WHERE e.running <= t.token_limit)
      AS contents
  FROM (
    SELECT seq, type, content,
      sum({estimate_tokens_sql("content")}) OVER (ORDER BY seq DESC) AS running
    FROM (
      SELECT seq, type, content FROM messages WHERE session_id = $3 AND seq IS NOT NULL
      ORDER BY seq DESC LIMIT t.earlier_limit
    ) AS recent
  ) AS e
) AS h ON true
"""


async def _take_and_ask(
    events: EventBroker,
    viewer: str | None,
    owner_id: str | None,
    token: str,
    expires_at: datetime,
    question: dict[str, Any],
    asking: Asking,
) -> Taken | None:
    session_id, metadata = question["session_id"], question["metadata"]
    values: list[Any] = [
        token,
        expires_at,
        session_id,
        viewer,
        owner_id,
        # The app's clock, like every other lease expiry it writes and compares.
        question["created_at"],
        question["id"],
        question["content"],
        None if metadata is None else orjson.dumps(metadata).decode(),
        question["client_message_id"],
        question["request_digest"],
        asking.history_messages,
        asking.history_tokens,
        titles.generated(question["content"]),
    ]
    notify = ""
    channel = events.sql_channel()
    if channel is not None:
        values += [channel, session_topic(session_id)]
        notify = f", (SELECT {_notify_call('$15', '$16')} FROM m) AS notified"
    rows = await connections.get("default").execute_query_dict(
        _TAKE_AND_ASK.replace("{notify}", notify), values
    )
    if not rows:
        return None
    row = rows[0]
    spec = _spec_of(row)
    if row["key_used"]:
        return Taken(spec=spec, asked=Asked(question=None, earlier=None))
    stored = Message.from_row({name: row[f"m_{name}"] for name in Message.COLUMNS})
    if channel is None:
        await _announce(events, stored)
    earlier: list[tuple[str, str]] | None = list(
        zip(row["types"] or (), row["contents"] or (), strict=True)
    )
    if (
        row["earlier_limit"] > 0
        and stored.position > 1
        and row["newest_seq"] != stored.position - 1
    ):
        # The statement waited for the session's row: its snapshot may predate the
        # messages the turn it waited for stored. Read them once the lease is held.
        earlier = None
    return Taken(spec=spec, asked=Asked(question=stored, earlier=earlier))


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
    None, storing nothing, when `client_message_id` is already used in the session (or
    the session is gone)."""
    fields = _question_values(session_id, content, metadata, client_message_id, request_digest)
    if _postgres():
        return await _append_in_one_statement(runtime.events, fields, unused_key=True)
    message = await _on_sqlite_thread(
        lambda db: _writing(db, lambda: _sqlite_append(db, fields, unused_key=True))
    )
    if message is not None:
        await _announce(runtime.events, message)
    return message


def _question_values(
    session_id: str,
    content: str,
    metadata: Any,
    client_message_id: str | None,
    request_digest: str,
) -> dict[str, Any]:
    return {
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


def _title_of(fields: dict[str, Any]) -> str | None:
    """The title a user message gives its session if it is the first one (`generated`)."""
    return titles.generated(fields["content"]) if fields["type"] == MessageType.USER else None


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
    usage: UsageLine | None = None,
    variant: Variant | None = None,
) -> Message:
    """Store the reply with the session's next sequence number (a `variant` takes the
    place of the reply it replaces instead); in the same write give
    the lease `lease` back (if still this turn's), drop the reply's buffer (`buffered`:
    it was streamed through one), count its `usage` and write
    `log` (so a log entry that cannot be written fails the reply with it: its text is
    made storable first, and its details are plain JSON); then announce it."""
    fields: dict[str, Any] = {
        "id": reply_id,
        "session_id": session_id,
        "type": MessageType.AI,
        "content": content,
        "metadata": metadata,
        "created_at": datetime.now(UTC),
        "client_message_id": variant.client_message_id if variant is not None else None,
        "request_digest": variant.request_digest if variant is not None else None,
        "reply_to_id": question.id,
    }
    replacing = variant.replacing if variant is not None else None
    if _postgres():
        message = await _append_in_one_statement(
            runtime.events,
            fields,
            lease=lease,
            buffered=buffered,
            log=log,
            usage=usage,
            replacing=replacing,
        )
        if message is None:
            raise NotFound("session not found")  # the session is gone
        return message
    stored = await _on_sqlite_thread(
        lambda db: _writing(
            db,
            lambda: _sqlite_append(
                db,
                fields,
                lease=lease,
                buffered=buffered,
                log=log,
                usage=usage,
                replacing=replacing,
            ),
        )
    )
    if stored is None:
        raise NotFound("session not found")  # the session is gone
    await _announce(runtime.events, stored, replaces=replacing is not None)
    return stored


_INSERT_USAGE = (
    "INSERT INTO usage_records (created_at, user_id, model_config_id, session_id, message_id,"
    " failed, prompt_tokens, completion_tokens, latency_ms)"
)


async def record_failed_reply(*, session_id: str, usage: UsageLine) -> None:
    """Count a reply that failed (nothing stored) as the session owner's usage."""
    values = [
        datetime.now(UTC),
        usage.model_config_id,
        session_id,
        True,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.latency_ms,
    ]
    marks = markers(len(values))
    await connections.get("default").execute_query(
        f"{_INSERT_USAGE} SELECT {marks[0]}, user_id, {marks[1]}, id, NULL, {marks[3]},"
        f" {marks[4]}, {marks[5]}, {marks[6]} FROM chat_sessions WHERE id = {marks[2]}",
        values,
    )


async def _announce(events: EventBroker, message: Message, *, replaces: bool = False) -> None:
    try:
        await events.publish(session_topic(str(message.session_id)), _added(message, replaces))
    except Exception as exc:
        # The message is stored: failing the request now would make the client retry
        # what succeeded. Subscribers read by sequence number, so they get this message
        # with the session's next event (or when they subscribe again).
        logger.warning("could not announce message %s: %s", message.id, exc)


def _added(message: Message, replaces: bool = False) -> dict[str, Any]:
    """The event of a stored message; `replaces`: a regenerated reply, numbered as the
    reply it replaced (followers past that number read it by id, `messages.follow`)."""
    event: dict[str, Any] = {
        "kind": "message_added",
        "session_id": str(message.session_id),
        "message_id": str(message.id),
        "seq": message.seq,
    }
    if replaces:
        event["replaces"] = True
    return event


def _notify_call(channel: str, topic: str, *, replaces: bool = False) -> str:
    """SQL announcing the message `m` on `channel` (parameter markers), as `_added` does."""
    event = (
        "json_build_object('kind', 'message_added', 'session_id', m.session_id,"
        " 'message_id', m.id, 'seq', m.seq" + (", 'replaces', true)" if replaces else ")")
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
    usage: UsageLine | None = None,
    replacing: Message | None = None,
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
    title = _title_of(fields)
    if title is not None:
        lease_sets += (
            f", title = CASE WHEN last_seq = 0 AND title IS NULL THEN {parameter(title)}"
            " ELSE title END"
        )
    extra = ""
    if buffered:
        extra += ", dropped AS (DELETE FROM reply_streams WHERE id = $3)"
    if usage is not None:
        extra += (
            f", used AS ({_INSERT_USAGE} SELECT $2, s.user_id, {parameter(usage.model_config_id)}"
            f"::uuid, $1, $3, {parameter(usage.failed)}, {parameter(usage.prompt_tokens)},"
            f" {parameter(usage.completion_tokens)}, {parameter(usage.latency_ms)} FROM s)"
        )
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
        notify = f", {_notify_call(parameter(channel), topic, replaces=replacing is not None)}"
    if replacing is None:
        advance = f"""s AS (
  UPDATE chat_sessions SET last_seq = last_seq + 1, updated_at = $2{lease_sets}
  WHERE id = $1{condition}
  RETURNING last_seq, user_id
)"""
    else:
        # The replaced reply leaves the history (its seq NULL: a variant) and the new one
        # takes its number; the session's sequence stays. The insert reads `s`, which
        # waits for `old`: the update runs first and the numbers never clash.
        advance = f"""old AS (
  UPDATE messages SET seq = NULL
  WHERE id = {parameter(replacing.id)} AND session_id = $1 AND seq = {parameter(replacing.seq)}
  RETURNING id
), s AS (
  UPDATE chat_sessions SET updated_at = $2{lease_sets}
  WHERE id = $1 AND EXISTS (SELECT 1 FROM old)
  RETURNING {parameter(replacing.seq)}::int AS last_seq, user_id
)"""
    statement = f"""
WITH {advance}, m AS (
  INSERT INTO messages ({", ".join(Message.COLUMNS)})
  SELECT $3, $1, s.last_seq, $4, $5, $6::jsonb, $2, $7, $8, $9 FROM s
  RETURNING *
){extra}
SELECT {Message.columns_of("m")}{notify} FROM m
"""
    rows = await connections.get("default").execute_query_dict(statement, values)
    if not rows:
        return None
    message = Message.from_row(rows[0])
    if channel is None:
        await _announce(events, message, replaces=replacing is not None)
    return message


# -- SQLite: each step one call on the database's own thread --------------------------------
#
# aiosqlite runs every statement on the connection's thread, and each statement is a trip
# there and back (two thread switches). A step's statements run there together instead,
# as one function, under Tortoise's lock on the connection (so no ORM transaction is open
# meanwhile). BEGIN IMMEDIATE makes each step a writer from its first statement: a SQLite
# reader cannot become a writer once another process has committed.


@dataclass(frozen=True, slots=True)
class _SqliteLease:
    token: str
    expires_at: datetime
    now: datetime  # the app's clock, like every other lease expiry it writes and compares
    viewer: str | None  # a plain user caller: only their own sessions
    owner_id: str | None  # an admin acting for a user: only that user's sessions


async def _on_sqlite_thread(work: Callable[[sqlite3.Connection], T]) -> T:
    """Run `work` with the SQLite connection on the connection's own thread."""
    client = connections.get("default")
    async with client.acquire_connection() as connection:
        # Private to aiosqlite, and used by Tortoise itself (`_conn`): the queue of
        # functions its thread runs, and the connection that thread owns.
        try:
            return await connection._execute(work, connection._conn)  # type: ignore[no-any-return]
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(exc) from exc
        except sqlite3.OperationalError as exc:
            raise OperationalError(exc) from exc


def _writing(db: sqlite3.Connection, steps: Callable[[], T]) -> T:
    """`steps` in a write transaction, committed if they return a value, else undone."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = steps()
        db.execute("COMMIT" if result is not None else "ROLLBACK")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return result


def _row(cursor: sqlite3.Cursor) -> dict[str, Any] | None:
    found = cursor.fetchone()
    if found is None:
        return None
    return dict(zip([column[0] for column in cursor.description], found, strict=True))


def _sqlite_take(
    db: sqlite3.Connection, lease: _SqliteLease, question: dict[str, Any], asking: Asking
) -> Taken | None:
    session_id = question["session_id"]
    taken = _sqlite_take_lease(db, lease, session_id)
    if taken is None:
        return None
    spec = taken.spec
    stored = _sqlite_append(db, question, unused_key=True)
    if stored is None:
        return Taken(spec=spec, asked=Asked(question=None, earlier=None))
    limit = (spec.parameters.get("max_history_messages") or asking.history_messages) - 1
    tokens = spec.parameters.get("max_history_tokens") or asking.history_tokens
    earlier = db.execute(_SQLITE_EARLIER, [session_id, stored.seq, limit, tokens]).fetchall()
    return Taken(spec=spec, asked=Asked(question=stored, earlier=[(k, t) for k, t in earlier]))


def _sqlite_take_lease(
    db: sqlite3.Connection, lease: _SqliteLease, session_id: str
) -> Taken | None:
    owners = [owner for owner in (lease.viewer, lease.owner_id) if owner is not None]
    taken = db.execute(
        "UPDATE chat_sessions SET turn_token = ?, turn_expires_at = ?"
        " WHERE id = ? AND (turn_token IS NULL OR turn_expires_at < ?)"
        + " AND user_id = ?" * len(owners)
        + " RETURNING model_config_id",
        [lease.token, lease.expires_at, session_id, lease.now, *owners],
    ).fetchone()
    if taken is None:
        return None
    config = _row(
        db.execute(
            f"SELECT c.id AS model_config_id, {_CONFIG_COLUMNS} FROM model_configs AS c"
            " WHERE c.id = ?",
            [taken[0]],
        )
    )
    assert config is not None  # a session's config cannot be deleted
    return Taken(spec=_spec_of(config))


# As _TAKE_AND_ASK reads them (its lateral join), on SQLite.
_SQLITE_EARLIER = f"""
SELECT type, content FROM (
  SELECT seq, type, content, sum({estimate_tokens_sql("content")}) OVER (ORDER BY seq DESC)
    AS running
  FROM (
    SELECT seq, type, content FROM messages WHERE session_id = ? AND seq < ?
    ORDER BY seq DESC LIMIT ?
  ) AS recent
) AS e WHERE running <= ? ORDER BY seq DESC
"""


def _sqlite_append(
    db: sqlite3.Connection,
    fields: dict[str, Any],
    *,
    unused_key: bool = False,
    lease: str | None = None,
    buffered: bool = False,
    log: LogLine | None = None,
    usage: UsageLine | None = None,
    replacing: Message | None = None,
) -> Message | None:
    """The sequence advanced and the message inserted, with what else the caller asks
    for (as `_append_in_one_statement`); None if nothing was stored (the retry key is
    in use, or the session is gone)."""
    session_id = fields["session_id"]
    key = fields["client_message_id"]
    if unused_key and key is not None:
        used = db.execute(
            "SELECT 1 FROM messages WHERE session_id = ? AND client_message_id = ?",
            [session_id, key],
        ).fetchone()
        if used is not None:
            return None
    releasing = ""
    values: list[Any] = [fields["created_at"]]
    if lease is not None:
        releasing = (
            ", turn_token = CASE WHEN turn_token = ? THEN NULL ELSE turn_token END"
            ", turn_expires_at = CASE WHEN turn_token = ? THEN NULL ELSE turn_expires_at END"
        )
        values += [lease, lease]
    title = _title_of(fields)
    if title is not None:
        releasing += ", title = CASE WHEN last_seq = 0 AND title IS NULL THEN ? ELSE title END"
        values.append(title)
    if replacing is None:
        advanced = db.execute(
            f"UPDATE chat_sessions SET last_seq = last_seq + 1, updated_at = ?{releasing}"
            " WHERE id = ? RETURNING last_seq, user_id",
            [*values, session_id],
        ).fetchone()
    else:
        # As on PostgreSQL: the replaced reply becomes a variant, the new one takes its number.
        old = db.execute(
            "UPDATE messages SET seq = NULL WHERE id = ? AND session_id = ? AND seq = ?"
            " RETURNING id",
            [str(replacing.id), session_id, replacing.seq],
        ).fetchone()
        if old is None:
            return None
        owner = db.execute(
            f"UPDATE chat_sessions SET updated_at = ?{releasing} WHERE id = ? RETURNING user_id",
            [*values, session_id],
        ).fetchone()
        advanced = None if owner is None else (replacing.seq, owner[0])
    if advanced is None:
        return None
    metadata = fields["metadata"]
    message = _row(
        db.execute(
            f"INSERT INTO messages ({', '.join(Message.COLUMNS)})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            [
                str(fields["id"]),
                session_id,
                advanced[0],
                str(fields["type"]),
                fields["content"],
                None if metadata is None else orjson.dumps(metadata).decode(),
                fields["created_at"],
                key,
                fields["request_digest"],
                None if fields["reply_to_id"] is None else str(fields["reply_to_id"]),
            ],
        )
    )
    assert message is not None
    if buffered:
        db.execute("DELETE FROM reply_streams WHERE id = ?", [str(fields["id"])])
    if usage is not None:
        db.execute(
            f"{_INSERT_USAGE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                fields["created_at"],
                advanced[1],
                usage.model_config_id,
                session_id,
                str(fields["id"]),
                usage.failed,
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.latency_ms,
            ],
        )
    if log is not None:
        db.execute(
            "INSERT INTO logs (level, event, message, actor_id, details, created_at)"
            " VALUES ('info', ?, ?, ?, ?, ?)",
            [
                log.event,
                storable(log.message),
                log.actor_id,
                orjson.dumps(storable(dict(log.details))).decode(),
                fields["created_at"],
            ],
        )
    return Message.from_row(message)
