"""REST 3.0 as the docs describe it (api-reference/rest-v3.md, tasks/*-rest-v3.md, tasks/fields-rest-v3.md).

Only migrated methods exist (here: tasks, and the system methods); a task is a ``TaskDto`` with numbers as
numbers and named statuses; ``select`` picks fields (an unknown own field is left out, an unknown related one
is an error); ``filter`` is a list of ``[field, operator, value]`` triples and ``{"logic": "or", "conditions":
[...]}`` groups; ``pagination`` is ``{page, limit, offset}``; errors carry ``code``, ``message`` and
``validation``; ``batch`` takes a JSON array of ``{method, query}``; ``Idempotency-Key`` replays a successful
write for 24 hours.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.portal import Portal

PREFIX = "BITRIX_REST_V3_EXCEPTION_"
METHODS = (
    "tasks.task.get",
    "tasks.task.add",
    "tasks.task.update",
    "tasks.task.delete",
    "tasks.task.list",
    "tasks.task.field.list",
    "tasks.task.field.get",
    "rest.scope.list",
    "documentation",
    "rest.documentation.openapi",
    "batch",
)
WRITES = ("tasks.task.add", "tasks.task.update", "tasks.task.delete")
_STATUS = {
    "1": "pending",
    "2": "pending",
    "3": "in_progress",
    "4": "supposedly_completed",
    "5": "completed",
    "6": "deferred",
}
_PRIORITY = {"0": "low", "1": "average", "2": "high"}
TASK_FIELDS = (
    "id",
    "title",
    "description",
    "creatorId",
    "created",
    "responsibleId",
    "deadline",
    "groupId",
    "priority",
    "status",
    "changed",
)
RELATED = {"creator": "creatorId", "responsible": "responsibleId"}
USER_FIELDS = ("id", "name", "lastName", "email")
SORTABLE = (
    "id",
    "title",
    "creatorId",
    "created",
    "responsibleId",
    "deadline",
    "groupId",
    "priority",
    "status",
    "changed",
)
_OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "in", "between")
# The task DTO's fields as tasks.task.field.list / .get describe them (tasks/tasks-task-field-list.md): their
# names and types as the docs' examples show them ("int", "string", "object", "array"); what the sandbox
# filters and sorts by; related objects (creator, responsible) as "object". UNVERIFIED: which fields a real
# portal marks editable; here the ones tasks.task.update takes.
FIELD_TYPES: dict[str, str] = {
    "id": "int",
    "title": "string",
    "description": "string",
    "creatorId": "int",
    "creator": "object",
    "created": "object",
    "responsibleId": "int",
    "responsible": "object",
    "deadline": "datetime",
    "groupId": "int",
    "priority": "string",
    "status": "string",
    "changed": "datetime",
}
_EDITABLE = ("title", "description", "responsibleId", "deadline", "groupId", "priority")
FIELD_DESCRIPTION = (
    "name",
    "type",
    "title",
    "description",
    "validationRules",
    "requiredGroups",
    "filterable",
    "sortable",
    "editable",
    "multiple",
    "elementType",
)


def _scope_list(params: dict[str, Any]) -> dict[str, Any]:
    """rest-v3.md: "the method-to-scope mapping for all modules". UNVERIFIED shape (the docs show none):
    as the official PHP SDK reads it — module → controller → method → {scope, title, description, fields},
    ``scope`` the method's full name — narrowed by filterModule / filterController / filterMethod."""
    wanted = {
        k: str(params[k]) for k in ("filterModule", "filterController", "filterMethod") if params.get(k)
    }
    tree: dict[str, Any] = {}
    for name in METHODS:
        if name in ("batch", "documentation"):
            continue
        module, *middle, last = name.split(".")
        controller = ".".join(middle)
        if (
            wanted.get("filterModule", module) != module
            or wanted.get("filterController", controller) != controller
            or wanted.get("filterMethod", last) != last
        ):
            continue
        item = {"scope": name, "title": name, "description": "", "fields": None}
        tree.setdefault(module, {}).setdefault(controller, {})[last] = item
    return tree


def _field(name: str, select: Any) -> dict[str, Any]:
    full: dict[str, Any] = {
        "name": name,
        "type": FIELD_TYPES[name],
        "title": name,
        "description": None,
        "validationRules": [],
        "requiredGroups": ["add"] if name in ("title", "responsibleId") else None,
        "filterable": name == "id",  # only `id` is filterable here (see _check_filter)
        "sortable": name in SORTABLE,
        "editable": name in _EDITABLE,
        "multiple": False,
        "elementType": None,
    }
    if select is None:
        return full
    if not isinstance(select, list) or not all(isinstance(k, str) for k in select):
        raise error("INVALIDSELECTEXCEPTION", f"Unable to recognize select expression `{json.dumps(select)}`")
    for key in select:
        if key not in FIELD_DESCRIPTION:
            raise error("UNKNOWNDTOPROPERTYEXCEPTION", f"Unknown field `{key}` for entity `DtoFieldDto`")
    return {key: full[key] for key in select}


