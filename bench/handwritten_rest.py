"""The gateway's two hottest reads and its send written by hand: the stack's practical limit.

    HANDWRITTEN_DSN=postgresql://... .venv/bin/python -m uvicorn --app-dir bench \
        handwritten_rest:app --port 8100 --workers 1 --no-access-log

The same stack as the gateway (Starlette on uvicorn, asyncpg, orjson), none of its
layers: each route authenticates the bearer key as db/services/users.py does (the SHA-256
digest of the secret looked up in api_keys, joined to users; last_used_at written at most
once a minute; a verified key trusted for HANDWRITTEN_AUTH_CACHE_SECONDS, 30 by default
like the gateway's AUTH_CACHE_SECONDS on PostgreSQL, 0 to look every key up), then runs
the statements the gateway's service runs and answers the same JSON.

- GET /api/v1/sessions/{id}/messages?page_size=20&page_num=N: the REST history page,
  `{code, data: {messages, total}}`, in one statement: the session (the ownership check)
  left-joined to its messages numbered offset+1..offset+page_size (exact: a session's
  messages are numbered 1..last_seq without gaps). `?by=offset` reads it the older way:
  the session, then the page with ORDER BY seq LIMIT/OFFSET (two statements).
- GET /bench/sessions?first=20: what the GraphQL query `sessions(first: 20) { totalCount
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node {
  id createdAt messageCount } } }` answers, as `{"data": {"sessions": ...}}`.

- POST /api/v1/sessions/{id}/messages with `{"user_id", "message"}`: a whole reply, as
  the gateway's turn on PostgreSQL does it in two statements: the session taken (its
  lease, the caller's ownership) with the question stored and the history read, then
  the upstream asked (aiohttp, one session, Chat Completions), then the reply stored
  with the lease given back and a log entry written. It answers the gateway's shape,
  `{code, data: {user_message, ai_message}}`. No retry keys, no waiting for a busy
  session (409), no streaming, no events: the floor of what a send can cost.

The reads take plain users only (the benchmark reads as one); the send takes an admin
too (it acts on the caller's own sessions alone).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_PAGE_SIZE = 100

AUTH_SQL = (
    'SELECT k."id", k."revoked_at", k."last_used_at", u."id" AS "user_id", u."name", u."role" '
    'FROM "api_keys" k JOIN "users" u ON u."id" = k."user_id" WHERE k."key_digest" = $1'
)
TOUCH_SQL = 'UPDATE "api_keys" SET "last_used_at" = $1 WHERE "id" = $2'
SESSION_SQL = (
    'SELECT "id", "user_id", "model_config_id", "created_at", "updated_at", "last_seq", '
    '"turn_token", "turn_expires_at" FROM "chat_sessions" WHERE "id" = $1 AND "user_id" = $2 '
    "LIMIT 1"
)
MESSAGE_COLUMNS = (
    '"id", "session_id", "seq", "type", "content", "metadata", "created_at", '
    '"client_message_id", "request_digest", "reply_to_id"'
)
PAGE_BY_OFFSET_SQL = (
    f'SELECT {MESSAGE_COLUMNS} FROM "messages" WHERE "session_id" = $1 ORDER BY "seq" '
    "LIMIT $2 OFFSET $3"
)
PAGE_BY_SEQ_SQL = (
    "SELECT s.last_seq AS session_last_seq, m.* FROM chat_sessions AS s "
    "LEFT JOIN messages AS m ON m.session_id = s.id AND m.seq >= $3 AND m.seq <= $4 "
    "WHERE s.id = $1 AND s.user_id = $2 ORDER BY m.seq"
)
SESSIONS_SQL = (
    'SELECT "id", "user_id", "model_config_id", "created_at", "updated_at", "last_seq", '
    '"turn_token", "turn_expires_at" FROM "chat_sessions" WHERE "user_id" = $1 '
    'AND NOT "archived" ORDER BY "created_at" DESC, "id" DESC LIMIT $2'
)
# The default list leaves archived sessions out (sessions(archived: false)).
COUNT_SQL = 'SELECT COUNT(*) FROM "chat_sessions" WHERE "user_id" = $1 AND NOT "archived"'

TAKE_AND_ASK_SQL = """
WITH t AS (
  UPDATE chat_sessions AS s SET turn_token = $1, turn_expires_at = $2,
    last_seq = s.last_seq + 1, updated_at = $4
  FROM model_configs AS c
  WHERE s.id = $3 AND c.id = s.model_config_id AND s.user_id = $5
    AND (s.turn_token IS NULL OR s.turn_expires_at < $4)
  RETURNING s.id, s.last_seq, c.model_name, c.base_url,
    COALESCE(NULLIF((c.parameters->>'max_history_messages')::numeric::bigint, 0), 50) - 1
      AS earlier_limit
), m AS (
  INSERT INTO messages (id, session_id, seq, type, content, metadata, created_at)
  SELECT $6, t.id, t.last_seq, 'user', $7, NULL, $4 FROM t
  RETURNING id, seq, created_at
)
SELECT t.model_name, t.base_url, m.id, m.seq, m.created_at, h.types, h.contents
FROM t CROSS JOIN m LEFT JOIN LATERAL (
  SELECT array_agg(e.type ORDER BY e.seq DESC) AS types,
    array_agg(e.content ORDER BY e.seq DESC) AS contents
  FROM (
    SELECT seq, type, content FROM messages WHERE session_id = $3
    ORDER BY seq DESC LIMIT t.earlier_limit
  ) AS e
) AS h ON true
"""
GIVE_BACK_SQL = (
    "UPDATE chat_sessions SET turn_token = NULL, turn_expires_at = NULL"
    " WHERE id = $1 AND turn_token = $2"
)
STORE_REPLY_SQL = """
WITH s AS (
  UPDATE chat_sessions SET last_seq = last_seq + 1, updated_at = $2,
    turn_token = CASE WHEN turn_token = $7 THEN NULL ELSE turn_token END,
    turn_expires_at = CASE WHEN turn_token = $7 THEN NULL ELSE turn_expires_at END
  WHERE id = $1 RETURNING last_seq
), m AS (
  INSERT INTO messages (id, session_id, seq, type, content, metadata, created_at, reply_to_id)
  SELECT $3, $1, s.last_seq, 'ai', $4, $5::jsonb, $2, $6 FROM s
  RETURNING id
), logged AS (
  INSERT INTO logs (level, event, message, actor_id, details, created_at)
  SELECT 'info', 'message.answered', $8, $9, $10::jsonb, $2 FROM m
)
SELECT m.id FROM m
"""
LEASE = timedelta(seconds=300)

_pool: asyncpg.Pool | None = None
_upstream: aiohttp.ClientSession | None = None
_known: dict[str, tuple[str, str, float]] = {}  # key digest -> user id, role, trusted until
KNOWN_SECONDS = float(os.environ.get("HANDWRITTEN_AUTH_CACHE_SECONDS", "30"))


class Json(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def failure(status: int, message: str) -> Json:
    return Json({"code": status, "message": message, "data": None}, status_code=status)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(parts))).decode().rstrip("=")


async def caller_id(request: Request, *, admin_ok: bool = False) -> str | None:
    """The caller's user id; an admin only where `admin_ok` (a route that acts on the
    caller's own rows alone, where an admin is no different)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    known = _known.get(digest)
    if known is None or known[2] <= time.monotonic():
        assert _pool is not None
        key = await _pool.fetchrow(AUTH_SQL, digest)
        if key is None or key["revoked_at"] is not None:
            return None
        now = datetime.now(UTC)
        if key["last_used_at"] is None or now - key["last_used_at"] > LAST_USED_RESOLUTION:
            await _pool.execute(TOUCH_SQL, now, key["id"])
        known = (str(key["user_id"]), key["role"], time.monotonic() + KNOWN_SECONDS)
        if KNOWN_SECONDS > 0:
            _known[digest] = known
    user_id, role, _ = known
    return user_id if role == "user" or admin_ok else None


