"""Shared state on Redis for multi-process deployments: the portal's rate bucket, OAuth tokens with a refresh
lock, idempotency keys and plans. Extra ``redis``; configure by URL (``redis://host:6379/0``).

Every key is prefixed and keyed by portal/tenant, so tenants never see each other's state. Time comes from the
Redis server (``TIME``) so processes on different machines share one clock.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from bitrix24_agent_tools.client.auth import Tokens, stored_tokens
from bitrix24_agent_tools.client.limits import RatePlan
from bitrix24_agent_tools.masking import get_logger
from bitrix24_agent_tools.stores import (
    UNKNOWN_TTL,
    Approval,
    Begin,
    PlanError,
    StoredPlan,
    _check_claim,
    _judge,
)

log = get_logger(__name__)


def _redis(url: str) -> Any:
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError(
            "Redis backends need the 'redis' extra: pip install bitrix24-agent-tools[redis]"
        ) from exc
    return redis.Redis.from_url(url)


def require_durable(client: Any, what: str, allow_volatile: bool | None = None) -> None:
    """Refuse a Redis that forgets on restart for state that must outlive it (tokens, plans, idempotency):
    without the append-only file a restart loses refreshed tokens (the app must be reinstalled), plans and
    the records that keep a write from running twice. ``allow_volatile=True`` (or the environment's
    ``B24_ALLOW_VOLATILE_STORE=1``) accepts it knowingly; a Redis that does not answer INFO is let through
    (UNVERIFIED: managed services may hide it)."""
    import os

    if allow_volatile is None:
        allow_volatile = os.environ.get("B24_ALLOW_VOLATILE_STORE", "").strip().lower() in (
            "1",
            "true",
            "yes",
        )
    if allow_volatile:
        return
    try:
        info = client.info("persistence")
    except Exception:  # INFO refused (a managed Redis): cannot tell
        return
    if str(info.get("aof_enabled", "1")) != "1":
        from bitrix24_agent_tools.client.errors import ConfigError

        raise ConfigError(
            f"this Redis does not persist ({what} would be lost on restart): enable appendonly (AOF), use "
            "PostgreSQL/sqlite, or pass allow_volatile=True / B24_ALLOW_VOLATILE_STORE=1 to accept it"
        )


# Leaky bucket (protocol.md §4): level drains at `rate`/s; a request reserves `cost` and waits until it fits.
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local limit = tonumber(ARGV[4])  -- the longest wait the caller accepts (-1: any); beyond it nothing is booked
local state = redis.call('HMGET', KEYS[1], 'level', 'stamp')
local level = tonumber(state[1]) or 0
local stamp = tonumber(state[2]) or now
level = math.max(0, level - (now - stamp) * rate)
local wait = math.max(0, (level + cost - burst) / rate)
if limit >= 0 and wait > limit then
  return '-' .. tostring(wait)
end
level = level + cost
redis.call('HSET', KEYS[1], 'level', tostring(level), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((level / rate + 60) * 1000))
return tostring(wait)
"""


