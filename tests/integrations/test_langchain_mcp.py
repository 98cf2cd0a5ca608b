"""LangChain's own MCP client (`langchain.mcp.MCPAdapter`, on FastMCP) against our server over HTTP: it lists
and calls our tools, and our write confirmation reaches the person as a LangGraph interrupt (its elicitation
support) — the write runs once after their yes and not at all after a no."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from typing import Any

import pytest

pytest.importorskip("fastmcp")

from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.mcp import Bitrix24MCP, _bearer
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.testing import ScriptedChatModel

TOKEN = "langchain-mcp-test-token-0123456789"


class Server:
    def __init__(self) -> None:
        import uvicorn

        self.portal = Portal(seed=1)
        app = Bitrix24MCP(
            aclient=AsyncBitrix24(self.portal.webhook_url, transport=self.portal.async_transport())
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/mcp"
        asgi = _bearer(app.server.streamable_http_app(host="127.0.0.1"), TOKEN)
        self.server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def updates(self) -> int:
        return sum(1 for r in self.portal.requests if r.method == "crm.deal.update")


@pytest.fixture
def server() -> Any:
    running = Server()
    yield running
    running.stop()


async def _run(server: Server, answer: dict[str, Any]) -> tuple[Any, Any]:
    from fastmcp import Client
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain.mcp announces itself as beta
        from langchain.mcp import MCPAdapter

    async with MCPAdapter(Client(server.url, auth=TOKEN)) as adapter:
        tools = await adapter.list_tools()
        assert {"b24_crm_get", "b24_crm_update"} <= {t.name for t in tools}
        model = ScriptedChatModel(
            [
                [("b24_crm_update", {"entity": "deal", "id": 1, "fields": {"TITLE": "Via langchain.mcp"}})],
                "done",
            ]
        )
        agent = create_agent(model, tools, checkpointer=InMemorySaver())
        config: dict[str, Any] = {"configurable": {"thread_id": "t"}}
        first = await agent.ainvoke({"messages": [HumanMessage("rename deal 1")]}, config)
        paused = first["__interrupt__"][0].value
        (request,) = paused["requests"]
        final = await agent.ainvoke(Command(resume={"responses": {request["key"]: answer}}), config)
        return paused, final


async def test_langchains_mcp_client_asks_the_person_and_the_write_runs_once(server: Server) -> None:
    paused, _ = await _run(server, {"action": "accept", "content": {"decision": "approve"}})
    assert paused["type"] == "mcp_elicitation" and paused["tool_name"] == "b24_crm_update"
    assert "Via langchain.mcp" in paused["requests"][0]["message"]  # our rendering, shown to the person
    assert server.portal.state["deal"][1]["TITLE"] == "Via langchain.mcp" and server.updates() == 1


async def test_a_decline_through_langchains_mcp_client_writes_nothing(server: Server) -> None:
    before = server.portal.state["deal"][1]["TITLE"]
    await _run(server, {"action": "decline"})
    assert server.portal.state["deal"][1]["TITLE"] == before and server.updates() == 0


def test_an_unanswered_request_keeps_its_nonce_and_an_answered_one_never_comes_back() -> None:
    """A client that re-runs the call before answering (LangGraph replays the node on resume) is asked under
    the same nonce, so its answer binds; once redeemed the nonce is gone and the next call gets a new one."""
    import mcp.types as types

    from bitrix24_agent_tools.guard import ConfirmationRequest
    from bitrix24_agent_tools.integrations.mcp import Elicitations

    issued = Elicitations()
    request = ConfirmationRequest(
        "t", "crm.deal.update", {}, "write", "p", "s", request_id="crm.deal.update:" + "a" * 32
    )
    first = issued.issue(request)
    assert issued.issue(request) == first
    other = ConfirmationRequest(
        "t", "crm.deal.update", {}, "write", "p", "s", request_id="crm.deal.update:" + "b" * 32
    )
    assert issued.issue(other) != first
    yes = types.ElicitResult(action="accept", content={"decision": "approve"})
    assert request.request_id in issued.redeem_all({first: yes})
    assert issued.redeem_all({first: yes}) == {}  # a replayed answer counts for nothing
    assert issued.issue(request) != first
