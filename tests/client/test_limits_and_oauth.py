"""Staying under the portal's rate limit, the operating limit, and one OAuth refresh for many callers."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bitrix24_agent_tools.client import (
    AsyncBitrix24,
    Bitrix24,
    LeakyBucketLimiter,
    MemoryTokenStore,
    NoLimiter,
    OAuth,
    RateLimited,
    RatePlan,
    ReauthorizationRequired,
    RetryPolicy,
    SqliteTokenStore,
    TokenExpired,
)
from bitrix24_agent_tools.sandbox import Portal
from tests.helpers import FakeClock


def test_a_500_call_burst_never_sees_query_limit_exceeded(clock: FakeClock) -> None:
    portal = Portal(seed=1, rate_limit="standard", clock=clock)
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    for i in range(500):
        client.call("crm.deal.get", {"id": 1 + i % 30})
    assert portal.rejected["QUERY_LIMIT_EXCEEDED"] == 0
    assert len(portal.requests) == 500
    # 50 fit the bucket at once, the other 450 drain at 2/s: the client waited about 225 s of (fake) time.
    assert 220 <= clock.slept <= 230


def test_without_the_limiter_the_portal_refuses_and_retries_recover(clock: FakeClock) -> None:
    portal = Portal(seed=1, rate_limit="standard", clock=clock)
    client = Bitrix24(
        portal.webhook_url,
        transport=portal.transport(),
        limiter=NoLimiter(),
        clock=clock,
        sleep=clock.sleep,
        retry=RetryPolicy(attempts=20, base=0.5, cap=5),
    )
    for _ in range(80):
        client.call("crm.deal.get", {"id": 1})
    assert portal.rejected["QUERY_LIMIT_EXCEEDED"] > 0  # the portal really enforces the plan…
    assert len([r for r in portal.requests if r.status == 200]) == 80  # …and every call still succeeded


def test_the_enterprise_plan_allows_a_bigger_burst(clock: FakeClock) -> None:
    limiter = LeakyBucketLimiter.for_plan(RatePlan.enterprise(), clock=clock)
    waits = [limiter.acquire("p") for _ in range(260)]
    assert waits[:250] == [0.0] * 250 and waits[250] > 0
    assert limiter.acquire("other-portal") == 0.0  # buckets are per portal


def test_operating_limit_pauses_the_method_and_the_call_completes(clock: FakeClock) -> None:
    from bitrix24_agent_tools.sandbox import CostModel

    portal = Portal(seed=1, clock=clock, operating_limit=1.0, cost_model=CostModel(per_item=0.01))
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), clock=clock, sleep=clock.sleep)
    for _ in range(8):  # each list of 30 costs 0.3 s of operating time: the 5th call would be blocked
        assert len(client.call("crm.deal.list").result) == 30
    assert clock.slept >= 500  # it waited for the 10-minute window rather than failing


def _oauth_portal(clock: FakeClock, lifetime: float = 3600) -> tuple[Portal, dict[str, object], object]:
    portal = Portal(seed=1, clock=clock)
    app = portal.register_app(access_lifetime=lifetime)
    tokens = portal.install_app(app)
    return portal, tokens, app


def _oauth(portal: Portal, tokens: dict[str, object], app: object, store: object = None) -> OAuth:
    return portal.app_auth(app, tokens, token_store=store)  # type: ignore[arg-type]


def test_fifty_threads_on_an_expired_token_cause_exactly_one_refresh(clock: FakeClock) -> None:
    portal, tokens, app = _oauth_portal(clock)
    store = MemoryTokenStore()
    client = Bitrix24(
        _oauth(portal, tokens, app, store), transport=portal.transport(), clock=clock, sleep=clock.sleep
    )
    client.call("profile")
    portal.expire_all_tokens()
    barrier = threading.Barrier(50)

    def work(i: int) -> str:
        barrier.wait()
        return str(client.call("crm.deal.get", {"id": 1 + i % 30}).result["ID"])

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(work, range(50)))
    assert len(results) == 50
    refreshes = [r for r in portal.requests if r.method == "oauth.token" and r.status == 200]
    assert len(refreshes) == 1
    assert store.load(client.auth.store_key).access_token != tokens["access_token"]  # type: ignore[union-attr]


async def test_fifty_tasks_on_an_expired_token_cause_exactly_one_refresh(clock: FakeClock) -> None:
    portal, tokens, app = _oauth_portal(clock)
    client = AsyncBitrix24(
        _oauth(portal, tokens, app), transport=portal.async_transport(), clock=clock, sleep=clock.asleep
    )
    portal.expire_all_tokens()
    results = await asyncio.gather(*(client.call("crm.deal.get", {"id": 1 + i % 30}) for i in range(50)))
    assert len(results) == 50
    assert len([r for r in portal.requests if r.method == "oauth.token"]) == 1


def test_tokens_survive_a_restart_in_sqlite(tmp_path: object, clock: FakeClock) -> None:
    portal, tokens, app = _oauth_portal(clock)
    path = f"{tmp_path}/tokens.sqlite3"
    first = Bitrix24(
        _oauth(portal, tokens, app, SqliteTokenStore(path)),
        transport=portal.transport(),
        clock=clock,
        sleep=clock.sleep,
    )
    portal.expire_all_tokens()
    first.call("profile")
    # A new process starts with the old (now dead) tokens in its config; the store has the fresh ones.
    second = Bitrix24(
        _oauth(portal, tokens, app, SqliteTokenStore(path)),
        transport=portal.transport(),
        clock=clock,
        sleep=clock.sleep,
    )
    assert second.call("profile").result["ID"] == "1"
    assert len([r for r in portal.requests if r.method == "oauth.token"]) == 1


def test_a_dead_refresh_token_asks_to_reauthorize(clock: FakeClock) -> None:
    portal, tokens, app = _oauth_portal(clock)
    portal.refresh_tokens.clear()  # revoked
    client = Bitrix24(
        _oauth(portal, tokens, app), transport=portal.transport(), clock=clock, sleep=clock.sleep
    )
    portal.expire_all_tokens()
    with pytest.raises(ReauthorizationRequired) as info:
        client.call("profile")
    assert "re-authorize" in str(info.value) or "reinstall" in str(info.value)


def test_webhooks_never_refresh(client: Bitrix24, portal: Portal) -> None:
    portal.faults.fail_next(1, "expired_token", 401)
    with pytest.raises(TokenExpired):
        client.call("profile")


def test_rate_limited_error_is_retryable_and_hinted() -> None:
    err = RateLimited("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
    assert err.retryable and "slow down" in err.hint


def test_two_applications_on_one_portal_never_share_tokens(portal: Portal, tmp_path: Any) -> None:
    from bitrix24_agent_tools.client import SqliteTokenStore

    store = SqliteTokenStore(tmp_path / "tokens.sqlite3")
    first, second = portal.register_app(), portal.register_app()
    t1, t2 = portal.install_app(first), portal.install_app(second)
    a = OAuth(
        portal.domain,
        t1["access_token"],
        t1["refresh_token"],
        first.client_id,
        first.client_secret,
        token_store=store,
    )
    b = OAuth(
        portal.domain,
        t2["access_token"],
        t2["refresh_token"],
        second.client_id,
        second.client_secret,
        token_store=store,
    )
    assert a.access_token == t1["access_token"] and b.access_token == t2["access_token"]
    assert a.store_key != b.store_key


def test_the_sqlite_token_store_closes_every_connection(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from bitrix24_agent_tools.client import auth as auth_module
    from bitrix24_agent_tools.client.auth import SqliteTokenStore, Tokens

    opened: list[sqlite3.Connection] = []
    real = auth_module.open_sqlite

    def recording(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(real(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(auth_module, "open_sqlite", recording)
    store = SqliteTokenStore(tmp_path / "tokens.sqlite3")
    tokens = Tokens(access_token="a" * 32, refresh_token="r" * 32, expires_at=1.0)
    store.save("acme.bitrix24.com", tokens)
    assert store.load("acme.bitrix24.com") == tokens
    store.delete("acme.bitrix24.com")
    assert store.load("acme.bitrix24.com") is None
    assert len(opened) == 5
    for db in opened:
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            db.execute("SELECT 1")


def test_four_processes_sharing_a_token_store_file_refresh_once(tmp_path: Any) -> None:
    """The access token expires under four processes that share one sqlite token store: one process
    refreshes (the token server takes each refresh token once), the others reload what it saved; none is
    told to reinstall the application."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from bitrix24_agent_tools.client import SqliteTokenStore

    portal = Portal(seed=1)
    store_path = str(tmp_path / "tokens.sqlite3")
    with portal.serve() as server:
        app = portal.register_app()
        tokens = portal.install_app(app)
        auth = portal.app_auth(app, tokens, token_store=SqliteTokenStore(store_path))
        assert server.url and Bitrix24(auth).call("profile").result
        portal.expire_all_tokens()
        config = json.dumps(
            {
                "domain": portal.domain,
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "store": store_path,
                "oauth_server": portal.oauth_server,
                "client_endpoint": tokens["client_endpoint"],
            }
        )
        script = Path(__file__).with_name("refresh_proc.py")
        root = Path(__file__).resolve().parents[2]
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), config],
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e.decode()[-400:] for _, e in outputs]
    refreshes = [r for r in portal.requests if r.method == "oauth.token"]
    assert len([r for r in refreshes if r.status == 200]) == 1 and all(r.status == 200 for r in refreshes)


