"""MCP face: tools/list with compact schemas and risk annotations; writes confirmed by the person via
elicitation."""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types
import pytest
from mcp import Client

from bitrix24_agent_tools.client import AsyncBitrix24, Bitrix24
from bitrix24_agent_tools.guard import Decision
from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit
from bitrix24_agent_tools.integrations.mcp import Bitrix24MCP
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.stores import MemoryPlanStore
from bitrix24_agent_tools.tokens import count_tokens
from bitrix24_agent_tools.toolbox import Toolbox


def _server(**kwargs: Any) -> tuple[Portal, Bitrix24MCP]:
    portal = Portal(seed=1)
    return portal, Bitrix24MCP(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()), **kwargs
    )


def _elicit(answer: dict[str, Any] | None, asked: list[str]) -> Any:
    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        if answer is None:
            return types.ElicitResult(action="decline")
        return types.ElicitResult(action="accept", content=answer)

    return callback


async def test_tools_list_has_compact_schemas_annotations_and_the_langchain_token_cost() -> None:
    portal, app = _server(packs=("core", "comms"))
    async with Client(app.server) as client:
        tools = (await client.list_tools()).tools
    by_name = {t.name: t for t in tools}
    assert by_name["b24_crm_list"].annotations.read_only_hint is True
    assert by_name["b24_crm_update"].annotations.read_only_hint is False
    assert by_name["b24_core_call"].annotations.destructive_hint is True
    mcp_view = sum(
        count_tokens(
            json.dumps(
                {"name": t.name, "description": t.description, "inputSchema": t.input_schema},
                separators=(",", ":"),
            )
        )
        for t in tools
    )
    from langchain_core.utils.function_calling import convert_to_openai_tool

    toolkit = Bitrix24Toolkit.create(
        Bitrix24(portal.webhook_url, transport=portal.transport()), packs=("core", "comms")
    )
    lc_view = sum(
        count_tokens(json.dumps(convert_to_openai_tool(t)["function"], separators=(",", ":")))
        for t in toolkit.get_tools()
    )
    assert abs(mcp_view - lc_view) / lc_view < 0.10
    assert mcp_view / len(tools) < 760 / 5  # a fifth of the strongest public MCP server's per-tool cost


async def test_a_result_reaches_the_model_once_as_text_or_as_structured_content() -> None:
    """By default the compact text only; with structured=True every field as structuredContent and a one-line
    text: never the same data twice (a host that passes both to the model would pay for it twice)."""
    _, app = _server()
    async with Client(app.server) as client:
        result = await client.call_tool("b24_crm_get", {"entity": "deal", "id": 2})
    assert not result.is_error and '"ID":"2"' in result.content[0].text and result.structured_content is None
    app.structured = True
    async with Client(app.server) as client:
        rich = await client.call_tool("b24_crm_get", {"entity": "deal", "id": 2})
        rows = await client.call_tool("b24_crm_list", {"entity": "deal", "limit": 3})
    assert rich.structured_content["data"]["ID"] == "2" and '"ID"' not in rich.content[0].text
    assert rich.content[0].text == "result in structuredContent.data (one object)"
    assert len(rows.structured_content["data"]) == 3 and rows.content[0].text.endswith("(3 rows)")


async def test_a_write_is_confirmed_by_the_person_through_elicitation() -> None:
    portal, app = _server()
    asked: list[str] = []
    async with Client(app.server, elicitation_callback=_elicit({"decision": "approve"}, asked)) as client:
        result = await client.call_tool("b24_deal_move", {"id": 3, "stage_id": "WON"})
    assert not result.is_error and portal.entity("deal", 3)["STAGE_ID"] == "WON"
    assert asked and "Update deal #3" in asked[0] and "STAGE_ID" in asked[0]


