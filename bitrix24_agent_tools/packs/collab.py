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
    to: dict[str, list[int]] = Field(
        default_factory=dict, description='{"users":[5],"groups":[2],"departments":[1]}; none: everyone'
    )


def feed_post(ctx: ToolContext, args: PostArgs) -> HandlerGen:
    # DEST codes (api-reference/log/log-blogpost-add.md): U<id> a user, SG<id> a workgroup, DR<id> a
    # department with its sub-departments, UA every authorised user — the portal's default, said, not assumed.
    codes = {"users": "U", "groups": "SG", "departments": "DR"}
    unknown = [k for k in args.to if k not in codes]
    if unknown:
        raise ValueError(f"to takes users, groups and departments, not {', '.join(unknown)}")
    dest = [f"{codes[k]}{int(i)}" for k, ids in args.to.items() for i in ids] or ["UA"]
    params: dict[str, Any] = {"POST_MESSAGE": args.message, "DEST": dest}
    if args.title:
        params["POST_TITLE"] = args.title
    response = yield Call("log.blogpost.add", params)
    audience = "everyone" if dest == ["UA"] else ", ".join(dest)
    return done_output(
        f"posted #{response.result} to the live feed for {audience}", {"id": response.result, "to": dest}
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_feed_post",
            "Post to the live feed (everyone unless to names who).",
            PostArgs,
            "write",
            ("log.blogpost.add",),
            feed_post,
            "collab",
        )
    ]
