"""OpenAI Agents SDK face: a write interrupts the run for approval; the person sees our rendering, and only
their approval on the run state writes, once."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("agents")

from agents import Agent, Runner, set_tracing_disabled

from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.openai_agents import Bitrix24AgentTools
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.testing import ScriptedAgentsModel

set_tracing_disabled(True)  # no trace export: nothing leaves the machine


def _agent(portal: Portal, calls: list[tuple[str, dict[str, Any]]]) -> tuple[Agent[Any], Bitrix24AgentTools]:
    face = Bitrix24AgentTools.create(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()), packs=("core",)
    )
    model = ScriptedAgentsModel([[call] for call in calls] + ["done"])
    return Agent(name="crm", model=model, tools=face.tools()), face


UPDATE = ("b24_crm_update", {"entity": "deal", "id": 1, "fields": {"TITLE": "Approved in the Agents SDK"}})


def _updates(portal: Portal) -> int:
    return sum(1 for r in portal.requests if r.method == "crm.deal.update")


async def test_a_write_interrupts_the_run_and_runs_once_after_approval() -> None:
    portal = Portal(seed=1)
    agent, face = _agent(portal, [UPDATE])
    first = await Runner.run(agent, "rename deal 1")
    (item,) = first.interruptions
    shown = face.confirmation(item)
    assert (
        shown is not None
        and shown.method == "crm.deal.update"
        and "Approved in the Agents SDK" in shown.summary
    )
    assert _updates(portal) == 0  # nothing written while waiting
    state = first.to_state()
    state.approve(item)
    second = await Runner.run(agent, state)
    assert second.final_output == "done" and portal.state["deal"][1]["TITLE"] == "Approved in the Agents SDK"
    assert _updates(portal) == 1


async def test_a_rejection_writes_nothing_and_reads_do_not_interrupt() -> None:
    portal = Portal(seed=1)
    before = portal.state["deal"][1]["TITLE"]
    agent, _ = _agent(portal, [("b24_crm_get", {"entity": "deal", "id": 1}), UPDATE])
    first = await Runner.run(agent, "read then rename")
    (item,) = first.interruptions  # only the write
    assert any(r.method == "crm.deal.get" for r in portal.requests)
    state = first.to_state()
    state.reject(item)
    second = await Runner.run(agent, state)
    assert (
        second.final_output == "done" and portal.state["deal"][1]["TITLE"] == before and _updates(portal) == 0
    )
