"""The `openai` provider's config: the request it implies.

Its fields and parameters are checked when a config is saved, by the rules every provider
shares (db.services.config_rules).

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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from db.ports import GATEWAY_PARAMETERS, ModelSpec

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Parameters the provider reads itself; every other parameter goes into the request body.
PROVIDER_PARAMETERS = frozenset({"extra_headers", "organization", "project", "api_key_header"})
# Sent only with streamed requests (servers refuse it otherwise); null leaves it out.
STREAM_OPTIONS = "stream_options"


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
