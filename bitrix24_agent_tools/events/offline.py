"""The offline-queue worker: reserve with ``event.offline.get(clear=0)`` → handle → clear by row id
(protocol.md §7).

As the server implements the queue (Bitrix core ``rest`` module, ``lib/api/event.php``,
``lib/eventoffline.php``): new rows are reserved only by a ``get`` *without* ``process_id``; the portal
answers with a fresh id, which the worker stores at once and uses only to fetch again what it reserved before
a crash. A delivery is a row ``ID``: ``MESSAGE_ID`` is the same for every change of one record, so it
identifies nothing.

Exactly once per delivery: the handler runs inside a transaction of the worker's state database, the done mark
for that row id is written in the *same* transaction, and the done check sits inside it too (two workers on
one state file cannot both run a handler); the portal's rows are cleared only after that commit. A poison row
goes to the local dead-letter queue after ``budget`` failures and is then cleared (``event.offline.error``
would delete other pending changes of the same record on the server, so it is not used). The portal code path
is written once as a generator flow, driven by :class:`OfflineWorker` (sync) and :class:`AsyncOfflineWorker`
(asyncio).
"""

from __future__ import annotations

import inspect
import json
import signal
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitrix24_agent_tools._sqlite import open_sqlite
from bitrix24_agent_tools._steps import adrive, drive
from bitrix24_agent_tools.client import (
    AccessDenied,
    AsyncBitrix24,
    AuthError,
    Bitrix24,
    Bitrix24Error,
    ScopeError,
)
from bitrix24_agent_tools.events.online import Event
from bitrix24_agent_tools.masking import get_logger, mask_text
from bitrix24_agent_tools.stores import dead_letter_rows


@dataclass(frozen=True)
class PortalStep:
    """A worker flow's step: call this portal method (the driver's client does)."""

    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class HandleStep:
    """A worker flow's step: run the handler on this event (its error is thrown back into the flow)."""

    event: Event


Step = PortalStep | HandleStep

log = get_logger(__name__)
FATAL = (AuthError, ScopeError, AccessDenied)


class WorkerStopped(Exception):
    """A fatal portal answer (auth, scope, rights): retrying cannot help; the message says what to fix."""


@dataclass
class Stats:
    fetched: int = 0
    handled: int = 0
    skipped: int = 0
    failed: int = 0
    dead: int = 0
    cleared: int = 0
    errors: list[str] = field(default_factory=list)


