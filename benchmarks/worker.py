"""Offline-worker throughput: events handled per second, in-process sandbox. `python -m benchmarks.worker`"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bitrix24_agent_tools.client import Bitrix24, NoLimiter, OAuth
from bitrix24_agent_tools.events import OfflineWorker
from bitrix24_agent_tools.sandbox import Portal


def main(argv: list[str] | None = None, events: int = 2000) -> dict[str, float]:
    portal = Portal(seed=1)
    app = portal.register_app()
    tokens = portal.install_app(app)
    client = Bitrix24(OAuth(portal.domain, tokens["access_token"], tokens["refresh_token"], app.client_id, app.client_secret,
                            oauth_server=portal.oauth_server, client_endpoint=tokens["client_endpoint"]),
                      transport=portal.transport(), limiter=NoLimiter())
    client.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"})
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    writer.batch([("crm.deal.add", {"fields": {"TITLE": f"d{i}"}}) for i in range(events)])
    worker = OfflineWorker(client, lambda event: None, Path(tempfile.mkdtemp()) / "w.sqlite3", limit=50)
    start = time.perf_counter()
    handled = 0
    while True:
        stats = worker.run_once()
        handled += stats.handled
        if stats.fetched == 0:
            break
    seconds = time.perf_counter() - start
    print(f"offline worker: {handled} events in {seconds:.2f}s = {handled / seconds:.0f} events/s "
          f"(durable sqlite state, 50 per fetch, transport in-process)")
    return {"worker_events_per_s": handled / seconds}


if __name__ == "__main__":
    main()
