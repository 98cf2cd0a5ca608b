"""Offline worker: throughput per state backend (events/s, median and range over several runs) and the crash
figures (deliveries, kills, lost, duplicated); PostgreSQL with 1, 2 and 4 workers on one database.
`python -m benchmarks.worker [--runs N] [--no-crash]`"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bitrix24_agent_tools.client import Bitrix24, NoLimiter
from bitrix24_agent_tools.events import OfflineWorker
from bitrix24_agent_tools.sandbox import Portal


def _throughput(state: Any, events: int, workers: int = 1) -> float:
    """Events per second through ``workers`` workers (threads of this process, each its own connection to
    the state) on one in-process portal."""
    import threading

    portal = Portal(seed=1)
    app = portal.register_app()
    tokens = portal.install_app(app)
    client = Bitrix24(
        portal.app_auth(app, tokens),
        transport=portal.transport(),
        limiter=NoLimiter(),
    )
    client.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"})
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    writer.batch([("crm.deal.add", {"fields": {"TITLE": f"d{i}"}}) for i in range(events)])
    pool = [
        OfflineWorker(client, lambda event: None, state, limit=50, worker_id=f"bench{i}")
        for i in range(workers)
    ]
    counts = [0] * workers

    def drain(i: int) -> None:
        while True:
            stats = pool[i].run_once()
            counts[i] += stats.handled
            if stats.fetched == 0:
                break

    start = time.perf_counter()
    threads = [threading.Thread(target=drain, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handled = sum(counts)
    assert handled == events, (handled, events)
    return handled / (time.perf_counter() - start)


def _spread(values: list[float]) -> str:
    return (
        f"{statistics.median(values):,.0f} events/s (min {min(values):,.0f}, max {max(values):,.0f}, "
        f"{len(values)} runs)"
    )


def main(argv: list[str] | None = None, events: int = 2000) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    runs = int(argv[argv.index("--runs") + 1]) if "--runs" in argv else 3
    out: dict[str, Any] = {}
    sqlite_rates = [_throughput(Path(tempfile.mkdtemp()) / "w.sqlite3", events) for _ in range(runs)]
    print(
        f"offline worker, sqlite state:     {_spread(sqlite_rates)}; {events} events, 50 per fetch, "
        "in-process portal"
    )
    out["worker_events_per_s"] = statistics.median(sqlite_rates)
    from tests.pgcluster import available, cluster, fresh_database

    server = cluster() if available() else None
    try:
        dsn = server.__enter__() if server else None
        if dsn:
            pg_rates = [_throughput(fresh_database(dsn), events) for _ in range(runs)]
            print(
                f"offline worker, PostgreSQL state: {_spread(pg_rates)}; same load, local server on loopback"
            )
            out["worker_pg_events_per_s"] = statistics.median(pg_rates)
            for n in (2, 4):  # workers sharing one database (threads here; processes or machines alike)
                rates = [_throughput(fresh_database(dsn), events, workers=n) for _ in range(runs)]
                print(f"offline worker, PostgreSQL state, {n} workers: {_spread(rates)}")
                out[f"worker_pg_{n}_events_per_s"] = statistics.median(rates)
        else:
            print("offline worker, PostgreSQL state: skipped (no PostgreSQL installed)")
        if "--no-crash" not in argv:
            from tests.crash_scenarios import postgres_crash, sqlite_crash

            figures = sqlite_crash(Path(tempfile.mkdtemp()), kills=30)
            print(
                "crash, sqlite (1 worker process):  {deliveries} deliveries, {kills} SIGKILLs, {lost} lost, "
                "{duplicated} duplicated, {dead_lettered} poison dead-lettered, {seconds:.1f}s".format(
                    **figures
                )
            )
            out["crash_sqlite"] = figures
            if dsn:
                figures = postgres_crash(fresh_database(dsn), Path(tempfile.mkdtemp()), rounds=12)
                print(
                    "crash, PostgreSQL (2 processes × 2 workers): {deliveries} deliveries, {kills} SIGKILLs, "
                    "{lost} "
                    "lost, {duplicated} duplicated, {dead_lettered} poison dead-lettered and replayed "
                    "{replayed}× "
                    "by two replayers, {seconds:.1f}s".format(**figures)
                )
                out["crash_postgres"] = figures
    finally:
        if server:
            server.__exit__(None, None, None)
    return out


if __name__ == "__main__":
    main()
