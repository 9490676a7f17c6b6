"""A stored message stays a success when announcing it fails (the broker lost its
database): the client is answered and nothing is lost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from db.events import InProcessBroker
from tests.factories import Account, create_session, read_history, send


class LosingBroker(InProcessBroker):
    """Publishes every event but those of the sessions' topics, which fail as a lost
    connection would."""

    async def publish(self, topic: str, event: Mapping[str, Any]) -> None:
        if topic.startswith("session:"):
            raise ConnectionError("the broker's connection is gone")
        await super().publish(topic, event)


@pytest.fixture
def events() -> LosingBroker:
    return LosingBroker()


async def test_a_message_whose_announcement_fails_is_still_stored_and_answered(
    client: httpx.AsyncClient, alice: Account, caplog: pytest.LogCaptureFixture
) -> None:
    session_id = await create_session(client, alice)

    response = await send(client, alice, session_id, "hello")

    assert response.status_code == 200, response.text
    history = await read_history(client, alice, session_id)
    assert [m["content"] for m in history["messages"]] == ["hello", "Echo: hello"]
    assert "could not announce message" in caplog.text
