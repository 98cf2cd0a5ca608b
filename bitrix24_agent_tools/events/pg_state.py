"""The offline worker's state on PostgreSQL (extra ``postgres``): many workers on many machines, one truth.

Same methods as the sqlite ``WorkerState``. Every row is keyed by a *scope* (portal | application |
connector), so one database serves many portals. The handler gets this connection inside the open transaction,
so its writes and the done mark commit together; a transaction-scoped advisory lock on the delivery makes the
done check and the handler run once across every worker. A worker re-fetches only its own reservations, and
adopts another worker's once that worker has not touched them for ``lease`` seconds.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bitrix24_agent_tools.masking import mask_text
from bitrix24_agent_tools.stores import dead_letter_rows

_SCHEMA = """
CREATE TABLE IF NOT EXISTS b24_worker_processes (scope TEXT, process_id TEXT, owner TEXT, at DOUBLE PRECISION,
    PRIMARY KEY (scope, process_id));
CREATE TABLE IF NOT EXISTS b24_worker_done (scope TEXT, row_id TEXT, message_id TEXT, at DOUBLE PRECISION,
    PRIMARY KEY (scope, row_id));
CREATE TABLE IF NOT EXISTS b24_worker_failures (scope TEXT, row_id TEXT, count INTEGER, last_error TEXT,
    PRIMARY KEY (scope, row_id));
CREATE TABLE IF NOT EXISTS b24_worker_dead (scope TEXT, row_id TEXT, event TEXT, error TEXT,
    at DOUBLE PRECISION, PRIMARY KEY (scope, row_id));
CREATE TABLE IF NOT EXISTS b24_worker_foreign (scope TEXT, process_id TEXT, first_seen DOUBLE PRECISION,
    PRIMARY KEY (scope, process_id));
