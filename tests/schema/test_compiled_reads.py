"""The compiled read path answers byte for byte what Strawberry answers.

One app runs with the compiled path (PostgreSQL's default), a second on the same database
with GRAPHQL_FAST_PATH=false; every document of the corpus (tests/schema/compiled_corpus.py)
and documents generated from the schema (hypothesis-graphql) go to both, for the owner,
another user, an admin and no one, and the bodies must be equal bytes.
"""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import queries
from starlette.applications import Starlette
from starlette.routing import Route
from tortoise import Tortoise

from db.models import ChatSession, LogEntry, Message
from db.services import auth_failures
from gateway.app import create_app
from gateway.graphql import GraphQLEndpoint
from gateway.settings import load_settings
from schema import build_compiled_reads, build_schema, sdl
from schema.compiled.plans import CompiledReads
from schema.cursors import seq_cursor
from tests.conftest import COMPILED_READS, needs_compiled_reads
from tests.factories import Account, create_session, make_config, send
from tests.schema.compiled_corpus import CASES, Case, Data

TRICKY = 'héllo 😀 \x01\x1f "quoted" \\ back\nnew line\ttab </script> | # ``` \u2028'
METADATA: list[Any] = [
    {"n": 1, "f": 2.5, "big": 12345678901234567, "neg": -0.001, "list": [1, "a b", None, True]},
    {"text": TRICKY, "nested": {"z": {"y": [[], {}]}, "a": False}},
    "just a string",
    [1, 2, 3],
    None,
    {"x": 0.0001, "y": -1e-4, "z": 1e15},
]


def compiled_reads(app: Starlette) -> CompiledReads:
    reads = endpoint(app).compiled
    assert reads is not None
    return reads


async def seed(client: httpx.AsyncClient, alice: Account, bob: Account) -> Data:
    config = await make_config(
        model_name="tricky",
        parameters={"temperature": 0.7, "stop": ["\n", TRICKY], "n": 3, "x": None, "on": True},
        base_url="http://127.0.0.1:9/v1",
    )
    long = await create_session(client, alice)
    for turn in range(15):
        metadata = METADATA[turn % len(METADATA)]
        content = TRICKY if turn % 4 == 1 else f"question {turn}"
        response = await send(client, alice, long, content, metadata=metadata)
        assert response.status_code == 200, response.text
    empty = await create_session(client, alice, model_config_id=str(config.id))
    odd = await create_session(client, alice)
    response = await send(client, alice, odd, "tiny", metadata={"tiny": 1e-7, "huge": 1.5e300})
    assert response.status_code == 200, response.text
    raw = await create_session(client, alice)
    response = await send(client, alice, raw, "raw", metadata={"placeholder": True})
    assert response.status_code == 200, response.text
    # Numbers as another writer (SQL, an import) may store them, not as orjson writes them.
    await Tortoise.get_connection("default").execute_query(
        "UPDATE messages SET metadata = $1::jsonb WHERE session_id = $2 AND seq = 1",
        ['{"t": 1.50, "u": [0.10, 100.0], "pi": 3.14159265358979323846}', raw],
    )
    bob_session = await create_session(client, bob)
    await send(client, bob, bob_session, "bob's")
    # Titles (generated, and one set with every kind of character) and an archived session.
    shelved = await create_session(client, alice)
    await send(client, alice, shelved, "  an archived\tsession's   first line\nand more")
    for session_id, changes in ((shelved, {"archived": True}), (empty, {"title": TRICKY})):
        response = await client.patch(
            f"/api/v1/sessions/{session_id}", json=changes, headers=alice.headers
        )
        assert response.status_code == 200, response.text
    # Forks (made as forkSession makes them: a session naming the message it forked at).
    forks = []
    for session_id, seq in ((long, 3), (bob_session, 1), (None, None)):
        origin = await Message.get_or_none(session_id=session_id, seq=seq) if seq else None
        fork = await create_session(client, alice)
        forked_from = origin.id if origin is not None else "00000000-0000-4000-8000-000000000000"
        await ChatSession.filter(id=fork).update(forked_from_id=forked_from)
        forks.append(fork)
    listed = await client.post(
        "/graphql",
        json={"query": "{ sessions { edges { cursor } } }"},
        headers=alice.headers,
    )
    return Data(
        alice_id=alice.user_id,
        bob_id=bob.user_id,
        long_session=long,
        empty_session=empty,
        odd_session=odd,
        raw_session=raw,
        bob_session=bob_session,
        archived_session=shelved,
        forks=forks,
        config_id=str(config.id),
        session_cursors=[e["cursor"] for e in listed.json()["data"]["sessions"]["edges"]],
        message_cursors=[seq_cursor(seq) for seq in range(1, 31)],
        far_cursor=seq_cursor(2**40),
        negative_cursor=seq_cursor(-5),
    )


