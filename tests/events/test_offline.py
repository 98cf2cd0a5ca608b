"""Offline events: reserve → handle → clear; failures to the DLQ after the budget; nothing lost under
SIGKILL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24, NoLimiter
from bitrix24_agent_tools.events import Event, OfflineWorker, WorkerStopped
from bitrix24_agent_tools.events.offline import AsyncOfflineWorker
from bitrix24_agent_tools.sandbox import Portal

ROOT = Path(__file__).resolve().parents[2]


def _setup(portal: Portal, transport: Any = None) -> tuple[Bitrix24, dict[str, Any], Any]:
    app = portal.register_app()
    tokens = portal.install_app(app)
    auth = portal.app_auth(app, tokens)
    client = Bitrix24(auth, transport=transport or portal.transport())
    client.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"})
    client.call("event.bind", {"event": "ONCRMDEALUPDATE", "event_type": "offline"})
    return client, tokens, app


def _produce(portal: Portal, n: int) -> None:
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    for i in range(n):
        writer.call("crm.deal.add", {"fields": {"TITLE": f"event source {i}"}})


def _update_some(portal: Portal, round_: int) -> None:
    writer = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter())
    for i in range(3):
        writer.call(
            "crm.deal.update", {"id": 1 + (round_ + i) % 5, "fields": {"OPPORTUNITY": round_ * 10 + i}}
        )


def test_worker_handles_then_clears_and_skips_what_is_done(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 12)
    seen: list[str] = []
    worker = OfflineWorker(
        client, lambda event: seen.append(event.data["FIELDS"]["ID"]), tmp_path / "w.sqlite3", limit=5
    )
    totals = [worker.run_once() for _ in range(4)]
    assert [s.fetched for s in totals] == [5, 5, 2, 0]
    assert sorted(map(int, seen)) == list(range(31, 43))
    assert portal.events.queue == {}


def test_repeated_changes_collapse_and_updates_arrive(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    _client, _, _ = _setup(portal)
    writer = Bitrix24(portal.webhook_url, transport=portal.transport())
    for amount in (1, 2, 3):
        writer.call("crm.deal.update", {"id": 4, "fields": {"OPPORTUNITY": amount}})
    assert len(portal.events.queue) == 1  # one row per object change key


def test_failing_events_are_retried_then_dead_lettered_and_replayable(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 3)
    broken = {"33"}

    def handler(event: Event) -> None:
        if str(event.data["FIELDS"]["ID"]) in broken:
            raise RuntimeError("downstream CRM mirror is down")

    worker = OfflineWorker(client, handler, tmp_path / "w.sqlite3", budget=3)
    first = worker.run_once()
    assert (first.handled, first.failed) == (2, 1)  # the poison event does not hold back the ones behind it
    for _ in range(2):
        worker.run_once()
    assert [str(d["event"]["data"]["FIELDS"]["ID"]) for d in worker.state.dead_letters()] == ["33"]
    assert portal.events.queue == {}  # the portal kept nothing; our DLQ has it
    broken.clear()
    assert worker.replay() == 1 and worker.state.dead_letters() == []


def test_a_webhook_gets_wrong_auth_type_and_the_worker_stops_clearly(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    worker = OfflineWorker(
        Bitrix24(portal.webhook_url, transport=portal.transport()), print, tmp_path / "w.sqlite3"
    )
    with pytest.raises(WorkerStopped, match="OAuth application auth"):
        worker.run_once()


def test_parallel_gets_receive_different_rows(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 10)
    a = client.call("event.offline.get", {"clear": 0, "limit": 4}).result
    b = client.call("event.offline.get", {"clear": 0, "limit": 4}).result
    assert a["process_id"] != b["process_id"]
    assert not {e["MESSAGE_ID"] for e in a["events"]} & {e["MESSAGE_ID"] for e in b["events"]}
    again = client.call("event.offline.get", {"clear": 0, "process_id": a["process_id"], "limit": 4}).result
    assert {e["MESSAGE_ID"] for e in again["events"]} == {e["MESSAGE_ID"] for e in a["events"]}


async def test_async_worker_with_an_async_handler(tmp_path: Path) -> None:
    from bitrix24_agent_tools.client import AsyncBitrix24

    portal = Portal(seed=1)
    _client, tokens, app = _setup(portal)
    _produce(portal, 6)
    auth = portal.app_auth(app, tokens)
    seen: list[str] = []

    async def handler(event: Event) -> None:
        seen.append(event.message_id or "")

    worker = AsyncOfflineWorker(
        AsyncBitrix24(auth, transport=portal.async_transport()), handler, tmp_path / "a.sqlite3"
    )
    assert (await worker.run_once()).handled == 6 and len(set(seen)) == 6


def test_sigkill_thirty_times_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    from tests.crash_scenarios import sqlite_crash

    figures = sqlite_crash(tmp_path, kills=30)
    print(f"\nSQLite crash test: {figures}")
    assert figures["kills"] == 30 and figures["left_on_portal"] == 0
    assert figures["lost"] == 0 and figures["duplicated"] == 0 and figures["unexpected"] == 0
    assert figures["dead_lettered"] == 1  # the poison event: kept in the DLQ, not lost
    assert figures["deliveries"] > 240  # adds and repeated updates of the same records


def test_a_full_disk_is_waited_out_and_reported_not_died_of(tmp_path: Any) -> None:
    """The state's sqlite file fails twice (``database or disk is full``): the worker logs it, reports itself
    unhealthy, keeps going, and handles every delivery once the disk has room again."""
    import sqlite3
    import threading
    import time

    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    handled: list[str] = []
    worker = OfflineWorker(client, lambda e: handled.append(str(e.row_id)), tmp_path / "state.sqlite3")
    real = worker.state.open_processes
    failures = iter([True, True])
    seen_unhealthy: list[bool] = []

    def flaky() -> list[str]:
        if next(failures, False):
            seen_unhealthy.append(True)
            raise sqlite3.OperationalError("database or disk is full")
        return real()

    worker.state.open_processes = flaky  # type: ignore[method-assign]
    _produce(portal, 3)
    runner = threading.Thread(
        target=lambda: worker.run_forever(idle=0.05, max_backoff=0.2, install_signals=False)
    )
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while (portal.events.queue or not worker.health["ok"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.is_alive()
    finally:
        worker.stop()
        runner.join(10)
    assert len(seen_unhealthy) == 2 and worker.health["ok"]
    assert sorted(handled) == sorted(str(r) for r in portal.events.produced_rows) and len(handled) == 3


def test_worker_status_says_whether_the_state_is_reachable(tmp_path: Any, capsys: Any) -> None:
    import json

    from bitrix24_agent_tools.cli import main

    assert main(["worker-status", "--state", str(tmp_path / "state.sqlite3")]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "reservations": 0, "dead_letters": 0}
    assert main(["worker-status", "--state", str(tmp_path / "no-such-dir" / "state.sqlite3")]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False