def _int(request: Request, name: str, default: int) -> int | None:
    try:
        return int(request.query_params.get(name, default))
    except ValueError:
        return None


async def history(request: Request) -> Response:
    page_size, page_num = _int(request, "page_size", 20), _int(request, "page_num", 1)
    if page_size is None or page_num is None or not 1 <= page_size <= MAX_PAGE_SIZE:
        return failure(400, "page_size/page_num: invalid")
    if page_num < 1:
        return failure(400, "page_num: must be at least 1")
    user_id = await caller_id(request)
    if user_id is None:
        return failure(401, "invalid API key")
    assert _pool is not None
    offset = (page_num - 1) * page_size
    try:
        if request.query_params.get("by") == "offset":
            async with _pool.acquire() as connection:
                session = await connection.fetchrow(
                    SESSION_SQL, request.path_params["session_id"], user_id
                )
                rows = []
                if session is not None:
                    rows = await connection.fetch(
                        PAGE_BY_OFFSET_SQL, session["id"], page_size, offset
                    )
                total = None if session is None else session["last_seq"]
        else:
            rows = await _pool.fetch(
                PAGE_BY_SEQ_SQL,
                request.path_params["session_id"],
                user_id,
                offset + 1,
                offset + page_size,
            )
            total = rows[0]["session_last_seq"] if rows else None
            rows = [row for row in rows if row["id"] is not None]
    except asyncpg.DataError:  # not a UUID
        total = None
    if total is None:
        return failure(404, "session not found")
    messages = [
        {
            "message_id": str(row["id"]),
            "type": row["type"],
            "content": row["content"],
            "created_time": iso(row["created_at"]),
            "metadata": None if row["metadata"] is None else orjson.Fragment(row["metadata"]),
        }
        for row in rows
    ]
    return Json({"code": 200, "data": {"messages": messages, "total": total}})


