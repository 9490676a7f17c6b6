"""Tortoise models, one module per entity; this package is the app Tortoise loads."""

from db.models.api_keys import ApiKey
from db.models.events import EventPayload
from db.models.feedback import MessageFeedback, Rating
from db.models.logs import LogEntry, LogLevel
from db.models.messages import Message, MessageType
from db.models.model_config_versions import ModelConfigVersion
from db.models.model_configs import ModelConfig
from db.models.rate_windows import RateWindow
from db.models.replies import ReplyChunk, ReplyState, ReplyStream
from db.models.sessions import ChatSession
from db.models.usage import UsageRecord
from db.models.users import Role, User

__models__ = [
    User,
    ApiKey,
    ModelConfig,
    ModelConfigVersion,
    ChatSession,
    Message,
    MessageFeedback,
    UsageRecord,
    LogEntry,
    EventPayload,
    ReplyStream,
    ReplyChunk,
    RateWindow,
]

# Rows that live for seconds or minutes (UNLOGGED on PostgreSQL: lost in a crash by
# design): reply pieces, big event bodies, rate counters. A data move (db.transfer) skips them.
EPHEMERAL = (EventPayload, ReplyStream, ReplyChunk, RateWindow)

__all__ = [
    "EPHEMERAL",
    "ApiKey",
    "ChatSession",
    "EventPayload",
    "LogEntry",
    "LogLevel",
    "Message",
    "MessageFeedback",
    "MessageType",
    "ModelConfig",
    "ModelConfigVersion",
    "RateWindow",
    "Rating",
    "ReplyChunk",
    "ReplyState",
    "ReplyStream",
    "Role",
    "UsageRecord",
    "User",
]
