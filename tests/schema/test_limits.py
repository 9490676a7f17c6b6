"""Query depth, alias and token limits: the settings' values are where refusal starts,
and ordinary documents (GraphiQL's introspection among them) pass the defaults."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import Source, TokenKind, get_introspection_query, parse, validate
from graphql.language import Lexer
from strawberry.extensions.max_aliases import create_validator as strawberry_aliases
from strawberry.extensions.query_depth_limiter import create_validator as strawberry_depth

from gateway.settings import Settings
from schema import build_schema
from schema.cost import cost_rule
from schema.document_limits import alias_rule, depth_rule
from tests.factories import Account
from tests.schema.compiled_corpus import CASES
from tests.schema.conftest import OpenVariant
from tests.schema.gql import new_session, ok, post

# A path that can go on forever: ChatSession -> messages -> edges -> node (a Message) -> session.
_TOP = ["sessions", "edges", "node"]
_CYCLE = ["messages", "edges", "node", "session"]
_LEAF = {"sessions": "totalCount", "messages": "totalCount", "edges": "cursor"}


def deep(depth: int) -> str:
    """A valid document whose deepest field lies `depth` levels below the top field."""
    path = (_TOP + _CYCLE * depth)[:depth]
    leaf = _LEAF.get(path[-1], "id")
    return "{ " + " { ".join(path) + " { " + leaf + " }" * len(path) + " }"


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{n}: me {{ id }}" for n in range(count)) + " }"


def tokens(count: int) -> str:
    """A valid document of exactly `count` lexical tokens (count >= 15).

    Repeated spreads of one fragment cost two tokens each but are validated and executed
    once, so even a 2,000-token document stays cheap.
    """
    names = 1 if (count - 12) % 2 else 2
    spreads = (count - 12 - names) // 2
    return "{ me { " + "name " * names + "...F " * spreads + "} } fragment F on User { name }"


def lexical_tokens(document: str) -> int:
    """Tokens as graphql-core's parser counts them against its limit."""
    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


@pytest.fixture(autouse=True)
def nothing_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def check_limits(
    client: httpx.AsyncClient, who: Account, max_depth: int, max_aliases: int, max_tokens: int
) -> None:
    for document in (deep(max_depth), aliased(max_aliases), tokens(max_tokens)):
        answer = await post(client, document, who)
        assert not answer.errors, (document[:80], answer.errors)
        assert answer.data is not None
    refusals = {
        deep(max_depth + 1): (
            "GRAPHQL_VALIDATION_FAILED",
            f"maximum operation depth of {max_depth}",
        ),
        aliased(max_aliases + 1): ("GRAPHQL_VALIDATION_FAILED", f"Allowed: {max_aliases}"),
        tokens(max_tokens + 1): ("GRAPHQL_PARSE_FAILED", f"more than {max_tokens} tokens"),
    }
    for document, (code, text) in refusals.items():
        answer = await post(client, document, who)
        assert answer.data is None
        # A document past one limit may be past another too (a deep one costs more).
        (error,) = [e for e in answer.errors if text in e["message"]] or [answer.errors]
        assert error["extensions"]["code"] == code, answer.errors


def test_the_builders_build_what_they_say() -> None:
    assert deep(2) == "{ sessions { edges { cursor } } }"
    assert deep(4) == "{ sessions { edges { node { messages { totalCount } } } } }"
    assert tokens(15) == "{ me { name ...F } } fragment F on User { name }"
    for count in (15, 16, 50, 2001):
        assert lexical_tokens(tokens(count)) == count
    assert aliased(2) == "{ a0: me { id } a1: me { id } }"


async def test_default_limits(client: httpx.AsyncClient, alice: Account) -> None:
    await new_session(client, alice)
    defaults = Settings.model_fields

    await check_limits(
        client,
        alice,
        max_depth=defaults["graphql_max_depth"].default,
        max_aliases=defaults["graphql_max_aliases"].default,
        max_tokens=defaults["graphql_max_tokens"].default,
    )


async def test_limits_follow_the_settings(variant: OpenVariant, alice: Account) -> None:
    environment = {"GRAPHQL_MAX_DEPTH": "4", "GRAPHQL_MAX_ALIASES": "2", "GRAPHQL_MAX_TOKENS": "50"}
    async with variant(**environment) as limited:
        await check_limits(limited, alice, max_depth=4, max_aliases=2, max_tokens=50)


async def test_graphiqls_introspection_passes_the_defaults(client: httpx.AsyncClient) -> None:
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )

    data = await ok(client, query)

    assert data["__schema"]["queryType"]["name"] == "Query"
    assert data["__schema"]["subscriptionType"]["name"] == "Subscription"