async def sessions(request: Request) -> Response:
    first = _int(request, "first", 20)
    if first is None or not 0 <= first <= MAX_PAGE_SIZE:
        return failure(400, "first: invalid")
    user_id = await caller_id(request)
    if user_id is None:
        return failure(401, "invalid API key")
    assert _pool is not None
    async with _pool.acquire() as connection:
        rows = await connection.fetch(SESSIONS_SQL, user_id, first + 1)
        total = await connection.fetchval(COUNT_SQL, user_id)
    edges = [
        {
            "cursor": cursor("s", iso(row["created_at"]), str(row["id"])),
            "node": {
                "id": str(row["id"]),
                "createdAt": row["created_at"].isoformat(),
                "messageCount": row["last_seq"],
            },
        }
        for row in rows[:first]
    ]
    page_info = {
        "hasNextPage": len(rows) > first,
        "hasPreviousPage": False,
        "startCursor": edges[0]["cursor"] if edges else None,
        "endCursor": edges[-1]["cursor"] if edges else None,
    }
    connection_shape = {"totalCount": total, "pageInfo": page_info, "edges": edges}
    return Json({"data": {"sessions": connection_shape}})


async def send(request: Request) -> Response:
    user_id = await caller_id(request, admin_ok=True)
    if user_id is None:
        return failure(401, "invalid API key")
    try:
        body = orjson.loads(await request.body())
        question = body["message"]
        if not isinstance(question, str) or not question.strip() or body["user_id"] != user_id:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return failure(400, "message: invalid")
    assert _pool is not None and _upstream is not None
    session_id = request.path_params["session_id"]
    now, token = datetime.now(UTC), uuid.uuid4().hex
    try:
        taken = await _pool.fetchrow(
            TAKE_AND_ASK_SQL, token, now + LEASE, session_id, now, user_id, uuid.uuid4(), question
        )
    except asyncpg.DataError:  # not a UUID
        taken = None
    if taken is None:
        return failure(404, "session not found (or busy)")
    earlier = zip(taken["types"] or (), taken["contents"] or (), strict=True)
    history = [
        {"role": "user" if kind == "user" else "assistant", "content": content}
        for kind, content in reversed(list(earlier))
    ]
    history.append({"role": "user", "content": question})
    started = time.perf_counter()
    try:
        async with _upstream.post(
            f"{taken['base_url']}/chat/completions",
            data=orjson.dumps({"model": taken["model_name"], "messages": history}),
            headers={"Content-Type": "application/json", "Authorization": "Bearer bench"},
        ) as upstream:
            answer = orjson.loads(await upstream.read())
        content = answer["choices"][0]["message"]["content"]
    except Exception:
        # The session must not stay taken for the lease's 5 minutes.
        await _pool.execute(GIVE_BACK_SQL, session_id, token)
        return failure(502, "the AI model failed to reply")
    metadata = {
        "model_name": taken["model_name"],
        "latency_ms": round((time.perf_counter() - started) * 1000),
        "usage": answer.get("usage"),
    }
    reply_id, stored_at = uuid.uuid4(), datetime.now(UTC)
    await _pool.execute(
        STORE_REPLY_SQL,
        session_id,
        stored_at,
        reply_id,
        content,
        orjson.dumps(metadata).decode(),
        taken["id"],
        token,
        f"{taken['model_name']} answered in {metadata['latency_ms']} ms",
        user_id,
        orjson.dumps({"session_id": session_id, "message_id": str(reply_id)}).decode(),
    )
    return Json(
        {
            "code": 200,
            "data": {
                "user_message": {
                    "message_id": str(taken["id"]),
                    "created_time": iso(taken["created_at"]),
                },
                "ai_message": {
                    "message_id": str(reply_id),
                    "content": content,
                    "created_time": iso(stored_at),
                    "metadata": metadata,
                },
            },
        }
    )


async def healthz(request: Request) -> Response:
    return Json({"status": "ok"})


async def _no_reset(connection: asyncpg.Connection) -> None:
    """No session state is kept on a pooled connection: skip asyncpg's reset round trip."""


@asynccontextmanager
async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
    global _pool, _upstream
    # The gateway's pool: Tortoise's asyncpg defaults (1 to 5 connections).
    _pool = await asyncpg.create_pool(
        os.environ["HANDWRITTEN_DSN"], min_size=1, max_size=5, reset=_no_reset
    )
    _upstream = aiohttp.ClientSession()
    try:
        yield
    finally:
        await _upstream.close()
        await _pool.close()


app = Starlette(
    routes=[
        Route("/api/v1/sessions/{session_id}/messages", history, methods=["GET"]),
        Route("/api/v1/sessions/{session_id}/messages", send, methods=["POST"]),
        Route("/bench/sessions", sessions),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
