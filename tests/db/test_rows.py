"""db/models/rows.hydrator: instances built from hand-written rows equal, field for
field and type for type, what the ORM loads from the same rows (on either database),
and follow the ORM when it sorts its fields again."""

from __future__ import annotations

from typing import Any

import httpx
from tortoise import connections
from tortoise.models import Model

from db.models import Message, MessageType
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


async def test_fields_sorted_again_by_tortoise_init_are_planned_again(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """Tortoise.init (another dialect) refills the field lists with new entries: what a
    driver converts itself is taken as it comes, the rest converted, from then on."""
    session_id = await create_session(client, alice)
    await send(client, alice, session_id, "hello")
    (row, _) = await rows("messages", session_id)
    meta = Message._meta
    native, complex_ = list(meta.db_native_fields), list(meta.db_complex_fields)
    assert isinstance(Message.from_row(row).type, MessageType)
    try:
        # As if a driver converted `type` itself: it now comes as it is.
        kind = next(entry for entry in complex_ if entry[1] == "type")
        meta.db_native_fields[:] = [(*entry,) for entry in native] + [(*kind,)]
        meta.db_complex_fields[:] = [entry for entry in complex_ if entry is not kind]
        assert Message.from_row(row).type == "user"
        assert not isinstance(Message.from_row(row).type, MessageType)
    finally:
        meta.db_native_fields[:] = [(*entry,) for entry in native]
        meta.db_complex_fields[:] = complex_
    assert isinstance(Message.from_row(row).type, MessageType)
