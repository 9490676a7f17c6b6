"""Tortoise models, one module per entity; this package is the app Tortoise loads."""

from db.models.api_keys import ApiKey
from db.models.events import EventPayload
from db.models.logs import LogEntry, LogLevel
from db.models.messages import Message, MessageType
from db.models.model_configs import ModelConfig
from db.models.rate_windows import RateWindow
from db.models.replies import ReplyChunk, ReplyState, ReplyStream
from db.models.sessions import ChatSession
from db.models.users import Role, User

__models__ = [
    User,
    ApiKey,
    ModelConfig,
    ChatSession,
    Message,
    LogEntry,
    EventPayload,
    ReplyStream,
    ReplyChunk,
    RateWindow,
]

__all__ = [
    "ApiKey",
    "ChatSession",
    "EventPayload",
    "LogEntry",
    "LogLevel",
    "Message",
    "MessageType",
    "ModelConfig",
    "RateWindow",
    "ReplyChunk",
    "ReplyState",
    "ReplyStream",
    "Role",
    "User",
]
