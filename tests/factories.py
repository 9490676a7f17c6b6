"""Plain functions that make test data through the service layer or the REST door."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from db.models import LogEntry, LogLevel, ModelConfig, Role
from db.services import users


@dataclass(frozen=True)
class Account:
    user_id: str
    key: str
    key_id: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def make_account(name: str = "alice", *, admin: bool = False) -> Account:
    user, issued = await users.create(name=name, role=Role.ADMIN if admin else Role.USER)
    return Account(user_id=str(user.id), key=issued.secret, key_id=str(issued.key.id), name=name)


async def make_config(**values: Any) -> ModelConfig:
    fields: dict[str, Any] = {"provider": "echo", "model_name": "echo-test", "model_version": "1"}
    fields.update(values)
    return await ModelConfig.create(**fields)


async def make_log(
    message: str, *, at: datetime, level: LogLevel = LogLevel.INFO, event: str = "test.entry"
) -> LogEntry:
    """A log entry written at a chosen time, so order and time filters are deterministic."""
    return await LogEntry.create(level=level, event=event, message=message, created_at=at)


async def create_session(
    client: httpx.AsyncClient, account: Account, *, model_config_id: str | None = None
) -> str:
    body: dict[str, Any] = {"user_id": account.user_id}
    if model_config_id is not None:
        body["model_config_id"] = model_config_id
    response = await client.post("/api/v1/sessions", json=body, headers=account.headers)
    assert response.status_code == 200, response.text
    session_id: str = response.json()["data"]["session_id"]
    return session_id


async def send(
    client: httpx.AsyncClient,
    account: Account,
    session_id: str,
    message: str = "hello",
    **extra: Any,
) -> httpx.Response:
    headers = dict(account.headers)
    headers.update(extra.pop("headers", {}))
    body = {"user_id": account.user_id, "message": message, **extra}
    return await client.post(f"/api/v1/sessions/{session_id}/messages", json=body, headers=headers)


async def read_history(
    client: httpx.AsyncClient, account: Account, session_id: str
) -> dict[str, Any]:
    """The session's first 100 messages and total, as the REST door answers them."""
    response = await client.get(
        f"/api/v1/sessions/{session_id}/messages",
        params={"page_size": 100},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def read_all_messages(
    client: httpx.AsyncClient, account: Account, session_id: str
) -> list[dict[str, Any]]:
    """Every message of the session, oldest first, through the REST door's pages."""
    messages: list[dict[str, Any]] = []
    for page in itertools.count(1):
        response = await client.get(
            f"/api/v1/sessions/{session_id}/messages",
            params={"page_size": 100, "page_num": page},
            headers=account.headers,
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        messages += data["messages"]
        if len(messages) >= data["total"] or not data["messages"]:
            return messages
    raise AssertionError("unreachable")
