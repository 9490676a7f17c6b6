"""db.services.exports: the Markdown pieces (checked with a real parser), and the document
read page by page, with its end fixed when it starts."""

from __future__ import annotations

import json
import random

import pytest
from starlette.applications import Starlette

from db.errors import Invalid, NotFound
from db.identity import Caller
from db.models import ChatSession, Message, Role
from db.services import exports, model_configs
from tests.exporting import PARSERS, TRICKY, fence_text, read_markdown, seed_messages
from tests.factories import make_account

# Pieces random texts are made of: whatever Markdown, HTML or a line ending could make of them.
PIECES = [
    *("`", "``", "```", "````", "~~~", "#", "|", "<", ">", "&", "&amp;", "<script>"),
    *("\n", "\r", "\r\n", " ", "  ", "\t", "\\", "*", "_", "-", "=", "[", "]", "(", ")"),
    *("!", "é", "😀", "ש", "中", "\u200f", "\u2028", "\x0b", "\x0c", "\ufeff", "a", "1."),
]


def random_texts(count: int) -> list[str]:
    rng = random.Random(13)
    return ["".join(rng.choices(PIECES, k=rng.randint(0, 40))) for _ in range(count)]


@pytest.mark.parametrize("parser", sorted(PARSERS))
def test_a_fenced_block_gives_any_text_back_exactly(parser: str) -> None:
    texts = [*TRICKY, "", " ", "\n", "\r", "`", "a\n", *random_texts(2000)]
    for text in texts:
        tokens = PARSERS[parser].parse(exports.fenced(text))
        assert [token.type for token in tokens] == ["fence"], (text, tokens)
        assert fence_text(tokens[0]) == text


def test_the_fence_is_longer_than_any_backtick_run_and_plain_otherwise() -> None:
    assert exports.fenced("plain") == "```\nplain\n```\n"
    assert exports.fenced("a ``````` b").startswith("````````\n")
    assert exports.fenced("a\rb") == '```json\n"a\\rb"\n```\n'


@pytest.mark.parametrize("parser", sorted(PARSERS))
def test_inline_text_is_literal_on_one_line(parser: str) -> None:
    for text in [*TRICKY, *random_texts(2000)]:
        expected = " ".join(text.split())
        if not expected:
            continue
        tokens = PARSERS[parser].parse("# " + exports.inline_text(text))
        assert [token.type for token in tokens] == ["heading_open", "inline", "heading_close"]
        children = tokens[1].children or []
        assert {child.type for child in children} <= {"text"}, (text, children)
        assert "".join(child.content for child in children) == expected


def test_format_is_json_or_markdown() -> None:
    assert exports.parse_format(None) is exports.Format.JSON
    assert exports.parse_format("markdown") is exports.Format.MARKDOWN
    for bad in ("JSON", "md", "", "json ", "xml"):
        with pytest.raises(Invalid) as refused:
            exports.parse_format(bad)
        assert refused.value.field == "format"


# With the database ------------------------------------------------------------------------


async def _owner_and_session(title: str | None = None) -> tuple[Caller, ChatSession]:
    account = await make_account("owner")
    config = await model_configs.get_default()
    session = await ChatSession.create(
        user_id=account.user_id, model_config_id=config.id, title=title
    )
    return Caller(account.user_id, account.name, Role.USER), session


async def _drain(export: exports.Export) -> bytes:
    return b"".join([chunk async for chunk in export.chunks])


async def test_the_file_name_is_the_title_in_ascii_words_and_the_id(app: Starlette) -> None:
    _, session = await _owner_and_session('Trip to Tōkyō: 東京 <plans> & "quotes"/..\\x')
    name = exports.filename(session, exports.Format.MARKDOWN)
    assert name == f"trip-to-tokyo-plans-quotes-x-{str(session.id)[:8]}.md"
    session.title = "東京"
    named = exports.filename(session, exports.Format.JSON)
    assert named == f"chat-session-{str(session.id)[:8]}.json"


async def test_pages_are_read_as_the_document_is_consumed(app: Starlette) -> None:
    """The last page is read after the first chunks were handed on: a change made to the
    last message in between is in the document."""
    caller, session = await _owner_and_session()
    # Long enough texts that one page encodes to more than two chunks.
    length = 2 * exports.CHUNK_BYTES // exports.PAGE_SIZE + 10
    count = 3 * exports.PAGE_SIZE
    await seed_messages(str(session.id), [f"{n:05d}" + "x" * length for n in range(count)])

    export = await exports.get(caller=caller, session_id=str(session.id), format="json")
    head = await anext(export.chunks)
    assert head.startswith(b'{"session":') and b'"content"' not in head  # no page read yet
    second = await anext(export.chunks)
    assert b'"00000' in second and b'"00499' not in second  # within the first page
    await Message.filter(session_id=session.id, seq=count).update(content="changed late")
    rest = await _drain(export)

    document = json.loads(head + second + rest)
    assert document["messages"][-1]["content"] == "changed late"
    assert len(document["messages"]) == count == document["session"]["message_count"]


async def test_the_end_is_fixed_when_the_export_starts(app: Starlette) -> None:
    caller, session = await _owner_and_session()
    await seed_messages(str(session.id), ["one", "two"])
    export = await exports.get(caller=caller, session_id=str(session.id), format="markdown")
    await seed_messages(str(session.id), ["three, stored after the export began"])

    read = read_markdown((await _drain(export)).decode())
    assert [content for _, content in read.sections] == ["one", "two"]
    assert read.footer == "*End of the session: 2 messages.*"


async def test_a_session_deleted_mid_export_interrupts_it(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    caller, session = await _owner_and_session()
    await seed_messages(str(session.id), ["m"] * (2 * exports.PAGE_SIZE))
    export = await exports.get(caller=caller, session_id=str(session.id), format="json")
    await anext(export.chunks)  # the head: the end is fixed

    await Message.filter(session_id=session.id).delete()
    await ChatSession.filter(id=session.id).delete()
    with pytest.raises(exports.ExportInterrupted):
        await _drain(export)
    [record] = [r for r in caplog.records if r.name == exports.__name__]
    assert "stopped after 0 of 1000 messages" in record.getMessage()
    assert "deleted" in record.getMessage()


async def test_another_users_session_is_not_found_and_an_admins_is(app: Starlette) -> None:
    _, session = await _owner_and_session()
    stranger = await make_account("stranger")
    root = await make_account("root", admin=True)
    with pytest.raises(NotFound):
        await exports.get(
            caller=Caller(stranger.user_id, "stranger", Role.USER), session_id=str(session.id)
        )
    export = await exports.get(
        caller=Caller(root.user_id, "root", Role.ADMIN), session_id=str(session.id)
    )
    document = json.loads(await _drain(export))
    assert document["messages"] == [] and document["session"]["message_count"] == 0
