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

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from db.errors import Forbidden, Invalid, NotFound, Unauthenticated
from db.identity import Caller, require_admin
from db.models import ApiKey, LogLevel, Role, User
from db.ports import EventBroker, Runtime
from db.services import auth_failures, logs
from db.services.ids import is_uuid
from db.services.keyset import SortKey, newest_first
from db.services.pagination import Slice, Window
from db.services.text import text_problem

logger = logging.getLogger(__name__)

KEY_SCHEME = "cgw_"
# The start of a key kept in clear so people can tell their keys apart.
PREFIX_CHARS = len(KEY_SCHEME) + 6
# Writing last_used_at on every request would turn each read into a write; a minute is enough.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_NAME_CHARS = 100
MAX_LABEL_CHARS = 100


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key as created: the only moment the plain secret exists."""

    key: ApiKey
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret() -> str:
    return KEY_SCHEME + secrets.token_urlsafe(32)


async def create(
    *, name: str, role: Role = Role.USER, caller: Caller | None = None
) -> tuple[User, IssuedKey]:
    """Create a user with a first API key (admins; no caller: the console, unaudited)."""
    if caller is not None:
        require_admin(caller, "create users")
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise Invalid(f"must be 1 to {MAX_NAME_CHARS} characters", field="name")
    if (problem := text_problem(name)) is not None:
        raise Invalid(problem, field="name")
    async with in_transaction():
        user = await User.create(name=name, role=role)
        issued = await _issue(user, "")
    # Only a caller's creation is audited: the console and the bootstrap create users
    # before anyone could read the log, and the tests' accounts would crowd it.
    if caller is not None:
        await logs.record(
            level=LogLevel.INFO,
            event="user.created",
            message=f"user {user.name} ({user.role}) created by {caller.name}",
            actor_id=caller.user_id,
            details={
                "user_id": str(user.id),
                "role": str(user.role),
                "key_id": str(issued.key.id),
                "prefix": issued.key.prefix,
            },
        )
    return user, issued


async def create_key(
    *,
    user_id: str,
    label: str = "",
    caller: Caller | None = None,
    max_active: int | None = None,
) -> IssuedKey:
    """Issue a key for `user_id` (a caller: their own, admins anyone's; no caller: the
    console), refused past `max_active` active keys of the user's (None: no cap)."""
    label = label.strip()
    if len(label) > MAX_LABEL_CHARS:
        raise Invalid(f"must be at most {MAX_LABEL_CHARS} characters", field="label")
    if (problem := text_problem(label)) is not None:
        raise Invalid(problem, field="label")
    if caller is not None and not caller.is_admin and caller.user_id != user_id:
        raise NotFound("user not found")  # like every object the caller may not see
    async with in_transaction():
        user = await _get_locked(user_id)  # two creations at once count each other
        if user.disabled_at is not None:
            raise Invalid("is disabled: its keys would not work", field="user_id")
        if caller is not None and not caller.is_admin and user.issuer is not None:
            # A key would outlive the identity provider's say over this user: their role
            # and their very access are read from each token, and a key reads neither.
            raise Forbidden(
                "users of an identity provider sign in with its tokens; "
                "an admin may issue a key (chat-gateway key create)",
                actor_id=caller.user_id,
            )
        if max_active is not None:
            active = await ApiKey.filter(user_id=user.id, revoked_at__isnull=True).count()
            if active >= max_active:
                raise Invalid(f"at most {max_active} active keys per user: revoke one first")
        issued = await _issue(user, label)
    await logs.record(
        level=LogLevel.INFO,
        event="key.created",
        message=f"API key {issued.key.prefix}… created for {user.name}",
        actor_id=caller.user_id if caller is not None else None,
        details={
            "key_id": str(issued.key.id),
            "user_id": str(user.id),
            "prefix": issued.key.prefix,
        },
    )
    return issued


async def _issue(user: User, label: str) -> IssuedKey:
    """A new key for `user`; the secret is returned once and never stored."""
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


def authorize_listing(*, caller: Caller) -> None:
    """Only admins list users; a door may ask before it reads their cursors."""
    require_admin(caller, "list users")


async def window(*, caller: Caller, page: Slice, after: SortKey | None = None) -> Window[User]:
    """Every user, newest first, after a keyset cursor (admins), for Relay connections."""
    authorize_listing(caller=caller)
    return await newest_first(User.all(), page=page, after=after)


async def count(*, caller: Caller | None = None) -> int:
    """How many users there are (a caller: admins only; no caller: the console)."""
    if caller is not None:
        authorize_listing(caller=caller)
    return await User.all().count()


async def list_keys(*, user_id: str | None = None) -> list[ApiKey]:
    query = ApiKey.all().order_by("created_at", "id")
    if user_id is not None:
        if not is_uuid(user_id):
            return []  # no user has such an id (and PostgreSQL would refuse the query)
        query = query.filter(user_id=user_id)
    return list(await query)


