"""Chat sessions: creating, changing (title, model config, archive), deleting and listing
them, and the ownership rule every session access goes through."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from db.errors import Forbidden, Invalid, NotFound
from db.identity import Caller
from db.models import ChatSession, LogLevel
from db.ports import Runtime
from db.services import leases, logs, model_configs, reply_runs, titles, users
from db.services.ids import is_uuid
from db.services.keyset import SortKey, newest_first
from db.services.pagination import PageRequest, Slice, Window

logger = logging.getLogger(__name__)


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
    """How many messages the session's history holds, without counting them: sequence
    numbers run 1..last_seq without gaps (messages are numbered in the transaction that
    stores them, and deleted only with their session)."""
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


def archived_sql(alias: str, archived: str) -> str:
    """The `archived` filter of a listing (see `_listed`) on the sessions row `alias`, for
    statements written by hand: `archived` is an SQL expression (a parameter) of a
    boolean, or NULL for every session."""
    return f"({archived} IS NULL OR {alias}.archived = {archived})"


def _listed(caller: Caller, user_id: str | None, archived: bool | None) -> QuerySet[ChatSession]:
    owner_id = listed_owner(caller, user_id)
    if owner_id is None:
        return ChatSession.filter(id__isnull=True)
    query = ChatSession.filter(user_id=owner_id)
    # Archived sessions leave the default list (the index leads with user_id, archived).
    return query if archived is None else query.filter(archived=archived)


async def window(
    *,
    caller: Caller,
    user_id: str | None,
    page: Slice,
    after: SortKey | None = None,
    archived: bool | None = False,
) -> Window[ChatSession]:
    """A user's sessions, newest first (the caller's own unless an admin names another):
    unarchived ones by default, archived ones only (True), or all (None)."""
    return await newest_first(_listed(caller, user_id, archived), page=page, after=after)


async def count(*, caller: Caller, user_id: str | None, archived: bool | None = False) -> int:
    return await _listed(caller, user_id, archived).count()


@dataclass(frozen=True, slots=True)
class SessionPage:
    sessions: list[ChatSession]
    total: int


async def list_page(
    *,
    caller: Caller,
    page: PageRequest,
    user_id: str | None = None,
    archived: bool | None = False,
) -> SessionPage:
    """A page of a user's sessions, newest first, and how many there are (as `window`)."""
    query = _listed(caller, user_id, archived)
    total = await query.count()
    rows = await query.order_by("-created_at", "-id").offset(page.offset).limit(page.page_size)
    return SessionPage(sessions=list(rows), total=total)


class Unset(enum.Enum):
    """The value of a field a change leaves as it is (None clears a field that may be null)."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


async def update(
    *,
    caller: Caller,
    session_id: str,
    title: str | Unset | None = UNSET,
    model_config_id: str | Unset | None = UNSET,
    archived: bool | Unset | None = UNSET,
) -> ChatSession:
    """Set or clear the title, switch the model config (the next reply uses it), archive
    or unarchive; fields left UNSET are kept. Every change bumps `updated_at`."""
    fields: dict[str, Any] = {}
    if title is not UNSET:
        fields["title"] = titles.checked(title)
    if model_config_id is not UNSET:
        if model_config_id is None:
            raise Invalid("must not be null", field="model_config_id")
        config = await model_configs.get(caller=caller, config_id=model_config_id)
        fields["model_config_id"] = config.id
    if archived is not UNSET:
        if not isinstance(archived, bool):
            raise Invalid("must be true or false", field="archived")
        fields["archived"] = archived
    if not fields:
        raise Invalid("name at least one field to change", field="changes")
    async with in_transaction():
        # Locked (PostgreSQL) so the logged "from" values are the ones replaced.
        session = await _get_locked(caller, session_id)
        before = {name: getattr(session, name) for name in fields}
        for name, value in fields.items():
            setattr(session, name, value)
        session.updated_at = datetime.now(UTC)
        await session.save(update_fields=[*fields, "updated_at"])
    # What really changed: a field sent with its current value is not a change.
    changes = {
        name: {"from": _plain(before[name]), "to": _plain(value)}
        for name, value in fields.items()
        if _plain(before[name]) != _plain(value)
    }
    await logs.record(
        level=LogLevel.INFO,
        event="session.updated",
        message=(
            f"session {session.id} updated by {caller.name}: "
            f"{', '.join(sorted(changes)) or 'no field'} changed"
        ),
        actor_id=caller.user_id,
        details={
            "session_id": str(session.id),
            "user_id": str(session.user_id),
            "changed": sorted(changes),
            "changes": changes,
        },
    )
    return session


def _plain(value: Any) -> Any:
    """A value as the log's JSON keeps it (ids as text)."""
    return value if value is None or isinstance(value, str | bool) else str(value)


