"""Users and their API keys, and authentication by key."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from db.errors import Invalid, NotFound, Unauthenticated
from db.identity import Caller
from db.models import ApiKey, LogLevel, Role, User
from db.ports import EventBroker, Runtime
from db.services import auth_failures, logs
from db.services.ids import is_uuid
from db.services.text import text_problem

logger = logging.getLogger(__name__)

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


def visible_sql(alias: str, *, viewer: str, admin: str) -> str:
    """`get_many`'s rule as an SQL condition on the users row `alias` (admins see every
    user, a user themselves); `viewer` and `admin` are SQL expressions (parameters)."""
    return f"({admin} OR {alias}.id = {viewer})"


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


async def revoke_key(*, key_id_or_prefix: str, events: EventBroker | None = None) -> ApiKey:
    """Revoke a key by its id or by the prefix shown when it was created; it stops
    working at once in this process and, told through `events`, in every other."""
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
    _forget(str(key.id))
    if events is not None:
        try:
            await events.publish(KEYS_TOPIC, {"kind": "key_revoked", "key_id": str(key.id)})
        except Exception as exc:
            # Revoked all the same; other processes forget it within their cache's time.
            logger.warning("could not announce the revocation of key %s: %s", key.id, exc)
    await logs.record(
        level=LogLevel.INFO,
        event="key.revoked",
        message=f"API key {key.prefix}… revoked",
        actor_id=str(key.user_id),
        details={"key_id": str(key.id)},
    )
    return key


@dataclass(frozen=True, slots=True)
class _Known:
    caller: Caller
    key_id: str
    until: float  # time.monotonic()


# Keys verified lately, by digest: a request with one costs no round trip. An entry goes
# when its key is revoked (here at once, elsewhere through the broker) or after the TTL.
# The user's name and role are kept with it: nothing changes them after creation today;
# whatever comes to change them must forget the user's keys as a revocation does.
_known: dict[str, _Known] = {}
_known_seconds = 0.0
# Bumped by every forgetting: a lookup that ran across one does not keep what it read
# (the revocation may have come between the read and the keeping).
_forgotten = 0
MAX_KNOWN_KEYS = 10_000
# Revocations travel to every process on this topic.
KEYS_TOPIC = "api_keys"


def remember_callers(seconds: float) -> None:
    """Keep verified keys this long (0: look every key up, every time). Only safe where
    every process that may revoke a key reaches this one (`follow_revocations`)."""
    global _known_seconds
    _known_seconds = seconds
    _forget()


def _forget(key_id: str | None = None) -> None:
    """Forget the key `key_id` (every key: None)."""
    global _forgotten
    _forgotten += 1
    for key_digest, known in tuple(_known.items()):
        if key_id is None or known.key_id == key_id:
            del _known[key_digest]


async def follow_revocations(runtime: Runtime, ready: asyncio.Event | None = None) -> None:
    """Forget keys revoked by any process; runs until cancelled."""
    async with runtime.events.subscribe(KEYS_TOPIC) as revocations:
        # Joining (again, after falling behind): whatever came before may be missed.
        _forget()
        if ready is not None:
            ready.set()
        async for revoked in revocations:
            if revoked.get("kind") == "missed":
                _forget()  # a revocation may be among what was missed
            elif revoked.get("kind") == "key_revoked":
                _forget(str(revoked.get("key_id")))


async def authenticate(*, token: str | None, source: str = "") -> Caller:
    """The caller a bearer token belongs to; one indexed lookup, no slow hash (none at
    all for a key verified within `remember_callers`' time).

    A failure writes nothing: it is counted, and the count logged later (`auth_failures`).
    """
    if not token:
        auth_failures.note(reason="no credentials", source=source)
        raise Unauthenticated("authentication required: send Authorization: Bearer <api key>")
    key_digest = digest(token)
    known = _known.get(key_digest)
    if known is not None and known.until > time.monotonic():
        return known.caller
    forgotten_before = _forgotten
    key = await ApiKey.get_or_none(key_digest=key_digest).select_related("user")
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
    caller = Caller(
        user_id=str(user.id), name=user.name, role=Role(user.role), credential=str(key.id)
    )
    if _known_seconds > 0 and _forgotten == forgotten_before:
        if len(_known) >= MAX_KNOWN_KEYS:
            _known.clear()
        _known[key_digest] = _Known(caller, str(key.id), time.monotonic() + _known_seconds)
    return caller
