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
from collections import deque
from collections.abc import Callable, Mapping
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
    """Per-method operating time (settings/performance/limits.md): what each answer's ``time`` block reports,
    and for calls inside a batch — which the portal accounts per nested method, not to ``batch`` — a budget
    the client keeps itself from each command's ``result_time`` ``processing``: spent seconds in a 10-minute
    window plus seconds reserved by commands in flight. A batch is held back until its commands' expected
    time fits under the limit (less a margin), so a long export paces itself across operating windows
    instead of being blocked."""

    WINDOW = 600.0  # the portal's ten one-minute baskets; an entry here drops no earlier than its basket
    # UNVERIFIED guess at a call's processing before any is observed: about three times the docs' measured
    # huge-data page (0.0685 s, settings/performance/huge-data.md).
    PRIOR = 0.2

    def __init__(
        self, limit: float = 480.0, soft: float = 0.9, clock: Callable[[], float] = time.time
    ) -> None:
        self.limit = limit
        self.soft = soft
        self.clock = clock
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], tuple[float, float]] = {}
        self._spent: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._spent_total: dict[tuple[str, str], float] = {}
        self._reserved: dict[tuple[str, str], float] = {}
        self._per_call: dict[tuple[str, str], float] = {}  # the method's processing per call, observed
        self._largest: dict[tuple[str, str], float] = {}

    def _window(self, key: tuple[str, str], now: float) -> float:
        spent = self._spent.get(key)
        total = self._spent_total.get(key, 0.0)
        while spent and spent[0][0] <= now - self.WINDOW:
            total -= spent.popleft()[1]
        total = max(total, 0.0) if spent else 0.0
        self._spent_total[key] = total
        return total

    def _spend(self, key: tuple[str, str], now: float, seconds: float) -> None:
        self._spent.setdefault(key, deque()).append((now, seconds))
        self._spent_total[key] = self._spent_total.get(key, 0.0) + seconds

    def reserve(self, portal: str, calls: Mapping[str, int]) -> tuple[dict[str, float], float]:
        """Book the expected operating time of ``calls`` (method → how many, nested in one batch): either
        all of it, returning the amounts and 0, or nothing, returning the seconds to wait first. Until a
        method's cost per call is observed, ``PRIOR`` stands in; with nothing spent or booked yet, one batch
        always goes."""
        now = self.clock()
        booked: dict[str, float] = {}
        wait = 0.0
        with self._lock:
            for method, count in calls.items():
                key = (portal, method.lower())
                # Not observed yet: a generous prior, so a costly method's first batches cannot overshoot
                # together while a cheap one's go out side by side.
                expected = self._per_call.get(key, self.PRIOR) * count
                used, usable = self._budget(key, now)
                if used + expected <= usable or used <= 0:
                    booked[method.lower()] = expected
                    continue
                spent = self._spent.get(key)
                oldest = spent[0][0] + self.WINDOW - now if spent else 0.0
                if self._reserved.get(key, 0.0) > 0 or oldest <= 0:
                    oldest = min(oldest, 0.25) if oldest > 0 else 0.25  # answers in flight may free room soon
                wait = max(wait, oldest)
            if wait > 0:
                return {}, wait
            for method, expected in booked.items():
                key = (portal, method)
                self._reserved[key] = self._reserved.get(key, 0.0) + expected
        return booked, 0.0

    def calls_that_fit(self, portal: str, method: str) -> tuple[int, int]:
        """How many calls of ``method`` fit its budget: (now, in an empty window) — from its cost per call
        as observed (``PRIOR`` before that), less the margin ``reserve`` keeps. A caller sizes its batches by
        them: a batch that fits is not held back, and none is larger than a window holds."""
        now = self.clock()
        key = (portal, method.lower())
        with self._lock:
            per = max(self._per_call.get(key, self.PRIOR), 1e-6)
            used, usable = self._budget(key, now)
        return max(0, int((usable - used) / per)), max(1, int(usable / per))

    def _budget(self, key: tuple[str, str], now: float) -> tuple[float, float]:
        """(seconds used in the window — spent, booked, or what the portal last reported while it holds —,
        seconds usable: the limit less a margin of 2% or twice the method's largest call). Under the lock."""
        used = self._window(key, now) + self._reserved.get(key, 0.0)
        reported = self._state.get(key)
        if reported is not None and reported[1] > now:
            used = max(used, reported[0])
        return used, self.limit - max(0.02 * self.limit, 2 * self._largest.get(key, 0.0))

    def settle(
        self,
        portal: str,
        booked: Mapping[str, float],
        spent: Mapping[str, list[float]],
        *,
        assume_spent: bool = False,
    ) -> None:
        """Release a batch's booking and record what its commands took (seconds of processing each); with
        ``assume_spent`` (an answer that never came: the portal may have run the commands) the booking is
        counted as spent."""
        now = self.clock()
        with self._lock:
            for method, amount in booked.items():
                key = (portal, method)
                self._reserved[key] = max(0.0, self._reserved.get(key, 0.0) - amount)
                if assume_spent and amount > 0:
                    self._spend(key, now, amount)
            for method, seconds in spent.items():
                key = (portal, method.lower())
                if not seconds:
                    continue
                total = sum(seconds)
                self._spend(key, now, total)
                mean = total / len(seconds)
                known = self._per_call.get(key)
                self._per_call[key] = mean if known is None else 0.7 * known + 0.3 * mean
                self._largest[key] = max(self._largest.get(key, 0.0), max(seconds))

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
