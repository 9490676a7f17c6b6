"""A cursor a client edited is BAD_USER_INPUT on every backend, never a database error.

Cursors are opaque, but anyone can decode base64: these take a real cursor apart and put
it back together with a wrong part, as a curious client would.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import pytest

from tests.factories import Account, make_log
from tests.schema.gql import fails, new_session, ok
from tests.schema.test_pagination_lists import T0

SESSIONS = "query($a: String) { sessions(first: 5, after: $a) { totalCount } }"
LOGS = "query($a: String) { logs(first: 5, after: $a) { totalCount } }"


def decoded(cursor: str) -> list[Any]:
    parts: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return parts


def encoded(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def tampered(cursor: str) -> dict[str, str]:
    """Variants of a real keyset cursor [kind, time, id], each wrong in one part."""
    kind, moment, row_id = decoded(cursor)
    other_id = 7 if isinstance(row_id, str) else "0b0e4b8e-2c4e-4a53-9d0e-6d0b2a5f7c11"
    return {
        "id of another type": encoded([kind, moment, other_id]),
        "id not an id": encoded([kind, moment, "x' OR 1=1 --"]),
        "id a boolean": encoded([kind, moment, True]),
        "id out of range": encoded([kind, moment, 10**30]),
        "time without offset": encoded([kind, moment[:19], row_id]),
        "time beyond the calendar": encoded([kind, "0001-01-01T00:00:00+14:00", row_id]),
        "time not a time": encoded([kind, 20260101, row_id]),
        "a part missing": encoded([kind, moment]),
        "a part more": encoded([kind, moment, row_id, row_id]),
    }


@pytest.mark.parametrize("listed", ["sessions", "logs"])
async def test_tampered_cursors_are_bad_input(
    client: httpx.AsyncClient,
    alice: Account,
    admin: Account,
    caplog: pytest.LogCaptureFixture,
    listed: str,
) -> None:
    await new_session(client, admin)
    await new_session(client, admin)
    await make_log("an entry", at=T0)
    document = SESSIONS if listed == "sessions" else LOGS
    real = await ok(client, document.replace("totalCount", "pageInfo { endCursor }"), admin)
    cursor = real[listed]["pageInfo"]["endCursor"]
    assert len(decoded(cursor)) == 3  # the format these variants start from

    for case, variant in tampered(cursor).items():
        error = await fails(client, document, admin, {"a": variant}, code="BAD_USER_INPUT")
        assert error["extensions"]["field"] == "after", case
    assert (await ok(client, document, admin, {"a": cursor}))[listed]["totalCount"] >= 2
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
