"""A worker process for the crash test: handles offline events, recording each effect in its own state DB."""

from __future__ import annotations

import random
import sqlite3
import sys
import time

from bitrix24_agent_tools.client import Bitrix24, OAuth, SqliteTokenStore
from bitrix24_agent_tools.events import Event, OfflineWorker

POISON = "35"  # one deal whose events always fail: dead-lettered, never lost


def handler(event: Event, db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS effects (row_id TEXT, deal_id TEXT)")
    if str(event.data.get("FIELDS", {}).get("ID")) == POISON:
        raise RuntimeError("poison event")
    db.execute(
        "INSERT INTO effects VALUES (?, ?)", (event.row_id, str(event.data.get("FIELDS", {}).get("ID")))
    )
    time.sleep(random.uniform(0, 0.004))  # widen the window a kill can land in


if __name__ == "__main__":
    domain, access, refresh, client_id, secret, oauth_server, endpoint, state = sys.argv[1:9]
    auth = OAuth(
        domain,
        access,
        refresh,
        client_id,
        secret,
        oauth_server=oauth_server,
        client_endpoint=endpoint,
        token_store=SqliteTokenStore(state + ".tokens"),
    )
    worker = OfflineWorker(
        Bitrix24(auth, plan="enterprise"), handler, state, limit=7, budget=3, recover_after=1.0
    )
    while True:
        if worker.run_once().fetched == 0:
            time.sleep(0.02)
