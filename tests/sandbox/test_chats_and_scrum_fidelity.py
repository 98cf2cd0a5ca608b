"""The sandbox's chat search, chat members, recent dialogs, scrum task update and Drive download, each as the
docs page it cites describes it."""

from __future__ import annotations

import httpx
import pytest

from bitrix24_agent_tools.client import Bitrix24, Bitrix24Error
from bitrix24_agent_tools.sandbox import Portal


def _code(client: Bitrix24, method: str, params: dict[str, object]) -> str:
    with pytest.raises(Bitrix24Error) as err:
        client.call(method, params)
    return str(err.value.code)


def test_chat_search_needs_two_characters_sorts_by_id_descending_and_pages(
    client: Bitrix24, portal: Portal
) -> None:
    """chats/search/im-search-chat-list.md: FIND_SHORT below two characters; results by ID descending;
    LIMIT default 10, at most 50; ``total`` and ``next``."""
    assert _code(client, "im.search.chat.list", {"FIND": "a"}) == "FIND_SHORT"
    assert _code(client, "im.search.chat.list", {}) == "FIND_SHORT"
    for i in range(12):
        portal.state["chat"][100 + i] = {
            "id": 100 + i,
            "name": f"Deal room {i}",
            "type": "chat",
            "USERS": [1],
        }
    first = client.call("im.search.chat.list", {"FIND": "deal room"})
    assert [c["id"] for c in first.result] == list(range(111, 101, -1))
    assert first.total == 12 and first.next == 10
    rest = client.call("im.search.chat.list", {"FIND": "deal room", "OFFSET": 10, "LIMIT": 100})
    assert [c["id"] for c in rest.result] == [101, 100] and rest.next is None
    assert set(first.result[0]) >= {"id", "name", "type", "owner", "user_counter", "message_count", "role"}


def test_chat_members_and_their_errors(client: Bitrix24, portal: Portal) -> None:
    """chats/chat-users/im-chat-user-list.md: a list of user IDs; CHAT_ID_EMPTY, ACCESS_ERROR."""
    assert client.call("im.chat.user.list", {"CHAT_ID": 1}).result == portal.state["chat"][1]["USERS"]
    assert _code(client, "im.chat.user.list", {}) == "CHAT_ID_EMPTY"
    portal.state["chat"][50] = {"id": 50, "name": "Board", "type": "chat", "USERS": [2]}
    assert _code(client, "im.chat.user.list", {"CHAT_ID": 50}) == "ACCESS_ERROR"


def test_recent_dialogs_newest_first_with_skips(client: Bitrix24) -> None:
    """chats/im-recent-list.md: ``items`` newest first; SKIP_CHAT / SKIP_DIALOG; hasMore."""
    client.call("im.message.add", {"DIALOG_ID": "chat1", "MESSAGE": "first"})
    client.call("im.message.add", {"DIALOG_ID": "2", "MESSAGE": "second"})
    recent = client.call("im.recent.list", {}).result
    assert [i["id"] for i in recent["items"]] == [2, "chat1"] and recent["hasMore"] is False
    assert [i["id"] for i in client.call("im.recent.list", {"SKIP_CHAT": "Y"}).result["items"]] == [2]
    assert [i["id"] for i in client.call("im.recent.list", {"SKIP_DIALOG": "Y"}).result["items"]] == ["chat1"]


def test_scrum_task_update_sets_story_points_and_checks_the_epic(client: Bitrix24) -> None:
    """sonet-group/scrum/task/tasks-api-scrum-task-update.md: fields storyPoints (a string), epicId; "Epic not
    found", "Task not found"."""
    assert (
        client.call("tasks.api.scrum.task.update", {"id": 1, "fields": {"storyPoints": "13"}}).result is True
    )
    assert client.call("tasks.api.scrum.task.get", {"id": 1}).result["storyPoints"] == "13"
    with pytest.raises(Bitrix24Error, match="Epic not found"):
        client.call("tasks.api.scrum.task.update", {"id": 1, "fields": {"epicId": 999}})
    with pytest.raises(Bitrix24Error, match="Task not found"):
        client.call("tasks.api.scrum.task.update", {"id": 99999, "fields": {"storyPoints": "1"}})


def test_sprint_list_filters_by_the_documented_upper_case_keys(client: Bitrix24) -> None:
    """sonet-group/scrum/sprint/tasks-api-scrum-sprint-list.md: ``filter`` {GROUP_ID: 1} (its example)."""
    assert {
        s["groupId"] for s in client.call("tasks.api.scrum.sprint.list", {"filter": {"GROUP_ID": 1}}).result
    } == {1}
    assert client.call("tasks.api.scrum.sprint.list", {"filter": {"GROUP_ID": 999}}).result == []
    active = client.call("tasks.api.scrum.sprint.list", {"filter": {"STATUS": "active"}}).result
    assert [s["status"] for s in active] == ["active"]


def test_download_url_serves_the_file_and_nothing_else(client: Bitrix24, portal: Portal) -> None:
    """disk/file/disk-file-get.md: DOWNLOAD_URL is /rest/download.json with a ``token``."""
    url = client.call("disk.file.get", {"id": 4}).result["DOWNLOAD_URL"]
    http = httpx.Client(transport=portal.transport())
    assert http.get(url).content == client.download(url)
    assert http.get(url.replace("token=disk%7C4", "token=disk%7C5")).status_code == 404
    folder = url.replace("token=disk%7C4", "token=disk%7C1")
    assert http.get(folder).status_code == 404