"""
_SCHEMA_LOCK = (
    0x6224  # advisory lock held while creating the tables (concurrent CREATE IF NOT EXISTS can collide)
)


class PostgresWorkerState:
    """Worker state in a shared PostgreSQL database (psycopg 3)."""

    def __init__(
        self, dsn: str, *, scope: str = "default", owner: str = "worker", lease: float | None = 900.0
    ) -> None:
        import psycopg

        self.scope = scope
        self.owner = owner
        self.lease = lease
        self._dsn = dsn
        self.db: Any = psycopg.connect(dsn, autocommit=True)
        self.db.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self.db.execute(statement)
        finally:
            self.db.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))

    def recover(self) -> None:
        """A new connection after the server went away (a restart, a failover); raises while it is still
        down."""
        import contextlib

        import psycopg

        with contextlib.suppress(Exception):  # already broken
            self.db.close()
        self.db = psycopg.connect(self._dsn, autocommit=True)

    def __repr__(self) -> str:
        return f"PostgresWorkerState(scope={self.scope!r}, owner={self.owner!r})"

    def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        return self.db.execute(sql, args).fetchone()

    # -- reservations ---------------------------------------------------------------------------------------
    def open_processes(self) -> list[str]:
        """This worker's reservations, plus any whose owner has not touched them for ``lease`` seconds
        (claimed)."""
        now = time.time()
        if self.lease is not None:
            self.db.execute(
                "UPDATE b24_worker_processes SET owner=%s, at=%s WHERE scope=%s AND owner<>%s AND at<%s",
                (self.owner, now, self.scope, self.owner, now - self.lease),
            )
        self.db.execute(
            "UPDATE b24_worker_processes SET at=%s WHERE scope=%s AND owner=%s", (now, self.scope, self.owner)
        )
        rows = self.db.execute(
            "SELECT process_id FROM b24_worker_processes WHERE scope=%s AND owner=%s ORDER BY at",
            (self.scope, self.owner),
        ).fetchall()
        return [r[0] for r in rows]

    def open_process(self, process_id: str) -> None:
        self.db.execute(
            "INSERT INTO b24_worker_processes VALUES (%s,%s,%s,%s) ON CONFLICT (scope, process_id) DO UPDATE "
            "SET owner=EXCLUDED.owner, at=EXCLUDED.at",
            (self.scope, process_id, self.owner, time.time()),
        )

    def close_process(self, process_id: str) -> None:
        self.db.execute(
            "DELETE FROM b24_worker_processes WHERE scope=%s AND process_id=%s", (self.scope, process_id)
        )

    def stranded(self, seen: list[str], lease: float, now: float) -> list[str]:
        known = {
            r[0]
            for r in self.db.execute(
                "SELECT process_id FROM b24_worker_processes WHERE scope=%s", (self.scope,)
            ).fetchall()
        }
        foreign = [p for p in dict.fromkeys(seen) if p and p not in known]
        self.db.execute(
            "DELETE FROM b24_worker_foreign WHERE scope=%s AND NOT (process_id = ANY(%s))",
            (self.scope, foreign),
        )
        for process_id in foreign:
            self.db.execute(
                "INSERT INTO b24_worker_foreign VALUES (%s,%s,%s) ON CONFLICT DO NOTHING",
                (self.scope, process_id, now),
            )
        rows = self.db.execute(
            "SELECT process_id FROM b24_worker_foreign WHERE scope=%s AND first_seen<=%s",
            (self.scope, now - lease),
        ).fetchall()
        return [r[0] for r in rows]

    # -- deliveries -----------------------------------------------------------------------------------------
    def is_done(self, row_id: str) -> bool:
        return (
            self._one("SELECT 1 FROM b24_worker_done WHERE scope=%s AND row_id=%s", (self.scope, row_id))
            is not None
        )

    def is_dead(self, row_id: str) -> bool:
        return (
            self._one("SELECT 1 FROM b24_worker_dead WHERE scope=%s AND row_id=%s", (self.scope, row_id))
            is not None
        )

    def mark_done(self, row_id: str, message_id: str) -> None:
        self.db.execute(
            "WITH cleared AS (DELETE FROM b24_worker_failures WHERE scope=%s AND row_id=%s) "
            "INSERT INTO b24_worker_done VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
            (self.scope, row_id, self.scope, row_id, message_id, time.time()),
        )

    def is_settled(self, row_id: str) -> bool:
        """Done or dead-lettered already: one round trip."""
        return (
            self._one(
                "SELECT 1 FROM b24_worker_done WHERE scope=%s AND row_id=%s "
                "UNION ALL SELECT 1 FROM b24_worker_dead WHERE scope=%s AND row_id=%s LIMIT 1",
                (self.scope, row_id, self.scope, row_id),
            )
            is not None
        )

    def finish(self, row_id: str, message_id: str) -> None:
        """Mark a delivery done and commit, in one round trip (statements composed with literals, sent as one
        simple query)."""
        from psycopg import sql

        self.db.execute(
            sql.SQL(
                "WITH cleared AS (DELETE FROM b24_worker_failures WHERE scope={0} AND row_id={1}) "
                "INSERT INTO b24_worker_done VALUES ({0},{1},{2},{3}) ON CONFLICT DO NOTHING; COMMIT"
            ).format(
                sql.Literal(self.scope),
                sql.Literal(row_id),
                sql.Literal(message_id),
                sql.Literal(time.time()),
            )
        )

    def fail(self, row_id: str, error: str) -> int:
        row = self._one(
            "INSERT INTO b24_worker_failures VALUES (%s,%s,1,%s) ON CONFLICT (scope, row_id) DO UPDATE "
            "SET count=b24_worker_failures.count+1, last_error=EXCLUDED.last_error RETURNING count",
            (self.scope, row_id, error),
        )
        return int(row[0])

    def dead_letter(self, row_id: str, event: Any, error: str) -> None:
        body = json.dumps(
            {"name": event.name, "data": event.data, "message_id": event.message_id, "row_id": row_id}
        )
        self.db.execute(
            "INSERT INTO b24_worker_dead VALUES (%s,%s,%s,%s,%s) ON CONFLICT (scope, row_id) DO UPDATE "
            "SET event=EXCLUDED.event, error=EXCLUDED.error, at=EXCLUDED.at",
            (self.scope, row_id, body, mask_text(error), time.time()),
        )
        self.db.execute("DELETE FROM b24_worker_failures WHERE scope=%s AND row_id=%s", (self.scope, row_id))

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT row_id, event, error, at FROM b24_worker_dead WHERE scope=%s ORDER BY at", (self.scope,)
        ).fetchall()
        return dead_letter_rows(rows)

    def undead(self, row_id: str) -> None:
        self.db.execute("DELETE FROM b24_worker_dead WHERE scope=%s AND row_id=%s", (self.scope, row_id))

    def purge(self, row_id: str | None = None) -> int:
        if row_id:
            cur = self.db.execute(
                "DELETE FROM b24_worker_dead WHERE scope=%s AND row_id=%s", (self.scope, row_id)
            )
        else:
            cur = self.db.execute("DELETE FROM b24_worker_dead WHERE scope=%s", (self.scope,))
        return int(cur.rowcount)

    # -- the transaction a delivery is handled in
    # -------------------------------------------------------------
    def begin(self, row_id: str | None = None) -> None:
        if row_id is None:
            self.db.execute("BEGIN")
            return
        from psycopg import sql

        # One worker at a time per delivery, across machines, until COMMIT/ROLLBACK; BEGIN and the lock in one
        # round trip (one simple query; the key a literal composed by psycopg).
        self.db.execute(
            sql.SQL("BEGIN; SELECT pg_advisory_xact_lock(hashtextextended({}, 0))").format(
                sql.Literal(f"{self.scope}|{row_id}")
            )
        )

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        import psycopg

        if self.db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.db.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        import psycopg

        return bool(self.db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)