def error(kind: str, message: str, status: int = 400, field: str | None = None) -> ApiError:
    err = ApiError(PREFIX + kind, message, status)
    err.validation = [{"message": message, "field": field}] if field is not None else None
    return err


def _int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def task_dto(portal: Portal, task: dict[str, Any], select: Any = None) -> dict[str, Any]:
    full = {
        "id": _int(task.get("id")),
        "title": task.get("title"),
        "description": task.get("description") or "",
        "creatorId": _int(task.get("createdBy")),
        "created": task.get("createdDate"),
        "responsibleId": _int(task.get("responsibleId")),
        "deadline": task.get("deadline"),
        "groupId": _int(task.get("groupId")) or None,
        "priority": _PRIORITY.get(str(task.get("priority")), "average"),
        "status": _STATUS.get(str(task.get("status")), "pending"),
        "changed": task.get("changedDate"),
    }
    if not isinstance(select, list) or not select:
        return full
    out: dict[str, Any] = {}
    for name in map(str, select):
        if "." in name:
            relation, _, field = name.partition(".")
            if relation not in RELATED:
                continue
            if field not in USER_FIELDS:
                raise error("UNKNOWNDTOPROPERTYEXCEPTION", f"Unknown field `{field}` for entity `UserDto`")
            user = portal.state["user"].get(full[RELATED[relation]] or 0) or {}
            value = {
                "id": _int(user.get("ID")),
                "name": user.get("NAME"),
                "lastName": user.get("LAST_NAME"),
                "email": user.get("EMAIL"),
            }[field]
            out.setdefault(relation, {})[field] = value
        elif name in full:  # an unknown own field is left out, not an error (rest-v3.md, Connections)
            out[name] = full[name]
    return out


def _matches(dto: dict[str, Any], condition: Any) -> bool:
    if isinstance(condition, dict):
        logic = str(condition.get("logic") or "and").lower()
        parts = [_matches(dto, c) for c in condition.get("conditions") or []]
        return any(parts) if logic == "or" else all(parts)
    field, op, value = condition
    actual = dto.get(field)
    if op == "in":
        return bool(actual in value)
    if op == "between":
        return bool(value[0] <= actual <= value[1])
    if op == "=":
        return bool(actual == value)
    if op == "!=":
        return bool(actual != value)
    if actual is None:
        return False
    return bool({">": actual > value, ">=": actual >= value, "<": actual < value, "<=": actual <= value}[op])


