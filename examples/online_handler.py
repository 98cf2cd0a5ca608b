"""Verified online events: an ASGI app that checks application_token, persists, then handles.

python examples/online_handler.py          # runs one verified and one forged event through the app in-process
uvicorn examples.online_handler:app        # serve it for a real portal (set B24_EVENTS_DIR for the stores)
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import httpx

from bitrix24_agent_tools.events import Event, EventVerifier, Inbox, TenantRegistry, asgi_app

STORE = Path(os.environ.get("B24_EVENTS_DIR") or tempfile.mkdtemp())


def on_event(event: Event) -> None:
    print(f"verified {event.name} from {event.domain}: {event.data}")


app = asgi_app(
    EventVerifier(TenantRegistry(STORE / "tenants.sqlite3")), on_event, Inbox(STORE / "inbox.sqlite3")
)


async def main() -> int:
    from urllib.parse import urlencode

    from bitrix24_agent_tools.sandbox.events import form_encode

    auth = {"domain": "demo.bitrix24.test", "member_id": "m1", "application_token": "app-token-123456"}
    install = urlencode(form_encode({"event": "ONAPPINSTALL", "data": {}, "auth": auth})).encode()
    update = urlencode(
        form_encode({"event": "ONCRMDEALUPDATE", "data": {"FIELDS": {"ID": 7}}, "auth": auth})
    ).encode()
    forged = update.replace(b"app-token-123456", b"app-token-000000")
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://my-app.example"
    ) as http:
        codes = [
            (await http.post("/events", content=body, headers=headers)).status_code
            for body in (install, update, forged)
        ]
    print("statuses:", codes)
    return 0 if codes == [200, 200, 403] and not Inbox(STORE / "inbox.sqlite3").pending() else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
