"""Crash scenarios for the offline worker, shared by the tests (which assert on them) and benchmarks/worker.py
(which prints them): events produced while worker processes are SIGKILLed at random moments."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bitrix24_agent_tools.client import Bitrix24, NoLimiter, OAuth
from bitrix24_agent_tools.sandbox import Portal

ROOT = Path(__file__).resolve().parents[1]


def _app(portal: Portal, server: Any) -> tuple[dict[str, Any], Any, str]:
    app = portal.register_app()
    tokens = portal.install_app(app)
    endpoint = f"{server.url}/rest/"
    auth = OAuth(
        portal.domain,
        tokens["access_token"],
        tokens["refresh_token"],
        app.client_id,
        app.client_secret,
        oauth_server=f"{server.url}/oauth/token/",
        client_endpoint=endpoint,
    )
    for event in ("ONCRMDEALADD", "ONCRMDEALUPDATE"):
        Bitrix24(auth).call("event.bind", {"event": event, "event_type": "offline"})
    return tokens, app, endpoint


def _changes(writer: Bitrix24, round_: int, adds: int, updates: int) -> None:
    for i in range(adds):
        writer.call("crm.deal.add", {"fields": {"TITLE": f"event source {round_}-{i}"}})
    for i in range(updates):  # repeated changes of the same records
        writer.call(
            "crm.deal.update", {"id": 1 + (round_ + i) % 5, "fields": {"OPPORTUNITY": round_ * 10 + i}}
        )


def _drain(portal: Portal, procs: list[subprocess.Popen[bytes]], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while portal.events.queue and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _figures(
    produced: set[str], effects: dict[str, int], dead: list[str], kills: int, seconds: float
) -> dict[str, Any]:
    return {
        "deliveries": len(produced),
        "kills": kills,
        "lost": len(produced - set(effects) - set(dead)),
        "duplicated": sum(c - 1 for c in effects.values() if c > 1),
        "dead_lettered": len(dead),
        "unexpected": len(set(effects) - produced),
        "seconds": seconds,
    }


def sqlite_crash(tmp: Path, kills: int = 30, seed: int = 11) -> dict[str, Any]:
    """One SQLite worker process, killed ``kills`` times while adds and updates arrive; a poison event
    included."""
    portal = Portal(seed=1)
    started = time.perf_counter()
    with portal.serve() as server:
        tokens, app, endpoint = _app(portal, server)
        state = str(tmp / "worker.sqlite3")
        argv = [
            sys.executable,
            str(ROOT / "tests" / "events" / "crash_worker.py"),
            portal.domain,
            tokens["access_token"],
            tokens["refresh_token"],
            app.client_id,
            app.client_secret,
            f"{server.url}/oauth/token/",
            endpoint,
            state,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
        rng = random.Random(seed)
        for round_ in range(kills):
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _changes(writer, round_, 8, 3)
            time.sleep(rng.uniform(0.2, 0.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        _drain(
            portal, [subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        )
    db = sqlite3.connect(state)
    effects = dict(db.execute("SELECT row_id, COUNT(*) FROM effects GROUP BY row_id").fetchall())
    dead = [r[0] for r in db.execute("SELECT row_id FROM dead_rows").fetchall()]
    figures = _figures(
        {str(r) for r in portal.events.produced_rows}, effects, dead, kills, time.perf_counter() - started
    )
    figures["left_on_portal"] = len(portal.events.queue)
    return figures


def effects_tables(dsn: str) -> None:
    """The tables the PostgreSQL handlers write to: their effects, and a flag that fixes the poison event."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("CREATE TABLE IF NOT EXISTS effects (row_id TEXT, deal_id TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS fixed (x INT)")


def postgres_crash(dsn: str, tmp: Path, rounds: int = 12, seed: int = 5) -> dict[str, Any]:
    """Two processes × two workers on one PostgreSQL state, both processes killed every round; a poison event
    included; then the poison is fixed and two workers replay the DLQ at once."""
    import psycopg

    from bitrix24_agent_tools.events import OfflineWorker
    from tests.postgres.pg_worker_proc import handler

    effects_tables(dsn)
    portal = Portal(seed=1)
    started = time.perf_counter()
    kills = 0
    with portal.serve() as server:
        tokens, app, endpoint = _app(portal, server)

        def argv(name: str) -> list[str]:
            return [
                sys.executable,
                str(ROOT / "tests" / "postgres" / "pg_worker_proc.py"),
                portal.domain,
                tokens["access_token"],
                tokens["refresh_token"],
                app.client_id,
                app.client_secret,
                f"{server.url}/oauth/token/",
                endpoint,
                dsn,
                name,
                str(tmp / f"{name}.tokens"),
            ]

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
        rng = random.Random(seed)
        for round_ in range(rounds):
            procs = [
                subprocess.Popen(argv(f"p{i}"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for i in range(2)
            ]
            _changes(writer, round_, 5, 5)
            time.sleep(rng.uniform(0.3, 0.6))
            for proc in procs:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
        _drain(
            portal,
            [
                subprocess.Popen(argv(f"p{i}"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for i in range(2)
            ],
        )
    seconds = time.perf_counter() - started
    with psycopg.connect(dsn) as db:
        effects = dict(db.execute("SELECT row_id, COUNT(*) FROM effects GROUP BY row_id").fetchall())
        dead = [r[0] for r in db.execute("SELECT row_id FROM b24_worker_dead").fetchall()]
    figures = _figures({str(r) for r in portal.events.produced_rows}, effects, dead, kills, seconds)
    figures["left_on_portal"] = len(portal.events.queue)
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("INSERT INTO fixed VALUES (1)")
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    replayers = [
        OfflineWorker(client, handler, dsn, scope=f"{portal.domain}|{app.client_id}", worker_id=f"r{i}")
        for i in range(2)
    ]
    figures["replayed"] = sum(r.replay() for r in replayers)
    with psycopg.connect(dsn) as db:
        figures["poison_effects_after_replay"] = [
            int(db.execute("SELECT COUNT(*) FROM effects WHERE row_id=%s", (row,)).fetchone()[0])
            for row in dead
        ]
    return figures