def test_a_batch_held_back_by_answers_in_flight_waits_for_them_not_for_the_window() -> None:
    """The operating budget of batch-nested calls: a batch that does not fit while others are in flight
    rechecks as they settle (their booking may have been generous), instead of sleeping until the oldest
    spent entry leaves the 10-minute window; with nothing in flight it waits for that entry."""
    from bitrix24_agent_tools.client.limits import OperatingTracker

    now = [0.0]
    tracker = OperatingTracker(limit=100.0, clock=lambda: now[0])  # margin: twice the largest call, 8 s
    first, wait = tracker.reserve("p", {"crm.deal.list": 1})
    assert wait == 0 and first == {"crm.deal.list": OperatingTracker.PRIOR}
    tracker.settle("p", first, {"crm.deal.list": [4.0]})  # 4 s a call, observed
    second, wait = tracker.reserve("p", {"crm.deal.list": 20})
    assert wait == 0 and second == {"crm.deal.list": 80.0}
    held, wait = tracker.reserve("p", {"crm.deal.list": 3})  # 4 spent + 80 in flight + 12 > 100 - 8
    assert held == {} and 0 < wait <= 0.25
    now[0] = 5.0
    tracker.settle("p", second, {"crm.deal.list": [4.0] * 20})
    _, wait = tracker.reserve("p", {"crm.deal.list": 3})  # 84 spent, nothing in flight: the window decides
    assert wait == 595.0  # the entry spent at 0 leaves at 600
