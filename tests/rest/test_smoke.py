from __future__ import annotations

import httpx

from tests.factories import Account, create_session, send


async def test_send_and_read_back(client: httpx.AsyncClient, alice: Account) -> None:
    session_id = await create_session(client, alice)
    response = await send(client, alice, session_id, "hi there", metadata={"k": 1})
    assert response.status_code == 200, response.text
    history = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=alice.headers)
    data = history.json()["data"]
    assert data["total"] == 2
    assert [m["content"] for m in data["messages"]] == ["hi there", "Echo: hi there"]
