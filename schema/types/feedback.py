from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from db import models
from schema.types.rows import from_row


@strawberry.enum
class Rating(Enum):
    UP = "up"
    DOWN = "down"


@strawberry.type(description="The caller's own rating of an AI message.")
class Feedback:
    rating: Rating
    note: str | None
    updated_at: datetime

    @classmethod
    def from_model(cls, row: models.MessageFeedback) -> Feedback:
        return from_row(cls, row, rating=Rating(row.rating))
