"""The stores, one protocol per kind: the audit trail, idempotency records, two-phase plans (here, in memory
and on sqlite), OAuth tokens (``client.auth``: memory and sqlite), the worker state, the online inbox and the
tenant registry (``events``). Shared backends: ``stores.redis`` (tokens, idempotency, plans, the rate bucket)
and ``stores.postgres`` (every kind). ``tests/stores`` runs one contract per kind over every backend."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from bitrix24_agent_tools._sqlite import open_sqlite
from bitrix24_agent_tools.masking import mask_params, mask_text

# --- audit
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    """One call on record. ``params`` and ``error`` are masked before they are stored."""

    tenant: str
    tool: str
    method: str
    risk: str
    decision: str  # read | approved | edited | rejected | refused | replayed | deferred | held
    status: str  # ok | error | skipped
    approved_by: str | None = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    duration_ms: float = 0.0

    def stored(self) -> tuple[Any, ...]:
        """The masked row as a table stores it: at, tenant, tool, method, risk, decision, status, approved_by,
        error, params (JSON), duration_ms."""
        r = self.masked()
        return (r.at, r.tenant, r.tool, r.method, r.risk, r.decision, r.status, r.approved_by, r.error,
                json.dumps(r.params, ensure_ascii=False, default=str), r.duration_ms)  # fmt: skip

    def masked(self) -> AuditRow:
        return AuditRow(
            self.tenant,
            self.tool,
            self.method,
            self.risk,
            self.decision,
            self.status,
            self.approved_by,
            mask_text(self.error) if self.error else None,
            mask_params(self.params),
            self.at,
            self.duration_ms,
        )


@runtime_checkable
class AuditStore(Protocol):
    def record(self, row: AuditRow) -> None: ...

    def rows(self, tenant: str | None = None) -> list[AuditRow]: ...


class MemoryAuditStore:
    def __init__(self) -> None:
        self._rows: list[AuditRow] = []
        self._lock = threading.Lock()

    def record(self, row: AuditRow) -> None:
        with self._lock:
            self._rows.append(row.masked())

    def rows(self, tenant: str | None = None) -> list[AuditRow]:
        with self._lock:
            return [r for r in self._rows if tenant is None or r.tenant == tenant]


class _Sqlite:
    schema = ""

    def __init__(self, path: str | Path) -> None:
        # Nothing is created until the store is first used: a read-only run leaves no file behind.
        self.path = str(path)
        self._local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = open_sqlite(self.path)
            self._local.db = db
        if not self._ready:
            with self._ready_lock:
                if not self._ready:
                    db.executescript(self.schema)
                    self._ready = True
        return db


def state_path(name: str) -> str:
    """Where a store of ours lives by default: the user's data directory (platformdirs), not the working
    directory (MCP desktop clients start servers from /; a read-only directory must not break a read)."""
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("bitrix24-agent-tools", appauthor=False)) / name)


class SqliteAuditStore(_Sqlite):
    """An append-only audit table, one row per call."""

    schema = """CREATE TABLE IF NOT EXISTS audit (at REAL, tenant TEXT, tool TEXT, method TEXT, risk TEXT,
                decision TEXT, status TEXT, approved_by TEXT, error TEXT, params TEXT, duration_ms REAL)"""

    def record(self, row: AuditRow) -> None:
        self._db().execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?)", row.stored())

    def rows(self, tenant: str | None = None) -> list[AuditRow]:
        query = (
            "SELECT at, tenant, tool, method, risk, decision, status, approved_by, error, params, "
            "duration_ms FROM audit"
        )
        args: tuple[Any, ...] = ()
        if tenant is not None:
            query, args = query + " WHERE tenant = ?", (tenant,)
        out = []
        for at, ten, tool, method, risk, decision, status, by, error, params, ms in self._db().execute(
            query + " ORDER BY rowid", args
        ):
            out.append(
                AuditRow(ten, tool, method, risk, decision, status, by, error, json.loads(params), at, ms)
            )
        return out


# --- idempotency
# ---------------------------------------------------------------------------------------------

Begin = Literal["new", "inflight", "unknown"]
# How long a write whose outcome is unknown stays marked so (a person or a read of the portal settles it).
UNKNOWN_TTL = 7 * 24 * 3600.0


@runtime_checkable
class IdempotencyStore(Protocol):
    """``begin`` claims a key: "new" (run it), "inflight" (someone else is running it), "unknown" (an
    earlier attempt may or may not have written: never repeated blindly), or the stored result.

    A claim whose holder vanished (it expired without ``complete`` or ``fail``) is "unknown", not free: the
    write may have reached the portal before its record was lost. ``begin(..., retry_unknown=True)`` claims
    an unknown key again — only after a person's yes that was shown the unknown outcome."""

    def begin(
        self, tenant: str, key: str, ttl: float, *, retry_unknown: bool = False
    ) -> Begin | dict[str, Any]: ...

    def peek(self, tenant: str, key: str) -> Begin | dict[str, Any] | None: ...

    def complete(self, tenant: str, key: str, result: dict[str, Any], ttl: float) -> None: ...

    def fail(self, tenant: str, key: str) -> None: ...

    def unknown(self, tenant: str, key: str, reason: str) -> None: ...


