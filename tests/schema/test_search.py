"""searchMessages: full-text search over the messages the caller may see, on both databases.

Messages are stored straight into the table (as a turn stores them) where a test needs
exact contents; one test stores them through the door, as a user would.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from db.models import ChatSession, Message, MessageType
from tests.conftest import BACKEND
from tests.factories import Account, send
from tests.schema.gql import fails, new_session, ok, post
from tests.stored_messages import stored

SEARCH = """
query($q: String!, $sid: ID, $first: Int, $after: String) {
  searchMessages(query: $q, sessionId: $sid, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { rank snippet message { id content type session { id } } } }
  }
}"""
# Messages that match none of the tests' queries: a corpus in which the searched words
# are rare, as they are in real use (bm25 weighs a word by how rare it is).
FILLER = (
    "Lunch was a sandwich and some soup.",
    "The meeting moved to Thursday afternoon.",
    "Please water the plants while I am away.",
    "Traffic on the bridge was slow this morning.",
)


async def search(
    client: httpx.AsyncClient, who: Account, q: str, **variables: Any
) -> dict[str, Any]:
    data = await ok(client, SEARCH, who, {"q": q, **variables})
    found: dict[str, Any] = data["searchMessages"]
    return found


def ids_of(found: dict[str, Any]) -> list[str]:
    return [edge["node"]["message"]["id"] for edge in found["edges"]]


def snippets_of(found: dict[str, Any]) -> list[str]:
    return [edge["node"]["snippet"] for edge in found["edges"]]


@pytest.fixture
async def corpus(client: httpx.AsyncClient, alice: Account) -> str:
    session_id = await new_session(client, alice)
    await stored(session_id, *FILLER)
    return session_id


async def test_more_matches_rank_first(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    once, thrice, none = await stored(
        corpus,
        "My cat likes the sofa by the window in the afternoon.",
        "The cat chased another cat, then a third cat.",
        "Dogs bark at the postman.",
    )

    found = await search(client, alice, "cat")

    assert ids_of(found) == [thrice, once]
    assert none not in ids_of(found)
    ranks = [edge["node"]["rank"] for edge in found["edges"]]
    assert ranks[0] > ranks[1] > 0
    assert found["totalCount"] == 2


@pytest.mark.skipif(BACKEND == "sqlite", reason="FTS5's bm25 does not weigh proximity")
async def test_closer_matches_rank_first(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    far, close = await stored(
        corpus,
        "Garden notes: a red fence, sunny mornings, some wind and then roses bloom early.",
        "Garden notes: red roses bloom early, fence mornings, some wind and then sunny skies.",
    )

    found = await search(client, alice, "red roses")

    assert ids_of(found) == [close, far]


async def test_snippets_mark_the_matches_in_escaped_text(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    await stored(corpus, 'Use <script>alert("x")</script> & run the tests')

    found = await search(client, alice, "run")

    assert snippets_of(found) == [
        "Use &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; <mark>run</mark> the tests"
    ]


async def test_a_long_message_gets_an_excerpt_around_the_match(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    before = " ".join(f"word{n}" for n in range(60))
    after = " ".join(f"more{n}" for n in range(60))
    await stored(corpus, f"{before} the <b>needle</b> is here {after}")

    (snippet,) = snippets_of(await search(client, alice, "needle"))

    assert "<mark>needle</mark>" in snippet
    assert "&lt;b&gt;" in snippet and "<b>" not in snippet
    assert snippet.startswith("…") and snippet.endswith("…")
    assert len(snippet) < 400
    assert "word0 " not in snippet and "more59" not in snippet


async def test_marker_characters_in_a_message_are_only_text(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    # The databases mark matches with control characters; stored text may hold them.
    await stored(corpus, "alpha \x02beta\x03 gamma \x04 delta <i>")

    found = await search(client, alice, "gamma")

    assert snippets_of(found) == ["alpha \x02beta\x03 <mark>gamma</mark> \x04 delta &lt;i&gt;"]

    controls = "".join(chr(c) for c in range(0x02, 0xA0) if not chr(c).isprintable())
    await stored(corpus, f"{controls} epsilon <")
    (snippet,) = snippets_of(await search(client, alice, "epsilon"))
    assert snippet == " ".join(f"{controls} <mark>epsilon</mark> &lt;".split())


async def test_phrases_match_words_in_order(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    together, apart = await stored(corpus, "A quick fox jumped.", "The quick brown fox jumped.")

    phrase = await search(client, alice, '"quick fox"')
    words = await search(client, alice, "quick fox")

    assert ids_of(phrase) == [together]
    assert sorted(ids_of(words)) == sorted([together, apart])
    assert "<mark>" in snippets_of(phrase)[0]


async def test_excluded_terms_leave_messages_out(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    red, blue, both = await stored(
        corpus, "a red kite flew", "a blue kite flew", "a red and blue kite flew"
    )

    assert ids_of(await search(client, alice, "kite -blue")) == [red]
    assert sorted(ids_of(await search(client, alice, 'kite -"red kite"'))) == sorted([blue, both])
    assert ids_of(await search(client, alice, "kite -red -blue")) == []


async def test_words_match_their_other_forms(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    (ran,) = await stored(corpus, "I run every single day.")

    found = await search(client, alice, "running")

    assert ids_of(found) == [ran]
    assert snippets_of(found) == ["I <mark>run</mark> every single day."]


async def test_common_words_are_left_out(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    (capital,) = await stored(corpus, "Paris is a capital city.")

    assert ids_of(await search(client, alice, "what is the capital")) == [capital]


async def test_or_joins_two_terms(client: httpx.AsyncClient, alice: Account, corpus: str) -> None:
    tea, coffee, _ = await stored(corpus, "green tea", "black coffee", "orange juice")

    found = await search(client, alice, "tea or coffee")

    assert sorted(ids_of(found)) == sorted([tea, coffee])


NOTHING_TO_SEARCH = [
    "",
    "   ",
    "\t\n",
    "-kite",
    '-"red kite"',
    "the and of",
    "AND",
    "NOT",
    "-",
    "*",
]


async def test_a_query_with_nothing_to_search_for_is_bad_input(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    await stored(corpus, "a red kite")

    for query in NOTHING_TO_SEARCH:
        error = await fails(client, SEARCH, alice, {"q": query}, code="BAD_USER_INPUT")
        assert error["extensions"]["field"] == "query", query


async def test_a_query_that_cannot_be_stored_or_is_too_long_is_bad_input(
    client: httpx.AsyncClient, alice: Account
) -> None:
    for query in ("kite\x00", "kite " * 101):
        error = await fails(client, SEARCH, alice, {"q": query}, code="BAD_USER_INPUT")
        assert error["extensions"]["field"] == "query", query
    # JSON can carry half a surrogate pair, which no database can store or search for
    # (the door refuses it before the search is asked).
    raw = json.dumps({"query": SEARCH, "variables": {"q": "kite \ud800"}})
    response = await client.post(
        "/graphql", content=raw, headers={**alice.headers, "Content-Type": "application/json"}
    )
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error


# What FTS5 would read as its own syntax: each is searched as text (or refused as having
# nothing to search for), never run as an expression and never an internal error.
SYNTAX = [
    '"',
    '"fox',
    'fox"',
    '""fox""',
    "fox*",
    "*fox",
    "NEAR(fox",
    "NEAR(fox kite, 2)",
    "fox AND kite",
    "fox OR",
    "fox NOT kite",
    "content:fox",
    "message_search:fox",
    "{content}:fox",
    "^fox",
    "(fox)",
    "(fox",
    "fox)",
    "fox + kite",
    "fox - kite",
    "fox -",
    "fox'",
    "fox\\",
    "fox;",
    "fox' OR 1=1 --",
    "fox & kite | !dog <-> (x)",
    "fox:*",
    "fox:A",
]


# Found by the word they hold, whatever the characters around it.
FINDS_THE_FOX = {"fox*", "*fox", "^fox", "(fox)", "(fox", "fox)", '"fox', 'fox"', "fox;", "fox:*"}


async def test_query_syntax_characters_are_text(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    (fox,) = await stored(corpus, "A fox in the garden.")
    await stored(corpus, "A kite in the sky.")

    for query in SYNTAX:
        answer = await post(client, SEARCH, alice, {"q": query})

        if answer.errors:
            # Only when nothing is left to search for.
            assert answer.codes == ["BAD_USER_INPUT"], (query, answer.errors)
            assert answer.error()["extensions"]["field"] == "query"
            assert query.strip('"-') == "", query
            continue
        found = answer.data["searchMessages"]
        assert found["totalCount"] == len(found["edges"]), query
        if query in FINDS_THE_FOX:
            assert ids_of(found) == [fox], query


async def test_others_messages_are_never_found_and_admins_find_all(
    client: httpx.AsyncClient, alice: Account, bob: Account, admin: Account, corpus: str
) -> None:
    (mine,) = await stored(corpus, "the launch code is zebra")
    bobs_session = await new_session(client, bob)
    (bobs,) = await stored(bobs_session, "zebra crossing ahead")

    assert ids_of(await search(client, alice, "zebra")) == [mine]
    assert ids_of(await search(client, bob, "zebra")) == [bobs]
    assert sorted(ids_of(await search(client, admin, "zebra"))) == sorted([mine, bobs])
    assert (await search(client, bob, "launch"))["totalCount"] == 0
    # Another's session is NOT_FOUND, as everywhere.
    await fails(client, SEARCH, bob, {"q": "zebra", "sid": corpus}, code="NOT_FOUND")
    assert ids_of(await search(client, admin, "zebra", sid=corpus)) == [mine]


async def test_session_id_narrows_to_one_session(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    other = await new_session(client, alice)
    (here,) = await stored(corpus, "an apple a day")
    (there,) = await stored(other, "apple pie")

    assert ids_of(await search(client, alice, "apple", sid=corpus)) == [here]
    assert ids_of(await search(client, alice, "apple", sid=other)) == [there]
    assert len(ids_of(await search(client, alice, "apple"))) == 2
    for missing in ("not-an-id", "00000000-0000-0000-0000-000000000000"):
        await fails(client, SEARCH, alice, {"q": "apple", "sid": missing}, code="NOT_FOUND")


async def test_pages_follow_each_other_with_the_total(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    # Ranks differ (one to seven matches) so the whole order is known.
    made = await stored(corpus, *(" ".join(["plum"] * n + ["tart"] * (8 - n)) for n in range(1, 8)))
    everything = await search(client, alice, "plum", first=7)
    assert ids_of(everything) == made[::-1]

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        found = await search(client, alice, "plum", first=3, after=after)
        pages += 1
        assert found["totalCount"] == 7
        assert found["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += ids_of(found)
        if not found["pageInfo"]["hasNextPage"]:
            break
        after = found["pageInfo"]["endCursor"]
        assert after == found["edges"][-1]["cursor"]
    assert (pages, seen) == (3, ids_of(everything))
    # Past the end: no hits, the total still known.
    last = await search(client, alice, "plum", first=3, after=after)
    empty = await search(client, alice, "plum", first=3, after=last["pageInfo"]["endCursor"])
    assert (empty["edges"], empty["totalCount"]) == ([], 7)
    assert (await search(client, alice, "plum", first=0))["totalCount"] == 7


async def test_page_size_and_cursor_are_checked(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    await stored(corpus, "plum", "plum plum")
    real = (await search(client, alice, "plum", first=1))["pageInfo"]["endCursor"]
    sessions_cursor = (
        await ok(client, "{ sessions(first: 1) { pageInfo { endCursor } } }", alice)
    )["sessions"]["pageInfo"]["endCursor"]

    for first in (-1, 101):
        error = await fails(
            client, SEARCH, alice, {"q": "plum", "first": first}, code="BAD_USER_INPUT"
        )
        assert error["extensions"]["field"] == "first"
    for cursor in ("nonsense", real[:-2], sessions_cursor, real + "x"):
        error = await fails(
            client, SEARCH, alice, {"q": "plum", "after": cursor}, code="BAD_USER_INPUT"
        )
        assert error["extensions"]["field"] == "after", cursor


async def test_replaced_replies_are_found_too(
    client: httpx.AsyncClient, alice: Account, corpus: str
) -> None:
    (current,) = await stored(corpus, "the answer is mango", kind=MessageType.AI)
    (replaced,) = await stored(corpus, "an older answer: mango", kind=MessageType.AI, replaced=True)

    assert sorted(ids_of(await search(client, alice, "mango"))) == sorted([current, replaced])


async def test_the_index_follows_every_write_at_once(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await new_session(client, alice)
    sent = await send(client, alice, session_id, "Where did I leave the umbrella?")
    assert sent.status_code == 200, sent.text
    data = sent.json()["data"]

    found = await search(client, alice, "umbrella")

    assert sorted(ids_of(found)) == sorted(
        [data["user_message"]["message_id"], data["ai_message"]["message_id"]]
    )
    await Message.filter(id=data["user_message"]["message_id"]).update(content="raincoat")
    assert ids_of(await search(client, alice, "raincoat")) == [data["user_message"]["message_id"]]
    assert ids_of(await search(client, alice, "umbrella")) == [data["ai_message"]["message_id"]]

    await ChatSession.filter(id=session_id).delete()

    assert (await search(client, alice, "umbrella OR raincoat"))["totalCount"] == 0
    assert await Message.filter(session_id=session_id).count() == 0