class RedisLimiter:
    """The in-process limiter's interface (``acquire(portal, cost) -> seconds to wait``), shared by every
    process."""

    def __init__(
        self, client: Any, plan: RatePlan | None = None, *, prefix: str = "b24:bucket:", headroom: int = 2
    ) -> None:
        # headroom: requests arrive a little after they are reserved (network, scheduling), and the portal's
        # clock is not ours; keeping 2 slots free absorbs that skew without measurably lowering throughput.
        self.redis = client
        self.plan = plan or RatePlan.standard()
        self.burst = max(1, self.plan.burst - headroom)
        self.prefix = prefix
        self._script = client.register_script(_BUCKET)
        from bitrix24_agent_tools.client.limits import LeakyBucketLimiter

        # While Redis is down each process keeps to the plan on its own; the portal's QUERY_LIMIT_EXCEEDED,
        # retried with backoff, covers what several processes together may overshoot.
        self._local = LeakyBucketLimiter.for_plan(self.plan)
        self.degraded = False
        self._refused: dict[str, float] = {}

    @classmethod
    def from_url(cls, url: str, plan: RatePlan | None = None, **kwargs: Any) -> RedisLimiter:
        return cls(_redis(url), plan, **kwargs)

    def acquire(self, portal: str, cost: int = 1) -> float:
        wait = self.try_acquire(portal, cost, None)
        assert wait is not None
        return wait

    def try_acquire(self, portal: str, cost: int = 1, max_wait: float | None = None) -> float | None:
        """``acquire`` that books the slot only when its wait is at most ``max_wait`` (else books nothing and
        returns None; ``wait_for`` says how long) — so an interactive caller's ``max_wait`` holds across
        processes too."""
        limit = -1.0 if max_wait is None else max(0.0, float(max_wait))
        try:
            raw = self._script(keys=[self.prefix + portal], args=[self.plan.rate, self.burst, cost, limit])
            answer = raw.decode() if isinstance(raw, bytes) else str(raw)
        except Exception as exc:  # Redis unreachable: waited out on the local bucket, never died of
            if not self.degraded:
                log.warning(
                    "shared rate bucket unreachable (%s); limiting in this process", type(exc).__name__
                )
            self.degraded = True
            return self._local.try_acquire(portal, cost, max_wait)
        if self.degraded:
            log.warning("shared rate bucket reachable again")
            self.degraded = False
        if answer.startswith("-"):
            self._refused[portal] = float(answer[1:])
            return None
        return float(answer)

    def wait_for(self, portal: str, cost: int = 1) -> float:
        """The wait the last refused booking for ``portal`` had (the bucket only drains after it)."""
        if self.degraded:
            return self._local.wait_for(portal, cost)
        return self._refused.get(portal, 0.0)


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisTokenStore:
    """Tokens per tenant, plus a refresh lock so exactly one process refreshes; a crashed holder's lock
    expires."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "b24:tokens:",
        lock_ttl: float = 30.0,
        allow_volatile: bool | None = None,
    ) -> None:
        require_durable(client, "OAuth tokens", allow_volatile)
        self.redis = client
        self.prefix = prefix
        self.lock_ttl = lock_ttl
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisTokenStore:
        return cls(_redis(url), **kwargs)

    def load(self, tenant: str) -> Tokens | None:
        raw = self.redis.get(self.prefix + tenant)
        return stored_tokens(raw) if raw is not None else None

    def save(self, tenant: str, tokens: Tokens) -> None:
        self.redis.set(self.prefix + tenant, json.dumps(asdict(tokens)))

    def delete(self, tenant: str) -> None:
        self.redis.delete(self.prefix + tenant)

    @contextmanager
    def refresh_lock(self, tenant: str, timeout: float = 60.0) -> Iterator[None]:
        """Hold the tenant's refresh lock (SET NX PX); waiters poll, and reuse the refreshed tokens
        afterwards."""
        key, token = f"{self.prefix}{tenant}:lock", uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while not self.redis.set(key, token, nx=True, px=int(self.lock_ttl * 1000)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"refresh lock for {tenant} not acquired in {timeout}s")
            time.sleep(0.02)
        try:
            yield
        finally:
            self._release(keys=[key], args=[token])


class RedisIdempotencyStore:
    """The guard's idempotency store on Redis: an atomic claim (SET NX) shared by every process."""

    def __init__(self, client: Any, *, prefix: str = "b24:idem:", allow_volatile: bool | None = None) -> None:
        require_durable(client, "idempotency records", allow_volatile)
        self.redis = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisIdempotencyStore:
        return cls(_redis(url), **kwargs)

    def _key(self, tenant: str, key: str) -> str:
        return f"{self.prefix}{tenant}:{key}"

    # An in-flight claim is kept for UNKNOWN_TTL with its own deadline inside: a claim whose holder vanished
    # past the deadline reads as "unknown" (the write may have happened), never as free.
    def begin(
        self, tenant: str, key: str, ttl: float, *, retry_unknown: bool = False
    ) -> Begin | dict[str, Any]:
        name = self._key(tenant, key)
        claim = json.dumps({"state": "inflight", "until": time.time() + max(ttl, 60.0)})
        keep = int(UNKNOWN_TTL * 1000)
        if self.redis.set(name, claim, nx=True, px=keep):
            return "new"
        found = self._read(self.redis.get(name), retry_unknown)
        if found is None:  # free (expired, or an unknown the person chose to send again): claim it
            self.redis.set(name, claim, px=keep)
            return "new"
        return found

    def _read(self, raw: Any, retry_unknown: bool) -> Begin | dict[str, Any] | None:
        if raw is None:
            return None
        data = json.loads(raw)
        if isinstance(data, dict) and data.get("state") == "inflight":
            return _judge("inflight", float(data.get("until") or 0), None, time.time(), retry_unknown)
        if isinstance(data, dict) and data.get("state") == "unknown":
            return _judge("unknown", float("inf"), None, time.time(), retry_unknown)
        return dict(data)

    def peek(self, tenant: str, key: str) -> Begin | dict[str, Any] | None:
        return self._read(self.redis.get(self._key(tenant, key)), False)

    def complete(self, tenant: str, key: str, result: dict[str, Any], ttl: float) -> None:
        self.redis.set(self._key(tenant, key), json.dumps(result, default=str), px=int(ttl * 1000))

    def fail(self, tenant: str, key: str) -> None:
        self.redis.delete(self._key(tenant, key))

    def unknown(self, tenant: str, key: str, reason: str) -> None:
        data = json.dumps({"state": "unknown", "reason": reason, "at": time.time()})
        self.redis.set(self._key(tenant, key), data, px=int(UNKNOWN_TTL * 1000))


