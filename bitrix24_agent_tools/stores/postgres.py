"""The stores on PostgreSQL (extra ``postgres``): what a team deployment shares between processes and
machines — idempotency records, plans, OAuth tokens with a cross-process refresh lock, the audit trail —
beside the worker state, the online inbox and the tenant registry (re-exported here).

Every store reopens its connection once when the server dropped it (a restart, a failover); a failure that
lasts is raised to the caller, whose loop waits it out.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from bitrix24_agent_tools.client.auth import Tokens, stored_tokens
from bitrix24_agent_tools.events.inbox import PostgresInbox, PostgresTenantRegistry
from bitrix24_agent_tools.events.pg_state import PostgresWorkerState
from bitrix24_agent_tools.stores import (
    UNKNOWN_TTL,
    Approval,
    AuditRow,
    Begin,
    StoredPlan,
    _changed,
    _check_claim,
    _judge_row,
)

__all__ = [
    "PostgresApprovalStore",
    "PostgresAuditStore",
    "PostgresIdempotencyStore",
    "PostgresInbox",
    "PostgresPlanStore",
    "PostgresRecordStore",
    "PostgresTenantRegistry",
    "PostgresTokenStore",
    "PostgresWorkerState",
]


class _Postgres:
    schema = ""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self._dsn = dsn
        self._lock = threading.RLock()
        self._db: Any = psycopg.connect(dsn, autocommit=True)
        with self._lock:
            self._db.execute("SELECT pg_advisory_lock(25157)")  # concurrent CREATE IF NOT EXISTS can collide
            try:
                self._db.execute(self.schema)
            finally:
                self._db.execute("SELECT pg_advisory_unlock(25157)")

    @contextlib.contextmanager
    def _conn(self) -> Iterator[Any]:
        """This store's connection, reopened once if the server dropped it."""
        import psycopg

        with self._lock:
            if self._db.closed or self._db.broken:
                self._db = psycopg.connect(self._dsn, autocommit=True)
            try:
                yield self._db
            except psycopg.OperationalError:
                self._db = psycopg.connect(self._dsn, autocommit=True)
                raise


class PostgresIdempotencyStore(_Postgres):
    schema = """CREATE TABLE IF NOT EXISTS b24_idem (tenant TEXT, key TEXT, state TEXT,
        expires DOUBLE PRECISION, result TEXT, PRIMARY KEY (tenant, key))"""

    def __init__(self, dsn: str, clock: Any = time.time) -> None:
        self.clock = clock
        super().__init__(dsn)

    def begin(
        self, tenant: str, key: str, ttl: float, *, retry_unknown: bool = False
    ) -> Begin | dict[str, Any]:
        now = self.clock()
        with self._conn() as db, db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{tenant}|{key}",))
            row = db.execute(
                "SELECT state, expires, result FROM b24_idem WHERE tenant=%s AND key=%s", (tenant, key)
            ).fetchone()
            found = _judge_row(row, now, retry_unknown)
            if found is not None:
                return found
            db.execute(
                "INSERT INTO b24_idem VALUES (%s,%s,'inflight',%s,NULL) ON CONFLICT (tenant, key) DO UPDATE "
                "SET state='inflight', expires=EXCLUDED.expires, result=NULL",
                (tenant, key, now + max(ttl, 60.0)),
            )
            return "new"

    def peek(self, tenant: str, key: str) -> Begin | dict[str, Any] | None:
        with self._conn() as db:
            row = db.execute(
                "SELECT state, expires, result FROM b24_idem WHERE tenant=%s AND key=%s", (tenant, key)
            ).fetchone()
        return _judge_row(row, self.clock())

    def _set(self, tenant: str, key: str, state: str, expires: float, result: Any) -> None:
        with self._conn() as db:
            db.execute(
                "INSERT INTO b24_idem VALUES (%s,%s,%s,%s,%s) ON CONFLICT (tenant, key) DO UPDATE SET "
                "state=EXCLUDED.state, expires=EXCLUDED.expires, result=EXCLUDED.result",
                (tenant, key, state, expires, json.dumps(result, default=str)),
            )

    def complete(self, tenant: str, key: str, result: dict[str, Any], ttl: float) -> None:
        self._set(tenant, key, "done", self.clock() + ttl, result)

    def fail(self, tenant: str, key: str) -> None:
        with self._conn() as db:
            db.execute("DELETE FROM b24_idem WHERE tenant=%s AND key=%s", (tenant, key))

    def unknown(self, tenant: str, key: str, reason: str) -> None:
        self._set(tenant, key, "unknown", self.clock() + UNKNOWN_TTL, {"reason": reason})


