"""Online events: parsed from the portal's form POST, verified in constant time, persisted before the 200."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.events import (
    Event,
    EventRejected,
    EventVerifier,
    Inbox,
    PortalCallback,
    TenantRegistry,
    asgi_app,
    parse_event,
)
from bitrix24_agent_tools.sandbox import Portal


def _app_portal() -> tuple[Portal, Any, Bitrix24]:
    portal = Portal(seed=1)
    app = portal.register_app()
    tokens = portal.install_app(app)
    client = Bitrix24(
        portal.app_auth(app, tokens),
        transport=portal.transport(),
    )
    client.call("event.bind", {"event": "ONCRMDEALUPDATE", "handler": "https://app.example/hook"})
    return portal, app, client


def _verifier(tenants: TenantRegistry, portal: Portal) -> EventVerifier:
    """A verifier whose install callback reaches the sandbox portal (in-process)."""
    return EventVerifier(tenants, confirm_install=PortalCallback(transport=portal.transport()))


def _deal_update_event(portal: Portal) -> bytes:
    """A deal changes on the portal: the ONCRMDEALUPDATE body it POSTs to the handler."""
    Bitrix24(portal.webhook_url, transport=portal.transport()).call(
        "crm.deal.update", {"id": 3, "fields": {"TITLE": "y"}}
    )
    return bytes(portal.events.deliveries[-1][1])


def _install_body(portal: Portal, app: Any) -> bytes:
    from urllib.parse import urlencode

    from bitrix24_agent_tools.sandbox.events import form_encode

    auth = {
        "domain": portal.domain,
        "member_id": portal.member_id,
        "application_token": app.application_token,
        "access_token": portal.issue_tokens(app)["access_token"],  # a token the portal accepts
    }
    return urlencode(form_encode({"event": "ONAPPINSTALL", "data": {"VERSION": "1"}, "auth": auth})).encode()


def test_the_portal_posts_form_encoded_nested_keys_that_parse_into_an_event() -> None:
    portal, app, _ = _app_portal()
    Bitrix24(portal.webhook_url, transport=portal.transport()).call(
        "crm.deal.update", {"id": 3, "fields": {"TITLE": "x"}}
    )
    url, body = portal.events.deliveries[-1]
    event = parse_event(body)
    assert url == "https://app.example/hook" and b"data%5BFIELDS%5D%5BID%5D=3" in body
    assert event.name == "ONCRMDEALUPDATE" and event.data == {"FIELDS": {"ID": "3"}}
    assert event.member_id == portal.member_id and event.auth["application_token"] == app.application_token
    assert app.application_token not in repr(event)


def test_json_bodies_parse_too_and_garbage_is_rejected() -> None:
    assert (
        parse_event(b'{"event": "onTaskAdd", "data": {"FIELDS_AFTER": {"ID": 5}}}', "application/json").name
        == "ONTASKADD"
    )
    for bad in (b"", b"%%%", b"event=", b'{"x": 1}'):
        with pytest.raises(EventRejected):
            parse_event(
                bad, "application/json" if bad.startswith(b"{") else "application/x-www-form-urlencoded"
            )


async def test_asgi_app_verifies_persists_then_handles(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    portal, app, _client = _app_portal()
    handled: list[Event] = []
    tenants = TenantRegistry(tmp_path / "tenants.sqlite3")
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    asgi = asgi_app(_verifier(tenants, portal), handled.append, inbox)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="https://app.example"
    ) as http:
        assert (
            await http.post("/hook", content=_install_body(portal, app), headers=headers)
        ).status_code == 200
        good = _deal_update_event(portal)
        assert (await http.post("/hook", content=good, headers=headers)).status_code == 200
        forged = good.replace(app.application_token.encode(), b"f" * len(app.application_token))
        with caplog.at_level(logging.WARNING):
            assert (await http.post("/hook", content=forged, headers=headers)).status_code == 403
        stranger = good.replace(portal.member_id.encode(), b"someoneelse")
        assert (await http.post("/hook", content=stranger, headers=headers)).status_code == 403
        assert (await http.get("/hook")).status_code == 405
    assert [e.name for e in handled] == ["ONAPPINSTALL", "ONCRMDEALUPDATE"]
    assert inbox.pending() == []
    assert app.application_token not in caplog.text and "rejected ONCRMDEALUPDATE" in caplog.text


async def test_a_failing_handler_leaves_the_event_in_the_inbox(tmp_path: Path) -> None:
    portal, app, _ = _app_portal()
    tenants = TenantRegistry()
    inbox = Inbox(tmp_path / "inbox.sqlite3")

    def boom(event: Event) -> None:
        raise RuntimeError("downstream down")

    asgi = asgi_app(_verifier(tenants, portal), boom, inbox)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="https://app.example"
    ) as http:
        response = await http.post(
            "/hook",
            content=_install_body(portal, app),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200  # the portal never retries; we keep the event instead
    assert [e.name for _, e in inbox.pending()] == ["ONAPPINSTALL"]


def test_uninstall_removes_the_tenant() -> None:
    portal, app, _ = _app_portal()
    tenants = TenantRegistry()
    verifier = _verifier(tenants, portal)
    verifier.verify(parse_event(_install_body(portal, app)))
    auth = {
        "member_id": portal.member_id,
        "domain": portal.domain,
        "application_token": app.application_token,
    }
    verifier.verify(Event("ONAPPUNINSTALL", {}, auth))
    with pytest.raises(EventRejected):
        verifier.verify(Event("ONCRMDEALADD", {}, auth))


async def test_a_second_onappinstall_cannot_take_a_tenant_over(tmp_path: Path) -> None:
    portal, app, _client = _app_portal()
    tenants = TenantRegistry()
    asgi = asgi_app(_verifier(tenants, portal), lambda e: None, Inbox(tmp_path / "inbox.sqlite3"))
    headers = {"content-type": "application/x-www-form-urlencoded"}
    takeover = _install_body(portal, app).replace(
        app.application_token.encode(), b"a" * len(app.application_token)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="https://app.example"
    ) as http:
        assert (
            await http.post("/hook", content=_install_body(portal, app), headers=headers)
        ).status_code == 200
        assert (await http.post("/hook", content=takeover, headers=headers)).status_code == 403
    assert tenants.token_for(portal.member_id, None) == app.application_token


def test_a_rejected_request_registers_no_secret_and_a_foreign_domain_is_refused() -> None:
    from bitrix24_agent_tools.masking import mask_text
    from bitrix24_agent_tools.sandbox.events import form_encode

    portal, app, _client = _app_portal()
    tenants = TenantRegistry()
    verifier = _verifier(tenants, portal)
    verifier.verify(parse_event(_install_body(portal, app)))
    from urllib.parse import urlencode

    chosen = "attacker-chosen-string-123"
    forged = urlencode(
        form_encode(
            {
                "event": "ONCRMDEALUPDATE",
                "data": {},
                "auth": {
                    "member_id": portal.member_id,
                    "domain": portal.domain,
                    "application_token": "wrong",
                    "access_token": chosen,
                },
            }
        )
    )
    with pytest.raises(EventRejected):
        verifier.verify(parse_event(forged.encode()))
    assert mask_text(chosen) == chosen  # not registered as a secret by an unverified request
    other = urlencode(
        form_encode(
            {
                "event": "ONCRMDEALUPDATE",
                "data": {},
                "auth": {
                    "member_id": portal.member_id,
                    "domain": "evil.bitrix24.com",
                    "application_token": app.application_token,
                },
            }
        )
    )
    with pytest.raises(EventRejected, match="domain"):
        verifier.verify(parse_event(other.encode()))


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"event=X&data=notamap&auth[application_token]=t", "application/x-www-form-urlencoded"),
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
        (b'{"event": "X", "data": [1, 2]}', "application/json"),
        (b"x" * (2 << 20), "application/x-www-form-urlencoded"),
    ],
)
async def test_odd_or_huge_bodies_never_answer_500(tmp_path: Path, body: bytes, content_type: str) -> None:
    asgi = asgi_app(
        _verifier(TenantRegistry(), Portal(seed=1)), lambda e: None, Inbox(tmp_path / "inbox.sqlite3")
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="https://app.example"
    ) as http:
        status = (await http.post("/hook", content=body, headers={"content-type": content_type})).status_code
    assert status in (403, 413)
    assert status == 413 if len(body) > (1 << 20) else status == 403


async def test_a_storage_failure_answers_503_not_403_and_healthz_says_so(tmp_path: Path) -> None:
    """The inbox cannot be written (a full disk): the portal is answered 503 — a visible failure, never a
    forgery's 403 — and /healthz reports it."""
    import sqlite3

    portal, app, _ = _app_portal()
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    asgi = asgi_app(_verifier(TenantRegistry(), portal), lambda e: None, inbox)
    headers = {"content-type": "application/x-www-form-urlencoded"}

    def full(event: Event) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="https://app.example"
    ) as http:
        assert (await http.get("/healthz")).status_code == 200
        inbox.put = full  # type: ignore[method-assign]
        inbox.ping = lambda: full(None)  # type: ignore[method-assign,arg-type]
        response = await http.post("/hook", content=_install_body(portal, app), headers=headers)
        assert response.status_code == 503
        assert (await http.get("/healthz")).status_code == 503


