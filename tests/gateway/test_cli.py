"""`chat-gateway user ...` and `key ...`, run as a newcomer runs them: as processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.servers import StartServer, child_env, run_cli, scratch_database


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def env(folder: Path) -> Iterator[dict[str, str]]:
    """The environment of a deployment whose fresh database `chat-gateway migrate` prepared."""
    with scratch_database(folder) as url:
        env = child_env(DATABASE_URL=url)
        migrated = run_cli("migrate", env=env, cwd=folder)
        assert migrated.returncode == 0, migrated.stderr
        yield env


def cli(*args: str, env: dict[str, str], folder: Path) -> Any:
    """Run a command that must succeed; its stdout as JSON."""
    result = run_cli(*args, env=env, cwd=folder)
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def test_user_create_prints_one_json_object(env: dict[str, str], folder: Path) -> None:
    result = run_cli("user", "create", "bob", env=env, cwd=folder)

    assert result.returncode == 0, result.stderr
    created = orjson.loads(result.stdout)  # fails on anything else printed to stdout
    assert set(created) == {"user_id", "api_key"}
    assert created["api_key"].startswith("cgw_")
    listed = cli("user", "list", env=env, folder=folder)
    assert {"user_id": created["user_id"], "name": "bob", "role": "user"}.items() <= next(
        user for user in listed if user["user_id"] == created["user_id"]
    ).items()


def test_admin_flag_gives_the_admin_role(env: dict[str, str], folder: Path) -> None:
    admin = cli("user", "create", "carol", "--admin", env=env, folder=folder)

    listed = cli("user", "list", env=env, folder=folder)

    assert isinstance(listed, list)
    assert [user["role"] for user in listed if user["user_id"] == admin["user_id"]] == ["admin"]
    assert all(user["role"] in ("user", "admin") for user in listed)


def test_keys_are_listed_without_secrets_and_revoked_keys_are_refused(
    env: dict[str, str], folder: Path, servers: StartServer
) -> None:
    owner = cli("user", "create", "dave", env=env, folder=folder)
    extra = cli("key", "create", owner["user_id"], "--label", "laptop", env=env, folder=folder)
    assert set(extra) == {"key_id", "user_id", "api_key"}
    assert extra["user_id"] == owner["user_id"]

    listing = run_cli("key", "list", "--user", owner["user_id"], env=env, cwd=folder)

    assert listing.returncode == 0, listing.stderr
    for secret in (owner["api_key"], extra["api_key"]):
        assert secret not in listing.stdout
    keys = orjson.loads(listing.stdout)
    assert len(keys) == 2
    assert {key["label"] for key in keys} == {"", "laptop"}
    assert all(key["revoked_at"] is None for key in keys)
    first = next(key for key in keys if key["key_id"] != extra["key_id"])
    assert owner["api_key"].startswith(first["prefix"])

    server = servers(env=env)
    server.wait_ready()
    with httpx.Client(base_url=server.base_url) as http:

        def status(secret: str) -> int:
            headers = {"Authorization": f"Bearer {secret}"}
            return http.get("/api/v1/model-configs", headers=headers).status_code

        assert status(owner["api_key"]) == status(extra["api_key"]) == 200
        by_prefix = run_cli("key", "revoke", first["prefix"], env=env, cwd=folder)
        by_id = run_cli("key", "revoke", extra["key_id"], env=env, cwd=folder)
        assert by_prefix.returncode == by_id.returncode == 0, by_prefix.stderr + by_id.stderr
        assert status(owner["api_key"]) == status(extra["api_key"]) == 401

    keys = cli("key", "list", "--user", owner["user_id"], env=env, folder=folder)
    assert all(key["revoked_at"] is not None for key in keys)


def test_a_rotated_key_is_replaced_by_one_with_its_label_shown_once(
    env: dict[str, str], folder: Path, servers: StartServer
) -> None:
    owner = cli("user", "create", "erin", env=env, folder=folder)
    old = cli("key", "create", owner["user_id"], "--label", "deploy", env=env, folder=folder)

    result = run_cli("key", "rotate", old["key_id"], env=env, cwd=folder)

    assert result.returncode == 0, result.stderr
    rotated = orjson.loads(result.stdout)  # one JSON object, as `key create` prints
    assert set(rotated) == {"key_id", "user_id", "api_key", "revoked_key_id"}
    assert rotated["user_id"] == owner["user_id"]
    assert rotated["revoked_key_id"] == old["key_id"]
    assert rotated["api_key"] != old["api_key"] and rotated["api_key"].startswith("cgw_")
    keys = {
        k["key_id"]: k
        for k in cli("key", "list", "--user", owner["user_id"], env=env, folder=folder)
    }
    assert keys[rotated["key_id"]]["label"] == "deploy"
    assert keys[rotated["key_id"]]["revoked_at"] is None
    assert keys[old["key_id"]]["revoked_at"] is not None
    listing = run_cli("key", "list", env=env, cwd=folder).stdout
    assert rotated["api_key"] not in listing

    server = servers(env=env)
    server.wait_ready()
    with httpx.Client(base_url=server.base_url) as http:

        def status(secret: str) -> int:
            headers = {"Authorization": f"Bearer {secret}"}
            return http.get("/api/v1/model-configs", headers=headers).status_code

        assert status(rotated["api_key"]) == 200
        assert status(old["api_key"]) == 401
        # By prefix too; the revoked one cannot be rotated again.
        prefix = keys[rotated["key_id"]]["prefix"]
        again = cli("key", "rotate", prefix, env=env, folder=folder)
        assert status(again["api_key"]) == 200 and status(rotated["api_key"]) == 401
    stale = run_cli("key", "rotate", old["key_id"], env=env, cwd=folder)
    assert stale.returncode != 0 and "active key not found" in stale.stderr


def test_user_role_and_disable(env: dict[str, str], folder: Path, servers: StartServer) -> None:
    frank = cli("user", "create", "frank", env=env, folder=folder)
    other = cli("key", "create", frank["user_id"], env=env, folder=folder)

    promoted = cli("user", "role", frank["user_id"], "admin", env=env, folder=folder)
    assert (promoted["user_id"], promoted["role"]) == (frank["user_id"], "admin")
    bad = run_cli("user", "role", frank["user_id"], "root", env=env, cwd=folder)
    assert bad.returncode != 0 and "root" in bad.stderr

    server = servers(env=env)
    server.wait_ready()
    with httpx.Client(base_url=server.base_url) as http:

        def status(secret: str) -> int:
            headers = {"Authorization": f"Bearer {secret}"}
            return http.get("/api/v1/logs", headers=headers).status_code

        assert status(frank["api_key"]) == 200
        demoted = cli("user", "role", frank["user_id"], "user", env=env, folder=folder)
        assert demoted["role"] == "user"
        assert status(frank["api_key"]) == 403

        disabled = cli("user", "disable", frank["user_id"], env=env, folder=folder)
        assert disabled["disabled_at"] is not None
        assert status(frank["api_key"]) == status(other["api_key"]) == 401
        refused = http.get("/api/v1/logs", headers={"Authorization": f"Bearer {frank['api_key']}"})
        assert refused.json()["message"] == "user is disabled"

    listed = cli("user", "list", env=env, folder=folder)
    assert [u["disabled_at"] for u in listed if u["user_id"] == frank["user_id"]] == [
        disabled["disabled_at"]
    ]
    no_key = run_cli("key", "create", frank["user_id"], env=env, cwd=folder)
    assert no_key.returncode != 0 and "disabled" in no_key.stderr


UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize(
    ("args", "overrides", "expected"),
    [
        (("key", "revoke", UNKNOWN_ID), {}, "active key not found"),
        (("key", "revoke", "cgw_nope"), {}, "active key not found"),
        (("key", "create", UNKNOWN_ID), {}, "user not found"),
        (("key", "create", UNKNOWN_ID, "--label", "x" * 101), {}, "label"),
        (("key", "rotate", UNKNOWN_ID), {}, "active key not found"),
        (("user", "disable", UNKNOWN_ID), {}, "user not found"),
        (("user", "disable", "not-an-id"), {}, "user not found"),
        (("user", "role", UNKNOWN_ID, "admin"), {}, "user not found"),
        (("user", "create", " "), {}, "name"),
        (("user", "list"), {"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ],
)
def test_errors_exit_non_zero_with_a_clear_message(
    env: dict[str, str],
    folder: Path,
    args: tuple[str, ...],
    overrides: dict[str, str],
    expected: str,
) -> None:
    result = run_cli(*args, env={**env, **overrides}, cwd=folder)

    assert result.returncode != 0
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_commands_on_a_database_never_migrated_say_so(tmp_path: Path) -> None:
    with scratch_database(tmp_path) as url:
        result = run_cli("user", "list", env=child_env(DATABASE_URL=url), cwd=tmp_path)

    assert result.returncode != 0
    assert "chat-gateway migrate" in result.stderr
    assert "Traceback" not in result.stderr


def test_listing_the_keys_of_a_malformed_user_id_lists_none(
    env: dict[str, str], folder: Path
) -> None:
    # The same answer on every backend (PostgreSQL used to refuse the query).
    assert cli("key", "list", "--user", "not-an-id", env=env, folder=folder) == []
