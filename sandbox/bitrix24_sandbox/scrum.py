"""Scrum (tasks.api.scrum.*): sprints, backlogs, epics and the sprint's kanban, over the portal's tasks.

Sprints and backlogs share one entity-ID space, as on the portal (a task's ``entityId`` is a sprint or a
backlog). The docs answer errors with code 0 and a text; the sandbox sends the code as the string "0"."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import method, positive, table
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store

_STATUSES = ("active", "planned", "completed")


def _need(params: dict[str, Any], key: str, kind: str = "int") -> Any:
    if key not in params or params[key] in (None, ""):
        raise ApiError("100", f"Could not find value for parameter {{{key}}}", 400)
    if kind == "int":
        value = positive(params[key])
        if value is None:
            raise ApiError(
                "100",
                f"Invalid value {params[key]} to match with parameter {{{key}}}. Should be value of type int",
                400,
            )
        return value
    if not isinstance(params[key], dict):
        raise ApiError(
            "100",
            f"Invalid value {params[key]} to match with parameter {{{key}}}. Should be value of type array",
            400,
        )
    return params[key]


def _scrum_group(store: Store, group_id: Any, caller: Caller) -> dict[str, Any]:
    group = table(store, "sonet_group").get(positive(group_id) or 0)
    if group is None or not group.get("SCRUM_MASTER_ID"):
        raise ApiError("0", "Group is not found", 400)
    members = table(store, "sonet_member").get(int(group["ID"]), {}).get("MEMBERS", [])
    if not caller.is_admin and all(m["USER_ID"] != str(caller.user_id) for m in members):
        raise ApiError("0", "Access denied", 403)
    return group


def _entity_id(store: Store) -> int:
    used = set(table(store, "scrum_sprint")) | set(table(store, "scrum_backlog"))
    return max(used, default=0) + 1


def _date(value: Any, label: str) -> str:
    if value in (None, ""):
        return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    if str(value).isdigit():
        return datetime.fromtimestamp(int(value), timezone.utc).isoformat()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).isoformat()
    except ValueError:
        raise ApiError("0", f"Incorrect {label} format", 400) from None


def _user(store: Store, value: Any, label: str, default: int) -> int:
    user = positive(value) if value not in (None, "") else default
    if user is None or user not in store.tables["user"]:
        raise ApiError("0", f"{label} user not found", 400)
    return user


@method("tasks.api.scrum.sprint.add", "task")
def sprint_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sonet-group/scrum/sprint/tasks-api-scrum-sprint-add.md."""
    fields = _need(params, "fields", "object")
    group = _scrum_group(store, fields.get("groupId"), caller)
    if not str(fields.get("name") or "").strip():
        raise ApiError("0", "Sprint not created", 400)
    status = str(fields.get("status") or "planned")
    if status not in _STATUSES:
        raise ApiError("0", "Sprint not created", 400)
    sprint_id = _entity_id(store)
    sprint = {
        "id": sprint_id,
        "groupId": int(group["ID"]),
        "entityType": "sprint",
        "name": str(fields["name"]),
        "goal": str(fields.get("goal") or ""),
        "sort": positive(fields.get("sort")) or 1,
        "createdBy": _user(store, fields.get("createdBy"), "createdBy", caller.user_id),
        "modifiedBy": _user(store, fields.get("modifiedBy"), "modifiedBy", caller.user_id),
        "dateStart": _date(fields.get("dateStart"), "dateStart"),
        "dateEnd": _date(fields.get("dateEnd"), "dateEnd"),
        "status": status,
    }
    table(store, "scrum_sprint")[sprint_id] = sprint
    for offset, (name, kind, color) in enumerate(
        (("New", "NEW", "00C4FB"), ("In Progress", "WORK", "47D1E2"), ("Done", "FINISH", "75D900"))
    ):
        stage_id = store.next_id("scrum_stage")
        table(store, "scrum_stage")[stage_id] = {
            "id": str(stage_id),
            "name": name,
            "sort": str((offset + 1) * 100),
            "type": kind,
            "sprintId": str(sprint_id),
            "color": color,
        }
    return dict(sprint)


@method("tasks.api.scrum.sprint.list", "task")
def sprint_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """sonet-group/scrum/sprint/tasks-api-scrum-sprint-list.md: ``filter`` by the fields its table names in
    upper case (``GROUP_ID``, ``STATUS``, …) — the rows carry them in camel case (groupId, status)."""
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise ApiError("0", "Could not load list", 400)
    wanted = {_camel(str(k)): v for k, v in flt.items()}
    return [
        dict(s)
        for s in table(store, "scrum_sprint").values()
        if all(str(s.get(k)) == str(v) for k, v in wanted.items())
    ]


def _camel(name: str) -> str:
    """GROUP_ID → groupId (a key already in camel case stays)."""
    if "_" not in name and not name.isupper():
        return name
    head, *rest = name.lower().split("_")
    return head + "".join(part.capitalize() for part in rest)


