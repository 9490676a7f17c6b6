"""Every error code of the contract, what each message says, and what gets logged.

Expected errors keep a readable message and leave no ERROR record (strawberry's default
logs each with a traceback); an unexpected one is masked, logged once with its traceback
and recorded in the operation log under the reference the client sees.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import httpx
import pytest

from tests.factories import Account, make_config
from tests.providers import FlakyProvider
from tests.schema.broken import BrokenProvider
from tests.schema.gql import SEND, eventually, fails, new_session, ok, post

CREATE_CONFIG = """
mutation($input: CreateModelConfigInput!) { createModelConfig(input: $input) { id } }"""
LOGS = "{ logs(first: 100) { edges { node { level event message details } } } }"


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def log_entries(client: httpx.AsyncClient, admin: Account, event: str) -> list[Any]:
    data = await ok(client, LOGS, admin)
    return [e["node"] for e in data["logs"]["edges"] if e["node"]["event"] == event]


async def test_unauthenticated_forbidden_not_found(
    client: httpx.AsyncClient, alice: Account, bob: Account, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = await new_session(client, alice)
    choose = "mutation($c: ID!) { createSession(input: {modelConfigId: $c}) { id } }"

    unauthenticated = await fails(client, "{ me { id } }", None, code="UNAUTHENTICATED")
    forbidden = await fails(client, "{ logs { totalCount } }", alice, code="FORBIDDEN")
    no_config = await fails(client, choose, alice, {"c": str(uuid.uuid4())}, code="NOT_FOUND")
    not_yours = await fails(
        client, SEND, bob, {"input": {"sessionId": session_id, "content": "x"}}, code="NOT_FOUND"
    )

    assert unauthenticated["message"].startswith("authentication required")
    assert forbidden["message"] == "only admins may read the system logs"
    assert no_config["message"] == "model config not found"
    assert not_yours["message"] == "session not found"
    assert error_records(caplog) == []


async def test_a_model_failure_keeps_the_user_message(
    client: httpx.AsyncClient,
    alice: Account,
    admin: Account,
    flaky: FlakyProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = await make_config(provider="flaky")
    session_id = await new_session(client, alice, str(config.id))
    flaky.fail_next(1)

    error = await fails(
        client,
        SEND,
        alice,
        {"input": {"sessionId": session_id, "content": "q"}},
        code="INTERNAL_SERVER_ERROR",
    )

    assert error["message"] == "the AI model failed to reply: upstream answered 503"
    stored = await ok(
        client,
        "query($s: ID!) { session(id: $s) { messages { edges { node { type content } } } } }",
        alice,
        {"s": session_id},
    )
    assert [e["node"] for e in stored["session"]["messages"]["edges"]] == [
        {"type": "USER", "content": "q"}
    ]
    failed = await log_entries(client, admin, "model.failed")
    assert [(f["level"], f["details"]["status"]) for f in failed] == [("ERROR", 503)]
    assert error_records(caplog) == []


@pytest.mark.internal_errors
async def test_an_unexpected_error_is_masked_logged_and_recorded(
    client: httpx.AsyncClient, admin: Account, caplog: pytest.LogCaptureFixture
) -> None:
    values = {"modelName": "m", "modelVersion": "1", "provider": "broken"}

    error = await fails(
        client, CREATE_CONFIG, admin, {"input": values}, code="INTERNAL_SERVER_ERROR"
    )

    match = re.fullmatch(r"Internal server error \(reference ([0-9a-f]{32})\)", error["message"])
    assert match, error
    reference = match.group(1)
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert BrokenProvider.internals not in str(error) and "RuntimeError" not in str(error)
    [record] = error_records(caplog)
    assert reference in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    # The entry is written beside the answer, not before it.
    recorded = await eventually(lambda: log_entries(client, admin, "internal.error"))
    assert [(r["level"], r["details"]["reference"]) for r in recorded] == [("ERROR", reference)]
    assert BrokenProvider.internals not in str(recorded)
    configs = await ok(client, "{ modelConfigs { provider } }", admin)
    assert configs["modelConfigs"] == [{"provider": "echo"}]


REQUEST_ERRORS: dict[str, tuple[str, str, str]] = {
    "unknown field": (
        "{ me { nickname } }",
        "GRAPHQL_VALIDATION_FAILED",
        "Cannot query field 'nickname' on type 'User'. Did you mean 'name'?",
    ),
    "unknown argument": (
        "{ sessions(size: 2) { totalCount } }",
        "GRAPHQL_VALIDATION_FAILED",
        "Unknown argument 'size' on field 'Query.sessions'.",
    ),
    "bad literal": (
        '{ logs(startTime: "yesterday") { totalCount } }',
        "GRAPHQL_VALIDATION_FAILED",
        "Expected value of type 'DateTime', but encountered error "
        "''yesterday' is not an ISO 8601 time'; found: \"yesterday\".",
    ),
    "syntax": (
        "{ me { name }",
        "GRAPHQL_PARSE_FAILED",
        "Syntax Error: Expected Name, found <EOF>.",
    ),
}


@pytest.mark.parametrize("case", sorted(REQUEST_ERRORS))
async def test_request_errors_stay_readable(
    client: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    document, code, message = REQUEST_ERRORS[case]

    answer = await post(client, document, alice)

    assert answer.data is None
    error = answer.error()
    assert (error["extensions"]["code"], error["message"]) == (code, message)
    assert "path" not in error and error["locations"]
    assert error_records(caplog) == []
