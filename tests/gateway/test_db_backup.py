"""`chat-gateway db backup PATH`: a consistent SQLite copy while writes go on; PostgreSQL is
pointed at its own tools."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from tests.servers import REPO_ROOT, child_env, run_cli

LOGS = 20_000


def _count(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT count(*) FROM logs").fetchone()[0])


def test_backup_while_writes_happen_has_every_committed_row(tmp_path: Path) -> None:
    database = tmp_path / "live.sqlite3"
    url = f"sqlite://{database}"
    populate = [sys.executable, "-m", "tests.gateway.populate", url, str(LOGS)]
    subprocess.run(populate, cwd=REPO_ROOT, env=child_env(), check=True, timeout=120)
    stop = threading.Event()
    written = [0]

    def write() -> None:
        # A server's writes: one committed entry at a time, from another connection.
        with sqlite3.connect(database, timeout=10, isolation_level=None) as connection:
            while not stop.is_set():
                connection.execute(
                    "INSERT INTO logs (level, event, message, created_at) "
                    "VALUES ('info', 'live', 'while backing up', '2026-11-30 12:00:00+00:00')"
                )
                written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        backup = tmp_path / "backup.sqlite3"
        result = run_cli("db", "backup", str(backup), env=child_env(DATABASE_URL=url), cwd=tmp_path)
    finally:
        stop.set()
        writer.join()

    assert result.returncode == 0, result.stderr
    assert f"wrote {backup}" in result.stdout
    assert written[0] > 0
    with sqlite3.connect(backup) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("SELECT count(*) FROM messages").fetchone() == (81,)
    assert LOGS <= _count(backup) <= LOGS + written[0]
    assert _count(database) == LOGS + written[0]
    assert not list(tmp_path.glob("*.partial"))


def test_an_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite3"
    sqlite3.connect(database).close()
    existing = tmp_path / "taken.sqlite3"
    existing.write_bytes(b"keep me")

    result = run_cli(
        "db",
        "backup",
        str(existing),
        env=child_env(DATABASE_URL=f"sqlite://{database}"),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert "exists already" in result.stderr
    assert existing.read_bytes() == b"keep me"


def test_postgres_is_pointed_at_pg_dump(tmp_path: Path) -> None:
    env = child_env(DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres")

    result = run_cli("db", "backup", str(tmp_path / "x.dump"), env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert "pg_dump -Fc" in result.stderr and "pg_basebackup" in result.stderr
    assert not (tmp_path / "x.dump").exists()
