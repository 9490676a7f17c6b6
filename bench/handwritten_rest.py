"""The gateway's two hottest reads written by hand: the practical limit of the stack.

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

Non-admin callers only (the benchmark reads as a plain user).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

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
    'ORDER BY "created_at" DESC, "id" DESC LIMIT $2'
)
COUNT_SQL = 'SELECT COUNT(*) FROM "chat_sessions" WHERE "user_id" = $1'

_pool: asyncpg.Pool | None = None
_known: dict[str, tuple[str, float]] = {}  # key digest -> user id, trusted until
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


async def caller_id(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    known = _known.get(digest)
    if known is not None and known[1] > time.monotonic():
        return known[0]
    assert _pool is not None
    key = await _pool.fetchrow(AUTH_SQL, digest)
    if key is None or key["revoked_at"] is not None or key["role"] != "user":
        return None
    now = datetime.now(UTC)
    if key["last_used_at"] is None or now - key["last_used_at"] > LAST_USED_RESOLUTION:
        await _pool.execute(TOUCH_SQL, now, key["id"])
    user_id = str(key["user_id"])
    if KNOWN_SECONDS > 0:
        _known[digest] = (user_id, time.monotonic() + KNOWN_SECONDS)
    return user_id


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


async def healthz(request: Request) -> Response:
    return Json({"status": "ok"})


async def _no_reset(connection: asyncpg.Connection) -> None:
    """No session state is kept on a pooled connection: skip asyncpg's reset round trip."""


@asynccontextmanager
async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
    global _pool
    # The gateway's pool: Tortoise's asyncpg defaults (1 to 5 connections).
    _pool = await asyncpg.create_pool(
        os.environ["HANDWRITTEN_DSN"], min_size=1, max_size=5, reset=_no_reset
    )
    try:
        yield
    finally:
        await _pool.close()


app = Starlette(
    routes=[
        Route("/api/v1/sessions/{session_id}/messages", history),
        Route("/bench/sessions", sessions),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
