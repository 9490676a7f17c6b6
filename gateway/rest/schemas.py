"""Request and response shapes of /api/v1; the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from db.services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_NUM, MAX_PAGE_SIZE

# `model_*` field names are part of the frozen contract.
_BODY = ConfigDict(extra="ignore", strict=True, protected_namespaces=())
_QUERY = ConfigDict(extra="ignore", protected_namespaces=())
_OUT = ConfigDict(protected_namespaces=())

# A `+` in an unencoded query string arrives as a space: `...T08:00:00 00:00`.
_SPACED_OFFSET = re.compile(r" (\d{2}(:?\d{2})?)$")
# pydantic reads a bare number as Unix seconds (20261124 would be 1970-08-23): not ISO 8601.
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")


class CreateSessionBody(BaseModel):
    model_config = _BODY
    user_id: str
    model_config_id: str | None = None


class SendMessageBody(BaseModel):
    model_config = _BODY
    user_id: str
    message: str
    metadata: Any = None
    client_message_id: str | None = None


class UpdateModelConfigBody(BaseModel):
    model_config = _BODY
    model_name: str | None = None
    model_version: str | None = None
    parameters: dict[str, Any] | None = None
    provider: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    is_default: bool | None = None


class PageQuery(BaseModel):
    model_config = _QUERY
    page_size: int = Field(
        DEFAULT_PAGE_SIZE, json_schema_extra={"minimum": 1, "maximum": MAX_PAGE_SIZE}
    )
    page_num: int = Field(1, json_schema_extra={"minimum": 1, "maximum": MAX_PAGE_NUM})


class LogsQuery(PageQuery):
    level: Literal["info", "warning", "error"] | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None

    @field_validator("start_time", "end_time", mode="before")
    @classmethod
    def _restore_plus(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = _SPACED_OFFSET.sub(r"+\1", value.strip())
            if _NUMBER.fullmatch(value):
                raise PydanticCustomError("datetime_parsing", "Input is a number, not a time")
        return value

    @field_validator("start_time", "end_time")
    @classmethod
    def _assume_utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class SessionCreated(BaseModel):
    session_id: str


class MessageOut(BaseModel):
    message_id: str
    type: Literal["user", "ai"]
    content: str
    created_time: datetime
    metadata: Any = None


class MessageHistory(BaseModel):
    messages: list[MessageOut]
    total: int


class UserMessageRef(BaseModel):
    message_id: str
    created_time: datetime


class AiMessageOut(BaseModel):
    message_id: str
    content: str
    created_time: datetime
    metadata: dict[str, Any]


class SendResult(BaseModel):
    user_message: UserMessageRef
    ai_message: AiMessageOut


class ModelConfigOut(BaseModel):
    model_config = _OUT
    config_id: str
    model_name: str
    model_version: str
    parameters: dict[str, Any]
    provider: str
    base_url: str | None
    api_key_env: str | None
    is_default: bool
    version: int
    updated_time: datetime


class ModelConfigList(BaseModel):
    models: list[ModelConfigOut]


class ModelConfigUpdated(BaseModel):
    config_id: str
    updated_time: datetime
    version: int


class LogOut(BaseModel):
    log_id: str
    level: Literal["info", "warning", "error"]
    message: str
    created_time: datetime
    event: str
    actor_id: str | None
    details: Any = None


class LogList(BaseModel):
    logs: list[LogOut]
    total: int


class ErrorEnvelope(BaseModel):
    code: int
    message: str
    data: None = None
