"""GraphQL enums (UPPER_CASE names) mirroring the stored lower-case values."""

from __future__ import annotations

from enum import Enum

import strawberry


@strawberry.enum
class MessageType(Enum):
    USER = "user"
    AI = "ai"


@strawberry.enum
class LogLevel(Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@strawberry.enum
class Role(Enum):
    USER = "user"
    ADMIN = "admin"
