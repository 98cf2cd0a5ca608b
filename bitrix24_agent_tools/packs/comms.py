"""The comms pack's typed tools: send a chat message, notify a user."""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output


class SendArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dialog_id: str = Field(min_length=1, max_length=64, description="user id, or chatN")
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


def specs() -> list[ToolSpec]:
    return [
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
