"""GET /usage: the same report as GraphQL's `usage`, in the REST door's names."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.factories import Account
from tests.providers import FlakyProvider
from tests.rest.expect import ok, refused, url
from tests.rest.openapi_check import fetch_document
from tests.schema.gql import ok as graphql_ok
from tests.usage_traffic import Traffic, clear_usage, counts_of, make_traffic, record_usage

USAGE = """
query($start: DateTime, $end: DateTime, $user: ID, $config: ID, $groups: [UsageGroup!]) {
  usage(startTime: $start, endTime: $end, userId: $user, modelConfigId: $config,
        groupBy: $groups) {
    user { id } modelConfig { id } day
    replies failedReplies promptTokens completionTokens averageLatencyMs
  }
}"""
REST_GROUPS = {"USER": "user", "MODEL_CONFIG": "config", "DAY": "day"}
OLD = "2020-03-01T10:00:00+00:00"


@pytest.fixture(autouse=True)
async def no_usage_yet(app: Any) -> AsyncIterator[None]:
    await clear_usage()
    yield


@pytest.fixture
async def traffic(
    client: httpx.AsyncClient, flaky: FlakyProvider, alice: Account, bob: Account, admin: Account
) -> Traffic:
    made = await make_traffic(client, flaky, alice, bob, admin)
    # And older days, for the time filters.
    at = datetime.fromisoformat(OLD)
    await record_usage(at, alice.user_id, made.echo_id, prompt=3, completion=4, latency=5.5)
    await record_usage(at, bob.user_id, made.flaky_id, failed=True, latency=7)
    return made


async def rest_usage(
    client: httpx.AsyncClient, who: Account, **params: str
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok(
        await client.get(url("/usage"), params=params, headers=who.headers)
    )["usage"]
    return rows


def as_rest(row: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL row in the REST door's names."""
    return {
        "user_id": row["user"] and row["user"]["id"],
        "config_id": row["modelConfig"] and row["modelConfig"]["id"],
        "day": row["day"],
        "replies": row["replies"],
        "failed_replies": row["failedReplies"],
        "prompt_tokens": row["promptTokens"],
        "completion_tokens": row["completionTokens"],
        "average_latency_ms": row["averageLatencyMs"],
    }


CASES = [
    ("alice", {}, None),
    ("admin", {}, None),
    ("admin", {}, ["USER", "MODEL_CONFIG", "DAY"]),
    ("admin", {"end": "2021-01-01T00:00:00+00:00"}, ["DAY", "USER"]),
    ("admin", {"start": "2021-01-01T00:00:00Z"}, ["MODEL_CONFIG"]),
    ("admin", {"user": "bob"}, ["DAY"]),
    ("bob", {"config": "echo"}, ["USER", "MODEL_CONFIG"]),
    ("alice", {}, []),
]


@pytest.mark.parametrize(("who", "filters", "groups"), CASES)
async def test_rest_and_graphql_give_the_same_report(
    client: httpx.AsyncClient,
    traffic: Traffic,
    alice: Account,
    bob: Account,
    admin: Account,
    who: str,
    filters: dict[str, str],
    groups: list[str] | None,
) -> None:
    account = {"alice": alice, "bob": bob, "admin": admin}[who]
    variables: dict[str, Any] = {"start": filters.get("start"), "end": filters.get("end")}
    params = {
        name: value
        for name, value in (("start_time", filters.get("start")), ("end_time", filters.get("end")))
        if value is not None
    }
    if "user" in filters:
        variables["user"] = params["user_id"] = bob.user_id
    if "config" in filters:
        variables["config"] = params["config_id"] = traffic.echo_id
    if groups is not None:
        variables["groups"] = groups
        params["group_by"] = ",".join(REST_GROUPS[group] for group in groups)

    by_graphql = (await graphql_ok(client, USAGE, account, variables))["usage"]
    by_rest = await rest_usage(client, account, **params)

    assert by_rest == [as_rest(row) for row in by_graphql]
    assert by_rest  # every case has something to show


