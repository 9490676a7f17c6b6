"""Rating an AI message: the caller's own rating, set, changed or cleared."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict
from starlette.requests import Request

from db.identity import Caller
from db.models import Rating
from db.services import feedback
from db.services.text import BLANK, END
from db.times import iso
from gateway.rest.requests import json_body, path_param
from gateway.rest.routing import Endpoint
from gateway.rest.schemas import text_schema

# The rule the fields cannot state one by one (the service checks it): a note needs a
# rating, unless it is blank (blank text is no note).
_BLANK_PATTERN = rf"^[{BLANK}]*{END}"
_NOTE_NEEDS_A_RATING: JsonDict = {
    "anyOf": [
        {"required": ["rating"], "properties": {"rating": {"type": "string"}}},
        {
            "properties": {
                "note": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": _BLANK_PATTERN}]}
            }
        },
    ]
}


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, json_schema_extra=_NOTE_NEEDS_A_RATING)
    rating: Literal["up", "down"] | None = Field(
        description="null clears the caller's rating (and its note)."
    )
    note: str | None = Field(
        None,
        description="Needs a rating; blank text is no note.",
        json_schema_extra=text_schema(feedback.MAX_NOTE_CHARS),
    )


class FeedbackOut(BaseModel):
    """The caller's rating as it now stands; once cleared, every field but message_id is
    null (there is no rating, so no time it was set)."""

    message_id: str
    rating: Literal["up", "down"] | None
    note: str | None
    updated_time: datetime | None


async def rate_message(request: Request, caller: Caller) -> dict[str, Any]:
    body = await json_body(request, FeedbackBody)
    rated = await feedback.rate(
        caller=caller,
        message_id=path_param(request, "message_id"),
        rating=Rating(body.rating) if body.rating is not None else None,
        note=body.note,
    )
    found = rated.feedback
    return {
        "message_id": str(rated.message.id),
        "rating": found.rating.value if found is not None else None,
        "note": found.note if found is not None else None,
        "updated_time": iso(found.updated_at) if found is not None else None,
    }


ENDPOINTS = [
    Endpoint(
        "PUT",
        "/messages/{message_id}/feedback",
        rate_message,
        summary="Rate an AI message (the caller's own rating); a null rating clears it",
        body=FeedbackBody,
        response=FeedbackOut,
    ),
]
