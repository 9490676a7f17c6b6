"""`chat-gateway serve` on a fresh database: migrations, a first admin shown once, a live server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.servers import CHAT_GATEWAY, Server, StartServer, child_env, free_port, scratch_database

FIRST_ADMIN_KEY = re.compile(r"^  api_key: (cgw_\S+)$", re.MULTILINE)


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """Ask for it before `servers`: the servers stop before their database is dropped."""
    with scratch_database(tmp_path) as url:
        yield url


def serve(servers: StartServer, database_url: str, **overrides: str) -> Server:
    """Start `chat-gateway serve` and wait until it answers; the port comes from PORT."""
    port = free_port()
    env = child_env(DATABASE_URL=database_url, PORT=str(port), **overrides)
    server = servers(command=[CHAT_GATEWAY, "serve"], port=port, env=env)
    server.wait_ready()
    return server


def test_serve_migrates_a_fresh_database_and_shows_the_first_admin_key_once(
    fresh_database: str, servers: StartServer
) -> None:
    first = serve(servers, fresh_database)
    output = first.output()
    first.stop()
    assert "applied migration" in output
    assert "First admin created" in output
    (key,) = FIRST_ADMIN_KEY.findall(output)

    second = serve(servers, fresh_database)

    assert "applied migration" not in second.output()
    assert "api_key" not in second.output()
    with httpx.Client(base_url=second.base_url, headers={"Authorization": f"Bearer {key}"}) as http:
        configs = http.get("/api/v1/model-configs")
        logs = http.get("/api/v1/logs")  # admins only
    assert configs.status_code == 200, configs.text
    (echo,) = configs.json()["data"]["models"]
    assert echo["model_name"] == "echo"
    assert logs.status_code == 200, logs.text


def test_serve_without_bootstrap_admin_shows_no_key(
    fresh_database: str, servers: StartServer
) -> None:
    server = serve(servers, fresh_database, BOOTSTRAP_ADMIN="false")

    assert "applied migration" in server.output()
    assert "First admin created" not in server.output()
    assert "api_key" not in server.output()


def test_serve_starts_quietly_and_logs_json_lines(
    fresh_database: str, servers: StartServer
) -> None:
    """No ORM chatter at start; with LOG_FORMAT=json every log line is a JSON object, the
    access line (ACCESS_LOG=true) included; no uvicorn access line."""
    server = serve(
        servers, fresh_database, LOG_FORMAT="json", ACCESS_LOG="true", BOOTSTRAP_ADMIN="false"
    )
    with httpx.Client(base_url=server.base_url) as http:
        answer = http.get("/api/v1/model-configs", headers={"X-Request-ID": "serve-1"})
    assert answer.status_code == 401 and answer.headers["x-request-id"] == "serve-1"
    server.stop()
    output = server.output()
    assert "Tortoise-ORM" not in output
    lines = [orjson.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line["message"].startswith("serving on") for line in lines)
    [access] = [line for line in lines if line["logger"] == "gateway.access"]
    assert (access["request_id"], access["route"], access["status"]) == (
        "serve-1",
        "/api/v1/model-configs",
        401,
    )
    assert not [line for line in lines if line["logger"] == "uvicorn.access"]
