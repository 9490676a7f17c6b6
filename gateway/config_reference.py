"""The configuration reference of README.md, generated from the settings class."""

from __future__ import annotations

import re
from typing import Any

from pydantic.fields import FieldInfo

from gateway.settings import Settings

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
_BLOCK = re.compile(re.escape(START) + r"\n.*?" + re.escape(END), re.DOTALL)


class MissingDescription(Exception):
    """A setting without `description=`: the reference would have a hole."""


def _shown(value: Any) -> str:
    """A default as it would be written in the environment."""
    if value is None or value == "" or value == []:
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`{','.join(str(item) for item in value)}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def _row(name: str, field: FieldInfo) -> str:
    if not field.description:
        raise MissingDescription(f"setting {name} has no description= (gateway/settings.py)")
    meaning = field.description.replace("|", "\\|")
    return f"| `{name.upper()}` | {_shown(field.default)} | {meaning} |"


def table() -> str:
    """Every setting, in the order the settings class declares them, as a Markdown table."""
    rows = [_row(name, field) for name, field in Settings.model_fields.items()]
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows]) + "\n"


def block() -> str:
    """The table between the README markers."""
    return f"{START}\n{table()}{END}"


def current_block(readme: str) -> str | None:
    """The marked block of a README text, if it has one."""
    match = _BLOCK.search(readme)
    return match.group(0) if match else None


def rewritten(readme: str) -> str:
    """The README text with its marked block replaced by a freshly generated one."""
    if current_block(readme) is None:
        raise ValueError(f"no {START} ... {END} block to replace")
    return _BLOCK.sub(lambda _: block(), readme, count=1)