def _judge(
    state: str | None, expires: float, result: Any, now: float, retry_unknown: bool
) -> Begin | dict[str, Any] | None:
    """What an entry means now: None (free to claim), "inflight", "unknown" or the stored result."""
    if state is None:
        return None
    if state == "inflight":
        if expires > now:
            return "inflight"
        return None if retry_unknown else "unknown"  # the holder vanished mid-write
    if state == "unknown":
        return None if retry_unknown or expires <= now else "unknown"
    return dict(result or {}) if expires > now else None


def _judge_row(row: Any, now: float, retry_unknown: bool = False) -> Begin | dict[str, Any] | None:
    """What a stored (state, expires, result JSON) row means now; None for no row."""
    if row is None:
        return None
    return _judge(row[0], row[1], json.loads(row[2]) if row[2] else None, now, retry_unknown)


class MemoryIdempotencyStore:
    def __init__(self, clock: Any = time.time) -> None:
        self._data: dict[tuple[str, str], tuple[str, float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()
        self.clock = clock

    def begin(
        self, tenant: str, key: str, ttl: float, *, retry_unknown: bool = False
    ) -> Begin | dict[str, Any]:
        now = self.clock()
        with self._lock:
            state, expires, result = self._data.get((tenant, key)) or (None, 0.0, None)
            found = _judge(state, expires, result, now, retry_unknown)
            if found is not None:
                return found
            self._data[(tenant, key)] = ("inflight", now + max(ttl, 60.0), None)
            return "new"

    def peek(self, tenant: str, key: str) -> Begin | dict[str, Any] | None:
        with self._lock:
            state, expires, result = self._data.get((tenant, key)) or (None, 0.0, None)
        return _judge(state, expires, result, self.clock(), False)

    def complete(self, tenant: str, key: str, result: dict[str, Any], ttl: float) -> None:
        with self._lock:
            self._data[(tenant, key)] = ("done", self.clock() + ttl, result)

    def fail(self, tenant: str, key: str) -> None:
        with self._lock:
            self._data.pop((tenant, key), None)

    def unknown(self, tenant: str, key: str, reason: str) -> None:
        with self._lock:
            self._data[(tenant, key)] = ("unknown", self.clock() + UNKNOWN_TTL, {"reason": reason})


class SqliteIdempotencyStore(_Sqlite):
    schema = """CREATE TABLE IF NOT EXISTS idem (tenant TEXT, key TEXT, state TEXT, expires REAL, result TEXT,
                PRIMARY KEY (tenant, key))"""

    def __init__(self, path: str | Path, clock: Any = time.time) -> None:
        self.clock = clock
        super().__init__(path)

    def begin(
        self, tenant: str, key: str, ttl: float, *, retry_unknown: bool = False
    ) -> Begin | dict[str, Any]:
        db = self._db()
        now = self.clock()
        db.execute("BEGIN IMMEDIATE")  # one writer at a time across processes: the claim is atomic
        try:
            row = db.execute(
                "SELECT state, expires, result FROM idem WHERE tenant=? AND key=?", (tenant, key)
            ).fetchone()
            found = _judge_row(row, now, retry_unknown)
            if found is not None:
                db.execute("COMMIT")
                return found
            db.execute(
                "INSERT OR REPLACE INTO idem VALUES (?,?,?,?,NULL)",
                (tenant, key, "inflight", now + max(ttl, 60.0)),
            )
            db.execute("COMMIT")
            return "new"
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def complete(self, tenant: str, key: str, result: dict[str, Any], ttl: float) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO idem VALUES (?,?,?,?,?)",
            (tenant, key, "done", self.clock() + ttl, json.dumps(result, default=str)),
        )

    def fail(self, tenant: str, key: str) -> None:
        self._db().execute("DELETE FROM idem WHERE tenant=? AND key=?", (tenant, key))

    def peek(self, tenant: str, key: str) -> Begin | dict[str, Any] | None:
        row = (
            self._db()
            .execute("SELECT state, expires, result FROM idem WHERE tenant=? AND key=?", (tenant, key))
            .fetchone()
        )
        return _judge_row(row, self.clock())

    def unknown(self, tenant: str, key: str, reason: str) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO idem VALUES (?,?,?,?,?)",
            (tenant, key, "unknown", self.clock() + UNKNOWN_TTL, json.dumps({"reason": reason})),
        )


