"""Usage reports: replies asked of models, added up per user, config and UTC day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.requests import Request

from db.errors import Invalid
from db.identity import Caller
from db.services import usage
from gateway.rest.requests import query
from gateway.rest.routing import Endpoint
from gateway.rest.schemas import query_time

# The REST names of the groups (GraphQL's USER, MODEL_CONFIG, DAY).
GROUPS = {
    "user": usage.UsageGroup.USER,
    "config": usage.UsageGroup.MODEL_CONFIG,
    "day": usage.UsageGroup.DAY,
}
_NAME = "(" + "|".join(GROUPS) + ")"
# Comma-separated group names (spaces around them are ignored); empty for no group. Plain
# spaces, not \s: ECMA-262 and Python disagree on what else is white space.
GROUP_BY_PATTERN = rf"^ *({_NAME} *(, *{_NAME} *)*)?$"


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    start_time: datetime | None = Field(
        None, description="UTC unless an offset is given; inclusive."
    )
    end_time: datetime | None = Field(None, description="UTC unless an offset is given; exclusive.")
    user_id: str | None = Field(
        None, description="Whose usage: the caller's own by default; another's for admins only."
    )
    config_id: str | None = Field(None, description="Only replies of this model config.")
    group_by: str = Field(
        "user",
        description="Comma-separated groups, combined: user, config, day (UTC). Empty for one "
        "row of totals.",
        json_schema_extra={"pattern": GROUP_BY_PATTERN},
    )

    @field_validator("start_time", "end_time", mode="before")
    @classmethod
    def _restore_plus(cls, value: Any) -> Any:
        return query_time(value)


class UsageRowOut(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    user_id: str | None = Field(description="Set when grouped by user.")
    config_id: str | None = Field(description="Set when grouped by config.")
    day: str | None = Field(description="YYYY-MM-DD (UTC), set when grouped by day.")
    replies: int = Field(
        description="Replies the model gave: stored whole, or cancelled part way. Failed "
        "replies are not among them."
    )
    failed_replies: int = Field(description="Replies the model did not give (nothing stored).")
    prompt_tokens: int
    completion_tokens: int
    average_latency_ms: float | None = Field(
        description="Mean time to reply over `replies`; null when none has a latency."
    )


class UsageReport(BaseModel):
    usage: list[UsageRowOut] = Field(description="Ordered by day, user, then config.")


def groups_of(text: str) -> list[usage.UsageGroup]:
    """The groups `group_by` names; an unknown name is a 400 naming group_by."""
    names = [name.strip(" ") for name in text.split(",")] if text.strip(" ") else []
    unknown = [name for name in names if name not in GROUPS]
    if unknown:
        raise Invalid(f"must be names among {', '.join(GROUPS)}, comma-separated", field="group_by")
    return [GROUPS[name] for name in names]


def row_out(row: usage.UsageRow) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "config_id": row.model_config_id,
        "day": row.day,
        "replies": row.replies,
        "failed_replies": row.failed_replies,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "average_latency_ms": row.average_latency_ms,
    }


async def usage_report(request: Request, caller: Caller) -> dict[str, Any]:
    params = query(request, UsageQuery)
    rows = await usage.report(
        caller=caller,
        start_time=params.start_time,
        end_time=params.end_time,
        user_id=params.user_id,
        model_config_id=params.config_id,
        group_by=groups_of(params.group_by),
    )
    return {"usage": [row_out(row) for row in rows]}


ENDPOINTS = [
    Endpoint(
        "GET",
        "/usage",
        usage_report,
        summary="Replies asked of models, added up per user, config and UTC day: the caller's "
        "own, or (admins) anyone's or everyone's",
        query=UsageQuery,
        response=UsageReport,
        errors=(400, 401, 403, 500),
    ),
]