async def list_active_keys(*, caller: Caller, user_ids: Sequence[str]) -> list[ApiKey]:
    """The unrevoked keys of `user_ids` whose owner the caller may see (admins: anyone's,
    a user: their own), oldest first; a revoked key is history, kept for the CLI's list."""
    wanted = [u for u in user_ids if is_uuid(u) and (caller.is_admin or u == caller.user_id)]
    query = ApiKey.filter(user_id__in=wanted, revoked_at__isnull=True)
    return list(await query.order_by("created_at", "id"))


async def revoke_key(
    *, key_id_or_prefix: str, events: EventBroker | None = None, caller: Caller | None = None
) -> ApiKey:
    """Revoke a key by its id or by the prefix shown when it was created (a caller: their
    own, admins anyone's; no caller: the console); it stops working at once in this
    process and, told through `events`, in every other."""
    async with in_transaction():
        key = await _find_active(key_id_or_prefix, caller)
        await _mark_revoked(key)
    await _announce_revocation(key, events)
    await logs.record(
        level=LogLevel.INFO,
        event="key.revoked",
        message=f"API key {key.prefix}… revoked" + (f" by {caller.name}" if caller else ""),
        # The console acts for nobody in particular: the key's owner stands for it.
        actor_id=caller.user_id if caller is not None else str(key.user_id),
        details={"key_id": str(key.id), "user_id": str(key.user_id), "prefix": key.prefix},
    )
    return key


async def rotate_key(
    *, key_id_or_prefix: str, events: EventBroker | None = None
) -> tuple[ApiKey, IssuedKey]:
    """Replace a key (the console): the old one revoked as `revoke_key` does, and a new
    one for the same user with the same label, whose secret is returned once."""
    async with in_transaction():
        old = await _find_active(key_id_or_prefix, None)
        user = await User.get(id=old.user_id)
        if user.disabled_at is not None:
            raise Invalid("belongs to a disabled user", field="key_id_or_prefix")
        await _mark_revoked(old)
        issued = await _issue(user, old.label)
    await _announce_revocation(old, events)
    await logs.record(
        level=LogLevel.INFO,
        event="key.rotated",
        message=f"API key {old.prefix}… of {user.name} replaced by {issued.key.prefix}…",
        actor_id=str(old.user_id),
        details={
            "user_id": str(old.user_id),
            "revoked_key_id": str(old.id),
            "revoked_prefix": old.prefix,
            "key_id": str(issued.key.id),
            "prefix": issued.key.prefix,
        },
    )
    return old, issued


async def _find_active(key_id_or_prefix: str, caller: Caller | None) -> ApiKey:
    """The one unrevoked key with this id or prefix that `caller` may manage."""
    query = ApiKey.filter(revoked_at__isnull=True)
    if caller is not None and not caller.is_admin:
        # Another user's key is as unknown to the caller as a key that does not exist.
        query = query.filter(user_id=caller.user_id)
    matches: list[ApiKey] = []
    # Only well-formed values reach the database: PostgreSQL refuses a non-UUID id and
    # Tortoise refuses a filter value longer than the prefix column.
    if is_uuid(key_id_or_prefix):
        matches = list(await query.filter(id=key_id_or_prefix))
    if not matches and len(key_id_or_prefix) <= PREFIX_CHARS:
        matches = list(await query.filter(prefix=key_id_or_prefix))
    if len(matches) != 1:
        raise NotFound("no single active key matches" if matches else "active key not found")
    return matches[0]


async def _mark_revoked(key: ApiKey) -> None:
    """Revoke `key` unless someone else just did (then: not found, as for them)."""
    now = datetime.now(UTC)
    if not await ApiKey.filter(id=key.id, revoked_at__isnull=True).update(revoked_at=now):
        raise NotFound("active key not found")
    key.revoked_at = now


async def _announce_revocation(key: ApiKey, events: EventBroker | None) -> None:
    """Forget `key` here and, through `events`, in every process."""
    _forget(str(key.id))
    if events is None:
        return
    try:
        await events.publish(KEYS_TOPIC, {"kind": "key_revoked", "key_id": str(key.id)})
    except Exception as exc:
        # Revoked all the same; other processes forget it within their cache's time.
        logger.warning("could not announce the revocation of key %s: %s", key.id, exc)


async def update_role(
    *, user_id: str, role: Role, caller: Caller | None = None, events: EventBroker | None = None
) -> User:
    """Give a user another role (admins; no caller: the console); their keys carry it at
    once in every process. The last enabled admin keeps the role."""
    if caller is not None:
        require_admin(caller, "change roles")
    async with in_transaction():
        user, other_admins = await _lock_with_admins(user_id)
        before = Role(user.role)
        if before is role:
            return user
        if before is Role.ADMIN and user.disabled_at is None and not other_admins:
            raise Invalid("the last enabled admin must stay one", field="role")
        user.role = role
        await user.save(update_fields=["role"])
    await _announce_change(user, events)
    await logs.record(
        level=LogLevel.INFO,
        event="user.role_changed",
        message=f"user {user.name} made {role} (was {before})"
        + (f" by {caller.name}" if caller else ""),
        actor_id=caller.user_id if caller is not None else None,
        details={"user_id": str(user.id), "from": str(before), "to": str(role)},
    )
    return user


