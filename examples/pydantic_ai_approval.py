"""pydantic-ai: Bitrix24 tools whose writes are approval-required deferred tools.

python examples/pydantic_ai_approval.py      (offline: a sandbox portal and a scripted model)
"""

from __future__ import annotations

import asyncio

from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults

from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.pydantic_ai import Bitrix24Toolset
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.testing import ScriptedPydanticModel


async def main() -> int:
    portal = Portal(seed=1)
    face = Bitrix24Toolset.create(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport())
    )
    model = ScriptedPydanticModel([[("b24_deal_move", {"id": 2, "stage_id": "WON"})], "Deal 2 is won."])
    agent = Agent(model, toolsets=[face.toolset()], output_type=[str, DeferredToolRequests])  # use your model
    result = await agent.run("Mark deal 2 as won")
    while isinstance(result.output, DeferredToolRequests):  # each write waits for a person
        approvals = {}
        for call in result.output.approvals:
            shown = result.output.metadata[call.tool_call_id]["bitrix24_confirmation"]
            print(f"Approve?\n{shown['summary']}")
            approvals[call.tool_call_id] = True  # or ToolDenied("why")
        result = await agent.run(
            message_history=result.all_messages(),
            deferred_tool_results=DeferredToolResults(approvals=approvals, metadata=result.output.metadata),
        )
    print(result.output, "| stage now:", portal.state["deal"][2]["STAGE_ID"])
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