class PostgresPlanStore(_Postgres):
    schema = "CREATE TABLE IF NOT EXISTS b24_plans (id TEXT PRIMARY KEY, data TEXT NOT NULL)"

    def save(self, plan: StoredPlan) -> None:
        with self._conn() as db:
            db.execute(
                "INSERT INTO b24_plans VALUES (%s,%s) ON CONFLICT (id) DO UPDATE SET data=EXCLUDED.data",
                (plan.id, json.dumps(asdict(plan), default=str)),
            )

    def get(self, plan_id: str) -> StoredPlan | None:
        with self._conn() as db:
            row = db.execute("SELECT data FROM b24_plans WHERE id=%s", (plan_id,)).fetchone()
        return StoredPlan(**json.loads(row[0])) if row else None

    def _status(self, plan_id: str, tenant: str | None, now: float, status: str) -> StoredPlan | None:
        with self._conn() as db, db.transaction():
            row = db.execute("SELECT data FROM b24_plans WHERE id=%s FOR UPDATE", (plan_id,)).fetchone()
            plan = StoredPlan(**json.loads(row[0])) if row else None
            if tenant is not None:
                plan = _check_claim(plan, plan_id, tenant, now)
            if plan is not None:
                db.execute(
                    "UPDATE b24_plans SET data=%s WHERE id=%s",
                    (json.dumps({**asdict(plan), "status": status}, default=str), plan_id),
                )
            return plan

    def claim(self, plan_id: str, tenant: str, now: float) -> StoredPlan:
        plan = self._status(plan_id, tenant, now, "claimed")
        assert plan is not None  # _check_claim raised otherwise
        return plan

    def finish(self, plan_id: str) -> None:
        self._status(plan_id, None, 0.0, "executed")


class PostgresTokenStore(_Postgres):
    """OAuth tokens shared by every process of a deployment, with a refresh lock: a session advisory lock the
    server drops when its holder's connection dies, so a crash never wedges a refresh."""

    schema = "CREATE TABLE IF NOT EXISTS b24_tokens (tenant TEXT PRIMARY KEY, data TEXT NOT NULL)"

    def load(self, tenant: str) -> Tokens | None:
        with self._conn() as db:
            row = db.execute("SELECT data FROM b24_tokens WHERE tenant=%s", (tenant,)).fetchone()
        return stored_tokens(row[0]) if row is not None else None

    def save(self, tenant: str, tokens: Tokens) -> None:
        with self._conn() as db:
            db.execute(
                "INSERT INTO b24_tokens VALUES (%s,%s) ON CONFLICT (tenant) DO UPDATE SET data=EXCLUDED.data",
                (tenant, json.dumps(asdict(tokens))),
            )

    def delete(self, tenant: str) -> None:
        with self._conn() as db:
            db.execute("DELETE FROM b24_tokens WHERE tenant=%s", (tenant,))

    @contextlib.contextmanager
    def refresh_lock(self, tenant: str, timeout: float = 60.0) -> Iterator[None]:
        import psycopg

        with psycopg.connect(self._dsn, autocommit=True) as holder:  # its own session: the lock dies with it
            holder.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(timeout * 1000)}ms",))
            holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"b24-refresh|{tenant}",))
            try:
                yield
            finally:
                holder.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"b24-refresh|{tenant}",))


class PostgresAuditStore(_Postgres):
    schema = """CREATE TABLE IF NOT EXISTS b24_audit (id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION,
        tenant TEXT, tool TEXT, method TEXT, risk TEXT, decision TEXT, status TEXT, approved_by TEXT,
        error TEXT, params TEXT, duration_ms DOUBLE PRECISION)"""

    def record(self, row: AuditRow) -> None:
        with self._conn() as db:
            db.execute(
                "INSERT INTO b24_audit (at, tenant, tool, method, risk, decision, status, approved_by, "
                "error, params, duration_ms) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                row.stored(),
            )

    def rows(self, tenant: str | None = None) -> list[AuditRow]:
        with self._conn() as db:
            found = db.execute(
                "SELECT at, tenant, tool, method, risk, decision, status, approved_by, error, params, "
                "duration_ms FROM b24_audit WHERE %s::text IS NULL OR tenant=%s ORDER BY id",
                (tenant, tenant),
            ).fetchall()
        return [
            AuditRow(ten, tool, method, risk, decision, status, by, error, json.loads(params), at, ms)
            for at, ten, tool, method, risk, decision, status, by, error, params, ms in found
        ]


