"""Events without loss: verified online handlers and a crash-safe offline-queue worker."""

from bitrix24_agent_tools.events.inbox import (
    Inbox,
    InboxConsumer,
    PostgresInbox,
    PostgresTenantRegistry,
    TenantRegistry,
    open_inbox,
    open_tenants,
)
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
    PortalCallback,
    asgi_app,
    parse_event,
)

__all__ = [
    "AsyncOfflineWorker",
    "Event",
    "EventRejected",
    "EventVerifier",
    "Inbox",
    "InboxConsumer",
    "OfflineWorker",
    "PortalCallback",
    "PostgresInbox",
    "PostgresTenantRegistry",
    "Stats",
    "TenantRegistry",
    "WorkerState",
    "WorkerStopped",
    "asgi_app",
    "open_inbox",
    "open_tenants",
    "parse_event",
]
