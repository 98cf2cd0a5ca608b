"""Shapes the docs give beyond CRM (issue #30), each test citing its page: dates as the portal writes them,
the offline queue's rows, filters and order."""

from __future__ import annotations

import re
from typing import Any

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.sandbox import Portal

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
