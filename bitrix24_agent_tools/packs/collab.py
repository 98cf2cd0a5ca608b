"""The collab pack's typed tools: find a workgroup or project and its members, post to the live feed."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output


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
    words = {"U": "user", "SG": "workgroup", "DR": "department"}
    audience = (
        "everyone"
        if dest == ["UA"]
        else ", ".join(f"{words[re.match(r'[A-Z]+', d).group(0)]} #{d.lstrip('UGSDR')}" for d in dest)  # type: ignore[union-attr]
    )
    return done_output(
        f"posted #{response.result} to the live feed for {audience}", {"id": response.result, "to": dest}
    )


class GroupFindArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=255, description="part of the name; none: all")
    members: bool = Field(False, description="with members")


def group_find(ctx: ToolContext, args: GroupFindArgs) -> HandlerGen:
    """sonet_group.get (sonet-group/sonet-group-get.md: FILTER ``%NAME`` is a substring): workgroups and
    projects the caller can see; with members, sonet_group.user.get per group (at most 5 groups)."""
    flt = {"%NAME": args.name} if args.name else {}
    response = yield Call("sonet_group.get", {"FILTER": flt} if flt else {})
    rows: list[dict[str, Any]] = [
        {
            "id": g.get("ID"),
            "name": g.get("NAME"),
            "project": g.get("PROJECT"),
            "scrum": bool(g.get("SCRUM_MASTER_ID")),
            "count": g.get("NUMBER_OF_MEMBERS"),
        }
        for g in response.result or []
        if isinstance(g, dict)
    ]
    if args.members:
        from bitrix24_agent_tools.packs import preflight

        for row in rows[:5]:
            people = yield Call("sonet_group.user.get", {"ID": row["id"]})
            members = [m for m in people.result or [] if isinstance(m, dict)]
            ids = [int(m["USER_ID"]) for m in members if str(m.get("USER_ID", "")).isdigit()]
            names = yield from preflight.user_names(ctx, ids)
            # sonet-group/members/sonet-group-user-get.md: ROLE A owner, E moderator, K participant
            roles = {"A": "owner", "E": "moderator", "K": "member"}
            row["members"] = [
                {
                    "user_id": m.get("USER_ID"),
                    "name": names.get(str(m.get("USER_ID")), ""),
                    "role": roles.get(str(m.get("ROLE")), m.get("ROLE")),
                }
                for m in members
            ]
    return rows_output(
        ctx,
        rows,
        total=response.total,
        searched=f"groups named like {args.name!r}" if args.name else "groups",
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_group_find",
            "Find workgroups and projects (with members).",
            GroupFindArgs,
            "read",
            ("sonet_group.get", "sonet_group.user.get", "user.get"),
            group_find,
            "collab",
        ),
        ToolSpec(
            "b24_feed_post",
            "Post to the live feed (everyone unless to names who).",
            PostArgs,
            "write",
            ("log.blogpost.add",),
            feed_post,
            "collab",
        ),
    ]
