"""Read documents the compiled path must answer exactly as Strawberry does.

Each case names the callers for whom the compiled path answers (the others, and every
caller of a case it leaves, are answered by Strawberry): a case is checked both for equal
bytes and for which path answered, so a compiler that gave every request to Strawberry
would fail here.
"""

# ruff: noqa: E501, UP031 (GraphQL documents read best on one line, filled in with %)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ALL = frozenset({"alice", "bob", "admin"})
NONE: frozenset[str] = frozenset()
ADMIN = frozenset({"admin"})


@dataclass(frozen=True)
class Data:
    """The ids and cursors the documents point at."""

    alice_id: str
    bob_id: str
    long_session: str  # alice's, 30 messages
    empty_session: str  # alice's, none
    odd_session: str  # alice's, metadata with a number jsonb writes otherwise
    raw_session: str  # alice's, metadata written by SQL: numbers orjson would not write
    bob_session: str
    archived_session: str  # alice's, archived, titled, 2 messages
    # alice's sessions forked from a message of her long session, of bob's session, and
    # from one that is gone
    forks: list[str]
    config_id: str  # with parameters of every JSON kind
    session_cursors: list[str]  # alice's sessions, newest first
    message_cursors: list[str]  # the long session's, seq 1..30
    far_cursor: str  # seq 2**40
    negative_cursor: str  # seq -5


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    variables: Callable[[Data], dict[str, Any]] = lambda d: {}
    compiled_for: frozenset[str] = ALL
    operation_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


MESSAGE = "id type content metadata createdAt"
PAGE = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
CONNECTION = f"edges {{ cursor node {{ {MESSAGE} }} }} {PAGE} totalCount"
CONFIG = (
    "id modelName modelVersion provider parameters baseUrl apiKeyEnv isDefault version updatedAt"
)
ONE = "query($id: ID!) { session(id: $id) { %s } }"


def long(d: Data) -> dict[str, Any]:
    return {"id": d.long_session}


def window(body: str) -> Case:
    """A window of the long session's messages, `body` its arguments."""
    arguments = f"({body})" if body else ""
    return Case(f"messages{arguments}", ONE % f"messages{arguments} {{ {CONNECTION} }}", long)


def with_cursor(name: str, body: str, pick: Callable[[Data], str]) -> Case:
    query = "query($id: ID!, $c: String) { session(id: $id) { messages(%s) { %s } } }" % (
        body,
        CONNECTION,
    )
    return Case(name, query, lambda d: {"id": d.long_session, "c": pick(d)})


