"""The sandbox processes reads side by side, as a portal does, and a write alone: a slow list does not hold up
another list, and a write waits until the reads it would change under them are done."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.sandbox.portal import ReadWriteLock, _reads_only
from bitrix24_agent_tools.sandbox.registry import METHODS

LIVENESS = 10.0  # seconds a thread gets to reach a point it must reach (never a speed figure)


Held = tuple[threading.Event, threading.Event, dict[str, bool]]


@pytest.fixture
def held_list() -> Iterator[Held]:
    """crm.deal.list blocks (once) until released: (entered, release, {"gave_up": it stopped waiting})."""
    entered, release = threading.Event(), threading.Event()
    scope, real = METHODS["crm.deal.list"]
    calls = {"n": 0}
    state = {"gave_up": False}

    def slow(portal: Portal, params: dict[str, Any], caller: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            entered.set()
            state["gave_up"] = not release.wait(LIVENESS)
        return real(portal, params, caller)

    METHODS["crm.deal.list"] = (scope, slow)
    try:
        yield entered, release, state
    finally:
        METHODS["crm.deal.list"] = (scope, real)
        release.set()


def _post(portal: Portal, method: str, body: bytes) -> int:
    status, _, _, _ = portal.handle(
        "POST", f"{portal.webhook_url}{method}.json", {"content-type": "application/json"}, body
    )
    return status


def test_a_read_runs_while_another_read_is_still_being_processed(held_list: Held) -> None:
    portal = Portal(seed=1)
    entered, release, state = held_list
    first = threading.Thread(target=_post, args=(portal, "crm.deal.list", b"{}"))
    first.start()
    assert entered.wait(LIVENESS)
    # The first list is inside the portal; a second read gets its answer meanwhile.
    assert _post(portal, "crm.contact.list", b"{}") == 200
    assert not state["gave_up"]  # answered while the first list was still inside, waiting
    release.set()
    first.join(LIVENESS)
    assert not first.is_alive()


def test_a_write_waits_for_the_reads_in_progress(held_list: Held) -> None:
    portal = Portal(seed=1)
    entered, release, _ = held_list
    reader = threading.Thread(target=_post, args=(portal, "crm.deal.list", b"{}"))
    reader.start()
    assert entered.wait(LIVENESS)
    done = threading.Event()

    def write() -> None:
        _post(portal, "crm.deal.update", b'{"id": 2, "fields": {"TITLE": "renamed"}}')
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.3)  # still held back by the read in progress (a wait, not a speed figure)
    assert portal.state["deal"][2]["TITLE"] != "renamed"
    release.set()
    assert done.wait(LIVENESS)
    assert portal.state["deal"][2]["TITLE"] == "renamed"
    reader.join(LIVENESS)


def test_a_waiting_writer_holds_back_new_readers() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    first_in, writer_waiting, late_reader_done = threading.Event(), threading.Event(), threading.Event()
    release_first = threading.Event()

    def first_reader() -> None:
        with lock.reading():
            first_in.set()
            assert release_first.wait(LIVENESS)
            order.append("first read")

    def writer() -> None:
        writer_waiting.set()
        with lock.writing():
            order.append("write")

    def late_reader() -> None:
        with lock.reading():
            order.append("late read")
        late_reader_done.set()

    threads = [threading.Thread(target=first_reader)]
    threads[0].start()
    assert first_in.wait(LIVENESS)
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    assert writer_waiting.wait(LIVENESS)
    while not lock._waiting:  # the writer has queued
        threading.Event().wait(0.01)
    threads.append(threading.Thread(target=late_reader))
    threads[2].start()
    release_first.set()
    assert late_reader_done.wait(LIVENESS)
    for t in threads:
        t.join(LIVENESS)
    assert order == ["first read", "write", "late read"]


@pytest.mark.parametrize(
    ("method", "params", "shared"),
    [
        ("crm.deal.list", {}, True),
        ("crm.deal.update", {"id": 1}, False),
        ("event.offline.get", {}, False),  # deletes what it returns unless clear=0
        ("event.offline.get", {"clear": 0}, False),  # and reserves the rows under a process_id even then
        ("batch", {"cmd": {"a": "crm.deal.list?start=-1", "b": "crm.contact.list"}}, True),
        ("batch", {"cmd": {"a": "crm.deal.list", "b": "crm.deal.add?fields[TITLE]=x"}}, False),
        ("vendor.unknown.get", {}, False),  # not in the catalog: runs alone
        ("batch", {"cmd": {"a": "crm.deal.list", "b": "vendor.unknown.get"}}, False),  # whatever its name
    ],
)
def test_what_counts_as_a_read(method: str, params: dict[str, Any], shared: bool) -> None:
    assert _reads_only(method, params) is shared
