"""README.md's two commands: `make serve` works as written; CI runs exactly the test command."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import httpx

from tests.servers import REPO_ROOT, StartServer, child_env, free_port

# A first run of `make serve` may install the virtualenv before it serves.
INSTALL_AND_START_TIMEOUT = 300.0


def quick_start_commands() -> list[str]:
    """The shell commands of README.md's "Quick start" section, in order."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_quick_start_gives_two_commands() -> None:
    assert quick_start_commands() == ["make serve", "make test"]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert os.access(REPO_ROOT / ".ci" / "run", os.X_OK)
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    # set -euo pipefail; cd to the repository root; then the one command.
    assert commands[:-1] == ["set -euo pipefail", 'cd "$(dirname "$0")/.."']
    assert shlex.split(commands[-1]) == ["exec", *shlex.split(quick_start_commands()[-1])]


def test_readme_serve_command_serves_the_echo_model_to_the_first_admin(
    tmp_path: Path, servers: StartServer
) -> None:
    command = shlex.split(quick_start_commands()[0])
    port = free_port()
    env = child_env(PORT=str(port), DATABASE_URL=f"sqlite://{tmp_path / 'readme.sqlite3'}")
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # as typed in a shell, not under make
        env.pop(name, None)

    server = servers(command=command, port=port, env=env, cwd=REPO_ROOT)
    output = server.wait_for_output("serving on", timeout=INSTALL_AND_START_TIMEOUT)
    server.wait_ready()

    match = re.search(r"^  api_key: (cgw_\S+)$", output, re.MULTILINE)
    assert match, output
    headers = {"Authorization": f"Bearer {match[1]}"}
    response = httpx.get(f"{server.base_url}/api/v1/model-configs", headers=headers)
    assert response.status_code == 200, response.text
    models = response.json()["data"]["models"]
    assert [(m["model_name"], m["parameters"]) for m in models] == [("echo", {})]