# --- plans
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPlan:
    """An exact call stored for a person to run later (two-phase mode)."""

    id: str
    tenant: str
    tool: str
    method: str
    params: dict[str, Any]
    risk: str
    summary: str
    api: str = "v2"
    created_at: float = field(default_factory=time.time)
    expires_at: float = 0.0
    status: str = "pending"  # pending | claimed (a person said yes; the write may be under way) | executed

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex[:12]

    def __repr__(self) -> str:
        return (
            f"StoredPlan(id={self.id!r}, tenant={self.tenant!r}, method={self.method!r}, "
            f"risk={self.risk!r}, status={self.status!r})"
        )


class PlanError(Exception):
    """A plan that cannot run: unknown, another tenant's, expired, or already run."""


@runtime_checkable
class PlanStore(Protocol):
    def save(self, plan: StoredPlan) -> None: ...

    def get(self, plan_id: str) -> StoredPlan | None: ...

    def claim(self, plan_id: str, tenant: str, now: float) -> StoredPlan: ...

    def finish(self, plan_id: str) -> None: ...


def _check_claim(plan: StoredPlan | None, plan_id: str, tenant: str, now: float) -> StoredPlan:
    if (
        plan is None or plan.tenant != tenant
    ):  # another tenant's plan is reported as unknown: no information leak
        raise PlanError(f"no plan {plan_id!r} for this portal")
    if plan.status == "executed":
        raise PlanError(f"plan {plan_id} was already executed")
    if plan.expires_at and plan.expires_at < now:
        raise PlanError(f"plan {plan_id} expired; plan the call again")
    return plan


class MemoryPlanStore:
    def __init__(self) -> None:
        self._plans: dict[str, StoredPlan] = {}
        self._lock = threading.Lock()

    def save(self, plan: StoredPlan) -> None:
        with self._lock:
            self._plans[plan.id] = plan

    def get(self, plan_id: str) -> StoredPlan | None:
        with self._lock:
            return self._plans.get(plan_id)

    def claim(self, plan_id: str, tenant: str, now: float) -> StoredPlan:
        with self._lock:
            plan = _check_claim(self._plans.get(plan_id), plan_id, tenant, now)
            self._plans[plan_id] = StoredPlan(**{**asdict(plan), "status": "claimed"})
            return plan

    def finish(self, plan_id: str) -> None:
        with self._lock:
            plan = self._plans.get(plan_id)
            if plan is not None:
                self._plans[plan_id] = StoredPlan(**{**asdict(plan), "status": "executed"})


class SqlitePlanStore(_Sqlite):
    schema = "CREATE TABLE IF NOT EXISTS plans (id TEXT PRIMARY KEY, data TEXT NOT NULL)"

    def save(self, plan: StoredPlan) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO plans VALUES (?, ?)", (plan.id, json.dumps(asdict(plan), default=str))
        )

    def get(self, plan_id: str) -> StoredPlan | None:
        row = self._db().execute("SELECT data FROM plans WHERE id=?", (plan_id,)).fetchone()
        return StoredPlan(**json.loads(row[0])) if row else None

    def claim(self, plan_id: str, tenant: str, now: float) -> StoredPlan:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            plan = _check_claim(self.get(plan_id), plan_id, tenant, now)
            db.execute(
                "UPDATE plans SET data=? WHERE id=?",
                (json.dumps({**asdict(plan), "status": "claimed"}, default=str), plan_id),
            )
            db.execute("COMMIT")
            return plan
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def finish(self, plan_id: str) -> None:
        plan = self.get(plan_id)
        if plan is not None:
            self.save(StoredPlan(**{**asdict(plan), "status": "executed"}))


