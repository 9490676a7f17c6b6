"""Every setting of the service, read once from the environment (or a `.env` file)."""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from db.config import database_dialect, normalise_database_url, tortoise_config

DEFAULT_DATABASE_URL = "sqlite://data/gateway.sqlite3"
# ENVIRONMENT=production refuses a larger clock skew for identity provider tokens.
MAX_PRODUCTION_JWT_LEEWAY = 60.0


L = TypeVar("L")


def _is_origin(value: str) -> bool:
    """`scheme://host[:port]` exactly, the form of a browser's Origin header."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (a port out of range raises ValueError)
    except ValueError:
        return False
    plain = bool(parts.scheme and parts.hostname) and "@" not in parts.netloc
    return plain and value == f"{parts.scheme}://{parts.netloc}"


class SettingsError(Exception):
    """A setting has a value the service cannot run with."""


class Settings(BaseSettings):
    """The service's configuration; field names are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description=(
            "`sqlite://PATH` or `postgres://user:pass@host:5432/db` (`postgresql://` "
            "accepted; pool size via `?minsize=1&maxsize=10`). SQLite gets "
            "`busy_timeout=10000` and `synchronous=NORMAL` (WAL) unless the URL says "
            "otherwise"
        ),
    )
    host: str = Field("127.0.0.1", description="interface `serve` binds")
    port: int = Field(8000, ge=1, le=65535, description="port `serve` listens on")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="uvicorn worker processes; above 1 needs PostgreSQL (refused on SQLite)",
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="`debug`, `info`, `warning`, `error`, `critical`"
    )
    access_log: bool = Field(
        False,
        description=(
            "one access line per request (method, route template, status, duration, user "
            "id, request id), written by the app; uvicorn's own access log is always off"
        ),
    )
    # One JSON object per log line (orjson), or readable text.
    log_format: Literal["text", "json"] = Field(
        "text",
        description=(
            "`json`: one JSON object per log line (`time`, `level`, `logger`, `message`, "
            "`request_id` and the line's own fields); `text`: readable lines, the request "
            "id in brackets"
        ),
    )
    # GET /metrics in Prometheus' text format, and the counting behind it.
    metrics_enabled: bool = Field(
        True,
        description=(
            'serve Prometheus metrics at `GET /metrics` (see "Operations"); `false`: no '
            "endpoint, nothing counted"
        ),
    )
    metrics_token: str = Field(
        "",
        description=(
            "when set, `GET /metrics` answers 401 without `Authorization: Bearer <METRICS_TOKEN>`"
        ),
    )
    # A message is refused above this many characters; a request body above this many bytes.
    max_message_chars: int = Field(32_000, ge=1, description="longest accepted message")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="largest accepted request body")
    # A message's metadata, as compact JSON.
    max_metadata_bytes: int = Field(
        16_384, ge=64, description="largest `metadata` of a message, as compact JSON"
    )
    # Active API keys one user may hold (rate limits count per key).
    max_keys_per_user: int = Field(
        20, ge=1, description="active API keys one user may hold (`createApiKey` refuses more)"
    )
    # The request line and headers of one HTTP request (431 above it; `chat-gateway serve`).
    max_header_bytes: int = Field(
        32_768,
        ge=1024,
        description=(
            "request line and headers of one request; above it `chat-gateway serve` "
            "answers 431 `{code: 431, ...}` and closes the connection"
        ),
    )
    # One WebSocket message from a client (the connection is closed with 1009 above it).
    ws_max_message_bytes: int = Field(
        1_048_576,
        ge=1024,
        description=(
            "largest WebSocket message a client may send; above it the connection is "
            "closed with 1009"
        ),
    )
    # A request body must arrive whole within this many seconds (a client that announces
    # more than it sends is answered 400 then, instead of holding a worker forever).
    request_body_timeout: float = Field(
        30.0,
        gt=0,
        description=(
            "seconds a request body has to arrive whole; a shorter body than its "
            "`Content-Length` is answered 400 then"
        ),
    )
    # The deepest nesting of a JSON value a client sends (metadata): `[[1]]` is two deep.
    # At most 200: the JSON encoder writes no deeper than 254 levels.
    max_json_depth: int = Field(
        64,
        ge=2,
        le=200,
        description=(
            "deepest nesting of a JSON value a client sends (`metadata`); a request body "
            "may nest 16 levels more"
        ),
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [],
        description=(
            "comma-separated origins allowed by CORS, and to open GraphQL WebSockets from "
            "a browser page (a WebSocket client that sends no `Origin`, or one of the "
            "server's own origin, is let in); none by default"
        ),
    )
    # Authentication failures are counted in memory and logged as one summary entry per
    # reason and source this often, so that a flood of bad keys writes almost nothing.
    auth_failure_log_interval: float = Field(
        60.0,
        gt=0,
        description=(
            "seconds between the `auth.failed` log entries that count authentication "
            "failures (a failed request itself writes nothing)"
        ),
    )
    # How long a verified API key is trusted without a lookup (on PostgreSQL, where a
    # revocation reaches every process at once; SQLite looks every key up).
    auth_cache_seconds: float = Field(
        30.0,
        ge=0,
        description=(
            "PostgreSQL: how long a process trusts an API key it verified without looking "
            "it up again; a revoked key (`key revoke`, from any process) is refused at "
            "once all the same. SQLite looks every key up"
        ),
    )
    # production: no GraphiQL, introspection for admins only, no bootstrap admin, and the
    # settings unsafe in production refused (`_safe_in_production`).
    environment: Literal["development", "production"] = Field(
        "development", description="`production` switches production mode on (see below)"
    )
    # JWT sign-in through an identity provider: on when the issuer, the audience and one
    # source of keys (a JWKS URL or a static PEM public key) are all set.
    jwt_issuer: str = Field(
        "",
        description=(
            "the identity provider's `iss`; with `JWT_AUDIENCE` and `JWT_JWKS_URL` or "
            "`JWT_PUBLIC_KEY`, bearer JWTs are accepted"
        ),
    )
    jwt_audience: str = Field(
        "", description="the `aud` the identity provider's tokens carry for this gateway"
    )
    jwt_jwks_url: str = Field(
        "",
        description=(
            "the provider's key set, e.g. `https://idp.example/.well-known/jwks.json` "
            "(https in production)"
        ),
    )
    jwt_public_key: str = Field(
        "",
        description=(
            "instead of a JWKS: one PEM public key, RSA of 2048 bits or more (RS256) or "
            "EC P-256 (ES256); `\\n` escapes are read as line breaks"
        ),
    )
    jwt_name_claim: str = Field(
        "name",
        min_length=1,
        description=(
            "the claim that names a signed-in user (a new user without it is named by "
            "`sub`; a token without it keeps the stored name)"
        ),
    )
    jwt_role_claim: str = Field(
        "role",
        min_length=1,
        description=(
            "the claim that gives a signed-in user's role (`admin` makes an admin, any "
            "other value a user; a token without it keeps the stored role)"
        ),
    )
    # Clock skew allowed when checking a token's exp, nbf and iat.
    jwt_leeway_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        description=(
            "clock skew allowed on a token's `exp`, `nbf` and `iat` (at most 60 in production)"
        ),
    )
    # Fetched JWKS keys are used this long, then fetched again; the JWKS is fetched (for a
    # key id not seen yet too) at most once per JWT_JWKS_REFRESH_SECONDS, each fetch
    # within JWT_JWKS_TIMEOUT.
    jwt_jwks_cache_seconds: float = Field(
        600.0, gt=0, description="how long fetched JWKS keys are used"
    )
    jwt_jwks_refresh_seconds: float = Field(
        30.0,
        ge=1,
        description=(
            "the least time between two fetches of the JWKS, whatever key ids tokens name "
            "(at least 1)"
        ),
    )
    jwt_jwks_timeout: float = Field(5.0, gt=0, description="seconds one fetch of the JWKS may take")
    # Create a first admin (and print its key once) when the database has no user at all.
    bootstrap_admin: bool = Field(
        True,
        description=(
            "`serve` creates a first admin while there is no user (never in production mode)"
        ),
    )
    migrate_on_start: bool = Field(True, description="`serve` applies pending migrations first")
    graphql_ide: bool = Field(
        True, description="serve GraphiQL on GET `/graphql` (never in production mode)"
    )
    console_enabled: bool = Field(
        True, description="serve the web console: the chat page at `/`, the admin page at `/admin`"
    )
    graphql_introspection: bool = Field(
        True,
        description=(
            "allow schema introspection (production mode: to admins only); `false`: to no one"
        ),
    )
    graphql_max_depth: int = Field(12, ge=2, description="deepest nesting of a GraphQL query")
    graphql_max_aliases: int = Field(30, ge=1, description="most aliases in one GraphQL document")
    graphql_max_tokens: int = Field(2_000, ge=50, description="most tokens in one GraphQL document")
    # The most objects one operation could return, list sizes multiplied along the path
    # (schema/cost.py): 100 sessions with 100 messages each cost about 20,000.
    graphql_max_cost: int = Field(
        50_000,
        ge=100,
        description=(
            "most objects one GraphQL operation could return, page sizes multiplied along "
            "the path (`first`/`last` given as a variable counts as 100, absent as 20; "
            "other lists as 100): 100 sessions with 100 messages each cost about 20,000"
        ),
    )
    # PostgreSQL: read queries answered by one compiled statement each (schema.compiled);
    # false: Strawberry answers everything. The plans of this many documents are kept.
    graphql_fast_path: bool = Field(
        True,
        description=(
            "PostgreSQL: answer read queries with one compiled SQL statement each (see "
            '"How GraphQL reads are answered"); `false`: Strawberry answers every '
            "document. SQLite always uses Strawberry"
        ),
    )
    graphql_plan_cache_size: int = Field(
        500,
        ge=1,
        description=(
            "documents whose compiled plans a process keeps (least recently used go first)"
        ),
    )
    # Open subscriptions one WebSocket connection may hold at once.
    graphql_max_subscriptions: int = Field(
        100, ge=1, description="subscriptions one WebSocket connection may hold open"
    )
    # A WebSocket send (the close frame included) waits at most this long for the client to
    # read; a subscriber that stops reading is then cut off with 1008 "subscriber too slow".
    graphql_ws_send_timeout: float = Field(
        10.0,
        gt=0,
        description=(
            "seconds a WebSocket send may wait for the client to read; a subscriber that "
            'stops reading is then closed with 1008 "subscriber too slow"'
        ),
    )
    # How long a send waits for the session's previous turn to finish.
    turn_wait_seconds: float = Field(
        300.0, gt=0, description="how long a send waits for the session's previous reply to finish"
    )
    # A turn's lease lasts this long unless its process renews it: how long a process that
    # died mid-reply keeps the session busy (and its reply buffer readable).
    turn_lease_seconds: float = Field(
        30.0,
        ge=1,
        description=(
            "a reply's lease on its session, renewed while it runs: how long a process "
            "that died mid-reply keeps the session busy"
        ),
    )
    # On SIGTERM, running replies and streams get this long to finish before they are
    # stopped (and stored as cancelled).
    shutdown_grace_seconds: float = Field(
        30.0,
        ge=0,
        description=(
            "on SIGTERM, how long open requests, streams and running replies get to "
            "finish before replies are stopped (stored as cancelled)"
        ),
    )
    # PostgreSQL: the longest wait for a connection or a statement, so requests fail fast
    # while the database is away instead of hanging.
    database_timeout: float = Field(
        10.0,
        gt=0,
        description=(
            "PostgreSQL: seconds to connect or run one statement, so requests fail fast "
            "while the database is away"
        ),
    )
    max_history_messages: int = Field(
        50,
        ge=1,
        description="model input budget in messages (a config's parameters may lower or raise it)",
    )
    max_history_tokens: int = Field(
        24_000,
        ge=100,
        description=(
            "model input budget in estimated tokens (a config's parameters may lower or raise it)"
        ),
    )
    # The providers a config may name (a deployment may leave out those that call out).
    model_providers: Annotated[list[str], NoDecode] = Field(
        ["echo", "openai"],
        description=(
            "the providers a model config may name; leave out `openai` for a gateway that "
            "never calls out"
        ),
    )
    provider_connect_timeout: float = Field(
        10.0, gt=0, description="seconds to connect to a network model provider"
    )
    provider_read_timeout: float = Field(
        60.0, gt=0, description="seconds a network model provider may stay silent"
    )
    provider_total_timeout: float = Field(
        180.0,
        gt=0,
        description="seconds one call to a network model provider may take, retries included",
    )
    provider_max_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="retries on 429/5xx/connection errors before tokens have streamed",
    )
    # Rate limits (db/services/rate_limits.py); 0 switches a limit off. Requests per
    # minute per API key (or signed-in token), counted once per authenticated request.
    rate_limit_per_minute: int = Field(
        600,
        ge=0,
        description=(
            "requests a minute per API key (or signed-in token), both doors, counted once "
            "per authenticated request (unauthenticated ones, `/healthz`, `/readyz` and "
            "`/metrics` are not); "
            "over it REST answers 429 `{code: 429, ...}` with `Retry-After`, GraphQL an "
            'error with `extensions.code: "RATE_LIMITED"` and `retryAfter` (seconds). '
            "REST answers carry `RateLimit-Limit`/`-Remaining`/`-Reset`. `0`: no limit"
        ),
    )
    # Sends that ask a model for a reply, per minute per key (both doors, streamed or not).
    reply_rate_limit_per_minute: int = Field(
        60,
        ge=0,
        description=(
            "sends that ask a model for a reply, a minute per key (both doors, streamed "
            "or not; a retry whose answer is stored already does not count). `0`: no "
            "limit"
        ),
    )
    # Streamed replies (REST event streams, GraphQL sendMessageStream/replyStream) a user
    # may have open at once, across every process.
    max_streams_per_user: int = Field(
        4,
        ge=0,
        description=(
            "streamed replies one user may have open at once across every process (REST "
            "event streams, `sendMessageStream`, `replyStream`). `0`: no limit"
        ),
    )
    # How often each process sends its counts to the shared store and learns the others':
    # the longer, the fewer writes, the more a burst across processes may overshoot.
    rate_limit_flush_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description=(
            "how often each process sends its counts to the shared store and learns the "
            "others' (one statement for every key); a request goes to the store itself "
            "only near its limit, so a burst across processes may pass the limit by a "
            "little (see `db/services/rate_limits.py`)"
        ),
    )
    # Share rate-limit counters through Redis (redis://host:port/db) instead of the
    # database (PostgreSQL's rate_windows; SQLite counts in memory, one process).
    redis_url: str | None = Field(
        None,
        description=(
            "share rate-limit counters through Redis (`redis://host:port/db`) instead of "
            "PostgreSQL's `rate_windows` table (SQLite, one process, counts in memory); a "
            "store that is down lets requests through, with a warning logged"
        ),
    )
    # Prefix of every Redis key the gateway writes (one Redis may serve several gateways).
    redis_key_prefix: str = Field(
        "cgw:rl:",
        description=(
            "prefix of every Redis key the gateway writes (one Redis may serve several gateways)"
        ),
    )
    # Operation log retention (db/services/log_retention.py), pruned in the background in
    # small batches by every server process (one at a time on PostgreSQL).
    log_retention_days: int = Field(
        90, ge=1, description="days an operation log entry is kept; older ones are deleted"
    )
    log_max_rows: int = Field(
        1_000_000, ge=1000, description="operation log entries kept at most (the newest)"
    )
    log_prune_interval: float = Field(
        300.0, gt=0, description="seconds between two rounds of operation log pruning"
    )

    @field_validator("log_level", "log_format", "environment", mode="before")
    @classmethod
    def _lowercase_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("cors_origins", "model_providers", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        # Browsers send `scheme://host[:port]`; anything else would never match (or crash
        # the GraphQL endpoint), so refuse it here, by name.
        for origin in value:
            if origin != "*" and not _is_origin(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: use '*' or scheme://host[:port], no path"
                )
        return value

    @field_validator("model_providers")
    @classmethod
    def _check_providers(cls, value: list[str]) -> list[str]:
        from gateway.providers import SHIPPED  # the providers module imports these settings

        unknown = sorted(set(value) - set(SHIPPED))
        if unknown or not value:
            raise ValueError(f"name one or more of {', '.join(SHIPPED)} (not {unknown or 'none'})")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        url = normalise_database_url(value)
        database_dialect(url)  # raises ValueError for an unsupported scheme
        return url

    @model_validator(mode="after")
    def _one_process_on_sqlite(self) -> Settings:
        if self.workers > 1 and self.dialect == "sqlite":
            raise ValueError(
                "WORKERS above 1 needs PostgreSQL (set DATABASE_URL=postgres://...): "
                "SQLite cannot share events and replies between processes"
            )
        return self

    @field_validator("jwt_jwks_url")
    @classmethod
    def _check_jwks_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError("must be an http(s):// URL")
        return value

    @field_validator("jwt_public_key")
    @classmethod
    def _check_public_key(cls, value: str) -> str:
        from gateway.jwt_auth import load_public_key  # it imports the service layer

        if value:
            load_public_key(value)  # raises ValueError naming the problem
        return value

    @model_validator(mode="after")
    def _jwt_whole_or_off(self) -> Settings:
        if not (self.jwt_issuer or self.jwt_audience or self.jwt_jwks_url or self.jwt_public_key):
            return self
        if self.jwt_jwks_url and self.jwt_public_key:
            raise ValueError("JWT sign-in: set JWT_JWKS_URL or JWT_PUBLIC_KEY, not both")
        named = {"JWT_ISSUER": self.jwt_issuer, "JWT_AUDIENCE": self.jwt_audience}
        missing = [name for name, value in named.items() if not value]
        if not (self.jwt_jwks_url or self.jwt_public_key):
            missing.append("JWT_JWKS_URL or JWT_PUBLIC_KEY")
        if missing:
            raise ValueError(
                f"JWT sign-in is half configured: set {' and '.join(missing)} too "
                "(or none of JWT_ISSUER, JWT_AUDIENCE, JWT_JWKS_URL, JWT_PUBLIC_KEY)"
            )
        return self

    @model_validator(mode="after")
    def _safe_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if "*" in self.cors_origins:
            problems.append("CORS_ORIGINS must list the allowed origins, not '*'")
        if self.jwt_leeway_seconds > MAX_PRODUCTION_JWT_LEEWAY:
            problems.append(f"JWT_LEEWAY_SECONDS must be at most {MAX_PRODUCTION_JWT_LEEWAY:g}")
        if self.jwt_jwks_url and urlsplit(self.jwt_jwks_url).scheme != "https":
            problems.append("JWT_JWKS_URL must be https://")
        if self.log_level == "debug":
            problems.append(
                "LOG_LEVEL must not be debug (a line per failed request, which a flood "
                "of bad credentials would turn into a flood of log lines)"
            )
        if problems:
            raise ValueError(f"unsafe with ENVIRONMENT=production: {'; '.join(problems)}")
        return self

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def jwt_enabled(self) -> bool:
        """Whether bearer JWTs are accepted (the validators refuse half a configuration)."""
        return bool(self.jwt_issuer and self.jwt_audience)

    @property
    def graphiql(self) -> bool:
        """GraphiQL on GET /graphql: GRAPHQL_IDE, never in production."""
        return self.graphql_ide and not self.production

    @property
    def dialect(self) -> str:
        return database_dialect(self.database_url)

    @property
    def key_cache_seconds(self) -> float:
        """AUTH_CACHE_SECONDS where every process hears of a revocation (the event broker
        of PostgreSQL reaches them all, the CLI's included); 0 on SQLite, where a key
        revoked by the CLI (another process) could not reach the server."""
        return self.auth_cache_seconds if self.dialect == "postgres" else 0.0

    @property
    def tortoise(self) -> dict[str, Any]:
        return tortoise_config(self.database_url, timeout=self.database_timeout)

    def values_for(self, limits: type[L], *, prefix: str = "") -> L:
        """`limits` (a dataclass) with each field set from the setting of the same name
        (after `prefix`); a field no setting names keeps its default."""
        names = type(self).model_fields
        given = {
            field.name: getattr(self, prefix + field.name)
            for field in dataclasses.fields(limits)  # type: ignore[arg-type]
            if prefix + field.name in names
        }
        return limits(**given)

    def prepare_storage(self) -> None:
        """Create the folder of a SQLite file so a fresh checkout starts without setup."""
        if self.dialect == "sqlite":
            path = self.database_url.split("://", 1)[1].split("?", 1)[0]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning pydantic's report into one readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']).upper() or 'settings'}: {error['msg']}"
            for error in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()


def __getattr__(name: str) -> Any:
    # aerich reads `tool.aerich.tortoise_orm = "gateway.settings.TORTOISE_ORM"`; building
    # it lazily keeps importing this module free of side effects.
    if name == "TORTOISE_ORM":
        return get_settings().tortoise
    raise AttributeError(name)
