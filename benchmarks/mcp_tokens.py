"""Tokens of the MCP tools/list LLM view (name, description, inputSchema) vs the LangChain view. `python -m
benchmarks.mcp_tokens`"""

from __future__ import annotations

import asyncio
import json

from bitrix24_agent_tools.tokens import count_tokens


async def _mcp_view(packs: tuple[str, ...]) -> tuple[int, int]:
    from mcp import Client

    from bitrix24_agent_tools.client import AsyncBitrix24
    from bitrix24_agent_tools.integrations.mcp import Bitrix24MCP
    from bitrix24_agent_tools.sandbox import Portal

    portal = Portal(seed=0, deals=1)
    app = Bitrix24MCP(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()), packs=packs
    )
    async with Client(app.server) as client:
        tools = (await client.list_tools()).tools
    view = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in tools]
    return len(tools), sum(count_tokens(json.dumps(v, separators=(",", ":"))) for v in view)


def main(argv: list[str] | None = None) -> dict[str, float]:
    from benchmarks.tokens import langchain_view_tokens

    out: dict[str, float] = {}
    for packs in (("core",), ("core", "comms")):
        n, tokens = asyncio.run(_mcp_view(packs))
        lc = langchain_view_tokens(list(packs)) or 0
        print(
            f"MCP tools/list {'+'.join(packs):11} {n:2d} tools {tokens:5d} tokens ({tokens / n:.0f}/tool); "
            f"LangChain view {lc} tokens; mcp-b24: 43 tools 32,690 tokens (760/tool)"
        )
        out[f"mcp_{'_'.join(packs)}_tokens"] = tokens
    return out


if __name__ == "__main__":
    main()
