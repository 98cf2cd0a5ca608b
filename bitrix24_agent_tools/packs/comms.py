"""The comms pack's typed tools: find a chat (by name, or the recent ones) and its members, send a message,
notify a user, list the open lines."""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output


class SendArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dialog_id: str = Field(min_length=1, max_length=64, description="user id, or chatN (b24_chat_find)")
    message: str = Field(min_length=1, max_length=20000)


def _user_exists(ctx: ToolContext, user_id: int) -> Generator[Call, Any, None]:
    from bitrix24_agent_tools.packs import preflight

    users = yield from preflight.cached(ctx, "user.get", {"ID": user_id})
    if users is not None and not users:
        raise ValueError(f"user #{user_id} does not exist (find it with b24_user_find)")


def chat_send(ctx: ToolContext, args: SendArgs) -> HandlerGen:
    dialog = args.dialog_id.strip()
    if dialog.isdigit():
        yield from _user_exists(ctx, int(dialog))
    elif not re.fullmatch(r"chat\d+", dialog):
        raise ValueError(f"dialog_id must be a user ID (find it with b24_user_find) or chatN, got {dialog!r}")
    response = yield Call("im.message.add", {"DIALOG_ID": dialog, "MESSAGE": args.message})
    return done_output(f"message #{response.result} sent to {args.dialog_id}", {"id": response.result})


class NotifyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(gt=0)
    message: str = Field(min_length=1, max_length=5000)


def notify(ctx: ToolContext, args: NotifyArgs) -> HandlerGen:
    yield from _user_exists(ctx, args.user_id)
    response = yield Call("im.notify.system.add", {"USER_ID": args.user_id, "MESSAGE": args.message})
    return done_output(
        f"notification #{response.result} sent to user {args.user_id}", {"id": response.result}
    )


class ChatFindArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=2, max_length=100, description="title or member; none: recent")
    limit: int = Field(10, ge=1, le=50)


def chat_find(ctx: ToolContext, args: ChatFindArgs) -> HandlerGen:
    """Chats by title or a member's name (im.search.chat.list, chats/search/im-search-chat-list.md), or the
    recent dialogs (im.recent.list); each with the dialog id b24_chat_send takes (``chatN``, or a user's
    id)."""
    if args.name:
        response = yield Call("im.search.chat.list", {"FIND": args.name, "LIMIT": args.limit})
        rows = [
            {
                "dialog_id": f"chat{r.get('id')}",
                "name": r.get("name"),
                "type": r.get("type"),
                "members": r.get("user_counter"),
            }
            for r in response.result or []
            if isinstance(r, dict)
        ]
        return rows_output(
            ctx, rows, total=response.total, searched=f"chats named or with a member like {args.name!r}"
        )
    response = yield Call("im.recent.list", {"LIMIT": args.limit})
    items = (response.result or {}).get("items", []) if isinstance(response.result, dict) else []
    rows = [
        {
            "dialog_id": str(i.get("id")),
            "name": i.get("title"),
            "type": i.get("type"),
            "last": ((i.get("message") or {}).get("text") or "")[:80],
            "date": (i.get("message") or {}).get("date"),
        }
        for i in items
        if isinstance(i, dict)
    ]
    return rows_output(ctx, rows, searched="your recent chats")


class MembersArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dialog_id: str = Field(pattern=r"^chat\d+$", description="chatN")


def chat_members(ctx: ToolContext, args: MembersArgs) -> HandlerGen:
    """im.chat.user.list (chats/chat-users/im-chat-user-list.md), with each member's name."""
    from bitrix24_agent_tools.packs import preflight

    response = yield Call("im.chat.user.list", {"CHAT_ID": int(args.dialog_id[4:])})
    ids = [int(u) for u in response.result or []]
    names = yield from preflight.user_names(ctx, ids)
    rows = [{"user_id": i, "name": names.get(str(i), "")} for i in ids]
    return rows_output(ctx, rows, searched=f"members of {args.dialog_id}")


class LinesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active_only: bool = False


def openlines(ctx: ToolContext, args: LinesArgs) -> HandlerGen:
    """imopenlines.config.list.get (imopenlines/openlines/imopenlines-config-list-get.md: PARAMS filter): the
    open lines (contact-center channels) and whether each is active."""
    params = {"PARAMS": {"filter": {"ACTIVE": "Y"}}} if args.active_only else {}
    response = yield Call("imopenlines.config.list.get", params)
    rows = [
        {"id": r.get("ID"), "name": r.get("LINE_NAME"), "active": r.get("ACTIVE")}
        for r in response.result or []
        if isinstance(r, dict)
    ]
    return rows_output(ctx, rows, searched="open lines")


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_chat_find",
            "Find a chat by name or member, or list recent chats.",
            ChatFindArgs,
            "read",
            ("im.search.chat.list", "im.recent.list"),
            chat_find,
            "comms",
        ),
        ToolSpec(
            "b24_chat_members",
            "List a group chat's members.",
            MembersArgs,
            "read",
            ("im.chat.user.list", "user.get"),
            chat_members,
            "comms",
        ),
        ToolSpec(
            "b24_openline_list",
            "List the open lines (contact center channels).",
            LinesArgs,
            "read",
            ("imopenlines.config.list.get",),
            openlines,
            "comms",
        ),
        ToolSpec(
            "b24_chat_send",
            "Send a chat message.",
            SendArgs,
            "write",
            ("im.message.add", "user.get"),
            chat_send,
            "comms",
        ),
        ToolSpec(
            "b24_notify",
            "Send a system notification to a user.",
            NotifyArgs,
            "write",
            ("im.notify.system.add", "user.get"),
            notify,
            "comms",
        ),
    ]
