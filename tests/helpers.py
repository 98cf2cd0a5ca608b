"""Shared test helpers: a fake clock that the client's limiter and the sandbox's bucket both read."""

from __future__ import annotations

import threading


class FakeClock:
    """Monotonic time that only moves when someone sleeps; thread-safe."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()
        self.slept = 0.0

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)
            self.slept += max(0.0, seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
