"""Staying under the portal's limits before it complains: leaky-bucket rate limiter, operating-time tracker,
backoff.

Rate (protocol.md §4): each HTTP request adds 1 to a per-portal counter that drains at ``rate`` per second;
above ``burst`` the portal answers 503 QUERY_LIMIT_EXCEEDED. The limiter keeps the same bucket on our side and
tells the caller how long to wait *before* sending, so a well-behaved client never sees the 503. The caller
sleeps (sync or async); the limiter only does arithmetic, so one implementation serves threads, tasks and
shared backends.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class RatePlan:
    """A portal's rate plan: drain ``rate`` requests/second, refuse above ``burst`` (protocol.md §4)."""

    rate: float
    burst: int
    operating_limit: float = 480.0

    @classmethod
    def standard(cls) -> RatePlan:
        return cls(rate=2.0, burst=50)

    @classmethod
    def enterprise(cls) -> RatePlan:
        return cls(rate=5.0, burst=250)

    @classmethod
    def custom(cls, rate: float, burst: int, operating_limit: float = 480.0) -> RatePlan:
        if rate <= 0 or burst < 1:
            from bitrix24_agent_tools.client.errors import ConfigError

            raise ConfigError("a plan needs rate > 0 and burst >= 1")
        return cls(rate=rate, burst=burst, operating_limit=operating_limit)

    @classmethod
    def named(cls, name: str | RatePlan) -> RatePlan:
        if isinstance(name, RatePlan):
            return name
        if name == "standard":
            return cls.standard()
        if name == "enterprise":
            return cls.enterprise()
        from bitrix24_agent_tools.client.errors import ConfigError

        raise ConfigError(
            f"unknown plan {name!r}: use 'standard', 'enterprise' or RatePlan.custom(rate, burst)"
        )


@runtime_checkable
class Limiter(Protocol):
    """Reserve ``cost`` requests for ``portal``; returns the seconds the caller must wait before sending."""

    def acquire(self, portal: str, cost: int = 1) -> float: ...


class LeakyBucketLimiter:
    """An in-process leaky bucket per portal, thread-safe. Reservations queue: each caller gets its own
    slot."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = float(rate)
        self.burst = int(burst)
        self.clock = clock
        self._lock = threading.Lock()
        self._level: dict[str, float] = {}
        self._stamp: dict[str, float] = {}

    @classmethod
    def for_plan(
        cls, plan: RatePlan, *, clock: Callable[[], float] = time.monotonic, headroom: int = 0
    ) -> LeakyBucketLimiter:
        return cls(plan.rate, max(1, plan.burst - headroom), clock=clock)

    def acquire(self, portal: str, cost: int = 1) -> float:
        wait = self.try_acquire(portal, cost, None)
        assert wait is not None
        return wait

    def try_acquire(self, portal: str, cost: int = 1, max_wait: float | None = None) -> float | None:
        """``acquire`` that books the slot only when its wait is at most ``max_wait``; otherwise books
        nothing and returns None (``wait_for`` says how long)."""
        with self._lock:
            now = self.clock()
            level = self._level.get(portal, 0.0)
            last = self._stamp.get(portal, now)
            level = max(0.0, level - (now - last) * self.rate)
            # The request lands when the bucket has room for it; until then it waits (its slot is reserved).
            wait = max(0.0, (level + cost - self.burst) / self.rate)
            if max_wait is not None and wait > max_wait:
                return None
            self._level[portal] = level + cost
            self._stamp[portal] = now
            return wait

    def wait_for(self, portal: str, cost: int = 1) -> float:
        """The wait a request booked now would have (nothing booked)."""
        with self._lock:
            now = self.clock()
            level = max(0.0, self._level.get(portal, 0.0) - (now - self._stamp.get(portal, now)) * self.rate)
            return max(0.0, (level + cost - self.burst) / self.rate)


class NoLimiter:
    """For tests that want to see the portal's own 503s."""

    def acquire(self, portal: str, cost: int = 1) -> float:
        return 0.0


_RNG = random.Random()


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter; ``attempts`` counts the first try."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling: float = min(self.cap, self.base * 2.0 ** (attempt - 1))
        if not self.jitter:
            return ceiling
        generator: random.Random = rng or _RNG
        return generator.uniform(ceiling / 2, ceiling)


class OperatingTracker:
    """Per-method operating time from each answer's ``time`` block; pauses a method before the portal
    blocks it."""

    def __init__(
        self, limit: float = 480.0, soft: float = 0.9, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.soft = soft
        self.clock = clock
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], tuple[float, float]] = {}

    def record(self, portal: str, method: str, time_block: object) -> None:
        if not isinstance(time_block, dict):
            return
        operating = time_block.get("operating")
        reset_at = time_block.get("operating_reset_at")
        if isinstance(operating, (int, float)) and isinstance(reset_at, (int, float)):
            with self._lock:
                self._state[(portal, method.lower())] = (float(operating), float(reset_at))

    def blocked_until(self, portal: str, method: str, reset_at: float | None) -> None:
        with self._lock:
            self._state[(portal, method.lower())] = (self.limit, reset_at or self.clock() + 60.0)

    def delay(self, portal: str, method: str) -> float:
        """Seconds to hold this method back: none until the soft threshold, then until the oldest basket
        drops."""
        with self._lock:
            state = self._state.get((portal, method.lower()))
        if state is None:
            return 0.0
        operating, reset_at = state
        if operating < self.soft * self.limit:
            return 0.0
        wait = reset_at - self.clock()
        if wait <= 0:
            with self._lock:
                self._state.pop((portal, method.lower()), None)
            return 0.0
        return wait
