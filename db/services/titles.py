"""Session titles: the one generated from the first user message, and the one a user sets."""

from __future__ import annotations

from typing import Any

from db.errors import Invalid
from db.services.text import text_problem

GENERATED_TITLE_CHARS = 60
MAX_TITLE_CHARS = 200
_ELLIPSIS = "…"


def generated(content: str) -> str | None:
    """The title a first user message gives its session: its first line (the first one
    with words), whitespace collapsed, at most 60 characters, cut at a word boundary
    with "…". None for a message without words."""
    line = next((" ".join(part.split()) for part in content.splitlines() if part.strip()), "")
    if not line:
        return None
    if len(line) <= GENERATED_TITLE_CHARS:
        return line
    room = GENERATED_TITLE_CHARS - len(_ELLIPSIS)
    cut = line[: room + 1].rsplit(" ", 1)[0] if " " in line[: room + 1] else line[:room]
    return cut[:room].rstrip() + _ELLIPSIS


def checked(title: Any) -> str | None:
    """A title a user sets: None clears it; blank or over 200 characters is refused."""
    if title is None:
        return None
    if not isinstance(title, str):
        raise Invalid("must be a string", field="title")
    if not title.strip():
        raise Invalid("must not be empty", field="title")
    if len(title) > MAX_TITLE_CHARS:
        raise Invalid(f"must be at most {MAX_TITLE_CHARS} characters", field="title")
    if (problem := text_problem(title)) is not None:
        raise Invalid(problem, field="title")
    return title
