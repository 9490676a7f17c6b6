"""The OpenAPI document's own constraints, fed back to the server.

For every constrained input the document declares (lengths, patterns, ranges, enums, the
names inside `parameters`, the body's "change at least one field"), requests are built at
each boundary, one past it, and from a set of tricky strings. The document itself, read by
a JSON Schema validator, says whether each request is valid; the server must accept
exactly the valid ones (200) and refuse the others (400 naming the input).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import shutil
from asyncio.subprocess import PIPE
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from db.services import model_configs
from tests.factories import Account, create_session
from tests.rest.expect import refused
from tests.rest.openapi_check import fetch_document

# Strings that sit on the edges of the service's text rules.
TRICKY = [
    "\x1c",
    "\x85",
    "\ufeff",
    "\ufeffecho",
    "echo\x1c",
    "\ufeffOPENAI_KEY",
    "",
    " ",
    "\t\n",
    "\u3000",
    "a",
    " a ",
    "a\x00b",
    "\x00",
    "0",
    "9lives",
    "OPENAI_KEY",
    " OPENAI_KEY ",
    "sk-123",
    "echo",
    " echo\n",
    "Echo",
    "openai",
    "nope",
    "é",
]
# Names tried inside `parameters`.
NAMES = [
    "temperature",
    "max_tokens",
    "api_key",
    "X-Api-Key",
    "openai_api_key",
    "Authorization",
    "access_token",
    "tokens",
    "monkey",
    "cookie",
    "passwd",
    "credentials",
    "a\x00",
]


@dataclass(frozen=True)
class Probe:
    field: str
    body: dict[str, Any] | None = None
    query: dict[str, str] | None = None
    headers: dict[str, str] | None = None


class Document:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:doc", resource)

    def schema(self, ref: str) -> dict[str, Any]:
        node: Any = self.document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        result: dict[str, Any] = node
        return result

    def valid(self, instance: Any, schema: dict[str, Any]) -> bool:
        validator = Draft202012Validator(
            {"$ref": "urn:doc#/components/schemas/__probe__"},
            registry=self._with(schema),
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        return validator.is_valid(instance)

    def _with(self, schema: dict[str, Any]) -> Registry[Any]:
        document = dict(self.document)
        document["components"] = {
            **document["components"],
            "schemas": {**document["components"]["schemas"], "__probe__": schema},
        }
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        return Registry().with_resource("urn:doc", resource)


def _strings(schema: dict[str, Any]) -> Iterator[str]:
    """Boundary strings for a string schema: at and past each length bound, and TRICKY."""
    pattern = schema.get("pattern")

    def fit(length: int) -> str | None:
        for filler in ("a", "A", " ", "0"):
            for sample in ("a", "echo", "A", ""):
                for candidate in (sample + filler * length, filler * length + sample):
                    candidate = candidate[:length] if len(candidate) > length else candidate
                    if len(candidate) == length and (
                        pattern is None or re.search(pattern, candidate)
                    ):
                        return candidate
        return None

    for bound in ("minLength", "maxLength"):
        if bound in schema:
            for length in (schema[bound] - 1, schema[bound], schema[bound] + 1):
                if length >= 0 and (value := fit(length)) is not None:
                    yield value
                elif length >= 0:
                    yield "a" * length
    yield from TRICKY


def _numbers(schema: dict[str, Any]) -> Iterator[int]:
    for bound in ("minimum", "maximum"):
        if bound in schema:
            yield from (schema[bound] - 1, schema[bound], schema[bound] + 1)


def _constraints(schema: dict[str, Any], document: Document) -> dict[str, Any]:
    """The schema's own keywords (those of the schema it references, if it is a `$ref`)
    merged with those of its non-null anyOf branches."""
    if "$ref" in schema:
        schema = document.schema(schema["$ref"])
    merged = {k: v for k, v in schema.items() if k != "anyOf"}
    for branch in schema.get("anyOf", []):
        if "$ref" in branch:
            branch = document.schema(branch["$ref"])
        if branch.get("type") != "null":
            merged = {**branch, **merged}
    return merged


def body_probes(document: Document, ref: str, base: dict[str, Any]) -> Iterator[Probe]:
    schema = document.schema(ref)
    yield Probe("body", body={})  # the empty body
    for name, property_schema in schema["properties"].items():
        constraints = _constraints(property_schema, document)
        kind = constraints.get("type")
        values: list[Any] = []
        if "enum" in constraints:
            values = [*constraints["enum"], False, "nope"]
        elif kind == "string" or "pattern" in constraints:
            values = list(_strings(constraints))
        elif kind == "object":
            values = list(_parameter_values(constraints, document))
        values.append(None)
        for value in values:
            yield Probe(name, body={**base, name: value})


def _parameter_values(schema: dict[str, Any], document: Document) -> Iterator[dict[str, Any]]:
    for name in NAMES:
        yield {name: 1}
        yield {"nested": [{name: "x"}]}
    for name, inner in schema.get("properties", {}).items():
        inner = _constraints(inner, document)
        if inner.get("type") in ("integer", "number"):
            yield from ({name: number} for number in _numbers(inner))
            yield from ({name: float(number)} for number in _numbers(inner))  # 2.0 is 2 in JSON
            yield {name: "1"}
        elif inner.get("type") == "string":
            yield from ({name: text} for text in ("ok", "a\x00", 5))


def query_probes(parameters: list[dict[str, Any]]) -> Iterator[Probe]:
    for parameter in parameters:
        if parameter["in"] not in ("query", "header"):
            continue
        constraints = parameter["schema"]
        name = parameter["name"]
        raw: list[Any] = list(_numbers(constraints))
        for branch in [constraints, *constraints.get("anyOf", [])]:
            raw += branch.get("enum", [])
            if branch.get("type") == "string" and "enum" not in branch:
                raw += [s for s in _strings(constraints) if "\x00" not in s and "\n" not in s]
        for value in raw:
            if parameter["in"] == "query":
                yield Probe(name, query={name: str(value)}, body={"__value__": value})
            elif str(value).isascii():  # what an HTTP header can carry
                yield Probe(name, headers={name: str(value)}, body={"__value__": value})


@pytest.fixture
async def accounts(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> tuple[Account, Account, str]:
    return alice, admin, await create_session(client, alice)


async def _answer(
    client: httpx.AsyncClient, method: str, path: str, probe: Probe, who: Account
) -> httpx.Response:
    headers = {**who.headers, **(probe.headers or {})}
    body = None if probe.query is not None or probe.headers is not None else probe.body
    return await client.request(method, path, params=probe.query, json=body, headers=headers)


async def _check(
    client: httpx.AsyncClient, method: str, path: str, probe: Probe, who: Account, valid: bool
) -> None:
    answer = await _answer(client, method, path, probe, who)
    if valid:
        # An id of the right shape may name nobody (404) or someone else (403): still accepted.
        accepted = (200, 403, 404) if probe.field.endswith("_id") else (200,)
        assert answer.status_code in accepted, (probe, answer.text)
    else:
        message = refused(answer, 400)
        # A body that changes nothing is refused as a whole.
        named = probe.field == "body" or probe.field in message or message.startswith("body: ")
        assert named, (probe, message)


async def test_every_body_constraint_holds_at_its_edges(
    client: httpx.AsyncClient, accounts: tuple[Account, Account, str]
) -> None:
    alice, root, session_id = accounts
    document = Document(await fetch_document(client))
    config_id = str((await model_configs.get_default()).id)
    operations = [
        ("POST", "/api/v1/sessions", "CreateSessionBody", {"user_id": alice.user_id}, alice),
        (
            "POST",
            f"/api/v1/sessions/{session_id}/messages",
            "SendMessageBody",
            {"user_id": alice.user_id, "message": "hi"},
            alice,
        ),
        (
            "PUT",
            f"/api/v1/model-configs/{config_id}",
            "UpdateModelConfigBody",
            {"model_name": "m"},
            root,
        ),
        (
            "PATCH",
            f"/api/v1/sessions/{session_id}",
            "UpdateSessionBody",
            {"archived": False},
            alice,
        ),
    ]
    checked = 0
    for method, path, model, base, who in operations:
        ref = f"#/components/schemas/{model}"
        for probe in body_probes(document, ref, base):
            valid = document.valid(probe.body, {"$ref": ref})
            await _check(client, method, path, probe, who, valid)
            checked += 1
    assert checked > 150


async def test_every_parameter_constraint_holds_at_its_edges(
    client: httpx.AsyncClient, accounts: tuple[Account, Account, str]
) -> None:
    alice, root, session_id = accounts
    raw = await fetch_document(client)
    document = Document(raw)
    targets = {
        ("get", "/api/v1/sessions/{session_id}/messages"): (
            "GET",
            f"/api/v1/sessions/{session_id}/messages",
            alice,
        ),
        ("get", "/api/v1/logs"): ("GET", "/api/v1/logs", root),
        ("get", "/api/v1/sessions"): ("GET", "/api/v1/sessions", alice),
        ("post", "/api/v1/sessions/{session_id}/messages"): (
            "POST",
            f"/api/v1/sessions/{session_id}/messages",
            alice,
        ),
    }
    checked = 0
    for (method, template), (verb, path, who) in targets.items():
        parameters = raw["paths"][template][method]["parameters"]
        schemas = {p["name"]: p["schema"] for p in parameters}
        for probe in query_probes(parameters):
            assert probe.body is not None
            value = probe.body.pop("__value__")
            valid = document.valid(value, schemas[probe.field])
            if verb == "POST":  # a send needs its body; the header is the probe
                # A retry key names one message of a session: each probe gets a new session.
                fresh = await create_session(client, alice)
                headers = {**who.headers, **(probe.headers or {})}
                body = {"user_id": alice.user_id, "message": "probe"}
                answer = await client.post(
                    path.replace(session_id, fresh), json=body, headers=headers
                )
                if valid:
                    assert answer.status_code == 200, (probe, answer.text)
                else:
                    refused(answer, 400)
            else:
                await _check(client, verb, path, probe, who, valid)
            checked += 1
    assert checked > 40


async def test_probes_cover_both_outcomes(client: httpx.AsyncClient) -> None:
    """The probes are not all valid or all invalid: each kind of constraint is crossed."""
    document = Document(await fetch_document(client))
    ref = "#/components/schemas/UpdateModelConfigBody"
    verdicts = {probe.field: set() for probe in body_probes(document, ref, {"model_name": "m"})}
    for probe in body_probes(document, ref, {"model_name": "m"}):
        verdicts[probe.field].add(document.valid(copy.deepcopy(probe.body), {"$ref": ref}))
    del verdicts["body"]  # the empty body: invalid, on purpose
    assert all(outcomes == {True, False} for outcomes in verdicts.values()), verdicts


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


SAMPLES = [
    *TRICKY,
    *NAMES,
    " echo ",
    "http://a.com",
    "\ufeffhttp://a.com",
    "http://a.com\x85",
    "https://h/v1?api-version=1",
    "https://h/v1?x=1&api_key=2",
    "a\nb",
    "a\n",
    "X-Team",
]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js for ECMA-262 regexes")
async def test_every_pattern_means_the_same_in_ecma_262_and_in_python(
    client: httpx.AsyncClient,
) -> None:
    """JSON Schema patterns are ECMA-262; the server and Python validators use `re`. Each
    pattern of the document must give the same verdict on the same strings in both."""
    patterns = sorted(set(_patterns(await fetch_document(client))))
    script = (
        "const [patterns, samples] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify("
        "patterns.map(p => samples.map(s => new RegExp(p, 'u').test(s)))));"
    )
    node = shutil.which("node")
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node, "-e", script, stdin=PIPE, stdout=PIPE, stderr=PIPE
    )
    out, err = await process.communicate(json.dumps([patterns, SAMPLES]).encode())
    assert process.returncode == 0, err.decode()  # a pattern ECMA-262 cannot even compile
    ecma = json.loads(out)
    python = [[re.search(p, sample) is not None for sample in SAMPLES] for p in patterns]
    differences = [
        (pattern, sample)
        for pattern, in_ecma, in_python in zip(patterns, ecma, python, strict=True)
        for sample, a, b in zip(SAMPLES, in_ecma, in_python, strict=True)
        if a != b
    ]
    assert differences == []
    assert len(patterns) >= 8