async def test_rows_in_rest_names(
    client: httpx.AsyncClient, traffic: Traffic, alice: Account, bob: Account, admin: Account
) -> None:
    per_user = await rest_usage(client, admin, start_time="2021-01-01T00:00:00+00:00")
    old_days = await rest_usage(client, admin, group_by="day, config", end_time=OLD[:10])
    old = await rest_usage(client, admin, group_by="user,day", end_time="2021-01-01T00:00:00")

    assert [(row["user_id"], counts_of(row)) for row in per_user] == [
        (user_id, traffic.by_user[user_id].counts()) for user_id in sorted(traffic.by_user)
    ]
    assert old_days == []  # the end is exclusive: midnight before the old rows
    assert sorted((row["user_id"], row["day"], counts_of(row)) for row in old) == sorted(
        [
            (alice.user_id, OLD[:10], (1, 0, 3, 4)),
            (bob.user_id, OLD[:10], (0, 1, 0, 0)),
        ]
    )
    assert {row["user_id"]: row["average_latency_ms"] for row in old} == {
        alice.user_id: 5.5,
        bob.user_id: None,  # failures have no reply latency
    }
    assert set(old[0]) == {
        "user_id",
        "config_id",
        "day",
        "replies",
        "failed_replies",
        "prompt_tokens",
        "completion_tokens",
        "average_latency_ms",
    }


async def test_times_are_read_as_the_other_routes_read_them(
    client: httpx.AsyncClient, traffic: Traffic, admin: Account
) -> None:
    # An unencoded `+` arrives as a space; 10:00+00:00 is the old rows' time (inclusive).
    spaced = "/usage?group_by=&start_time=2020-03-01T10:00:00+00:00&end_time=2020-03-01T11:00:00"
    [total] = ok(await client.get(url(spaced), headers=admin.headers))["usage"]
    assert counts_of(total) == (1, 1, 3, 4)

    refused(
        await client.get(url("/usage"), params={"start_time": "20200301"}, headers=admin.headers),
        400,
        field="start_time",
    )
    later = {"start_time": "2020-03-02T00:00:00Z", "end_time": "2020-03-01T00:00:00Z"}
    refused(
        await client.get(url("/usage"), params=later, headers=admin.headers),
        400,
        field="start_time",
    )


@pytest.mark.parametrize(
    "group_by",
    [
        "user",
        " day , user ",
        "config,day,user,day",
        "",
        "  ",
        "week",
        "user,week",
        "user,,day",
        "user,",
        "USER",
        "model_config",
        "user,\tday",
        "user\u00a0",
    ],
)
async def test_the_handler_takes_exactly_the_groups_the_document_allows(
    client: httpx.AsyncClient, alice: Account, group_by: str
) -> None:
    document = await fetch_document(client)
    parameters = document["paths"]["/api/v1/usage"]["get"]["parameters"]
    [pattern] = [p["schema"]["pattern"] for p in parameters if p["name"] == "group_by"]

    response = await client.get(url("/usage"), params={"group_by": group_by}, headers=alice.headers)

    if re.search(pattern, group_by):
        ok(response)
    else:
        refused(response, 400, field="group_by")


async def test_users_read_their_own_usage_only(
    client: httpx.AsyncClient, traffic: Traffic, alice: Account, bob: Account, admin: Account
) -> None:
    own = await rest_usage(client, bob, start_time="2021-01-01T00:00:00Z")
    named = await rest_usage(client, bob, user_id=bob.user_id, start_time="2021-01-01T00:00:00Z")
    for_admin = await rest_usage(client, admin, user_id=bob.user_id, start_time="2021-01-01T00:00Z")

    assert own == named == for_admin
    assert [(row["user_id"], counts_of(row)) for row in own] == [
        (bob.user_id, traffic.by_user[bob.user_id].counts())
    ]
    response = await client.get(
        url("/usage"), params={"user_id": alice.user_id}, headers=bob.headers
    )
    refused(response, 403)


async def test_the_openapi_document_describes_the_route(client: httpx.AsyncClient) -> None:
    document = await fetch_document(client)
    operation = document["paths"]["/api/v1/usage"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}

    assert set(parameters) == {"start_time", "end_time", "user_id", "config_id", "group_by"}
    assert all(p["in"] == "query" for p in parameters.values())
    assert parameters["group_by"]["schema"]["default"] == "user"
    assert "pattern" in parameters["group_by"]["schema"]
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
    row = document["components"]["schemas"]["UsageRowOut"]
    assert set(row["required"]) == {
        "user_id",
        "config_id",
        "day",
        "replies",
        "failed_replies",
        "prompt_tokens",
        "completion_tokens",
        "average_latency_ms",
    }


async def test_an_empty_group_by_is_one_row_of_totals(
    client: httpx.AsyncClient, alice: Account
) -> None:
    assert await rest_usage(client, alice, group_by="") == [
        {
            "user_id": None,
            "config_id": None,
            "day": None,
            "replies": 0,
            "failed_replies": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "average_latency_ms": None,
        }
    ]
    assert await rest_usage(client, alice) == []  # per user: no row without usage
