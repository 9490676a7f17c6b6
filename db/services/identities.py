"""Users who sign in through an identity provider: found, or created, by (issuer, subject).

The gateway verifies the provider's token and hands over its claims; the rules of who that
is live here. The provider is the source of truth for such a user's name and role: each
sign-in whose token says otherwise than the stored row updates it (and logs a role
change), so a role is granted or withdrawn where the organisation manages its people.
Only what a token says counts: a token without a storable name claim keeps the stored
name, and one without the role claim (absent or null) keeps the stored role, so a
provider that puts a claim in some tokens only (an ID token but not an access token, say)
does not rename a user to their subject or demote an admin on every other request. A
role claim that is present but does not hold `admin` makes a user. The first sign-in
names the user by the subject and makes a user when the token says nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from db.errors import Unauthenticated
from db.identity import Caller
from db.models import LogLevel, Role, User
from db.services import auth_failures, logs
from db.services.text import text_problem
from db.services.users import MAX_NAME_CHARS

logger = logging.getLogger(__name__)

# The width of the users.issuer and users.subject columns.
MAX_CLAIM_CHARS = 255
# The name of a user whose token names no one storable (nor has a storable subject).
FALLBACK_NAME = "user"
ADMIN_ROLE = "admin"
MAX_KNOWN = 10_000


@dataclass(frozen=True, slots=True)
class _Known:
    caller: Caller
    until: float  # time.monotonic()


# Signed-in subjects seen lately, by (issuer, subject): a request costs no round trip while
# its token says the same name and role. A user changed elsewhere (disabled, role set by an
# admin) must be forgotten (`forget`) by whoever changes it, in every process.
_known: dict[tuple[str, str], _Known] = {}
_known_seconds = 0.0
# Bumped by every forgetting: a lookup that ran across one does not keep what it read.
_forgotten = 0


def remember_callers(seconds: float) -> None:
    """Keep signed-in callers this long (0: look the user up on every request)."""
    global _known_seconds
    _known_seconds = seconds
    forget()


def forget(user_id: str | None = None) -> None:
    """Drop what is kept of `user_id` (everyone: None); call it whenever a user changes."""
    global _forgotten
    _forgotten += 1
    if user_id is None:
        _known.clear()
        return
    for subject, known in tuple(_known.items()):
        if known.caller.user_id == user_id:
            del _known[subject]


def role_of(claim: object) -> Role:
    """`admin` (or a list of roles holding it) makes an admin; anything else, or nothing, a user."""
    if claim == ADMIN_ROLE:
        return Role.ADMIN
    if isinstance(claim, Sequence) and not isinstance(claim, str) and ADMIN_ROLE in claim:
        return Role.ADMIN
    return Role.USER


def claimed_role(claim: object) -> Role | None:
    """The role a token's role claim gives (`role_of`); None when it has none to say."""
    return None if claim is None else role_of(claim)


def claimed_name(claim: object) -> str | None:
    """The name claim as users.create would store it, trimmed to fit; None if unstorable."""
    if isinstance(claim, str):
        name = claim.strip()[:MAX_NAME_CHARS].strip()
        if name and text_problem(name) is None:
            return name
    return None


def name_of(claim: object, *, subject: str) -> str:
    """The name of a new user: the name claim, else the subject, trimmed to fit."""
    return claimed_name(claim) or claimed_name(subject) or FALLBACK_NAME


async def sign_in(
    *, issuer: str, subject: str, name: object, role: object, source: str = ""
) -> Caller:
    """The caller of a verified token: its user, created on first sign-in, updated when
    the token's name or role claim differ (an absent claim changes nothing, see the
    module's note); a disabled user is refused (`Unauthenticated`)."""
    for claim, value in (("iss", issuer), ("sub", subject)):
        if not value or len(value) > MAX_CLAIM_CHARS or text_problem(value) is not None:
            auth_failures.note(reason=f"token {claim} claim unusable", source=source)
            raise Unauthenticated(f"token {claim} claim must be 1 to {MAX_CLAIM_CHARS} characters")
    wanted_name, wanted_role = claimed_name(name), claimed_role(role)
    known = _known.get((issuer, subject))
    if (
        known is not None
        and known.until > time.monotonic()
        and wanted_name in (None, known.caller.name)
        and wanted_role in (None, known.caller.role)
    ):
        return known.caller
    forgotten_before = _forgotten
    user = await find_or_create(
        issuer=issuer,
        subject=subject,
        name=wanted_name,
        role=wanted_role,
        new_name=name_of(name, subject=subject),
    )
    if user.disabled_at is not None:
        auth_failures.note(reason="disabled user (token)", source=source, actor_id=str(user.id))
        raise Unauthenticated("user is disabled")
    caller = Caller(
        user_id=str(user.id), name=user.name, role=Role(user.role), credential=f"jwt:{user.id}"
    )
    if _known_seconds > 0 and _forgotten == forgotten_before:
        if len(_known) >= MAX_KNOWN:
            _known.clear()
        _known[(issuer, subject)] = _Known(caller, time.monotonic() + _known_seconds)
    return caller


async def find_or_create(
    *,
    issuer: str,
    subject: str,
    name: str | None,
    role: Role | None,
    new_name: str = FALLBACK_NAME,
) -> User:
    """The user of (issuer, subject), created if there is none, with `name` and `role`
    stored; None keeps what is stored (a new user: `new_name`, a user). A disabled user is
    returned unchanged. Two first sign-ins at once create one user: the loser of the
    unique index reads the winner's row."""
    user = await User.get_or_none(issuer=issuer, subject=subject)
    if user is None:
        name = new_name if name is None else name
        role = Role.USER if role is None else role
        try:
            user = await User.create(issuer=issuer, subject=subject, name=name, role=role)
        except IntegrityError:
            user = await User.get_or_none(issuer=issuer, subject=subject)
            if user is None:  # not the unique index after all
                raise
        else:
            await logs.record(
                level=LogLevel.INFO,
                event="user.created",
                message=f"user {name} ({role}) created at first sign-in",
                actor_id=str(user.id),
                details={"user_id": str(user.id), "role": str(role), "issuer": issuer},
            )
            return user
    stored = (user.name, Role(user.role))
    wanted = (stored[0] if name is None else name, stored[1] if role is None else role)
    if user.disabled_at is None and wanted != stored:
        await _update(user, name=wanted[0], role=wanted[1])
    return user


async def _update(user: User, *, name: str, role: Role) -> None:
    """Store the token's name and role; a role change is an admin change, so it is logged."""
    before = Role(user.role)
    await User.filter(id=user.id).update(name=name, role=role)
    user.name, user.role = name, role
    if before is not role:
        await logs.record(
            level=LogLevel.INFO,
            event="user.role_changed",
            message=f"user {name} is now {role} (identity provider)",
            actor_id=str(user.id),
            details={"user_id": str(user.id), "from": str(before), "to": str(role)},
        )