async def test_declines_and_edits_come_from_the_person_and_edits_are_rechecked() -> None:
    portal, app = _server()
    asked: list[str] = []
    async with Client(app.server, elicitation_callback=_elicit(None, asked)) as client:
        declined = await client.call_tool("b24_task_create", {"title": "nope"})
    assert declined.is_error and "declined" in declined.content[0].text
    edit = {"decision": "approve", "fields": json.dumps({"OPPORTUNITY": 777})}
    async with Client(app.server, elicitation_callback=_elicit(edit, asked)) as client:
        edited = await client.call_tool(
            "b24_crm_update", {"entity": "deal", "id": 4, "fields": {"OPPORTUNITY": 5}}
        )
    assert not edited.is_error and portal.entity("deal", 4)["OPPORTUNITY"] == "777.00"
    bad = {"decision": "approve", "fields": "not json"}
    async with Client(app.server, elicitation_callback=_elicit(bad, asked)) as client:
        assert (
            await client.call_tool(
                "b24_crm_update", {"entity": "deal", "id": 4, "fields": {"OPPORTUNITY": 6}}
            )
        ).is_error


async def test_no_model_argument_can_approve_and_without_elicitation_only_a_plan_is_stored() -> None:
    plans = MemoryPlanStore()
    portal, app = _server(plans=plans)
    async with Client(app.server) as client:  # this client declares no elicitation
        forged = await client.call_tool("b24_task_create", {"title": "sneaky", "confirm": True})
        assert forged.is_error and "invalid arguments" in forged.content[0].text
        deferred = await client.call_tool("b24_task_create", {"title": "later"})
    assert deferred.is_error and "--execute-plan" in deferred.content[0].text
    assert not any(t["title"] in ("sneaky", "later") for t in portal.entities("task"))
    plan_id = deferred.content[0].text.split("plan ")[1].split()[0]
    # Only a person runs it (the CLI's --execute-plan does exactly this), through the same guard and plan
    # store.
    person = Toolbox(Bitrix24(portal.webhook_url, transport=portal.transport()), guard=app.toolbox.guard)
    shown: list[str] = []

    def person_says_yes(request: Any) -> Decision:
        shown.append(request.summary)
        return Decision.approve(by="person")

    assert "executed" in person.execute_plan(plan_id, confirm=person_says_yes).content
    assert shown and "TITLE = later" in shown[0]  # the person saw what the plan does before it ran
    assert [t["title"] for t in portal.entities("task")].count("later") == 1


async def test_route_mode_starts_small_adds_the_tools_a_request_needs_and_notifies_the_client() -> None:
    _, app = _server(route=True)
    changed: list[Any] = []

    async def on_message(message: Any) -> None:
        changed.append(message)

    async with Client(app.server, message_handler=on_message, mode="legacy") as client:
        before = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("b24_route", {"request": "опубликуй в живой ленте"})
        after = {t.name for t in (await client.list_tools()).tools}
        loaded = await client.call_tool("b24_load_pack", {"pack": "b24_task_create"})
        last = {t.name for t in (await client.list_tools()).tools}
    assert before == {"b24_route", "b24_load_pack"}  # the first list costs two small tools
    assert (
        "b24_feed_post" in result.content[0].text
        and "b24_feed_post" in after
        and "b24_task_create" not in after
    )
    assert not loaded.is_error and "b24_task_create" in last
    assert sum("list_changed" in repr(m) for m in changed) == 2


async def test_legacy_sessions_get_an_elicitation_request_mid_call() -> None:
    portal, app = _server()
    asked: list[str] = []
    async with Client(
        app.server, elicitation_callback=_elicit({"decision": "approve"}, asked), mode="legacy"
    ) as client:
        result = await client.call_tool("b24_task_complete", {"id": 2})
    assert not result.is_error and portal.entity("task", 2)["status"] == "5"
    assert asked and "Complete task #2" in asked[0]


async def test_the_cli_serves_mcp_over_stdio_with_a_sandbox() -> None:
    import sys

    from mcp import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "bitrix24_agent_tools.cli", "mcp", "--sandbox", "--packs", "core,comms"],
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("b24_crm_get", {"entity": "deal", "id": 1})
    assert {"b24_crm_list", "b24_chat_send"} <= names
    assert '"ID":"1"' in result.content[0].text


