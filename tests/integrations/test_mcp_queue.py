"""MCP under the portal's plan: a tool call that would wait beyond the client's budget comes back at once,
telling the model when to try again (issue: calls queued without bound, p99 33 s)."""

from __future__ import annotations

import time

from mcp import Client

from bitrix24_agent_tools.client import AsyncBitrix24, RatePlan
from bitrix24_agent_tools.integrations.mcp import MAX_WAIT, Bitrix24MCP
from bitrix24_agent_tools.sandbox import Portal


async def test_a_call_beyond_the_wait_budget_returns_when_to_try_again() -> None:
    portal = Portal(seed=1)
    client = AsyncBitrix24(
        portal.webhook_url,
        transport=portal.async_transport(),
        plan=RatePlan.custom(0.05, 6),  # one slot every 20 s after a burst of 6
        max_wait=MAX_WAIT,
    )
    app = Bitrix24MCP(aclient=client)
    answers = []
    async with Client(app.server) as mcp:
        for _ in range(8):  # until the burst is spent
            started = time.perf_counter()
            answers.append(await mcp.call_tool("b24_crm_get", {"entity": "deal", "id": 2}))
            assert time.perf_counter() - started < 2.0  # never 20 s in a queue
    assert not answers[0].is_error
    busy = [a for a in answers if a.is_error]
    assert busy and all("QUEUE_FULL" in a.content[0].text and "try again" in a.content[0].text for a in busy)