async def _get_locked(caller: Caller, session_id: str) -> ChatSession:
    query = (
        ChatSession.filter(visible_to(caller), id=session_id).select_for_update()
        if is_uuid(session_id)
        else None
    )
    session = await query.first() if query is not None else None
    if session is None:
        raise NotFound("session not found")
    return session


# How often a delete waiting for the session's turn looks for a reply to stop.
STOP_POLL_SECONDS = 0.1
# How long a delete waits for its stopper's last query once the session is gone.
STOPPER_GRACE_SECONDS = 1.0
# Stoppers finishing their last query after their delete returned.
_finishing: set[asyncio.Task[None]] = set()


async def delete(*, runtime: Runtime, caller: Caller, session_id: str) -> str:
    """Delete the session and every message of it in one statement (the foreign keys
    cascade to messages, their feedback and the reply buffers); returns its id.

    A reply being generated for it, by any process, is stopped first and stored as
    cancelled (its sender gets it), and the session's turn is held while it goes, so no
    reply is half stored into a deleted session. `NotFound` once it is gone."""
    session = await get(caller=caller, session_id=session_id)
    owned = str(session.id)
    limits = runtime.limits
    enough = asyncio.Event()
    stopper = asyncio.create_task(_stop_turns(runtime, owned, until=enough))
    try:
        async with leases.exclusive(
            owned, wait_seconds=limits.turn_wait_seconds, lease_seconds=limits.turn_lease_seconds
        ) as lease:
            await _ended(stopper, enough)
            async with in_transaction():
                # As it is now: the stopped reply may have been stored meanwhile.
                messages = (
                    await ChatSession.filter(id=owned).first().values_list("last_seq", flat=True)
                )
                deleted = await ChatSession.filter(id=owned).delete()
            lease.given_back = True  # the row went with its lease
    finally:
        await _ended(stopper, enough)
    if not deleted:
        raise NotFound("session not found")  # deleted by another request meanwhile
    await logs.record(
        level=LogLevel.INFO,
        event="session.deleted",
        message=f"session {owned} deleted by {caller.name} with its {messages} messages",
        actor_id=caller.user_id,
        details={"session_id": owned, "user_id": str(session.user_id), "messages": messages},
    )
    return owned


async def _stop_turns(runtime: Runtime, session_id: str, *, until: asyncio.Event) -> None:
    """Stop whichever turn holds the session, again and again, until `until` is set: a
    turn that has just taken the lease may not know its token yet when the first request
    reaches its process, and a send queued behind it takes the lease next (a repeated
    request changes nothing)."""
    while not until.is_set():
        try:
            token = (
                await ChatSession.filter(
                    id=session_id, turn_token__isnull=False, turn_expires_at__gt=datetime.now(UTC)
                )
                .first()
                .values_list("turn_token", flat=True)
            )
            if token is not None:
                await reply_runs.request_stop(
                    runtime.events, session_id=session_id, lease=str(token)
                )
        except Exception as exc:  # the delete itself reports a database that is away
            logger.warning("could not stop the turn of session %s: %s", session_id, exc)
        with suppress(TimeoutError):
            async with asyncio.timeout(STOP_POLL_SECONDS):
                await until.wait()


async def _ended(stopper: asyncio.Task[None], enough: asyncio.Event) -> None:
    """Tell the stopper to end and give it a moment to finish the query it is in; one still
    busy then (a database that is away) ends by itself in the background.

    Never cancelled (asyncio.wait does not pass a cancellation of the delete on): a query
    cancelled while the pool opens a connection for it leaves asyncpg a failed future
    nobody reads ("unexpected connection_lost() call", logged as an error)."""
    enough.set()
    if stopper.done():
        return
    _finishing.add(stopper)  # a task only the loop knows of may be collected mid-query
    stopper.add_done_callback(_finishing.discard)
    await asyncio.wait({stopper}, timeout=STOPPER_GRACE_SECONDS)