# Query cost: objects a document could return, list sizes multiplied along the path.
SESSIONS_WITH_MESSAGES = (
    "query Heavy($n: Int) { sessions(first: %s) { pageInfo { hasNextPage } edges { node { "
    "modelConfig { modelName } messages(first: $n) { edges { node { id } } } } } } }"
)


def test_costs_multiply_list_sizes_along_the_path() -> None:
    graphql_schema = build_schema()._schema

    def errors(document: str, max_cost: int) -> list[str]:
        found = validate(graphql_schema, parse(document), [cost_rule(max_cost)])
        return [error.message for error in found]

    # sessions(first: 10): the connection 1, pageInfo 1, 10 edges, 10 nodes, 10 configs,
    # 10 message connections, each with 100 edges and 100 nodes ($n: at most a page, 100).
    ten = SESSIONS_WITH_MESSAGES % 10
    cost = 1 + 1 + 10 + 10 + 10 + 10 + 10 * 100 * 2
    assert errors(ten, cost) == []
    (message,) = errors(ten, cost - 1)
    assert f"could return up to {cost:,} objects; the limit is {cost - 1:,}" in message
    # No first: the default page (20); a plain list (model configs): at most 100.
    assert errors("{ sessions { edges { node { id } } } }", 41) == []
    assert errors("{ sessions { edges { node { id } } } }", 40) != []
    assert errors("{ modelConfigs { id } }", 100) == []
    assert errors("{ modelConfigs { id } }", 99) != []
    # Fragments and inline fragments count where they are spread; scalars cost nothing.
    spread = (
        "{ sessions(first: 3) { ...S } } fragment S on ChatSessionConnection "
        "{ edges { node { ... on ChatSession { user { id } } } } }"
    )
    assert errors(spread, 1 + 3 + 3 + 3) == []
    assert errors(spread, 9) != []


async def test_a_document_over_the_cost_limit_is_refused_by_both_paths(
    variant: OpenVariant, alice: Account
) -> None:
    heavy = SESSIONS_WITH_MESSAGES % "$n"  # 100 sessions x 100 messages: 20,402
    for fast_path in ("true", "false"):
        async with variant(GRAPHQL_MAX_COST="20000", GRAPHQL_FAST_PATH=fast_path) as limited:
            answer = await post(limited, heavy, alice, {"n": 1})
            assert answer.data is None
            error = answer.error()
            assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert "could return up to 20,402 objects; the limit is 20,000" in error["message"]
            light = SESSIONS_WITH_MESSAGES % "10"
            assert not (await post(limited, light, alice, {"n": 100})).errors


def fragment_tower(levels: int, leaf: str = "id") -> str:
    """`me { ...F0 }` where each fragment spreads the next ten times: short to write,
    10^levels fields once expanded."""
    fragments = []
    for n in range(levels):
        body = " ".join([f"...F{n + 1}"] * 10) if n < levels - 1 else leaf
        fragments.append(f"fragment F{n} on User {{ {body} }}")
    return "{ me { ...F0 } } " + " ".join(fragments)


def limit_messages(document: str, rules: list[Any]) -> list[str]:
    return sorted(e.message for e in validate(build_schema()._schema, parse(document), rules))


def test_the_depth_and_alias_rules_say_what_strawberrys_say() -> None:
    # Strawberry's depth rule repeats its message at each field past the limit; ours says
    # it once per operation.
    theirs = [strawberry_depth(4, None, None), strawberry_aliases(3)]
    ours = [depth_rule(4), alias_rule(3)]
    documents = [
        *(deep(depth) for depth in range(2, 8)),
        *(aliased(count) for count in range(1, 6)),
        *(case.query for case in CASES if case.query.count("{") == case.query.count("}")),
        fragment_tower(3, "a: id b: name"),
        "{ sessions { ...S } } fragment S on ChatSessionConnection { edges { node { "
        "x: messages { edges { node { y: session { id } } } } } } }",
        "query Named { me { ... on User { a: id b: name c: role d: id } } }",
        "{ a: me { __typename } } query Other { me { __schema: __typename } }",
    ]
    for document in documents:
        assert set(limit_messages(document, ours)) == set(limit_messages(document, theirs)), (
            document
        )


def test_a_tower_of_fragments_is_measured_whole_and_refused() -> None:
    # 10^12 aliased fields and objects: each fragment is measured once, so the document
    # validates at once (Strawberry's own rules would walk every spread).
    document = fragment_tower(12, "a: apiKeys { id }")
    messages = limit_messages(document, [depth_rule(12), alias_rule(30), cost_rule(50_000)])
    assert messages == [
        f"{10**11:,} aliases found. Allowed: 30".replace(",", ""),
        f"Operation could return up to {1 + 100 * 10**11:,} objects; the limit is 50,000 "
        "(ask for smaller pages).",
    ]
