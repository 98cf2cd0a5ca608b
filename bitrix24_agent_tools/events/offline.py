"""The offline-queue worker: ``event.offline.get(clear=0)`` → handle → ``error``/``clear``, crash-safe (protocol.md §7).

Exactly-once effects per MESSAGE_ID: the handler runs inside a sqlite transaction of the worker's state database
and the "done" mark is written in the *same* transaction, so a crash anywhere either keeps both or neither; the
portal's rows are cleared only after that commit. Reserved rows survive a crash: the worker keeps its
``process_id`` in the state file and asks for them again on restart. The portal code path is written once as a
generator flow, driven by :class:`OfflineWorker` (sync) and :class:`AsyncOfflineWorker` (asyncio).
"""

from __future__ import annotations

import inspect
import json
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """Durable worker state in sqlite: process id, done MESSAGE_IDs, failure counts, dead letters."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS done (message_id TEXT PRIMARY KEY, at REAL);
            CREATE TABLE IF NOT EXISTS failures (message_id TEXT PRIMARY KEY, count INTEGER, last_error TEXT);
            CREATE TABLE IF NOT EXISTS dlq (message_id TEXT PRIMARY KEY, event TEXT, error TEXT, at REAL);
        """)

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (key, value))

    def is_done(self, message_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM done WHERE message_id=?", (message_id,)).fetchone() is not None

    def is_dead(self, message_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM dlq WHERE message_id=?", (message_id,)).fetchone() is not None

    def fail(self, message_id: str, error: str) -> int:
        self.db.execute("INSERT INTO failures VALUES (?,1,?) ON CONFLICT(message_id) DO UPDATE SET count=count+1, last_error=?",
                        (message_id, error, error))
        return int(self.db.execute("SELECT count FROM failures WHERE message_id=?", (message_id,)).fetchone()[0])

    def dead_letter(self, event: Event, error: str) -> None:
        body = json.dumps({"name": event.name, "data": event.data, "message_id": event.message_id})
        self.db.execute("INSERT OR REPLACE INTO dlq VALUES (?,?,?,?)", (event.message_id, body, mask_text(error), time.time()))

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT message_id, event, error, at FROM dlq ORDER BY at").fetchall()
        return [{"message_id": m, "event": json.loads(e), "error": err, "at": at} for m, e, err, at in rows]

    def purge(self, message_id: str | None = None) -> int:
        cur = self.db.execute("DELETE FROM dlq" + (" WHERE message_id=?" if message_id else ""), (message_id,) if message_id else ())
        return cur.rowcount


Handler = Callable[..., Any]


def _wants_db(handler: Handler) -> bool:
    try:
        params = [p for p in inspect.signature(handler).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


class _Core:
    def __init__(self, handler: Handler, state_path: str | Path, *, budget: int = 5, limit: int = 50,
                 auth_connector: str | None = None) -> None:
        self.handler = handler
        self.state = WorkerState(state_path)
        self.budget = budget
        self.limit = limit
        self.auth_connector = auth_connector
        self._wants_db = _wants_db(handler)
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()

    def wake(self) -> None:
        """Call on ONOFFLINEEVENT: fetch now instead of waiting for the idle timer."""
        self.wake_event.set()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_event.set()

    def _cycle(self) -> Generator[tuple[str, Any], Any, Stats]:
        stats = Stats()
        params: dict[str, Any] = {"clear": 0, "limit": self.limit}
        process_id = self.state.get("process_id")
        if not process_id:
            # Chosen and stored *before* the first get, so a crash right after it cannot strand reserved rows
            # under an id nobody remembers. UNVERIFIED that a real portal accepts a client-chosen process_id;
            # whatever id it answers with is stored below and used from then on.
            import uuid

            process_id = uuid.uuid4().hex
            self.state.set("process_id", process_id)
        params["process_id"] = process_id  # rows a crashed run reserved come back to us
        if self.auth_connector:
            params["auth_connector"] = self.auth_connector
        response = yield ("call", ("event.offline.get", params))
        result = response.result if isinstance(response.result, dict) else {}
        process_id = str(result.get("process_id") or process_id or "")
        if process_id:
            self.state.set("process_id", process_id)
        finished: list[str] = []
        failed: list[str] = []
        for row in result.get("events") or []:
            stats.fetched += 1
            event = Event(str(row.get("EVENT_NAME", "")).upper(), dict(row.get("EVENT_DATA") or {}),
                          message_id=str(row.get("MESSAGE_ID")))
            message_id = str(event.message_id)
            if self.state.is_done(message_id) or self.state.is_dead(message_id):
                stats.skipped += 1
                finished.append(message_id)
                continue
            self.state.db.execute("BEGIN IMMEDIATE")
            try:
                yield ("handle", event)
                self.state.db.execute("INSERT INTO done VALUES (?,?)", (message_id, time.time()))
                self.state.db.execute("COMMIT")
            except Exception as exc:  # the handler's own writes roll back with it
                self.state.db.execute("ROLLBACK")
                error = f"{type(exc).__name__}: {exc}"
                count = self.state.fail(message_id, mask_text(error))
                stats.failed += 1
                stats.errors.append(mask_text(error))
                if count >= self.budget:
                    self.state.dead_letter(event, error)
                    stats.dead += 1
                    failed.append(message_id)
                continue
            stats.handled += 1
            finished.append(message_id)
        if failed:
            # Dead letters are marked failed on the portal, then cleared: our DLQ holds them now.
            yield ("call", ("event.offline.error", {"process_id": process_id, "message_id": failed}))
        done = finished + failed
        if done:
            yield ("call", ("event.offline.clear", {"process_id": process_id, "message_id": done}))
            stats.cleared = len(done)
        return stats

    def _handle_sync(self, event: Event) -> None:
        result = self.handler(event, self.state.db) if self._wants_db else self.handler(event)
        if inspect.isawaitable(result):
            raise TypeError("an async handler needs AsyncOfflineWorker")

    def replay_flow(self) -> Generator[tuple[str, Any], Any, int]:
        """Run the handler again for every dead letter; a success marks it done and removes it."""
        replayed = 0
        for item in self.state.dead_letters():
            raw = item["event"]
            event = Event(raw["name"], raw["data"], message_id=raw["message_id"])
            self.state.db.execute("BEGIN IMMEDIATE")
            try:
                yield ("handle", event)
                self.state.db.execute("INSERT OR IGNORE INTO done VALUES (?,?)", (event.message_id, time.time()))
                self.state.db.execute("DELETE FROM dlq WHERE message_id=?", (event.message_id,))
                self.state.db.execute("COMMIT")
                replayed += 1
            except Exception:
                self.state.db.execute("ROLLBACK")
        return replayed


class OfflineWorker(_Core):
    """Synchronous offline-queue worker."""

    def __init__(self, client: Bitrix24, handler: Handler, state_path: str | Path, **kwargs: Any) -> None:
        super().__init__(handler, state_path, **kwargs)
        self.client = client

    def _drive(self, flow: Generator[tuple[str, Any], Any, Any]) -> Any:
        try:
            kind, payload = next(flow)
            while True:
                if kind == "call":
                    value = self.client.call(*payload)
                else:
                    try:
                        self._handle_sync(payload)
                    except Exception as exc:
                        kind, payload = flow.throw(exc)
                        continue
                    value = None
                kind, payload = flow.send(value)
        except StopIteration as stop:
            return stop.value

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

    def run_forever(self, *, idle: float = 5.0, max_backoff: float = 60.0, install_signals: bool = True) -> None:
        """Loop until SIGTERM/SIGINT or :meth:`stop`; sleeps when idle, backs off when the portal errs."""
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        backoff = 1.0
        while not self.stop_event.is_set():
            try:
                stats = self.run_once()
                backoff = 1.0
            except WorkerStopped:
                raise
            except Bitrix24Error as exc:
                log.warning("offline worker: portal error %s; backing off %.0fs", exc.code, backoff)
                self.stop_event.wait(backoff)
                backoff = min(max_backoff, backoff * 2)
                continue
            if stats.fetched == 0:
                self.wake_event.wait(idle)
                self.wake_event.clear()


class AsyncOfflineWorker(_Core):
    """The asyncio twin: the same flow, awaited; the handler may be sync or async."""

    def __init__(self, client: AsyncBitrix24, handler: Handler, state_path: str | Path, **kwargs: Any) -> None:
        super().__init__(handler, state_path, **kwargs)
        self.client = client

    async def _drive(self, flow: Generator[tuple[str, Any], Any, Any]) -> Any:
        try:
            kind, payload = next(flow)
            while True:
                if kind == "call":
                    value = await self.client.call(*payload)
                else:
                    try:
                        result = self.handler(payload, self.state.db) if self._wants_db else self.handler(payload)
                        if inspect.isawaitable(result):
                            await result
                    except Exception as exc:
                        kind, payload = flow.throw(exc)
                        continue
                    value = None
                kind, payload = flow.send(value)
        except StopIteration as stop:
            return stop.value

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
            except Bitrix24Error as exc:
                log.warning("offline worker: portal error %s; backing off %.0fs", exc.code, backoff)
                await asyncio.sleep(backoff)
                backoff = min(max_backoff, backoff * 2)
                continue
            if stats.fetched == 0:
                await asyncio.sleep(idle)
