"""Schemathesis against a real running server: both doors, as a user and as an admin.

REST runs every check schemathesis has against /api/v1/openapi.json: no 5xx, answers as
documented, every schema-valid request accepted and every schema-invalid one refused, auth
really enforced... GraphQL runs against the introspected schema, with the checks that fit
it (`fuzz_hooks.py`): no INTERNAL_SERVER_ERROR, no 5xx, answers shaped by the schema. Both
look for tracebacks, SQL and file paths in every answer.

A fixed seed and a small budget keep CI to a few minutes. A longer run is the same test:

    FUZZ_EXAMPLES=500 TEST_DATABASE=postgres .venv/bin/pytest tests/gateway/e2e/test_fuzz.py -s
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import REPO_ROOT, Server, child_env, free_port, run_cli, scratch_database

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("FUZZ_SEED", "20261130"))
ST = str(Path(sys.executable).parent / "st")
# GraphQL's type system cannot state a range (first: -5) or who may call what: refusing
# such a query with BAD_USER_INPUT / FORBIDDEN is right, so schemathesis's positive-data
# and server-error heuristics are replaced by no_internal_error there.
GRAPHQL_CHECKS = "no_internal_error,no_internals_shown,response_schema_conformance"
CREATE_CONFIG = """mutation($input: CreateModelConfigInput!) {
  createModelConfig(input: $input) { id } }"""


@dataclass(frozen=True)
class Target:
    url: str
    keys: dict[str, str]  # role -> API key
    sessions: dict[str, str]  # role -> a session of that account
    spare_config_id: str  # a config the admin runs may change at will
    server: Server


def _account(name: str, *, admin: bool, env: dict[str, str], folder: Path) -> dict[str, str]:
    args = ["user", "create", name, *(["--admin"] if admin else [])]
    done = run_cli(*args, env=env, cwd=folder)
    assert done.returncode == 0, done.stderr
    account: dict[str, str] = json.loads(done.stdout)
    return account


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One server on a scratch database of the backend under test, with two accounts."""
    folder = tmp_path_factory.mktemp("fuzz")
    with scratch_database(folder) as database_url:
        # No upstream model is reachable here: a config the admin runs point at one would
        # make every reply a (documented) model failure, so only `echo` may be named.
        # Rate limits off: a long run (FUZZ_EXAMPLES=500) sends thousands of requests a
        # minute with one key, and 429s would stand in for the answers under test.
        env = child_env(
            DATABASE_URL=database_url,
            BOOTSTRAP_ADMIN="false",
            MODEL_PROVIDERS="echo",
            RATE_LIMIT_PER_MINUTE="0",
            REPLY_RATE_LIMIT_PER_MINUTE="0",
        )
        migrated = run_cli("migrate", env=env, cwd=folder)
        assert migrated.returncode == 0, migrated.stderr
        accounts = {
            "user": _account("fuzz-user", admin=False, env=env, folder=folder),
            "admin": _account("fuzz-admin", admin=True, env=env, folder=folder),
        }
        port = free_port()
        server = Server(
            [sys.executable, "-m", "uvicorn", "gateway.asgi:app", "--port", str(port)],
            port=port,
            env=env,
            cwd=folder,
            logs=folder,
        )
        try:
            server.wait_ready()
            with httpx.Client(base_url=server.base_url, timeout=10) as http:
                sessions = {}
                for role, account in accounts.items():
                    headers = {"Authorization": f"Bearer {account['api_key']}"}
                    body = {"user_id": account["user_id"]}
                    answer = http.post("/api/v1/sessions", json=body, headers=headers)
                    sessions[role] = answer.json()["data"]["session_id"]
                variables = {
                    "input": {"provider": "echo", "modelName": "spare", "modelVersion": "1"}
                }
                admin_headers = {"Authorization": f"Bearer {accounts['admin']['api_key']}"}
                created = http.post(
                    "/graphql",
                    json={"query": CREATE_CONFIG, "variables": variables},
                    headers=admin_headers,
                )
                spare = created.json()["data"]["createModelConfig"]["id"]
            yield Target(
                url=server.base_url,
                keys={role: account["api_key"] for role, account in accounts.items()},
                sessions=sessions,
                spare_config_id=spare,
                server=server,
            )
        finally:
            server.stop()


def _run(target: Target, door: str, role: str, folder: Path) -> dict[str, Any]:
    """One schemathesis run; its JSON report."""
    config = folder / "schemathesis.toml"
    # Real ids, so that generated requests reach the service rather than a 404.
    config.write_text(
        "[parameters]\n"
        f'session_id = "{target.sessions[role]}"\n'
        f'config_id = "{target.spare_config_id}"\n',
        encoding="utf-8",
    )
    report = folder / "report.json"
    if door == "rest":
        location, checks = f"{target.url}/api/v1/openapi.json", ["--checks", "all"]
    else:
        location, checks = f"{target.url}/graphql", ["--checks", GRAPHQL_CHECKS]
    command = [
        ST,
        "--config-file",
        str(config),
        "run",
        location,
        *checks,
        "--header",
        f"Authorization: Bearer {target.keys[role]}",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    env = child_env(SCHEMATHESIS_HOOKS="tests.gateway.e2e.fuzz_hooks", PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        command, env=env, cwd=folder, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{door} as {role}:\n{done.stdout[-20000:]}\n{done.stderr}"
    result: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return result


@pytest.mark.parametrize("role", ["user", "admin"])
@pytest.mark.parametrize("door", ["rest", "graphql"])
def test_fuzzing_finds_nothing(
    target: Target, door: str, role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = _run(target, door, role, tmp_path)
    cases = report["test_cases"]
    with capsys.disabled():  # the case counts, for the record
        operations = report["operations"]["tested"]
        print(
            f"\nfuzz {door} as {role}: {cases['generated']} cases, {operations} operations, "
            f"{report['running_time']:.1f} s"
        )
    assert cases["generated"] > 0 and cases["with_failures"] == cases["errored"] == 0, cases
    output = target.server.output()
    assert "internal error" not in output and "Traceback" not in output, output
