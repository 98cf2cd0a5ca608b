"""The online inbox and tenant registry, on sqlite (one machine) or PostgreSQL (replicas), and the consumer
that drains what a handler could not finish.

An event is stored before the portal gets its 200 and leased to the request that handles it; a failure
releases it with a count, and :class:`InboxConsumer` claims released (or abandoned) events with the same retry
budget and dead-letter queue as the offline worker. Claims are atomic across processes (``BEGIN IMMEDIATE`` on
sqlite, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two handler replicas never run one event at once.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from bitrix24_agent_tools._sqlite import open_sqlite
from bitrix24_agent_tools.masking import get_logger, mask_text, register_secret

log = get_logger(__name__)
LEASE = 300.0  # seconds the request that stored an event holds it while its handler runs
Row = tuple[int, Any, int]  # (row id, Event, failures so far)


def _body(event: Any) -> str:
    return json.dumps(
        {
            "event": event.name,
            "data": event.data,
            "ts": event.ts,
            "auth": {k: event.auth.get(k) for k in ("domain", "member_id", "user_id")},
        }
    )  # no tokens at rest


def _event(body: str) -> Any:
    from bitrix24_agent_tools.events.online import Event

    raw = json.loads(body)
    return Event(raw["event"], raw["data"], raw["auth"], raw["ts"])


class Inbox:
    """Durable inbox of verified events on sqlite: written before the portal gets its 200."""

    _COLUMNS: ClassVar[dict[str, str]] = {
        "failures": "INTEGER DEFAULT 0",
        "last_error": "TEXT",
        "dead": "INTEGER DEFAULT 0",
        "lease_until": "REAL DEFAULT 0",
    }

    def __init__(self, path: str | Path, *, lease: float = LEASE) -> None:
        self.lease = lease
        self._db = open_sqlite(path, any_thread=True)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS inbox (id INTEGER PRIMARY KEY, at REAL, name TEXT, body TEXT, done "
            "INTEGER DEFAULT 0)"
        )
        have = {row[1] for row in self._db.execute("PRAGMA table_info(inbox)")}
        for column, kind in self._COLUMNS.items():  # inboxes written by earlier versions gain the columns
            if column not in have:
                self._db.execute(f"ALTER TABLE inbox ADD COLUMN {column} {kind}")
        self._lock = threading.Lock()

    def put(self, event: Any) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO inbox (at, name, body, lease_until) VALUES (?,?,?,?)",
                (time.time(), event.name, _body(event), time.time() + self.lease),
            )
            return int(cursor.lastrowid or 0)

    def done(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE inbox SET done=1 WHERE id=?", (row_id,))

    def release(self, row_id: int, error: str, retry_in: float = 0.0) -> int:
        """A handler failed: count it and let the consumer take the event after ``retry_in`` seconds."""
        with self._lock:
            self._db.execute(
                "UPDATE inbox SET failures=failures+1, last_error=?, lease_until=? WHERE id=?",
                (mask_text(error)[:500], time.time() + retry_in, row_id),
            )
            row = self._db.execute("SELECT failures FROM inbox WHERE id=?", (row_id,)).fetchone()
        return int(row[0]) if row else 0

    def bury(self, row_id: int, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE inbox SET dead=1, last_error=? WHERE id=?", (mask_text(error)[:500], row_id)
            )

    def claim(self, limit: int = 20, lease: float | None = None) -> list[Row]:
        """Events not done, not dead, whose lease ran out: leased to the caller (atomic across processes)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    "SELECT id, body, failures FROM inbox WHERE done=0 AND dead=0 AND lease_until<=? "
                    "ORDER BY id LIMIT ?",
                    (now, limit),
                ).fetchall()
                self._db.executemany(
                    "UPDATE inbox SET lease_until=? WHERE id=?",
                    [(now + (lease if lease is not None else self.lease), r[0]) for r in rows],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [(int(r[0]), _event(r[1]), int(r[2] or 0)) for r in rows]

    def ping(self) -> None:
        """Raises when the inbox cannot be read (what /healthz reports)."""
        with self._lock:
            self._db.execute("SELECT 1 FROM inbox LIMIT 1").fetchall()

    def pending(self) -> list[tuple[int, Any]]:
        """Every event not handled yet and not dead-lettered, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM inbox WHERE done=0 AND dead=0 ORDER BY id"
            ).fetchall()
        return [(int(row_id), _event(body)) for row_id, body in rows]

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body, last_error, failures FROM inbox WHERE dead=1 ORDER BY id"
            ).fetchall()
        return [{"id": r[0], "event": _event(r[1]), "error": r[2], "failures": r[3]} for r in rows]


class PostgresInbox:
    """The inbox on PostgreSQL (extra ``postgres``), shared by any number of handler replicas."""

    _SCHEMA = """CREATE TABLE IF NOT EXISTS b24_inbox (id BIGSERIAL PRIMARY KEY, at DOUBLE PRECISION,
        name TEXT, body TEXT, done BOOLEAN DEFAULT FALSE, failures INTEGER DEFAULT 0, last_error TEXT,
        dead BOOLEAN DEFAULT FALSE, lease_until DOUBLE PRECISION DEFAULT 0)"""

    def __init__(self, dsn: str, *, lease: float = LEASE) -> None:
        import psycopg

        self.lease = lease
        self._dsn = dsn
        self._lock = threading.Lock()
        self._db: Any = psycopg.connect(dsn, autocommit=True)
        self._db.execute("SELECT pg_advisory_lock(25156)")
        try:
            self._db.execute(self._SCHEMA)
        finally:
            self._db.execute("SELECT pg_advisory_unlock(25156)")

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        """One statement; a connection the server dropped (a restart) is reopened once."""
        import psycopg

        with self._lock:
            try:
                return self._db.execute(sql, args)
            except psycopg.OperationalError:
                self._db = psycopg.connect(self._dsn, autocommit=True)
                return self._db.execute(sql, args)

    def put(self, event: Any) -> int:
        row = self._run(
            "INSERT INTO b24_inbox (at, name, body, lease_until) VALUES (%s,%s,%s,%s) RETURNING id",
            (time.time(), event.name, _body(event), time.time() + self.lease),
        ).fetchone()
        return int(row[0])

    def done(self, row_id: int) -> None:
        self._run("UPDATE b24_inbox SET done=TRUE WHERE id=%s", (row_id,))

    def release(self, row_id: int, error: str, retry_in: float = 0.0) -> int:
        row = self._run(
            "UPDATE b24_inbox SET failures=failures+1, last_error=%s, lease_until=%s WHERE id=%s "
            "RETURNING failures",
            (mask_text(error)[:500], time.time() + retry_in, row_id),
        ).fetchone()
        return int(row[0]) if row else 0

    def bury(self, row_id: int, error: str) -> None:
        self._run(
            "UPDATE b24_inbox SET dead=TRUE, last_error=%s WHERE id=%s", (mask_text(error)[:500], row_id)
        )

    def claim(self, limit: int = 20, lease: float | None = None) -> list[Row]:
        now = time.time()
        rows = self._run(
            "UPDATE b24_inbox SET lease_until=%s WHERE id IN (SELECT id FROM b24_inbox WHERE NOT done AND "
            "NOT dead AND lease_until<=%s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
            "RETURNING id, body, failures",
            (now + (lease if lease is not None else self.lease), now, limit),
        ).fetchall()
        return sorted((int(r[0]), _event(r[1]), int(r[2] or 0)) for r in rows)

    def ping(self) -> None:
        self._run("SELECT 1").fetchall()

    def pending(self) -> list[tuple[int, Any]]:
        rows = self._run("SELECT id, body FROM b24_inbox WHERE NOT done AND NOT dead ORDER BY id").fetchall()
        return [(int(r[0]), _event(r[1])) for r in rows]

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self._run(
            "SELECT id, body, last_error, failures FROM b24_inbox WHERE dead ORDER BY id"
        ).fetchall()
        return [{"id": r[0], "event": _event(r[1]), "error": r[2], "failures": r[3]} for r in rows]


class TenantRegistry:
    """Application tokens per tenant (member_id and domain), kept in sqlite; filled by ONAPPINSTALL."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self._db = open_sqlite(path, any_thread=True)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tenants (member_id TEXT PRIMARY KEY, domain TEXT, app_token TEXT, "
            "auth TEXT)"
        )

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def install(
        self, member_id: str, domain: str, application_token: str, auth: Mapping[str, Any] | None = None
    ) -> None:
        register_secret(application_token)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tenants VALUES (?,?,?,?)",
                (member_id, domain, application_token, json.dumps(dict(auth or {}))),
            )

    def uninstall(self, member_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM tenants WHERE member_id=?", (member_id,))

    def member_for_domain(self, domain: str) -> str | None:
        """The member_id a domain is registered to, if any."""
        row = self._one("SELECT member_id FROM tenants WHERE lower(domain)=lower(?)", (domain,))
        return str(row[0]) if row else None

    def token_for(self, member_id: str | None, domain: str | None) -> str | None:
        found = self.tenant(member_id, domain)
        return found[1] if found else None

    def tenant(self, member_id: str | None, domain: str | None) -> tuple[str, str] | None:
        """(domain, application_token) of an installed tenant, by member_id (or by domain when none is
        given)."""
        row = self._one(
            "SELECT domain, app_token FROM tenants WHERE member_id=? OR (? IS NULL AND domain=?)",
            (member_id, member_id, domain),
        )
        if row:
            register_secret(row[1])
        return (str(row[0] or ""), str(row[1])) if row else None


class PostgresTenantRegistry(TenantRegistry):
    """The tenant registry on PostgreSQL, shared by handler replicas."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self._dsn = dsn
        self._lock = threading.Lock()
        self._db: Any = psycopg.connect(dsn, autocommit=True)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS b24_tenants (member_id TEXT PRIMARY KEY, domain TEXT, "
            "app_token TEXT, auth TEXT)"
        )

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        import psycopg

        sql = sql.replace("?", "%s").replace("FROM tenants", "FROM b24_tenants")
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchone()
            except psycopg.OperationalError:
                self._db = psycopg.connect(self._dsn, autocommit=True)
                return self._db.execute(sql, args).fetchone()

    def install(
        self, member_id: str, domain: str, application_token: str, auth: Mapping[str, Any] | None = None
    ) -> None:
        register_secret(application_token)
        self._one(
            "INSERT INTO b24_tenants VALUES (?,?,?,?) ON CONFLICT (member_id) DO UPDATE SET "
            "domain=EXCLUDED.domain, app_token=EXCLUDED.app_token, auth=EXCLUDED.auth RETURNING member_id",
            (member_id, domain, application_token, json.dumps(dict(auth or {}))),
        )

    def uninstall(self, member_id: str) -> None:
        self._one("DELETE FROM b24_tenants WHERE member_id=? RETURNING member_id", (member_id,))

    def tenant(self, member_id: str | None, domain: str | None) -> tuple[str, str] | None:
        row = self._one(
            "SELECT domain, app_token FROM tenants WHERE member_id=? OR (?::text IS NULL AND domain=?)",
            (member_id, member_id, domain),
        )
        if row:
            register_secret(row[1])
        return (str(row[0] or ""), str(row[1])) if row else None


def open_inbox(target: str | Path) -> Inbox | PostgresInbox:
    """An inbox: a ``postgresql://`` DSN (replicas share it) or a sqlite file path."""
    text = str(target)
    return PostgresInbox(text) if text.startswith(("postgres://", "postgresql://")) else Inbox(target)


def open_tenants(target: str | Path) -> TenantRegistry:
    """A tenant registry: a ``postgresql://`` DSN or a sqlite file path."""
    text = str(target)
    return (
        PostgresTenantRegistry(text)
        if text.startswith(("postgres://", "postgresql://"))
        else TenantRegistry(target)
    )


class InboxConsumer:
    """Drains the events a handler could not finish (or whose request died), with a retry budget and a
    dead-letter queue, like the offline worker. Run one beside the ASGI app, or several on a shared
    PostgreSQL inbox."""

    def __init__(
        self,
        inbox: Any,
        handler: Callable[[Any], Any],
        *,
        budget: int = 5,
        lease: float = 60.0,
        retry_in: float = 5.0,
    ) -> None:
        self.inbox = inbox
        self.handler = handler
        self.budget = budget
        self.lease = lease
        self.retry_in = retry_in
        self.stop_event = threading.Event()
        self.health: dict[str, Any] = {"ok": True, "error": None}

    def _settle(self, row_id: int, error: BaseException | None) -> None:
        if error is None:
            self.inbox.done(row_id)
            return
        text = f"{type(error).__name__}: {error}"
        if self.inbox.release(row_id, text, self.retry_in) >= self.budget:
            log.warning("inbox event %s dead-lettered after %d failures", row_id, self.budget)
            self.inbox.bury(row_id, text)

    def drain(self) -> int:
        """Handle every event that is due now; returns how many were handled."""
        handled = 0
        for row_id, event, _failures in self.inbox.claim(lease=self.lease):
            try:
                result = self.handler(event)
                if inspect.isawaitable(result):
                    asyncio.run(_await(result))
            except Exception as exc:
                self._settle(row_id, exc)
                continue
            self._settle(row_id, None)
            handled += 1
        return handled

    async def adrain(self) -> int:
        handled = 0
        for row_id, event, _failures in await asyncio.to_thread(self.inbox.claim, 20, self.lease):
            try:
                result = self.handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                await asyncio.to_thread(self._settle, row_id, exc)
                continue
            await asyncio.to_thread(self._settle, row_id, None)
            handled += 1
        return handled

    def run_forever(self, *, idle: float = 2.0, max_backoff: float = 60.0) -> None:
        """Drain until :meth:`stop`; a store failure is waited out with backoff, never died of."""
        backoff = 1.0
        while not self.stop_event.is_set():
            try:
                handled = self.drain()
                self.health = {"ok": True, "error": None}
                backoff = 1.0
            except Exception as exc:
                self.health = {"ok": False, "error": f"{type(exc).__name__}: {mask_text(str(exc))[:200]}"}
                log.warning("inbox consumer: %s; retrying in %.0fs", self.health["error"], backoff)
                self.stop_event.wait(backoff)
                backoff = min(max_backoff, backoff * 2)
                continue
            if not handled:
                self.stop_event.wait(idle)

    def stop(self) -> None:
        self.stop_event.set()


async def _await(awaitable: Any) -> Any:
    return await awaitable
