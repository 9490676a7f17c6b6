"""The GraphQL reads benchmark (bench/graphql_reads.py) runs end to end on a tiny data set,
and each of its queries costs the gateway one SQL statement (schema.compiled).

PostgreSQL only, like the compiled path; without PostGraphile (`--no-postgraphile`: the
bench installs it only outside CI) and only where wrk is installed. Nothing here asserts
on a time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POSTGRES_SERVER, needs_compiled_reads
from tests.servers import REPO_ROOT, child_env

pytestmark = [
    needs_compiled_reads,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian package wrk)"),
]

SMOKE_TIMEOUT = 240


def test_the_smoke_run_measures_every_query_with_one_statement(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    command = [
        *(sys.executable, str(REPO_ROOT / "bench" / "graphql_reads.py")),
        *("--smoke", "--no-postgraphile", "--json", str(out)),
        *("--postgres-server", POSTGRES_SERVER),
    ]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    output = (done.stdout + done.stderr)[-4000:]
    assert done.returncode == 0, output
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["failed"] == {}, output
    results = report["results"]
    for query in ("A nested", "B flat", "B-deep first page", "B-deep deep page"):
        gateway = results[query]["gateway"]
        assert gateway["errors"] == 0 and gateway["rps"] > 0, (query, gateway)
        assert gateway["statements_per_request"] == 1.0, (query, gateway)
