"""Counting the SQL statements a piece of work runs, through Tortoise's statement log.

Tortoise logs every statement it executes, once, at DEBUG on "tortoise.db_client".
`counted()` checks that assumption on the live connection before relying on it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from tortoise import Tortoise

from db.models import User

LOGGER = "tortoise.db_client"


def _statements(caplog: pytest.LogCaptureFixture, start: int) -> list[str]:
    return [r.getMessage() for r in caplog.records[start:] if r.name == LOGGER]


@asynccontextmanager
async def counted(caplog: pytest.LogCaptureFixture) -> AsyncIterator[list[str]]:
    """Yields a list that holds, on exit, the statements run inside the block."""
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        await _check_one_record_per_statement(caplog)
        start = len(caplog.records)
        statements: list[str] = []
        yield statements
        statements.extend(_statements(caplog, start))


async def _check_one_record_per_statement(caplog: pytest.LogCaptureFixture) -> None:
    start = len(caplog.records)
    connection = Tortoise.get_connection("default")
    await connection.execute_query("SELECT 1")
    await connection.execute_query("SELECT 2")
    await User.filter(name="nobody").count()
    seen = _statements(caplog, start)
    assert len(seen) == 3, f"expected one log record per statement, got {seen}"
    assert "SELECT 1" in seen[0] and "SELECT 2" in seen[1] and "COUNT" in seen[2].upper()
