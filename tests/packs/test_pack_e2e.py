"""Each pack, end to end: its tools driven through the Toolbox (guard, confirmation, audit) against the
sandbox, and the sandbox's final state checked. Application-only methods run with an OAuth application, as on
a real portal."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.packs.render import rows_of
from bitrix24_agent_tools.router import route
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox


def _app_client(portal: Portal, clock: Any) -> Bitrix24:
    app = portal.register_app()
    tokens = portal.install_app(app)
    return Bitrix24(
        portal.app_auth(app, tokens),
        transport=portal.transport(),
        clock=clock,
        sleep=clock.sleep,
    )


def _box(client: Bitrix24, pack: str) -> tuple[Toolbox, AutoConfirmer]:
    confirmer = AutoConfirmer(destructive=True)  # the person says yes to everything, destructive included
    return Toolbox(client, packs=("core", pack), guard=Guard(Policy.admin(), confirmer)), confirmer


def _ok(box: Toolbox, tool: str, args: dict[str, Any]) -> Any:
    out = box.run(tool, args)
    assert not out.is_error, out.content
    return out


def _call(box: Toolbox, pack: str, method: str, params: dict[str, Any] | None = None) -> Any:
    return _ok(box, f"b24_{pack}_call", {"method": method, "params": params or {}}).artifact


def test_comms(client: Bitrix24, portal: Portal, clock: Any) -> None:
    box, confirmer = _box(client, "comms")
    _ok(box, "b24_chat_send", {"dialog_id": "2", "message": "Lunch at noon?"})
    _ok(box, "b24_notify", {"user_id": 3, "message": "Report is ready"})
    # telephony works only in the context of an application (telephony-external-call-register.md)
    refused = box.run(
        "b24_comms_call",
        {
            "method": "telephony.externalCall.register",
            "params": {"USER_ID": 1, "PHONE_NUMBER": "1", "TYPE": 2},
        },
    )
    assert refused.is_error and "WRONG_AUTH_TYPE" in refused.content and "e.g. params" not in refused.content
    app_box = Toolbox(_app_client(portal, clock), packs=("core", "comms"), guard=box.guard)
    call = _call(
        app_box,
        "comms",
        "telephony.externalCall.register",
        {"USER_ID": 1, "PHONE_NUMBER": "+1 555 010001", "TYPE": 2},
    )
    _call(
        app_box,
        "comms",
        "telephony.externalCall.finish",
        {"CALL_ID": call["CALL_ID"], "USER_ID": 1, "DURATION": 42},
    )
    history = [m["text"] for m in portal.state["message"].values() if m["dialogId"] == "2"]
    assert history == ["Lunch at noon?"] and portal.state["notification"][1]["userId"] == 3
    assert (
        portal.state["telephony_call"][call["CALL_ID"]]["CALL_DURATION"] == 42
        and call["CRM_ENTITY_TYPE"] == "COMPANY"
    )
    assert [s.method for s in confirmer.seen] == [
        "im.message.add",
        "im.notify.system.add",
        "telephony.externalcall.register",  # asked, then refused by the portal (a webhook)
        "telephony.externalcall.register",
        "telephony.externalcall.finish",
    ]  # canonical form


def test_automation(portal: Portal, clock: Any) -> None:
    box, _ = _box(_app_client(portal, clock), "automation")
    started = _ok(box, "b24_workflow_start", {"template_id": 1, "entity": "deal", "id": 4}).artifact["id"]
    _call(box, "automation", "bizproc.task.complete", {"TASK_ID": 1, "STATUS": "yes", "COMMENT": "ok"})
    _call(
        box,
        "automation",
        "bizproc.robot.add",
        {"CODE": "sms", "HANDLER": "https://h.test/sms", "NAME": "Send SMS"},
    )
    _call(box, "automation", "bizproc.workflow.terminate", {"ID": started})
    assert (
        portal.state["workflow"][started]["TERMINATED"] and portal.state["bizproc_task"][1]["STATUS"] == "1"
    )
    assert [r["CODE"] for r in portal.state["bizproc_robot"].values()] == ["sms"]


def test_collab(client: Bitrix24, portal: Portal) -> None:
    box, _ = _box(client, "collab")
    post = _ok(box, "b24_feed_post", {"message": "Welcome Galina!", "title": "New colleague"}).artifact["id"]
    _call(box, "collab", "log.blogcomment.add", {"POST_ID": post, "TEXT": "Welcome!"})
    group = _call(box, "collab", "sonet_group.create", {"NAME": "Launch team", "DESCRIPTION": "Q1 launch"})
    members = _call(box, "collab", "sonet_group.user.get", {"ID": group})
    assert portal.state["sonet_group"][group]["NAME"] == "Launch team" and members == [
        {"USER_ID": "1", "ROLE": "A"}
    ]
    assert [c["TEXT"] for c in portal.state["blogcomment"].values()] == ["Welcome!"]


def test_content(client: Bitrix24, portal: Portal) -> None:
    box, confirmer = _box(client, "content")
    up = _ok(box, "b24_file_upload", {"folder_id": 5, "name": "brief.txt", "text": "Spring campaign brief"})
    again = box.run("b24_file_upload", {"folder_id": 5, "name": "Brief.txt", "text": "x"})
    assert (
        again.is_error and "already has" in again.content and len(confirmer.seen) == 1
    )  # refused before asking
    copy = _call(box, "content", "disk.file.copyto", {"id": up.artifact["ID"], "targetFolderId": 2})
    listed = [r["NAME"] for r in rows_of(json.loads(_ok(box, "b24_folder_list", {"id": 2}).content))]
    stored = portal.state["disk_object"][int(copy["ID"])]
    assert "brief.txt" in listed and base64.b64decode(stored["CONTENT"]) == b"Spring campaign brief"
    assert box.run("b24_file_upload", {"folder_id": 999, "name": "a.txt", "text": "x"}).content.endswith(
        "folder #999 does not exist or is not yours (see b24_folder_list)"
    )


def test_boards(client: Bitrix24, portal: Portal) -> None:
    box, confirmer = _box(client, "boards")
    portal.state["task"][3]["groupId"] = "1"
    out = _ok(box, "b24_sprint_add_task", {"task_id": 3})
    assert out.content.startswith("task #3 added to sprint #1 'Sprint 1'")
    assert portal.state["scrum_item"][3] == {"taskId": 3, "sprintId": 1, "stageId": 10}
    outside = box.run("b24_sprint_add_task", {"task_id": 4})
    assert outside.is_error and "no scrum group" in outside.content
    epic = _call(box, "boards", "tasks.api.scrum.epic.add", {"fields": {"groupId": 1, "name": "Payments"}})
    assert portal.state["scrum_epic"][epic["id"]]["name"] == "Payments"
    assert [s.method for s in confirmer.seen] == [
        "tasks.api.scrum.kanban.addtask",
        "tasks.api.scrum.epic.add",
    ]


def test_commerce(client: Bitrix24, portal: Portal) -> None:
    box, confirmer = _box(client, "commerce")
    out = _ok(box, "b24_product_add", {"name": "Onboarding kit", "price": 250, "currency": "usd"})
    product = out.artifact["id"]
    prices = _call(box, "commerce", "catalog.price.list", {"filter": {"productId": product}})
    assert [(p["price"], p["currency"]) for p in prices] == [(250.0, "USD")]
    assert (
        len(confirmer.seen) == 1 and "catalog.price.add" in confirmer.seen[0].summary
    )  # one approval, both writes
    bad = box.run("b24_product_add", {"name": "x", "price": 1, "currency": "XYZ"})
    assert bad.is_error and "unknown currency" in bad.content and len(confirmer.seen) == 1
    order = _call(
        box,
        "commerce",
        "sale.order.add",
        {"fields": {"lid": "s1", "personTypeId": 1, "currency": "USD", "price": 250}},
    )["order"]["id"]
    _call(box, "commerce", "sale.payment.add", {"fields": {"orderId": order, "paySystemId": 1, "paid": "Y"}})
    assert portal.state["sale_order"][order]["payed"] == "Y"


def test_services(client: Bitrix24, portal: Portal) -> None:
    box, confirmer = _box(client, "services")
    booked = _ok(
        box,
        "b24_book",
        {
            "resource": "meeting room",
            "start": "2027-03-01T10:00",
            "end": "2027-03-01T11:00",
            "name": "Design review",
        },
    )
    clash = box.run("b24_book", {"resource": "1", "start": "2027-03-01T10:30", "end": "2027-03-01T12:00"})
    assert (
        clash.is_error and "already booked" in clash.content and f"#{booked.artifact['id']}" in clash.content
    )
    assert len(confirmer.seen) == 1
    _call(box, "services", "timeman.open", {})
    assert _call(box, "services", "timeman.status", {})["STATUS"] == "OPENED"
    _ok(
        box,
        "b24_calendar_add",
        {"name": "1:1", "start": "2027-03-02T09:00:00", "end": "2027-03-02T09:30:00", "user_id": 2},
    )
    assert [e["NAME"] for e in portal.state["calendar_event"].values() if e["OWNER_ID"] == "2"] == ["1:1"]


def test_platform(portal: Portal, clock: Any) -> None:
    box, _ = _box(_app_client(portal, clock), "platform")
    _call(box, "platform", "entity.add", {"ENTITY": "visits", "NAME": "Visits"})
    _call(
        box,
        "platform",
        "entity.item.add",
        {"ENTITY": "visits", "NAME": "Acme", "PROPERTY_VALUES": {"CITY": "Oslo"}},
    )
    rows = _call(box, "platform", "entity.item.get", {"ENTITY": "visits"})
    engines = _call(box, "platform", "ai.engine.list", {})
    assert [r["NAME"] for r in rows] == ["Acme"] and engines[0]["code"] == "sandbox_gpt"


def test_sites(client: Bitrix24, portal: Portal) -> None:
    box, _ = _box(client, "sites")
    page = _call(
        box, "sites", "landing.landing.add", {"fields": {"TITLE": "Offer", "SITE_ID": 1, "CODE": "offer"}}
    )
    out = _ok(box, "b24_page_publish", {"page_id": page})
    assert out.content == f"page #{page} 'Offer' of site #1 published"
    assert (
        portal.state["landing_page"][page]["PUBLIC"] == "Y"
        and portal.state["landing_site"][1]["ACTIVE"] == "Y"
    )
    missing = box.run("b24_page_publish", {"page_id": 999})
    assert missing.is_error and "does not exist" in missing.content


def test_compliance(portal: Portal, clock: Any) -> None:
    box, _ = _box(_app_client(portal, clock), "compliance")
    consent = _call(box, "compliance", "userconsent.consent.add", {"AGREEMENT_ID": 1, "IP": "198.51.100.7"})
    signed = _call(box, "compliance", "sign.b2e.personal.tail", {})
    assert (
        portal.state["consent"][consent]["IP"] == "198.51.100.7"
        and signed[0]["title"] == "Employment contract"
    )


def test_diagnostics(client: Bitrix24) -> None:
    box, _ = _box(client, "diagnostics")
    assert "pack sites" in _ok(box, "b24_check_method", {"method": "landing.landing.publication"}).content
    methods = _call(box, "diagnostics", "methods", {"scope": "booking"})
    assert "booking.v1.booking.add" in methods


@pytest.mark.parametrize(
    ("request_text", "pack", "tool"),
    [
        ("Upload the brief to the Marketing folder on Drive", "content", "b24_file_upload"),
        ("Add task 12 to the current sprint", "boards", "b24_sprint_add_task"),
        ("Add a product 'Onboarding kit' to the catalog at 250 USD", "commerce", "b24_product_add"),
        ("Book meeting room A tomorrow at 10", "services", "b24_book"),
        ("Publish the landing page 'Offer'", "sites", "b24_page_publish"),
    ],
)
def test_the_router_picks_the_pack_whose_tool_does_the_job(request_text: str, pack: str, tool: str) -> None:
    from bitrix24_agent_tools.packs import PACKS

    assert pack in route(request_text).packs and tool in {s.name for s in PACKS[pack].specs}
