"""The sandbox spends no time a portal would not: no Nagle delay on keep-alive answers, and an open-ended
``>ID`` cursor page reads its rows, not the rest of the table (issue: benchmarks measured the sandbox)."""

from __future__ import annotations

import time
from collections import UserDict
from typing import Any

import httpx

from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.sandbox.query import id_window


def test_small_answers_on_a_keep_alive_connection_are_not_held_back() -> None:
    """30 small requests on one connection: with Nagle's algorithm each waited ~40 ms for a delayed ACK
    (1.3 s measured); without it they take a few ms each."""
    portal = Portal(seed=1)
    with portal.serve() as server, httpx.Client() as http:
        http.post(server.webhook_url + "server.time")
        started = time.perf_counter()
        for _ in range(30):
            assert http.post(server.webhook_url + "server.time").status_code == 200
        assert time.perf_counter() - started < 0.6


def test_an_open_ended_cursor_page_reads_only_its_rows() -> None:
    class Counted(UserDict[int, Any]):
        reads = 0

        def __getitem__(self, key: int) -> Any:
            Counted.reads += 1
            return super().__getitem__(key)

    store = Counted({i: {"ID": str(i)} for i in range(1, 200_001)})
    Counted.reads = 0
    window, rest = id_window(store, {">ID": 100})
    assert len(window) == 199_900 and rest == {} and Counted.reads == 0
    page = window[:50]
    assert [r["ID"] for r in page][:2] == ["101", "102"] and Counted.reads == 50
    assert next(iter(reversed(window)))["ID"] == "200000"
