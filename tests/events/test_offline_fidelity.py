"""The offline queue as the server implements it, and the worker on top of it.

Sources: Bitrix core rest module (public mirror avshatalov48/bitrix-core-business), ``lib/api/event.php``
(``eventOfflineGet``/``Clear``/``Error``/``List``) and ``lib/eventoffline.php`` (``callEvent``,
``markEvents``, ``clearEvents``, ``markError``); docs ``api-reference/events/offline-events.md``. protocol.md
§7.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bitrix24_agent_tools.client import AsyncBitrix24, Bitrix24, Bitrix24Error, NoLimiter
from bitrix24_agent_tools.events import Event, OfflineWorker
from bitrix24_agent_tools.events.offline import AsyncOfflineWorker
from bitrix24_agent_tools.sandbox import Portal
from tests.events.test_offline import _produce, _setup


def _update(portal: Portal, deal_id: int, amount: int) -> None:
    Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=NoLimiter()).call(
        "crm.deal.update", {"id": deal_id, "fields": {"OPPORTUNITY": amount}}
    )


def test_get_with_a_process_id_returns_only_rows_reserved_under_it(tmp_path: Path) -> None:
    """eventOfflineGet: markEvents runs only when no process_id is sent."""
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 4)
    mine = client.call("event.offline.get", {"clear": 0, "process_id": "a" * 32}).result
    assert mine == {"process_id": "a" * 32, "events": []}  # a client-chosen id reserves nothing
    fresh = client.call("event.offline.get", {"clear": 0, "limit": 3}).result
    assert len(fresh["process_id"]) == 32 and len(fresh["events"]) == 3
    again = client.call("event.offline.get", {"clear": 0, "process_id": fresh["process_id"]}).result
    assert [e["ID"] for e in again["events"]] == [e["ID"] for e in fresh["events"]]


def test_keys_are_lower_cased_and_clear_is_read_with_intval() -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 3)
    kept = client.call("event.offline.get", {"CLEAR": "0", "LIMIT": "1"}).result
    assert len(kept["events"]) == 1 and kept["process_id"]  # CLEAR=0 honoured: reserved, returned with an id
    gone = client.call("event.offline.get", {"limit": 1}).result  # clear absent = 1
    assert gone["process_id"] is None and len(gone["events"]) == 1
    assert len(portal.events.queue) == 2


def test_message_id_is_the_same_for_every_change_and_a_reserved_row_is_not_merged_into() -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _update(portal, 4, 1)
    _update(portal, 4, 2)  # collapses into the waiting row
    first = client.call("event.offline.get", {"clear": 0}).result["events"]
    assert len(first) == 1
    _update(portal, 4, 3)  # the row is reserved now: a new row, same MESSAGE_ID
    rows = list(portal.events.queue.values())
    assert (
        len(rows) == 2 and rows[0]["MESSAGE_ID"] == rows[1]["MESSAGE_ID"] and rows[0]["ID"] != rows[1]["ID"]
    )


def test_clear_needs_a_process_id_and_takes_ids() -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 3)
    got = client.call("event.offline.get", {"clear": 0}).result
    with pytest.raises(Bitrix24Error):
        client.call("event.offline.clear", {"id": [got["events"][0]["ID"]]})
    client.call("event.offline.clear", {"process_id": got["process_id"], "id": [got["events"][0]["ID"]]})
    assert len(portal.events.queue) == 2


def test_every_later_change_of_a_record_is_handled(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    seen: list[Any] = []
    worker = OfflineWorker(client, lambda e: seen.append(e.data["FIELDS"]["ID"]), tmp_path / "w.sqlite3")
    for amount in (10, 20, 30):
        _update(portal, 4, amount)
        assert worker.run_once().handled == 1
    assert seen == [4, 4, 4] and portal.events.queue == {}


def test_a_failure_count_belongs_to_one_delivery(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    failures = {"left": 1}

    def flaky(event: Event) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("once")

    worker = OfflineWorker(client, flaky, tmp_path / "w.sqlite3", budget=2)
    _update(portal, 4, 10)
    assert worker.run_once().failed == 1 and worker.run_once().handled == 1
    failures["left"] = 1
    _update(portal, 4, 20)  # the same record again: its own budget, not the earlier delivery's
    assert worker.run_once().failed == 1 and worker.run_once().handled == 1
    assert worker.state.dead_letters() == []


def test_replaying_the_dead_letters_twice_handles_each_once(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 2)
    broken = [True]
    calls: list[Any] = []

    def handler(event: Event) -> None:
        if broken[0]:
            raise RuntimeError("down")
        calls.append(event.data["FIELDS"]["ID"])

    worker = OfflineWorker(client, handler, tmp_path / "w.sqlite3", budget=1)
    worker.run_once()
    assert len(worker.state.dead_letters()) == 2 and portal.events.queue == {}
    broken[0] = False
    other = OfflineWorker(client, handler, tmp_path / "w.sqlite3", budget=1)
    assert worker.replay() + other.replay() == 2
    assert sorted(calls) == [31, 32]


def test_two_workers_on_one_state_file_run_each_handler_once(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 4)
    calls: list[Any] = []
    lock = threading.Lock()

    def slow(event: Event) -> None:
        time.sleep(0.15)
        with lock:
            calls.append(event.data["FIELDS"]["ID"])

    a = OfflineWorker(client, slow, tmp_path / "w.sqlite3")
    b = OfflineWorker(client, slow, tmp_path / "w.sqlite3")
    first = threading.Thread(target=a.run_once)
    first.start()
    time.sleep(0.05)  # a has reserved and stored its process id; b takes the same rows from the shared state
    second = threading.Thread(target=b.run_once)
    second.start()
    first.join()
    second.join()
    a.run_once()
    assert sorted(calls) == [31, 32, 33, 34] and portal.events.queue == {}


async def test_a_cancelled_async_run_leaves_no_transaction_open(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    _client, tokens, app = _setup(portal)
    _produce(portal, 2)
    auth = portal.app_auth(app, tokens)
    hang = [True]

    async def handler(event: Event) -> None:
        if hang[0]:
            await asyncio.sleep(30)

    worker = AsyncOfflineWorker(
        AsyncBitrix24(auth, transport=portal.async_transport()), handler, tmp_path / "a.sqlite3"
    )
    task = asyncio.create_task(worker.run_once())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not worker.state.db.in_transaction
    hang[0] = False
    assert (await worker.run_once()).handled == 2 and portal.events.queue == {}


def test_rows_reserved_under_a_lost_process_id_are_adopted(tmp_path: Path) -> None:
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 3)
    client.call("event.offline.get", {"clear": 0})  # a worker reserved these and died before storing the id
    seen: list[Any] = []
    worker = OfflineWorker(
        client, lambda e: seen.append(e.data["FIELDS"]["ID"]), tmp_path / "new.sqlite3", recover_after=0.0
    )
    worker.run_once()  # first sighting
    worker.run_once()  # still reserved: adopted
    assert sorted(seen) == [31, 32, 33] and portal.events.queue == {}


def test_stranded_rows_are_adopted_under_steady_traffic(tmp_path: Path) -> None:
    """Every cycle fetches new rows, yet the rows a lost worker reserved are adopted too."""
    portal = Portal(seed=1)
    client, _, _ = _setup(portal)
    _produce(portal, 3)
    client.call("event.offline.get", {"clear": 0})  # reserved by a worker that died before storing the id
    seen: list[Any] = []
    worker = OfflineWorker(
        client, lambda e: seen.append(e.data["FIELDS"]["ID"]), tmp_path / "busy.sqlite3", recover_after=0.0
    )
    for _ in range(3):
        _produce(portal, 2)  # steady traffic: no cycle comes back empty
        assert worker.run_once().fetched > 0
    assert {31, 32, 33} <= set(seen) and portal.events.queue == {}
