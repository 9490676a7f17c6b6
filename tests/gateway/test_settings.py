"""Settings: a bad value stops the start naming the variable; `.env` and CORS_ORIGINS work."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import httpx
import pytest

from db.ports import Limits
from db.services import model_configs
from gateway.app import create_app
from gateway.settings import Settings, SettingsError, load_settings
from schema import GraphQLLimits
from tests.factories import make_account
from tests.servers import SETTING_NAMES, child_env, free_port, run_cli

BAD_VALUES = [
    ("PORT", "abc"),
    ("PORT", "70000"),
    ("LOG_LEVEL", "loud"),
    ("DATABASE_URL", "mysql://x"),
    ("MAX_MESSAGE_CHARS", "0"),
    ("CORS_ORIGINS", "https://ok.example,https://slash.example/"),
    ("MODEL_PROVIDERS", "echo,anthropic"),
    ("MAX_JSON_DEPTH", "1"),
    ("REQUEST_BODY_TIMEOUT", "0"),
    ("TURN_LEASE_SECONDS", "0"),
    ("SHUTDOWN_GRACE_SECONDS", "-1"),
    ("DATABASE_TIMEOUT", "0"),
    # Several processes need PostgreSQL: on SQLite (the URL below) WORKERS must be 1.
    ("WORKERS", "2"),
]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No service variable from the outside; the working directory is an empty folder."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_a_bad_value_stops_serve_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    # Were the value accepted, the server would start on a free port and the run time out.
    env = child_env(DATABASE_URL=f"sqlite://{tmp_path / 'db.sqlite3'}", PORT=str(free_port()))
    env[name] = value

    result = run_cli("serve", env=env, cwd=tmp_path, timeout=30)

    assert result.returncode != 0
    assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "db.sqlite3").exists()


def test_serve_reads_the_env_file_of_its_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=mysql://from-dotenv\n", encoding="utf-8")

    result = run_cli("serve", env=child_env(PORT=str(free_port())), cwd=tmp_path, timeout=30)

    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
    assert "mysql" in result.stderr


def test_env_file_supplies_values_and_the_environment_wins(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / ".env").write_text(
        "PORT=9123\nLOG_LEVEL=WARNING\nCORS_ORIGINS=https://a.example\n"
        "DATABASE_URL=postgresql://u@db.example:5432/chat\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "500")
    monkeypatch.setenv("LOG_LEVEL", "error")

    settings = load_settings()

    assert settings.port == 9123
    assert settings.cors_origins == ["https://a.example"]
    assert settings.database_url == "postgres://u@db.example:5432/chat"
    assert settings.log_level == "error"
    assert settings.max_message_chars == 500


def test_a_bad_value_in_the_env_file_names_the_variable(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text("WORKERS=many\n", encoding="utf-8")

    with pytest.raises(SettingsError, match="WORKERS"):
        load_settings()


async def test_cors_origins_list_allows_exactly_those_origins(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    app = create_app(load_settings())
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:

        async def ask(origin: str) -> httpx.Response:
            headers = {"Origin": origin, **preflight}
            return await http.options("/api/v1/sessions", headers=headers)

        allowed = [await ask("https://a.example"), await ask("https://b.example")]
        refused = await ask("https://evil.example")
        simple = await http.get("/healthz", headers={"Origin": "https://b.example"})

    for response, origin in zip(allowed, ("https://a.example", "https://b.example"), strict=True):
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert "POST" in response.headers["access-control-allow-methods"]
        assert "idempotency-key" in response.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "https://b.example"


async def test_model_providers_limits_what_a_config_may_name(
    database_url: str, clean_environment: Path
) -> None:
    """A gateway that never calls out: `openai` is refused, and the document says so."""
    settings = load_settings(database_url=database_url, model_providers="echo", _env_file=None)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as http:
            document = (await http.get("/api/v1/openapi.json")).json()
            root = await make_account("root", admin=True)
            await model_configs.ensure_builtin()
            config_id = str((await model_configs.get_default()).id)
            body = {"provider": "openai", "base_url": "https://api.openai.com/v1"}
            path = f"/api/v1/model-configs/{config_id}"
            refused = await http.put(path, json=body, headers=root.headers)
    assert refused.status_code == 400 and "known: echo" in refused.json()["message"]
    provider = document["components"]["schemas"]["UpdateModelConfigBody"]["properties"]["provider"]
    assert re.search(provider["pattern"], " echo ") and not re.search(provider["pattern"], "openai")


def test_the_limits_of_each_layer_are_read_from_the_settings_of_their_names() -> None:
    """The service layer's `Limits` and the GraphQL door's limits come from the settings
    of the same names; every limit has one."""
    settings = load_settings(
        max_message_chars=123, turn_lease_seconds=7, graphql_max_depth=5, _env_file=None
    )

    limits = settings.values_for(Limits)
    graphql = settings.values_for(GraphQLLimits, prefix="graphql_")

    assert (limits.max_message_chars, limits.turn_lease_seconds) == (123, 7)
    assert graphql.max_depth == 5
    fixed = {
        field.name
        for shape, prefix in ((Limits, ""), (GraphQLLimits, "graphql_"))
        for field in dataclasses.fields(shape)
        if prefix + field.name not in Settings.model_fields
    }
    assert fixed == set()
