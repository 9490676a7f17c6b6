"""The GraphQL reads benchmark (bench/graphql_reads.py) runs end to end on a tiny data set,
and each of its queries costs the gateway one SQL statement (schema.compiled); the CPU it
reports per request is split between the gateway, PostgreSQL and the machine; the stack's
floor (bench/stack_floor.py) answers the gateway's GraphQL requests with the gateway's own
answers, and is compared with it.

PostgreSQL only, like the compiled path; without PostGraphile (`--no-postgraphile`: the
bench installs it only outside CI) and only where wrk is installed. Nothing here asserts
on a time.
"""

from __future__ import annotations

import shutil

import pytest

from tests.bench.smoke import SmokeRun, run_smoke
from tests.conftest import POSTGRES_SERVER, needs_compiled_reads

pytestmark = [
    needs_compiled_reads,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (Debian package wrk)"),
]

SMOKE_TIMEOUT = 240


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """One smoke run for the module's tests."""
    return run_smoke(
        "graphql_reads.py",
        tmp_path_factory.mktemp("graphql_reads") / "smoke.json",
        *("--no-postgraphile", "--postgres-server", POSTGRES_SERVER),
        timeout=SMOKE_TIMEOUT,
    )


def test_the_smoke_run_measures_every_query_with_one_statement(smoke: SmokeRun) -> None:
    output, report = smoke.output, smoke.report
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


def test_the_floor_answers_as_the_gateway_and_is_compared_with_it(smoke: SmokeRun) -> None:
    run, report = smoke, smoke.report
    assert report["failed"] == {}, run.output
    graphql = ("A nested", "B flat", "B-deep first page", "B-deep deep page")
    # Every request answered by the floor was compared with the gateway's answer, equal.
    assert set(report["floor_same_answers"]) == set(graphql), report["floor_same_answers"]
    for query in graphql:
        compared, _, total = report["floor_same_answers"][query].partition("/")
        assert compared == total and int(total) > 0, (query, report["floor_same_answers"])
        floor = report["results"][query]["floor"]
        assert floor["errors"] == 0 and floor["rps"] > 0 and floor["cpu_ms_per_request"] > 0
        row = report["floor_ratios"][query]
        assert row["rps_gateway_over_floor"] > 0, (query, row)
        assert row["gateway_own_cpu_ms_per_request"] is not None, (query, row)
        assert row["rps_floor_over_postgraphile"] is None  # PostGraphile was left out
    # REST has no floor: the floor answers GraphQL requests only.
    assert "floor" not in report["results"]["REST first page"], run.output
    assert "| req/s floor/PostGraphile" in run.stdout, run.output
