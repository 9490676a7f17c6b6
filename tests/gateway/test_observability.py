"""Health checks, request ids, structured logs, the access line and Prometheus metrics,
through the real app (both doors)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from db.models import LogEntry
from gateway import health, observe
from gateway.app import create_app
from gateway.log_config import JsonFormatter, configure_logging
from gateway.metrics import MAX_OPERATIONS, RequestCounts
from gateway.providers import EchoProvider, ProviderRegistry
from gateway.settings import Settings, load_settings
from tests.conftest import BACKEND, empty_database, needs_compiled_reads
from tests.factories import Account, create_session, make_account, make_config, send
from tests.rest.test_errors import BrokenProvider
from tests.servers import scratch_database_async

HEX_ID = r"[0-9a-f]{32}"
SEND_GQL = """mutation SendIt($input: SendMessageInput!) {
  sendMessage(input: $input) { aiMessage { id content } } }"""


@asynccontextmanager
async def served(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app built from `settings` with `changes`, lifespan running."""
    registry = ProviderRegistry([EchoProvider(), BrokenProvider()])
    app: Starlette = create_app(settings.model_copy(update=changes), models=registry)
    try:
        async with app.router.lifespan_context(app):
            await empty_database()
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                yield client
    finally:
        configure_logging("info")  # back to text for the tests after this one