async def test_a_plain_handler_runs_off_the_event_loop(tmp_path: Path) -> None:
    """Two events whose plain handlers take 0.3 s each are answered and handled side by side, not one after
    the other on the event loop."""
    import asyncio
    import threading
    import time

    portal, app, _ = _app_portal()
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    tenants = TenantRegistry()
    threads: set[int] = set()

    def slow(event: Event) -> None:
        threads.add(threading.get_ident())
        time.sleep(0.3)

    asgi = asgi_app(_verifier(tenants, portal), slow, inbox)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="https://app.example"
    ) as http:
        assert (
            await http.post("/hook", content=_install_body(portal, app), headers=headers)
        ).status_code == 200
        writer = Bitrix24(portal.webhook_url, transport=portal.transport())
        writer.call("crm.deal.update", {"id": 3, "fields": {"TITLE": "a"}})
        writer.call("crm.deal.update", {"id": 2, "fields": {"TITLE": "b"}})
        bodies = [d[1] for d in portal.events.deliveries[-2:]]
        started = time.monotonic()
        answers = await asyncio.gather(*(http.post("/hook", content=b, headers=headers) for b in bodies))
        elapsed = time.monotonic() - started
    assert [a.status_code for a in answers] == [200, 200]
    assert elapsed < 0.55 and threading.get_ident() not in threads
    assert inbox.pending() == []


