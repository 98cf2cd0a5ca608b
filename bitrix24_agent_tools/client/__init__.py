"""Talking to a Bitrix24 portal: auth, limits, retries, batch, paging and typed errors (sync and async)."""

from bitrix24_agent_tools.client._batch import php_query
from bitrix24_agent_tools.client._flow import BatchResult, Response
from bitrix24_agent_tools.client.auth import (
    DEFAULT_OAUTH_SERVER,
    MemoryTokenStore,
    OAuth,
    SqliteTokenStore,
    Tokens,
    TokenStore,
    Webhook,
)
from bitrix24_agent_tools.client.client import AsyncBitrix24, Bitrix24, auth_from_env
from bitrix24_agent_tools.client.errors import (
    AccessDenied,
    AuthError,
    BadRequest,
    Bitrix24Error,
    ConfigError,
    InvalidResponse,
    NetworkError,
    NotFound,
    OperatingLimit,
    Overloaded,
    PortalDeleted,
    QueueFull,
    RateLimited,
    ReauthorizationRequired,
    ScopeError,
    ServerError,
    TokenExpired,
    error_from,
    hint_for,
)
from bitrix24_agent_tools.client.limits import LeakyBucketLimiter, Limiter, NoLimiter, RatePlan, RetryPolicy
from bitrix24_agent_tools.masking import protect_third_party_loggers

protect_third_party_loggers()

__all__ = [
    "DEFAULT_OAUTH_SERVER",
    "AccessDenied",
    "AsyncBitrix24",
    "AuthError",
    "BadRequest",
    "BatchResult",
    "Bitrix24",
    "Bitrix24Error",
    "ConfigError",
    "InvalidResponse",
    "LeakyBucketLimiter",
    "Limiter",
    "MemoryTokenStore",
    "NetworkError",
    "NoLimiter",
    "NotFound",
    "OAuth",
    "OperatingLimit",
    "Overloaded",
    "PortalDeleted",
    "QueueFull",
    "RateLimited",
    "RatePlan",
    "ReauthorizationRequired",
    "Response",
    "RetryPolicy",
    "ScopeError",
    "ServerError",
    "SqliteTokenStore",
    "TokenExpired",
    "TokenStore",
    "Tokens",
    "Webhook",
    "auth_from_env",
    "error_from",
    "hint_for",
    "php_query",
]
