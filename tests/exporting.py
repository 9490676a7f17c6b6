"""Helpers of the export tests: sessions seeded in bulk, text that breaks Markdown, and
reading a Markdown export back with a real parser (markdown-it-py)."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from db.fields import Json
from db.models import ChatSession, Message, MessageType

# Text a Markdown export must keep exactly: unicode of every direction and width, and
# everything that means something in Markdown or HTML.
TRICKY = [
    "Hello 👋🏽 family: 👨‍👩‍👧‍👦, flags 🇯🇵🇺🇦, keycap 1️⃣",
    "你好\uff0c世界\u3002日本語のテキスト\u3001한국어 텍스트",
    "مرحبا بالعالم \u200f(RTL)\u200f and שלום עולם with \u202emixed\u202c direction",
    "```python\nprint('fenced')\n```",
    "Four: ````\n`````five and six``````\n```",
    "`inline` and `` double `` and a lone ` backtick",
    "# Heading one\n## Heading two\n#hashtag\n   ### indented",
    "| a | b |\n|---|---|\n| 1 | 2 |\n| `|` | \\| |",
    "<script>alert('x')</script>\n<div onclick=\"x\">html</div>&amp; &lt; &#x27; &copy;",
    "trailing spaces   \nhard break above\n\n\n",
    "\n\nleading newlines and a tab\tinside",
    "    indented code?\n\ttab indented",
    "---\n===\n***\n___",
    "> quote\n- item\n* item\n1. item\n2) item",
    "[link](javascript:alert(1)) ![img](x.png) <https://example.com> https://bare.example",
    "back\\slash \\` \\* \\_ \\# and a final backslash\\",
    "~~~\ntilde fence\n~~~",
    "line\r\nwindows\rold mac\r",
    "**bold** _em_ ~~strike~~ $math$ [^note] {curly} ::: container",
    "zero\u200bwidth, nbsp\u00a0here, line sep\u2028para sep\u2029, bom\ufeff, vt\x0b ff\x0c",
    "``````````",
    ".",
]

TRICKY_METADATA: list[Any] = [
    {"emoji": "🎉", "cjk": "中文", "rtl": "עברית", "nested": {"list": [1, 2.5, None, True]}},
    "a plain string",
    {"markdown": "# not a heading | `code` <b>", "empty": {}, "zero": 0},
    [1, "two", {"three": 3}],
]


def seeded_contents(count: int, *, length: int = 60) -> list[str]:
    """`count` distinct texts of about `length` characters, some Markdown-hostile."""
    rng = random.Random(count * 7919 + length)
    texts = []
    for number in range(1, count + 1):
        filler = "".join(rng.choice("abc def `|#<>*_\n😀é中") for _ in range(length))
        texts.append(f"message {number}: {filler}")
    return texts


async def seed_messages(
    session_id: str, contents: list[str], *, metadata: list[Any] | None = None
) -> list[Message]:
    """Append `contents` to the session's history in bulk (user and AI in turn), numbered
    on from its last message as a turn numbers them."""
    session = await ChatSession.get(id=session_id)
    start = session.last_seq
    rows = []
    for index, content in enumerate(contents):
        seq = start + index + 1
        meta = None if metadata is None else metadata[index % len(metadata)]
        rows.append(
            Message(
                id=uuid.uuid4(),
                session_id=session_id,
                seq=seq,
                type=MessageType.USER if seq % 2 else MessageType.AI,
                content=content,
                metadata=Json(meta),
            )
        )
    await Message.bulk_create(rows, batch_size=500)
    await ChatSession.filter(id=session_id).update(last_seq=start + len(contents))
    return rows


@dataclass(frozen=True)
class MarkdownExport:
    title: str
    sections: list[tuple[str, str]]  # (heading text, message content) per message
    footer: str
    block_types: list[str]  # the top-level block tokens, in order


PARSERS = {
    # CommonMark as specified, raw HTML on; and markdown-it's default (tables, strikethrough).
    "commonmark": MarkdownIt("commonmark"),
    "default": MarkdownIt("default"),
}


def fence_text(token: Token) -> str:
    """The message a fence token holds (see db.services.exports.fenced)."""
    assert token.type == "fence", token
    assert token.content.endswith("\n"), token
    text = token.content[:-1]
    if token.info == "json":
        decoded = json.loads(text)
        assert isinstance(decoded, str)
        return decoded
    assert token.info == "", token.info
    return text


def read_markdown(document: str, parser: str = "commonmark") -> MarkdownExport:
    """A Markdown export as a parser sees it; fails unless its top level is exactly a title,
    the session's facts, one heading and one fence per message, a rule and the last line."""
    tokens = PARSERS[parser].parse(document)
    # The blocks of the top level, with the text of the headings and paragraphs among them.
    top = [t for t in tokens if t.level == 0 or (t.type == "inline" and t.level == 1)]
    types = [token.type for token in top]
    assert types[:4] == ["heading_open", "inline", "heading_close", "bullet_list_open"], types
    assert top[0].tag == "h1"
    children = top[1].children or []
    assert {child.type for child in children} <= {"text"}, children  # literal text only
    title = "".join(child.content for child in children)
    rest = top[5:]  # after the list's close
    assert types[4] == "bullet_list_close", types
    sections: list[tuple[str, str]] = []
    while rest and rest[0].type == "heading_open":
        opening, inline, closing, fence, *rest = rest
        assert opening.tag == "h2" and closing.type == "heading_close", (opening, closing)
        sections.append((inline.content, fence_text(fence)))
    assert [token.type for token in rest] == [
        "hr",
        "paragraph_open",
        "inline",
        "paragraph_close",
    ], [token.type for token in rest]
    return MarkdownExport(title, sections, rest[2].content, types)
