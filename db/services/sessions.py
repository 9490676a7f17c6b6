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
from db.services.keyset import SortKey, newest_first
from db.services.pagination import Slice, Window


def visible_to(caller: Caller, *, via: str = "") -> Q:
    """The ownership rule as a query condition: admins see every session, users their own.

    `via` is the relation path from the queried model to its session, e.g. "session__".
    """
    return Q() if caller.is_admin else Q(**{f"{via}user_id": caller.user_id})


def visible_sql(alias: str, *, viewer: str, admin: str) -> str:
    """`visible_to` as an SQL condition on the sessions row `alias`, for statements written
    by hand: `viewer` and `admin` are SQL expressions (parameters) of the caller's id and
    whether they are an admin."""
    return f"({admin} OR {alias}.user_id = {viewer})"


def acting_user_id(caller: Caller, user_id: str | None) -> str:
    """The user a request acts for: the caller's own id, or any id for an admin."""
    if user_id is None or user_id == caller.user_id:
        return caller.user_id
    if not caller.is_admin:
        raise Forbidden("user_id must be your own id", actor_id=caller.user_id)
    return user_id


async def get(*, caller: Caller, session_id: str, user_id: str | None = None) -> ChatSession:
    """The session if the caller may see it; acting for `user_id` (see `acting_user_id`),
    it must also be that user's."""
    owner_id = acting_user_id(caller, user_id) if user_id is not None else None
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


def message_count(session: ChatSession) -> int:
    """How many messages the session holds, without counting them: sequence numbers run
    1..last_seq without gaps (messages are numbered in the transaction that stores them,
    and never deleted)."""
    return session.last_seq


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
        config = await model_configs.get(caller=caller, config_id=model_config_id)
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


async def get_many(*, caller: Caller, session_ids: Sequence[str]) -> list[ChatSession]:
    """The sessions of `session_ids` the caller may see (others are simply left out)."""
    wanted = [s for s in session_ids if is_uuid(s)]
    return list(await ChatSession.filter(visible_to(caller), id__in=wanted))


def listed_owner(caller: Caller, user_id: str | None) -> str | None:
    """Whose sessions a listing shows: the caller's own, or `user_id`'s for an admin;
    None for an id no user can have (the list is empty)."""
    owner_id = user_id if user_id is not None else caller.user_id
    if owner_id != caller.user_id and not caller.is_admin:
        raise Forbidden("only admins may list another user's sessions", actor_id=caller.user_id)
    return owner_id if is_uuid(owner_id) else None


def listed_sql(alias: str, owner: str) -> str:
    """The condition of a listing of `owner`'s sessions (see `listed_owner`) on the
    sessions row `alias`, for statements written by hand."""
    return f"{alias}.user_id = {owner}"


def _listed(caller: Caller, user_id: str | None) -> QuerySet[ChatSession]:
    owner_id = listed_owner(caller, user_id)
    if owner_id is None:
        return ChatSession.filter(id__isnull=True)
    return ChatSession.filter(user_id=owner_id)


async def window(
    *, caller: Caller, user_id: str | None, page: Slice, after: SortKey | None = None
) -> Window[ChatSession]:
    """A user's sessions, newest first (the caller's own unless an admin names another)."""
    return await newest_first(_listed(caller, user_id), page=page, after=after)


async def count(*, caller: Caller, user_id: str | None) -> int:
    return await _listed(caller, user_id).count()