def dead_letter_rows(rows: Any) -> list[dict[str, Any]]:
    """Dead-letter rows (row_id, event JSON, error, at) as both worker states return them."""
    out = []
    for row_id, event, error, at in rows:
        data = json.loads(event)
        out.append(
            {"row_id": row_id, "message_id": data.get("message_id"), "event": data, "error": error, "at": at}
        )
    return out


# --- approvals
# -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Approval:
    """One write waiting for a person's answer (the approval service's record).

    ``id`` is random and unguessable (it is in the web page's address and the chat button); ``request_id``
    binds it to the exact canonical call; ``approvers`` are the people (Bitrix24 user IDs of ``tenant``) who
    may answer. ``state`` moves once: pending → approved | rejected | edited → used (the guard consumed the
    answer). Expiry is a time, not a state: a pending approval past ``expires_at`` can no longer be answered.
    """

    id: str
    tenant: str
    request_id: str
    tool: str
    method: str
    risk: str
    summary: str
    params: dict[str, Any]
    approvers: tuple[str, ...]
    created_at: float
    expires_at: float
    state: str = "pending"  # pending | approved | rejected | edited | used
    reason: str = ""
    edit: dict[str, Any] | None = None
    answered_by: str | None = None  # the Bitrix24 user ID that answered
    channel: str | None = None  # where: bitrix24-chat | web | mcp-elicitation | terminal | ...
    answered_at: float | None = None
    answer: str | None = None  # the answer before it was used: approved | rejected | edited
    flags: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    doc: str = ""
    notes: dict[str, Any] = field(default_factory=dict)  # channel bookkeeping (chat message IDs)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex + uuid.uuid4().hex[:8]

    def expired(self, now: float) -> bool:
        return self.state == "pending" and self.expires_at <= now

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Approval:
        data = json.loads(raw)
        for key in ("approvers", "flags", "fields"):
            data[key] = tuple(str(v) for v in data.get(key) or ())
        return cls(**data)

    def __repr__(self) -> str:
        return (
            f"Approval(id={self.id[:8]}…, tenant={self.tenant!r}, method={self.method!r}, "
            f"state={self.state!r}, answered_by={self.answered_by!r})"
        )


@runtime_checkable
class ApprovalStore(Protocol):
    """Durable approvals. ``transition`` is the only change after ``create``: applied atomically and only
    when the stored state is ``expect`` — the compare-and-set that makes every answer single use."""

    def create(self, approval: Approval) -> None: ...

    def get(self, approval_id: str) -> Approval | None: ...

    def transition(self, approval_id: str, expect: str, changes: dict[str, Any]) -> Approval | None: ...

    def find(self, tenant: str, request_id: str) -> list[Approval]: ...


def _changed(approval: Approval | None, expect: str, changes: dict[str, Any]) -> Approval | None:
    if approval is None or approval.state != expect:
        return None
    return replace(approval, **changes)


class MemoryApprovalStore:
    def __init__(self) -> None:
        self._rows: dict[str, Approval] = {}
        self._lock = threading.Lock()

    def create(self, approval: Approval) -> None:
        with self._lock:
            self._rows[approval.id] = approval

    def get(self, approval_id: str) -> Approval | None:
        with self._lock:
            return self._rows.get(approval_id)

    def transition(self, approval_id: str, expect: str, changes: dict[str, Any]) -> Approval | None:
        with self._lock:
            new = _changed(self._rows.get(approval_id), expect, changes)
            if new is not None:
                self._rows[approval_id] = new
            return new

    def find(self, tenant: str, request_id: str) -> list[Approval]:
        with self._lock:
            found = [a for a in self._rows.values() if a.tenant == tenant and a.request_id == request_id]
        return sorted(found, key=lambda a: a.created_at, reverse=True)


