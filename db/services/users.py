"""Users and their API keys, and authentication by key."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from db.errors import Invalid, NotFound, Unauthenticated
from db.identity import Caller
from db.models import ApiKey, LogLevel, Role, User
from db.services import auth_failures, logs
from db.services.ids import is_uuid
from db.services.text import text_problem

KEY_SCHEME = "cgw_"
# The start of a key kept in clear so people can tell their keys apart.
PREFIX_CHARS = len(KEY_SCHEME) + 6
# Writing last_used_at on every request would turn each read into a write; a minute is enough.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_NAME_CHARS = 100


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as created: the only moment the plain secret exists."""

    key: ApiKey
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    return KEY_SCHEME + secrets.token_urlsafe(32)


async def create(*, name: str, role: Role = Role.USER) -> tuple[User, IssuedKey]:
    """Create a user with a first API key."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise Invalid(f"must be 1 to {MAX_NAME_CHARS} characters", field="name")
    if (problem := text_problem(name)) is not None:
        raise Invalid(problem, field="name")
    async with in_transaction():
        user = await User.create(name=name, role=role)
        issued = await create_key(user=user)
    return user, issued


async def create_key(*, user: User, label: str = "") -> IssuedKey:
    """Issue a new key for `user`; the secret is returned once and never stored."""
    secret = _new_secret()
    key = await ApiKey.create(
        user=user, key_digest=digest(secret), prefix=secret[:PREFIX_CHARS], label=label
    )
    return IssuedKey(key=key, secret=secret)


async def get(*, user_id: str) -> User:
    user = await User.get_or_none(id=user_id) if is_uuid(user_id) else None
    if user is None:
        raise NotFound("user not found")
    return user


async def get_many(*, caller: Caller, user_ids: Sequence[str]) -> list[User]:
    """The users of `user_ids` the caller may see: admins everyone, a user themselves
    (the owner of every session they can reach)."""
    wanted = [u for u in user_ids if is_uuid(u) and (caller.is_admin or u == caller.user_id)]
    return list(await User.filter(id__in=wanted))


async def list_all() -> list[User]:
    return list(await User.all().order_by("created_at", "id"))


async def count() -> int:
    return await User.all().count()


async def list_keys(*, user_id: str | None = None) -> list[ApiKey]:
    query = ApiKey.all().order_by("created_at", "id")
    if user_id is not None:
        if not is_uuid(user_id):
            return []  # no user has such an id (and PostgreSQL would refuse the query)
        query = query.filter(user_id=user_id)
    return list(await query)


async def revoke_key(*, key_id_or_prefix: str) -> ApiKey:
    """Revoke a key by its id or by the prefix shown when it was created."""
    query = ApiKey.filter(revoked_at__isnull=True)
    matches: list[ApiKey] = []
    # Only well-formed values reach the database: PostgreSQL refuses a non-UUID id and
    # Tortoise refuses a filter value longer than the prefix column.
    if is_uuid(key_id_or_prefix):
        matches = list(await query.filter(id=key_id_or_prefix))
    if not matches and len(key_id_or_prefix) <= PREFIX_CHARS:
        matches = list(await query.filter(prefix=key_id_or_prefix))
    if len(matches) != 1:
        raise NotFound("no single active key matches" if matches else "active key not found")
    key = matches[0]
    key.revoked_at = datetime.now(UTC)
    await key.save(update_fields=["revoked_at"])
    await logs.record(
        level=LogLevel.INFO,
        event="key.revoked",
        message=f"API key {key.prefix}… revoked",
        actor_id=str(key.user_id),
        details={"key_id": str(key.id)},
    )
    return key


async def authenticate(*, token: str | None, source: str = "") -> Caller:
    """The caller a bearer token belongs to; one indexed lookup, no slow hash.

    A failure writes nothing: it is counted, and the count logged later (`auth_failures`).
    """
    if not token:
        auth_failures.note(reason="no credentials", source=source)
        raise Unauthenticated("authentication required: send Authorization: Bearer <api key>")
    key = await ApiKey.get_or_none(key_digest=digest(token)).select_related("user")
    if key is None:
        auth_failures.note(reason="unknown API key", source=source)
        raise Unauthenticated("invalid API key")
    if key.revoked_at is not None:
        reason = f"revoked API key {key.prefix}…"
        auth_failures.note(reason=reason, source=source, actor_id=str(key.user_id))
        raise Unauthenticated("API key has been revoked")
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        await ApiKey.filter(id=key.id).update(last_used_at=now)
    user = key.user
    return Caller(user_id=str(user.id), name=user.name, role=Role(user.role))
