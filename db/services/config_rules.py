"""What a model config may hold: sizes, names, and no secret anywhere in its parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from db.errors import Invalid
from db.services.history import check_parameters
from db.services.text import json_problem, text_problem

TEXT_LIMITS = {
    "provider": 50,
    "model_name": 200,
    "model_version": 100,
    "base_url": 500,
    "api_key_env": 200,
}
NOT_BLANK = frozenset({"provider", "model_name"})
# Provider options are flat or nearly so (response_format's JSON schema is the deepest).
MAX_PARAMETERS_DEPTH = 32
# The name of an environment variable, blanks around it allowed (they are stripped).
ENV_NAME_PATTERN = r"^\s*([A-Za-z_][A-Za-z0-9_]*)?\s*$"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)


def _any_case(word: str) -> str:
    """A pattern matching `word` in any letter case; `_` stands for `_` or `-`."""
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else "[_-]" if c == "_" else c for c in word
    )


# Parameters are shown to every user; a secret must live in the environment instead.
# Written without flags or `$` (ECMA-262 and Python read it alike): the OpenAPI document
# states this very pattern, so the document and the check cannot disagree.
_END = r"(?![\s\S])"
SECRET_NAME_PATTERN = "|".join(
    [
        "^("
        + "|".join(
            map(_any_case, ["key", "apikey", "secret", "password", "passwd", "token", "cookie"])
        )
        + ")"
        + _END,
        "("
        + "|".join(
            map(_any_case, ["_key", "apikey", "_secret", "password", "_token", "credentials"])
        )
        + ")"
        + _END,
        _any_case("authorization"),
    ]
)
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)


def looks_secret(name: str) -> bool:
    """`api_key`, `openai_api_key`, `Authorization`, `access_token`... but not `max_tokens`."""
    return _SECRET_NAME.search(name) is not None


def _secret_path(value: Any, path: str = "") -> str | None:
    if isinstance(value, Mapping):
        for name, item in value.items():
            where = f"{path}.{name}" if path else str(name)
            if looks_secret(str(name)):
                return where
            if (found := _secret_path(item, where)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _secret_path(item, f"{path}[{index}]")) is not None:
                return found
    return None


def checked_parameters(parameters: Any) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        raise Invalid("must be a JSON object", field="parameters")
    if (problem := json_problem(parameters, max_depth=MAX_PARAMETERS_DEPTH)) is not None:
        raise Invalid(problem, field="parameters")
    if (where := _secret_path(parameters)) is not None:
        raise Invalid(
            f"{where!r} looks like a secret: put it in an environment variable and name "
            "that variable in api_key_env",
            field="parameters",
        )
    checked = dict(parameters)
    check_parameters(checked)
    return checked


def check_fields(fields: dict[str, Any]) -> None:
    """Validate and normalise (strip) the given fields in place."""
    for name, limit in TEXT_LIMITS.items():
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise Invalid("must be a string", field=name)
        # The limit counts what was sent (blanks too), as the OpenAPI document says.
        if len(value) > limit:
            raise Invalid(f"must be at most {limit} characters", field=name)
        if (problem := text_problem(value)) is not None:
            raise Invalid(problem, field=name)
        stripped = value.strip()
        if name in NOT_BLANK and not stripped:
            raise Invalid("must not be empty", field=name)
        fields[name] = stripped
    if "parameters" in fields:
        fields["parameters"] = checked_parameters(fields["parameters"])
    env_name = fields.get("api_key_env")
    if env_name and not _ENV_NAME.match(env_name):
        raise Invalid("must be the NAME of an environment variable, not a key", field="api_key_env")
