"""The synchronous client exports at the plan's limit too: its batches run side by side in threads, the
default number in flight comes from the plan's burst, every row arrives exactly once, in ID order."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.sandbox import Portal


class Counting(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.active = 0
        self.most = 0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            response = self.inner.handle_request(request)
            response.read()
            return response
        finally:
            with self.lock:
                self.active -= 1


def test_a_sync_export_keeps_many_batches_in_flight_and_loses_nothing() -> None:
    from bitrix24_agent_tools.sandbox import CostModel

    portal = Portal(seed=1, deals=60_000)
    portal.cost_model = CostModel(round_trip=0.01, per_item=0.0, count_cost=0.0, per_offset=0.0)
    counting = Counting(portal.transport())
    with Bitrix24(portal.webhook_url, transport=counting) as client:
        assert client.auto_parallel() == 40  # the standard plan's burst of 50, less a margin
        rows: list[Any] = client.export("crm.deal.list", {"select": ["ID"]})
    ids = [int(r["ID"]) for r in rows]
    assert ids == sorted(portal.state["deal"]) and len(set(ids)) == 60_000
    assert counting.most > 4  # more than the old default of 4, and more than one thread


def test_an_injected_clock_keeps_the_export_deterministic() -> None:
    """Tests that drive time themselves (a fake clock and sleep) see one batch at a time, in order."""
    from tests.helpers import FakeClock

    clock = FakeClock()
    portal = Portal(seed=1, deals=8_000, clock=clock)
    counting = Counting(portal.transport())
    with Bitrix24(portal.webhook_url, transport=counting, clock=clock, sleep=clock.sleep) as client:
        rows = client.export("crm.deal.list", {"select": ["ID"]})
    assert len(rows) == 8_000 and counting.most == 1
