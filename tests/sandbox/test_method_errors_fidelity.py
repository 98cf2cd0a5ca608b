"""Required parameters and method-specific error codes, as each method's docs page lists them (Error
Handling)."""

from __future__ import annotations

from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24, Bitrix24Error


@pytest.mark.parametrize(
    ("method", "params", "code", "text"),
    [
        # api-reference/tasks/tasks-task-add.md
        ("tasks.task.add", {}, "100", "Could not find value for parameter {fields}"),
        ("tasks.task.add", {"fields": {"RESPONSIBLE_ID": 1}}, "ERROR_CORE", "Task title not specified"),
        (
            "tasks.task.add",
            {"fields": {"TITLE": "x", "RESPONSIBLE_ID": 999}},
            "ERROR_CORE",
            '"Responsible" field not found',
        ),
        # api-reference/tasks/tasks-task-get.md
        ("tasks.task.get", {}, "100", "CTaskItem All parameters"),
        ("tasks.task.get", {"taskId": "abc"}, "0", "wrong task id"),
        # api-reference/crm/timeline/activities/todo/crm-activity-todo-add.md
        ("crm.activity.todo.add", {"ownerTypeId": 2, "ownerId": 1}, "100", "Required fields are missing"),
        (
            "crm.activity.todo.add",
            {"ownerTypeId": 2, "ownerId": 1, "deadline": "next friday"},
            "WRONG_DATETIME_FORMAT",
            "",
        ),
        (
            "crm.activity.todo.add",
            {"ownerTypeId": 2, "ownerId": 9999, "deadline": "2026-12-01T10:00:00+03:00"},
            "NOT_FOUND",
            "",
        ),
        # api-reference/calendar/calendar-event/calendar-event-add.md (HTTP 400, empty code)
        (
            "calendar.event.add",
            {"ownerId": 1, "name": "x", "from": "2026-12-01", "to": "2026-12-01"},
            "ERROR_ARGUMENT",
            'The required parameter "type" for the method "calendar.event.add" is not set',
        ),
        # api-reference/chats/messages/im-message-add.md
        ("im.message.add", {"DIALOG_ID": "1", "MESSAGE": ""}, "MESSAGE_EMPTY", "Message can't be empty"),
        ("im.message.add", {"DIALOG_ID": "Boris Smith", "MESSAGE": "hi"}, "USER_ID_EMPTY", ""),
        ("im.message.add", {"DIALOG_ID": "999", "MESSAGE": "hi"}, "USER_NOT_FOUND", ""),
        # api-reference/chats/notifications/im-notify-system-add.md
        ("im.notify.system.add", {"MESSAGE": "hi"}, "USER_ID_EMPTY", "User ID can't be empty"),
        ("im.notify.system.add", {"USER_ID": 1, "MESSAGE": ""}, "MESSAGE_EMPTY", "Message can't be empty"),
        # api-reference/log/log-blogpost-add.md
        (
            "log.blogpost.add",
            {"POST_MESSAGE": ""},
            "SONET_CONTROLLER_LIVEFEED_BLOGPOST_ADD_ERROR",
            "Blog post hasn't been added",
        ),
    ],
)
def test_documented_error_codes(
    client: Bitrix24, method: str, params: dict[str, Any], code: str, text: str
) -> None:
    with pytest.raises(Bitrix24Error) as info:
        client.call(method, params)
    assert info.value.code == code and text in str(info.value) and info.value.status == 400


def test_calendar_event_needs_type_and_owner_and_the_tool_sends_them(client: Bitrix24, portal: Any) -> None:
    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.guard import Guard, Policy
    from bitrix24_agent_tools.toolbox import Toolbox

    box = Toolbox(client, packs=("services",), guard=Guard(Policy.writer(), AutoConfirmer()))
    mine = box.run(
        "b24_calendar_add", {"name": "Mine", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00"}
    )
    theirs = box.run(
        "b24_calendar_add",
        {"name": "Theirs", "start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00", "user_id": 3},
    )
    assert not mine.is_error and not theirs.is_error, (mine.content, theirs.content)
    owners = {
        e["NAME"]: e["OWNER_ID"]
        for e in portal.state["calendar_event"].values()
        if e["NAME"] in ("Mine", "Theirs")
    }
    assert owners == {"Mine": "1", "Theirs": "3"}
