"""The GraphQL reads benchmark (bench/graphql_reads.py) runs end to end on a tiny data set,
and each of its queries costs the gateway one SQL statement (schema.compiled); the CPU it
reports per request is split between the gateway, PostgreSQL and the machine.

PostgreSQL only, like the compiled path; without PostGraphile (`--no-postgraphile`: the
bench installs it only outside CI) and only where wrk is installed. Nothing here asserts
on a time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bench.smoke import run_smoke
from tests.conftest import POSTGRES_SERVER, needs_compiled_reads

pytestmark = [
    needs_compiled_reads,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian package wrk)"),
]

SMOKE_TIMEOUT = 240


def test_the_smoke_run_measures_every_query_with_one_statement(tmp_path: Path) -> None:
    run = run_smoke(
        "graphql_reads.py",
        tmp_path / "smoke.json",
        *("--no-postgraphile", "--postgres-server", POSTGRES_SERVER),
        timeout=SMOKE_TIMEOUT,
    )
    output, report = run.output, run.report
    assert report["failed"] == {}, output
    results = report["results"]
    for query in ("A nested", "B flat", "B-deep first page", "B-deep deep page"):
        gateway = results[query]["gateway"]
        assert gateway["errors"] == 0 and gateway["rps"] > 0, (query, gateway)
        assert gateway["statements_per_request"] == 1.0, (query, gateway)
        # Where the time goes: PostgreSQL's backends did the statements' work, and the
        # machine's CPU holds the gateway's own.
        assert gateway["postgres_cpu_ms_per_request"] > 0, (query, gateway)
        assert gateway["machine_cpu_ms_per_request"] >= gateway["cpu_ms_per_request"] > 0
        assert 0 <= gateway["machine_idle_share"] < 1, (query, gateway)
