"""The approval page in a real headless browser (Debian's Chromium, driven by playwright with its own
executable): the approver signs in through the (sandbox) portal's OAuth, reads the request and approves; the
agent's write then runs once. A signed-in non-approver gets no buttons; a form without the page's token is
refused. Everything on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bitrix24_agent_tools.approvals import ApprovalService
from bitrix24_agent_tools.approvals.web import ApprovalPages
from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def _need_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if CHROMIUM is None or sync_playwright is None:
        message = "the browser tests need Debian's chromium and the playwright package"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " — CI must run them (.ci/run installs chromium)")
        pytest.skip(message)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    def __init__(self) -> None:
        import uvicorn

        self.portal = Portal(seed=1)
        self.portal.signed_in = None  # the portal shows its sign-in form
        self.server = self.portal.serve()
        port = _free_port()
        self.public = f"http://127.0.0.1:{port}"
        app = self.portal.register_app(redirect_uri=f"{self.public}/approvals/oauth/callback")
        self.service = ApprovalService(approvers=["5"], web_url=self.public, poll=0.02)
        pages = ApprovalPages(
            self.service,
            portal_url=self.server.url,
            client_id=app.client_id,
            client_secret=app.client_secret,
            oauth_server=f"{self.server.url}/oauth/token/",
        )
        config = uvicorn.Config(pages.asgi_app(), host="127.0.0.1", port=port, log_level="warning")
        self.web = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.web.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.web.started and time.monotonic() < deadline:
            time.sleep(0.02)
        agent = Bitrix24(self.server.webhook_url)
        self.box = Toolbox(agent, packs=("core",), guard=Guard(Policy.writer(), self.service.confirmer()))

    def write(self, title: str) -> tuple[threading.Thread, list[Any]]:
        out: list[Any] = []
        args = {"entity": "deal", "id": 1, "fields": {"TITLE": title}}
        thread = threading.Thread(target=lambda: out.append(self.box.run("b24_crm_update", args)))
        thread.start()
        return thread, out

    def link(self) -> str:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = [a for a in self.service.store._rows.values() if a.state == "pending"]  # type: ignore[attr-defined]
            if rows:
                return str(self.service.link(rows[0]))
            time.sleep(0.01)
        raise AssertionError("no request was opened")

    def writes(self) -> int:
        return sum(1 for r in self.portal.requests if r.method == "crm.deal.update")

    def stop(self) -> None:
        self.web.should_exit = True
        self._thread.join(10)
        self.server.stop()


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    _need_browser()
    d = Deployment()
    yield d
    d.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_playwright = _need_browser()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _sign_in(page: Any, link: str, user: str) -> None:
    page.goto(link)
    page.get_by_label("User").select_option(user)  # the portal's own sign-in form
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(link)


def test_the_approver_signs_in_through_bitrix24_and_approves_in_a_real_browser(
    deployment: Deployment, browser: Any
) -> None:
    thread, out = deployment.write("Approved on the web")
    link = deployment.link()
    page = browser.new_page()
    _sign_in(page, link, "5")
    approval = next(iter(deployment.service.store._rows.values()))  # type: ignore[attr-defined]
    assert page.locator("pre").inner_text().strip() == approval.summary.strip()  # as the terminal shows it
    assert deployment.writes() == 0
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("status").wait_for()
    assert "approved by user 5 (web)" in page.get_by_role("status").inner_text()
    thread.join(15)
    assert not out[0].is_error and deployment.writes() == 1
    assert deployment.portal.state["deal"][1]["TITLE"] == "Approved on the web"
    assert deployment.box.guard.audit.rows()[-1].approved_by == "user 5 via web"


def test_a_non_approver_gets_no_buttons_and_a_form_without_the_token_is_refused(
    deployment: Deployment, browser: Any
) -> None:
    deployment.service.ttl = 3.0
    thread, out = deployment.write("Never approved")
    link = deployment.link()
    page = browser.new_page()
    _sign_in(page, link, "3")
    assert "only user 5 may answer" in page.get_by_role("status").inner_text()
    assert page.get_by_role("button", name="Approve").count() == 0
    forged = page.request.post(link, form={"decision": "approve", "token": "0" * 64})
    assert forged.status == 403
    framed = page.request.get(link)
    assert (
        framed.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in framed.headers["content-security-policy"]
    )
    thread.join(15)
    assert out[0].is_error and deployment.writes() == 0


def test_an_mcp_client_without_elicitation_gets_the_link_and_completes_after_the_pages_yes(
    deployment: Deployment, browser: Any
) -> None:
    """The acceptance path: the MCP tool call returns one line with the link; the approver opens it in a real
    browser, signs in through Bitrix24 and approves; ``b24_approval_status`` then runs the write once."""
    import anyio
    from mcp import Client

    from bitrix24_agent_tools.client import AsyncBitrix24
    from bitrix24_agent_tools.integrations.mcp import STATUS_TOOL, Bitrix24MCP

    app = Bitrix24MCP(
        aclient=AsyncBitrix24(deployment.server.webhook_url), approvals=deployment.service, approval_wait=5.0
    )
    args = {"entity": "deal", "id": 1, "fields": {"TITLE": "Approved for an MCP client"}}

    async def ask() -> tuple[str, str]:
        async with Client(app.server) as client:  # declares no elicitation
            first = await client.call_tool("b24_crm_update", args)
        text = first.content[0].text
        return text.split(" at ")[1].split(" ")[0], text.split("stored as plan ")[1].split(",")[0]

    def off_loop(fn: Any) -> Any:  # playwright's sync API holds this thread's event loop
        out: list[Any] = []
        worker = threading.Thread(target=lambda: out.append(anyio.run(fn)))
        worker.start()
        worker.join(30)
        return out[0]

    link, plan = off_loop(ask)
    assert link.startswith(f"{deployment.public}/approvals/") and deployment.writes() == 0
    page = browser.new_page()
    _sign_in(page, link, "5")
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("status").wait_for()

    async def finish() -> Any:
        async with Client(app.server) as client:
            return await client.call_tool(STATUS_TOOL, {"plan": plan})

    done = off_loop(finish)
    assert not done.is_error and "executed" in done.content[0].text and deployment.writes() == 1
    assert deployment.portal.state["deal"][1]["TITLE"] == "Approved for an MCP client"
