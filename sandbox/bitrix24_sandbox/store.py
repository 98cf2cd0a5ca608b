"""What a method sees of the portal: its data and the few services a method uses — not the portal.

Methods (``@method`` in each area's module) receive a :class:`Store`: the tables of records, id counters, the
portal clock, events, the cost model's meter and the few settings a method reads (its address for download
URLs, the signing key, installed applications). The portal core keeps the rest out of a method's reach:
credentials (``credentials.py``), limits and faults (``limits.py``), dispatch and serving (``portal.py``,
``server.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bitrix24_sandbox.query import KeyCache
from bitrix24_sandbox.types import SandboxApp

__all__ = ["Store"]


class Store:
    """A portal's data and a method's services."""

    __slots__ = (
        "_base_url",
        "_charge",
        "_emit",
        "_ids",
        "_wall",
        "apps",
        "clock",
        "download_secret",
        "events",
        "key_cache",
        "smart_types",
        "started_at",
        "tables",
    )

    def __init__(
        self,
        tables: dict[str, Any],
        ids: dict[str, int],
        *,
        clock: Callable[[], float],
        started_at: float,
        wall: Callable[[float | None], float],
        emit: Callable[[str, dict[str, Any], dict[str, Any] | None], None],
        charge: Callable[..., None],
        base_url: Callable[[], str],
        download_secret: bytes,
        apps: Mapping[str, SandboxApp],
        events: Any,
        smart_types: dict[int, str],
        key_cache: KeyCache,
    ) -> None:
        self.tables = tables  # kind → {id: record}
        self._ids = ids
        self.clock = clock
        self.started_at = started_at
        self._wall = wall
        self._emit = emit
        self._charge = charge
        self._base_url = base_url
        self.download_secret = download_secret  # signs Drive download URLs
        self.apps = apps  # installed applications, read-only here (app.info)
        self.events = events  # the event hub: bots' handlers are delivered to through it
        self.smart_types = smart_types  # smart-process type id → title
        self.key_cache = key_cache  # each table's ids, listed once per change (query.id_window)

    def next_id(self, kind: str) -> int:
        """The next id of a kind of record (ids are never reused)."""
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def wall(self, moment: float | None = None) -> float:
        """A portal-clock moment (now by default) as a unix timestamp."""
        return self._wall(moment)

    def emit(self, event: str, data: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        """Raise a portal event (delivered to bound handlers, queued offline)."""
        self._emit(event, data, params)

    def charge(self, *, items: int = 0, counted: bool = False, offset: Any = 0) -> None:
        """Report a list's work (rows read, a COUNT, an offset); the cost model makes it processing time."""
        self._charge(items=items, counted=counted, offset=offset)

    @property
    def base_url(self) -> str:
        """Where clients reach the portal (the loopback server's address while it is served)."""
        return self._base_url()
