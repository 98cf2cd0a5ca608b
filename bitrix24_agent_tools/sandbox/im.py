"""Chats and notifications (im.*)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bitrix24_agent_tools.sandbox.errors import ApiError
from bitrix24_agent_tools.sandbox.registry import (
    _user_id,
    method,
    now_iso,
    positive,
    upper,
)
from bitrix24_agent_tools.sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_agent_tools.sandbox.portal import Portal


# --- chats and notifications -------------------------------------------------------------------------------


@method("im.message.add", "im")
def im_message_add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    # im-message-add.md, Error Handling: MESSAGE_EMPTY, USER_ID_EMPTY, USER_NOT_FOUND, CHAT_ID
    query = {str(k).upper(): v for k, v in params.items()}
    dialog = str(query.get("DIALOG_ID") or "").strip()
    text = str(query.get("MESSAGE") or "").strip()
    if not text and not query.get("ATTACH"):
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty", 400)
    if dialog.startswith("chat"):
        if not dialog[4:].isdigit() or int(dialog[4:]) not in portal.state.get("chat", {}):
            raise ApiError("CHAT_ID", "Error creating message", 400)
    elif not dialog.isdigit() or int(dialog) <= 0:
        raise ApiError("USER_ID_EMPTY", "User ID can't be empty", 400)
    elif int(dialog) in portal.state.get("imbot", {}):  # a bot is a user too: its personal chat
        from bitrix24_agent_tools.sandbox.comms import to_bot

        new_id = add_message(portal, str(dialog), text, caller.user_id)
        to_bot(portal, portal.state["imbot"][int(dialog)], text, new_id, caller.user_id)
        return new_id
    elif int(dialog) not in portal.state["user"]:
        raise ApiError("USER_NOT_FOUND", "User not found", 400)
    return add_message(portal, str(dialog), text, caller.user_id)


def add_message(portal: Portal, dialog: str, text: str, author: int) -> int:
    """A message in a dialog's history (what im.dialog.messages.get reads back)."""
    new_id = portal.next_id("message")
    portal.state["message"][new_id] = {
        "id": new_id,
        "dialogId": dialog,
        "text": text,
        "authorId": author,
        "date": now_iso(portal),
    }
    return new_id


def _own_message(portal: Portal, query: dict[str, Any], caller: Caller) -> dict[str, Any]:
    # im-message-update.md / im-message-delete.md, Possible Error Codes: MESSAGE_ID_ERROR, CANT_EDIT_MESSAGE
    message_id = positive(query.get("MESSAGE_ID"))
    message: dict[str, Any] | None = portal.state["message"].get(message_id) if message_id else None
    if message is None:
        raise ApiError("MESSAGE_ID_ERROR", "Message ID can't be empty", 400)
    if int(message["authorId"]) != caller.user_id:
        raise ApiError("CANT_EDIT_MESSAGE", "Time has expired for modification or you don't have access", 400)
    return message


@method("im.message.update", "im")
def im_message_update(portal: Portal, params: dict[str, Any], caller: Caller) -> bool:
    """im-message-update.md: MESSAGE replaces the text; an empty MESSAGE deletes the message."""
    query = upper(params)
    message = _own_message(portal, query, caller)
    if "MESSAGE" in query:
        text = str(query.get("MESSAGE") or "").strip()
        if not text:
            del portal.state["message"][message["id"]]
            return True
        message["text"] = text
        message["edited"] = True
    return True


@method("im.message.delete", "im")
def im_message_delete(portal: Portal, params: dict[str, Any], caller: Caller) -> bool:
    message = _own_message(portal, upper(params), caller)
    del portal.state["message"][message["id"]]
    return True


@method("im.dialog.messages.get", "im")
def im_dialog_messages(portal: Portal, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    dialog = str(params.get("DIALOG_ID") or "")
    messages = [m for m in portal.state["message"].values() if m["dialogId"] == dialog]
    return {"messages": list(reversed(messages))[: int(params.get("LIMIT") or 20)], "chat_id": 0}


@method("im.notify.system.add", "im")
def im_notify_system(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    return _notify(portal, params, "system")


@method("im.notify.personal.add", "im")
def im_notify_personal(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    return _notify(portal, params, "personal")


def _notify(portal: Portal, params: dict[str, Any], kind: str) -> int:
    # im-notify-system-add.md, Error Handling: USER_ID_EMPTY when missing or <= 0, MESSAGE_EMPTY for no text
    query = {str(k).upper(): v for k, v in params.items()}
    user_id = _user_id(query.get("USER_ID") or 0)
    message = str(query.get("MESSAGE") or "").strip()
    if user_id <= 0:
        raise ApiError("USER_ID_EMPTY", "User ID can't be empty", 400)
    if not message:
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty", 400)
    if user_id not in portal.state["user"]:  # UNVERIFIED: the docs name no code for an unknown user here
        raise ApiError("USER_NOT_FOUND", "User not found", 400)
    new_id = portal.next_id("notification")
    portal.state["notification"][new_id] = {
        "id": new_id,
        "userId": int(user_id),
        "message": message,
        "kind": kind,
    }
    return new_id
