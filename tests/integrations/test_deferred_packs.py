"""Deferred packs: the first model call carries the routed packs and b24_load_pack; a loaded pack is
offered next."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from bitrix24_agent_tools.client import AsyncBitrix24, Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit, pack_routing_middleware
from bitrix24_agent_tools.integrations.mcp import Bitrix24MCP
from bitrix24_agent_tools.packs import PACKS
from bitrix24_agent_tools.sandbox import Portal


class _Request:
    def __init__(self, messages: list[Any], tools: list[Any]) -> None:
        self.messages, self.tools = messages, tools

    def override(self, tools: list[Any]) -> _Request:
        return _Request(self.messages, tools)


def test_langchain_offers_a_pack_from_the_step_after_the_model_loads_it(client: Bitrix24) -> None:
    toolkit = Bitrix24Toolkit.create(client, packs=tuple(PACKS), confirm=AutoConfirmer(), loader=True)
    middleware = pack_routing_middleware(toolkit)
    tools = toolkit.get_tools()
    first = [HumanMessage("list my deals")]
    names = {t.name for t in middleware.wrap_model_call(_Request(first, tools), lambda r: r).tools}
    assert "b24_crm_list" in names and "b24_load_pack" in names and "b24_chat_send" not in names
    loaded = [
        *first,
        AIMessage(
            content="",
            tool_calls=[
                {"name": "b24_load_pack", "args": {"pack": "comms"}, "id": "c1", "type": "tool_call"}
            ],
        ),
    ]
    names = {t.name for t in middleware.wrap_model_call(_Request(loaded, tools), lambda r: r).tools}
    assert "b24_chat_send" in names
    call = {"name": "b24_chat_send", "args": {"dialog_id": "1", "message": "hi"}, "id": "c2"}
    before = middleware.wrap_tool_call(
        SimpleNamespace(tool_call=call, state={"messages": first}), lambda r: "ran"
    )
    assert before != "ran" and "b24_load_pack" in before.content
    after = middleware.wrap_tool_call(
        SimpleNamespace(tool_call=call, state={"messages": loaded}), lambda r: "ran"
    )
    assert after == "ran"


def test_the_loader_tool_answers_with_the_packs_tools_and_refuses_unknown_packs(client: Bitrix24) -> None:
    toolkit = Bitrix24Toolkit.create(client, confirm=AutoConfirmer(), loader=True, boundary=tuple(PACKS))
    out = toolkit.toolbox.run("b24_load_pack", {"pack": "services"})
    assert "b24_calendar_add" in out.content and "services" in toolkit.toolbox.packs
    assert toolkit.toolbox.run("b24_load_pack", {"pack": "nope"}).is_error


async def test_mcp_loads_a_pack_and_lists_its_tools() -> None:
    portal = Portal(seed=1)
    app = Bitrix24MCP(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()), route=True
    )
    assert {t.name for t in app.tools()} == {"b24_load_pack", "b24_route"}
    changed: list[bool] = []

    async def notify() -> None:
        changed.append(True)

    ctx = SimpleNamespace(session=SimpleNamespace(send_tool_list_changed=notify), request_id="r")
    import mcp.types as types

    result = await app._call_tool(
        ctx, types.CallToolRequestParams(name="b24_load_pack", arguments={"pack": "comms"})
    )
    assert not result.is_error and changed == [True] and "b24_chat_send" in {t.name for t in app.tools()}


def test_a_scope_aware_toolkit_leaves_out_tools_the_credential_cannot_call(portal: Portal) -> None:
    only_tasks = Bitrix24(portal.add_webhook(1, scopes={"task", "user"}), transport=portal.transport())
    toolkit = Bitrix24Toolkit.create(
        only_tasks, packs=("core", "comms"), confirm=AutoConfirmer(), scope_aware=True
    )
    names = {t.name for t in toolkit.get_tools()}
    assert {"b24_task_create", "b24_task_list", "b24_user_find", "b24_core_call"} <= names
    assert not {"b24_crm_list", "b24_deal_move", "b24_chat_send"} & names
    assert "b24_crm_comment" in names  # it can still comment on a task


async def test_routing_and_loading_stay_within_the_operators_packs() -> None:
    """The operator enabled core and comms: neither the loader, nor routing, nor the MCP tools reach sites."""
    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.toolbox import Toolbox

    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    box = Toolbox(client, packs=("core", "comms"), loader=True)
    refused = box.run("b24_load_pack", {"pack": "sites"})
    assert refused.is_error and "not enabled" in refused.content
    assert not any(s.pack == "sites" for s in box.specs)
    routed = box.for_request("publish the landing page of our site", budget=400)
    assert set(routed.packs) <= {"core", "comms"} and routed.boundary == ("core", "comms")
    assert routed.run("b24_load_pack", {"pack": "sites"}).is_error
    app = Bitrix24MCP(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()),
        route=True,
        packs=("core", "comms"),
    )
    import mcp.types as types

    ctx = SimpleNamespace(session=SimpleNamespace(send_tool_list_changed=lambda: None), request_id="r")
    out = await app._call_tool(
        ctx, types.CallToolRequestParams(name="b24_load_pack", arguments={"pack": "sites"})
    )
    assert out.is_error and "not enabled" in out.content[0].text