def test_an_install_is_trusted_only_once_the_portal_confirms_it(tmp_path: Path) -> None:
    """A made-up member_id claiming a portal's domain with a token that portal does not accept is refused and
    registered nowhere; a domain another member_id holds is refused even with a good token."""
    portal, app, _ = _app_portal()
    tenants = TenantRegistry()
    verifier = _verifier(tenants, portal)
    body = _install_body(portal, app)
    forged = parse_event(body)
    forged.auth["member_id"], forged.auth["access_token"] = "made-up-member", "not-a-token-the-portal-knows"
    with pytest.raises(EventRejected, match="did not confirm"):
        verifier.verify(forged)
    assert tenants.member_for_domain(portal.domain) is None and tenants.tenant("made-up-member", None) is None
    verifier.verify(parse_event(body))  # the portal's own install, with its token: accepted
    squatter = parse_event(_install_body(portal, app))
    squatter.auth["member_id"] = "another-member"
    with pytest.raises(EventRejected, match="another member_id holds"):
        verifier.verify(squatter)
    for host in ("127.0.0.1", "localhost", "10.0.0.5:8080", "evil.example/x"):
        event = parse_event(body)
        event.auth["domain"] = host
        assert not PortalCallback(transport=portal.transport())(event), host


async def test_what_a_handler_could_not_finish_is_drained_with_a_budget_and_a_dead_letter_queue(
    tmp_path: Path,
) -> None:
    from bitrix24_agent_tools.events import InboxConsumer

    portal, app, _ = _app_portal()
    inbox = Inbox(tmp_path / "inbox.sqlite3")
    failures = {"ONAPPINSTALL": 2}

    def flaky(event: Event) -> None:
        if failures.get(event.name, 0) > 0:
            failures[event.name] -= 1
            raise RuntimeError("downstream down")
        if event.name == "ONCRMDEALUPDATE":
            raise ValueError("poison")

    asgi = asgi_app(_verifier(TenantRegistry(), portal), flaky, inbox)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi), base_url="https://app.example"
    ) as http:
        assert (
            await http.post("/hook", content=_install_body(portal, app), headers=headers)
        ).status_code == 200
        good = _deal_update_event(portal)
        assert (await http.post("/hook", content=good, headers=headers)).status_code == 200
    consumer = InboxConsumer(inbox, flaky, budget=3, retry_in=0.0)
    handled = sum(consumer.drain() for _ in range(4))
    assert handled == 1 and failures["ONAPPINSTALL"] == 0  # the install went through on its third try
    dead = inbox.dead_letters()
    assert [d["event"].name for d in dead] == ["ONCRMDEALUPDATE"] and dead[0]["failures"] == 3
    assert inbox.pending() == []
