"""`chat-gateway serve --workers 2` on PostgreSQL: one scrape sums both workers' counts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BACKEND
from tests.gateway.e2e.processes import gateway_env
from tests.servers import CHAT_GATEWAY, StartServer, free_port

REQUESTS = 120
MAX_ROUNDS = 10


def unmatched_in(path: Path) -> float:
    """What one process's counter file holds of unmatched 404s."""
    return sum(
        value
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path))
        if '"http_requests_total"' in key and '"unmatched"' in key and '"404"' in key
    )


def unmatched_404s(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            wanted = {"route": "unmatched", "status": "404"}
            if sample.name == "http_requests_total" and wanted.items() <= sample.labels.items():
                return sample.value
    return 0.0


async def test_a_scrape_sums_every_workers_counts(
    servers: StartServer, database_url: str, tmp_path: Path
) -> None:
    if BACKEND != "postgres":
        pytest.skip("several workers need PostgreSQL")
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"a former run's file")
    port = free_port()
    env = gateway_env(
        database_url,
        "unused",
        PORT=str(port),
        WORKERS="2",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    server = servers(command=[CHAT_GATEWAY, "serve", "--no-migrate"], port=port, env=env)
    await server.wait_ready_async()
    base = f"http://127.0.0.1:{port}"
    # A new connection for every request, so the kernel hands them to both workers.
    limits = httpx.Limits(max_keepalive_connections=0)
    sent = 0
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=10) as http:
        # /healthz answered as soon as one worker was up; on a busy machine the other may
        # still be starting and take no connection yet: more rounds until both counted.
        for _ in range(MAX_ROUNDS):
            for _ in range(REQUESTS):
                assert (await http.get("/no/such/route")).status_code == 404
            sent += REQUESTS
            # Every process that loads the metrics makes a file: both workers counted some.
            counting = [path for path in folder.glob("counter_*.db") if unmatched_in(path) > 0]
            if len(counting) >= 2:
                break
        writers = {path.name for path in folder.glob("counter_*.db")}
        assert "counter_999999.db" not in writers  # emptied at start
        assert len(counting) >= 2, writers
        for _ in range(4):  # whichever worker answers, the sum is the same
            scrape = await http.get("/metrics")
            assert scrape.status_code == 200
            assert unmatched_404s(scrape.text) == sent
            assert "active_streams" in scrape.text and "db_pool_in_use" in scrape.text
