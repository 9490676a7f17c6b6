"""GET /api/v1/search: the REST door of full-text search; the same answer as GraphQL's."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import Account, create_session
from tests.rest.expect import ok, refused, url
from tests.schema.gql import ok as graphql_ok
from tests.stored_messages import stored

GRAPHQL = """
query($q: String!, $sid: ID, $first: Int, $after: String) {
  searchMessages(query: $q, sessionId: $sid, first: $first, after: $after) {
    totalCount
    edges { cursor node { rank snippet message { id session { id } } } }
  }
}"""


async def rest_search(client: httpx.AsyncClient, who: Account, **params: Any) -> Any:
    return ok(await client.get(url("/search"), params=params, headers=who.headers))


async def test_hits_are_shaped_as_the_contract_says(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    (message_id,) = await stored(session_id, "Bring <b>snacks</b> & drinks")

    found = await rest_search(client, alice, q="snack")

    assert found == {
        "hits": [
            {
                "message_id": message_id,
                "session_id": session_id,
                "snippet": "Bring &lt;b&gt;<mark>snacks</mark>&lt;/b&gt; &amp; drinks",
                "rank": found["hits"][0]["rank"],
            }
        ],
        "total": 1,
    }
    assert found["hits"][0]["rank"] > 0


async def test_rest_and_graphql_give_the_same_answer(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    first = await create_session(client, alice)
    second = await create_session(client, alice)
    await stored(first, *(" ".join(["pear"] * n + ["jam"] * (6 - n)) for n in range(1, 6)))
    await stored(second, "pear cider", "a pear a day", "no fruit here")
    await stored(await create_session(client, bob), "pear pear pear")

    for params in ({}, {"sid": second}):
        cursor = None
        for page_num in (1, 2, 3):
            variables = {"q": "pear", "first": 3, "after": cursor, **params}
            data = (await graphql_ok(client, GRAPHQL, alice, variables))["searchMessages"]
            rest_params: dict[str, Any] = {"q": "pear", "page_size": 3, "page_num": page_num}
            if params:
                rest_params["session_id"] = params["sid"]
            rest = await rest_search(client, alice, **rest_params)

            assert rest["total"] == data["totalCount"] == (7 if not params else 2)
            assert rest["hits"] == [
                {
                    "message_id": edge["node"]["message"]["id"],
                    "session_id": edge["node"]["message"]["session"]["id"],
                    "snippet": edge["node"]["snippet"],
                    "rank": edge["node"]["rank"],
                }
                for edge in data["edges"]
            ]
            cursor = data["edges"][-1]["cursor"] if data["edges"] else cursor


async def test_q_is_required_and_must_have_something_to_search_for(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for params in ({}, {"q": ""}, {"q": "  "}, {"q": "-pear"}, {"q": "the"}, {"q": "x" * 501}):
        response = await client.get(url("/search"), params=params, headers=alice.headers)
        refused(response, 400, field="q")
    for name, value in (
        ("page_size", "0"),
        ("page_size", "101"),
        ("page_num", "0"),
        ("page_num", "x"),
    ):
        response = await client.get(
            url("/search"), params={"q": "pear", name: value}, headers=alice.headers
        )
        refused(response, 400, field=name)


async def test_only_the_callers_sessions_are_searched(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account
) -> None:
    alices = await create_session(client, alice)
    (mine,) = await stored(alices, "secret plans")

    assert (await rest_search(client, bob, q="secret"))["total"] == 0
    assert [
        hit["message_id"] for hit in (await rest_search(client, admin, q="secret"))["hits"]
    ] == [mine]
    for session_id in (alices, "nonsense"):
        response = await client.get(
            url("/search"), params={"q": "secret", "session_id": session_id}, headers=bob.headers
        )
        refused(response, 404)


async def test_the_document_describes_search(client: httpx.AsyncClient) -> None:
    response = await client.get(url("/openapi.json"))
    assert response.status_code == 200
    document = response.json()
    operation = document["paths"]["/api/v1/search"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}

    assert set(parameters) == {"q", "session_id", "page_size", "page_num"}
    assert parameters["q"]["required"] is True
    assert parameters["q"]["schema"]["maxLength"] == 500
    assert not parameters["session_id"]["required"]
    hit = document["components"]["schemas"]["SearchHitOut"]
    assert set(hit["properties"]) == {"message_id", "session_id", "snippet", "rank"}
