"""MCP with the approval service: a client without elicitation gets one line with the approval page's link and
the write completes through ``b24_approval_status`` after the person's yes; a client with URL-mode elicitation
opens the page and its call completes when the person answers there."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import mcp.types as types
from mcp import Client

from bitrix24_agent_tools.approvals import ApprovalService
from bitrix24_agent_tools.client import AsyncBitrix24
from bitrix24_agent_tools.integrations.mcp import STATUS_TOOL, Bitrix24MCP
from bitrix24_agent_tools.sandbox import Portal

ARGS = {"entity": "deal", "id": 1, "fields": {"TITLE": "Via the page"}}


def _server(ttl: float = 60.0) -> tuple[Portal, Bitrix24MCP, ApprovalService]:
    portal = Portal(seed=1)
    service = ApprovalService(approvers=["5"], web_url="https://approve.example", ttl=ttl, poll=0.02)
    app = Bitrix24MCP(
        aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()),
        approvals=service,
        approval_wait=0.3,
    )
    return portal, app, service


def _writes(portal: Portal) -> int:
    return sum(1 for r in portal.requests if r.method == "crm.deal.update")


def _only(service: ApprovalService) -> Any:
    rows = list(service.store._rows.values())  # type: ignore[attr-defined]
    assert len(rows) == 1
    return rows[0]


async def test_a_client_without_elicitation_gets_the_link_and_the_write_completes_after_the_yes() -> None:
    portal, app, service = _server()
    async with Client(app.server) as client:  # declares no elicitation
        tools = {t.name for t in (await client.list_tools()).tools}
        assert STATUS_TOOL in tools
        first = await client.call_tool("b24_crm_update", ARGS)
        text = first.content[0].text
        approval = _only(service)
        assert first.is_error and f"https://approve.example/approvals/{approval.id}" in text
        plan = text.split("stored as plan ")[1].split(",")[0]
        waiting = await client.call_tool(STATUS_TOOL, {"plan": plan})  # nobody answered yet (waits ~0)
        assert "still waiting for user 5" in waiting.content[0].text and _writes(portal) == 0
        service.answer(approval.id, "approve", user=5, channel="web")
        done = await client.call_tool(STATUS_TOOL, {"plan": plan})
        assert not done.is_error and "executed" in done.content[0].text
        assert portal.state["deal"][1]["TITLE"] == "Via the page" and _writes(portal) == 1
        again = await client.call_tool(STATUS_TOOL, {"plan": plan})  # the plan ran; the yes was used
        assert again.is_error and _writes(portal) == 1


async def test_a_rejection_on_the_page_writes_nothing() -> None:
    portal, app, service = _server()
    async with Client(app.server) as client:
        first = await client.call_tool("b24_crm_update", ARGS)
        plan = first.content[0].text.split("stored as plan ")[1].split(",")[0]
        service.answer(_only(service).id, "reject", user=5, channel="web", reason="not this deal")
        done = await client.call_tool(STATUS_TOOL, {"plan": plan})
    assert done.is_error and "not this deal" in done.content[0].text and _writes(portal) == 0


async def test_a_client_with_url_elicitation_opens_the_page_and_the_call_completes_on_the_answer() -> None:
    portal, app, service = _server()
    opened: list[str] = []

    async def callback(context: Any, params: Any) -> types.ElicitResult:
        opened.append(params.url)
        approval_id = params.url.rsplit("/", 1)[1]

        def person() -> None:  # the person answers on the page a moment later
            time.sleep(0.2)
            service.answer(approval_id, "approve", user=5, channel="web")

        threading.Thread(target=person).start()
        return types.ElicitResult(action="accept")

    async with Client(app.server, elicitation_callback=callback, mode="legacy") as client:
        result = await asyncio.wait_for(client.call_tool("b24_crm_update", ARGS), 20)
    assert opened == [f"https://approve.example/approvals/{_only(service).id}"]
    assert not result.is_error and portal.state["deal"][1]["TITLE"] == "Via the page" and _writes(portal) == 1


async def test_the_http_server_serves_the_approval_pages_beside_mcp_without_the_bearer_token() -> None:
    """B24_APPROVERS + B24_APPROVAL_URL + the app's credentials: /approvals/<id> is served by the same
    server, outside the bearer token (the person signs in through Bitrix24); everything else stays behind
    it."""
    import httpx

    from bitrix24_agent_tools.integrations.mcp import _bearer, approval_pages, with_approval_pages

    _, _, service = _server()
    env = {"B24_APPROVAL_URL": "https://approve.example", "B24_CLIENT_ID": "local.app",
           "B24_CLIENT_SECRET": "s3cret-value", "B24_DOMAIN": "acme.bitrix24.com"}  # fmt: skip
    assert approval_pages(service, {k: v for k, v in env.items() if k != "B24_CLIENT_SECRET"}) is None
    pages = approval_pages(service, env)

    async def mcp_app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"mcp"})

    served = with_approval_pages(_bearer(mcp_app, "t0ken-value"), pages.asgi_app())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url="http://h") as http:
        page = await http.get("/approvals/" + "a" * 40)
        other = await http.get("/mcp")
    assert page.status_code == 303 and page.headers["location"].startswith(
        "https://acme.bitrix24.com/oauth/authorize/?client_id=local.app"
    )
    assert other.status_code == 401