async def test_http_mode_refuses_requests_without_the_bearer_token() -> None:
    import httpx

    from bitrix24_agent_tools.integrations.mcp import _bearer

    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = _bearer(inner, "s3cret-token-value")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mcp.test") as http:
        assert (await http.post("/mcp")).status_code == 401
        assert (await http.post("/mcp", headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (
            await http.post("/mcp", headers={"Authorization": "Bearer s3cret-token-value"})
        ).status_code == 200
    assert reached == ["/mcp"]


def test_http_mode_beyond_loopback_needs_a_token(capsys: Any) -> None:
    from bitrix24_agent_tools.cli import main

    assert main(["mcp", "--sandbox", "--http", "0.0.0.0:8765"]) == 2
    assert "without --token" in capsys.readouterr().out


async def test_an_edit_lands_on_the_key_the_method_reads_and_is_shown_again() -> None:
    """An edited MESSAGE of im.message.add (typed in any case) is the text sent — not a ``fields`` key the
    method ignores — and the edited call is shown to the person again before it runs."""
    portal, app = _server(packs=("core", "comms"))
    asked: list[str] = []
    edit = {"decision": "approve", "fields": json.dumps({"message": "Edited text"})}
    async with Client(app.server, elicitation_callback=_elicit(edit, asked)) as client:
        sent = await client.call_tool("b24_chat_send", {"dialog_id": "1", "message": "Original text"})
    assert not sent.is_error, sent.content[0].text
    texts = [m["text"] for m in portal.state["message"].values()]
    assert "Edited text" in texts and "Original text" not in texts
    # the request as the model made it, then the edited call, each shown before anything runs
    assert "Original text" in asked[0] and "Edited text" in asked[1] and "Edited text" in asked[-1]
    assert texts.count("Edited text") == 1
    nothing = {"decision": "approve", "fields": json.dumps({"NO_SUCH_KEY": 1})}
    async with Client(app.server, elicitation_callback=_elicit(nothing, [])) as client:
        refused = await client.call_tool("b24_chat_send", {"dialog_id": "1", "message": "Third"})
    assert refused.is_error and "NO_SUCH_KEY" in refused.content[0].text
    assert "Third" not in [m["text"] for m in portal.state["message"].values()]


async def test_the_server_names_itself_and_its_tools_say_the_truth() -> None:
    """serverInfo carries a version; every tool has a title; an update is not "additive only"
    (destructiveHint), a create is; the tool list is declared to change exactly when routing changes it."""
    _portal, app = _server(packs=("core", "comms"))
    async with Client(app.server) as client:
        info, capabilities = client.server_info, client.server_capabilities
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert info.name == "bitrix24-agent-tools" and info.version
    assert all(t.title for t in tools.values())
    assert tools["b24_crm_update"].annotations.destructive_hint is True
    assert tools["b24_task_create"].annotations.destructive_hint is False
    assert tools["b24_crm_list"].annotations.read_only_hint is True
    assert not (capabilities.tools and capabilities.tools.list_changed)
    _, routed = _server(route=True)  # handshake-era sessions are told the list changes (it does, by routing)
    assert routed.server.get_capabilities().tools.list_changed is True
    assert app.server.get_capabilities().tools.list_changed is False


async def test_the_mcp_command_takes_its_guard_from_the_one_settings_path(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B24_REQUIRE_PLAN and B24_AUDIT_FILE mean in `b24-agent-tools mcp` what they mean everywhere else."""
    import argparse

    from bitrix24_agent_tools.integrations.mcp import build_app, register
    from bitrix24_agent_tools.stores import SqliteAuditStore

    monkeypatch.setenv("B24_REQUIRE_PLAN", "1")
    monkeypatch.setenv("B24_AUDIT_FILE", str(tmp_path / "audit.sqlite3"))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["mcp", "--sandbox", "--plans", str(tmp_path / "plans.sqlite3")])
    app, _packs, _plans = build_app(args)
    async with Client(app.server, elicitation_callback=_elicit({"decision": "approve"}, [])) as client:
        out = await client.call_tool("b24_task_create", {"title": "planned, not written"})
    assert (
        out.is_error and "--execute-plan" in out.content[0].text
    )  # a plan, although the person could answer
    assert isinstance(app.toolbox.guard.audit, SqliteAuditStore)
    assert [r.decision for r in SqliteAuditStore(tmp_path / "audit.sqlite3").rows()][-1] == "deferred"