def _check_filter(condition: Any) -> Any:
    """Normalise one condition: ``[field, value]`` is ``in`` for a list, else ``=``; only ``id`` is
    filterable."""
    if isinstance(condition, dict):
        return {
            "logic": str(condition.get("logic") or "and"),
            "conditions": [_check_filter(c) for c in condition.get("conditions") or []],
        }
    if not isinstance(condition, list) or len(condition) not in (2, 3):
        raise error(
            "VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field="filter"
        )
    field = str(condition[0])
    op, value = (
        ("in" if isinstance(condition[1], list) else "=", condition[1])
        if len(condition) == 2
        else (str(condition[1]).lower(), condition[2])
    )
    if field not in TASK_FIELDS:
        raise error("UNKNOWNDTOPROPERTYEXCEPTION", f"Unknown field `{field}` for entity `TaskDto`")
    if op not in _OPERATORS:
        raise error("UNKNOWNFILTEROPERATOREXCEPTION", f"Unknown filter operator `{op}`")
    if field != "id":  # tasks-task-list-rest-v3.md: only `id` carries the Filterable attribute
        raise error(
            "VALIDATION_REQUESTVALIDATIONEXCEPTION",
            f"In DTO `TaskDto`, the `{field}` field requires the `Filterable` attribute for such a request",
            field=field,
        )
    values = value if isinstance(value, list) else [value]
    if any(_int(v) is None or isinstance(v, bool) for v in values):
        raise error("VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field=field)
    if op == "between" and len(values) != 2:
        raise error("VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field=field)
    return [field, op, [int(v) for v in values] if isinstance(value, list) else int(value)]


def _pagination(raw: Any) -> tuple[int, int]:
    if raw is None:
        return 0, 50
    bad = error(
        "INVALIDPAGINATIONEXCEPTION", f"Unable to recognize the pagination parameter `{json.dumps(raw)}`"
    )
    if not isinstance(raw, dict):
        raise bad
    limit, page, offset = raw.get("limit", 50), raw.get("page"), raw.get("offset", 0)
    if any(v is not None and (_int(v) is None or isinstance(v, bool)) for v in (limit, page, offset)):
        raise bad
    limit = int(limit)
    if limit <= 0:
        raise bad
    limit = min(limit, 1000)
    start = (int(page) - 1) * limit if page is not None and int(page) > 0 else int(offset or 0)
    return max(0, start), limit


def _required_id(params: dict[str, Any]) -> int:
    if params.get("id") is None:
        raise error(
            "VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field="id"
        ).with_message("Required field `id` is not specified")
    value = _int(params["id"])
    if value is None or isinstance(params["id"], bool):
        raise error("VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field="id")
    return value


def _task(portal: Portal, task_id: int) -> dict[str, Any]:
    task = portal.state["task"].get(task_id)
    if task is None:
        raise error("ENTITYNOTFOUNDEXCEPTION", f"Task with id `{task_id}` not found")
    return task  # type: ignore[no-any-return]


def openapi() -> dict[str, Any]:
    """The portal's OpenAPI document (rest-v3.md, OpenAPI documentation): paths and components.schemas."""
    task_schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "creatorId": {"type": "integer"},
            "created": {"type": "string", "format": "date-time"},
            "responsibleId": {"type": "integer"},
            "deadline": {"type": "string", "format": "date-time", "nullable": True},
            "groupId": {"type": "integer", "nullable": True},
            "priority": {"type": "string", "enum": ["low", "average", "high"]},
            "status": {"type": "string", "enum": sorted(set(_STATUS.values()))},
            "changed": {"type": "string", "format": "date-time"},
        },
    }
    paths = {
        f"/{m}": {"post": {"tags": [m.split(".")[0]], "operationId": m}}
        for m in METHODS
        if m.startswith("tasks.")
    }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Bitrix24 REST V3 API", "version": "1.0.0"},
        "tags": [{"name": "tasks", "description": "tasks module methods"}],
        "paths": paths,
        "components": {
            "schemas": {
                "TaskDto": task_schema,
                "UserDto": {
                    "type": "object",
                    "properties": {f: {"type": "integer" if f == "id" else "string"} for f in USER_FIELDS},
                },
            }
        },
    }