class PostgresApprovalStore(_Postgres):
    """Approvals shared by every process of a deployment: a request opened by one server process is answered
    on another's web page or chat handler and consumed by a third."""

    schema = """CREATE TABLE IF NOT EXISTS b24_approvals (id TEXT PRIMARY KEY, tenant TEXT, request_id TEXT,
        created DOUBLE PRECISION, data TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS b24_approvals_request ON b24_approvals (tenant, request_id)"""

    def create(self, approval: Approval) -> None:
        with self._conn() as db:
            db.execute(
                "INSERT INTO b24_approvals VALUES (%s,%s,%s,%s,%s)",
                (approval.id, approval.tenant, approval.request_id, approval.created_at, approval.to_json()),
            )

    def get(self, approval_id: str) -> Approval | None:
        with self._conn() as db:
            row = db.execute("SELECT data FROM b24_approvals WHERE id=%s", (approval_id,)).fetchone()
        return Approval.from_json(row[0]) if row else None

    def transition(self, approval_id: str, expect: str, changes: dict[str, Any]) -> Approval | None:
        with self._conn() as db, db.transaction():
            row = db.execute(
                "SELECT data FROM b24_approvals WHERE id=%s FOR UPDATE", (approval_id,)
            ).fetchone()
            new = _changed(Approval.from_json(row[0]) if row else None, expect, changes)
            if new is not None:
                db.execute("UPDATE b24_approvals SET data=%s WHERE id=%s", (new.to_json(), approval_id))
            return new

    def find(self, tenant: str, request_id: str) -> list[Approval]:
        with self._conn() as db:
            rows = db.execute(
                "SELECT data FROM b24_approvals WHERE tenant=%s AND request_id=%s ORDER BY created DESC",
                (tenant, request_id),
            ).fetchall()
        return [Approval.from_json(r[0]) for r in rows]


class PostgresRecordStore(_Postgres):
    """Keyed records with a lifetime, shared by every server process (sign-ins, clients, codes, tokens)."""

    schema = """CREATE TABLE IF NOT EXISTS b24_records (kind TEXT, key TEXT, expires DOUBLE PRECISION,
        data TEXT NOT NULL, PRIMARY KEY (kind, key))"""

    def __init__(self, dsn: str, clock: Any = time.time) -> None:
        self.clock = clock
        super().__init__(dsn)

    def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        with self._conn() as db:
            db.execute(
                "INSERT INTO b24_records VALUES (%s,%s,%s,%s) ON CONFLICT (kind, key) DO UPDATE SET "
                "expires=EXCLUDED.expires, data=EXCLUDED.data",
                (kind, key, self.clock() + ttl, json.dumps(value, default=str)),
            )

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._conn() as db:
            row = db.execute(
                "SELECT data FROM b24_records WHERE kind=%s AND key=%s AND expires>%s",
                (kind, key, self.clock()),
            ).fetchone()
        return dict(json.loads(row[0])) if row else None

    def take(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._conn() as db:
            row = db.execute(
                "DELETE FROM b24_records WHERE kind=%s AND key=%s RETURNING expires, data", (kind, key)
            ).fetchone()
        return dict(json.loads(row[1])) if row and row[0] > self.clock() else None

    def delete(self, kind: str, key: str) -> None:
        with self._conn() as db:
            db.execute("DELETE FROM b24_records WHERE kind=%s AND key=%s", (kind, key))

    def delete_where(self, kind: str, field_name: str, value: str) -> int:
        with self._conn() as db:
            gone = db.execute(
                "DELETE FROM b24_records WHERE kind=%s AND (data::jsonb ->> %s) = %s",
                (kind, field_name, value),
            ).rowcount
        return int(gone or 0)
