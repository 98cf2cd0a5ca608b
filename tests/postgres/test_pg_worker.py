"""The offline worker on a shared PostgreSQL state: exactly once per delivery across workers, processes and kills."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bitrix24_agent_tools.client import Bitrix24, NoLimiter, OAuth
from bitrix24_agent_tools.events import Event, OfflineWorker
from bitrix24_agent_tools.sandbox import Portal
from tests.events.test_offline import _setup

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.postgres


def _effects_table(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("CREATE TABLE IF NOT EXISTS effects (row_id TEXT, deal_id TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS fixed (x INT)")


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
        rows = db.execute("SELECT deal_id, COUNT(*) FROM effects GROUP BY deal_id ORDER BY deal_id").fetchall()
    assert rows == [("31", 1), ("32", 1), ("33", 1)] and portal.events.queue == {}


def test_two_workers_on_one_database_handle_each_delivery_once(pg_dsn: str) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _effects_table(pg_dsn)
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    for amount in range(6):
        writer.call("crm.deal.update", {"id": 1 + amount % 3, "fields": {"OPPORTUNITY": amount}})
        if amount == 2:
            OfflineWorker(client, lambda e, db: db.execute("INSERT INTO effects VALUES (%s, %s)", (e.row_id, "x")),
                          pg_dsn, worker_id="early").run_once()
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
    assert {r for r, _ in counts} == {str(r) for r in portal.events.produced_rows}  # every delivery, the repeats too
    assert all(c == 1 for _, c in counts) and len(calls) == len(set(calls))


def test_four_workers_in_two_processes_survive_repeated_kills(pg_dsn: str, tmp_path: Path) -> None:
    _effects_table(pg_dsn)
    portal = Portal(seed=1)
    with portal.serve() as server:
        app = portal.register_app()
        tokens = portal.install_app(app)
        endpoint = f"{server.url}/rest/"
        auth = OAuth(portal.domain, tokens["access_token"], tokens["refresh_token"], app.client_id, app.client_secret,
                     oauth_server=f"{server.url}/oauth/token/", client_endpoint=endpoint)
        binder = Bitrix24(auth)
        binder.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"})
        binder.call("event.bind", {"event": "ONCRMDEALUPDATE", "event_type": "offline"})
        writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())

        def argv(name: str) -> list[str]:
            return [sys.executable, str(ROOT / "tests" / "postgres" / "pg_worker_proc.py"), portal.domain,
                    tokens["access_token"], tokens["refresh_token"], app.client_id, app.client_secret,
                    f"{server.url}/oauth/token/", endpoint, pg_dsn, name, str(tmp_path / f"{name}.tokens")]

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        rng = random.Random(5)
        kills = 0
        for round_ in range(12):
            procs = [subprocess.Popen(argv(f"p{i}"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for i in range(2)]
            for i in range(5):
                writer.call("crm.deal.add", {"fields": {"TITLE": f"pg kill {round_}-{i}"}})
                writer.call("crm.deal.update", {"id": 1 + (round_ + i) % 4, "fields": {"OPPORTUNITY": round_ * 10 + i}})
            time.sleep(rng.uniform(0.3, 0.6))
            for proc in procs:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
        final = [subprocess.Popen(argv(f"p{i}"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for i in range(2)]
        deadline = time.monotonic() + 90
        while portal.events.queue and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
        for proc in final:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert kills == 24
    assert portal.events.queue == {}
    scope = f"{portal.domain}|{app.client_id}"
    with psycopg.connect(pg_dsn) as db:
        counts = dict(db.execute("SELECT row_id, COUNT(*) FROM effects GROUP BY row_id").fetchall())
        dead = [r[0] for r in db.execute("SELECT row_id FROM b24_worker_dead WHERE scope LIKE %s", (scope + "%",))]
    produced = {str(r) for r in portal.events.produced_rows}
    assert set(counts) | set(dead) == produced  # nothing lost: handled, or dead-lettered (the poison event)
    assert all(c == 1 for c in counts.values())  # nothing duplicated
    assert len(dead) == 1 and dead[0] not in counts
    # The poison is fixed: replay from two workers at once handles it exactly once.
    with psycopg.connect(pg_dsn, autocommit=True) as db:
        db.execute("INSERT INTO fixed VALUES (1)")
    from tests.postgres.pg_worker_proc import handler

    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    replayers = [OfflineWorker(client, handler, pg_dsn, scope=f"{portal.domain}|{app.client_id}", worker_id=f"r{i}")
                 for i in range(2)]
    assert sum(r.replay() for r in replayers) == 1
    with psycopg.connect(pg_dsn) as db:
        assert db.execute("SELECT COUNT(*) FROM effects WHERE row_id=%s", (dead[0],)).fetchone()[0] == 1
    print(f"\nPostgreSQL: {len(produced)} deliveries, {kills} SIGKILLs of 2 processes × 2 workers, "
          f"0 lost, 0 duplicated, 1 poison dead-lettered and replayed once")
