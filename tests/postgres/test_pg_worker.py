"""The offline worker on a shared PostgreSQL state: exactly once per delivery across workers, processes and
kills."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bitrix24_agent_tools.client import Bitrix24, NoLimiter
from bitrix24_agent_tools.events import Event, OfflineWorker
from bitrix24_agent_tools.sandbox import Portal
from tests.crash_scenarios import effects_tables as _effects_table
from tests.events.test_offline import _setup

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


def test_the_handler_shares_the_transaction_with_the_done_mark(pg_dsn: str) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _effects_table(pg_dsn)
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    for i in range(3):
        writer.call("crm.deal.add", {"fields": {"TITLE": f"pg {i}"}})
    fail_once = {"32"}

    def handler(event: Event, db: Any) -> None:
        deal = str(event.data["FIELDS"]["ID"])
        db.execute("INSERT INTO effects VALUES (%s, %s)", (event.row_id, deal))
        if deal in fail_once:
            fail_once.clear()
            raise RuntimeError("after the write: must roll back with it")

    worker = OfflineWorker(client, handler, pg_dsn, worker_id="a")
    assert (worker.run_once().handled, worker.run_once().handled) == (2, 1)
    with psycopg.connect(pg_dsn) as db:
        rows = db.execute(
            "SELECT deal_id, COUNT(*) FROM effects GROUP BY deal_id ORDER BY deal_id"
        ).fetchall()
    assert rows == [("31", 1), ("32", 1), ("33", 1)] and portal.events.queue == {}


def test_two_workers_on_one_database_handle_each_delivery_once(pg_dsn: str) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _effects_table(pg_dsn)
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    for amount in range(6):
        writer.call("crm.deal.update", {"id": 1 + amount % 3, "fields": {"OPPORTUNITY": amount}})
        if amount == 2:
            OfflineWorker(
                client,
                lambda e, db: db.execute("INSERT INTO effects VALUES (%s, %s)", (e.row_id, "x")),
                pg_dsn,
                worker_id="early",
            ).run_once()
    calls: list[str] = []
    lock = threading.Lock()

    def handler(event: Event, db: Any) -> None:
        time.sleep(0.05)
        with lock:
            calls.append(str(event.row_id))
        db.execute("INSERT INTO effects VALUES (%s, %s)", (event.row_id, "y"))

    workers = [OfflineWorker(client, handler, pg_dsn, worker_id=f"w{i}") for i in range(2)]
    threads = [threading.Thread(target=w.run_once) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(pg_dsn) as db:
        counts = db.execute("SELECT row_id, COUNT(*) FROM effects GROUP BY row_id").fetchall()
    assert portal.events.queue == {}
    assert {r for r, _ in counts} == {
        str(r) for r in portal.events.produced_rows
    }  # every delivery, the repeats too
    assert all(c == 1 for _, c in counts) and len(calls) == len(set(calls))


def test_four_workers_in_two_processes_survive_repeated_kills(pg_dsn: str, tmp_path: Path) -> None:
    from tests.crash_scenarios import postgres_crash

    figures = postgres_crash(pg_dsn, tmp_path, rounds=12)
    print(f"\nPostgreSQL crash test: {figures}")
    assert figures["kills"] == 24 and figures["left_on_portal"] == 0
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["unexpected"] == 0
    assert figures["dead_lettered"] == 1 and figures["replayed"] == 1  # two replayers, one run
    assert figures["poison_effects_after_replay"] == [1]


def test_a_worker_waits_out_a_postgresql_restart_and_loses_nothing(pg_dsn: str) -> None:
    """PostgreSQL is killed and restarted under a running worker: the worker reports itself unhealthy,
    reconnects by itself, and every delivery — before, during and after — is handled exactly once."""
    from tests.pgcluster import restart

    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _effects_table(pg_dsn)
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())

    def handler(event: Event, db: Any) -> None:
        db.execute("INSERT INTO effects VALUES (%s, %s)", (event.row_id, "x"))

    worker = OfflineWorker(client, handler, pg_dsn, worker_id="survivor")
    runner = threading.Thread(
        target=lambda: worker.run_forever(idle=0.05, max_backoff=0.5, install_signals=False)
    )
    runner.start()
    try:
        for i in range(3):
            writer.call("crm.deal.add", {"fields": {"TITLE": f"before {i}"}})
        deadline = time.monotonic() + 20
        while portal.events.queue and time.monotonic() < deadline:
            time.sleep(0.05)
        restart(pg_dsn, down_for=1.5)
        for i in range(3):
            writer.call("crm.deal.add", {"fields": {"TITLE": f"after {i}"}})
        deadline = time.monotonic() + 30
        while (portal.events.queue or not worker.health["ok"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.is_alive(), "the worker died of a database restart"
    finally:
        worker.stop()
        runner.join(10)
    with psycopg.connect(pg_dsn) as db:
        counts = dict(db.execute("SELECT row_id, COUNT(*) FROM effects GROUP BY row_id").fetchall())
    assert portal.events.queue == {}
    assert set(counts) == {str(r) for r in portal.events.produced_rows} and len(counts) >= 6
    assert all(c == 1 for c in counts.values())


def test_a_delivery_costs_three_round_trips_on_postgresql(pg_dsn: str) -> None:
    """Per delivery the worker talks to PostgreSQL three times (issue #34): BEGIN with the delivery's advisory
    lock, one look at the done and dead tables, and the done mark with COMMIT (it was seven: BEGIN, lock,
    done?, dead?, insert, delete, COMMIT). Still exactly once: a second pass handles nothing."""
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    for i in range(40):
        writer.call("crm.deal.add", {"fields": {"TITLE": f"rt {i}"}})
    seen: list[str] = []
    worker = OfflineWorker(client, lambda event: seen.append(str(event.row_id)), pg_dsn, worker_id="rt")
    db = worker.state.db
    sent: list[str] = []
    real = db.execute

    def counting(query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query)[:60])
        return real(query, *args, **kwargs)

    db.execute = counting  # type: ignore[method-assign]
    stats = worker.run_once()
    assert stats.handled == 40 == len(set(seen))
    per_delivery = len(sent) / 40
    assert per_delivery <= 3.2, (per_delivery, sent[:12])
    assert worker.run_once().handled == 0 and len(seen) == 40
