"""Request and response shapes of /api/v1; the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from db.services.config_rules import ENV_NAME_PATTERN, NOT_BLANK, TEXT_LIMITS
from db.services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_NUM, MAX_PAGE_SIZE
from db.services.text import NO_NUL_PATTERN, NOT_BLANK_PATTERN
from db.services.titles import MAX_TITLE_CHARS
from db.services.turns import MAX_CLIENT_MESSAGE_ID_CHARS

# `model_*` field names are part of the frozen contract.
_BODY = ConfigDict(extra="ignore", strict=True, protected_namespaces=())
_QUERY = ConfigDict(extra="ignore", protected_namespaces=())
_OUT = ConfigDict(protected_namespaces=())

# A `+` in an unencoded query string arrives as a space: `...T08:00:00 00:00`.
_SPACED_OFFSET = re.compile(r" (\d{2}(:?\d{2})?)$")
# pydantic reads a bare number as Unix seconds (20261124 would be 1970-08-23): not ISO 8601.
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?")


def query_time(value: Any) -> Any:
    """A time of a query string as pydantic should read it: a `+` of an unencoded query
    string arrives as a space; a bare number is refused (it is not an ISO 8601 time)."""
    if isinstance(value, str):
        value = _SPACED_OFFSET.sub(r"+\1", value.strip())
        if _NUMBER.fullmatch(value):
            raise PydanticCustomError("datetime_parsing", "Input is a number, not a time")
    return value


def text_schema(limit: int | None = None, *, not_blank: bool = False) -> dict[str, Any]:
    """JSON Schema of a text field the service checks (validation stays in the service):
    no NUL anywhere and, when `not_blank`, a character that str.strip() keeps."""
    schema: dict[str, Any] = {"pattern": NOT_BLANK_PATTERN if not_blank else NO_NUL_PATTERN}
    if not_blank:
        schema["minLength"] = 1
    if limit is not None:
        schema["maxLength"] = limit
    return schema


def _config_text(name: str) -> Any:
    return Field(
        None, json_schema_extra=text_schema(TEXT_LIMITS[name], not_blank=name in NOT_BLANK)
    )


class CreateSessionBody(BaseModel):
    model_config = _BODY
    user_id: str
    model_config_id: str | None = None


def _left_out_is_kept(schema: dict[str, Any]) -> None:
    # pydantic's default stands for "left out", which keeps the stored value: none is
    # documented; and a body that changes nothing is refused.
    for field in schema["properties"].values():
        field.pop("default", None)
    schema["anyOf"] = [{"required": [name]} for name in schema["properties"]]


class UpdateSessionBody(BaseModel):
    """Fields left out are kept; a null title clears it."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        protected_namespaces=(),
        json_schema_extra=_left_out_is_kept,
    )
    title: str | None = Field(
        None,
        description="Not blank, at most 200 characters; null clears it.",
        json_schema_extra=text_schema(MAX_TITLE_CHARS, not_blank=True),
    )
    # Not nullable: the defaults only stand for "left out" (model_fields_set tells).
    model_config_id: str = Field(None, description="The next reply uses this config.")  # type: ignore[assignment]
    archived: bool = Field(False, description="Archived sessions leave the default list.")

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, null included."""
        return self.model_dump(include=self.model_fields_set)


class SendMessageBody(BaseModel):
    model_config = _BODY
    user_id: str
    # maxLength is the MAX_MESSAGE_CHARS setting, filled in when the document is built.
    message: str = Field(json_schema_extra=text_schema(not_blank=True))
    metadata: Any = Field(
        None,
        description="Any JSON value, at most 16 KiB encoded and MAX_JSON_DEPTH levels deep.",
    )
    client_message_id: str | None = Field(
        None, json_schema_extra=text_schema(MAX_CLIENT_MESSAGE_ID_CHARS, not_blank=True)
    )


class RegenerateBody(BaseModel):
    model_config = _BODY
    user_id: str


class UpdateModelConfigBody(BaseModel):
    """Fields left out are kept; null clears base_url or api_key_env and is refused for
    the other fields."""

    model_config = _BODY
    # Not nullable: the default only stands for "left out" (model_fields_set tells).
    model_name: str = _config_text("model_name")
    model_version: str = _config_text("model_version")
    # Described in the document as ConfigParameters (see gateway.rest.openapi).
    parameters: dict[str, Any] = Field(default_factory=dict)
    # enum: the providers of this server, filled in when the document is built.
    provider: str = _config_text("provider")
    base_url: str | None = Field(
        None,
        description="null removes it (the provider's default endpoint).",
        json_schema_extra=text_schema(TEXT_LIMITS["base_url"]),
    )
    api_key_env: str | None = Field(
        None,
        description="null removes it (a keyless server).",
        json_schema_extra={"maxLength": TEXT_LIMITS["api_key_env"], "pattern": ENV_NAME_PATTERN},
    )
    is_default: bool = Field(
        False, description="Only true: make another config the default to unset this one."
    )

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, null included."""
        return self.model_dump(include=self.model_fields_set)


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
        return query_time(value)


class SessionCreated(BaseModel):
    session_id: str


class SessionsQuery(PageQuery):
    archived: Literal["false", "true", "all"] = Field(
        "false", description="Unarchived sessions (false), archived ones (true), or all."
    )
    user_id: str | None = Field(None, description="Admins: another user's sessions.")


class SessionOut(BaseModel):
    model_config = _OUT
    session_id: str
    user_id: str
    model_config_id: str
    title: str | None
    archived: bool
    created_time: datetime
    updated_time: datetime
    message_count: int
    forked_from_message_id: str | None = Field(
        description="The message this session was forked at; null if it is no fork."
    )


class SessionList(BaseModel):
    sessions: list[SessionOut]
    total: int


class SessionDeleted(BaseModel):
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


class RegenerateResult(BaseModel):
    ai_message: AiMessageOut


class CancelResult(BaseModel):
    model_config = _OUT
    cancelled: bool


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


class RollbackModelConfigBody(BaseModel):
    model_config = _BODY
    version: int = Field(
        description="The version whose values the config takes again (is_default stays).",
        json_schema_extra={"minimum": 1, "maximum": 2**31 - 1},
    )

    @field_validator("version", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        # JSON does not tell 2 from 2.0, nor does JSON Schema's "integer": both are 2.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value


class ModelConfigSnapshot(BaseModel):
    """Every field of a config at one version; never a secret."""

    model_config = _OUT
    provider: str
    model_name: str
    model_version: str
    parameters: dict[str, Any]
    base_url: str | None
    api_key_env: str | None
    is_default: bool


class ModelConfigVersionOut(BaseModel):
    model_config = _OUT
    config_id: str
    version: int
    created_time: datetime
    actor_id: str | None = Field(description="null for the CLI or migrations.")
    changed_fields: list[str]
    snapshot: ModelConfigSnapshot


class ModelConfigVersionList(BaseModel):
    versions: list[ModelConfigVersionOut]
    total: int


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
