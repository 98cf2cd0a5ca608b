"""Runs in .venv-mcp-adapters (mcp 1.x + langchain-mcp-adapters): load our MCP server's tools and call one."""

from __future__ import annotations

import asyncio
import json
import sys

from langchain_mcp_adapters.client import MultiServerMCPClient


async def main(server_command: list[str]) -> None:
    client = MultiServerMCPClient(
        {"bitrix24": {"command": server_command[0], "args": server_command[1:], "transport": "stdio"}}
    )
    tools = {tool.name: tool for tool in await client.get_tools()}
    result = await tools["b24_crm_get"].ainvoke({"entity": "deal", "id": 2})
    if isinstance(result, list):  # content blocks
        text = "".join(str(block.get("text", "")) for block in result if isinstance(block, dict))
    else:
        text = str(result)
    print(json.dumps({"tools": sorted(tools), "result": text}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