@asynccontextmanager
async def log_lines() -> AsyncIterator[io.StringIO]:
    """What the process's log handler writes meanwhile."""
    [handler] = [h for h in logging.getLogger().handlers if getattr(h, "_gateway", False)]
    assert isinstance(handler, logging.StreamHandler)
    captured = io.StringIO()
    previous = handler.setStream(captured)
    try:
        yield captured
    finally:
        handler.setStream(previous)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A scrape as {(sample name, labels): value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(scrape: dict[Any, float], name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[Any, float]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


# Health ----------------------------------------------------------------------------------


async def test_healthz_and_readyz_answer_without_credentials(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
    assert ready.headers["x-request-id"]


async def test_readyz_is_503_on_a_database_never_migrated(
    settings: Settings, tmp_path: Path
) -> None:
    async with (
        scratch_database_async(tmp_path, "never-migrated") as empty,
        served_unmigrated(settings, empty) as client,
    ):
        answer = await client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "unavailable"
        assert "migrations not applied" in answer.json()["reason"]


@asynccontextmanager
async def served_unmigrated(settings: Settings, url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(load_settings(database_url=url, _env_file=None), models=ProviderRegistry([]))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_readyz_names_pending_migrations_and_an_unreachable_database(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def pending() -> list[str]:
        return ["9_next.py"]

    monkeypatch.setattr(health.migrate, "unapplied", pending)
    answer = await health.Readiness().endpoint(None)  # type: ignore[arg-type]
    assert answer.status_code == 503
    assert b"migrations pending: 9_next.py" in answer.body

    class Away:
        async def execute_query(self, sql: str) -> None:
            raise ConnectionRefusedError("no database")

    monkeypatch.setattr(health.connections, "get", lambda name: Away())
    answer = await health.Readiness().endpoint(None)  # type: ignore[arg-type]
    assert answer.status_code == 503
    assert b"database unreachable (ConnectionRefusedError)" in answer.body


async def test_a_positive_migration_check_is_kept(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    readiness = health.Readiness(reuse_seconds=0)  # every probe checks
    assert (await readiness.endpoint(None)).status_code == 200  # type: ignore[arg-type]

    async def must_not_run() -> list[str]:
        raise AssertionError("checked again")

    monkeypatch.setattr(health.migrate, "unapplied", must_not_run)
    assert (await readiness.endpoint(None)).status_code == 200  # type: ignore[arg-type]
    assert readiness.checks == 2


async def test_a_flood_of_readiness_probes_checks_once_a_second(
    client: httpx.AsyncClient,
) -> None:
    now = [100.0]
    readiness = health.Readiness(clock=lambda: now[0])

    answers = await asyncio.gather(*(readiness.endpoint(None) for _ in range(50)))  # type: ignore[arg-type]

    assert {answer.status_code for answer in answers} == {200}
    assert readiness.checks == 1
    now[0] += 0.9
    await readiness.endpoint(None)  # type: ignore[arg-type]
    assert readiness.checks == 1
    now[0] += 0.2
    await readiness.endpoint(None)  # type: ignore[arg-type]
    assert readiness.checks == 2


# Request ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("req-1.a:b_C", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("has space", False),
        ("semi;colon", False),
        ("", False),
    ],
)
async def test_a_sane_request_id_is_echoed_else_replaced(
    client: httpx.AsyncClient, alice: Account, given: str, kept: bool
) -> None:
    for answer in (
        await client.get("/api/v1/model-configs", headers={**alice.headers, "X-Request-ID": given}),
        await client.post(
            "/graphql",
            json={"query": "{ me { name } }"},
            headers={**alice.headers, "X-Request-ID": given},
        ),
        await client.get("/api/v1/nope", headers={"X-Request-ID": given}),
    ):
        returned = answer.headers["x-request-id"]
        if kept:
            assert returned == given
        else:
            assert returned != given
            assert len(returned) == 32 and int(returned, 16) >= 0


async def test_every_answer_carries_a_fresh_request_id(
    client: httpx.AsyncClient, alice: Account
) -> None:
    answers = [
        await client.get("/api/v1/model-configs", headers=alice.headers),
        await client.get("/api/v1/model-configs"),  # 401
        await client.post("/graphql", json={"query": "{ me { name } }"}),
        await client.post("/api/v1/sessions", content=b"x" * 2_000_000, headers=alice.headers),
        await client.post("/graphql", content=b"{", headers={"Content-Type": "application/json"}),
        await client.get("/healthz"),
    ]
    # The REST contract words a body too large as a 400 (RequestBody refuses it).
    assert [a.status_code for a in answers] == [200, 401, 200, 400, 400, 200]
    ids = [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == len(ids)


async def test_log_entries_a_request_writes_carry_its_id(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    answer = await send(client, alice, session_id, "hi", headers={"X-Request-ID": "send-42"})
    assert answer.status_code == 200, answer.text
    created = await client.post(
        "/graphql",
        json={"query": 'mutation { createApiKey(label: "l") { key } }'},
        headers={**alice.headers, "X-Request-ID": "key-43"},
    )
    assert created.status_code == 200 and "errors" not in created.json()
    answered = await LogEntry.filter(event="message.answered").first()
    key_made = await LogEntry.filter(event="key.created").first()
    assert answered is not None and answered.details is not None
    assert answered.details["request_id"] == "send-42"
    assert key_made is not None and key_made.details is not None
    assert key_made.details["request_id"] == "key-43"


@pytest.mark.internal_errors
async def test_an_internal_errors_reference_is_the_request_id(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    async with served(settings) as client:
        admin = await make_account("root", admin=True)
        victim = await make_config(model_name="victim")
        rest = await client.put(
            f"/api/v1/model-configs/{victim.id}",
            json={"provider": "broken"},
            headers={**admin.headers, "X-Request-ID": "boom-1"},
        )
        config = await client.post(
            "/graphql",
            json={
                "query": "mutation($i: CreateModelConfigInput!) { createModelConfig(input: $i) "
                "{ id } }",
                "variables": {"i": {"modelName": "m", "modelVersion": "1", "provider": "broken"}},
            },
            headers={**admin.headers, "X-Request-ID": "boom-2"},
        )
    [error] = config.json()["errors"]
    assert error["message"] == "Internal server error (reference boom-2)"
    assert config.headers["x-request-id"] == "boom-2"
    assert rest.status_code == 500 and rest.headers["x-request-id"] == "boom-1"
    assert rest.json()["message"] == "internal server error (reference boom-1)"
    logged = [r for r in caplog.records if "boom-2" in r.getMessage()]
    assert logged and all(getattr(r, "request_id", None) == "boom-2" for r in logged)


# Logs ------------------------------------------------------------------------------------


async def test_json_log_lines_and_the_access_line(settings: Settings) -> None:
    secret_words = "the-secret-message-content"
    async with served(settings, log_format="json", access_log=True) as client:
        alice = await make_account("alice")
        async with log_lines() as written:
            session_id = await create_session(client, alice)
            answer = await send(
                client, alice, session_id, secret_words, headers={"X-Request-ID": "acc-1"}
            )
            assert answer.status_code == 200
            await client.post(
                "/graphql",
                json={
                    "query": SEND_GQL,
                    "variables": {"input": {"sessionId": session_id, "content": secret_words}},
                },
                headers={**alice.headers, "X-Request-ID": "acc-2"},
            )
            await client.get("/healthz", headers={"X-Request-ID": "acc-3"})
            logging.getLogger("gateway.test").warning("plain", extra={"answer": 42})
    lines = [orjson.loads(line) for line in written.getvalue().splitlines()]
    assert lines and all(
        {"time", "level", "logger", "message", "request_id"} <= set(line) for line in lines
    )
    access = {line["request_id"]: line for line in lines if line["logger"] == "gateway.access"}
    rest = access["acc-1"]
    assert rest["method"] == "POST"
    assert rest["route"] == "/api/v1/sessions/{session_id}/messages"
    assert rest["status"] == 200 and rest["user_id"] == alice.user_id
    assert isinstance(rest["duration_ms"], float)
    gql = access["acc-2"]
    assert (gql["route"], gql["operation"], gql["status"]) == ("/graphql", "SendIt", 200)
    assert "acc-3" not in access  # health checks are not logged
    [extra] = [line for line in lines if line["message"] == "plain"]
    assert extra["answer"] == 42 and extra["level"] == "warning"
    text = "\n".join(orjson.dumps(line).decode() for line in lines if line["logger"] != "httpx")
    assert secret_words not in text and alice.key not in text and session_id not in text


@needs_compiled_reads
async def test_the_compiled_lane_logs_and_counts_each_request_once_under_its_id(
    settings: Settings,
) -> None:
    """A read the lane answers, and one it hands on to Strawberry (an invalid document),
    are each logged once, under the client's id, with the caller and the operation."""
    async with served(settings, log_format="json", access_log=True) as client:
        alice = await make_account("alice")
        before = await scrape(client)
        async with log_lines() as written:
            answered = await client.post(
                "/graphql",
                json={"query": "query Mine { me { id } }"},
                headers={**alice.headers, "X-Request-ID": "lane-1"},
            )
            handed_on = await client.post(
                "/graphql",
                json={"query": "query Wrong { me { nope } }"},
                headers={**alice.headers, "X-Request-ID": "lane-2"},
            )
        after = await scrape(client)
    assert answered.json() == {"data": {"me": {"id": alice.user_id}}}
    assert "errors" in handed_on.json()
    assert [answered.headers["x-request-id"], handed_on.headers["x-request-id"]] == [
        "lane-1",
        "lane-2",
    ]
    lines = [orjson.loads(line) for line in written.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "gateway.access"]
    assert sorted(
        (line["request_id"], line["operation"], line["status"], line["user_id"]) for line in access
    ) == [
        ("lane-1", "Mine", 200, alice.user_id),
        ("lane-2", "Wrong", handed_on.status_code, alice.user_id),
    ]
    grown = value(after, "http_requests_total", route="graphql:Mine", method="POST", status="200")
    assert (
        grown
        - value(before, "http_requests_total", route="graphql:Mine", method="POST", status="200")
        == 1
    )


async def test_text_log_lines_name_the_request(settings: Settings) -> None:
    async with served(settings, access_log=True) as client, log_lines() as written:
        await client.get("/api/v1/sessions/abc/messages", headers={"X-Request-ID": "txt-1"})
    [line] = [line for line in written.getvalue().splitlines() if "gateway.access" in line]
    assert "[txt-1]" in line and "GET /api/v1/sessions/{session_id}/messages 401" in line


async def test_no_access_line_without_access_log(client: httpx.AsyncClient) -> None:
    async with log_lines() as written:
        await client.get("/api/v1/nope")
    assert "gateway.access" not in written.getvalue()


# Metrics ---------------------------------------------------------------------------------


async def test_metrics_after_traffic_through_both_doors(
    client: httpx.AsyncClient, alice: Account
) -> None:
    before = await scrape(client)
    session_id = await create_session(client, alice)
    assert (await send(client, alice, session_id, "one two three")).status_code == 200
    answer = await client.post(
        "/graphql",
        json={
            "query": SEND_GQL,
            "variables": {"input": {"sessionId": session_id, "content": "four"}},
        },
        headers=alice.headers,
    )
    assert "errors" not in answer.json(), answer.text
    await client.post("/graphql", json={"query": "{ me { name } }"}, headers=alice.headers)
    await client.get("/api/v1/no/such/route")
    await client.get("/healthz")
    await client.get("/readyz")
    [config_id] = {
        m["config_id"]
        for m in (await client.get("/api/v1/model-configs", headers=alice.headers)).json()["data"][
            "models"
        ]
    }
    after = await scrape(client)

    def grew(name: str, by: float = 1, **labels: str) -> None:
        assert value(after, name, **labels) - value(before, name, **labels) == by, (name, labels)

    send_route = "/api/v1/sessions/{session_id}/messages"
    grew("http_requests_total", route=send_route, method="POST", status="200")
    grew("http_request_duration_seconds_count", route=send_route, method="POST")
    grew("http_requests_total", route="/api/v1/sessions", method="POST", status="200")
    grew("http_requests_total", route="graphql:SendIt", method="POST", status="200")
    grew("http_requests_total", route="graphql:anonymous", method="POST", status="200")
    grew("http_requests_total", route="unmatched", method="GET", status="404")
    echo = {"provider": "echo", "config": config_id}
    grew("model_replies_total", 2, outcome="ok", **echo)
    grew("model_reply_seconds_count", 2, **echo)
    assert value(after, "model_tokens_total", kind="prompt", **echo) > value(
        before, "model_tokens_total", kind="prompt", **echo
    )
    assert value(after, "model_tokens_total", kind="completion", **echo) > 0
    # A session created, two questions and two answers: at least those entries.
    logged = value(after, "log_entries_written_total", level="info")
    assert logged - value(before, "log_entries_written_total", level="info") >= 3
    routes = {dict(labels).get("route") for (_, labels) in after}
    assert not routes & {"/healthz", "/readyz", "/metrics"}
    names = {name for (name, _) in after}
    assert {"active_streams", "active_subscriptions", "internal_errors_total"} <= names
    if BACKEND == "postgres":
        assert value(after, "db_pool_in_use") >= 0 and "db_pool_in_use" in names


async def test_a_streamed_reply_counts_time_to_first_token(
    client: httpx.AsyncClient, alice: Account
) -> None:
    before = await scrape(client)
    session_id = await create_session(client, alice)
    answer = await send(client, alice, session_id, "a b c", headers={"Accept": "text/event-stream"})
    assert answer.status_code == 200 and "event: done" in answer.text
    after = await scrape(client)
    first = "model_time_to_first_token_seconds_count"
    total = sum(v for (name, _), v in after.items() if name == first)
    assert total - sum(v for (name, _), v in before.items() if name == first) == 1
    assert value(after, "active_streams") == 0
    sends = {"route": "/api/v1/sessions/{session_id}/messages", "method": "POST", "status": "200"}
    grew = value(after, "http_requests_total", **sends) - value(
        before, "http_requests_total", **sends
    )
    assert grew == 1


async def test_metrics_token_is_enforced(settings: Settings) -> None:
    async with served(settings, metrics_token="s3cret-token") as client:
        assert (await client.get("/metrics")).status_code == 401
        refused = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401 and "s3cret" not in refused.text
        await scrape(client, Authorization="Bearer s3cret-token")


async def test_metrics_can_be_switched_off(settings: Settings) -> None:
    async with served(settings, metrics_enabled=False) as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.get("/healthz")).headers["x-request-id"]


def test_graphql_operation_names_are_bounded() -> None:
    counts = RequestCounts()
    assert counts.graphql_route(None) == "graphql:anonymous"
    assert counts.graphql_route("x" * 500) == "graphql:" + "x" * 64
    for number in range(MAX_OPERATIONS * 2):
        counts.graphql_route(f"Op{number}")
    assert counts.graphql_route("Op1") == "graphql:Op1"
    assert counts.graphql_route("Brand_new") == "graphql:other"


async def test_health_checks_and_scrapes_do_not_count_against_rate_limits(
    settings: Settings,
) -> None:
    async with served(settings, rate_limit_per_minute=3) as client:
        alice = await make_account("alice")
        for _ in range(5):
            for path in ("/healthz", "/readyz", "/metrics"):
                answer = await client.get(path, headers=alice.headers)
                assert answer.status_code == 200, (path, answer.text)
        counted = await client.get("/api/v1/model-configs", headers=alice.headers)
        assert counted.status_code == 200
        assert counted.headers["ratelimit-remaining"] == "2"


async def test_operation_names_label_only_authenticated_requests_and_only_as_graphql_spells_them(
    client: httpx.AsyncClient, alice: Account
) -> None:
    before = await scrape(client)
    forged = "Evil\nINFO forged line"
    await client.post("/graphql", json={"query": "query Anon { me { id } }"})  # no key
    await client.post(
        "/graphql", json={"query": "{ me { id } }", "operationName": forged}, headers=alice.headers
    )
    await client.post("/graphql", json={"query": "query Mine { me { id } }"}, headers=alice.headers)
    after = await scrape(client)

    routes = {dict(labels).get("route") for (_, labels) in after}
    assert "graphql:Anon" not in routes and not any("Evil" in str(r) for r in routes)

    def requests(scraped: dict[Any, float], route: str) -> float:  # whatever their status
        return sum(
            count
            for (name, labels), count in scraped.items()
            if name == "http_requests_total" and dict(labels).get("route") == route
        )

    grown = {
        route: requests(after, route) - requests(before, route)
        for route in ("graphql:anonymous", "graphql:Mine")
    }
    assert grown == {"graphql:anonymous": 2, "graphql:Mine": 1}


def test_a_json_log_line_survives_values_orjson_cannot_write() -> None:
    record = logging.LogRecord("gateway.test", logging.INFO, __file__, 1, "odd values", None, None)
    record.big = 2**70
    record.keyed = {1: "one"}

    line = json.loads(JsonFormatter().format(record))  # orjson reads no integer past 64 bits

    assert line["message"] == "odd values" and line["big"] == 2**70
    assert line["keyed"] == {"1": "one"}


def test_the_subscription_gauge_reads_no_further_than_the_token_limit() -> None:
    document = "subscription S { messageAdded(sessionId: 1) { id } }"
    assert observe._is_subscription(document, None, 100)
    assert not observe._is_subscription("query Q { me { id } }", None, 100)
    # Past GRAPHQL_MAX_TOKENS the parser stops (Strawberry refuses the document too).
    assert not observe._is_subscription(document, None, 5)
    long_one = "subscription S { " + "a " * 20_000 + "}"  # not cached, not read whole
    assert not observe._is_subscription(long_one, None, 100)
