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
# Provider options are flat or nearly so (response_format's JSON schema is the deepest).
MAX_PARAMETERS_DEPTH = 32
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Parameters are shown to every user; a secret must live in the environment instead.
_SECRET_NAMES = frozenset(
    {"key", "apikey", "secret", "password", "passwd", "authorization", "token", "cookie"}
)
_SECRET_ENDINGS = ("_key", "apikey", "_secret", "password", "_token", "credentials")


def looks_secret(name: str) -> bool:
    """`api_key`, `openai_api_key`, `Authorization`, `access_token`... but not `max_tokens`."""
    normal = name.lower().replace("-", "_")
    return normal in _SECRET_NAMES or normal.endswith(_SECRET_ENDINGS) or "authorization" in normal


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
    check_parameters(parameters)
    return dict(parameters)


def check_fields(fields: dict[str, Any]) -> None:
    """Validate and normalise (strip) the given fields in place."""
    for name, limit in TEXT_LIMITS.items():
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise Invalid("must be a string", field=name)
        stripped = value.strip()
        if (problem := text_problem(stripped)) is not None:
            raise Invalid(problem, field=name)
        if name in ("provider", "model_name") and not stripped:
            raise Invalid("must not be empty", field=name)
        if len(stripped) > limit:
            raise Invalid(f"must be at most {limit} characters", field=name)
        fields[name] = stripped
    if "parameters" in fields:
        fields["parameters"] = checked_parameters(fields["parameters"])
    env_name = fields.get("api_key_env")
    if env_name and not _ENV_NAME.fullmatch(env_name):
        raise Invalid("must be the NAME of an environment variable, not a key", field="api_key_env")
