"""The export memory benchmark (bench/export_rss.py) runs at a tiny size and reports every
figure it promises, for both backends and both formats.

PostgreSQL only: the benchmark runs both backends itself and needs a PostgreSQL server,
so the suite's SQLite run skips this module rather than doing the same work twice.
Nothing here asserts on a time or on a memory figure (those vary by machine).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND, POSTGRES_SERVER
from tests.servers import REPO_ROOT, child_env

pytestmark = pytest.mark.skipif(
    BACKEND != "postgres", reason="needs PostgreSQL; runs once, in the suite's PostgreSQL run"
)

SMOKE_TIMEOUT = 300
CASES = ("long", "short", "in_one_go")


def test_the_smoke_run_measures_both_backends_and_formats(tmp_path: Path) -> None:
    out = tmp_path / "export-rss.json"
    command = [
        *(sys.executable, str(REPO_ROOT / "bench" / "export_rss.py"), "--smoke"),
        *("--json", str(out), "--postgres-server", POSTGRES_SERVER),
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
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    report = json.loads(out.read_text())
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
    assert "in one go / streamed" in done.stdout
