"""Verified online events: an ASGI app that checks application_token, persists, then handles.

python examples/online_handler.py      # a sandbox portal installs the app, sends a real and a forged event
uvicorn examples.online_handler:app        # serve it for a real portal (set B24_EVENTS_DIR for the stores)

A first install is trusted only once the portal confirms it: the app calls the portal back with the access
token the install delivered (PortalCallback).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import httpx

from bitrix24_agent_tools.events import Event, EventVerifier, Inbox, PortalCallback, TenantRegistry, asgi_app

STORE = Path(os.environ.get("B24_EVENTS_DIR") or tempfile.mkdtemp())


def on_event(event: Event) -> None:
    print(f"verified {event.name} from {event.domain}: {event.data}")


app = asgi_app(
    EventVerifier(TenantRegistry(STORE / "tenants.sqlite3")), on_event, Inbox(STORE / "inbox.sqlite3")
)


async def main() -> int:
    from urllib.parse import urlencode

    from bitrix24_agent_tools.sandbox import Portal
    from bitrix24_agent_tools.sandbox.events import form_encode

    portal = Portal(seed=1)
    sandbox_app = portal.register_app()
    tokens = portal.install_app(sandbox_app)
    # In-process, the callback reaches the sandbox through its transport; served, it calls https://<domain>/rest/.
    verifier = EventVerifier(
        TenantRegistry(STORE / "sandbox-tenants.sqlite3"),
        confirm_install=PortalCallback(transport=portal.transport()),
    )
    inbox = Inbox(STORE / "sandbox-inbox.sqlite3")
    local = asgi_app(verifier, on_event, inbox)
    auth = {
        "domain": portal.domain,
        "member_id": portal.member_id,
        "application_token": sandbox_app.application_token,
        "access_token": tokens["access_token"],
    }
    install = urlencode(form_encode({"event": "ONAPPINSTALL", "data": {}, "auth": auth})).encode()
    update = urlencode(
        form_encode({"event": "ONCRMDEALUPDATE", "data": {"FIELDS": {"ID": 7}}, "auth": auth})
    ).encode()
    forged = update.replace(sandbox_app.application_token.encode(), b"0" * len(sandbox_app.application_token))
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=local), base_url="https://my-app.example"
    ) as http:
        codes = [
            (await http.post("/events", content=body, headers=headers)).status_code
            for body in (install, update, forged)
        ]
    print("statuses:", codes)
    return 0 if codes == [200, 200, 403] and not inbox.pending() else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
