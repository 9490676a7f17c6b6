"""A rollback through one server process reaches the next reply in another.

Two real gateway processes share the run's database; the config is `echo`'s, whose
`prefix` parameter shows in every reply which values it was made with.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from tests.factories import Account, create_session, send
from tests.gateway.e2e.processes import gateway_env, start_gateways
from tests.servers import StartServer

CREATE = """mutation($input: CreateModelConfigInput!) { createModelConfig(input: $input) { id } }"""


def ai_message(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    message: dict[str, Any] = response.json()["data"]["ai_message"]
    return message


async def test_a_rollback_in_one_process_is_used_by_the_next_reply_in_another(
    servers: StartServer,
    database_url: str,
    api_key: str,
    app: Starlette,
    admin: Account,
    alice: Account,
) -> None:
    first, second = await start_gateways(servers, 2, gateway_env(database_url, api_key))
    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=10) as one,
        httpx.AsyncClient(base_url=second.base_url, timeout=10) as two,
    ):
        values = {
            "provider": "echo",
            "modelName": "echo-a",
            "modelVersion": "1",
            "parameters": {"prefix": "A: "},
        }
        created = await one.post(
            "/graphql",
            json={"query": CREATE, "variables": {"input": values}},
            headers=admin.headers,
        )
        assert created.status_code == 200, created.text
        config_id = created.json()["data"]["createModelConfig"]["id"]
        session_id = await create_session(one, alice, model_config_id=config_id)
        changed = await one.put(
            f"/api/v1/model-configs/{config_id}",
            json={"model_name": "echo-b", "model_version": "2", "parameters": {"prefix": "B: "}},
            headers=admin.headers,
        )
        assert changed.status_code == 200, changed.text
        # The second process builds (and keeps) its client of version 2.
        before = ai_message(await send(two, alice, session_id, "hi"))

        rolled = await one.post(
            f"/api/v1/model-configs/{config_id}/rollback",
            json={"version": 1},
            headers=admin.headers,
        )
        assert rolled.status_code == 200, rolled.text
        after = [ai_message(await send(http, alice, session_id, "hi")) for http in (two, one)]

    assert (before["content"], before["metadata"]["config_version"]) == ("B: hi", 2)
    assert before["metadata"]["model_name"] == "echo-b"
    assert rolled.json()["data"]["version"] == 3
    for message in after:
        assert message["content"] == "A: hi"
        metadata = message["metadata"]
        assert (metadata["model_name"], metadata["model_version"]) == ("echo-a", "1")
        assert (metadata["model_config_id"], metadata["config_version"]) == (config_id, 3)
    assert first.process.poll() is None and second.process.poll() is None
