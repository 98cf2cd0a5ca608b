"""Shapes the docs give beyond CRM (issue #30), each test citing its page: dates as the portal writes them,
the offline queue's rows, filters and order."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest

from bitrix24_agent_tools.client import BadRequest, Bitrix24
from bitrix24_agent_tools.sandbox import Portal

_STAMP = int(datetime(2026, 12, 15, 12, 0, tzinfo=timezone.utc).timestamp())  # 15:00 at +03:00
_ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def _app(portal: Portal) -> Bitrix24:
    app = portal.register_app()
    return Bitrix24(portal.app_auth(app, portal.install_app(app)), transport=portal.transport())


def test_dates_written_while_the_portal_runs_carry_no_fraction(client: Bitrix24) -> None:
    """The docs' examples write dates to the second with an offset ("date_create":
    "2024-07-26T15:28:02+02:00", chats/search/im-search-chat-list.md; DATE_CREATE in crm-deal-get.md)."""
    deal = client.call("crm.deal.add", {"fields": {"TITLE": "Dated"}}).result
    assert _ISO_SECONDS.match(client.call("crm.deal.get", {"id": deal}).result["DATE_CREATE"])
    client.call("im.message.add", {"DIALOG_ID": "2", "MESSAGE": "hi"})
    message = client.call("im.dialog.messages.get", {"DIALOG_ID": "2"}).result["messages"][0]
    assert _ISO_SECONDS.match(message["date"])


def _queued(portal: Portal, n: int) -> Bitrix24:
    app = _app(portal)
    app.call("event.bind", {"event": "ONCRMDEALADD", "event_type": "offline"})
    for i in range(n):
        app.call("crm.deal.add", {"fields": {"TITLE": f"Queued {i}"}})
    return app


def test_offline_rows_have_string_ids_and_an_iso_timestamp(portal: Portal) -> None:
    """events/event-offline-get.md, example: "ID": "1", "TIMESTAMP_X": "2024-07-18T12:32:31+02:00",
    "MESSAGE_ID": "1" (TypeScript shape: TIMESTAMP_X ISODate)."""
    app = _queued(portal, 2)
    events = app.call("event.offline.get", {"clear": 0} if portal.extended_offline_mode else {}).result[
        "events"
    ]
    assert events and all(isinstance(e["ID"], str) and isinstance(e["MESSAGE_ID"], str) for e in events)
    assert all(_ISO_SECONDS.match(e["TIMESTAMP_X"]) for e in events)


def test_offline_list_filters_with_operations_and_orders(portal: Portal) -> None:
    """events/event-offline-list.md: filter by ID, TIMESTAMP_X, EVENT_NAME, MESSAGE_ID, PROCESS_ID, ERROR
    "with standard operations like =, >, <, <="; order [field => ASC|DESC], default ID:ASC."""
    app = _queued(portal, 4)
    every = app.call("event.offline.list", {}).result
    ids = [int(e["ID"]) for e in every]
    assert ids == sorted(ids) and len(ids) == 4
    later = app.call("event.offline.list", {"filter": {">ID": ids[1]}}).result
    assert [int(e["ID"]) for e in later] == ids[2:]
    newest: Any = app.call("event.offline.list", {"order": {"ID": "DESC"}}).result
    assert [int(e["ID"]) for e in newest] == ids[::-1]
    assert app.call("event.offline.list", {"filter": {"<=ID": ids[0]}}).result[0]["ID"] == str(ids[0])


def test_offline_get_reads_its_filter(portal: Portal) -> None:
    """events/event-offline-get.md: filter by ID, TIMESTAMP_X, EVENT_NAME, MESSAGE_ID (the operation before
    the field); the rows it returns are only the ones the filter keeps."""
    app = _queued(portal, 3)
    ids = [int(e["ID"]) for e in app.call("event.offline.list", {}).result]
    got = app.call("event.offline.get", {"filter": {">ID": ids[0]}}).result["events"]
    assert [int(e["ID"]) for e in got] == ids[1:]
    assert [int(e["ID"]) for e in app.call("event.offline.list", {}).result] == ids[:1]  # the others cleared


def test_dialog_history_has_the_documented_shape_and_paging(client: Bitrix24, portal: Portal) -> None:
    """chats/messages/im-dialog-messages-get.md: result {chat_id, messages[id, chat_id, author_id, date, text,
    unread, …], users[id, name, first_name, last_name, …], files}; newest first; LAST_ID / FIRST_ID; LIMIT
    20 by default; DIALOG_ID_EMPTY without a dialog."""
    ids = [
        client.call("im.message.add", {"DIALOG_ID": "chat1", "MESSAGE": f"m{i}"}).result for i in range(25)
    ]
    page = client.call("im.dialog.messages.get", {"DIALOG_ID": "chat1"}).result
    assert set(page) >= {"chat_id", "messages", "users", "files"} and page["chat_id"] == 1
    assert [m["id"] for m in page["messages"]] == ids[::-1][:20]
    first = page["messages"][0]
    assert set(first) >= {"id", "chat_id", "author_id", "date", "text", "unread"} and first["author_id"] == 1
    assert page["users"][0]["id"] == 1 and page["users"][0]["first_name"] == portal.state["user"][1]["NAME"]
    older = client.call("im.dialog.messages.get", {"DIALOG_ID": "chat1", "LAST_ID": ids[5]}).result
    assert [m["id"] for m in older["messages"]] == ids[:5][::-1]
    newer = client.call("im.dialog.messages.get", {"DIALOG_ID": "chat1", "FIRST_ID": ids[21]}).result
    assert [m["id"] for m in newer["messages"]] == ids[22:][::-1]
    with pytest.raises(BadRequest) as err:
        client.call("im.dialog.messages.get", {})
    assert err.value.code == "DIALOG_ID_EMPTY"


def test_users_and_departments_carry_the_documented_fields_filters_and_sort(client: Bitrix24) -> None:
    """user/user-get.md: IS_ONLINE, USER_TYPE in each user and as filters; sort by a field, order ASC|DESC.
    departments/department-get.md: SORT in each department; filter by UF_HEAD."""
    users = client.call("user.get", {}).result
    assert all(u["USER_TYPE"] == "employee" and u["IS_ONLINE"] in ("Y", "N") for u in users)
    assert client.call("user.get", {"FILTER": {"USER_TYPE": "extranet"}}).result == []
    names = [u["LAST_NAME"] for u in client.call("user.get", {"sort": "LAST_NAME", "order": "DESC"}).result]
    assert names == sorted(names, key=str.casefold, reverse=True)
    departments = client.call("department.get", {}).result
    assert all("SORT" in d for d in departments)
    headed = client.call("department.get", {"UF_HEAD": departments[1]["UF_HEAD"]}).result
    assert [d["ID"] for d in headed] == [departments[1]["ID"]]


def test_calendar_events_in_the_portals_format_with_utc_timestamps(client: Bitrix24) -> None:
    """calendar/calendar-event/calendar-event-get.md, example: DATE_FROM "12/11/2024 05:59:00 pm" (the
    portal's own format) beside TZ_FROM, TZ_OFFSET_FROM and DATE_FROM_TS_UTC / DATE_TO_TS_UTC; from/to bound
    the events that overlap those dates."""
    made = client.call(
        "calendar.event.add",
        {
            "type": "user",
            "ownerId": 1,
            "name": "Review",
            "from": "2026-12-15T15:00:00+03:00",
            "to": "2026-12-15T16:30:00+03:00",
        },
    ).result
    events = client.call(
        "calendar.event.get", {"type": "user", "ownerId": 1, "from": "2026-12-15", "to": "2026-12-15"}
    ).result
    event = next(e for e in events if e["ID"] == str(made))
    assert event["DATE_FROM"] == "12/15/2026 03:00:00 pm" and event["DATE_TO"] == "12/15/2026 04:30:00 pm"
    assert event["DATE_FROM_TS_UTC"] == str(_STAMP) and event["DT_LENGTH"] == 5400
    assert event["TZ_OFFSET_FROM"] == "10800" and event["DT_SKIP_TIME"] == "N"
    none = client.call(
        "calendar.event.get", {"type": "user", "ownerId": 1, "from": "2026-12-16", "to": "2026-12-20"}
    ).result
    assert str(made) not in {e["ID"] for e in none}


def test_calendar_add_takes_timestamps_and_checks_the_section(client: Bitrix24) -> None:
    """calendar-event-add.md: from_ts / to_ts "can be used instead of from / to"; section must be one of the
    owner's calendars ("You specified an invalid calendar section ID or the user does not have access to
    it")."""
    made = client.call(
        "calendar.event.add",
        {"type": "user", "ownerId": 1, "name": "By stamps", "from_ts": _STAMP, "to_ts": _STAMP + 3600},
    ).result
    event = next(
        e
        for e in client.call(
            "calendar.event.get", {"type": "user", "ownerId": 1, "from": "2026-12-15"}
        ).result
        if e["ID"] == str(made)
    )
    assert event["DATE_FROM_TS_UTC"] == str(_STAMP) and event["DATE_TO_TS_UTC"] == str(_STAMP + 3600)
    with pytest.raises(BadRequest, match="invalid calendar section"):
        client.call(
            "calendar.event.add",
            {
                "type": "user",
                "ownerId": 1,
                "name": "x",
                "from": "2026-12-15",
                "to": "2026-12-15",
                "section": 999,
            },
        )


def test_task_add_needs_a_responsible_person(client: Bitrix24) -> None:
    """tasks/tasks-task-add.md, Error Handling: ERROR_CORE "Responsible person not specified"."""
    with pytest.raises(BadRequest, match="Responsible person not specified"):
        client.call("tasks.task.add", {"fields": {"TITLE": "Nobody's"}})


def test_task_list_default_order_title_patterns_real_status_and_bad_order(client: Bitrix24) -> None:
    """tasks/tasks-task-list.md: "By default, it sorts in descending order by ID"; TITLE "can search by
    pattern [%_]"; REAL_STATUS is the status; an order key it does not list: code 0, "Invalid sorting key"."""
    tasks = client.call("tasks.task.list", {"select": ["ID", "TITLE"]}).result["tasks"]
    ids = [int(t["id"]) for t in tasks]
    assert ids == sorted(ids, reverse=True)
    client.call("tasks.task.add", {"fields": {"TITLE": "Call Zebra Corp", "RESPONSIBLE_ID": 1}})
    found = client.call("tasks.task.list", {"filter": {"TITLE": "Call Z%"}}).result["tasks"]
    assert [t["title"] for t in found] == ["Call Zebra Corp"]
    assert client.call("tasks.task.list", {"filter": {"TITLE": "Call _ebra Corp"}}).result["tasks"]
    done = client.call("tasks.task.list", {"filter": {"REAL_STATUS": 5}}).result["tasks"]
    assert done and all(t["status"] == "5" for t in done)
    with pytest.raises(BadRequest) as err:
        client.call("tasks.task.list", {"order": {"NOT_A_FIELD": "asc"}})
    assert "Invalid sorting key" in str(err.value)


def test_a_task_carries_its_people_and_who_closed_it(client: Bitrix24) -> None:
    """tasks/tasks-task-get.md, example: creator and responsible as {id, name, link, icon, workPosition};
    tasks/fields.md: closedBy / closedDate once completed."""
    made = client.call("tasks.task.add", {"fields": {"TITLE": "Close me", "RESPONSIBLE_ID": 2}}).result[
        "task"
    ]
    task = client.call("tasks.task.get", {"taskId": made["id"]}).result["task"]
    assert task["responsible"]["id"] == "2" and set(task["creator"]) >= {"id", "name", "link", "workPosition"}
    assert task["closedDate"] is None and task["auditors"] == [] and task["accomplices"] == []
    client.call("tasks.task.complete", {"taskId": made["id"]})
    closed = client.call("tasks.task.get", {"taskId": made["id"]}).result["task"]
    assert closed["status"] == "5" and closed["closedBy"] == "1" and _ISO_SECONDS.match(closed["closedDate"])


def test_folder_children_filter_with_operations_order_and_real_object_id(client: Bitrix24) -> None:
    """disk/folder/disk-folder-get-children.md: filter keys with an operation before the field (%, >=, !, …),
    order {field: ASC|DESC}; disk/file/disk-file-search.md: REAL_OBJECT_ID comes only for folders."""
    like = client.call("disk.folder.getchildren", {"id": 1, "filter": {"%NAME": "list"}}).result
    assert [o["NAME"] for o in like] == ["Price list 2026.xlsx"]
    folders = client.call(
        "disk.folder.getchildren", {"id": 1, "filter": {"TYPE": "folder"}, "order": {"NAME": "DESC"}}
    ).result
    names = [o["NAME"] for o in folders]
    assert names == sorted(names, reverse=True) and len(names) >= 2
    assert all(o["REAL_OBJECT_ID"] == o["ID"] for o in folders)
    files = client.call("disk.folder.getchildren", {"id": 1, "filter": {"!TYPE": "folder"}}).result
    assert files and all(o["TYPE"] == "file" and "REAL_OBJECT_ID" not in o for o in files)


def test_timeline_comments_take_lower_case_fields_any_owner_kind_and_refuse_an_empty_text(
    client: Bitrix24,
) -> None:
    """crm/timeline/comments/crm-timeline-comment-add.md: "only accepts parameters with the key fields in
    lowercase" (FIELDS is not accepted: 100, required fields); ENTITY_TYPE may be dynamic_N; OWNER_NOT_FOUND;
    INVALID_ARG_VALUE "Empty comment"."""
    ok = {"ENTITY_TYPE": "deal", "ENTITY_ID": 1, "COMMENT": "hello"}
    assert isinstance(client.call("crm.timeline.comment.add", {"fields": ok}).result, int)
    with pytest.raises(BadRequest) as upper:
        client.call("crm.timeline.comment.add", {"FIELDS": ok})
    assert upper.value.code == "100"
    with pytest.raises(BadRequest) as empty:
        client.call("crm.timeline.comment.add", {"fields": {**ok, "COMMENT": " "}})
    assert empty.value.code == "INVALID_ARG_VALUE"
    with pytest.raises(BadRequest) as missing:
        client.call("crm.timeline.comment.add", {"fields": {**ok, "ENTITY_ID": 99999}})
    assert missing.value.code == "OWNER_NOT_FOUND"


def test_category_list_refuses_what_has_no_pipelines(client: Bitrix24) -> None:
    """crm/universal/category/crm-category-list.md, Error Handling: NOT_FOUND "Smart process not found" for
    an invalid entityTypeId; ENTITY_TYPE_NOT_SUPPORTED for a kind of record without pipelines."""
    assert client.call("crm.category.list", {"entityTypeId": 2}).result["categories"]
    with pytest.raises(Exception) as unknown:
        client.call("crm.category.list", {"entityTypeId": 1999})
    assert getattr(unknown.value, "code", "") == "NOT_FOUND"
    with pytest.raises(BadRequest) as lead:
        client.call("crm.category.list", {"entityTypeId": 1})
    assert lead.value.code == "ENTITY_TYPE_NOT_SUPPORTED"


def test_lists_carry_total_as_their_pages_show(client: Bitrix24, portal: Portal) -> None:
    """The examples of bizproc-workflow-template-list.md, log-blogpost-get.md and crm-currency-list.md carry
    "total"; im-recent-list.md shows "total": -1 (a client reads that as no count)."""
    assert client.call("bizproc.workflow.template.list", {"SELECT": ["ID", "NAME"]}).total == 2
    assert client.call("log.blogpost.get", {}).total == 1
    assert client.call("crm.currency.list", {}).total == len(client.call("crm.currency.list", {}).result)
    tokens = portal.install_app(portal.register_app())
    body = json.dumps({"auth": tokens["access_token"]}).encode()
    url = tokens["client_endpoint"].rstrip("/") + "/im.recent.list.json"
    _, _, raw, _ = portal.handle("POST", url, {"content-type": "application/json"}, body)
    assert json.loads(raw)["total"] == -1


def test_list_filters_take_in_and_not_in(client: Bitrix24, portal: Portal) -> None:
    """sale-order-list.md / sale-payment-list.md / catalog-catalog-list.md and biconnector-source-list.md:
    @ (IN) and !@ (NOT IN) before the field; the payment list's example filters by the order's
    personTypeId."""
    orders = client.call("sale.order.list", {"filter": {"@id": [1, 3]}}).result["orders"]
    assert sorted(int(o["id"]) for o in orders) == [1, 3]
    rest = client.call("sale.order.list", {"filter": {"!@id": [1, 3]}}).result["orders"]
    assert [int(o["id"]) for o in rest] == [2]
    person = portal.state["sale_order"][1]["personTypeId"]
    paid = client.call("sale.payment.list", {"filter": {"@personTypeId": [person]}}).result["payments"]
    assert paid and "personTypeId" not in paid[0]
    app = _app(portal)
    assert app.call("biconnector.source.list", {"filter": {"@connectorId": [1, 2]}}).result == []


def test_landing_lists_filter_order_and_write_dates_in_the_portals_format(client: Bitrix24) -> None:
    """landing/page/methods/landing-landing-get-list.md: params{select, filter, order}; the example writes
    "DATE_MODIFY": "10/10/2022 03:25:30 pm"."""
    pages = client.call(
        "landing.landing.getList", {"params": {"filter": {"%TITLE": "o"}, "order": {"ID": "DESC"}}}
    ).result
    assert [p["ID"] for p in pages] == sorted((p["ID"] for p in pages), key=int, reverse=True) and pages
    assert all(re.match(r"^\d\d/\d\d/\d{4} \d\d:\d\d:\d\d [ap]m$", p["DATE_MODIFY"]) for p in pages)
    one = client.call("landing.landing.getList", {"params": {"filter": {"TITLE": "Contacts"}}}).result
    assert [p["TITLE"] for p in one] == ["Contacts"]


def test_a_smart_process_item_has_a_pipeline_and_a_stage(client: Bitrix24, portal: Portal) -> None:
    """crm/universal/object-fields.md, SPA: categoryId and stageId on every item (stage codes like
    'DT1220_30:NEW', crm-item-add.md); an item added without them lands in the default pipeline's first
    stage."""
    etid = next(iter(portal.smart_types))
    item = client.call("crm.item.add", {"entityTypeId": etid, "fields": {"title": "Kick-off"}}).result["item"]
    assert item["categoryId"] == 0 and item["stageId"] == f"DT{etid}_0:NEW"
    again = client.call("crm.item.get", {"entityTypeId": etid, "id": item["id"]}).result["item"]
    assert again["stageId"] == item["stageId"] and again["categoryId"] == item["categoryId"]


def test_activity_list_answers_the_documented_fields_and_reads_bindings(client: Bitrix24) -> None:
    """crm/timeline/activities/activity-base/crm-activity-list.md: the example's fields (TYPE_ID, PROVIDER_ID,
    CREATED, AUTHOR_ID, …); filter[BINDINGS] pairs of OWNER_TYPE_ID / OWNER_ID, an activity answered once per
    matching pair."""
    when = "2026-12-10T10:00:00+03:00"
    client.call("crm.activity.todo.add", {"ownerTypeId": 2, "ownerId": 1, "deadline": when, "title": "Call"})
    client.call("crm.activity.todo.add", {"ownerTypeId": 3, "ownerId": 1, "deadline": when, "title": "Mail"})
    deals = client.call("crm.activity.list", {"filter": {"BINDINGS": [{"OWNER_TYPE_ID": 2}]}}).result
    assert [a["SUBJECT"] for a in deals] == ["Call"]
    assert set(deals[0]) >= {
        "ID",
        "OWNER_ID",
        "OWNER_TYPE_ID",
        "TYPE_ID",
        "PROVIDER_ID",
        "CREATED",
        "AUTHOR_ID",
    }
    both = client.call(
        "crm.activity.list",
        {"filter": {"BINDINGS": [{"OWNER_TYPE_ID": 2}, {"OWNER_TYPE_ID": 3, "OWNER_ID": 1}]}},
    ).result
    assert sorted(a["SUBJECT"] for a in both) == ["Call", "Mail"]
