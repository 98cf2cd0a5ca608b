"""A team MCP server on loopback against a served sandbox portal, and MCP clients that sign in with the SDK's
own OAuth support (discovery, registration, PKCE), as a person's browser would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bitrix24_agent_tools.integrations.mcp_team import CALLBACK, TeamMCP, TeamSettings
from bitrix24_agent_tools.sandbox import Portal

REDIRECT = "http://127.0.0.1:1/callback"  # the MCP client's own redirect URI (never served: we read it)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """uvicorn in a thread on a loopback port."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Team:
    portal: Portal
    portal_url: str
    public: str
    settings: TeamSettings
    team: TeamMCP

    @property
    def url(self) -> str:
        return f"{self.public}/mcp"


def make_team(portal: Portal, portal_url: str, state: str | None = None, port: int | None = None,
              app: Any = None, **options: Any) -> tuple[Team, Served]:  # fmt: skip
    port = port or free_port()
    public = f"http://127.0.0.1:{port}"
    app = app or portal.register_app(redirect_uri=f"{public}{CALLBACK}")
    settings = TeamSettings(
        public_url=public,
        portal_url=portal_url,
        client_id=app.client_id,
        client_secret=app.client_secret,
        oauth_server=f"{portal_url}/oauth/token/",
        state=state,
        **options,
    )
    team = TeamMCP(settings)
    return Team(portal, portal_url, public, settings, team), Served(team.asgi_app(), port)


@pytest.fixture
def served_portal() -> Iterator[tuple[Portal, str]]:
    portal = Portal(seed=1)
    with portal.serve() as server:
        yield portal, server.url


@pytest.fixture
def team(served_portal: tuple[Portal, str]) -> Iterator[Team]:
    portal, url = served_portal
    made, served = make_team(portal, url)
    yield made
    served.stop()


class MemoryTokens:
    def __init__(self) -> None:
        self.tokens: Any = None
        self.client: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client

    async def set_client_info(self, client_info: Any) -> None:
        self.client = client_info


async def browse_sign_in(authorization_url: str, portal: Portal | None, user_id: int) -> Any:
    """What a browser does: follow the redirects; on the portal's sign-in form (a portal in another process
    shows it), choose ``user_id``; stop at the MCP client's redirect URI and return its code."""
    import re

    from mcp.shared.auth import AuthorizationCodeResult

    if portal is not None:
        portal.signed_in = user_id  # who is signed in at the portal in this browser
    async with httpx.AsyncClient(follow_redirects=False, timeout=15) as browser:
        answer = await browser.get(authorization_url)
        for _ in range(10):
            if answer.status_code in (301, 302, 303, 307):
                target = answer.headers["location"]
                if target.startswith(REDIRECT):
                    query = parse_qs(urlsplit(target).query)
                    return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0])
                answer = await browser.get(target)
            elif answer.status_code == 200 and 'name="user_id"' in answer.text:
                hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
                answer = await browser.post(str(answer.url), data={**hidden, "user_id": str(user_id)})
            else:
                break
        raise AssertionError(f"sign-in stopped at {answer.status_code}: {answer.text[:200]}")


def oauth_provider(url: str, portal: Portal | None, user_id: int, storage: MemoryTokens | None = None) -> Any:
    """The SDK's OAuth client; its 'browser' signs in at the portal as ``user_id``."""
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata

    got: dict[str, Any] = {}

    async def redirect_handler(authorization_url: str) -> None:
        got["result"] = await browse_sign_in(authorization_url, portal, user_id)

    async def callback_handler() -> Any:
        return got.pop("result")

    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[REDIRECT],
            client_name="test client",
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage or MemoryTokens(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


@asynccontextmanager
async def signed_in(
    url: str, portal: Portal, user_id: int, storage: MemoryTokens | None = None
) -> AsyncIterator[Any]:
    """An MCP client session at ``url`` for a person who signs in as ``user_id``."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    auth = oauth_provider(url, portal, user_id, storage)
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client
