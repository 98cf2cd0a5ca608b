"""The team MCP server end to end on loopback: discovery, sign-in through Bitrix24 OAuth, per-person rights,
audience binding, revocation."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bitrix24_agent_tools.sandbox import Portal
from tests.redis.conftest import redis_db, redis_url  # noqa: F401  (fixtures)
from tests.team.conftest import Team, make_team, signed_in


def _ids(result: Any) -> set[int]:
    table = json.loads(result.content[0].text)  # compact: {"columns": [...], "rows": [[...], ...]}
    at = table["columns"].index("ID")
    return {int(row[at]) for row in table["rows"]}


async def test_the_server_is_a_protected_resource_clients_discover() -> None:
    """MCP authorization: 401 with WWW-Authenticate naming the resource metadata (RFC 9728), which names the
    authorization server; its metadata offers PKCE (S256), registration and revocation."""
    portal = Portal(seed=1)
    with portal.serve() as server:
        made, served = make_team(portal, server.url)
        try:
            async with httpx.AsyncClient() as http:
                denied = await http.post(made.url, json={})
                assert denied.status_code == 401
                challenge = denied.headers["www-authenticate"]
                assert "resource_metadata=" in challenge
                meta_url = challenge.split('resource_metadata="')[1].split('"')[0]
                meta = (await http.get(meta_url)).json()
                assert meta["resource"] == made.url and meta["authorization_servers"]
                issuer = meta["authorization_servers"][0].rstrip("/")
                auth = (await http.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
            assert "S256" in auth["code_challenge_methods_supported"]
            assert auth["registration_endpoint"] and auth["revocation_endpoint"]
        finally:
            served.stop()


async def test_each_person_signs_in_and_sees_only_what_the_portal_lets_them_see(team: Team) -> None:
    """An admin and a non-admin of the same portal: every call runs with that person's own token."""
    portal = team.portal
    assert portal.state["user"][1]["IS_ADMIN"] and not portal.state["user"][5]["IS_ADMIN"]
    async with signed_in(team.url, portal, 1) as admin:
        everything = _ids(await admin.call_tool("b24_crm_list", {"entity": "deal", "limit": 50}))
    async with signed_in(team.url, portal, 5) as elena:
        hers = _ids(await elena.call_tool("b24_crm_list", {"entity": "deal", "limit": 50}))
    own = {int(d["ID"]) for d in portal.state["deal"].values() if str(d.get("ASSIGNED_BY_ID")) == "5"}
    others = {int(d["ID"]) for d in portal.state["deal"].values()} - own
    assert hers == own and everything & others  # she sees only hers; the admin sees others' deals too
    callers = {r.auth_kind for r in portal.requests if r.method == "crm.deal.list"}
    assert callers == {"oauth"}  # no webhook, no shared identity


async def test_a_token_for_one_server_is_refused_by_another(served_portal: tuple[Portal, str]) -> None:
    """Tokens are bound to the resource they were issued for (RFC 8707): server B (another portal's
    deployment, sharing nothing but the client) refuses server A's token."""
    from tests.team.conftest import MemoryTokens

    portal, url = served_portal
    a, served_a = make_team(portal, url)
    other = Portal(seed=2)
    with other.serve() as other_server:
        b, served_b = make_team(other, other_server.url)
        try:
            storage = MemoryTokens()
            async with signed_in(a.url, portal, 1, storage) as client:
                await client.list_tools()
            token = storage.tokens.access_token
            async with httpx.AsyncClient() as http:
                headers = {
                    "authorization": f"Bearer {token}",
                    "accept": "application/json, text/event-stream",
                }
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
                assert (await http.post(b.url, json=body, headers=headers)).status_code == 401
        finally:
            served_a.stop()
            served_b.stop()


async def test_revoking_a_grant_stops_the_next_call(team: Team) -> None:
    from tests.team.conftest import MemoryTokens

    storage = MemoryTokens()
    async with signed_in(team.url, team.portal, 5, storage) as client:
        assert (await client.call_tool("b24_crm_list", {"entity": "deal", "limit": 1})).is_error is False
    token = storage.tokens.access_token
    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        assert (await http.post(team.url, json=body, headers=headers)).status_code == 200
        revoked = await http.post(
            f"{team.public}/revoke",
            data={
                "token": token,
                "client_id": storage.client.client_id,
                "client_secret": storage.client.client_secret or "",
            },
        )
        assert revoked.status_code == 200
        assert (await http.post(team.url, json=body, headers=headers)).status_code == 401


