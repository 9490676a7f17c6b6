"""A streamed turn through the service layer, as the streaming doors will run it."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from db.identity import Caller
from db.models import Role
from db.services import turns
from tests.factories import Account, create_session, make_config
from tests.providers.conftest import KEY_ENV
from tests.providers.fake_openai import FakeOpenAI, stream
from tests.providers.frames import reply_frames


async def test_a_streamed_turn_stores_the_reply_with_its_metadata(
    app: Starlette,
    client: httpx.AsyncClient,
    alice: Account,
    fake_openai: FakeOpenAI,
    api_key: str,
) -> None:
    config = await make_config(
        provider="openai", model_name="gpt-fake", base_url=fake_openai.base_url, api_key_env=KEY_ENV
    )
    session_id = await create_session(client, alice, model_config_id=str(config.id))
    fake_openai.script(stream([reply_frames(["Once ", "upon ", "a time."], usage=(8, 4))]))
    caller = Caller(user_id=alice.user_id, name=alice.name, role=Role.USER)

    events = [
        event
        async for event in turns.run_turn(
            runtime=app.state.runtime,
            caller=caller,
            request=turns.SendRequest(session_id=session_id, content="a story"),
        )
    ]

    pieces = [event.text for event in events if isinstance(event, turns.ReplyPiece)]
    assert pieces == ["Once ", "upon ", "a time."]
    [stored] = [event for event in events if isinstance(event, turns.AiMessageStored)]
    assert stored.message.content == "Once upon a time."
    metadata = stored.message.metadata
    assert metadata["streamed"] is True
    assert metadata["provider"] == "openai"
    assert metadata["usage"] == {"prompt_tokens": 8, "completion_tokens": 4}
    assert metadata["finish_reason"] == "stop"
    assert 0 <= metadata["time_to_first_token_ms"] <= metadata["latency_ms"]
    assert fake_openai.received[0].body["stream"] is True