CASES: list[Case] = [
    # me, __typename, aliases
    Case("me", "{ me { id name role } }"),
    Case("me typename", "{ me { __typename id } }"),
    Case("root typename", "{ __typename }"),
    Case("aliased me", "{ a: me { id } b: me { name role } }"),
    Case("me merged", "{ me { id } me { name } }"),
    Case("me times", "{ me { createdAt disabledAt } }"),
    Case("me keys", "{ me { name apiKeys { id label } } }", compiled_for=frozenset()),
    # model configs
    Case("model configs", f"{{ modelConfigs {{ {CONFIG} }} }}"),
    Case("model configs typename", "{ modelConfigs { __typename id isDefault } }"),
    Case(
        "model config",
        f"query($id: ID!) {{ modelConfig(id: $id) {{ {CONFIG} }} }}",
        lambda d: {"id": d.config_id},
    ),
    Case("model config literal bad id", '{ modelConfig(id: "nope") { id } }'),
    Case(
        "model config unknown",
        "query($id: ID!) { modelConfig(id: $id) { id } }",
        lambda d: {"id": "00000000-0000-4000-8000-000000000000"},
    ),
    Case("model config int id", "{ modelConfig(id: 5) { id } }"),
    # one session (owner, other user, admin)
    Case("session", ONE % "id createdAt messageCount", long),
    Case(
        "session relations",
        ONE % "user { id name role } modelConfig { modelName parameters }",
        long,
    ),
    Case("session of bob", ONE % "id messageCount", lambda d: {"id": d.bob_session}),
    Case("session bad id", ONE % "id", lambda d: {"id": "not-a-uuid"}),
    Case(
        "session unknown id",
        ONE % "id",
        lambda d: {"id": "00000000-0000-4000-8000-000000000000"},
    ),
    Case("session typename", ONE % "__typename id user { __typename }", long),
    Case(
        "session merged",
        "query($id: ID!) { session(id: $id) { id } session(id: $id) { createdAt } }",
        long,
    ),
    Case(
        "two sessions aliased",
        "query($a: ID!, $b: ID!) { a: session(id: $a) { id } b: session(id: $b) { id } }",
        lambda d: {"a": d.long_session, "b": d.bob_session},
    ),
    # windows of messages
    window(""),
    window("first: 5"),
    window("first: 0"),
    window("first: 100"),
    window("last: 5"),
    window("last: 0"),
    window("last: 100"),
    Case("first over 100", ONE % "messages(first: 101) { totalCount }", long, NONE),
    Case("negative first", ONE % "messages(first: -1) { totalCount }", long, NONE),
    Case("first and last", ONE % "messages(first: 3, last: 3) { totalCount }", long, NONE),
    with_cursor("after 10", "first: 5, after: $c", lambda d: d.message_cursors[9]),
    with_cursor("before 10", "last: 5, before: $c", lambda d: d.message_cursors[9]),
    with_cursor("first before 3", "first: 5, before: $c", lambda d: d.message_cursors[2]),
    with_cursor("last after 25", "last: 5, after: $c", lambda d: d.message_cursors[24]),
    with_cursor("after the end", "after: $c", lambda d: d.message_cursors[29]),
    with_cursor("before the start", "before: $c", lambda d: d.message_cursors[0]),
    with_cursor("after far", "first: 3, after: $c", lambda d: d.far_cursor),
    with_cursor("before far", "last: 3, before: $c", lambda d: d.far_cursor),
    with_cursor("before negative", "before: $c", lambda d: d.negative_cursor),
    with_cursor("after negative", "first: 2, after: $c", lambda d: d.negative_cursor),
    with_cursor("null cursor", "first: 2, after: $c", lambda d: None),  # type: ignore[arg-type,return-value]
    Case(
        "garbage cursor",
        ONE % 'messages(after: "garbage") { totalCount }',
        long,
        NONE,
    ),
    Case(
        "session cursor for messages",
        "query($id: ID!, $c: String) { session(id: $id) { messages(after: $c) { totalCount } } }",
        lambda d: {"id": d.long_session, "c": d.session_cursors[0]},
        NONE,  # bob too, though he gets null: every argument is checked before the statement
    ),
    Case(
        "two windows aliased",
        ONE
        % "a: messages(first: 2) { edges { cursor } } b: messages(last: 2) { edges { node { id } } }",
        long,
    ),
    Case(
        "same window merged",
        ONE
        % "messages(first: 2) { edges { node { id } } } messages(first: 2) { pageInfo { hasNextPage } }",
        long,
    ),
    Case(
        "aliased edges",
        ONE % "messages(first: 3) { a: edges { cursor } b: edges { node { id } } n: totalCount }",
        long,
    ),
    Case("page info only", ONE % f"messages(last: 4) {{ {PAGE} }}", long),
    Case("total only", ONE % "messages { totalCount }", long),
    Case("empty session", ONE % f"messages {{ {CONNECTION} }}", lambda d: {"id": d.empty_session}),
    Case(
        "message back to its session",
        ONE
        % "messages(first: 2) { edges { node { id session { id messageCount user { name } } } } }",
        long,
    ),
    Case(
        "nested to the depth limit",
        ONE
        % (
            "messages(first: 1) { edges { node { session { messages(last: 1) { edges { node {"
            " session { modelConfig { modelName } } } } } } } } }"
        ),
        long,
    ),
    Case(
        "connection typenames",
        ONE
        % "messages(first: 1) { __typename edges { __typename node { __typename } } pageInfo { __typename } }",
        long,
    ),
    Case(
        "odd numbers",
        ONE % "messages { edges { node { metadata } } }",
        lambda d: {"id": d.odd_session},
        frozenset({"bob"}),  # who sees no message, so no number
    ),
    Case(
        "numbers written by SQL",
        ONE % "messages { edges { node { metadata } } }",
        lambda d: {"id": d.raw_session},
        frozenset({"bob"}),
    ),
    Case(
        "fragment on a union",
        "query($id: ID!) { session(id: $id) { messages(first: 2) { edges { node {"
        " ... on MessageEvent { __typename ... on Message { id } } } } } } }",
        long,
    ),
    Case(
        "named fragment on a union",
        "fragment E on MessageEvent { ... on Message { content } __typename }"
        " query($id: ID!) { session(id: $id) { messages(last: 2) { edges { node { ...E } } } } }",
        long,
    ),
    Case(
        "odd session without metadata",
        ONE % "messages { edges { node { id content } } }",
        lambda d: {"id": d.odd_session},
    ),
    # lists of sessions
    Case(
        "sessions",
        "{ sessions { edges { cursor node { id createdAt messageCount } } %s totalCount } }" % PAGE,
    ),
    Case("sessions first 1", "{ sessions(first: 1) { edges { cursor node { id } } %s } }" % PAGE),
    Case("sessions first 0", "{ sessions(first: 0) { edges { cursor } %s totalCount } }" % PAGE),
    Case(
        "sessions after",
        "query($c: String) { sessions(first: 2, after: $c) { edges { cursor node { id } } %s } }"
        % PAGE,
        lambda d: {"c": d.session_cursors[0]},
    ),
    Case(
        "sessions after the last",
        "query($c: String) { sessions(after: $c) { edges { cursor } %s totalCount } }" % PAGE,
        lambda d: {"c": d.session_cursors[-1]},
    ),
    Case(
        "sessions of bob",
        "query($u: ID) { sessions(userId: $u) { edges { node { id user { name } } } totalCount } }",
        lambda d: {"u": d.bob_id},
        frozenset({"bob", "admin"}),
    ),
    Case(
        "sessions of a malformed user",
        '{ sessions(userId: "nope") { edges { cursor } totalCount } }',
        compiled_for=ADMIN,
    ),
    Case(
        "sessions of myself",
        "query($u: ID) { sessions(userId: $u) { totalCount } }",
        lambda d: {"u": d.alice_id},
        frozenset({"alice", "admin"}),
    ),
    Case("sessions first over 100", "{ sessions(first: 101) { totalCount } }", compiled_for=NONE),
    Case("sessions bad cursor", '{ sessions(after: "x") { totalCount } }', compiled_for=NONE),
    Case(
        "sessions with a message cursor",
        "query($c: String) { sessions(after: $c) { totalCount } }",
        lambda d: {"c": d.message_cursors[0]},
        NONE,
    ),
    Case(
        "nested: query A",
        "{ sessions(first: 10) { edges { node { id createdAt messageCount modelConfig { modelName }"
        " messages(first: 5) { edges { node { id type content createdAt } } } } } } }",
    ),
    Case(
        "nested with every field",
        "{ sessions { edges { node { id user { id name role } modelConfig { %s } messages(last: 3)"
        " { %s } } } } }" % (CONFIG, CONNECTION),
        compiled_for=frozenset({"bob", "admin"}),  # alice's sessions hold the odd numbers
    ),
    # the conversation features' session fields and the archived filter
    Case("session title and times", ONE % "id title createdAt updatedAt archived", long),
    Case(
        "tricky title",
        ONE % "title messageCount",
        lambda d: {"id": d.empty_session},
    ),
    Case(
        "archived session",
        ONE % "id title archived updatedAt messageCount messages { totalCount }",
        lambda d: {"id": d.archived_session},
    ),
    Case(
        "sessions archived true",
        "{ sessions(archived: true) { edges { cursor node { id title archived updatedAt"
        " messageCount } } %s totalCount } }" % PAGE,
    ),
    Case(
        "sessions archived false",
        "{ sessions(archived: false) { edges { node { id title archived } } totalCount } }",
    ),
    Case(
        "sessions archived null",
        "{ sessions(archived: null) { edges { cursor node { id title archived } } %s totalCount } }"
        % PAGE,
    ),
    *[
        Case(
            f"sessions archived variable {name}",
            "query($a: Boolean) { sessions(archived: $a) { edges { node { id archived } }"
            " totalCount } }",
            lambda d, given=given: given,
        )
        for name, given in (("true", {"a": True}), ("null", {"a": None}), ("absent", {}))
    ],
    Case(
        "sessions archived after a cursor",
        "query($c: String) { sessions(archived: null, first: 2, after: $c) { edges { cursor"
        " node { id archived } } %s totalCount } }" % PAGE,
        lambda d: {"c": d.session_cursors[0]},
    ),
    Case(
        "sessions of bob archived",
        "query($u: ID) { sessions(userId: $u, archived: null) { edges { node { id title } }"
        " totalCount } }",
        lambda d: {"u": d.bob_id},
        frozenset({"bob", "admin"}),
    ),
    Case(
        "sessions archived not a boolean",
        '{ sessions(archived: "yes") { totalCount } }',
        compiled_for=NONE,
    ),
    Case(
        "message back to its session's new fields",
        ONE % "messages(last: 1) { edges { node { session { title updatedAt archived } } } }",
        long,
    ),
    Case(
        "nested with the new fields",
        "{ sessions(first: 10, archived: null) { edges { node { id title updatedAt archived"
        " messageCount messages(first: 2) { edges { node { id content } } } } } } }",
    ),
    # forkedFrom: the message if the caller may see it, else null (see Data.forks)
    Case("not forked", ONE % "id title forkedFrom { id }", long),
    *[
        Case(
            f"forked from {kind}",
            ONE % f"forkedFrom {{ {MESSAGE} session {{ id title }} }}",
            lambda d, index=index: {"id": d.forks[index]},
        )
        for index, kind in enumerate(("alice's message", "bob's message", "a missing message"))
    ],
    Case(
        "forked from in a list",
        "{ sessions(first: 100) { edges { node { id forkedFrom { id content type } } } } }",
    ),
    Case(
        "forked from with a field left to strawberry",
        ONE % "forkedFrom { id variants { id } }",
        lambda d: {"id": d.forks[0]},
        NONE,
    ),
    # fields the compiled path leaves to Strawberry (the whole document goes there)
    Case(
        "message feedback",
        ONE % "messages(first: 2) { edges { node { id feedback { rating } } } }",
        long,
        NONE,
    ),
    Case(
        "message reply and variants",
        ONE % "messages(last: 2) { edges { node { id replyTo { id } variants { id } } } }",
        long,
        NONE,
    ),
    # fragments, inline fragments, directives
    Case(
        "fragments",
        "fragment M on Message { id content } fragment S on ChatSession { id messages(first: 3)"
        " { edges { node { ...M } } } } query($id: ID!) { session(id: $id) { ...S ...S createdAt } }",
        long,
    ),
    Case(
        "inline fragments",
        "query($id: ID!) { session(id: $id) { ... on ChatSession { id } ... { messageCount } } }",
        long,
    ),
    Case(
        "fragment on Query",
        "fragment Q on Query { me { id } } { ...Q modelConfigs { id } }",
    ),
    *[
        Case(
            f"directives {yes} {no}",
            "query($id: ID!, $yes: Boolean!, $no: Boolean!) { session(id: $id) { id @include(if: $yes)"
            " createdAt @skip(if: $no) messages(first: 2) @include(if: $yes) { totalCount }"
            " ... on ChatSession @skip(if: $no) { messageCount } } }",
            lambda d, yes=yes, no=no: {"id": d.long_session, "yes": yes, "no": no},
        )
        for yes in (True, False)
        for no in (True, False)
    ],
    Case("literal skip", "{ me { id name @skip(if: true) role @include(if: false) } }"),
    # operations, variables
    Case(
        "chosen operation",
        "query A { me { id } } query B { modelConfigs { id } }",
        operation_name="B",
    ),
    Case("operation not found", "query A { me { id } }", operation_name="C", compiled_for=NONE),
    Case(
        "two operations unnamed", "query A { me { id } } query B { me { name } }", compiled_for=NONE
    ),
    Case(
        "variable default",
        "query($id: ID!, $n: Int = 3) { session(id: $id) { messages(first: $n) { edges { cursor } } } }",
        long,
    ),
    Case(
        "variable of the wrong type",
        "query($id: ID!, $n: Int) { session(id: $id) { messages(first: $n) { totalCount } } }",
        lambda d: {"id": d.long_session, "n": "three"},
        NONE,
    ),
    Case("missing variable", ONE % "id", lambda d: {}, NONE),
    # what the compiled path leaves to Strawberry
    Case("logs", "{ logs(first: 2) { edges { node { id } } } }", compiled_for=NONE),
    Case("introspection", "{ __schema { queryType { name } } }", compiled_for=NONE),
    Case("unknown field", "{ me { id secret } }", compiled_for=NONE),
    Case(
        "too deep",
        ONE
        % (
            "messages { edges { node { session { messages { edges { node { session { messages"
            " { edges { node { session { id } } } } } } } } } } } }"
        ),
        long,
        NONE,
    ),
    Case("syntax error", "{ me { id ", compiled_for=NONE),
]
