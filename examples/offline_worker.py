"""React to CRM changes without losing any: the offline-queue worker against a sandbox portal.

python examples/offline_worker.py
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from bitrix24_agent_tools.client import Bitrix24, OAuth
from bitrix24_agent_tools.events import Event, OfflineWorker
from bitrix24_agent_tools.sandbox import Portal


def on_event(event: Event, db: sqlite3.Connection) -> None:
    # Runs inside the worker's transaction: this row and the "done" mark commit together.
    db.execute("CREATE TABLE IF NOT EXISTS seen (message_id TEXT, name TEXT, deal TEXT)")
    db.execute(
        "INSERT INTO seen VALUES (?,?,?)", (event.message_id, event.name, str(event.data["FIELDS"]["ID"]))
    )


def main() -> int:
    portal = Portal(seed=1)
    app = portal.register_app()
    tokens = portal.install_app(app)
    client = Bitrix24(
        OAuth(
            portal.domain,
            tokens["access_token"],
            tokens["refresh_token"],
            app.client_id,
            app.client_secret,
            oauth_server=portal.oauth_server,
            client_endpoint=tokens["client_endpoint"],
        ),
        transport=portal.transport(),
    )
    client.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"})
    someone = Bitrix24(portal.webhook_url, transport=portal.transport())
    for title in ("Warehouse audit", "Annual license", "Training"):
        someone.call("crm.deal.add", {"fields": {"TITLE": title}})
    state = Path(tempfile.mkdtemp()) / "worker.sqlite3"
    worker = OfflineWorker(client, on_event, state)
    stats = worker.run_once()
    print(f"fetched {stats.fetched}, handled {stats.handled}, cleared {stats.cleared}")
    rows = sqlite3.connect(state).execute("SELECT name, deal FROM seen").fetchall()
    print("handled:", rows)
    return 0 if stats.handled == 3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
