"""Two team-server processes behind one public URL share one PostgreSQL: a person signs in on one, writes on
the other, approves on the page the first serves, and the write completes once — nothing one process needs
lives only in another's memory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bitrix24_agent_tools.integrations.mcp_team import CALLBACK
from bitrix24_agent_tools.sandbox import Portal
from tests.postgres.conftest import pg_dsn, pg_server  # noqa: F401  (fixtures)
from tests.team.conftest import MemoryTokens, Served, free_port, served_portal, signed_in  # noqa: F401


def _serve(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bitrix24_agent_tools.cli", "mcp", "--http", f"127.0.0.1:{port}"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ready(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.post(url, json={}).status_code == 401:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


class Balancer:
    """The load balancer in front of the processes: one public address, forwarding each request to the
    process ``target`` names (the tests choose, to show that any process can take any request)."""

    def __init__(self) -> None:
        self.target = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = f"?{scope['query_string'].decode()}" if scope.get("query_string") else ""
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        async with httpx.AsyncClient(timeout=60) as http:
            answer = await http.request(
                scope["method"], f"{self.target}{scope['path']}{query}", headers=headers, content=body
            )
        out = [(k.encode(), v.encode()) for k, v in answer.headers.multi_items()
               if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")]  # fmt: skip
        await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
        await send({"type": "http.response.body", "body": answer.content})


@pytest.fixture
def two_servers(pg_dsn: str, tmp_path: Any) -> Iterator[tuple[Portal, str, str]]:  # noqa: F811
    portal = Portal(seed=1)
    with portal.serve() as served:
        one, two, front = free_port(), free_port(), free_port()
        balancer = Balancer()
        proxy = Served(balancer, front)
        public = f"http://127.0.0.1:{front}"  # the load balancer's address
        app = portal.register_app(redirect_uri=f"{public}{CALLBACK}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("B24_")}
        env.update(
            HOME=str(tmp_path),
            B24_PUBLIC_URL=public,
            B24_DOMAIN=served.url,
            B24_CLIENT_ID=app.client_id,
            B24_CLIENT_SECRET=app.client_secret,
            B24_OAUTH_SERVER=f"{served.url}/oauth/token/",
            B24_STATE_URL=pg_dsn,
            B24_APPROVAL_SECRET="one secret for every process",
        )
        first, second = _serve(one, env), _serve(two, env)
        try:
            _ready(f"http://127.0.0.1:{one}/mcp")
            _ready(f"http://127.0.0.1:{two}/mcp")
            yield portal, balancer, f"{public}/mcp", (f"http://127.0.0.1:{one}", f"http://127.0.0.1:{two}")
        finally:
            proxy.stop()
            for process in (first, second):
                process.terminate()
                process.communicate(timeout=10)


def _approve_on_the_page(link: str, portal: Portal, user_id: int) -> None:
    """A browser: the page sends the person to sign in on the portal, back to the page, and they approve."""
    portal.signed_in = user_id
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        page = browser.get(link)
        assert page.status_code == 200 and "Approve" in page.text, page.text[:300]
        token = re.search(r'name="token" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
        done = browser.post(link, data={"token": token, "decision": "approve"})
        assert "approved by user" in done.text


async def test_a_session_and_its_pending_approval_continue_on_another_process(two_servers: Any) -> None:
    portal, balancer, url, (one, two) = two_servers
    storage = MemoryTokens()
    balancer.target = one
    async with signed_in(url, portal, 5, storage) as client:  # signs in through the first process
        await client.list_tools()
    deal = next(d for d in portal.state["deal"].values() if str(d.get("ASSIGNED_BY_ID")) == "5")
    args = {"entity": "deal", "id": int(deal["ID"]), "fields": {"TITLE": "Approved across processes"}}
    balancer.target = two
    async with signed_in(url, portal, 5, storage) as client:  # the same person's token, on the second
        waiting = await client.call_tool("b24_crm_update", args)
    text = waiting.content[0].text
    assert waiting.is_error and "waiting for user 5" in text
    link = text.split(" at ")[1].split(" ")[0]
    plan = text.split("stored as plan ")[1].split(",")[0]
    assert link.startswith(url.removesuffix("/mcp") + "/approvals/")
    assert portal.state["deal"][int(deal["ID"])]["TITLE"] != "Approved across processes"
    balancer.target = one
    _approve_on_the_page(link, portal, 5)  # the page, served by the first process
    balancer.target = two
    async with signed_in(url, portal, 5, storage) as client:
        done = await client.call_tool("b24_approval_status", {"plan": plan})
    assert not done.is_error and "executed" in done.content[0].text
    assert portal.state["deal"][int(deal["ID"])]["TITLE"] == "Approved across processes"
    updates = [r for r in portal.requests if r.method == "crm.deal.update"]
    assert len(updates) == 1 and updates[0].auth_kind == "oauth"


async def test_another_person_cannot_answer_ones_approval(two_servers: Any) -> None:
    portal, balancer, url, (one, two) = two_servers
    storage = MemoryTokens()
    deal = next(d for d in portal.state["deal"].values() if str(d.get("ASSIGNED_BY_ID")) == "5")
    balancer.target = two
    async with signed_in(url, portal, 5, storage) as client:
        waiting = await client.call_tool(
            "b24_crm_update", {"entity": "deal", "id": int(deal["ID"]), "fields": {"TITLE": "Not by Boris"}}
        )
    link = waiting.content[0].text.split(" at ")[1].split(" ")[0]
    balancer.target = one
    portal.signed_in = 2  # Boris opens Elena's link
    with httpx.Client(follow_redirects=True, timeout=15) as browser:
        page = browser.get(link)
    assert "only user 5 may answer" in page.text and 'value="approve"' not in page.text


async def test_a_persons_refresh_is_single_flight_across_processes(
    served_portal: tuple[Portal, str],  # noqa: F811
    pg_dsn: str,  # noqa: F811
) -> None:
    """Two processes (two TeamMCP over one PostgreSQL) find the person's Bitrix24 token expired at once: the
    portal's OAuth server sees one refresh, and both calls succeed with the fresh token."""
    import asyncio
    from dataclasses import replace

    from bitrix24_agent_tools.integrations.mcp_team import TeamMCP
    from tests.team.conftest import make_team

    portal, url = served_portal
    made, served = make_team(portal, url, state=pg_dsn)
    try:
        async with signed_in(made.url, portal, 5) as client:
            await client.list_tools()
    finally:
        served.stop()
    first, second = TeamMCP(made.settings), TeamMCP(made.settings)
    key = "|".join([made.settings.portal, made.settings.client_id, "5"])
    stored = first.state.tokens.load(key)
    first.state.tokens.save(key, replace(stored, expires_at=0.0))  # expired for everyone
    app_id, user, _ = portal.tokens[stored.access_token]
    portal.tokens[stored.access_token] = (app_id, user, 0.0)  # and the portal says so (expired_token)
    member = stored.member_id
    people = [team.person(f"{member}:5") for team in (first, second)]
    before = sum(1 for r in portal.requests if r.method == "oauth.token")
    outs = await asyncio.gather(
        *(p.app.toolbox.arun("b24_crm_list", {"entity": "deal", "limit": 1}) for p in people)  # type: ignore[union-attr]
    )
    refreshes = [r for r in portal.requests if r.method == "oauth.token"][before:]
    assert not any(o.is_error for o in outs)
    assert [r.params.get("grant_type") for r in refreshes] == ["refresh_token"]


async def test_one_person_cannot_run_or_see_anothers_plan(two_servers: Any) -> None:
    portal, balancer, url, (one, two) = two_servers
    balancer.target = one
    deal = next(d for d in portal.state["deal"].values() if str(d.get("ASSIGNED_BY_ID")) == "5")
    async with signed_in(url, portal, 5) as elena:
        waiting = await elena.call_tool(
            "b24_crm_update", {"entity": "deal", "id": int(deal["ID"]), "fields": {"TITLE": "Hers"}}
        )
    plan = waiting.content[0].text.split("stored as plan ")[1].split(",")[0]
    balancer.target = two
    async with signed_in(url, portal, 1) as admin:  # even the portal's admin is another person here
        tried = await admin.call_tool("b24_approval_status", {"plan": plan})
    assert tried.is_error and "no plan" in tried.content[0].text
