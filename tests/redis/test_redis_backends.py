"""Redis backends against a real redis-server: one rate bucket, one refresh and one write across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bitrix24_agent_tools.client import RatePlan, Tokens
from bitrix24_agent_tools.redis_backends import (
    RedisIdempotencyStore,
    RedisLimiter,
    RedisPlanStore,
    RedisTokenStore,
)
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.stores import PlanError, StoredPlan

ROOT = Path(__file__).resolve().parents[2]


def _run(mode: str, redis_url: str, n: int, args: dict[str, Any]) -> list[str]:
    start_at = time.time() + 1.5
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "redis" / "proc.py"),
                mode,
                redis_url,
                str(start_at),
                json.dumps(args),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        outputs.append(out.strip())
    return outputs


def test_the_lua_bucket_reserves_slots_in_order(redis_db: str) -> None:
    limiter = RedisLimiter.from_url(redis_db, RatePlan.custom(10, 5), headroom=0)
    waits = [limiter.acquire("p1") for _ in range(8)]
    assert waits[:5] == [0.0] * 5
    assert 0.05 < waits[5] < waits[6] < waits[7] <= 0.31  # each extra request waits one more drain step
    assert limiter.acquire("p2") == 0.0  # keyed by portal


def test_a_caller_that_will_not_wait_long_is_refused_without_booking_and_told_how_long(redis_db: str) -> None:
    """max_wait across processes (issue #34): a booking whose wait would exceed it books nothing; the client
    raises QueueFull with the wait instead of queueing without bound."""
    from bitrix24_agent_tools.client import Bitrix24, QueueFull

    limiter = RedisLimiter.from_url(redis_db, RatePlan.custom(2, 3), headroom=0)
    assert [limiter.try_acquire("q", 1, 0.1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("q", 1, 0.1) is None  # the next slot is 0.5 s away
    assert 0.3 < limiter.wait_for("q") <= 0.5
    assert 0.3 < limiter.try_acquire("q", 1, 1.0) <= 0.5  # type: ignore[operator]  # booked: it fits
    portal = Portal(seed=0)
    other = RedisLimiter.from_url(redis_db, RatePlan.custom(2, 3), headroom=0)  # another process's view
    client = Bitrix24(portal.webhook_url, transport=portal.transport(), limiter=other, max_wait=0.1)
    try:
        client.call("server.time")  # the shared bucket of this portal is fresh: sent at once
        client.call("server.time")
        client.call("server.time")
        try:
            client.call("server.time")
        except QueueFull as full:
            assert 0.0 < full.retry_after <= 0.6
        else:  # pragma: no cover - the assertion below says what went wrong
            raise AssertionError("a fourth call within the burst's refill time should be refused")
    finally:
        client.close()


def test_four_processes_share_one_bucket_and_never_exceed_the_plan(redis_db: str) -> None:
    # The standard plan's shape (burst 50, steady drain) with the drain scaled up so 800 calls take seconds.
    rate, burst = 60.0, 50
    portal = Portal(seed=1, rate_limit=(rate, burst))
    with portal.serve() as server:
        _run(
            "limiter",
            redis_db,
            4,
            {"webhook": server.webhook_url, "calls": 200, "rate": rate, "burst": burst},
        )
    calls = [r for r in portal.requests if r.method == "profile"]
    assert len(calls) == 800 and portal.rejected["QUERY_LIMIT_EXCEEDED"] == 0
    times = sorted(r.at for r in calls)
    steady = times[burst:]
    measured = (len(steady) - 1) / (steady[-1] - steady[0])
    assert measured <= rate * 1.10  # never above the plan (the speed figure itself is in benchmarks/)
    print(f"\n4 processes × 200 calls: {measured:.1f} req/s steady vs plan {rate}/s")


def test_eight_processes_on_an_expired_token_refresh_exactly_once(redis_db: str) -> None:
    portal = Portal(seed=1)
    app = portal.register_app()
    tokens = portal.install_app(app)
    with portal.serve() as server:
        store = RedisTokenStore.from_url(redis_db)
        store.save(
            server.url.split("://")[1] + "|" + app.client_id,
            Tokens(tokens["access_token"], tokens["refresh_token"], client_endpoint=f"{server.url}/rest/"),
        )
        portal.expire_all_tokens()
        args = {
            "domain": server.url.split("://")[1],
            "access": tokens["access_token"],
            "refresh": tokens["refresh_token"],
            "client_id": app.client_id,
            "secret": app.client_secret,
            "oauth_server": f"{server.url}/oauth/token/",
            "endpoint": f"{server.url}/rest/",
        }
        outputs = _run("refresh", redis_db, 8, args)
    assert outputs == ["1"] * 8
    assert len([r for r in portal.requests if r.method == "oauth.token"]) == 1


def test_the_same_write_from_four_processes_creates_one_record(redis_db: str) -> None:
    portal = Portal(seed=1)
    with portal.serve() as server:
        outputs = _run("write", redis_db, 4, {"webhook": server.webhook_url})
    assert len([lead for lead in portal.entities("lead") if lead["TITLE"] == "Web form 991"]) == 1
    assert sum(o.startswith("created lead") for o in outputs) >= 1


def test_token_store_lock_and_idempotency_and_plans(redis_db: str) -> None:
    store = RedisTokenStore.from_url(redis_db, lock_ttl=0.2)
    store.save("t1", Tokens("access-aaaaaa", "refresh-bbbbbb"))
    assert store.load("t1").access_token == "access-aaaaaa"  # type: ignore[union-attr]
    with store.refresh_lock("t1"):
        pass
    store.redis.set("b24:tokens:t1:lock", "crashed-holder", px=200)  # a holder that died: its lock expires
    started = time.monotonic()
    with store.refresh_lock("t1", timeout=5):
        assert time.monotonic() - started < 2
    idem = RedisIdempotencyStore.from_url(redis_db)
    assert idem.begin("t", "k", 60) == "new" and idem.begin("t", "k", 60) == "inflight"
    idem.complete("t", "k", {"result": 5}, 60)
    assert idem.begin("t", "k", 60) == {"result": 5} and idem.begin("other", "k", 60) == "new"
    plans = RedisPlanStore.from_url(redis_db)
    plan = StoredPlan(
        "p1",
        "t",
        "tool",
        "crm.deal.update",
        {"id": 1},
        "write",
        "Update deal #1",
        expires_at=time.time() + 60,
    )
    plans.save(plan)
    try:
        plans.claim("p1", "other-tenant", time.time())
        raise AssertionError("another tenant claimed the plan")
    except PlanError:
        pass
    assert plans.claim("p1", "t", time.time()).method == "crm.deal.update"
    # claimed, not yet executed (a run that died after the yes): it can be resumed — the guard's plan key
    # then says whether the write was made; once finished it never runs again
    assert plans.get("p1").status == "claimed"  # type: ignore[union-attr]
    assert plans.claim("p1", "t", time.time()).id == "p1"
    plans.finish("p1")
    try:
        plans.claim("p1", "t", time.time())
        raise AssertionError("a plan ran twice")
    except PlanError as exc:
        assert "already executed" in str(exc)


def test_a_redis_that_forgets_on_restart_is_refused_for_state_unless_accepted(redis_db: str) -> None:
    """Without the append-only file a restart loses tokens, plans and idempotency records: refused, with how
    to fix it, unless accepted knowingly."""
    import redis

    from bitrix24_agent_tools.client import ConfigError
    from bitrix24_agent_tools.redis_backends import RedisIdempotencyStore, RedisTokenStore

    client = redis.Redis.from_url(redis_db)
    client.config_set("appendonly", "no")
    try:
        for store in (RedisTokenStore, RedisIdempotencyStore, RedisPlanStore):
            try:
                store(client)
                raise AssertionError(f"{store.__name__} accepted a volatile Redis")
            except ConfigError as exc:
                assert "appendonly" in str(exc)
            store(client, allow_volatile=True)
    finally:
        client.config_set("appendonly", "yes")
