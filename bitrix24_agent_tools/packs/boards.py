"""The boards pack's typed tools: a scrum group's sprints, start or complete one, put a task on a sprint's
board, set a task's story points."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.client.errors import Bitrix24Error
from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output


class SprintTaskArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_id: int = Field(gt=0)
    sprint_id: int | None = Field(None, gt=0, description="default: the active sprint")


def sprint_task(ctx: ToolContext, args: SprintTaskArgs) -> HandlerGen:
    """tasks.api.scrum.kanban.addTask (tasks-api-scrum-kanban-add-task.md) at the sprint's first stage, after
    checking what the portal would refuse: the task must belong to the sprint's scrum group."""
    try:
        task = (yield Call("tasks.task.get", {"taskId": args.task_id})).result.get("task") or {}
    except Bitrix24Error:
        raise ValueError(f"task #{args.task_id} does not exist (find it with b24_task_list)") from None
    group = int(task.get("groupId") or 0)
    if not group:
        raise ValueError(f"task #{args.task_id} is in no scrum group: set its group first (b24_task_update)")
    sprints = (yield Call("tasks.api.scrum.sprint.list", {"filter": {"GROUP_ID": group}})).result or []
    if args.sprint_id is not None:
        chosen = [s for s in sprints if int(s["id"]) == args.sprint_id]
        if not chosen:
            names = ", ".join(f"#{s['id']} {s['name']} ({s['status']})" for s in sprints) or "none"
            raise ValueError(f"sprint #{args.sprint_id} is not in group #{group}; its sprints: {names}")
    else:
        chosen = [s for s in sprints if s.get("status") == "active"]
        if not chosen:
            planned = ", ".join("#" + str(s["id"]) for s in sprints if s.get("status") == "planned") or "none"
            raise ValueError(f"group #{group} has no active sprint; give sprint_id (planned: {planned})")
    sprint = chosen[0]
    if sprint.get("status") == "completed":
        raise ValueError(f"sprint #{sprint['id']} '{sprint['name']}' is completed")
    stages = (yield Call("tasks.api.scrum.kanban.getStages", {"sprintId": sprint["id"]})).result or []
    first = min(stages, key=lambda s: int(s.get("sort") or 0)) if stages else None
    if first is None:
        raise ValueError(f"sprint #{sprint['id']} has no kanban stages")
    yield Call(
        "tasks.api.scrum.kanban.addTask",
        {"sprintId": sprint["id"], "taskId": args.task_id, "stageId": int(first["id"])},
    )
    return done_output(
        f"task #{args.task_id} added to sprint #{sprint['id']} '{sprint['name']}', stage {first['name']}",
        {"task": args.task_id, "sprint": sprint["id"], "stage": first["id"]},
    )


class SprintListArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group_id: int | None = Field(None, gt=0, description="scrum group; default: all")
    status: Literal["active", "planned", "completed"] | None = None


def sprint_list(ctx: ToolContext, args: SprintListArgs) -> HandlerGen:
    """tasks.api.scrum.sprint.list (sonet-group/scrum/sprint/tasks-api-scrum-sprint-list.md)."""
    flt: dict[str, Any] = {}
    if args.group_id:
        flt["GROUP_ID"] = args.group_id
    if args.status:
        flt["STATUS"] = args.status
    response = yield Call("tasks.api.scrum.sprint.list", {"filter": flt} if flt else {})
    rows = [
        {k: s.get(k) for k in ("id", "name", "status", "groupId", "goal", "dateStart", "dateEnd")}
        for s in response.result or []
        if isinstance(s, dict)
        and (not args.group_id or int(s.get("groupId") or 0) == args.group_id)
        and (not args.status or s.get("status") == args.status)
    ]
    shown = ", ".join(f"{k}={v}" for k, v in flt.items()) or "every scrum group"
    return rows_output(ctx, rows, searched=f"sprints of {shown}")


class SprintArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sprint_id: int = Field(gt=0, description="b24_sprint_list")
    action: Literal["start", "complete"]


def sprint_change(ctx: ToolContext, args: SprintArgs) -> HandlerGen:
    """tasks.api.scrum.sprint.start / .complete (tasks-api-scrum-sprint-start.md, -complete.md): only a
    planned sprint starts, only the active one completes (its unfinished tasks go back to the backlog) — said
    before anyone is asked."""
    sprints = (yield Call("tasks.api.scrum.sprint.list", {"filter": {"ID": args.sprint_id}})).result or []
    sprint = next((s for s in sprints if int(s.get("id") or 0) == args.sprint_id), None)
    if sprint is None:
        raise ValueError(f"sprint #{args.sprint_id} does not exist (see b24_sprint_list)")
    needed = "planned" if args.action == "start" else "active"
    if sprint.get("status") != needed:
        raise ValueError(
            f"sprint #{args.sprint_id} '{sprint.get('name')}' is {sprint.get('status')}; "
            f"only a {needed} sprint can {args.action}"
        )
    if args.action == "start":  # one active sprint per group (tasks-api-scrum-sprint-start.md)
        group = {"GROUP_ID": sprint.get("groupId")}
        others = (yield Call("tasks.api.scrum.sprint.list", {"filter": {**group, "STATUS": "active"}})).result
        active = [o for o in others or [] if o.get("status") == "active" and o.get("id") != sprint.get("id")]
        if active:
            raise ValueError(
                f"sprint #{active[0]['id']} '{active[0].get('name')}' is still active in this group: "
                "complete it first"
            )
    yield Call(f"tasks.api.scrum.sprint.{args.action}", {"id": args.sprint_id})
    done = "started" if args.action == "start" else "completed (unfinished tasks back to the backlog)"
    return done_output(f"sprint #{args.sprint_id} '{sprint.get('name')}' {done}", {"id": args.sprint_id})


class PointsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_id: int = Field(gt=0)
    points: str = Field(min_length=1, max_length=10, description="e.g. 3, XL")


def story_points(ctx: ToolContext, args: PointsArgs) -> HandlerGen:
    """tasks.api.scrum.task.update ``fields.storyPoints``
    (sonet-group/scrum/task/tasks-api-scrum-task-update.md; a string is allowed)."""
    yield Call("tasks.api.scrum.task.update", {"id": args.task_id, "fields": {"storyPoints": args.points}})
    return done_output(f"task #{args.task_id}: {args.points} story points", {"id": args.task_id})


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_sprint_list",
            "List scrum sprints.",
            SprintListArgs,
            "read",
            ("tasks.api.scrum.sprint.list",),
            sprint_list,
            "boards",
        ),
        ToolSpec(
            "b24_sprint_change",
            "Start or complete a sprint.",
            SprintArgs,
            "write",
            (
                "tasks.api.scrum.sprint.list",
                "tasks.api.scrum.sprint.start",
                "tasks.api.scrum.sprint.complete",
            ),
            sprint_change,
            "boards",
        ),
        ToolSpec(
            "b24_story_points",
            "Set a scrum task's story points.",
            PointsArgs,
            "write",
            ("tasks.api.scrum.task.update",),
            story_points,
            "boards",
        ),
        ToolSpec(
            "b24_sprint_add_task",
            "Add a task to a scrum sprint.",
            SprintTaskArgs,
            "write",
            (
                "tasks.api.scrum.kanban.addTask",
                "tasks.api.scrum.sprint.list",
                "tasks.api.scrum.kanban.getStages",
                "tasks.task.get",
            ),
            sprint_task,
            "boards",
        ),
    ]
