"""Chats and notifications (im.*)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import (
    Listing,
    _user_id,
    method,
    now_iso,
    positive,
    upper,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store


# --- chats and notifications -------------------------------------------------------------------------------


@method("im.message.add", "im")
def im_message_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    # im-message-add.md, Error Handling: MESSAGE_EMPTY, USER_ID_EMPTY, USER_NOT_FOUND, CHAT_ID
    query = {str(k).upper(): v for k, v in params.items()}
    dialog = str(query.get("DIALOG_ID") or "").strip()
    text = str(query.get("MESSAGE") or "").strip()
    if not text and not query.get("ATTACH"):
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty", 400)
    if dialog.startswith("chat"):
        if not dialog[4:].isdigit() or int(dialog[4:]) not in store.tables.get("chat", {}):
            raise ApiError("CHAT_ID", "Error creating message", 400)
    elif not dialog.isdigit() or int(dialog) <= 0:
        raise ApiError("USER_ID_EMPTY", "User ID can't be empty", 400)
    elif int(dialog) in store.tables.get("imbot", {}):  # a bot is a user too: its personal chat
        from bitrix24_sandbox.comms import to_bot

        new_id = add_message(store, str(dialog), text, caller.user_id)
        to_bot(store, store.tables["imbot"][int(dialog)], text, new_id, caller.user_id)
        return new_id
    elif int(dialog) not in store.tables["user"]:
        raise ApiError("USER_NOT_FOUND", "User not found", 400)
    return add_message(store, str(dialog), text, caller.user_id)


def add_message(store: Store, dialog: str, text: str, author: int) -> int:
    """A message in a dialog's history (what im.dialog.messages.get reads back)."""
    new_id = store.next_id("message")
    store.tables["message"][new_id] = {
        "id": new_id,
        "dialogId": dialog,
        "text": text,
        "authorId": author,
        "date": now_iso(store),
    }
    return new_id


def _own_message(store: Store, query: dict[str, Any], caller: Caller) -> dict[str, Any]:
    # im-message-update.md / im-message-delete.md, Possible Error Codes: MESSAGE_ID_ERROR, CANT_EDIT_MESSAGE
    message_id = positive(query.get("MESSAGE_ID"))
    message: dict[str, Any] | None = store.tables["message"].get(message_id) if message_id else None
    if message is None:
        raise ApiError("MESSAGE_ID_ERROR", "Message ID can't be empty", 400)
    if int(message["authorId"]) != caller.user_id:
        raise ApiError("CANT_EDIT_MESSAGE", "Time has expired for modification or you don't have access", 400)
    return message


@method("im.message.update", "im")
def im_message_update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """im-message-update.md: MESSAGE replaces the text; an empty MESSAGE deletes the message."""
    query = upper(params)
    message = _own_message(store, query, caller)
    if "MESSAGE" in query:
        text = str(query.get("MESSAGE") or "").strip()
        if not text:
            del store.tables["message"][message["id"]]
            return True
        message["text"] = text
        message["edited"] = True
    return True


@method("im.message.delete", "im")
def im_message_delete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    message = _own_message(store, upper(params), caller)
    del store.tables["message"][message["id"]]
    return True


def dialog_chat_id(dialog: str, caller: int) -> int:
    """The chat a dialog is: ``chatN`` is chat N; a person's dialog with the caller is their private chat.
    UNVERIFIED: a portal numbers private chats in the same sequence; here a stable number per pair."""
    if dialog.startswith("chat") and dialog[4:].isdigit():
        return int(dialog[4:])
    other = int(dialog) if dialog.isdigit() else 0
    low, high = sorted((caller, other))
    return 1_000_000 + low * 10_000 + high