async def disable(
    *, user_id: str, caller: Caller | None = None, events: EventBroker | None = None
) -> User:
    """Disable a user (admins; no caller: the console): every key of theirs stops working
    at once in every process; their data stays. Nobody disables themselves, nor the last
    enabled admin; disabling a disabled user changes nothing."""
    if caller is not None:
        require_admin(caller, "disable users")
    async with in_transaction():
        user, other_admins = await _lock_with_admins(user_id)
        if caller is not None and str(user.id) == caller.user_id:
            raise Invalid("you cannot disable yourself", field="id")
        if user.disabled_at is not None:
            return user
        if Role(user.role) is Role.ADMIN and not other_admins:
            raise Invalid("the last enabled admin must stay one", field="id")
        user.disabled_at = datetime.now(UTC)
        await user.save(update_fields=["disabled_at"])
    await _announce_change(user, events)
    await logs.record(
        level=LogLevel.INFO,
        event="user.disabled",
        message=f"user {user.name} disabled" + (f" by {caller.name}" if caller else ""),
        actor_id=caller.user_id if caller is not None else None,
        details={"user_id": str(user.id), "role": str(user.role)},
    )
    return user


async def _get_locked(user_id: str) -> User:
    """The user `user_id`, its row locked to the end of the transaction (PostgreSQL)."""
    query = User.filter(id=user_id).select_for_update() if is_uuid(user_id) else None
    user = await query.first() if query is not None else None
    if user is None:
        raise NotFound("user not found")
    return user


async def _lock_with_admins(user_id: str) -> tuple[User, list[User]]:
    """The user `user_id` and the other enabled admins, their rows locked to the end of
    the transaction (PostgreSQL), so two admins demoting or disabling each other at once
    cannot both see the other still there. All are locked in one statement, in id order:
    two such transactions never hold each other's rows (no deadlock)."""
    if not is_uuid(user_id):
        raise NotFound("user not found")
    rows = await (
        User.filter(Q(id=user_id) | Q(role=Role.ADMIN, disabled_at__isnull=True))
        .order_by("id")
        .select_for_update()
    )
    user = next((row for row in rows if str(row.id) == user_id.lower()), None)
    if user is None:
        raise NotFound("user not found")
    return user, [row for row in rows if row is not user and Role(row.role) is Role.ADMIN]


async def _announce_change(user: User, events: EventBroker | None) -> None:
    """Forget the user's verified keys here and, through `events`, in every process."""
    _forget_user(str(user.id))
    if events is None:
        return
    try:
        await events.publish(KEYS_TOPIC, {"kind": "user_changed", "user_id": str(user.id)})
    except Exception as exc:
        # Changed all the same; other processes forget its keys within their cache's time.
        logger.warning("could not announce the change of user %s: %s", user.id, exc)


@dataclass(frozen=True, slots=True)
class _Known:
    caller: Caller
    key_id: str
    until: float  # time.monotonic()


# Keys verified lately, by digest: a request with one costs no round trip. An entry goes
# when its key is revoked (here at once, elsewhere through the broker) or after the TTL.
# The user's name and role are kept with it: a change of role or a disabling forgets the
# user's keys as a revocation does ("user_changed"); whatever else comes to change them
# must do the same.
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


def _forget(key_id: str | None = None, *, user_id: str | None = None) -> None:
    """Forget the key `key_id`, or every key of `user_id` (neither: every key)."""
    global _forgotten
    _forgotten += 1
    for key_digest, known in tuple(_known.items()):
        if key_id is not None and known.key_id != key_id:
            continue
        if user_id is not None and known.caller.user_id != user_id:
            continue
        del _known[key_digest]


def _forget_user(user_id: str | None) -> None:
    """Forget what this process keeps of `user_id` (everyone: None): their verified keys
    and their identity provider's sign-ins."""
    # Imported here: identities imports this module.
    from db.services import identities

    if user_id is not None:
        _forget(user_id=user_id)
    identities.forget(user_id)


async def follow_revocations(runtime: Runtime, ready: asyncio.Event | None = None) -> None:
    """Forget keys revoked, and the keys of users changed, by any process; runs until
    cancelled."""
    async with runtime.events.subscribe(KEYS_TOPIC) as revocations:
        # Joining (again, after falling behind): whatever came before may be missed.
        _forget()
        if ready is not None:
            ready.set()
        async for revoked in revocations:
            if revoked.get("kind") == "missed":
                _forget()  # a revocation may be among what was missed
                _forget_user(None)  # and so may a change of user
            elif revoked.get("kind") == "key_revoked":
                _forget(str(revoked.get("key_id")))
            elif revoked.get("kind") == "user_changed":
                _forget_user(str(revoked.get("user_id")))


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
    if key.user.disabled_at is not None:
        auth_failures.note(reason="disabled user", source=source, actor_id=str(key.user_id))
        raise Unauthenticated("user is disabled")
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
