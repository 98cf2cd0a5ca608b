"""Tasks (tasks.task.*, task.commentitem.*): camelCase, result.tasks / result.task."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.query import (
    matches,
    order_rows,
    page,
)
from bitrix24_sandbox.registry import (
    Listing,
    _user_id,
    method,
    now_iso,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store


# --- tasks (camelCase, result.tasks / result.task) ---------------------------------------------------------

TASK_FIELDS = {
    "TITLE": "title",
    "DESCRIPTION": "description",
    "RESPONSIBLE_ID": "responsibleId",
    "DEADLINE": "deadline",
    "STATUS": "status",
    "PRIORITY": "priority",
    "GROUP_ID": "groupId",
    "CREATED_BY": "createdBy",
    "ID": "id",
    "CREATED_DATE": "createdDate",
    "CHANGED_DATE": "changedDate",
    "UF_CRM_TASK": "ufCrmTask",
}


def _task_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in fields.items():
        name = TASK_FIELDS.get(str(key).upper(), str(key))
        if name in TASK_FIELDS.values() and name not in ("id", "createdDate", "changedDate"):
            out[name] = (
                str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
            )
    return out


def _task_or_404(store: Store, params: dict[str, Any], key: str = "taskId") -> dict[str, Any]:
    """tasks-task-get.md / -update.md, Error Handling: no taskId → 100, a wrong one → 0."""
    raw = next((params[k] for k in (key, key.upper(), key.lower(), "id") if k in params), None)
    if raw is None:
        raise ApiError(
            "100",
            "CTaskItem All parameters in the constructor must have real class type (internal error)",
            400,
        )
    try:
        task_id = int(str(raw))
    except ValueError:
        raise ApiError("0", "wrong task id", 400) from None
    task = store.tables["task"].get(task_id)
    if task is None:  # UNVERIFIED: the docs name no code for a task that does not exist
        raise ApiError("ERROR_CORE", "Task not found or not accessible", 400)
    return task  # type: ignore[no-any-return]


def _task_fields_arg(params: dict[str, Any]) -> dict[str, Any]:
    fields = params.get("fields", params.get("FIELDS"))
    if not isinstance(fields, dict) or not fields:
        raise ApiError("100", "Could not find value for parameter {fields} (internal error)", 400)
    return fields


# tasks-task-list.md, "order": the fields a list sorts by (another key: code 0, "Invalid sorting key")
_ORDER_KEYS = {
    "ID", "TITLE", "TIME_SPENT_IN_LOGS", "DATE_START", "CREATED_DATE", "CHANGED_DATE", "CLOSED_DATE",
    "ACTIVITY_DATE", "START_DATE_PLAN", "END_DATE_PLAN", "DEADLINE", "REAL_STATUS", "STATUS_COMPLETE",
    "PRIORITY", "MARK", "CREATED_BY_LAST_NAME", "RESPONSIBLE_LAST_NAME", "GROUP_ID", "TIME_ESTIMATE",
    "ALLOW_CHANGE_DEADLINE", "ALLOW_TIME_TRACKING", "MATCH_WORK_TIME", "FAVORITE", "SORTING", "IS_PINNED",
    "IS_PINNED_IN_GROUP",
}  # fmt: skip
# filter names that are another field of the row: REAL_STATUS and STATUS are the status (STATUS also takes
# meta-statuses the sandbox does not compute), CLOSED_DATE the completion date
_FILTER_ALIASES = {"REAL_STATUS": "status", "STATUS": "status", "CLOSED_DATE": "closedDate"}


def _like(pattern: str) -> re.Pattern[str]:
    """TITLE "can search by pattern [%_]" (tasks-task-list.md): % any run of characters, _ one."""
    body = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL)


@method("tasks.task.list", "task")
def task_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """tasks/tasks-task-list.md: filter (REAL_STATUS, TITLE patterns, the operation before the field), order
    (ID descending by default; a key it does not list is refused), select, start."""
    flt = params.get("filter") or {}
    task_flt = {}
    patterns: list[re.Pattern[str]] = []
    for key, value in flt.items() if isinstance(flt, dict) else []:
        prefix = re.match(r"^[^A-Za-z_]*", key).group(0)  # type: ignore[union-attr]
        name = key[len(prefix) :]
        if name.upper() == "TITLE" and not prefix and isinstance(value, str) and re.search(r"[%_]", value):
            patterns.append(_like(value))
            continue
        field = _FILTER_ALIASES.get(name.upper()) or TASK_FIELDS.get(name.upper(), name)
        task_flt[prefix + field] = value
    rows = [
        t
        for t in store.tables["task"].values()
        if matches(t, task_flt) and all(p.match(str(t.get("title") or "")) for p in patterns)
    ]
    order = params.get("order") or {"ID": "DESC"}
    if isinstance(order, dict):
        bad = [k for k in order if str(k).upper() not in _ORDER_KEYS]
        if bad:
            raise ApiError("0", "Invalid sorting key (internal error)", 400)
    rows = order_rows(
        rows,
        {
            (_FILTER_ALIASES.get(str(k).upper()) or TASK_FIELDS.get(str(k).upper(), k)): v
            for k, v in order.items()
        }
        if isinstance(order, dict)
        else {},
    )
    rows = _numeric_ids(rows, order)
    store.charge(items=len(rows), counted=str(params.get("start", 0)) != "-1", offset=params.get("start"))
    chunk, total, nxt = page(rows, params.get("start"))
    select = params.get("select")
    chunk = [public_task(store, t) for t in chunk]
    if isinstance(select, list) and select and "*" not in select:
        wanted = {TASK_FIELDS.get(str(s).upper(), str(s)) for s in select} | {"id"}
        chunk = [{k: v for k, v in t.items() if k in wanted} for t in chunk]
    return Listing({"tasks": chunk}, total, nxt)


def _numeric_ids(rows: list[dict[str, Any]], order: Any) -> list[dict[str, Any]]:
    """ID sorts as a number (task 10 after task 9), in the direction asked (descending by default)."""
    if not isinstance(order, dict) or not order:
        return rows
    first, direction = next(iter(order.items()))
    if str(first).upper() != "ID":
        return rows
    return sorted(rows, key=lambda t: int(t["id"]), reverse=str(direction).upper() == "DESC")


def _person(store: Store, user_id: Any) -> dict[str, Any] | None:
    user = store.tables["user"].get(_user_id(user_id or 0))
    if user is None:
        return None
    return {
        "id": str(user["ID"]),
        "name": f"{user.get('NAME', '')} {user.get('LAST_NAME', '')}".strip(),
        "link": f"/company/personal/user/{user['ID']}/",
        "icon": "/bitrix/images/tasks/default_avatar.png",
        "workPosition": user.get("WORK_POSITION", ""),
    }


def public_task(store: Store, task: dict[str, Any]) -> dict[str, Any]:
    """A task as tasks.task.get returns it (tasks-task-get.md, example): the stored fields, ``creator`` and
    ``responsible`` as people, ``accomplices`` and ``auditors`` (IDs), ``subStatus``, and ``closedBy`` /
    ``closedDate`` (set once it is completed)."""
    return {
        "accomplices": [],
        "auditors": [],
        "closedBy": None,
        "closedDate": None,
        **task,
        "subStatus": task.get("status"),
        "creator": _person(store, task.get("createdBy")),
        "responsible": _person(store, task.get("responsibleId")),
    }


@method("tasks.task.get", "task")
def task_get(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    return {"task": public_task(store, _task_or_404(store, params))}


@method("tasks.task.add", "task")
def task_add(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    fields = _task_fields(_task_fields_arg(params))
    if not str(fields.get("title") or "").strip():
        raise ApiError("ERROR_CORE", "Task title not specified", 400)  # tasks-task-add.md, Error Handling
    if str(fields.get("responsibleId") or "").strip() in ("", "0"):
        raise ApiError("ERROR_CORE", "Responsible person not specified", 400)  # tasks-task-add.md
    if _user_id(fields["responsibleId"]) not in store.tables["user"]:
        raise ApiError("ERROR_CORE", 'User specified in the "Responsible" field not found', 400)
    new_id = store.next_id("task")
    stamp = now_iso(store)
    task = {
        "id": str(new_id),
        "title": "",
        "description": "",
        "status": "2",
        "responsibleId": str(caller.user_id),
        "createdBy": str(caller.user_id),
        "deadline": None,
        "createdDate": stamp,
        "changedDate": stamp,
        "priority": "1",
        "groupId": "0",
        **fields,
    }
    store.tables["task"][new_id] = task
    store.emit("ONTASKADD", {"FIELDS_AFTER": {"ID": new_id}}, params)
    return {"task": public_task(store, task)}


@method("tasks.task.update", "task")
def task_update(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    task = _task_or_404(store, params)
    fields = _task_fields(_task_fields_arg(params))
    if "responsibleId" in fields and _user_id(fields["responsibleId"]) not in store.tables["user"]:
        raise ApiError("ERROR_CORE", 'The user specified in the "Responsible" field was not found<br>', 400)
    task.update(fields)
    task["changedDate"] = now_iso(store)
    if "status" in fields:  # completing sets who and when; reopening clears them
        if str(task.get("status")) == "5":
            task.update(closedDate=task["changedDate"], closedBy=str(caller.user_id))
        elif task.get("closedDate"):
            task.update(closedDate=None, closedBy=None)
    store.emit("ONTASKUPDATE", {"FIELDS_AFTER": {"ID": int(task["id"])}}, params)
    return {"task": public_task(store, task)}


@method("tasks.task.complete", "task")
def task_complete(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    task = _task_or_404(store, params)
    stamp = now_iso(store)
    task.update(status="5", changedDate=stamp, closedDate=stamp, closedBy=str(caller.user_id))
    store.emit("ONTASKUPDATE", {"FIELDS_AFTER": {"ID": int(task["id"])}}, params)
    return {"task": public_task(store, task)}


@method("tasks.task.delete", "task")
def task_delete(store: Store, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
    task = _task_or_404(store, params)
    del store.tables["task"][int(task["id"])]
    store.emit("ONTASKDELETE", {"FIELDS_BEFORE": {"ID": int(task["id"])}}, params)
    return {"task": True}


@method("task.commentitem.add", "task")
def task_comment_add(store: Store, params: dict[str, Any], caller: Caller) -> int:
    positional = params.get("0")  # the documented call passes [TASKID, FIELDS] positionally
    task_id = params.get(
        "TASKID", params.get("taskId", positional if isinstance(positional, (int, str)) else None)
    )
    if task_id is None or int(task_id) not in store.tables["task"]:
        raise ApiError("ERROR_CORE", "Task not found or not accessible", 400)
    fields = params.get("FIELDS") or params.get("fields") or {}
    text = str(fields.get("POST_MESSAGE") or "").strip() if isinstance(fields, dict) else ""
    if not text:
        raise ApiError("ERROR_CORE", "POST_MESSAGE is required", 400)
    new_id = store.next_id("task_comment")
    store.tables["task_comment"][new_id] = {
        "ID": str(new_id),
        "TASK_ID": str(task_id),
        "POST_MESSAGE": text,
        "AUTHOR_ID": str(caller.user_id),
    }
    return new_id