@method("im.dialog.messages.get", "im")
def im_dialog_messages(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """chats/messages/im-dialog-messages-get.md: ``chat_id``, ``messages`` (newest first: id, chat_id,
    author_id, date, text, unread, uuid, replaces, params, disappearing_date), ``users`` (the authors) and
    ``files``; LAST_ID (older than), FIRST_ID (newer than), LIMIT (20 by default, at most 50)."""
    query = upper(params)
    dialog = str(query.get("DIALOG_ID") or "").strip()
    if not dialog:
        raise ApiError("DIALOG_ID_EMPTY", "Dialog ID can't be empty", 400)
    chat_id = dialog_chat_id(dialog, caller.user_id)
    mine = str(caller.user_id)
    rows = [
        m
        for m in store.tables["message"].values()
        if m["dialogId"] == dialog
        or (dialog.isdigit() and m["dialogId"] == mine and str(m["authorId"]) == dialog)
    ]
    last, first = positive(query.get("LAST_ID")), positive(query.get("FIRST_ID"))
    if last:
        rows = [m for m in rows if int(m["id"]) < last]
    if first:
        rows = [m for m in rows if int(m["id"]) > first]
    limit = min(50, positive(query.get("LIMIT")) or 20)
    rows = sorted(rows, key=lambda m: -int(m["id"]))
    rows = rows[-limit:] if first else rows[:limit]
    messages = [
        {
            "id": int(m["id"]),
            "chat_id": chat_id,
            "author_id": int(m["authorId"]),
            "date": m.get("date"),
            "text": m["text"],
            "unread": False,
            "uuid": None,
            "replaces": [],
            "params": [],
            "disappearing_date": None,
        }
        for m in rows
    ]
    authors = sorted({int(m["authorId"]) for m in rows if int(m["authorId"]) in store.tables["user"]})
    users = []
    for uid in authors:
        user = store.tables["user"][uid]
        users.append(
            {
                "id": uid,
                "active": bool(user.get("ACTIVE", True)),
                "name": f"{user.get('NAME', '')} {user.get('LAST_NAME', '')}".strip(),
                "first_name": user.get("NAME", ""),
                "last_name": user.get("LAST_NAME", ""),
                "work_position": user.get("WORK_POSITION", ""),
                "bot": uid in store.tables.get("imbot", {}),
                "type": "bot" if uid in store.tables.get("imbot", {}) else "user",
                "email": user.get("EMAIL", ""),
            }
        )
    return {"chat_id": chat_id, "messages": messages, "users": users, "files": []}


@method("im.notify.system.add", "im")
def im_notify_system(store: Store, params: dict[str, Any], caller: Caller) -> int:
    return _notify(store, params, "system")


@method("im.notify.personal.add", "im")
def im_notify_personal(store: Store, params: dict[str, Any], caller: Caller) -> int:
    return _notify(store, params, "personal")


def _notify(store: Store, params: dict[str, Any], kind: str) -> int:
    # im-notify-system-add.md, Error Handling: USER_ID_EMPTY when missing or <= 0, MESSAGE_EMPTY for no text
    query = {str(k).upper(): v for k, v in params.items()}
    user_id = _user_id(query.get("USER_ID") or 0)
    message = str(query.get("MESSAGE") or "").strip()
    if user_id <= 0:
        raise ApiError("USER_ID_EMPTY", "User ID can't be empty", 400)
    if not message:
        raise ApiError("MESSAGE_EMPTY", "Message can't be empty", 400)
    if user_id not in store.tables["user"]:  # UNVERIFIED: the docs name no code for an unknown user here
        raise ApiError("USER_NOT_FOUND", "User not found", 400)
    new_id = store.next_id("notification")
    store.tables["notification"][new_id] = {
        "id": new_id,
        "userId": int(user_id),
        "message": message,
        "kind": kind,
    }
    return new_id


# --- finding chats ------------------------------------------------------------------------------------------


def _chat_row(store: Store, chat: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """A chat object as im.search.chat.list's "Chat object" lists it (the keys a client reads)."""
    messages = [m for m in store.tables["message"].values() if m["dialogId"] == f"chat{chat['id']}"]
    last = max((int(m["id"]) for m in messages), default=0)
    return {
        "id": int(chat["id"]),
        "parent_chat_id": 0,
        "parent_message_id": 0,
        "name": chat["name"],
        "description": chat.get("description"),
        "owner": int(chat.get("owner") or 0),
        "extranet": False,
        "avatar": "",
        "color": "#3e99ce",
        "type": chat.get("type", "chat"),
        "counter": 0,
        "user_counter": len(chat.get("USERS", [])),
        "message_count": len(messages),
        "unread_id": 0,
        "last_message_id": last,
        "last_id": last,
        "marked_id": 0,
        "disk_folder_id": 0,
        "entity_type": chat.get("entity_type", ""),
        "entity_id": chat.get("entity_id", ""),
        "entity_data_1": "",
        "entity_data_2": "",
        "entity_data_3": "",
        "mute_list": [],
        "date_create": chat.get("date_create") or now_iso(store),
        "message_type": "O" if chat.get("type") == "open" else "C",
        "public": "",
        "role": "owner" if int(chat.get("owner") or 0) == caller.user_id else "member",
        "is_new": False,
    }


def _visible_chats(store: Store, caller: Caller) -> list[dict[str, Any]]:
    """The chats the caller can see: those they belong to, and open chats (``type`` open)."""
    return [
        c
        for c in store.tables.get("chat", {}).values()
        if caller.user_id in {int(u) for u in c.get("USERS", [])} or c.get("type") == "open"
    ]


@method("im.search.chat.list", "im")
def im_search_chat_list(store: Store, params: dict[str, Any], caller: Caller) -> Any:
    """chats/search/im-search-chat-list.md: chats the current user has access to whose title or participants'
    names match ``FIND`` (≥ 2 characters, else FIND_SHORT); sorted by ID descending; ``LIMIT`` default 10,
    at most 50; ``total``, and ``next`` when there is a next page. ``FIND_LINES`` searches open-line chats
    (none are seeded, so it finds nothing)."""
    query = upper(params)
    find = str(query.get("FIND") or "").strip()
    lines = str(query.get("FIND_LINES") or "").strip()
    phrase = find or lines
    if len(phrase) < 2:
        raise ApiError("FIND_SHORT", "Too short a search phrase", 400)
    needle = phrase.casefold()
    found = []
    for chat in _visible_chats(store, caller):
        if not find and chat.get("type") != "lines":  # FIND_LINES: open-line chats only
            continue
        people = [store.tables["user"].get(int(u)) or {} for u in chat.get("USERS", [])]
        names = [f"{p.get('NAME', '')} {p.get('LAST_NAME', '')}" for p in people]
        if any(needle in text.casefold() for text in [chat["name"], *names]):
            found.append(chat)
    found.sort(key=lambda c: -int(c["id"]))
    offset = max(0, int(positive(query.get("OFFSET")) or 0))
    limit = min(50, int(positive(query.get("LIMIT")) or 10))
    page = found[offset : offset + limit]
    more = offset + limit < len(found)
    return Listing([_chat_row(store, c, caller) for c in page], len(found), offset + limit if more else None)


@method("im.chat.user.list", "im")
def im_chat_user_list(store: Store, params: dict[str, Any], caller: Caller) -> list[int]:
    """chats/chat-users/im-chat-user-list.md: the participants' user IDs; CHAT_ID_EMPTY without CHAT_ID,
    ACCESS_ERROR for a chat the caller cannot see."""
    chat_id = positive(upper(params).get("CHAT_ID"))
    if not chat_id:
        raise ApiError("CHAT_ID_EMPTY", "Chat ID can't be empty", 400)
    chat = store.tables.get("chat", {}).get(chat_id)
    if chat is None or chat not in _visible_chats(store, caller):
        raise ApiError("ACCESS_ERROR", "Action unavailable", 400)
    return [int(u) for u in chat.get("USERS", [])]


@method("im.recent.list", "im")
def im_recent_list(store: Store, params: dict[str, Any], caller: Caller) -> Any:
    """chats/im-recent-list.md: the caller's recent dialogs, newest first, under ``items`` with ``hasMore``;
    ``SKIP_DIALOG``/``SKIP_CHAT`` = Y drop one-on-one dialogs / group chats; ``OFFSET``,
    ``LIMIT`` (UNVERIFIED: the page gives no default; 50 here)."""
    query = upper(params)
    skip_dialog = str(query.get("SKIP_DIALOG") or "N").upper() == "Y"
    skip_chat = str(query.get("SKIP_CHAT") or "N").upper() == "Y"
    me = str(caller.user_id)
    visible = {f"chat{c['id']}": c for c in _visible_chats(store, caller)}
    last: dict[str, dict[str, Any]] = {}
    for m in store.tables["message"].values():
        dialog = str(m["dialogId"])
        if dialog in visible:
            key = dialog
        elif dialog == me:
            key = str(m["authorId"])
        elif str(m["authorId"]) == me and dialog.isdigit():
            key = dialog
        else:
            continue
        if key not in last or int(m["id"]) > int(last[key]["id"]):
            last[key] = m
    items = []
    for key, m in last.items():
        chat = visible.get(key)
        if (chat and skip_chat) or (not chat and skip_dialog):
            continue
        user = None if chat else store.tables["user"].get(int(key))
        title = (
            chat["name"] if chat else f"{(user or {}).get('NAME', '')} {(user or {}).get('LAST_NAME', '')}"
        )
        items.append(
            {
                "id": key if chat else int(key),
                "chat_id": int(chat["id"]) if chat else 0,
                "type": "chat" if chat else "user",
                "title": title.strip(),
                "message": {
                    "id": int(m["id"]),
                    "text": m["text"],
                    "author_id": int(m["authorId"]),
                    "date": m["date"],
                },
                "counter": 0,
                "pinned": False,
                "unread": False,
                "date_update": m["date"],
            }
        )
    items.sort(key=lambda i: -int(i["message"]["id"]))
    offset = max(0, int(positive(query.get("OFFSET")) or 0))
    limit = int(positive(query.get("LIMIT")) or 50)
    more = offset + limit < len(items)
    # the docs' example envelope carries "total": -1 (no count for this list)
    return Listing({"items": items[offset : offset + limit], "hasMorePages": more, "hasMore": more}, -1, None)
