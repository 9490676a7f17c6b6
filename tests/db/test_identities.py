"""Users of an identity provider (`identities`): found or created by (issuer, subject), named
and given a role by the token, refused when disabled, kept a while without a lookup."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette

from db.errors import Unauthenticated
from db.models import LogEntry, Role, User
from db.services import identities
from tests.schema.statements import counted

ISSUER = "https://idp.example.test/"


@pytest.fixture
def remembered() -> Iterator[None]:
    identities.remember_callers(60)
    yield
    identities.remember_callers(0)


async def test_the_first_sign_in_creates_the_user_and_the_next_finds_it(app: Starlette) -> None:
    first = await identities.sign_in(issuer=ISSUER, subject="s1", name="Ann", role=None)
    again = await identities.sign_in(issuer=ISSUER, subject="s1", name="Ann", role=None)

    assert first == again
    assert (first.name, first.role, first.credential) == ("Ann", Role.USER, f"jwt:{first.user_id}")
    user = await User.get(id=first.user_id)
    assert (user.issuer, user.subject) == (ISSUER, "s1")
    created = await LogEntry.filter(event="user.created").values_list("actor_id", flat=True)
    assert [str(actor) for actor in created] == [first.user_id]


async def test_the_same_subject_of_another_issuer_is_another_user(app: Starlette) -> None:
    one = await identities.sign_in(issuer=ISSUER, subject="s", name="A", role=None)
    other = await identities.sign_in(issuer="https://other.test/", subject="s", name="A", role=None)

    assert one.user_id != other.user_id


async def test_two_first_sign_ins_at_once_create_one_user(app: Starlette) -> None:
    callers = await asyncio.gather(
        *(identities.sign_in(issuer=ISSUER, subject="race", name="R", role=None) for _ in range(8))
    )

    assert len({caller.user_id for caller in callers}) == 1
    assert await User.filter(issuer=ISSUER, subject="race").count() == 1


async def test_a_lost_race_reads_the_winners_row(app: Starlette) -> None:
    winner = await User.create(issuer=ISSUER, subject="late", name="W", role=Role.USER)

    # As if the winner's insert landed between this sign-in's read and its insert.
    found = await identities.find_or_create(issuer=ISSUER, subject="late", name="W", role=Role.USER)
    assert found.id == winner.id
    original = User.get_or_none
    calls = 0

    def first_read_misses(**where: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            return User.filter(id=None).first()  # nothing
        return original(**where)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(User, "get_or_none", first_read_misses)
        raced = await identities.find_or_create(
            issuer=ISSUER, subject="late", name="W", role=Role.USER
        )

    assert raced.id == winner.id and calls == 2


@pytest.mark.parametrize(
    ("claim", "subject", "expected"),
    [
        ("  Ann  ", "s", "Ann"),
        ("x" * 150, "s", "x" * 100),
        (None, "sub-as-name", "sub-as-name"),
        ("", "sub-as-name", "sub-as-name"),
        (42, "sub-as-name", "sub-as-name"),
        ("bad\x00name", "sub-as-name", "sub-as-name"),
        ("   ", "\x00", identities.FALLBACK_NAME),
    ],
)
def test_the_name_follows_the_text_rules_of_users(
    claim: object, subject: str, expected: str
) -> None:
    assert identities.name_of(claim, subject=subject) == expected


@pytest.mark.parametrize(
    ("claim", "expected"),
    [
        ("admin", Role.ADMIN),
        (["user", "admin"], Role.ADMIN),
        ("Admin", Role.USER),
        ("user", Role.USER),
        (None, Role.USER),
        ("administrator", Role.USER),
        ({"admin": True}, Role.USER),
    ],
)
def test_only_the_value_admin_makes_an_admin(claim: object, expected: Role) -> None:
    assert identities.role_of(claim) is expected


async def test_the_token_updates_the_stored_name_and_role(app: Starlette) -> None:
    before = await identities.sign_in(issuer=ISSUER, subject="p", name="Pat", role="admin")
    after = await identities.sign_in(issuer=ISSUER, subject="p", name="Pat Smith", role="user")

    assert (before.role, after.role, after.name) == (Role.ADMIN, Role.USER, "Pat Smith")
    user = await User.get(id=after.user_id)
    assert (user.name, user.role) == ("Pat Smith", Role.USER)
    changes = await LogEntry.filter(event="user.role_changed").count()
    assert changes == 1


@pytest.mark.parametrize("name", [None, "", "   ", 42, "bad\x00name"])
async def test_a_token_without_a_storable_name_or_a_role_claim_keeps_the_stored_ones(
    app: Starlette, name: object
) -> None:
    first = await identities.sign_in(issuer=ISSUER, subject="q", name="Quinn", role="admin")
    entries = await LogEntry.all().count()

    again = await identities.sign_in(issuer=ISSUER, subject="q", name=name, role=None)

    assert (again.user_id, again.name, again.role) == (first.user_id, "Quinn", Role.ADMIN)
    user = await User.get(id=first.user_id)
    assert (user.name, user.role) == ("Quinn", Role.ADMIN)
    assert await LogEntry.all().count() == entries  # no role change logged
    # A role claim that is there and says something else still demotes.
    demoted = await identities.sign_in(issuer=ISSUER, subject="q", name=None, role="viewer")
    assert (demoted.name, demoted.role) == ("Quinn", Role.USER)


async def test_a_first_token_without_claims_names_the_user_by_subject(app: Starlette) -> None:
    caller = await identities.sign_in(issuer=ISSUER, subject="nameless", name=None, role=None)

    assert (caller.name, caller.role) == ("nameless", Role.USER)


async def test_a_disabled_user_is_refused_and_left_unchanged(app: Starlette) -> None:
    caller = await identities.sign_in(issuer=ISSUER, subject="d", name="Dee", role=None)
    await User.filter(id=caller.user_id).update(disabled_at=datetime.now(UTC))
    entries = await LogEntry.all().count()

    with pytest.raises(Unauthenticated, match="disabled"):
        await identities.sign_in(issuer=ISSUER, subject="d", name="Renamed", role="admin")

    user = await User.get(id=caller.user_id)
    assert (user.name, user.role) == ("Dee", Role.USER)
    assert await LogEntry.all().count() == entries  # a failure writes nothing


@pytest.mark.parametrize(("issuer", "subject"), [("", "s"), (ISSUER, ""), (ISSUER, "s" * 256)])
async def test_unusable_issuer_or_subject_is_refused(
    app: Starlette, issuer: str, subject: str
) -> None:
    with pytest.raises(Unauthenticated, match="claim must be 1 to 255 characters"):
        await identities.sign_in(issuer=issuer, subject=subject, name=None, role=None)


async def test_a_remembered_subject_costs_no_statement_until_forgotten(
    app: Starlette, remembered: None, caplog: pytest.LogCaptureFixture
) -> None:
    first = await identities.sign_in(issuer=ISSUER, subject="k", name="Kim", role=None)

    async with counted(caplog) as statements:
        again = await identities.sign_in(issuer=ISSUER, subject="k", name="Kim", role=None)
    assert again == first and statements == []

    # A disabled user must be forgotten by whoever disables it: then it is refused at once.
    await User.filter(id=first.user_id).update(disabled_at=datetime.now(UTC))
    identities.forget(first.user_id)
    with pytest.raises(Unauthenticated):
        await identities.sign_in(issuer=ISSUER, subject="k", name="Kim", role=None)


async def test_a_remembered_subject_whose_token_says_otherwise_is_looked_up(
    app: Starlette, remembered: None
) -> None:
    await identities.sign_in(issuer=ISSUER, subject="k", name="Kim", role=None)

    promoted = await identities.sign_in(issuer=ISSUER, subject="k", name="Kim", role="admin")

    assert promoted.role is Role.ADMIN
    assert (await User.get(issuer=ISSUER, subject="k")).role == Role.ADMIN


async def test_a_remembered_subject_whose_token_omits_claims_costs_no_statement(
    app: Starlette, remembered: None, caplog: pytest.LogCaptureFixture
) -> None:
    first = await identities.sign_in(issuer=ISSUER, subject="m", name="Max", role="admin")

    async with counted(caplog) as statements:
        again = await identities.sign_in(issuer=ISSUER, subject="m", name=None, role=None)
    assert again == first and statements == []