class WorkerState:
    """Durable worker state in sqlite: open reservations, done row ids, failure counts, dead letters.

    The embedded default. ``events.pg_state.PostgresWorkerState`` has the same methods on a shared PostgreSQL
    database, for workers on several machines.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = open_sqlite(self.path, any_thread=True)
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS processes (process_id TEXT PRIMARY KEY, at REAL);
            CREATE TABLE IF NOT EXISTS done_rows (row_id TEXT PRIMARY KEY, message_id TEXT, at REAL);
            CREATE TABLE IF NOT EXISTS row_failures (row_id TEXT PRIMARY KEY, count INTEGER, last_error TEXT);
            CREATE TABLE IF NOT EXISTS dead_rows (row_id TEXT PRIMARY KEY, event TEXT, error TEXT, at REAL);
            CREATE TABLE IF NOT EXISTS foreign_processes (process_id TEXT PRIMARY KEY, first_seen REAL);
        """)

    def stranded(self, seen: list[str], lease: float, now: float) -> list[str]:
        """Of the reservations seen on the portal that are not ours, those seen for longer than ``lease``."""
        ours = set(self.open_processes())
        foreign = [p for p in dict.fromkeys(seen) if p and p not in ours]
        marks = ",".join("?" * len(foreign))
        self.db.execute(
            f"DELETE FROM foreign_processes WHERE process_id NOT IN ({marks})"
            if foreign
            else "DELETE FROM foreign_processes",
            foreign,
        )
        for process_id in foreign:
            self.db.execute("INSERT OR IGNORE INTO foreign_processes VALUES (?,?)", (process_id, now))
        rows = self.db.execute(
            "SELECT process_id FROM foreign_processes WHERE first_seen <= ?", (now - lease,)
        ).fetchall()
        return [r[0] for r in rows]

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))

    def open_processes(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT process_id FROM processes ORDER BY at").fetchall()]

    def open_process(self, process_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO processes VALUES (?,?)", (process_id, time.time()))

    def close_process(self, process_id: str) -> None:
        self.db.execute("DELETE FROM processes WHERE process_id=?", (process_id,))

    def is_done(self, row_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM done_rows WHERE row_id=?", (row_id,)).fetchone() is not None

    def is_dead(self, row_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM dead_rows WHERE row_id=?", (row_id,)).fetchone() is not None

    def mark_done(self, row_id: str, message_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO done_rows VALUES (?,?,?)", (row_id, message_id, time.time()))
        self.db.execute("DELETE FROM row_failures WHERE row_id=?", (row_id,))

    def is_settled(self, row_id: str) -> bool:
        """Done or dead-lettered already (one query)."""
        return (
            self.db.execute(
                "SELECT 1 FROM done_rows WHERE row_id=? UNION ALL SELECT 1 FROM dead_rows WHERE row_id=?",
                (row_id, row_id),
            ).fetchone()
            is not None
        )

    def finish(self, row_id: str, message_id: str) -> None:
        """Mark a delivery done and commit its transaction."""
        self.mark_done(row_id, message_id)
        self.commit()

    def fail(self, row_id: str, error: str) -> int:
        self.db.execute(
            "INSERT INTO row_failures VALUES (?,1,?) ON CONFLICT(row_id) DO UPDATE SET count=count+1, "
            "last_error=?",
            (row_id, error, error),
        )
        return int(self.db.execute("SELECT count FROM row_failures WHERE row_id=?", (row_id,)).fetchone()[0])

    def dead_letter(self, row_id: str, event: Event, error: str) -> None:
        body = json.dumps(
            {"name": event.name, "data": event.data, "message_id": event.message_id, "row_id": row_id}
        )
        self.db.execute(
            "INSERT OR REPLACE INTO dead_rows VALUES (?,?,?,?)", (row_id, body, mask_text(error), time.time())
        )
        self.db.execute("DELETE FROM row_failures WHERE row_id=?", (row_id,))

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT row_id, event, error, at FROM dead_rows ORDER BY at").fetchall()
        return dead_letter_rows(rows)

    def purge(self, row_id: str | None = None) -> int:
        cur = self.db.execute(
            "DELETE FROM dead_rows" + (" WHERE row_id=?" if row_id else ""), (row_id,) if row_id else ()
        )
        return cur.rowcount

    def undead(self, row_id: str) -> None:
        self.db.execute("DELETE FROM dead_rows WHERE row_id=?", (row_id,))

    def begin(self, row_id: str | None = None) -> None:
        """Open the transaction a delivery is handled in; one writer at a time on this file."""
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")


Handler = Callable[..., Any]


def _wants_db(handler: Handler) -> bool:
    try:
        params = [
            p
            for p in inspect.signature(handler).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


def open_state(state: Any, *, scope: str, owner: str, lease: float | None) -> Any:
    """A worker state from what the caller gave: a state object, a ``postgresql://`` URL, or a sqlite path."""
    if isinstance(state, (str, Path)) and str(state).startswith(("postgresql://", "postgres://")):
        from bitrix24_agent_tools.events.pg_state import PostgresWorkerState

        return PostgresWorkerState(str(state), scope=scope, owner=owner, lease=lease)
    if isinstance(state, (str, Path)):
        return WorkerState(state)
    return state


class _Core:
    def __init__(
        self,
        handler: Handler,
        state_path: str | Path | Any,
        *,
        budget: int = 5,
        limit: int = 50,
        auth_connector: str | None = None,
        recover_after: float | None = 900.0,
        scope: str = "default",
        worker_id: str | None = None,
    ) -> None:
        import socket

        self.handler = handler
        # worker_id: stable across restarts (so a restarted worker takes its reservations back at once);
        # workers sharing one PostgreSQL state need distinct ids (default: this host's name).
        self.worker_id = worker_id or socket.gethostname()
        self.state = open_state(
            state_path, scope=f"{scope}|{auth_connector or ''}", owner=self.worker_id, lease=recover_after
        )
        self.budget = budget
        self.limit = limit
        self.auth_connector = auth_connector
        self._wants_db = _wants_db(handler)
        # Rows reserved under a process id nobody holds (a worker killed between the portal's answer and
        # storing the id, or a lost state file) are adopted once they have stayed reserved this long.
        # UNVERIFIED: no doc says how long a live worker may hold a reservation; keep this above your longest
        # handling time when several workers with separate state files share one application (None turns
        # adoption off).
        self.recover_after = recover_after
        self.recover_interval = min(60.0, recover_after / 4) if recover_after is not None else 60.0
        self._recovered_at = 0.0
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        # What a supervisor or a /healthz reads: ok, and the last dependency failure while one lasts.
        self.health: dict[str, Any] = {"ok": True, "error": None, "since": None, "failures": 0}

    def _dependency_failed(self, exc: BaseException, backoff: float) -> None:
        """A database, disk or network failure outside the portal: logged, reported as unhealthy, and the
        state's connection reopened before the next try. Nothing acknowledged is lost: a cycle that failed
        rolled back with its handler's writes, and its rows stay reserved on the portal."""
        first = self.health["ok"]
        self.health.update(
            ok=False,
            error=f"{type(exc).__name__}: {mask_text(str(exc))[:200]}",
            since=self.health["since"] or time.time(),
            failures=self.health["failures"] + 1,
        )
        (log.exception if first else log.warning)(
            "offline worker: %s; retrying in %.0fs", self.health["error"], backoff
        )
        recover = getattr(self.state, "recover", None)
        if recover is not None:
            try:
                recover()
            except Exception as again:  # still down: the next round tries again
                log.warning("offline worker: state not back yet (%s)", type(again).__name__)

    def _healthy(self) -> None:
        if not self.health["ok"]:
            log.warning("offline worker: recovered after %d failures", self.health["failures"])
        self.health.update(ok=True, error=None, since=None, failures=0)

    def wake(self) -> None:
        """Call on ONOFFLINEEVENT: fetch now instead of waiting for the idle timer."""
        self.wake_event.set()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_event.set()

    def _cycle(self) -> Generator[Step, Any, Stats]:
        stats = Stats()
        # Rows this state reserved earlier (a crash, or failures waiting for another try) come back first.
        for process_id in self.state.open_processes():
            yield from self._process(process_id, stats, refetch=True)
        yield from self._process(None, stats, refetch=False)
        # Stranded reservations are looked for when idle and, under steady traffic, at least every
        # recover_interval seconds: a busy worker must not leave them reserved for ever.
        now = time.time()
        if self.recover_after is not None and (
            stats.fetched == 0 or now - self._recovered_at >= self.recover_interval
        ):
            self._recovered_at = now
            yield from self._recover(stats)
        return stats

    def _recover(self, stats: Stats) -> Generator[Step, Any, None]:
        """Find reservations no worker of this state holds (``event.offline.list`` shows PROCESS_ID) and adopt
        the ones that stayed reserved longer than ``recover_after``."""
        assert self.recover_after is not None
        params: dict[str, Any] = {"filter": {"!PROCESS_ID": ""}}
        if self.auth_connector:
            params["auth_connector"] = self.auth_connector
        response = yield PortalStep("event.offline.list", params)
        rows = response.result if isinstance(response.result, list) else []
        seen = [str(r.get("PROCESS_ID") or "") for r in rows if isinstance(r, dict)]
        for process_id in self.state.stranded(seen, self.recover_after, time.time()):
            log.warning("offline worker: adopting rows reserved under a lost process id")
            self.state.open_process(process_id)
            yield from self._process(process_id, stats, refetch=True)

    def _get_params(self, process_id: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"clear": 0, "limit": self.limit}
        if process_id is not None:
            params["process_id"] = process_id
        if self.auth_connector:
            params["auth_connector"] = self.auth_connector
        return params

    def _process(self, process_id: str | None, stats: Stats, *, refetch: bool) -> Generator[Step, Any, None]:
        # Without a process_id the portal reserves new rows under a fresh id; with one it returns only rows
        # already reserved under it (lib/api/event.php eventOfflineGet).
        response = yield PortalStep("event.offline.get", self._get_params(process_id))
        result = response.result if isinstance(response.result, dict) else {}
        events = result.get("events") or []
        if isinstance(events, dict):
            events = list(events.values())
        if process_id is None:
            process_id = str(result.get("process_id") or "")
            if not events or not process_id:
                return
            self.state.open_process(
                process_id
            )  # stored before anything is handled: a crash can re-fetch them
        if not events:
            self.state.close_process(process_id)
            return
        finished: list[int] = []
        pending = 0
        for row in events:
            stats.fetched += 1
            row_id = str(row.get("ID"))
            event = Event(
                str(row.get("EVENT_NAME", "")).upper(),
                dict(row.get("EVENT_DATA") or {}),
                message_id=str(row.get("MESSAGE_ID")),
                row_id=row_id,
            )
            outcome = yield from self._handle_row(row_id, event, stats)
            if outcome == "pending":
                pending += 1
            elif str(row_id).isdigit():
                finished.append(int(row_id))
        if finished:
            yield PortalStep("event.offline.clear", {"process_id": process_id, "id": finished})
            stats.cleared += len(finished)
        if not pending:
            self.state.close_process(process_id)

    def _handle_row(self, row_id: str, event: Event, stats: Stats) -> Generator[Step, Any, str]:
        """Run the handler for one delivery, at most once: "done", "pending" (retry later) or "dead"."""
        state = self.state
        state.begin(row_id)
        try:
            if state.is_settled(row_id):  # done or dead already: checked inside the transaction
                state.commit()
                stats.skipped += 1
                return "done"
            yield HandleStep(event)
            state.finish(row_id, str(event.message_id))  # marked done and committed together
        except Exception as exc:  # the handler's own writes roll back with it
            state.rollback()
            error = mask_text(f"{type(exc).__name__}: {exc}")
            stats.failed += 1
            stats.errors.append(error)
            if state.fail(row_id, error) >= self.budget:
                state.dead_letter(row_id, event, error)
                stats.dead += 1
                return "dead"
            return "pending"
        except BaseException:  # cancelled or closed mid-handler: leave no transaction open behind
            state.rollback()
            raise
        stats.handled += 1
        return "done"

    def _handle_sync(self, event: Event) -> None:
        result = self.handler(event, self.state.db) if self._wants_db else self.handler(event)
        if inspect.isawaitable(result):
            raise TypeError("an async handler needs AsyncOfflineWorker")

    def replay_flow(self) -> Generator[Step, Any, int]:
        """Run the handler again for every dead letter; a success marks it done and removes it — once, however
        many times replay runs (the dead-letter check and the removal share one transaction)."""
        replayed = 0
        for item in self.state.dead_letters():
            raw = item["event"]
            event = Event(raw["name"], raw["data"], message_id=raw["message_id"], row_id=item["row_id"])
            state = self.state
            state.begin(item["row_id"])
            try:
                if not state.is_dead(item["row_id"]):
                    state.commit()
                    continue
                yield HandleStep(event)
                state.mark_done(item["row_id"], str(event.message_id))
                state.undead(item["row_id"])
                state.commit()
                replayed += 1
            except Exception:
                state.rollback()
            except BaseException:
                state.rollback()
                raise
        return replayed

    def adopt_flow(self, process_id: str) -> Generator[Step, Any, Stats]:
        """Take over rows reserved under ``process_id`` by a worker whose state was lost (see README:
        events)."""
        self.state.open_process(process_id)
        stats = Stats()
        yield from self._process(process_id, stats, refetch=True)
        return stats


def _scope_of(client: Any) -> str:
    """Whose queue this is: the portal and the application (a shared state holds many)."""
    auth = getattr(client, "auth", None)
    return f"{getattr(client, 'portal', '')}|{getattr(auth, 'client_id', '')}"


class OfflineWorker(_Core):
    """Synchronous offline-queue worker."""

    def __init__(
        self, client: Bitrix24, handler: Handler, state_path: str | Path | Any, **kwargs: Any
    ) -> None:
        kwargs.setdefault("scope", _scope_of(client))
        super().__init__(handler, state_path, **kwargs)
        self.client = client

    def _drive(self, flow: Generator[Step, Any, Any]) -> Any:
        try:
            return drive(flow, self._step)
        except BaseException:
            flow.close()
            raise

    def _step(self, step: Step) -> Any:
        if isinstance(step, PortalStep):
            return self.client.call(step.method, step.params)
        self._handle_sync(step.event)
        return None

    def run_once(self) -> Stats:
        """One fetch–handle–clear cycle."""
        try:
            stats: Stats = self._drive(self._cycle())
        except FATAL as exc:
            raise WorkerStopped(exc.short()) from None
        return stats

    def replay(self) -> int:
        result: int = self._drive(self.replay_flow())
        return result

    def adopt(self, process_id: str) -> Stats:
        """Handle and clear the rows a lost worker reserved under ``process_id``."""
        stats: Stats = self._drive(self.adopt_flow(process_id))
        return stats

    def run_forever(
        self, *, idle: float = 5.0, max_backoff: float = 60.0, install_signals: bool = True
    ) -> None:
        """Loop until SIGTERM/SIGINT or :meth:`stop`; sleeps when idle, backs off when the portal errs."""
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        backoff = 1.0
        while not self.stop_event.is_set():
            try:
                stats = self.run_once()
                backoff = 1.0
                self._healthy()
            except WorkerStopped:
                raise
            except Bitrix24Error as exc:
                log.warning("offline worker: portal error %s; backing off %.0fs", exc.code, backoff)
                self.stop_event.wait(backoff)
                backoff = min(max_backoff, backoff * 2)
                continue
            except Exception as exc:  # a dependency (database, disk): waited out, never died of
                self._dependency_failed(exc, backoff)
                self.stop_event.wait(backoff)
                backoff = min(max_backoff, backoff * 2)
                continue
            if stats.fetched == 0:
                self.wake_event.wait(idle)
                self.wake_event.clear()


class AsyncOfflineWorker(_Core):
    """The asyncio twin: the same flow, awaited; the handler may be sync or async."""

    def __init__(
        self, client: AsyncBitrix24, handler: Handler, state_path: str | Path | Any, **kwargs: Any
    ) -> None:
        kwargs.setdefault("scope", _scope_of(client))
        super().__init__(handler, state_path, **kwargs)
        self.client = client

    async def _drive(self, flow: Generator[Step, Any, Any]) -> Any:
        try:
            return await adrive(flow, self._step)
        except BaseException:
            flow.close()  # a cancelled run rolls back its open transaction instead of wedging the state file
            raise

    async def _step(self, step: Step) -> Any:
        if isinstance(step, PortalStep):
            return await self.client.call(step.method, step.params)
        event = step.event
        result = self.handler(event, self.state.db) if self._wants_db else self.handler(event)
        if inspect.isawaitable(result):
            await result
        return None

    async def replay(self) -> int:
        result: int = await self._drive(self.replay_flow())
        return result

    async def run_once(self) -> Stats:
        try:
            stats: Stats = await self._drive(self._cycle())
        except FATAL as exc:
            raise WorkerStopped(exc.short()) from None
        return stats

    async def run_forever(self, *, idle: float = 5.0, max_backoff: float = 60.0) -> None:
        import asyncio

        backoff = 1.0
        while not self.stop_event.is_set():
            try:
                stats = await self.run_once()
                backoff = 1.0
                self._healthy()
            except WorkerStopped:
                raise
            except Bitrix24Error as exc:
                log.warning("offline worker: portal error %s; backing off %.0fs", exc.code, backoff)
                await asyncio.sleep(backoff)
                backoff = min(max_backoff, backoff * 2)
                continue
            except Exception as exc:  # a dependency (database, disk): waited out, never died of
                self._dependency_failed(exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(max_backoff, backoff * 2)
                continue
            if stats.fetched == 0:
                await asyncio.sleep(idle)
