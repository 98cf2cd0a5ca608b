"""Online events at team scale: the inbox and tenant registry on PostgreSQL, shared by handler replicas."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from bitrix24_agent_tools.events import (
    Event,
    EventVerifier,
    InboxConsumer,
    PortalCallback,
    PostgresInbox,
    asgi_app,
    open_inbox,
    open_tenants,
)
from tests.events.test_online import _app_portal, _deal_update_event, _install_body

pytestmark = pytest.mark.postgres


async def test_two_replicas_share_tenants_and_inbox_and_each_event_is_handled_once(pg_dsn: str) -> None:
    portal, app, _ = _app_portal()
    handled: list[str] = []
    lock = threading.Lock()

    def handler(event: Event) -> None:
        with lock:
            handled.append(event.name)

    replicas = [
        asgi_app(
            EventVerifier(open_tenants(pg_dsn), confirm_install=PortalCallback(transport=portal.transport())),
            handler,
            open_inbox(pg_dsn),
        )
        for _ in range(2)
    ]
    headers = {"content-type": "application/x-www-form-urlencoded"}
    a = httpx.AsyncClient(transport=httpx.ASGITransport(app=replicas[0]), base_url="https://app.example")
    b = httpx.AsyncClient(transport=httpx.ASGITransport(app=replicas[1]), base_url="https://app.example")
    async with a, b:
        assert (await a.post("/hook", content=_install_body(portal, app), headers=headers)).status_code == 200
        event = _deal_update_event(portal)
        assert (await b.post("/hook", content=event, headers=headers)).status_code == 200  # installed on A
        forged = event.replace(app.application_token.encode(), b"0" * len(app.application_token))
        assert (await b.post("/hook", content=forged, headers=headers)).status_code == 403
    assert sorted(handled) == ["ONAPPINSTALL", "ONCRMDEALUPDATE"]
    assert open_inbox(pg_dsn).pending() == []


def test_consumers_on_one_postgresql_inbox_never_run_an_event_twice_and_outlive_a_restart(
    pg_dsn: str,
) -> None:
    from tests.pgcluster import restart

    inbox = PostgresInbox(pg_dsn, lease=0.0)  # stored by requests that died at once: all due now
    for i in range(40):
        inbox.put(Event("ONCRMDEALADD", {"FIELDS": {"ID": i}}, {"member_id": "m"}, None))
    seen: list[int] = []
    lock = threading.Lock()

    def handler(event: Event) -> None:
        time.sleep(0.01)
        with lock:
            seen.append(int(event.data["FIELDS"]["ID"]))

    consumers = [InboxConsumer(open_inbox(pg_dsn), handler, retry_in=0.0, lease=2.0) for _ in range(3)]
    threads = [
        threading.Thread(target=c.run_forever, kwargs={"idle": 0.05, "max_backoff": 0.5}) for c in consumers
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(0.1)
        restart(pg_dsn, down_for=1.0)
        deadline = time.monotonic() + 30
        while len(set(seen)) < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(t.is_alive() for t in threads), "a consumer died of a database restart"
    finally:
        for c in consumers:
            c.stop()
        for t in threads:
            t.join(10)
    assert sorted(set(seen)) == list(range(40))
    # an event handled during the restart may have lost its "done" mark: it then runs again (at least once,
    # as the portal's own retries would); nothing is lost
    assert open_inbox(pg_dsn).pending() == []
