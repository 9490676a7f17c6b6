"""`usage`: the replies asked of models, added up per user, config and day, against known
traffic (tests/usage_traffic.py) and rows written at chosen times."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.factories import Account
from tests.providers import FlakyProvider
from tests.schema.gql import fails, ok
from tests.usage_traffic import Traffic, clear_usage, make_traffic, mean, record_usage

USAGE = """
query($start: DateTime, $end: DateTime, $user: ID, $config: ID, $groups: [UsageGroup!]) {
  usage(startTime: $start, endTime: $end, userId: $user, modelConfigId: $config,
        groupBy: $groups) {
    user { id name } modelConfig { id modelName } day
    replies failedReplies promptTokens completionTokens averageLatencyMs
  }
}"""
DEFAULT_GROUPS = "{ usage { user { id } modelConfig { id } day replies failedReplies } }"


@pytest.fixture(autouse=True)
async def no_usage_yet(app: Any) -> AsyncIterator[None]:
    await clear_usage()
    yield


@pytest.fixture
async def traffic(
    client: httpx.AsyncClient, flaky: FlakyProvider, alice: Account, bob: Account, admin: Account
) -> Traffic:
    return await make_traffic(client, flaky, alice, bob, admin)


async def usage(client: httpx.AsyncClient, who: Account, **variables: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await ok(client, USAGE, who, variables))["usage"]
    return rows


def counts(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return (row["replies"], row["failedReplies"], row["promptTokens"], row["completionTokens"])


async def test_usage_per_user_adds_up_every_reply_of_the_known_traffic(
    client: httpx.AsyncClient, traffic: Traffic, alice: Account, bob: Account, admin: Account
) -> None:
    rows = await usage(client, admin, groups=["USER"])

    expected = {
        alice.user_id: traffic.by_user[alice.user_id],
        bob.user_id: traffic.by_user[bob.user_id],
    }
    assert [row["user"]["id"] for row in rows] == sorted(expected)  # by user id
    for row in rows:
        figures = expected[row["user"]["id"]]
        assert counts(row) == figures.counts()
        assert row["averageLatencyMs"] == pytest.approx(mean(figures.latencies))
        assert (row["modelConfig"], row["day"]) == (None, None)
    by_name = {row["user"]["name"]: counts(row) for row in rows}
    # Alice: 3 echo + 1 flaky + 1 cancelled replies, 2 failed; Bob: 2 (one sent by an admin).
    assert (by_name["alice"][:2], by_name["bob"][:2]) == ((5, 2), (2, 0))
    # The echo model counts about four characters a token: "hello" is 2 prompt tokens
    # alone, and "Echo: hello" 3 completion tokens; every figure is above it.
    assert by_name["bob"][2] >= 2 and by_name["bob"][3] >= 3


async def test_usage_per_config_counts_failed_and_cancelled_replies_apart(
    client: httpx.AsyncClient, traffic: Traffic, admin: Account
) -> None:
    rows = await usage(client, admin, groups=["MODEL_CONFIG"])

    found = {row["modelConfig"]["id"]: row for row in rows}
    assert list(found) == sorted(traffic.by_config)
    for config_id, figures in traffic.by_config.items():
        assert counts(found[config_id]) == figures.counts()
        assert found[config_id]["user"] is None
    assert counts(found[traffic.flaky_id])[:2] == (1, 2)  # failures are not replies
    # The stopped reply is a reply, stored with what was said; its provider reported
    # no usage before it was stopped.
    assert counts(found[traffic.slow_id]) == (1, 0, 0, 0)
    assert found[traffic.slow_id]["averageLatencyMs"] == pytest.approx(
        traffic.cancelled and traffic.cancelled["metadata"]["latency_ms"]
    )
    assert found[traffic.slow_id]["modelConfig"]["modelName"] == "usage-slow"


async def test_groups_combine_and_every_reply_lands_in_todays_utc_row(
    client: httpx.AsyncClient, traffic: Traffic, admin: Account
) -> None:
    before = datetime.now(UTC).date().isoformat()
    rows = await usage(client, admin, groups=["DAY", "MODEL_CONFIG", "USER"])
    after = datetime.now(UTC).date().isoformat()

    assert {row["day"] for row in rows} <= {before, after}
    keys = [(row["day"], row["user"]["id"], row["modelConfig"]["id"]) for row in rows]
    assert keys == sorted(keys)  # by day, then user, then config
    pairs: dict[tuple[str, str], tuple[int, ...]] = {}
    for (_, user_id, config_id), row in zip(keys, rows, strict=True):
        earlier = pairs.get((user_id, config_id), (0, 0, 0, 0))  # before midnight, if any
        pairs[user_id, config_id] = tuple(a + b for a, b in zip(earlier, counts(row), strict=True))
    assert pairs == {pair: figures.counts() for pair, figures in traffic.by_pair.items()}
    assert len(pairs) == 4  # alice x 3 configs, bob x echo


async def test_users_see_their_own_usage_and_admins_anyones(
    client: httpx.AsyncClient, traffic: Traffic, alice: Account, bob: Account, admin: Account
) -> None:
    own = await usage(client, bob)
    named = await usage(client, bob, user=bob.user_id)
    for_admin = await usage(client, admin, user=bob.user_id)
    everyone = await usage(client, admin)
    admins_own = await usage(client, admin, user=admin.user_id)

    assert own == named == for_admin
    assert [(row["user"]["id"], counts(row)) for row in own] == [
        (bob.user_id, traffic.by_user[bob.user_id].counts())
    ]
    assert {row["user"]["id"] for row in everyone} == {alice.user_id, bob.user_id}
    assert admins_own == []  # the admin's send for Bob is Bob's usage
    # A user's report grouped by config is still their own.
    configs = await usage(client, bob, groups=["MODEL_CONFIG"])
    assert [(row["modelConfig"]["id"], row["replies"]) for row in configs] == [(traffic.echo_id, 2)]
    error = await fails(client, USAGE, bob, {"user": alice.user_id}, code="FORBIDDEN")
    assert error["path"] == ["usage"]


async def test_default_groups_are_per_user_and_an_empty_list_is_one_row_of_totals(
    client: httpx.AsyncClient, traffic: Traffic, alice: Account, admin: Account
) -> None:
    default = (await ok(client, DEFAULT_GROUPS, admin))["usage"]
    totals = await usage(client, admin, groups=[])
    alices_totals = await usage(client, alice, groups=[])
    nothing = await usage(
        client, admin, groups=[], start="2001-01-01T00:00:00+00:00", end="2001-01-02T00:00:00+00:00"
    )
    explicit_null = await usage(client, admin, groups=None)

    assert [row["user"]["id"] for row in default] == sorted(traffic.by_user)
    assert [(row["modelConfig"], row["day"]) for row in default] == [(None, None)] * 2
    assert [{key: row[key] for key in ("user", "modelConfig", "day")} for row in totals] == [
        {"user": None, "modelConfig": None, "day": None}
    ]
    assert counts(totals[0]) == tuple(
        sum(figures.counts()[index] for figures in traffic.by_user.values()) for index in range(4)
    )
    assert counts(alices_totals[0]) == traffic.by_user[alice.user_id].counts()
    assert [(counts(row), row["averageLatencyMs"]) for row in nothing] == [((0, 0, 0, 0), None)]
    assert [row["user"]["id"] for row in explicit_null] == sorted(traffic.by_user)


DAY_1, DAY_2, DAY_3 = "2020-03-01", "2020-03-02", "2020-03-03"


async def test_days_are_utc_dates_and_times_bound_the_report(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    config = str(uuid.uuid4())
    at = datetime.fromisoformat
    await record_usage(at("2020-03-01T00:00:00+00:00"), alice.user_id, config, prompt=1, latency=10)
    await record_usage(
        at("2020-03-01T23:59:59.999999+00:00"), alice.user_id, config, prompt=2, latency=20
    )
    await record_usage(at("2020-03-01T12:00:00+00:00"), bob.user_id, config, completion=5)
    await record_usage(at("2020-03-02T00:00:00+00:00"), alice.user_id, config, prompt=4)
    await record_usage(
        at("2020-03-02T18:30:00+00:00"), alice.user_id, config, failed=True, latency=99
    )
    await record_usage(at("2020-03-03T00:00:00+00:00"), alice.user_id, config, prompt=100)

    window = {"start": f"{DAY_1}T00:00:00+00:00", "end": f"{DAY_3}T00:00:00+00:00"}
    rows = await usage(client, admin, groups=["USER", "DAY"], **window)
    # The same window named in another offset: 01:00 at +01:00 is midnight UTC.
    shifted = await usage(
        client,
        admin,
        groups=["DAY", "USER"],
        start=f"{DAY_1}T01:00:00+01:00",
        end=f"{DAY_3}T01:00:00+01:00",
    )
    days = await usage(client, alice, groups=["DAY"])
    from_the_second = await usage(client, alice, groups=["DAY"], start=f"{DAY_2}T00:00:00Z")
    before_the_second = await usage(client, alice, groups=["DAY"], end=f"{DAY_2}T00:00:00")

    def shown(found: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (row["day"], row["user"]["id"], *counts(row), row["averageLatencyMs"]) for row in found
        ]

    expected = [
        (DAY_1, alice.user_id, 2, 0, 3, 0, 15.0),
        (DAY_1, bob.user_id, 1, 0, 0, 5, None),
        (DAY_2, alice.user_id, 1, 1, 4, 0, None),  # a failure's latency is not a reply's
    ]
    assert shown(rows) == sorted(expected, key=lambda row: row[:2])  # by day, then user
    assert shown(shifted) == shown(rows)
    assert [(row["day"], counts(row)) for row in days] == [
        (DAY_1, (2, 0, 3, 0)),
        (DAY_2, (1, 1, 4, 0)),
        (DAY_3, (1, 0, 100, 0)),
    ]
    assert [row["day"] for row in from_the_second] == [DAY_2, DAY_3]  # start inclusive
    assert [row["day"] for row in before_the_second] == [DAY_1]  # end exclusive, UTC if no offset


async def test_a_user_or_config_that_no_longer_exists_is_null(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    gone_user, gone_config = str(uuid.uuid4()), str(uuid.uuid4())
    await record_usage(datetime.now(UTC), gone_user, gone_config, prompt=7)

    [row] = await usage(client, admin, groups=["USER", "MODEL_CONFIG"])
    by_config = await usage(client, admin, config=gone_config, groups=["MODEL_CONFIG"])

    assert (row["user"], row["modelConfig"], counts(row)) == (None, None, (1, 0, 7, 0))
    assert [(r["modelConfig"], r["promptTokens"]) for r in by_config] == [(None, 7)]


async def test_bad_filters(client: httpx.AsyncClient, alice: Account, admin: Account) -> None:
    error = await fails(
        client,
        USAGE,
        alice,
        {"start": "2020-03-02T00:00:00+00:00", "end": "2020-03-01T00:00:00+00:00"},
        code="BAD_USER_INPUT",
    )
    assert error["extensions"]["field"] == "startTime"
    unknown = await fails(client, USAGE, alice, {"groups": ["WEEK"]}, code="BAD_USER_INPUT")
    assert "WEEK" in unknown["message"]
    # Ids no row can hold match nothing.
    assert await usage(client, admin, user="not-a-uuid") == []
    assert await usage(client, alice, config="not-a-uuid") == []
