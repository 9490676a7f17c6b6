"""No N+1: a nested list costs the same number of SQL statements for 3 sessions or 30,
through Strawberry's resolvers (on PostgreSQL the compiled path answers such a document
with one statement: tests/db/test_round_trips.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from db.services import sessions, turns, users
from tests.factories import Account, make_account, make_config
from tests.schema.gql import ok
from tests.schema.statements import counted

NESTED = """
{ sessions(first: 50) { edges { node {
  user { name } modelConfig { modelName } messageCount
  messages(first: 20) { edges { node { content } } }
} } } }"""
# The sessions window, users, configs, message windows; and the key (with its user),
# unless the server keeps verified keys (AUTH_CACHE_SECONDS, on PostgreSQL).
EXPECTED_STATEMENTS = 4


async def account_with_sessions(app: Starlette, name: str, count: int) -> Account:
    """`count` sessions over two configs, with 2, 4 or 6 messages each."""
    account = await make_account(name)
    caller = await users.authenticate(token=account.key)
    configs = [str((await make_config(model_name=f"{name}-{n}")).id) for n in range(2)]
    for n in range(count):
        session = await sessions.create(caller=caller, model_config_id=configs[n % 2])
        for turn in range(n % 3 + 1):
            await turns.send(
                runtime=app.state.runtime,
                caller=caller,
                request=turns.SendRequest(session_id=str(session.id), content=f"message {turn}"),
            )
    return account


async def statements_for(
    client: httpx.AsyncClient, account: Account, caplog: pytest.LogCaptureFixture
) -> tuple[list[str], dict[str, Any]]:
    await ok(client, "{ me { id } }", account)  # the key's last-used time is now fresh
    async with counted(caplog) as statements:
        data = await ok(client, NESTED, account)
    return statements, data


async def test_a_nested_list_runs_a_constant_number_of_statements(
    app: Starlette, strawberry_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = strawberry_client
    few = await account_with_sessions(app, "few", 3)
    many = await account_with_sessions(app, "many", 30)

    few_statements, few_data = await statements_for(client, few, caplog)
    many_statements, many_data = await statements_for(client, many, caplog)

    expected = EXPECTED_STATEMENTS + (app.state.settings.key_cache_seconds == 0)
    assert len(few_statements) == len(many_statements) == expected, (
        few_statements,
        many_statements,
    )
    few_nodes = [e["node"] for e in few_data["sessions"]["edges"]]
    many_nodes = [e["node"] for e in many_data["sessions"]["edges"]]
    assert len(few_nodes) == 3 and len(many_nodes) == 30
    for nodes, name in ((few_nodes, "few"), (many_nodes, "many")):
        assert {node["user"]["name"] for node in nodes} == {name}
        assert {node["modelConfig"]["modelName"] for node in nodes} == {f"{name}-0", f"{name}-1"}
        for node in nodes:
            contents = [edge["node"]["content"] for edge in node["messages"]["edges"]]
            assert len(contents) == node["messageCount"] in (2, 4, 6)
            assert contents[:2] == ["message 0", "Echo: message 0"]
