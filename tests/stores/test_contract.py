"""One contract per kind of store, run over every backend (memory, sqlite, Redis, PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bitrix24_agent_tools.client.auth import MemoryTokenStore, SqliteTokenStore, Tokens
from bitrix24_agent_tools.stores import (
    Approval,
    AuditRow,
    MemoryApprovalStore,
    MemoryAuditStore,
    MemoryIdempotencyStore,
    MemoryPlanStore,
    MemoryRecordStore,
    PlanError,
    SqliteApprovalStore,
    SqliteAuditStore,
    SqliteIdempotencyStore,
    SqlitePlanStore,
    SqliteRecordStore,
    StoredPlan,
)
from tests.postgres.conftest import pg_dsn, pg_server  # noqa: F401  (fixtures)
from tests.redis.conftest import redis_db, redis_url  # noqa: F401  (fixtures)

BACKENDS = ["memory", "sqlite", "redis", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[str, Callable[..., Any]]]:
    """(name, make(kind, clock)) for one backend; Redis and PostgreSQL start their real servers."""
    name = request.param
    if name == "redis":
        url = request.getfixturevalue("redis_db")
        from bitrix24_agent_tools.stores import redis as r

        kinds: dict[str, Callable[..., Any]] = {
            "idempotency": lambda clock: r.RedisIdempotencyStore.from_url(url),
            "plans": lambda clock: r.RedisPlanStore.from_url(url),
            "tokens": lambda clock: r.RedisTokenStore.from_url(url),
            "approvals": lambda clock: r.RedisApprovalStore.from_url(url),
            "records": lambda clock: r.RedisRecordStore.from_url(url),
        }
    elif name == "postgres":
        dsn = request.getfixturevalue("pg_dsn")
        from bitrix24_agent_tools.stores import postgres as p

        kinds = {
            "idempotency": lambda clock: p.PostgresIdempotencyStore(dsn, clock=clock),
            "plans": lambda clock: p.PostgresPlanStore(dsn),
            "tokens": lambda clock: p.PostgresTokenStore(dsn),
            "audit": lambda clock: p.PostgresAuditStore(dsn),
            "approvals": lambda clock: p.PostgresApprovalStore(dsn),
            "records": lambda clock: p.PostgresRecordStore(dsn, clock=clock),
        }
    elif name == "sqlite":
        kinds = {
            "idempotency": lambda clock: SqliteIdempotencyStore(tmp_path / "idem.sqlite3", clock=clock),
            "plans": lambda clock: SqlitePlanStore(tmp_path / "plans.sqlite3"),
            "tokens": lambda clock: SqliteTokenStore(tmp_path / "tokens.sqlite3"),
            "audit": lambda clock: SqliteAuditStore(tmp_path / "audit.sqlite3"),
            "approvals": lambda clock: SqliteApprovalStore(tmp_path / "approvals.sqlite3"),
            "records": lambda clock: SqliteRecordStore(tmp_path / "records.sqlite3", clock=clock),
        }
    else:
        kinds = {
            "idempotency": lambda clock: MemoryIdempotencyStore(clock=clock),
            "plans": lambda clock: MemoryPlanStore(),
            "tokens": lambda clock: MemoryTokenStore(),
            "audit": lambda clock: MemoryAuditStore(),
            "approvals": lambda clock: MemoryApprovalStore(),
            "records": lambda clock: MemoryRecordStore(clock=clock),
        }

    def make(kind: str, clock: Callable[[], float] = time.time) -> Any:
        if kind not in kinds:
            pytest.skip(f"{name} has no {kind} store")
        return kinds[kind](clock)

    yield name, make


def test_idempotency_claims_once_replays_the_result_and_never_frees_an_unknown_outcome(backend: Any) -> None:
    name, make = backend
    now = [time.time()]
    store = make("idempotency", lambda: now[0])
    assert store.begin("t", "k", 120) == "new"
    assert store.begin("t", "k", 120) == "inflight" and store.peek("t", "k") == "inflight"
    assert store.begin("other-tenant", "k", 120) == "new"  # one tenant never sees another's key
    store.complete("t", "k", {"result": 7}, 3600)
    assert store.begin("t", "k", 120) == {"result": 7}
    assert store.begin("t", "k2", 120) == "new"
    store.fail("t", "k2")  # certainly not written: free again
    assert store.begin("t", "k2", 120) == "new"
    store.unknown("t", "k2", "the answer was lost")
    assert store.begin("t", "k2", 120) == "unknown" and store.peek("t", "k2") == "unknown"
    assert store.begin("t", "k2", 120, retry_unknown=True) == "new"  # a person shown it said yes
    if name != "redis":  # Redis reads its own clock; the in-flight deadline is checked the same way there
        assert store.begin("t", "k3", 120) == "new"
        now[0] += 3600  # the holder vanished without complete or fail
        assert store.begin("t", "k3", 120) == "unknown"


def test_a_plan_is_claimed_by_its_tenant_resumed_until_finished_and_never_run_after(backend: Any) -> None:
    _name, make = backend
    store = make("plans")
    plan = StoredPlan(
        "p1", "t", "b24_core_call", "crm.deal.update", {"id": 1}, "write", "s", "v2", time.time(), 0.0
    )
    store.save(plan)
    assert store.get("p1").method == "crm.deal.update"
    with pytest.raises(PlanError):
        store.claim("p1", "other-tenant", time.time())
    assert store.claim("p1", "t", time.time()).id == "p1" and store.get("p1").status == "claimed"
    assert store.claim("p1", "t", time.time()).id == "p1"  # a run that died after the yes resumes
    store.finish("p1")
    with pytest.raises(PlanError, match="already executed"):
        store.claim("p1", "t", time.time())
    old = StoredPlan(
        "p2", "t", "x", "crm.deal.add", {}, "write", "s", "v2", time.time() - 10, time.time() + 60
    )
    store.save(old)
    with pytest.raises(PlanError, match="expired"):
        store.claim("p2", "t", time.time() + 120)


def test_tokens_are_kept_per_tenant_and_one_holder_refreshes_at_a_time(backend: Any) -> None:
    _name, make = backend
    store = make("tokens")
    tokens = Tokens(access_token="a" * 32, refresh_token="r" * 32, expires_at=1.0, domain="p")
    store.save("p|app", tokens)
    assert store.load("p|app") == tokens and store.load("q|app") is None
    lock = getattr(store, "refresh_lock", None)
    if lock is not None:
        inside: list[int] = []
        overlap: list[bool] = []

        def holder() -> None:
            try:
                with lock("p|app"):
                    inside.append(1)
                    overlap.append(len(inside) > 1)
                    time.sleep(0.05)
                    inside.pop()
            except Exception as exc:  # seen by the assertion below, not lost in the thread
                overlap.append(repr(exc))  # type: ignore[arg-type]

        threads = [threading.Thread(target=holder) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert overlap == [False] * 4
    store.delete("p|app")
    assert store.load("p|app") is None


def test_the_audit_trail_keeps_rows_masked_per_tenant(backend: Any) -> None:
    _name, make = backend
    store = make("audit")
    store.record(
        AuditRow("t", "tool", "crm.deal.add", "write", "approved", "ok", "alice", None, {"auth": "secret"})
    )
    store.record(AuditRow("u", "tool", "crm.deal.get", "read", "read", "ok"))
    rows = store.rows("t")
    assert [r.method for r in rows] == ["crm.deal.add"] and rows[0].params["auth"] != "secret"
    assert len(store.rows()) == 2


def test_approvals_answer_once_across_racing_answerers_and_keep_every_field(backend: Any) -> None:
    """Two answers racing for one request: exactly one counts; the record comes back as stored (empty lists,
    nested params, unicode), found by (tenant, request_id) newest first, never by another tenant."""
    _, make = backend
    store = make("approvals")
    now = time.time()
    params = {"id": 1, "fields": {"TITLE": "Сделка ✓", "PHONE": [], "X": {"a": [1, {}]}}}
    first = Approval("a" * 40, "t", "crm.deal.update:1", "b24_crm_update", "crm.deal.update", "write",
                     "summary", params, ("5", "7"), now, now + 60)  # fmt: skip
    store.create(first)
    second = Approval("b" * 40, "t", "crm.deal.update:1", "b24_crm_update", "crm.deal.update", "write",
                      "summary", params, ("5",), now + 1, now + 60)  # fmt: skip
    store.create(second)
    assert store.get(first.id) == first
    assert [a.id for a in store.find("t", "crm.deal.update:1")] == [second.id, first.id]
    assert store.find("other", "crm.deal.update:1") == []
    results: list[Any] = []
    barrier = threading.Barrier(8)

    def answer(user: str) -> None:
        barrier.wait()
        results.append(store.transition(first.id, "pending", {"state": "approved", "answered_by": user}))

    threads = [threading.Thread(target=answer, args=(str(i),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if r is not None]
    assert len(won) == 1
    stored = store.get(first.id)
    assert stored.state == "approved" and stored.answered_by == won[0].answered_by
    assert stored.params == params and stored.approvers == ("5", "7")
    assert store.transition(first.id, "pending", {"state": "rejected"}) is None
    assert store.transition(first.id, "approved", {"state": "used"}).state == "used"


def test_records_expire_are_taken_once_and_are_deleted_by_field(backend: Any) -> None:
    """The team server's sign-ins, codes and tokens: a record lives until its expiry; ``take`` hands it to one
    of many racing takers; ``delete_where`` ends every token of a person."""
    name, make = backend
    now = [time.time()]
    store = make("records", lambda: now[0])
    store.put("code", "c1", {"subject": "m:5", "nested": {"a": [1, {}]}}, 60)
    assert store.get("code", "c1") == {"subject": "m:5", "nested": {"a": [1, {}]}}
    assert store.get("access", "c1") is None  # kinds are apart
    results: list[Any] = []
    barrier = threading.Barrier(6)

    def take() -> None:
        barrier.wait()
        results.append(store.take("code", "c1"))

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r is not None]) == 1 and store.get("code", "c1") is None
    store.put("access", "a1", {"subject": "m:5"}, 60)
    store.put("access", "a2", {"subject": "m:5"}, 60)
    store.put("access", "a3", {"subject": "m:7"}, 60)
    assert store.delete_where("access", "subject", "m:5") == 2
    assert store.get("access", "a3") == {"subject": "m:7"} and store.get("access", "a1") is None
    store.put("pending", "p1", {"x": 1}, 0.3)
    if name == "redis":  # the server's own clock
        time.sleep(0.4)
    now[0] += 1
    assert store.get("pending", "p1") is None and store.take("pending", "p1") is None