_CLAIM = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local plan = cjson.decode(raw)
if plan['status'] == 'executed' then return raw end
plan['status'] = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(plan), 'KEEPTTL')
return raw
"""


class RedisPlanStore:
    """Plans on Redis with a TTL; a claim is atomic, so a plan runs once even with many executors."""

    def __init__(self, client: Any, *, prefix: str = "b24:plan:", allow_volatile: bool | None = None) -> None:
        require_durable(client, "plans", allow_volatile)
        self.redis = client
        self.prefix = prefix
        self._claim = client.register_script(_CLAIM)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisPlanStore:
        return cls(_redis(url), **kwargs)

    def save(self, plan: StoredPlan) -> None:
        ttl = max(1, int((plan.expires_at - time.time()) * 1000)) if plan.expires_at else None
        self.redis.set(self.prefix + plan.id, json.dumps(asdict(plan), default=str), px=ttl)

    def get(self, plan_id: str) -> StoredPlan | None:
        raw = self.redis.get(self.prefix + plan_id)
        return StoredPlan(**json.loads(raw)) if raw else None

    def claim(self, plan_id: str, tenant: str, now: float) -> StoredPlan:
        plan = self.get(plan_id)
        _check_claim(plan, plan_id, tenant, now)  # tenant and expiry, before touching anything
        raw = self._claim(keys=[self.prefix + plan_id], args=["claimed"])
        if not raw:
            raise PlanError(f"no plan {plan_id!r} for this portal")
        claimed = StoredPlan(**json.loads(raw))
        return _check_claim(claimed, plan_id, tenant, now)  # "already executed" if another executor won

    def finish(self, plan_id: str) -> None:
        self._claim(keys=[self.prefix + plan_id], args=["executed"])


class RedisApprovalStore:
    """Approvals on Redis (AOF required, like plans): each kept a day past its expiry for the audit of who
    answered; an answer is a compare-and-set (WATCH/MULTI), so it counts once across processes."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "b24:approval:",
        keep: float = 24 * 3600,
        allow_volatile: bool | None = None,
    ) -> None:
        require_durable(client, "approvals", allow_volatile)
        self.redis = client
        self.prefix = prefix
        self.keep = keep

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisApprovalStore:
        return cls(_redis(url), **kwargs)

    def _index(self, tenant: str, request_id: str) -> str:
        return f"{self.prefix}req:{tenant}|{request_id}"

    def create(self, approval: Approval) -> None:
        ttl = max(1, int((approval.expires_at - time.time() + self.keep) * 1000))
        index = self._index(approval.tenant, approval.request_id)
        pipe = self.redis.pipeline()
        pipe.set(self.prefix + approval.id, approval.to_json(), px=ttl)
        pipe.zadd(index, {approval.id: approval.created_at})
        pipe.pexpire(index, ttl)
        pipe.execute()

    def get(self, approval_id: str) -> Approval | None:
        raw = self.redis.get(self.prefix + approval_id)
        return Approval.from_json(raw) if raw else None

    def transition(self, approval_id: str, expect: str, changes: dict[str, Any]) -> Approval | None:
        from bitrix24_agent_tools.stores import _changed

        key = self.prefix + approval_id
        new: list[Approval | None] = [None]

        def attempt(pipe: Any) -> None:
            raw = pipe.get(key)
            new[0] = _changed(Approval.from_json(raw) if raw else None, expect, changes)
            if new[0] is not None:
                pipe.multi()
                pipe.set(key, new[0].to_json(), keepttl=True)

        self.redis.transaction(attempt, key)
        return new[0]

    def find(self, tenant: str, request_id: str) -> list[Approval]:
        ids = self.redis.zrevrange(self._index(tenant, request_id), 0, -1)
        found = [self.get(i.decode() if isinstance(i, bytes) else str(i)) for i in ids]
        return [a for a in found if a is not None]


class RedisRecordStore:
    """Keyed records with a lifetime on Redis (AOF required): ``take`` is GETDEL, one taker wins."""

    def __init__(self, client: Any, *, prefix: str = "b24:rec:", allow_volatile: bool | None = None) -> None:
        require_durable(client, "records", allow_volatile)
        self.redis = client
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisRecordStore:
        return cls(_redis(url), **kwargs)

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}:{key}"

    def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        self.redis.set(self._key(kind, key), json.dumps(value, default=str), px=max(1, int(ttl * 1000)))

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = self.redis.get(self._key(kind, key))
        return dict(json.loads(raw)) if raw else None

    def take(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = self.redis.getdel(self._key(kind, key))
        return dict(json.loads(raw)) if raw else None

    def delete(self, kind: str, key: str) -> None:
        self.redis.delete(self._key(kind, key))

    def delete_where(self, kind: str, field_name: str, value: str) -> int:
        gone = 0
        for name in self.redis.scan_iter(match=f"{self.prefix}{kind}:*", count=500):
            raw = self.redis.get(name)
            if raw and str(json.loads(raw).get(field_name)) == value:
                gone += int(self.redis.delete(name))
        return gone
