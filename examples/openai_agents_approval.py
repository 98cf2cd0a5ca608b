"""OpenAI Agents SDK: Bitrix24 tools whose writes interrupt the run until a person approves.

python examples/openai_agents_approval.py      (offline: a sandbox portal and a scripted model)
"""

from __future__ import annotations

import asyncio

from agents import Agent, Runner, set_tracing_disabled

from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.openai_agents import Bitrix24AgentTools
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.testing import ScriptedAgentsModel


async def main() -> int:
    set_tracing_disabled(True)  # offline: no trace export
    portal = Portal(seed=1)
    face = Bitrix24AgentTools.create(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport())
    )
    model = ScriptedAgentsModel([[("b24_deal_move", {"id": 2, "stage_id": "WON"})], "Deal 2 is won."])
    agent = Agent(
        name="sales", instructions="Work the CRM.", model=model, tools=face.tools()
    )  # use your model
    result = await Runner.run(agent, "Mark deal 2 as won")
    while result.interruptions:  # each write waits for a person
        state = result.to_state()
        for item in result.interruptions:
            request = face.confirmation(item)
            print(f"Approve?\n{request.summary if request else item}")
            state.approve(item)  # or state.reject(item)
        result = await Runner.run(agent, state)
    print(result.final_output, "| stage now:", portal.state["deal"][2]["STAGE_ID"])
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
