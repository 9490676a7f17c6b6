"""The `openai` provider's config: save-time validation and the request it implies.

A config's fields: `base_url` (default OpenAI's; a query such as Azure's `?api-version=`
is kept), `model_name` (sent as "model"), `api_key_env` (the NAME of the variable holding
the key; none for keyless local servers). Its parameters go into the request body as
given, except the gateway's own (`system_prompt`, `max_history_*`) and these, read here:

- `extra_headers`: object of header name -> string (no credentials: those belong in
  `api_key_env`);
- `organization`, `project`: sent as OpenAI-Organization / OpenAI-Project;
- `api_key_header`: the header carrying the key; "Authorization" (default) sends
  "Bearer <key>", any other name (Azure's "api-key") the bare key;
- `stream_options`: merged into streamed requests with include_usage=true; null leaves
  the field out for servers that refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from db.errors import Invalid
from db.ports import ModelSpec
from db.services.config_rules import looks_secret
from db.services.history import GATEWAY_PARAMETERS

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Parameters the provider reads itself; every other parameter goes into the request body.
PROVIDER_PARAMETERS = frozenset({"extra_headers", "organization", "project", "api_key_header"})
# Sent only with streamed requests (servers refuse it otherwise); null leaves it out.
STREAM_OPTIONS = "stream_options"
# Set by the gateway from the config and the turn; a parameter may not override them.
RESERVED_PARAMETERS = frozenset({"model", "messages", "stream"})
# Headers that would carry a secret (parameters are shown to every user) or that we set.
FORBIDDEN_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
    | {"accept", "content-type", "content-length", "host", "transfer-encoding"}
    | {"openai-organization", "openai-project"}
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_POSITIVE_INTEGERS = ("max_tokens", "max_completion_tokens")


@dataclass(frozen=True, slots=True)
class RequestOptions:
    url: str
    headers: Mapping[str, str]  # without the key, which is read from the environment
    key_header: str  # "Authorization" sends "Bearer <key>"; any other name sends the bare key
    parameters: Mapping[str, Any]  # passed through into the body
    stream_options: Mapping[str, Any] | None  # None: a server that refuses the field


def request_options(spec: ModelSpec) -> RequestOptions:
    params = spec.parameters
    parts = urlsplit(spec.base_url or DEFAULT_BASE_URL)
    # Keep the query: Azure-style deployments put `?api-version=...` in the base URL.
    path = parts.path.rstrip("/") + "/chat/completions"
    url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    headers = {"Content-Type": "application/json", **params.get("extra_headers", {})}
    for name, header in (("organization", "OpenAI-Organization"), ("project", "OpenAI-Project")):
        if params.get(name):
            headers[header] = params[name]
    skipped = GATEWAY_PARAMETERS | PROVIDER_PARAMETERS | {STREAM_OPTIONS}
    return RequestOptions(
        url=url,
        headers=headers,
        key_header=params.get("api_key_header") or "Authorization",
        parameters={name: value for name, value in params.items() if name not in skipped},
        stream_options=params.get(STREAM_OPTIONS, {}),
    )


def validate(spec: ModelSpec) -> None:
    """Raise `Invalid` naming the field when a config cannot work (checked when saved)."""
    _check_base_url(spec.base_url)
    if spec.api_key_env is not None and not _ENV_NAME.fullmatch(spec.api_key_env):
        raise Invalid("must be the name of an environment variable", field="api_key_env")
    params = spec.parameters
    reserved = sorted(RESERVED_PARAMETERS & params.keys())
    if reserved:
        raise Invalid(f"{reserved[0]} is set by the gateway, not a parameter", field="parameters")
    for name in _NUMBERS:
        if name in params and not _is_number(params[name]):
            raise Invalid(f"{name} must be a number", field="parameters")
    for name in _POSITIVE_INTEGERS:
        if name in params and not (_is_int(params[name]) and params[name] > 0):
            raise Invalid(f"{name} must be a positive integer", field="parameters")
    if "seed" in params and not _is_int(params["seed"]):
        raise Invalid("seed must be an integer", field="parameters")
    if "n" in params and params["n"] != 1:
        raise Invalid("n must be 1: the gateway stores one reply", field="parameters")
    stop = params.get("stop")
    if stop is not None and not _is_str_or_strings(stop):
        raise Invalid("stop must be a string or a list of strings", field="parameters")
    options = params.get(STREAM_OPTIONS)
    if options is not None and not isinstance(options, Mapping):
        raise Invalid("stream_options must be an object or null", field="parameters")
    for name in ("organization", "project"):
        if name in params and not _is_header_value(params[name]):
            raise Invalid(f"{name} must be a single-line string", field="parameters")
    _check_headers(params)


def _check_base_url(base_url: str | None) -> None:
    if base_url is None:
        return
    parts = urlsplit(base_url)
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise Invalid("has an invalid port", field="base_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("must be an http:// or https:// URL", field="base_url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("must not contain credentials: name them in api_key_env", field="base_url")
    if parts.fragment:
        raise Invalid("must not have a #fragment", field="base_url")
    for name, _ in parse_qsl(parts.query):
        if looks_secret(name):
            raise Invalid(f"query parameter {name!r} looks like a secret", field="base_url")


def _check_headers(params: Mapping[str, Any]) -> None:
    key_header = params.get("api_key_header")
    if key_header is not None and not (
        isinstance(key_header, str) and _HEADER_NAME.fullmatch(key_header)
    ):
        raise Invalid("api_key_header must be an HTTP header name", field="parameters")
    headers = params.get("extra_headers", {})
    if not isinstance(headers, Mapping):
        raise Invalid("extra_headers must be an object of strings", field="parameters")
    for name, value in headers.items():
        if not (isinstance(name, str) and _HEADER_NAME.fullmatch(name)):
            raise Invalid(f"extra_headers: {name!r} is not a header name", field="parameters")
        if not _is_header_value(value):
            raise Invalid(f"extra_headers: {name} must be a single-line string", field="parameters")
        if name.lower() in FORBIDDEN_HEADERS:
            raise Invalid(
                f"extra_headers: {name} may not be set here (a key belongs in api_key_env)",
                field="parameters",
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_or_strings(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value)
    )


def _is_header_value(value: Any) -> bool:
    return isinstance(value, str) and not any(char in value for char in "\r\n\0")
