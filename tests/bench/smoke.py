"""Running a benchmark's smoke run (`bench/<script> --smoke --json FILE`) from a test."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers import REPO_ROOT, child_env


@dataclass(frozen=True)
class SmokeRun:
    stdout: str
    output: str  # the end of stdout and stderr, for assertion messages
    report: dict[str, Any]  # the JSON report


def run_smoke(script: str, out: Path, *arguments: str, timeout: float) -> SmokeRun:
    """Run `bench/<script> --smoke --json out *arguments`; it must exit 0."""
    command = [
        *(sys.executable, str(REPO_ROOT / "bench" / script), "--smoke", "--json", str(out)),
        *arguments,
    ]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, output
    return SmokeRun(stdout=done.stdout, output=output, report=json.loads(out.read_text()))
