"""Events without loss: verified online handlers and a crash-safe offline-queue worker."""

from bitrix24_agent_tools.events.offline import (
    AsyncOfflineWorker,
    OfflineWorker,
    Stats,
    WorkerState,
    WorkerStopped,
)
from bitrix24_agent_tools.events.online import (
    Event,
    EventRejected,
    EventVerifier,
    Inbox,
    PortalCallback,
    TenantRegistry,
    asgi_app,
    parse_event,
)

__all__ = [
    "AsyncOfflineWorker",
    "Event",
    "EventRejected",
    "EventVerifier",
    "Inbox",
    "OfflineWorker",
    "PortalCallback",
    "Stats",
    "TenantRegistry",
    "WorkerState",
    "WorkerStopped",
    "asgi_app",
    "parse_event",
]
