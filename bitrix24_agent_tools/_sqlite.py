"""The one way the package opens a sqlite file: a 30 s busy timeout, WAL for files (readers never wait for the
writer), autocommit unless the caller groups statements in transactions itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_sqlite(path: str | Path, *, autocommit: bool = True, any_thread: bool = False) -> sqlite3.Connection:
    """A connection to ``path`` (":memory:" for none). ``any_thread`` lets other threads use it — the caller
    then serialises them with a lock of its own."""
    name = str(path)
    db = sqlite3.connect(
        name, timeout=30, check_same_thread=not any_thread, isolation_level=None if autocommit else "DEFERRED"
    )
    if name != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
    return db
