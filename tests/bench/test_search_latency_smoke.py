"""The search benchmark (bench/search_latency.py) runs end to end on a tiny data set, and
every search it times is answered from the full-text index, on both databases.

PostgreSQL only: the benchmark needs a PostgreSQL server (and runs its SQLite part
itself), so the suite's SQLite run skips this module. Nothing here asserts on a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.smoke import run_smoke
from tests.conftest import BACKEND, POSTGRES_SERVER

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres", reason="needs PostgreSQL; runs once, in the suite's PostgreSQL run"
)

SMOKE_TIMEOUT = 240


def test_the_smoke_run_times_every_case_on_the_index(tmp_path: Path) -> None:
    smoke = run_smoke(
        "search_latency.py",
        tmp_path / "smoke.json",
        *("--postgres-server", POSTGRES_SERVER),
        timeout=SMOKE_TIMEOUT,
    )
    output, report = smoke.output, smoke.report

    runs = {run["database"]: run for run in report["runs"]}
    assert set(runs) == {"postgres", "sqlite"}, output
    for database, run in runs.items():
        assert run["messages"] == 2000 and run["users"] == 2
        matches = {name: case["matches"] for name, case in run["cases"].items()}
        assert matches["rare word 'aurora', as a user"] == 5
        assert matches["rare word 'aurora', as an admin"] == 10
        assert 0 < matches["common word 'server', as a user"] < 1000
        for name, case in run["cases"].items():
            index, scan = case["index"], case["scan"]
            assert index["runs"] >= 5 and index["p50_ms"] > 0 and scan["p50_ms"] > 0, name
            assert not index["plan"]["scans_all_messages"], (database, name, index["plan"])
            wanted = "idx_messages_search" if database == "postgres" else "message_search (FTS5)"
            assert wanted in index["plan"]["indexes"], (database, name, index["plan"])
    rest = runs["postgres"]["rest"]
    assert set(rest) == set(runs["postgres"]["cases"])
    assert all(result["runs"] >= 5 for result in rest.values())
    assert "| postgres | 2,000 | rare word 'aurora', as a user | 5 |" in smoke.stdout
