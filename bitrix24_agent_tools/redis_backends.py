"""Kept for existing imports: the Redis backends live in :mod:`bitrix24_agent_tools.stores.redis`."""

from bitrix24_agent_tools.stores.redis import (
    RedisIdempotencyStore,
    RedisLimiter,
    RedisPlanStore,
    RedisTokenStore,
    require_durable,
)

__all__ = ["RedisIdempotencyStore", "RedisLimiter", "RedisPlanStore", "RedisTokenStore", "require_durable"]