async def compare(
    app: Starlette,
    fast: httpx.AsyncClient,
    reference: httpx.AsyncClient,
    body: dict[str, Any],
    headers: dict[str, str] | list[tuple[str, str]],
) -> tuple[str | None, bool]:
    """A difference between the two answers (None if equal bytes), and whether the
    compiled path answered."""
    reads = compiled_reads(app)
    before = reads.answered
    got = await fast.post("/graphql", json=body, headers=headers)
    compiled = reads.answered > before
    expected = await reference.post("/graphql", json=body, headers=headers)
    if (got.status_code, answer_headers(got), got.content) != (
        expected.status_code,
        answer_headers(expected),
        expected.content,
    ):
        strawberry = f"{expected.status_code} {answer_headers(expected)} {expected.content!r}"
        return (
            f"{got.status_code} {answer_headers(got)} {got.content!r}\n  != {strawberry}",
            compiled,
        )
    return None, compiled


def answer_headers(answer: httpx.Response) -> list[tuple[str, str]]:
    """An answer's headers, in order of name; the request id's value is each request's own."""
    assert len(answer.headers.get_list("x-request-id")) == 1
    return sorted(
        (name, "<id>" if name == "x-request-id" else value)
        for name, value in answer.headers.multi_items()
    )


@needs_compiled_reads
async def test_repeated_headers_are_read_as_strawberry_reads_them(
    app: Starlette,
    client: httpx.AsyncClient,
    strawberry_client: httpx.AsyncClient,
    alice: Account,
) -> None:
    """The first Authorization and Content-Type count, on both paths."""
    body = {"query": "{ me { id name } }"}
    mine, wrong = f"Bearer {alice.key}", "Bearer cgw_not-a-key"
    for headers in (
        [("Authorization", wrong), ("Authorization", mine)],
        [("Authorization", mine), ("Authorization", wrong)],
        [("Authorization", mine), ("Content-Type", "text/plain")],
    ):
        difference, _ = await compare(app, client, strawberry_client, body, headers)
        assert difference is None, (headers, difference)


@needs_compiled_reads
async def test_the_corpus_is_answered_alike(
    app: Starlette,
    client: httpx.AsyncClient,
    strawberry_client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    admin: Account,
) -> None:
    assert len(CASES) >= 60
    data = await seed(client, alice, bob)
    callers = {"alice": alice.headers, "bob": bob.headers, "admin": admin.headers, "anonymous": {}}
    problems = []
    for case in CASES:
        for who, headers in callers.items():
            body = _body(case, data)
            difference, compiled = await compare(app, client, strawberry_client, body, headers)
            if difference:
                problems.append(f"{case.name} as {who}: {difference}")
            elif compiled != (who in case.compiled_for):
                path = "the compiled path" if compiled else "strawberry"
                problems.append(f"{case.name} as {who}: answered by {path}")
    assert problems == [], "\n".join(problems)


