"""Online events: parse the portal's POST, verify ``application_token`` in constant time, persist, then
handle.

Online events are delivered once with no retry (protocol.md §7), so the ASGI app writes each verified event to
a durable inbox *before* it answers 200, and only then hands it to your handler; a crash in between loses
nothing.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from bitrix24_agent_tools.masking import get_logger, register_secret

log = get_logger(__name__)


class EventRejected(Exception):
    """An incoming event that must not be processed (malformed, unknown tenant, wrong token)."""


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]
    auth: dict[str, Any] = field(default_factory=dict)
    ts: int | None = None
    handler_id: str | None = None
    message_id: str | None = None
    row_id: str | None = None  # offline queue: the delivery's row ID (the identity of one change)

    @property
    def member_id(self) -> str | None:
        return self.auth.get("member_id")

    @property
    def domain(self) -> str | None:
        return self.auth.get("domain")

    def __repr__(self) -> str:
        return f"Event(name={self.name!r}, domain={self.domain!r}, data={self.data!r})"


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        parts = [head] + [p.rstrip("]") for p in key[len(head) :].split("[")[1:]]
        node = out
        for part in parts[:-1]:
            nxt = node.get(part)
            if not isinstance(nxt, dict):
                nxt = node[part] = {}
            node = nxt
        node[parts[-1]] = value
    return out


def parse_event(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> Event:
    """A typed Event from a form-encoded (``data[FIELDS][ID]=5``) or JSON body; EventRejected if malformed."""
    try:
        if "json" in content_type:
            raw = json.loads(body)
        else:
            raw = _nest(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventRejected("malformed event body") from exc
    if not isinstance(raw, Mapping) or not raw.get("event"):
        raise EventRejected("not a Bitrix24 event (no 'event' field)")
    auth: Mapping[str, Any] = raw["auth"] if isinstance(raw.get("auth"), Mapping) else {}
    data = raw.get("data") or {}
    if not isinstance(data, Mapping):
        raise EventRejected("event data is not a map")
    # Nothing is registered as a secret here: an unverified request must not be able to make us mask (and slow
    # down on) strings of its choosing. The verifier registers the tokens of an event it accepted.
    ts = str(raw.get("ts") or "")
    return Event(
        name=str(raw["event"]).upper(),
        data=dict(data),
        auth={str(k): v for k, v in auth.items()},
        ts=int(ts) if ts.isdigit() else None,
        handler_id=str(raw.get("event_handler_id") or "") or None,
    )


_HOST = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+(?::\d{1,5})?$"
)


class PortalCallback:
    """Confirms an install with the portal itself: the delivered access token must work on the portal the
    event names (``app.info`` on ``https://<domain>/rest/``; api-reference/common/system/app-info.md). A
    made-up install for another portal's domain has no token that portal accepts. The domain must be a host
    name (no IP literal, no ``localhost``), so an install cannot make us call into our own network."""

    def __init__(self, transport: Any = None, *, timeout: float = 10.0, scheme: str = "https") -> None:
        self.transport = transport
        self.timeout = timeout
        self.scheme = scheme

    def __call__(self, event: Event) -> bool:
        import ipaddress

        import httpx

        domain, token = str(event.domain or ""), str(event.auth.get("access_token") or "")
        host = domain.rsplit(":", 1)[0]
        if not token or not _HOST.match(domain) or host.lower().endswith("localhost"):
            return False
        try:
            ipaddress.ip_address(host)
            return False  # an IP literal
        except ValueError:
            pass
        try:
            with httpx.Client(transport=self.transport, timeout=self.timeout) as http:
                answer = http.post(f"{self.scheme}://{domain}/rest/app.info", data={"auth": token})
            body = answer.json() if answer.status_code == 200 else {}
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("install of %s not confirmed: %s", domain, type(exc).__name__)
            return False
        return isinstance(body, dict) and isinstance(body.get("result"), dict)


class EventVerifier:
    """Checks that an event comes from a portal that installed us: its application_token must match
    (constant time). A first install is trusted only once the portal confirms it (``confirm_install``,
    default :class:`PortalCallback`), and never for a domain another member_id already holds."""

    def __init__(
        self, tenants: TenantRegistry, *, confirm_install: Callable[[Event], bool] | None = None
    ) -> None:
        self.tenants = tenants
        self.confirm_install = confirm_install if confirm_install is not None else PortalCallback()

    def verify(self, event: Event) -> Event:
        given = str(event.auth.get("application_token") or "")
        known = self.tenants.tenant(event.member_id, event.domain)
        if event.name == "ONAPPINSTALL" and known is None:
            # First contact: nothing to compare with yet; store the token the portal sends (protocol.md §7).
            if not (given and event.member_id):
                raise EventRejected("ONAPPINSTALL without application_token or member_id")
            owner = self.tenants.member_for_domain(str(event.domain or "")) if event.domain else None
            if owner is not None and owner != str(event.member_id):
                raise EventRejected("ONAPPINSTALL for a domain another member_id holds")
            if not self.confirm_install(event):
                raise EventRejected("ONAPPINSTALL the portal did not confirm")
            self.tenants.install(str(event.member_id), str(event.domain or ""), given, event.auth)
            self._accepted(event)
            return event
        # Everything else — a repeated ONAPPINSTALL included — must carry the token we hold: anyone could send
        # an ONAPPINSTALL for a member_id they know and take its events over otherwise. To change a tenant's
        # token, uninstall it (ONAPPUNINSTALL with the old token, or TenantRegistry.uninstall) first.
        if known is None or not hmac.compare_digest(known[1].encode(), given.encode()):
            log.warning("rejected %s: unknown tenant or wrong application_token", event.name)
            raise EventRejected("unknown tenant or wrong application_token")
        if known[0] and event.domain and str(event.domain).lower() != known[0].lower():
            log.warning("rejected %s: auth[domain] does not match the tenant's portal", event.name)
            raise EventRejected("auth[domain] does not match the installed tenant")
        if event.name == "ONAPPUNINSTALL":
            self.tenants.uninstall(str(event.member_id))
        self._accepted(event)
        return event

    @staticmethod
    def _accepted(event: Event) -> None:
        for key in ("access_token", "refresh_token", "application_token"):
            register_secret(str(event.auth.get(key) or ""))


Handler = Callable[[Event], Any | Awaitable[Any]]


MAX_BODY = 1 << 20  # an event POST is a few KB; anything near a megabyte is not a portal's


def _storage_failure(exc: BaseException) -> bool:
    """A failure of the store (sqlite, a full disk, PostgreSQL, Redis), not of the request."""
    import sqlite3

    module = type(exc).__module__.split(".", 1)[0]
    return isinstance(exc, (sqlite3.Error, OSError)) or module in ("psycopg", "redis")


async def read_body(receive: Callable[[], Awaitable[dict[str, Any]]], max_body: int) -> tuple[bytes, bool]:
    """An ASGI request's body, read to its end (the connection stays usable) but kept only up to
    ``max_body`` bytes; the flag says it was longer (answer 413, parse nothing)."""
    body = b""
    too_big = False
    while True:
        message = await receive()
        if not too_big:
            body += message.get("body", b"")
            too_big = len(body) > max_body
        if not message.get("more_body"):
            return body, too_big


def asgi_app(
    verifier: EventVerifier,
    handler: Handler,
    inbox: Inbox,
    *,
    max_body: int = MAX_BODY,
    concurrency: int = 8,
) -> Callable[..., Awaitable[None]]:
    """A minimal ASGI app: POST an event → verify → persist → 200 → handle. 403 for anything unverified,
    413 for a body over ``max_body``, 503 when the inbox or the tenant registry cannot be written (the portal
    sees a failure, never a forgery); no request body or header can make it answer 500. ``GET /healthz``
    answers 200 while the inbox can be read, else 503.

    A plain handler runs in a thread, a coroutine handler as a task, at most ``concurrency`` at once, so one
    slow handler never holds the answers to other events."""
    import asyncio
    import inspect

    slots = asyncio.Semaphore(concurrency) if concurrency > 0 else None

    async def app(
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body, too_big = await read_body(receive, max_body)
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope.get("headers", [])
        }
        status, row_id, event = 200, 0, None
        if scope.get("method") == "GET" and scope.get("path", "").rstrip("/").endswith("/healthz"):
            try:
                inbox.ping()
            except Exception as exc:
                log.warning("healthz: the inbox cannot be read (%s)", type(exc).__name__)
                status = 503
        elif scope.get("method") != "POST":
            status = 405
        elif too_big:
            status = 413
        else:
            try:
                parsed = parse_event(body, headers.get("content-type", ""))
                # verification may call the portal back (a first install): off the event loop
                event = await asyncio.to_thread(verifier.verify, parsed)
                row_id = inbox.put(event)
            except EventRejected:
                status, event = 403, None
            except Exception as exc:
                if _storage_failure(exc):  # nothing stored: the portal must see a failure, not a forgery
                    log.error("event not stored (%s): answered 503", type(exc).__name__)
                    status, event = 503, None
                else:  # an odd body must never become a 500 with a traceback
                    log.warning("rejected an event body that could not be read")
                    status, event = 403, None
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        reason = {200: b"ok", 503: b"unavailable"}.get(status, b"rejected")
        await send({"type": "http.response.body", "body": reason})
        if event is not None and status == 200:
            try:
                if slots is not None:
                    await slots.acquire()
                try:
                    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
                        type(handler).__call__
                    ):
                        await handler(event)
                    else:  # a plain function: off the event loop
                        result = await asyncio.to_thread(handler, event)
                        if inspect.isawaitable(result):
                            await result
                finally:
                    if slots is not None:
                        slots.release()
                inbox.done(row_id)
            except Exception as exc:  # kept: the InboxConsumer takes it again, with a budget and a DLQ
                log.exception("event handler failed for %s; kept in the inbox", event.name)
                try:
                    inbox.release(row_id, f"{type(exc).__name__}: {exc}")
                except Exception:  # the store is down too: the event stays leased and is retried later
                    log.warning("could not release event %s; it is retried when its lease ends", row_id)

    return app


from bitrix24_agent_tools.events.inbox import Inbox as Inbox  # noqa: E402  (it reads Event lazily)
from bitrix24_agent_tools.events.inbox import TenantRegistry as TenantRegistry  # noqa: E402
