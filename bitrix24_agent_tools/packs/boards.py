"""The boards pack's typed tools: put a task on a sprint's board."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.client.errors import Bitrix24Error
from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output


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
    sprints = (yield Call("tasks.api.scrum.sprint.list", {"filter": {"groupId": group}})).result or []
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


def specs() -> list[ToolSpec]:
    return [
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
        )
    ]