async def test_the_cli_serves_the_whole_per_person_flow_with_sandbox_and_nothing_else(tmp_path: Any) -> None:
    """`b24-agent-tools mcp --http HOST:PORT --sandbox`: no other setup; a client discovers, registers, the
    person signs in on the sandbox portal's own form, and calls run as that person."""
    import os
    import subprocess
    import sys
    import time

    from tests.team.conftest import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("B24_")}
    env["HOME"] = str(tmp_path)
    server = subprocess.Popen(
        [sys.executable, "-m", "bitrix24_agent_tools.cli", "mcp", "--http", f"127.0.0.1:{port}", "--sandbox"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.post(url, json={}).status_code == 401:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        async with signed_in(url, None, 5) as elena:
            tools = {t.name for t in (await elena.list_tools()).tools}
            assert {"b24_crm_list", "b24_crm_update"} <= tools
            hers = _ids(await elena.call_tool("b24_crm_list", {"entity": "deal", "limit": 50}))
        async with signed_in(url, None, 1) as admin:
            everything = _ids(await admin.call_tool("b24_crm_list", {"entity": "deal", "limit": 50}))
        assert hers and everything - hers  # she sees her deals; the admin sees others' too
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert "connector URL" in err


async def test_risk_tiers_per_deployment_and_per_person(served_portal: tuple[Portal, str]) -> None:
    """The deployment allows writes, Elena is read-only: she is offered only reads and her writes are refused;
    nobody gets destructive calls above the deployment's tier; annotations say the truth."""
    portal, url = served_portal
    made, served = make_team(portal, url, tiers={"5": "read", "1": "destructive"})
    try:
        async with signed_in(made.url, portal, 5) as elena:
            tools = (await elena.list_tools()).tools
            assert tools and all(t.annotations.read_only_hint for t in tools)
            refused = await elena.call_tool(
                "b24_crm_update", {"entity": "deal", "id": 1, "fields": {"TITLE": "x"}}
            )
            assert refused.is_error
        async with signed_in(made.url, portal, 1) as admin:
            names = {t.name: t for t in (await admin.list_tools()).tools}
            assert names["b24_crm_update"].annotations.read_only_hint is False
            assert names["b24_crm_update"].annotations.destructive_hint is True  # it overwrites
            gone = await admin.call_tool("b24_core_call", {"method": "crm.deal.delete", "params": {"id": 1}})
            assert gone.is_error and "policy" in gone.content[0].text  # the deployment's tier is write
        assert 1 in portal.state["deal"] and not [r for r in portal.requests if r.method.endswith(".delete")]
    finally:
        served.stop()


async def test_when_bitrix24_refuses_a_persons_refresh_their_grant_ends(team: Team) -> None:
    """Uninstalling the app or withdrawing the person's access makes the portal refuse their tokens: the
    call says so, and their next request is unauthorized (they must sign in again)."""
    from tests.team.conftest import MemoryTokens

    storage = MemoryTokens()
    async with signed_in(team.url, team.portal, 5, storage) as client:
        assert not (await client.call_tool("b24_crm_list", {"entity": "deal", "limit": 1})).is_error
        team.portal.tokens.clear()  # the portal forgets every token it issued
        team.portal.refresh_tokens.clear()
        ended = await client.call_tool("b24_crm_list", {"entity": "deal", "limit": 1})
        assert ended.is_error and "sign in again" in ended.content[0].text
    headers = {"authorization": f"Bearer {storage.tokens.access_token}", "accept": "application/json"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx.AsyncClient() as http:
        assert (await http.post(team.url, json=body, headers=headers)).status_code == 401


def test_the_compose_file_configures_what_the_team_server_reads() -> None:
    """docker-compose.yml: PostgreSQL shared by several server replicas behind a proxy, and every variable the
    team server needs (TeamSettings.from_env) set for them."""
    from pathlib import Path

    import yaml

    from bitrix24_agent_tools.integrations.mcp_team import TeamSettings

    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    server = compose["services"]["server"]
    env = {k: str(v) for k, v in server["environment"].items()}
    assert server["deploy"]["replicas"] >= 2 and env["B24_STATE_URL"].startswith("postgresql://")
    filled = {k: ("https://x.example" if "URL" in k else "x") for k in env}
    settings = TeamSettings.from_env(filled)
    assert settings is not None and settings.state == "https://x.example"  # read from B24_STATE_URL
    assert "proxy_pass http://b24_mcp" in (root / "deploy" / "nginx.conf").read_text()
    assert (root / "Dockerfile").read_text().count("b24-agent-tools") == 1


async def test_the_team_state_may_live_on_redis(
    served_portal: tuple[Portal, str],
    redis_db: str,  # noqa: F811
) -> None:
    """B24_STATE_URL=redis://…: a sign-in made through one server object is honoured by another over the same
    Redis (clients, tokens, the person's Bitrix24 tokens all there)."""
    from bitrix24_agent_tools.integrations.mcp_team import TeamMCP
    from tests.team.conftest import MemoryTokens

    portal, url = served_portal
    made, served = make_team(portal, url, state=redis_db)
    storage = MemoryTokens()
    try:
        async with signed_in(made.url, portal, 5, storage) as client:
            await client.list_tools()
    finally:
        served.stop()
    other = TeamMCP(made.settings)  # another process
    token = await other.provider.load_access_token(storage.tokens.access_token)
    assert token is not None and token.subject and token.subject.endswith(":5")
    person = other.person(token.subject)
    out = await person.app.toolbox.arun("b24_crm_list", {"entity": "deal", "limit": 1})  # type: ignore[union-attr]
    assert not out.is_error