def _sprint(store: Store, params: dict[str, Any], key: str = "id") -> dict[str, Any]:
    sprint_id = _need(params, key)
    sprint = table(store, "scrum_sprint").get(sprint_id)
    if sprint is None:
        raise ApiError("0", "Sprint not found", 400)
    return sprint


@method("tasks.api.scrum.sprint.start", "task")
def sprint_start(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sonet-group/scrum/sprint/tasks-api-scrum-sprint-start.md: only a planned sprint; one active per
    group."""
    sprint = _sprint(store, params)
    _scrum_group(store, sprint["groupId"], caller)
    if sprint["status"] != "planned":
        raise ApiError("0", "Sprint must be planned", 400)
    if any(
        s["groupId"] == sprint["groupId"] and s["status"] == "active"
        for s in table(store, "scrum_sprint").values()
    ):
        raise ApiError(
            "0", "It is not possible to start a sprint while another one is active", 400
        )  # UNVERIFIED text
    sprint["status"] = "active"
    return dict(sprint)


@method("tasks.api.scrum.sprint.complete", "task")
def sprint_complete(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sonet-group/scrum/sprint/tasks-api-scrum-sprint-complete.md: unfinished tasks go back to the
    backlog."""
    sprint = _sprint(store, params)
    _scrum_group(store, sprint["groupId"], caller)
    if sprint["status"] != "active":
        raise ApiError(
            "0", "Sprint not found", 400
        )  # UNVERIFIED: the docs list no code for a non-active sprint
    sprint["status"] = "completed"
    backlog = next(
        (b for b in table(store, "scrum_backlog").values() if b["groupId"] == sprint["groupId"]), None
    )
    for task_id, item in list(table(store, "scrum_item").items()):
        if (
            item["sprintId"] == sprint["id"]
            and str(store.tables["task"].get(task_id, {}).get("status")) != "5"
        ):
            table(store, "scrum_item")[task_id] = {
                "taskId": task_id,
                "sprintId": None,
                "stageId": None,
                "backlogId": backlog["id"] if backlog else None,
            }
    return dict(sprint)


@method("tasks.api.scrum.kanban.getStages", "task")
def kanban_stages(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    """sonet-group/scrum/kanban/tasks-api-scrum-kanban-get-stages.md."""
    if positive(params.get("sprintId")) is None:
        raise ApiError("0", "Sprint id not found", 400)
    sprint = _sprint(store, params, "sprintId")
    return [dict(s) for s in table(store, "scrum_stage").values() if s["sprintId"] == str(sprint["id"])]


def _sprint_task(store: Store, params: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], int]:
    if positive(params.get("sprintId")) is None:
        raise ApiError("0", "Sprint id not found", 400)
    task_id = positive(params.get("taskId"))
    if task_id is None:
        raise ApiError("0", "TaskId id not found", 400)
    sprint = _sprint(store, params, "sprintId")
    _scrum_group(store, sprint["groupId"], caller)
    task = store.tables["task"].get(task_id)
    if task is None or str(task.get("groupId")) != str(sprint["groupId"]):
        raise ApiError("0", "Task not found. The task must be with GROUP_ID", 400)
    return sprint, task_id


@method("tasks.api.scrum.kanban.addTask", "task")
def kanban_add_task(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """sonet-group/scrum/kanban/tasks-api-scrum-kanban-add-task.md: the task joins the sprint at a stage."""
    if positive(params.get("stageId")) is None:
        raise ApiError("0", "StageId id not found", 400)
    sprint, task_id = _sprint_task(store, params, caller)
    stage = table(store, "scrum_stage").get(positive(params["stageId"]) or 0)
    if stage is None or stage["sprintId"] != str(sprint["id"]):
        raise ApiError("0", "Stage not found", 400)
    table(store, "scrum_item")[task_id] = {
        "taskId": task_id,
        "sprintId": sprint["id"],
        "stageId": int(stage["id"]),
    }
    return True


@method("tasks.api.scrum.kanban.deleteTask", "task")
def kanban_delete_task(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """sonet-group/scrum/kanban/tasks-api-scrum-kanban-delete-task.md: the task leaves the sprint's board."""
    sprint, task_id = _sprint_task(store, params, caller)
    item = table(store, "scrum_item").get(task_id)
    if item is None or item.get("sprintId") != sprint["id"]:
        raise ApiError("0", "Task not found. The task must be with GROUP_ID", 400)
    backlog = next(
        (b for b in table(store, "scrum_backlog").values() if b["groupId"] == sprint["groupId"]), None
    )
    table(store, "scrum_item")[task_id] = {
        "taskId": task_id,
        "sprintId": None,
        "stageId": None,
        "backlogId": backlog["id"] if backlog else None,
    }
    return True


@method("tasks.api.scrum.task.get", "task")
def scrum_task_get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sonet-group/scrum/task/tasks-api-scrum-task-get.md: ``entityId`` is the task's sprint or backlog."""
    task_id = _need(params, "id")
    item = table(store, "scrum_item").get(task_id)
    task = store.tables["task"].get(task_id)
    if task is None or item is None:
        raise ApiError("0", "Task not found", 400)
    return {
        "entityId": item.get("sprintId") or item.get("backlogId"),
        "storyPoints": str(item.get("storyPoints") or ""),
        "epicId": item.get("epicId") or 0,
        "sort": 1,
        "createdBy": int(task.get("createdBy") or 1),
        "modifiedBy": int(task.get("createdBy") or 1),
    }


@method("tasks.api.scrum.task.update", "task")
def scrum_task_update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """sonet-group/scrum/task/tasks-api-scrum-task-update.md: ``fields`` entityId (a sprint or backlog of the
    task's group), storyPoints (a string is allowed), epicId, sort. A task not yet in Scrum joins its group's
    backlog. Errors: "Task not found", "Epic not found". UNVERIFIED: the page's example shows a body
    ``{status, data, errors}``; the answer here is the usual envelope with ``result: true``."""
    task_id = _need(params, "id")
    fields = _need(params, "fields", "object")
    task = store.tables["task"].get(task_id)
    if task is None:
        raise ApiError("0", "Task not found", 400)
    items = table(store, "scrum_item")
    item = items.get(task_id)
    if item is None:
        backlog = next(
            (
                b
                for b in table(store, "scrum_backlog").values()
                if str(b["groupId"]) == str(task.get("groupId"))
            ),
            None,
        )
        if backlog is None:
            raise ApiError("0", "Item not created", 400)
        item = items[task_id] = {
            "taskId": task_id,
            "sprintId": None,
            "stageId": None,
            "backlogId": backlog["id"],
        }
    if "epicId" in fields:
        epic = positive(fields["epicId"])
        if epic and epic not in table(store, "scrum_epic"):
            raise ApiError("0", "Epic not found", 400)
        item["epicId"] = epic or 0
    if "storyPoints" in fields:
        item["storyPoints"] = str(fields["storyPoints"] if fields["storyPoints"] is not None else "")
    if "entityId" in fields:
        target = positive(fields["entityId"])
        if target in table(store, "scrum_sprint"):
            item.update(sprintId=target, backlogId=None)
        elif target in table(store, "scrum_backlog"):
            item.update(sprintId=None, stageId=None, backlogId=target)
        else:
            raise ApiError("0", "Item not created", 400)
    if "sort" in fields:
        item["sort"] = positive(fields["sort"]) or 0
    return True


@method("tasks.api.scrum.epic.add", "task")
def epic_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sonet-group/scrum/epic/tasks-api-scrum-epic-add.md."""
    fields = _need(params, "fields", "object")
    if not str(fields.get("name") or "").strip():
        raise ApiError("0", "Name is not found", 400)
    group = _scrum_group(store, fields.get("groupId"), caller)
    epic_id = store.next_id("scrum_epic")
    epic = {
        "id": epic_id,
        "groupId": int(group["ID"]),
        "name": str(fields["name"]),
        "description": str(fields.get("description") or ""),
        "createdBy": _user(store, fields.get("createdBy"), "createdBy", caller.user_id),
        "modifiedBy": _user(store, fields.get("modifiedBy"), "modifiedBy", caller.user_id),
        "color": str(fields.get("color") or "#69dafc"),
    }
    table(store, "scrum_epic")[epic_id] = epic
    return dict(epic)


@method("tasks.api.scrum.epic.list", "task")
def epic_list(store: Store, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise ApiError("0", "Could not load list", 400)
    return [
        dict(e)
        for e in table(store, "scrum_epic").values()
        if all(str(e.get(k)) == str(v) for k, v in flt.items())
    ]


@method("tasks.api.scrum.backlog.add", "task")
def backlog_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """sonet-group/scrum/backlog/tasks-api-scrum-backlog-add.md: one backlog per group."""
    fields = _need(params, "fields", "object")
    if positive(fields.get("groupId")) is None:
        raise ApiError("0", "Group id not found", 400)
    group = _scrum_group(store, fields["groupId"], caller)
    if any(b["groupId"] == int(group["ID"]) for b in table(store, "scrum_backlog").values()):
        raise ApiError("0", "Backlog already added", 400)
    backlog_id = _entity_id(store)
    backlog = {
        "id": backlog_id,
        "groupId": int(group["ID"]),
        "createdBy": _user(store, fields.get("createdBy"), "createdBy", caller.user_id),
        "modifiedBy": positive(fields.get("modifiedBy")) or 0,
    }
    table(store, "scrum_backlog")[backlog_id] = backlog
    return dict(backlog)
