"""A client with ``max_wait`` (tools, MCP) is told how long to wait instead of hanging when the portal's
budget is booked further ahead; nothing is sent, and the guard counts it as not written."""

from __future__ import annotations

import pytest

from bitrix24_agent_tools.client import Bitrix24, QueueFull, RatePlan
from bitrix24_agent_tools.sandbox import Portal
from tests.helpers import FakeClock


def test_a_call_beyond_the_wait_budget_is_refused_with_when_to_come_back() -> None:
    clock = FakeClock()
    portal = Portal(seed=1, clock=clock)
    plan = RatePlan.custom(0.5, 2)  # a slot every 2 s after a burst of 2
    with Bitrix24(portal.webhook_url, transport=portal.transport(), plan=plan, clock=clock,
                  sleep=clock.sleep, max_wait=1.5) as client:  # fmt: skip
        client.call("server.time")
        client.call("server.time")  # the burst
        clock.sleep(1.0)
        client.call("server.time")  # a slot 1 s away: within the budget, waited
        sent = len(portal.requests)
        with pytest.raises(QueueFull) as full:
            client.call("server.time")  # the next is 2 s away: refused at once
        assert len(portal.requests) == sent  # nothing sent
        assert full.value.retry_after == pytest.approx(2.0, abs=0.01) and full.value.retryable
        assert "try again" in full.value.short() and full.value.sent is False
        clock.sleep(full.value.retry_after)
        client.call("server.time")  # after the wait it was told, the call goes through


def test_without_a_budget_the_client_waits_its_turn() -> None:
    clock = FakeClock()
    portal = Portal(seed=1, clock=clock)
    with Bitrix24(portal.webhook_url, transport=portal.transport(), plan=RatePlan.custom(0.5, 2), clock=clock,
                  sleep=clock.sleep) as client:  # fmt: skip
        for _ in range(5):
            client.call("server.time")
    assert clock.slept == pytest.approx(6.0, abs=0.01)


def test_the_guard_counts_a_refused_queue_as_not_written() -> None:
    from bitrix24_agent_tools.guard.flow import _not_written

    assert _not_written(QueueFull("crm.deal.update", 5.0))


def test_one_call_may_bound_its_own_wait_and_the_shorter_bound_holds() -> None:
    clock = FakeClock()
    portal = Portal(seed=1, clock=clock)
    with Bitrix24(portal.webhook_url, transport=portal.transport(), plan=RatePlan.custom(0.5, 2), clock=clock,
                  sleep=clock.sleep, max_wait=5.0) as client:  # fmt: skip
        client.call("server.time")
        client.call("server.time")  # the burst
        sent = len(portal.requests)
        with pytest.raises(QueueFull) as full:
            client.call("server.time", max_wait=1.0)  # 2 s away: beyond this call's own bound
        assert len(portal.requests) == sent and full.value.retry_after == pytest.approx(2.0, abs=0.01)
        client.call("server.time", max_wait=30.0)  # the client's 5 s still holds; 2 s is within it: waited
        assert len(portal.requests) == sent + 1


def test_a_toolbox_tool_under_a_spent_plan_says_when_to_try_again_instead_of_waiting() -> None:
    """Issue #34: tool calls (LangChain, LlamaIndex, any face on a Toolbox) under the plan come back at once
    with when to try again, not after a queue without bound; nothing reaches the portal."""
    from bitrix24_agent_tools.toolbox import MAX_WAIT, Toolbox

    clock = FakeClock()
    portal = Portal(seed=1, clock=clock)
    plan = RatePlan.custom(0.05, 3)  # one slot every 20 s after a burst of 3
    client = Bitrix24(
        portal.webhook_url, transport=portal.transport(), plan=plan, clock=clock, sleep=clock.sleep
    )
    box = Toolbox(client)
    outs = [box.run("b24_crm_get", {"entity": "deal", "id": 2}) for _ in range(5)]
    assert not outs[0].is_error
    busy = [o for o in outs if o.is_error]
    assert busy and all("QUEUE_FULL" in o.content and "try again" in o.content for o in busy), outs
    assert clock.slept <= MAX_WAIT * len(outs)  # never the 20 s a slot is away
    waiting = Toolbox(client, max_wait=None)  # the operator's choice: wait as long as it takes
    assert not waiting.run("b24_crm_get", {"entity": "deal", "id": 2}).is_error
