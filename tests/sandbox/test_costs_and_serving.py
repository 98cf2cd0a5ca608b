"""The sandbox spends no time a portal would not: no Nagle delay on keep-alive answers, and an open-ended
``>ID`` cursor page reads its rows, not the rest of the table (issue: benchmarks measured the sandbox)."""

from __future__ import annotations

import time
from collections import UserDict
from typing import Any

import httpx

from bitrix24_agent_tools.sandbox import CostModel, Portal
from bitrix24_agent_tools.sandbox.query import id_window


def test_small_answers_on_a_keep_alive_connection_are_not_held_back() -> None:
    """30 small requests on one connection: with Nagle's algorithm each waited ~40 ms for a delayed ACK
    (1.3 s measured); without it they take a few ms each."""
    portal = Portal(seed=1)
    with portal.serve() as server, httpx.Client() as http:
        http.post(server.webhook_url + "server.time")
        started = time.perf_counter()
        for _ in range(30):
            assert http.post(server.webhook_url + "server.time").status_code == 200
        assert time.perf_counter() - started < 0.6


def test_an_open_ended_cursor_page_reads_only_its_rows() -> None:
    class Counted(UserDict[int, Any]):
        reads = 0

        def __getitem__(self, key: int) -> Any:
            Counted.reads += 1
            return super().__getitem__(key)

    store = Counted({i: {"ID": str(i)} for i in range(1, 200_001)})
    Counted.reads = 0
    window, rest = id_window(store, {">ID": 100})
    assert len(window) == 199_900 and rest == {} and Counted.reads == 0
    page = window[:50]
    assert [r["ID"] for r in page][:2] == ["101", "102"] and Counted.reads == 50
    assert next(iter(reversed(window)))["ID"] == "200000"


def test_the_operating_budget_is_the_applications_whichever_user_calls() -> None:
    """settings/performance/limits.md: ``operating`` accumulates per method "separately for an application or
    a webhook": two users' tokens of one application spend one budget; a webhook has its own."""
    from bitrix24_agent_tools.client import Bitrix24, NoLimiter
    from bitrix24_agent_tools.sandbox import CostModel

    portal = Portal(seed=1, deals=200, cost_model=CostModel(per_item=0.002))
    app = portal.register_app()
    anna, elena = (portal.app_auth(app, portal.install_app(app, user_id=u), user_id=u) for u in (1, 5))
    with (
        Bitrix24(anna, transport=portal.transport(), limiter=NoLimiter()) as a,
        Bitrix24(elena, transport=portal.transport(), limiter=NoLimiter()) as e,
        Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter()) as hook,
    ):
        first = a.call("crm.deal.list", {"start": -1}).time["operating"]
        second = e.call("crm.deal.list", {"start": -1}).time["operating"]
        own = hook.call("crm.deal.list", {"start": -1}).time["operating"]
    assert (
        second > first > 0 and own < second
    )  # Elena's call added to the app's budget; the webhook starts anew


def test_the_docs_cost_profile_is_the_docs_measured_example() -> None:
    from bitrix24_agent_tools.sandbox import CostModel

    docs = CostModel.docs_example()
    assert round(docs.seconds(50, False, 0), 4) == 0.0685  # a start=-1 page of 50
    assert round(docs.seconds(2_387_743, True, 0) - docs.seconds(50, False, 0), 1) == 49.9  # with the count


def test_a_batch_reports_each_commands_own_processing_and_counts_it_to_that_method() -> None:
    """batch.md: `result_time` holds each sub-request's own time; limits.md: an external `batch` is not
    accounted for in `operating`, nested calls count for their own methods."""
    from tests.helpers import FakeClock

    clock = FakeClock()
    portal = Portal(seed=1, deals=200, clock=clock, operating_limit=480, cost_model=CostModel(per_item=0.001))
    with httpx.Client(transport=portal.transport()) as http:
        cmd = {f"p{i}": f"crm.deal.list?start={50 * i}&select[]=ID" for i in range(3)}
        body = http.post(portal.webhook_url + "batch", json={"cmd": cmd}).json()
    times = body["result"]["result_time"]
    assert [round(times[k]["processing"], 6) for k in cmd] == [0.05, 0.05, 0.05]  # 50 rows each, not a sum
    assert round(times["p2"]["operating"], 6) == 0.15  # crm.deal.list's own budget
    assert body["time"].get("operating", 0) == 0  # batch itself is not accounted


def test_operating_time_is_kept_in_one_minute_baskets_that_drop_ten_minutes_after_their_first_call() -> None:
    """settings/performance/limits.md: operating time is accounted in 10 one-minute baskets; a basket's
    countdown starts at the first call recorded in its minute and lasts 10 minutes; operating_reset_at is
    when the oldest basket drops; the value may not fall to zero, later baskets count until their own reset.
    And its worked example: at 480 s, 20 calls of 20 s (400 s) then 5 more (500 s) — the next call is blocked
    until the oldest basket (here 40 s: two calls) drops, leaving 460 s."""
    from tests.helpers import FakeClock

    clock = FakeClock(start=0.0)
    portal = Portal(seed=1, clock=clock, operating_limit=480)
    key = ("webhook:1", "crm.item.list")
    for minute in range(10):  # two 20-second calls in each of ten minutes (400 s), then five more
        for second in (0.0, 50.0):  # the second call joins the basket the first began
            clock.now = minute * 60.0 + second
            portal.limits.spend(key, 20.0)
    clock.now = 570.0
    for _ in range(5):
        portal.limits.spend(key, 20.0)  # within the tenth minute: into its basket (begun at 540)
    assert portal.limits.operating(key) == (500.0, 600.0)  # the first basket began at 0
    clock.now = 600.0  # the oldest basket (40 s: both its calls, the one at 50 too) drops
    assert portal.limits.operating(key) == (460.0, 660.0)
    clock.now = 601.0  # past the tenth basket's minute: a new basket begins
    portal.limits.spend(key, 1.0)
    clock.now = 661.0  # the basket begun at 60 has dropped; the tenth (140 s) and the new one count
    assert portal.limits.operating(key) == (421.0, 720.0)
