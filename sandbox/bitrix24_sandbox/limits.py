"""The portal's limits (settings/performance/limits.md): the plan's leaky bucket, each method's operating
budget in a sliding 10-minute window, the cost model that turns a request's work into processing time, and
injected faults."""

from __future__ import annotations

import random
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["PLANS", "CostModel", "Faults", "Limits"]

PLANS = {"standard": (2.0, 50), "enterprise": (5.0, 250)}


@dataclass
class CostModel:
    """Latency and processing cost per request (benchmarks): seconds are slept on the serving side."""

    round_trip: float = 0.0
    per_item: float = 0.0
    count_cost: float = 0.0
    per_offset: float = 0.0

    @classmethod
    def docs_example(cls) -> CostModel:
        """The docs' only measured example (settings/performance/huge-data.md, 2,387,743 items): a
        ``start=-1`` page of 50 took 0.0685 s of processing (0.0979 s in all), and a page that counted the
        total 49.9 s — about 0.0209 s per 1,000 rows counted. UNVERIFIED: the docs measure no offset cost; the
        offset term stays as in the default model."""
        return cls(
            round_trip=0.0979 - 0.0685, per_item=0.0685 / 50, count_cost=49.9 / 2387.743, per_offset=0.001
        )

    def seconds(self, items: int, counted: bool, offset: int) -> float:
        return (
            self.per_item * min(items, 50)
            + (self.count_cost * items / 1000 if counted else 0.0)
            + self.per_offset * offset / 1000
        )


@dataclass
class Faults:
    """Fault injection: scripted errors, random 5xx storms, dropped connections, slow answers."""

    _queue: deque[tuple[str, int, str | None]] = field(default_factory=deque)
    storm_probability: float = 0.0
    storm_code: str = "INTERNAL_SERVER_ERROR"
    storm_status: int = 500
    storm_until: float | None = None
    drops: int = 0
    drop_after_processing: bool = False
    delay: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def fail_next(
        self, n: int, code: str = "INTERNAL_SERVER_ERROR", status: int = 500, method: str | None = None
    ) -> None:
        for _ in range(n):
            self._queue.append((code, status, method.lower() if method else None))

    def storm(
        self,
        probability: float,
        *,
        code: str = "INTERNAL_SERVER_ERROR",
        status: int = 500,
        until: float | None = None,
        seed: int = 7,
    ) -> None:
        self.storm_probability, self.storm_code, self.storm_status, self.storm_until = (
            probability,
            code,
            status,
            until,
        )
        self.rng = random.Random(seed)

    def drop_next(self, n: int, *, after_processing: bool = False) -> None:
        self.drops, self.drop_after_processing = n, after_processing

    def slow(self, seconds: float) -> None:
        self.delay = seconds

    def clear(self) -> None:
        self._queue.clear()
        self.storm_probability, self.drops, self.delay = 0.0, 0, 0.0

    def take(self, method: str, now: float) -> tuple[str, int] | None:
        for i, (code, status, only) in enumerate(self._queue):
            if only is None or only == method:
                del self._queue[i]
                return code, status
        storming = self.storm_probability and (self.storm_until is None or now < self.storm_until)
        if storming and self.rng.random() < self.storm_probability:
            return self.storm_code, self.storm_status
        return None


class Limits:
    """The leaky bucket (``rate``: requests per second and the burst) and the operating budget (seconds of
    processing per method and credential in 10 minutes); ``None`` turns either off."""

    def __init__(
        self,
        rate: tuple[float, int] | None,
        operating_limit: float | None,
        cost_model: CostModel | None,
        clock: Callable[[], float],
    ) -> None:
        self.rate = rate
        self.operating_limit = operating_limit
        self.cost_model = cost_model
        self.clock = clock
        self.bucket: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._operating: dict[tuple[str, str], deque[list[float]]] = defaultdict(deque)  # [start, seconds]

    def admit(self, source: str) -> bool:
        """One request from ``source`` through the bucket, or False when it is full."""
        if self.rate is None:
            return True
        rate, burst = self.rate
        now = self.clock()
        level, last = self.bucket.get(source, (0.0, now))
        level = max(0.0, level - (now - last) * rate)
        if level + 1 > burst + 1e-9:
            self.bucket[source] = (level, now)
            return False
        self.bucket[source] = (level + 1, now)
        return True

    def reset_operating(self) -> None:
        with self._lock:
            self._operating.clear()

    def _baskets(self, key: tuple[str, str]) -> deque[list[float]]:
        """The method's one-minute baskets (limits.md: "accounted for in 10 one-minute baskets"; a basket's
        countdown starts at the first call recorded in it and lasts 10 minutes), oldest first, expired
        ones dropped."""
        baskets = self._operating[key]
        now = self.clock()
        while baskets and baskets[0][0] + 600 <= now:
            baskets.popleft()
        return baskets

    def operating(self, key: tuple[str, str]) -> tuple[float, float | None]:
        """(operating seconds in the live baskets, operating_reset_at: when the oldest basket drops) for one
        (credential, method)."""
        with self._lock:
            baskets = self._baskets(key)
            return sum(b[1] for b in baskets), (baskets[0][0] + 600 if baskets else None)

    def spend(self, key: tuple[str, str], seconds: float) -> None:
        """Book a request's processing time (at least a millisecond) into its minute's basket."""
        with self._lock:
            baskets = self._baskets(key)
            now = self.clock()
            if baskets and now < baskets[-1][0] + 60:
                baskets[-1][1] += max(seconds, 0.001)
            else:
                baskets.append([now, max(seconds, 0.001)])
