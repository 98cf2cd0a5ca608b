"""LangChain face: standard tool tests, content+artifact, bad model input, LangGraph interrupts, pack
routing."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import approve_all
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.integrations.langchain import (
    Bitrix24Tool,
    Bitrix24Toolkit,
    InterruptConfirmer,
    pack_routing_middleware,
)
from bitrix24_agent_tools.sandbox import Portal


def _toolkit(
    packs: tuple[str, ...] = ("core",), confirm: Any = approve_all
) -> tuple[Portal, Bitrix24Toolkit]:
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    return portal, Bitrix24Toolkit.create(client, packs=packs, confirm=confirm)


def _tool(name: str) -> Bitrix24Tool:
    _, toolkit = _toolkit()
    return next(t for t in toolkit.get_tools() if t.name == name)  # type: ignore[return-value]


class TestListToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> Any:
        return _tool("b24_crm_list")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"entity": "deal", "limit": 2}


class TestListToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> Any:
        return _tool("b24_crm_list")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"entity": "deal", "limit": 2}


class TestCreateTaskToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> Any:
        return _tool("b24_task_create")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"title": "Standard test task"}


def test_a_tool_call_gives_content_for_the_model_and_data_as_artifact() -> None:
    tool = _tool("b24_crm_get")
    message = tool.invoke(
        {"type": "tool_call", "id": "c1", "name": tool.name, "args": {"entity": "deal", "id": 2}}
    )
    assert isinstance(message, ToolMessage) and message.tool_call_id == "c1"
    assert '"ID":"2"' in message.content and message.artifact["ID"] == "2"


async def test_async_invoke_goes_through_the_same_guard() -> None:
    portal, toolkit = _toolkit(confirm=None)
    tool = next(t for t in toolkit.get_tools() if t.name == "b24_task_create")
    assert "no person can confirm" in await tool.ainvoke({"title": "x"})
    assert all(t["title"] != "x" for t in portal.entities("task"))


@pytest.mark.parametrize(
    "args", [{"entity": "dealz"}, {"entity": "deal", "limit": -5}, {}, {"entity": "deal", "junk": 1}]
)
def test_malformed_model_arguments_come_back_as_one_line(args: dict[str, Any]) -> None:
    result = _tool("b24_crm_list").invoke(args)
    assert isinstance(result, str) and result.startswith("invalid arguments:") and "\n" not in result


def test_langgraph_agent_pauses_at_each_write_and_resumes_across_a_new_process_state(tmp_path: Any) -> None:
    from langchain.agents import create_agent
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.types import Command

    from bitrix24_agent_tools.demo import _scripted_model

    portal = Portal(seed=7, deals=40)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    db = str(tmp_path / "graph.sqlite3")
    config: dict[str, Any] = {"configurable": {"thread_id": "t1"}}

    def agent_for(saver: Any) -> Any:
        toolkit = Bitrix24Toolkit.create(
            client, packs=("core", "comms"), guard=Guard(Policy.writer(), InterruptConfirmer())
        )
        return create_agent(_scripted_model(), toolkit.get_tools(), checkpointer=saver)

    with SqliteSaver.from_conn_string(db) as saver:
        first = agent_for(saver).invoke({"messages": [HumanMessage("Acme Logistics deal won")]}, config)
        request = first["__interrupt__"][0].value["bitrix24_confirmation"]
        assert request["method"] == "crm.deal.update" and "→ WON" in request["summary"]
    deal_id = int(request["params"]["id"])
    assert portal.entity("deal", deal_id)["STAGE_ID"] != "WON"  # nothing written while waiting
    asked = 1
    with SqliteSaver.from_conn_string(db) as saver:  # a fresh agent and saver: as after a process restart
        agent = agent_for(saver)
        # an answer names its request (several writes of one message can pause at once)
        state = agent.invoke(Command(resume={request["request_id"]: {"approve": True}}), config)
        while state.get("__interrupt__"):
            asked += 1
            asked_for = state["__interrupt__"][0].value["bitrix24_confirmation"]
            answer: Any = True
            if asked_for["method"] == "im.message.add":
                answer = {"reject": "not now"}
            elif asked_for["method"] == "crm.timeline.comment.add":
                answer = {
                    "edit": {
                        **asked_for["params"],
                        "fields": {**asked_for["params"]["fields"], "COMMENT": "Edited by a person"},
                    }
                }
            state = agent.invoke(Command(resume={asked_for["request_id"]: answer}), config)
    assert asked == 5  # the edited comment is shown once more before it runs
    assert portal.entity("deal", deal_id)["STAGE_ID"] == "WON"
    assert len(portal.state["timeline_comment"]) == 1  # resumed once, written once
    assert portal.state["timeline_comment"][1]["COMMENT"] == "Edited by a person"
    tool_results = [m.content for m in state["messages"] if isinstance(m, ToolMessage)]
    assert "rejected by the reviewer: not now" in tool_results
    assert portal.state["message"] == {}


def test_routing_middleware_sends_only_the_routed_packs_tools() -> None:
    from langchain.agents.middleware import ModelRequest

    _, toolkit = _toolkit(packs=("core", "comms", "automation", "collab"))
    tools = toolkit.get_tools()
    middleware = pack_routing_middleware(toolkit)
    seen: list[list[str]] = []

    def handler(request: ModelRequest) -> AIMessage:
        seen.append([t.name for t in request.tools])  # type: ignore[union-attr]
        return AIMessage("ok")

    request = ModelRequest(
        model=None,
        messages=[HumanMessage("send the deal to the chat")],
        tools=tools,  # type: ignore[arg-type]
        system_prompt=None,
        tool_choice=None,
        response_format=None,
        state={},
        runtime=None,
    )  # type: ignore[arg-type]
    middleware.wrap_model_call(request, handler)
    assert (
        "b24_chat_send" in seen[0]
        and "b24_automation_call" not in seen[0]
        and "b24_collab_call" not in seen[0]
    )
    assert len(seen[0]) < len(tools)


def test_toolkit_from_env_and_for_request(monkeypatch: pytest.MonkeyPatch) -> None:
    portal = Portal(seed=1)
    monkeypatch.setenv("B24_WEBHOOK_URL", portal.webhook_url)
    monkeypatch.setenv("B24_PACKS", "core,sites")
    toolkit = Bitrix24Toolkit.from_env()
    names = {t.name for t in toolkit.get_tools()}
    assert {"b24_crm_list", "b24_sites_call"} <= names
    # routing stays within the operator's packs: the feed (collab) is not reached from core and sites
    assert "b24_collab_call" not in {
        t.name for t in toolkit.for_request("опубликуй в живой ленте").get_tools()
    }
    monkeypatch.setenv("B24_PACKS", "core,sites,collab")
    toolkit = Bitrix24Toolkit.from_env()
    assert {t.name for t in toolkit.for_request("опубликуй в живой ленте").get_tools()} >= {"b24_collab_call"}


def test_tools_outside_core_can_be_deferred_to_the_providers_tool_search() -> None:
    """``get_tools(defer=True)`` marks every non-core tool ``extras["defer_loading"]`` — what LangChain's
    ``ProviderToolSearchMiddleware`` and ChatAnthropic's tool search read; core stays loaded."""
    from bitrix24_agent_tools.packs import PACKS

    _, toolkit = _toolkit(packs=tuple(PACKS))
    tools = toolkit.get_tools(defer=True)
    packs = {s.name: s.pack for s in toolkit.toolbox.specs}
    deferred = {t.name for t in tools if (t.extras or {}).get("defer_loading")}
    assert deferred == {name for name, pack in packs.items() if pack != "core"} and deferred
    assert all(not t.extras for t in toolkit.get_tools())  # not unless asked
