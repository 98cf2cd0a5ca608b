"""pydantic-ai face: a write is an approval-required deferred tool; the person sees our rendering, and only
their yes to that very call writes, once."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, ToolDenied

from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.pydantic_ai import Bitrix24Toolset
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.testing import ScriptedPydanticModel


def _agent(portal: Portal, calls: list[tuple[str, dict[str, Any]]]) -> tuple[Agent[Any, Any], Any]:
    face = Bitrix24Toolset.create(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()), packs=("core",)
    )
    model = ScriptedPydanticModel([[call] for call in calls] + ["done"])
    agent = Agent(model, toolsets=[face.toolset()], output_type=[str, DeferredToolRequests])
    return agent, face


UPDATE = ("b24_crm_update", {"entity": "deal", "id": 1, "fields": {"TITLE": "Approved in pydantic-ai"}})


async def test_a_write_waits_for_the_persons_yes_and_runs_once() -> None:
    portal = Portal(seed=1)
    agent, _ = _agent(portal, [UPDATE])
    first = await agent.run("rename deal 1")
    assert isinstance(first.output, DeferredToolRequests)
    (call,) = first.output.approvals
    shown = first.output.metadata[call.tool_call_id]["bitrix24_confirmation"]
    assert shown["method"] == "crm.deal.update" and "Approved in pydantic-ai" in shown["summary"]
    assert not [r for r in portal.requests if r.method == "crm.deal.update"]  # nothing written while waiting
    second = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=DeferredToolResults(
            approvals={call.tool_call_id: True},
            metadata={call.tool_call_id: first.output.metadata[call.tool_call_id]},
        ),
    )
    assert isinstance(second.output, str) and portal.state["deal"][1]["TITLE"] == "Approved in pydantic-ai"
    assert len([r for r in portal.requests if r.method == "crm.deal.update"]) == 1


async def test_a_denial_writes_nothing_and_reads_run_at_once() -> None:
    portal = Portal(seed=1)
    before = portal.state["deal"][1]["TITLE"]
    agent, _ = _agent(portal, [("b24_crm_get", {"entity": "deal", "id": 1}), UPDATE])
    first = await agent.run("read then rename")
    assert isinstance(first.output, DeferredToolRequests) and len(first.output.approvals) == 1
    assert [r.method for r in portal.requests].count("crm.deal.get") >= 1  # the read ran without asking
    (call,) = first.output.approvals
    second = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=DeferredToolResults(approvals={call.tool_call_id: ToolDenied("not this one")}),
    )
    assert isinstance(second.output, str) and portal.state["deal"][1]["TITLE"] == before
    assert not [r for r in portal.requests if r.method == "crm.deal.update"]


async def test_an_approval_for_other_arguments_writes_nothing() -> None:
    """The person approved one call; a resume that swaps its arguments gets a no from the guard."""
    portal = Portal(seed=1)
    agent, _ = _agent(portal, [UPDATE])
    first = await agent.run("rename deal 1")
    (call,) = first.output.approvals
    from pydantic_ai import ToolApproved

    swapped = {"entity": "deal", "id": 2, "fields": {"TITLE": "Swapped"}}
    second = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=DeferredToolResults(
            approvals={call.tool_call_id: ToolApproved(override_args=swapped)},
            metadata={call.tool_call_id: first.output.metadata[call.tool_call_id]},
        ),
    )
    returned = [p.content for m in second.all_messages() for p in getattr(m, "parts", [])
                if getattr(p, "part_kind", "") == "tool-return"]  # fmt: skip
    assert any("not the one that was approved" in str(r) for r in returned)
    assert not [r for r in portal.requests if r.method == "crm.deal.update"]