class SqliteApprovalStore(_Sqlite):
    """Approvals in one sqlite file (one machine; several processes may share it)."""

    schema = """CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, tenant TEXT, request_id TEXT,
        created REAL, data TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS approvals_request ON approvals (tenant, request_id)"""

    def create(self, approval: Approval) -> None:
        self._db().execute(
            "INSERT INTO approvals VALUES (?, ?, ?, ?, ?)",
            (approval.id, approval.tenant, approval.request_id, approval.created_at, approval.to_json()),
        )

    def get(self, approval_id: str) -> Approval | None:
        row = self._db().execute("SELECT data FROM approvals WHERE id=?", (approval_id,)).fetchone()
        return Approval.from_json(row[0]) if row else None

    def transition(self, approval_id: str, expect: str, changes: dict[str, Any]) -> Approval | None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            new = _changed(self.get(approval_id), expect, changes)
            if new is not None:
                db.execute("UPDATE approvals SET data=? WHERE id=?", (new.to_json(), approval_id))
            db.execute("COMMIT")
            return new
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def find(self, tenant: str, request_id: str) -> list[Approval]:
        rows = self._db().execute(
            "SELECT data FROM approvals WHERE tenant=? AND request_id=? ORDER BY created DESC",
            (tenant, request_id),
        )
        return [Approval.from_json(r[0]) for r in rows]


# --- keyed records with a lifetime (the remote MCP server's sign-ins, clients, codes and tokens)
# -----------------------------------------------------------------------------------------------


@runtime_checkable
class RecordStore(Protocol):
    """JSON records by (kind, key), each with an expiry; ``take`` reads and deletes in one step (a code or a
    refresh token is used once, whichever process sees it first)."""

    def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None: ...

    def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    def take(self, kind: str, key: str) -> dict[str, Any] | None: ...

    def delete(self, kind: str, key: str) -> None: ...

    def delete_where(self, kind: str, field_name: str, value: str) -> int: ...


class MemoryRecordStore:
    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock
        self._rows: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        with self._lock:
            self._rows[(kind, key)] = (self.clock() + ttl, json.loads(json.dumps(value, default=str)))

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._rows.get((kind, key))
            return dict(row[1]) if row and row[0] > self.clock() else None

    def take(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._rows.pop((kind, key), None)
            return dict(row[1]) if row and row[0] > self.clock() else None

    def delete(self, kind: str, key: str) -> None:
        with self._lock:
            self._rows.pop((kind, key), None)

    def delete_where(self, kind: str, field_name: str, value: str) -> int:
        with self._lock:
            gone = [k for k, (_, v) in self._rows.items() if k[0] == kind and str(v.get(field_name)) == value]
            for k in gone:
                del self._rows[k]
            return len(gone)


class SqliteRecordStore(_Sqlite):
    schema = """CREATE TABLE IF NOT EXISTS records (kind TEXT, key TEXT, expires REAL, data TEXT NOT NULL,
        PRIMARY KEY (kind, key))"""

    def __init__(self, path: str | Path, clock: Any = time.time) -> None:
        super().__init__(path)
        self.clock = clock

    def put(self, kind: str, key: str, value: dict[str, Any], ttl: float) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
            (kind, key, self.clock() + ttl, json.dumps(value, default=str)),
        )

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = (
            self._db()
            .execute(
                "SELECT data FROM records WHERE kind=? AND key=? AND expires>?", (kind, key, self.clock())
            )
            .fetchone()
        )
        return dict(json.loads(row[0])) if row else None

    def take(self, kind: str, key: str) -> dict[str, Any] | None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            found = self.get(kind, key)
            db.execute("DELETE FROM records WHERE kind=? AND key=?", (kind, key))
            db.execute("COMMIT")
            return found
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def delete(self, kind: str, key: str) -> None:
        self._db().execute("DELETE FROM records WHERE kind=? AND key=?", (kind, key))

    def delete_where(self, kind: str, field_name: str, value: str) -> int:
        rows = self._db().execute("SELECT key, data FROM records WHERE kind=?", (kind,)).fetchall()
        gone = [k for k, d in rows if str(json.loads(d).get(field_name)) == value]
        for k in gone:
            self.delete(kind, k)
        return len(gone)
