"""The export memory benchmark (bench/export_rss.py) runs at a tiny size and reports every
figure it promises, for both backends and both formats.

PostgreSQL only: the benchmark runs both backends itself and needs a PostgreSQL server,
so the suite's SQLite run skips this module rather than doing the same work twice.
Nothing here asserts on a time or on a memory figure (those vary by machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.smoke import run_smoke
from tests.conftest import BACKEND, POSTGRES_SERVER

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres", reason="needs PostgreSQL; runs once, in the suite's PostgreSQL run"
)

SMOKE_TIMEOUT = 300
CASES = ("long", "short", "in_one_go")


def test_the_smoke_run_measures_both_backends_and_formats(tmp_path: Path) -> None:
    run = run_smoke(
        "export_rss.py",
        tmp_path / "export-rss.json",
        *("--postgres-server", POSTGRES_SERVER),
        timeout=SMOKE_TIMEOUT,
    )
    report = run.report
    assert report["config"]["messages"] == 1_000
    assert set(report["backends"]) == {"sqlite", "postgres"}
    for backend, results in report["backends"].items():
        for fmt in ("json", "markdown"):
            for case in CASES:
                row = results[fmt][case]
                expected = 1_000 if case != "short" else 100
                assert row["messages"] == expected, (backend, fmt, case, row)
                assert row["bytes"] > 100 * expected, (backend, fmt, case, row)
                assert 0 < row["rss_before_mib"] <= row["rss_peak_mib"], (backend, fmt, row)
            assert results[fmt]["long"]["samples"] >= 2
            # The same messages either way (the stream adds line breaks, a title and a last line).
            one_go, streamed = results[fmt]["in_one_go"]["bytes"], results[fmt]["long"]["bytes"]
            assert 0.9 * streamed <= one_go <= streamed, (backend, fmt, one_go, streamed)
    assert "in one go / streamed" in run.stdout
