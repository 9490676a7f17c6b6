"""The search service's statements: answered from the full-text index (never a scan of
every message), in one statement, and the FTS5 expression it writes from a user's query
never lets the user write FTS5 syntax."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import uuid
from typing import Any

import pytest
from tortoise import Tortoise

from db.errors import Invalid
from db.identity import Caller
from db.models import ChatSession, Message, MessageType, Role
from db.services import model_configs, search
from tests.conftest import BACKEND
from tests.factories import Account

# Words for the filler messages; "aurora" is put in a handful of them only.
_WORDS = (
    "the project meeting budget report deadline server client request answer question "
    "model config session token message reply stream cache index query table column "
    "coffee lunch weather train ticket holiday garden kitchen window river mountain"
)
VOCABULARY = _WORDS.split()


# Sessions of a hundred messages: enough that reading a user's sessions whole costs the
# planner more than looking a word up in the index.
SESSIONS = 30


def caller_of(account: Account, *, admin: bool = False) -> Caller:
    return Caller(account.user_id, account.name, Role.ADMIN if admin else Role.USER)


async def seed(owner: Account, stranger: Account, *, messages: int, rare: int) -> list[str]:
    """`messages` messages over SESSIONS sessions (half of them the owner's), `rare` of them
    (in the owner's sessions) holding the word "aurora"; their ids."""
    config = await model_configs.get_default()
    sessions = [
        ChatSession(
            id=uuid.uuid4(),
            user_id=owner.user_id if n % 2 == 0 else stranger.user_id,
            model_config_id=config.id,
            last_seq=messages // SESSIONS,
        )
        for n in range(SESSIONS)
    ]
    await ChatSession.bulk_create(sessions)
    pick = random.Random(13)
    rows = []
    rare_ids: list[str] = []
    for n in range(messages):
        session = sessions[n % SESSIONS]
        words = pick.choices(VOCABULARY, k=12)
        if n % 2 == 0 and len(rare_ids) < rare:  # one of the owner's sessions
            words[pick.randrange(12)] = "aurora"
        message = Message(
            id=uuid.uuid4(),
            session_id=session.id,
            seq=n // SESSIONS + 1,
            type=MessageType.USER if n % 2 == 0 else MessageType.AI,
            content=" ".join(words),
        )
        if "aurora" in words:
            rare_ids.append(str(message.id))
        rows.append(message)
    await Message.bulk_create(rows, batch_size=500)
    connection = Tortoise.get_connection("default")
    await connection.execute_script("ANALYZE")
    return rare_ids


def page_statement(caller: Caller, query: str, session_id: str | None) -> tuple[str, Any]:
    """The statement of a search's first page, as the service writes it."""
    if BACKEND == "postgres":
        backend: search._Backend = search._Postgres(
            caller=caller, text=query, session_id=session_id
        )
    else:
        text = search._fts5_expression(query)
        backend = search._Sqlite(caller=caller, text=text, session_id=session_id)
    return backend.page_statement(offset=0, limit=3)


@pytest.mark.parametrize("scope", ["user", "admin", "one session"])
async def test_a_search_is_answered_from_the_index(
    alice: Account, bob: Account, scope: str
) -> None:
    rare = await seed(alice, bob, messages=3000, rare=5)
    caller = caller_of(alice, admin=scope == "admin")
    session_id = None
    if scope == "one session":
        found_in = await Message.get(id=rare[0])
        session_id = str(found_in.session_id)

    found = await search.search(caller=caller, query="aurora", session_id=session_id, limit=3)

    if session_id is None:
        assert found.total == 5
        assert {str(hit.message.id) for hit in found.hits} <= set(rare)
    else:
        assert rare[0] in {str(hit.message.id) for hit in found.hits}
    sql, values = page_statement(caller, "aurora", session_id)
    connection = Tortoise.get_connection("default")
    if BACKEND == "postgres":
        (row,) = await connection.execute_query_dict("EXPLAIN (FORMAT JSON) " + sql, values)
        plan = json.dumps(json.loads(row["QUERY PLAN"]))
        if session_id is None:
            assert '"Index Name": "idx_messages_search"' in plan, plan
        assert not re.search(r'"Node Type": "Seq Scan", [^{}]*"Relation Name": "messages"', plan)
    else:
        rows = await connection.execute_query_dict("EXPLAIN QUERY PLAN " + sql, values)
        details = [row["detail"] for row in rows]
        assert any(
            re.fullmatch(r"SCAN message_search VIRTUAL TABLE INDEX \d+:M.*", d) for d in details
        ), details
        assert not any(re.match(r"SCAN (m|messages|s|chat_sessions)( |$)", d) for d in details), (
            details
        )


async def test_a_page_past_the_end_still_has_the_total(alice: Account, bob: Account) -> None:
    await seed(alice, bob, messages=3000, rare=5)

    found = await search.search(caller=caller_of(alice), query="aurora", offset=40)

    assert (found.hits, found.total) == ([], 5)


# The FTS5 translation ----------------------------------------------------------------------

PIECES = [
    *('"', "*", "(", ")", ":", "^", "-", "+", "{", "}", ",", ".", "'", "\\", "/", ";", "|"),
    *("AND", "OR", "NOT", "NEAR", "NEAR(", "or", "and", "not", "near/3", "content", "rowid"),
    *("fox", "kite", "running", "the", "é", "日本", "x1", "_", "\t", " ", " ", " "),
]
# What a written expression may hold outside its quoted strings.
OPERATORS = re.compile(r'\(|\)| AND | OR | NOT |"(?:[^"]|"")*"')


def test_the_fts5_expression_quotes_everything_the_user_wrote() -> None:
    index = sqlite3.connect(":memory:")
    index.execute("CREATE VIRTUAL TABLE t USING fts5(content, tokenize = 'porter unicode61')")
    index.executemany(
        "INSERT INTO t (content) VALUES (?)",
        [("a fox runs",), ("the kite",), ("near the fox, a kite",), ("content: rowid",)],
    )
    pick = random.Random(7)
    refused = 0
    for _ in range(3000):
        query = "".join(pick.choices(PIECES, k=pick.randint(1, 12)))
        try:
            expression = search._fts5_expression(query)
        except Invalid as refusal:
            assert refusal.field == "query"
            refused += 1
            continue
        assert OPERATORS.sub("", expression).strip() == "", (query, expression)
        index.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()
    assert 0 < refused < 2500


@pytest.mark.parametrize(
    ("query", "expression"),
    [
        ("fox", '("fox")'),
        ("Fox kite", '("Fox") AND ("kite")'),
        ('"fox kite" run', '("fox kite") AND ("run")'),
        ('"unclosed phrase', '("unclosed phrase")'),
        ("fox -kite", '(("fox")) NOT ("kite")'),
        ('fox -"red kite" -blue', '(("fox")) NOT ("red kite" OR "blue")'),
        ("tea or coffee milk", '("tea" OR "coffee") AND ("milk")'),
        ("tea or the coffee", '("tea" OR "coffee")'),
        ("or tea", '("tea")'),
        ("the fox and the kite", '("fox") AND ("kite")'),
        ("fox*", '("fox*")'),
        ("NEAR(fox", '("NEAR(fox")'),
        ("fox:*", '("fox:*")'),
        ('a"b', '("b")'),  # "a" is a common word
        ("x AND y", '("x") AND ("y")'),
    ],
)
def test_the_fts5_expression_of_a_query(query: str, expression: str) -> None:
    assert search._fts5_expression(query) == expression


@pytest.mark.parametrize("query", ["-fox", "the", "AND OR NOT", "* ( ) :", "- -", '""', "or"])
def test_a_query_with_nothing_to_search_for_has_no_expression(query: str) -> None:
    with pytest.raises(Invalid) as refused:
        search._fts5_expression(query)
    assert refused.value.field == "query"


# Snippet marks -----------------------------------------------------------------------------


def test_marks_are_characters_no_message_of_the_page_holds() -> None:
    assert search._markers(["plain text", "more"]) == search.DEFAULT_MARKERS
    controls = "".join(chr(c) for c in range(0x02, 0xA0) if not chr(c).isalnum())
    marks = search._markers(["a \x02 b", controls])
    assert marks is not None and not set(marks) & set(controls + "\x02")
    assert not any(mark.isspace() for mark in marks)


def test_a_page_holding_every_character_gets_unmarked_snippets() -> None:
    everything = "".join(search._marker_candidates())
    assert search._markers(["x", everything]) is None
    words = " ".join(f"<w{n}>" for n in range(40))
    assert search._unmarked(words) == " ".join(f"&lt;w{n}&gt;" for n in range(24)) + "…"
    assert search._unmarked("short & sweet") == "short &amp; sweet"