def _body(case: Case, data: Data) -> dict[str, Any]:
    body: dict[str, Any] = {"query": case.query, "variables": case.variables(data)}
    if case.operation_name is not None:
        body["operationName"] = case.operation_name
    return body


# The read fields of the schema, as hypothesis-graphql builds documents from them.
READ_FIELDS = ["me", "session", "sessions", "modelConfigs", "modelConfig"]


def generated_documents(count: int) -> list[str]:
    documents: list[str] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(queries(sdl(), fields=READ_FIELDS))
    def collect(document: str) -> None:
        documents.append(document)

    collect()
    return documents


@needs_compiled_reads
async def test_generated_documents_are_answered_alike(
    app: Starlette,
    client: httpx.AsyncClient,
    strawberry_client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    admin: Account,
) -> None:
    data = await seed(client, alice, bob)
    documents = generated_documents(150)
    # Generated ids are random strings: the seeded ones make some of them hit rows.
    known = {
        "session": data.long_session,
        "modelConfig": data.config_id,
    }
    problems: list[str] = []
    compiled_answers = 0
    for index, document in enumerate(documents):
        for name, row_id in known.items():
            if index % 2 and f"{name}(id: " in document:
                start = document.index(f"{name}(id: ") + len(f"{name}(id: ")
                end = document.index(")", start)
                document = f'{document[:start]}"{row_id}"{document[end:]}'
        for who, headers in (("alice", alice.headers), ("admin", admin.headers)):
            difference, compiled = await compare(
                app, client, strawberry_client, {"query": document}, headers
            )
            compiled_answers += compiled
            if difference:
                problems.append(f"{document}\n as {who}: {difference}")
    assert problems == [], "\n".join(problems[:5])
    # Most generated documents are answerable (random arguments are refused now and then).
    assert compiled_answers > len(documents)


def endpoint(app: Starlette) -> GraphQLEndpoint:
    for route in app.routes:
        if isinstance(route, Route) and isinstance(route.endpoint, GraphQLEndpoint):
            return route.endpoint
    raise AssertionError("no GraphQL endpoint")


def test_the_path_is_postgresql_s_and_can_be_switched_off(database_url: str) -> None:
    on = create_app(load_settings(database_url=database_url, _env_file=None))
    off = create_app(
        load_settings(database_url=database_url, graphql_fast_path=False, _env_file=None)
    )
    assert (endpoint(on).compiled is not None) == COMPILED_READS
    assert endpoint(off).compiled is None


def test_plans_are_compiled_once_and_the_cache_is_bounded() -> None:
    reads = build_compiled_reads(build_schema(), cache_size=2)
    first = reads.prepare("{ me { id } }", None, {})
    again = reads.prepare("{ me { id } }", None, {})
    assert first is not None and again is not None and first.plan is again.plan
    skipping = "query($s: Boolean!) { me { id name @skip(if: $s) } }"
    shown = reads.prepare(skipping, None, {"s": False})
    hidden = reads.prepare(skipping, None, {"s": True})
    assert shown is not None and hidden is not None and shown.plan is not hidden.plan
    assert reads.prepare("{ modelConfigs { id } }", None, {}) is not None
    assert len(reads._documents) == 2  # the least recently used went
    # Left to Strawberry, and remembered as such: mutations, invalid documents.
    assert reads.prepare("mutation { createSession { id } }", None, {}) is None
    assert reads.prepare("{ me { nope } }", None, {}) is None


@needs_compiled_reads
async def test_a_refused_key_is_counted_once(client: httpx.AsyncClient) -> None:
    """The compiled path hands its authentication's outcome to Strawberry."""
    await auth_failures.flush()
    headers = {"Authorization": "Bearer not-a-key"}
    answer = await client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await auth_failures.flush() == 1
    entry = await LogEntry.filter(event="auth.failed").order_by("-id").first()
    assert entry is not None and entry.details["count"] == 1
