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


def test_pages_are_put_in_id_order_without_sorting_rows() -> None:
    """Pages arrive in any order; each is an ascending run of a disjoint range, so ordering pages by their
    first ID is enough. Rows without an ID, or overlapping pages, fall back to a full sort."""
    from bitrix24_agent_tools.client._paging import in_id_order

    pages = [[{"ID": "51"}, {"ID": "60"}], [{"ID": "1"}, {"ID": "50"}], [], [{"ID": "61"}]]
    assert [r["ID"] for r in in_id_order("crm.deal.list", pages)] == ["1", "50", "51", "60", "61"]
    overlapping = [[{"ID": "5"}, {"ID": "9"}], [{"ID": "7"}, {"ID": "8"}]]
    assert [r["ID"] for r in in_id_order("crm.deal.list", overlapping)] == ["5", "7", "8", "9"]
    odd = [[{"ID": "3"}], [{"name": "no id"}], [{"ID": "1"}]]
    assert [r.get("ID") for r in in_id_order("crm.deal.list", odd)] == ["1", "3", None]
    items = [[{"id": 7}, {"id": 9}], [{"id": 2}]]
    assert [r["id"] for r in in_id_order("crm.item.list", items)] == [2, 7, 9]
