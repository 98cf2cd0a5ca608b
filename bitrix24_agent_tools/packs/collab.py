"""The collab pack's typed tools: post to the live feed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output


class PostArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=20000)
    title: str | None = Field(None, max_length=255)


def feed_post(ctx: ToolContext, args: PostArgs) -> HandlerGen:
    params: dict[str, Any] = {"POST_MESSAGE": args.message, "DEST": ["UA"]}
    if args.title:
        params["POST_TITLE"] = args.title
    response = yield Call("log.blogpost.add", params)
    return done_output(f"posted #{response.result} to the live feed", {"id": response.result})


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_feed_post",
            "Post to the live feed.",
            PostArgs,
            "write",
            ("log.blogpost.add",),
            feed_post,
            "collab",
        )
    ]
