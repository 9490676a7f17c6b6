"""What a model config may hold, whatever its provider.

Sizes, an environment variable's name, an http(s) base URL, the types of the parameters
every provider reads alike (`temperature` means what it means to OpenAI, `prefix` what it
means to `echo`), and no secret anywhere. The rules are the same for every provider, so a
config that is valid stays valid when its provider changes, and they are written as
patterns and a JSON Schema that the OpenAPI document states word for word: the document
and the server cannot disagree. Patterns avoid flags and `$`, so ECMA-262 (what JSON
Schema specifies) and Python read them alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from db.errors import Invalid
from db.services.text import BLANK, END, NO_NUL_PATTERN, json_problem, text_problem

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
_SINGLE_LINE = rf"^[^\r\n\u0000]*{END}"
# The name of an environment variable, blanks around it allowed (they are stripped).
ENV_NAME_PATTERN = rf"^[{BLANK}]*[A-Za-z_][A-Za-z0-9_]*[{BLANK}]*{END}"
_HEADER_NAME = rf"^[!#$%&'*+.^_`|~0-9A-Za-z-]+{END}"


def _literal(char: str) -> str:
    # Only what must be escaped: ECMA-262's unicode mode refuses needless escapes like `\-`.
    return "\\" + char if char in ".^$*+?()[]{}|\\/" else char


def _any_case(word: str) -> str:
    """A pattern matching `word` in any letter case; `_` stands for `_` or `-`."""
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.isalpha() else "[_-]" if c == "_" else _literal(c)
        for c in word
    )


def _either(words: list[str]) -> str:
    return "(?:" + "|".join(map(_any_case, words)) + ")"


# Parameters are shown to every user; a secret must live in the environment instead.
_SECRET_WORDS = _either(["key", "apikey", "secret", "password", "passwd", "token", "cookie"])
_SECRET_ENDINGS = _either(["_key", "apikey", "_secret", "password", "_token", "credentials"])
_AUTHORIZATION = _any_case("authorization")
SECRET_NAME_PATTERN = f"^{_SECRET_WORDS}{END}|{_SECRET_ENDINGS}{END}|{_AUTHORIZATION}"
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)
# Headers that would carry a secret, or that the gateway sets itself.
FORBIDDEN_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
    | {"accept", "content-type", "content-length", "host", "transfer-encoding"}
    | {"openai-organization", "openai-project"}
)
# Set by the gateway from the config and the turn; a parameter may not override them.
RESERVED_PARAMETERS = ("model", "messages", "stream")

# A base URL: http(s), a host name, an IPv4 address or a full or loopback IPv6 address, a
# port, a path and a query; no credentials, no #fragment, and no query parameter whose
# name looks like a secret (or hides its name in %-escapes).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_IPV6 = r"\[(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|::1?)\]"
_PORT = r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?"
_URL_CHARS = r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]"
_NAME_END = rf"(?=[=&]|{END})"
_SECRET_QUERY_NAME = (
    rf"(?:{_SECRET_WORDS}{_NAME_END}|[^=&]*{_SECRET_ENDINGS}{_NAME_END}"
    rf"|[^=&]*{_AUTHORIZATION}|[^=&]*%)"
)
BASE_URL_PATTERN = (
    rf"^[{BLANK}]*(?![^?]*\?(?:[^&]*&)*{_SECRET_QUERY_NAME})"
    rf"[hH][tT][tT][pP][sS]?://(?:{_LABEL}(?:\.{_LABEL})*|{_IPV6}){_PORT}"
    rf"(?:/{_URL_CHARS}*)?(?:\?(?:{_URL_CHARS}|\?)*)?[{BLANK}]*{END}"
)
_BASE_URL = re.compile(BASE_URL_PATTERN)

_NOT_SECRET = {"pattern": NO_NUL_PATTERN, "not": {"pattern": SECRET_NAME_PATTERN}}
_TEXT = {"type": "string", "pattern": NO_NUL_PATTERN}
_NUMBER = {"type": "number", "description": "a number"}
# Integers every JSON reader keeps exact (I-JSON, RFC 7493): larger ones arrive as floats
# from some parsers, orjson included, and a budget of 1e19 would fail every turn.
_SAFE = 2**53 - 1
_SAFE_INTEGER = {"minimum": -_SAFE, "maximum": _SAFE}
_POSITIVE = {
    "type": "integer",
    "minimum": 1,
    "maximum": _SAFE,
    "description": "a positive integer (at most 2^53 - 1)",
}
_LINE = {"type": "string", "pattern": _SINGLE_LINE, "description": "a single-line string"}


def parameter_schemas(ref: str) -> dict[str, dict[str, Any]]:
    """The JSON Schemas of `parameters` (ConfigParameters) and of any value inside it
    (ParameterValue); `ref` formats a reference to either, e.g. "#/$defs/{model}"."""
    value = {"$ref": ref.format(model="ParameterValue")}
    return {
        "ParameterValue": {
            "description": "Any JSON value; no object key in it may look like a secret.",
            "anyOf": [
                {"type": ["number", "boolean", "null"]},
                _TEXT,
                {"type": "array", "items": value},
                {"type": "object", "propertyNames": _NOT_SECRET, "additionalProperties": value},
            ],
        },
        "ConfigParameters": {
            "type": "object",
            "description": (
                "Options for the model, the same for every provider. A name that looks like "
                "a secret (api_key, ..._token) is refused anywhere in it: a key belongs in the "
                "environment variable named by api_key_env. The gateway reads system_prompt "
                "and the history budget; echo reads prefix and chunk_delay_ms; openai sends "
                "the rest to the Chat Completions API (extra_headers, organization, project "
                "and api_key_header as headers)."
            ),
            "propertyNames": {
                **_NOT_SECRET,
                "not": {
                    "anyOf": [{"pattern": SECRET_NAME_PATTERN}, {"enum": list(RESERVED_PARAMETERS)}]
                },
            },
            "properties": {
                "system_prompt": {**_TEXT, "description": "a string"},
                "max_history_messages": _POSITIVE,
                "max_history_tokens": _POSITIVE,
                "prefix": {**_TEXT, "description": "a string"},
                "chunk_delay_ms": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 5000,
                    "description": "a number from 0 to 5000",
                },
                "temperature": _NUMBER,
                "top_p": _NUMBER,
                "presence_penalty": _NUMBER,
                "frequency_penalty": _NUMBER,
                "max_tokens": _POSITIVE,
                "max_completion_tokens": _POSITIVE,
                "seed": {
                    "type": "integer",
                    **_SAFE_INTEGER,
                    "description": "an integer (within ±(2^53 - 1))",
                },
                "n": {"const": 1, "description": "1: the gateway stores one reply"},
                "stop": {
                    "anyOf": [_TEXT, {"type": "array", "items": _TEXT}],
                    "description": "a string or a list of strings",
                },
                "stream_options": {
                    "anyOf": [
                        {"type": "object", "additionalProperties": value},
                        {"type": "null"},
                    ],
                    "description": "an object or null",
                },
                "organization": _LINE,
                "project": _LINE,
                "api_key_header": {
                    "type": "string",
                    "pattern": _HEADER_NAME,
                    "description": "an HTTP header name",
                },
                "extra_headers": {
                    "type": "object",
                    "propertyNames": {
                        "pattern": _HEADER_NAME,
                        "not": {"pattern": f"^{_either(sorted(FORBIDDEN_HEADERS))}{END}"},
                    },
                    "additionalProperties": _LINE,
                    "description": (
                        "an object of HTTP header names to single-line strings; "
                        "credentials belong in api_key_env"
                    ),
                },
            },
            "additionalProperties": value,
        },
    }


_SCHEMAS = parameter_schemas("#/$defs/{model}")
_PARAMETERS = Draft202012Validator({"$ref": "#/$defs/ConfigParameters", "$defs": _SCHEMAS})
_INTEGERS = [
    name
    for name, schema in _SCHEMAS["ConfigParameters"]["properties"].items()
    if schema.get("type") == "integer"
]


def looks_secret(name: str) -> bool:
    """`api_key`, `openai_api_key`, `Authorization`, `access_token`... but not `max_tokens`."""
    return _SECRET_NAME.search(name) is not None


def _secret_path(value: Any, path: str = "") -> str | None:
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, Mapping):
            for name, member in item.items():
                inner = f"{where}.{name}" if where else str(name)
                if looks_secret(str(name)):
                    return inner
                pending.append((member, inner))
        elif isinstance(item, list):
            pending.extend((member, f"{where}[{index}]") for index, member in enumerate(item))
    return None


def _description(schema: object) -> str | None:
    described = schema.get("description") if isinstance(schema, Mapping) else None
    return described if isinstance(described, str) else None


def _reason(error: ValidationError) -> str:
    """A readable reason for the first broken rule, naming the parameter."""
    path = ".".join(str(part) for part in error.absolute_path)
    where = f"{path}: " if path else ""
    for rule in error.absolute_schema_path:
        if rule == "propertyNames":  # a name that may not be used (reserved, a header...)
            return f"{where}{error.instance!r} may not be used as a name here"
    described = _description(error.schema)
    if path and described is None and error.parent is not None:
        described = _description(error.parent.schema)
    if path and described:
        return f"{path} must be {described}"
    return f"{where}{error.message}"


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
    for name in _INTEGERS:  # JSON does not tell 20 from 20.0: keep 20
        value = checked.get(name)
        if isinstance(value, float) and value.is_integer() and abs(value) <= _SAFE:
            checked[name] = int(value)
    error = best_match(_PARAMETERS.iter_errors(checked))
    if error is not None:
        raise Invalid(_reason(error), field="parameters")
    return checked


def check_base_url(base_url: str) -> None:
    """An http(s) URL a client may call: the rule is BASE_URL_PATTERN; the reasons below
    only say what is wrong with one that does not match it."""
    if _BASE_URL.match(base_url):
        return
    reason = "must be an http:// or https:// URL"
    try:
        parts = urlsplit(base_url.strip())
        parts.port  # noqa: B018 - parsing the port is a check
    except ValueError as exc:
        reason = f"is not a valid URL ({exc})"
    else:
        if parts.username is not None or parts.password is not None:
            reason = "must not contain credentials: name them in api_key_env"
        elif parts.fragment:
            reason = "must not have a #fragment"
        elif "?" in base_url:
            reason = "must have no query parameter that looks like a secret (or is %-escaped)"
    raise Invalid(reason, field="base_url")


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
    if fields.get("base_url") is not None:
        check_base_url(fields["base_url"])
    env_name = fields.get("api_key_env")
    if env_name is not None and not re.match(ENV_NAME_PATTERN, env_name):
        raise Invalid(
            "must be the name of an environment variable (not a key)", field="api_key_env"
        )


# What stands in a copy of a config for a value that breaks the rules above (see `public`).
REDACTED = "[redacted]"


def _redacted(value: Any) -> Any:
    """`value` with the value of every member whose name looks like a secret replaced."""
    if isinstance(value, Mapping):
        return {
            str(name): REDACTED if looks_secret(str(name)) else _redacted(member)
            for name, member in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def public(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a config's values that holds no secret, for records that outlive it.

    Every write through the service checks its fields, so this changes nothing for such a
    config; a row written another way (by hand, before a rule existed) may break a rule,
    and what would break it is replaced by REDACTED: a member of `parameters` (at any
    depth) whose name looks like a secret, a `base_url` the rule refuses (credentials,
    a secret-looking query), an `api_key_env` that is not a variable's name (a key)."""
    copied = dict(values)
    if "parameters" in copied:
        copied["parameters"] = _redacted(copied["parameters"])
    base_url = copied.get("base_url")
    if base_url is not None and not (isinstance(base_url, str) and _BASE_URL.match(base_url)):
        copied["base_url"] = REDACTED
    env_name = copied.get("api_key_env")
    if env_name is not None and not (
        isinstance(env_name, str) and re.match(ENV_NAME_PATTERN, env_name)
    ):
        copied["api_key_env"] = REDACTED
    return copied
