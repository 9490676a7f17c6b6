"""db/models/rows.hydrator: instances built from hand-written rows equal, field for
field and type for type, what the ORM loads from the same rows (on either database)."""

from __future__ import annotations

from typing import Any

import httpx
from tortoise import connections
from tortoise.models import Model

from db.models import ChatSession, Message
from tests.factories import Account, create_session, send


def fields_of(instance: Model) -> dict[str, tuple[type, Any]]:
    """Every column's value and type, and the ORM's bookkeeping of the instance."""
    names = [*instance._meta.fields_db_projection, "_partial", "_saved_in_db"]
    names.append("_custom_generated_pk")
    return {name: (type(getattr(instance, name)), getattr(instance, name)) for name in names}


async def rows(table: str, session_id: str) -> list[dict[str, Any]]:
    client = connections.get("default")
    marker = "$1" if client.capabilities.dialect == "postgres" else "?"
    column = "id" if table == "chat_sessions" else "session_id"
    found: list[dict[str, Any]] = await client.execute_query_dict(
        f"SELECT * FROM {table} WHERE {column} = {marker}", [session_id]
    )
    return sorted(found, key=lambda row: row.get("seq", 0))


async def test_messages_built_from_rows_are_what_the_orm_loads(
    client: httpx.AsyncClient, alice: Account
) -> None:
    session_id = await create_session(client, alice)
    await send(client, alice, session_id, "plain")
    answer = await send(
        client, alice, session_id, "with metadata", metadata={"tags": ["a", "b"], "n": 1.5}
    )
    assert answer.status_code == 200, answer.text

    built = [Message.from_row(row) for row in await rows("messages", session_id)]
    loaded = await Message.filter(session_id=session_id).order_by("seq")

    assert len(built) == len(loaded) == 4
    assert [fields_of(message) for message in built] == [fields_of(m) for m in loaded]
    assert built[2].metadata == {"tags": ["a", "b"], "n": 1.5}
    assert built[1].reply_to_id == loaded[0].id


async def test_a_session_built_from_its_row_is_what_the_orm_loads(
    client: httpx.AsyncClient, alice: Account
) -> None:
    from db.services.turn_store import _session_from_row

    session_id = await create_session(client, alice)
    await send(client, alice, session_id, "hello")

    (row,) = await rows("chat_sessions", session_id)
    built = _session_from_row(row)
    loaded = await ChatSession.get(id=session_id)

    assert fields_of(built) == fields_of(loaded)
    assert built.last_seq == 2