def run(portal: Portal, method: str, params: Any, caller: Caller) -> Any:
    """One REST 3.0 call's ``result``; raises ApiError with the v3 code."""
    if method == "batch":
        if not isinstance(params, list):
            raise error("INVALIDSELECTEXCEPTION", "REST 3.0 batch takes a JSON array of {method, query}")
        out = []
        for call in params:
            if not isinstance(call, dict) or str(call.get("method") or "").lower() in ("batch", ""):
                raise error(
                    "VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field="method"
                )
            out.append(run(portal, str(call["method"]).lower(), call.get("query") or {}, caller))
        return out
    if not isinstance(params, dict):
        raise error("VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object")
    if method not in METHODS:
        raise error("METHODNOTFOUNDEXCEPTION", f"Method {method} is not available in REST 3.0", 404)
    if method == "rest.scope.list":
        return _scope_list(params)
    if method in ("documentation", "rest.documentation.openapi"):
        return openapi()
    if "task" not in caller.scopes:
        raise error("INSUFFICIENTSCOPEEXCEPTION", "The request requires higher privileges", 403)
    from bitrix24_sandbox.methods import now_iso

    if method == "tasks.task.field.list":  # tasks/tasks-task-field-list.md
        return {"items": [_field(name, params.get("select")) for name in FIELD_TYPES]}
    if method == "tasks.task.field.get":  # tasks/tasks-task-field-get.md
        name = params.get("name")
        if name in (None, ""):
            missing = error("VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error during request object validation")
            missing.validation = [{"field": "name", "message": "Required field `name` is missing"}]
            raise missing
        if str(name) not in FIELD_TYPES:
            code = "BITRIX_REST_V3_REALISATION_EXCEPTION_FIELDNOTFOUNDEXCEPTION"
            raise ApiError(code, f"Field `{name}` not found", 400)
        return {"item": _field(str(name), params.get("select"))}
    if method == "tasks.task.get":
        return {"item": task_dto(portal, _task(portal, _required_id(params)), params.get("select"))}
    if method == "tasks.task.list":
        conditions = params.get("filter") or []
        if not isinstance(conditions, list):
            raise error(
                "VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field="filter"
            )
        checked = [_check_filter(c) for c in conditions]
        order = params.get("order") or {"id": "ASC"}
        if not isinstance(order, dict) or any(
            str(k) not in SORTABLE or str(v).upper() not in ("ASC", "DESC") for k, v in order.items()
        ):
            raise error(
                "INVALIDORDEREXCEPTION", f"Unable to recognize sorting parameter `{json.dumps(order)}`"
            )
        start, limit = _pagination(params.get("pagination"))
        rows = [task_dto(portal, t) for t in portal.state["task"].values()]
        rows = [r for r in rows if all(_matches(r, c) for c in checked)]
        for field, direction in reversed(list(order.items())):
            rows.sort(
                key=lambda r: (r.get(field) is None, r.get(field) or 0),
                reverse=str(direction).upper() == "DESC",
            )
        select = params.get("select") or ["id"]  # without select only the id comes back
        return {
            "items": [
                task_dto(portal, portal.state["task"][r["id"]], select) for r in rows[start : start + limit]
            ]
        }
    if method == "tasks.task.add":
        fields = params.get("fields")
        if not isinstance(fields, dict):
            raise error(
                "VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field="fields"
            )
        for name in ("title", "creatorId", "responsibleId"):
            if fields.get(name) in (None, ""):
                raise error(
                    "VALIDATION_REQUESTVALIDATIONEXCEPTION",
                    f"Required field `{name}` is not specified",
                    field=name,
                )
        for name in ("creatorId", "responsibleId"):
            if _int(fields[name]) not in portal.state["user"]:
                raise error(
                    "VALIDATION_REQUESTVALIDATIONEXCEPTION", f"User `{fields[name]}` not found", field=name
                )
        new_id = portal.next_id("task")
        stamp = now_iso(portal.store)
        task = {
            "id": str(new_id),
            "title": str(fields["title"]),
            "description": str(fields.get("description") or ""),
            "status": "2",
            "responsibleId": str(fields["responsibleId"]),
            "createdBy": str(fields["creatorId"]),
            "deadline": fields.get("deadline"),
            "createdDate": stamp,
            "changedDate": stamp,
            "priority": "1",
            "groupId": str(fields.get("groupId") or 0),
        }
        portal.state["task"][new_id] = task
        portal.emit("ONTASKADD", {"FIELDS_AFTER": {"ID": new_id}}, {})
        return {"item": task_dto(portal, task)}
    task = _task(portal, _required_id(params))
    if method == "tasks.task.update":
        fields = params.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise error(
                "VALIDATION_REQUESTVALIDATIONEXCEPTION", "Error validating request object", field="fields"
            )
        names = {
            "title": "title",
            "description": "description",
            "responsibleId": "responsibleId",
            "deadline": "deadline",
        }
        for key, value in fields.items():
            if key not in names:
                raise error("UNKNOWNDTOPROPERTYEXCEPTION", f"Unknown field `{key}` for entity `TaskDto`")
            task[names[key]] = value if key not in ("responsibleId",) else str(value)
        task["changedDate"] = now_iso(portal.store)
        portal.emit("ONTASKUPDATE", {"FIELDS_AFTER": {"ID": int(task["id"])}}, {})
        return {"result": True}
    del portal.state["task"][int(task["id"])]
    portal.emit("ONTASKDELETE", {"FIELDS_BEFORE": {"ID": int(task["id"])}}, {})
    return {"result": True}


_KEY_RE = re.compile(r"[\x20-\x7e]{1,255}")


def handle(
    portal: Portal, method: str, params: Any, caller: Caller, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, payload and extra headers of one REST 3.0 request, idempotency included."""
    key = headers.get("idempotency-key")
    extra: dict[str, str] = {}
    if key is not None and method in WRITES:
        if not _KEY_RE.fullmatch(key):
            raise error(
                "INVALIDIDEMPOTENCYKEYEXCEPTION",
                "The Idempotency-Key must be 1 to 255 printable ASCII characters",
            )
        extra["idempotency-key"] = key
        scope = (caller.credential, caller.user_id, method, key)  # unique per app/webhook, user and method
        stored = portal.v3_replays.get(scope)
        if stored is not None:
            if stored[0] != body:
                raise error(
                    "IDEMPOTENCYKEYREUSEDEXCEPTION",
                    "The idempotency key was already used with another body",
                    422,
                )
            return 200, json.loads(stored[1]), {**extra, "idempotent-replayed": "true"}
    started = portal.clock()
    result = run(portal, method, params, caller)
    payload = {"result": result, "time": portal.envelope_time(started, method, caller)}
    if key is not None and method in WRITES:
        portal.v3_replays[scope] = (body, json.dumps(payload).encode())
    return 200, payload, extra
