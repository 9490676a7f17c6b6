"""Chat sessions: creating them and the ownership rule every session access goes through."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from db.errors import Forbidden, NotFound
from db.identity import Caller
from db.models import ChatSession, LogLevel
from db.services import logs, model_configs, users
from db.services.ids import is_uuid
from db.services.keyset import SortKey, older_than
from db.services.pagination import Slice, Window


def visible_to(caller: Caller, *, via: str = "") -> Q:
    """The ownership rule as a query condition: admins see every session, users their own.

    `via` is the relation path from the queried model to its session, e.g. "session__".
    """
    return Q() if caller.is_admin else Q(**{f"{via}user_id": caller.user_id})


def acting_user_id(caller: Caller, user_id: str | None) -> str:
    """The user a request acts for: the caller's own id, or any id for an admin."""
    if user_id is None or user_id == caller.user_id:
        return caller.user_id
    if not caller.is_admin:
        raise Forbidden("user_id must be your own id")
    return user_id


async def get(*, caller: Caller, session_id: str, owner_id: str | None = None) -> ChatSession:
    """The session if the caller may see it (and it belongs to `owner_id` when given)."""
    session = None
    # A malformed id matches nothing; it must not reach the database, where PostgreSQL
    # would refuse it while SQLite simply finds no row.
    if is_uuid(session_id) and (owner_id is None or is_uuid(owner_id)):
        query = ChatSession.filter(visible_to(caller), id=session_id)
        if owner_id is not None:
            query = query.filter(user_id=owner_id)
        session = await query.first()
    if session is None:
        raise NotFound("session not found")
    return session


async def create(
    *, caller: Caller, user_id: str | None = None, model_config_id: str | None = None
) -> ChatSession:
    """Open a session for the acting user with the given config, or the default one."""
    owner_id = acting_user_id(caller, user_id)
    if owner_id != caller.user_id:
        await users.get(user_id=owner_id)
    if model_config_id is None:
        config = await model_configs.get_default()
    else:
        config = await model_configs.get(config_id=model_config_id)
    session = await ChatSession.create(user_id=owner_id, model_config_id=config.id)
    await logs.record(
        level=LogLevel.INFO,
        event="session.created",
        message=f"session created by {caller.name} with model {config.model_name}",
        actor_id=caller.user_id,
        details={
            "session_id": str(session.id),
            "user_id": owner_id,
            "model_config_id": str(config.id),
        },
    )
    return session


async def get_many(session_ids: Sequence[str]) -> list[ChatSession]:
    """Sessions by id, for loaders (callers reached them through an allowed path)."""
    return list(await ChatSession.filter(id__in=[s for s in session_ids if is_uuid(s)]))


def _listed(caller: Caller, user_id: str | None) -> QuerySet[ChatSession]:
    owner_id = user_id if user_id is not None else caller.user_id
    if owner_id != caller.user_id and not caller.is_admin:
        raise Forbidden("only admins may list another user's sessions")
    if not is_uuid(owner_id):
        return ChatSession.filter(id__isnull=True)
    return ChatSession.filter(user_id=owner_id)


async def window(
    *, caller: Caller, user_id: str | None, page: Slice, after: SortKey | None = None
) -> Window[ChatSession]:
    """A user's sessions, newest first (the caller's own unless an admin names another)."""
    query = _listed(caller, user_id)
    if after is not None:
        query = query.filter(older_than(after))
    rows = list(await query.order_by("-created_at", "-id").limit(page.size + 1))
    return Window(
        items=rows[: page.size], has_next=len(rows) > page.size, has_previous=after is not None
    )


async def count(*, caller: Caller, user_id: str | None) -> int:
    return await _listed(caller, user_id).count()
