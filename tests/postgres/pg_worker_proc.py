"""A worker process for the PostgreSQL crash test: two offline workers (threads) sharing one PostgreSQL
state."""

from __future__ import annotations

import random
import sys
import threading
import time
from typing import Any

from bitrix24_agent_tools.client import Bitrix24, OAuth, SqliteTokenStore
from bitrix24_agent_tools.events import Event, OfflineWorker

POISON = "33"  # the third deal the test adds


def handler(event: Event, db: Any) -> None:
    if str(event.data.get("FIELDS", {}).get("ID")) == POISON and not poison_fixed(db):
        raise RuntimeError("poison event")
    db.execute(
        "INSERT INTO effects VALUES (%s, %s)", (event.row_id, str(event.data.get("FIELDS", {}).get("ID")))
    )
    time.sleep(random.uniform(0, 0.004))  # widen the window a kill can land in


def poison_fixed(db: Any) -> bool:
    return db.execute("SELECT 1 FROM fixed").fetchone() is not None


def run(name: str, auth: OAuth, dsn: str) -> None:
    worker = OfflineWorker(
        Bitrix24(auth, plan="enterprise"), handler, dsn, limit=7, budget=3, recover_after=2.0, worker_id=name
    )
    while True:
        if worker.run_once().fetched == 0:
            time.sleep(0.02)


if __name__ == "__main__":
    domain, access, refresh, client_id, secret, oauth_server, endpoint, dsn, proc_name, tokens = sys.argv[
        1:11
    ]
    auth = OAuth(
        domain,
        access,
        refresh,
        client_id,
        secret,
        oauth_server=oauth_server,
        client_endpoint=endpoint,
        token_store=SqliteTokenStore(tokens),
    )
    threads = [
        threading.Thread(target=run, args=(f"{proc_name}-w{i}", auth, dsn), daemon=True) for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
