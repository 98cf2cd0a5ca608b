"""Business processes, automation rules (robots), CRM triggers and lists (the automation pack)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.registry import (
    Listing,
    app_only,
    method,
    now_iso,
    paged,
    positive,
    table,
    upper,
)
from bitrix24_sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_sandbox.store import Store

_DOCUMENT_ENTITY = {
    "DEAL": "CCrmDocumentDeal",
    "LEAD": "CCrmDocumentLead",
    "CONTACT": "CCrmDocumentContact",
    "COMPANY": "CCrmDocumentCompany",
}


@method("bizproc.workflow.template.list", "bizproc")
def workflow_templates(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """bizproc/template/bizproc-workflow-template-list.md: the templates with ``total``, 50 a page from
    ``start``; SELECT narrows the fields (ID always)."""
    query = upper(params)
    rows = [{k: v for k, v in t.items() if k != "APP"} for t in table(store, "bizproc_template").values()]
    select = query.get("SELECT")
    if isinstance(select, list) and select:
        wanted = {str(f).upper() for f in select} | {"ID"}
        rows = [{k: v for k, v in r.items() if k.upper() in wanted} for r in rows]
    return paged(rows, query.get("START", params.get("start")))


@method("bizproc.workflow.template.update", "bizproc")
def workflow_template_update(store: Store, params: dict[str, Any], caller: Caller) -> int:
    """bizproc/template/bizproc-workflow-template-update.md: only the application's own templates."""
    app_only(caller, message="Application context required")
    query = upper(params)
    template = table(store, "bizproc_template").get(positive(query.get("ID")) or 0)
    if template is None:
        raise ApiError("ERROR_TEMPLATE_NOT_FOUND", "Workflow template not found.", 400)
    if template.get("APP") != caller.app_id:
        raise ApiError(
            "ERROR_TEMPLATE_NOT_OWNER", "You can update ONLY templates created by current application", 400
        )
    fields = upper(query.get("FIELDS") or {}) if isinstance(query.get("FIELDS"), dict) else {}
    if not fields:
        raise ApiError("ERROR_TEMPLATE_VALIDATION_FAILURE", "No fields to update.", 400)
    if "NAME" in fields and not str(fields["NAME"]).strip():
        raise ApiError("ERROR_TEMPLATE_VALIDATION_FAILURE", "Empty template name!", 400)
    template.update({k: v for k, v in fields.items() if k in ("NAME", "DESCRIPTION", "AUTO_EXECUTE")})
    return int(template["ID"])


@method("bizproc.workflow.start", "bizproc")
def workflow_start(store: Store, params: dict[str, Any], caller: Caller) -> str:
    """bizproc/bizproc-workflow-start.md: the result is the new workflow's ID; it shows in instances."""
    query = upper(params)
    template = str(query.get("TEMPLATE_ID") or "")
    document = query.get("DOCUMENT_ID")
    if not template:
        raise ApiError("ERROR_WRONG_WORKFLOW_ID", "Empty TEMPLATE_ID", 400)
    if positive(template) not in table(store, "bizproc_template"):
        raise ApiError("ERROR_WRONG_WORKFLOW_ID", "Template not found", 400)
    if not isinstance(document, list) or len(document) != 3 or not all(document):
        raise ApiError("ERROR_ARGUMENT", "Empty value", 400)
    workflows = table(store, "workflow")
    while True:
        workflow_id = f"{store.next_id('workflow'):08x}.sbx"
        if workflow_id not in workflows:
            break
    workflows[workflow_id] = {
        "ID": workflow_id,
        "MODULE_ID": str(document[0]),
        "ENTITY": str(document[1]),
        "DOCUMENT_ID": str(document[2]),
        "STARTED": now_iso(store),
        "STARTED_BY": str(caller.user_id),
        "TEMPLATE_ID": template,
        "OWNED_UNTIL": None,
    }
    return workflow_id


@method("bizproc.workflow.instances", "bizproc")
def workflow_instances(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    rows = [w for w in table(store, "workflow").values() if not w.get("TERMINATED")]
    return paged([{k: v for k, v in w.items() if k != "TERMINATED"} for w in rows], params.get("start"))


def _workflow(store: Store, params: dict[str, Any], *, terminated_too: bool = False) -> str:
    workflow_id = str(upper(params).get("ID") or "").strip()
    if not workflow_id:
        raise ApiError("ERROR_WRONG_WORKFLOW_ID", "Empty workflow instance ID", 400)
    workflow = table(store, "workflow").get(workflow_id)
    if workflow is None or (workflow.get("TERMINATED") and not terminated_too):
        # UNVERIFIED: the docs give no separate code for an unknown instance; the server's terminate fails
        # with this
        raise ApiError("ERROR_WRONG_WORKFLOW_ID", "Workflow instance not found", 400)
    return workflow_id


@method("bizproc.workflow.terminate", "bizproc")
def workflow_terminate(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """bizproc/bizproc-workflow-terminate.md: the instance leaves bizproc.workflow.instances; its tasks
    close."""
    workflow_id = _workflow(store, params)
    table(store, "workflow")[workflow_id]["TERMINATED"] = True
    for task in table(store, "bizproc_task").values():
        if task["WORKFLOW_ID"] == workflow_id:
            task["STATUS"] = "4"
    return True


@method("bizproc.workflow.kill", "bizproc")
def workflow_kill(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """bizproc/bizproc-workflow-kill.md: the instance and its data are deleted."""
    workflow_id = _workflow(store, params, terminated_too=True)
    del table(store, "workflow")[workflow_id]
    for task_id in [k for k, t in table(store, "bizproc_task").items() if t["WORKFLOW_ID"] == workflow_id]:
        del table(store, "bizproc_task")[task_id]
    return True


@method("bizproc.task.list", "bizproc")
def bizproc_task_list(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """bizproc/bizproc-task/bizproc-task-list.md: the caller's tasks (an admin may filter by USER_ID)."""
    query = upper(params)
    flt = upper(query.get("FILTER") or {}) if isinstance(query.get("FILTER"), dict) else {}
    user = str(flt.get("USER_ID") or caller.user_id)
    if user != str(caller.user_id) and not caller.is_admin:
        raise ApiError("ACCESS_DENIED", "Access denied!", 403)
    rows = [
        t
        for t in table(store, "bizproc_task").values()
        if t["USER_ID"] == user and all(str(t.get(k)) == str(v) for k, v in flt.items() if k != "USER_ID")
    ]
    return paged(rows, query.get("START"))


_TASK_STATUS = {"1": "1", "yes": "1", "2": "2", "no": "2", "3": "3", "ok": "3", "4": "4", "cancel": "4"}


@method("bizproc.task.complete", "bizproc")
def bizproc_task_complete(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """bizproc/bizproc-task/bizproc-task-complete.md."""
    query = upper(params)
    if not query.get("TASK_ID"):
        raise ApiError("ERROR_TASK_VALIDATION", "empty TASK_ID", 400)
    status = _TASK_STATUS.get(str(query.get("STATUS") or "").lower())
    if status is None:
        raise ApiError("ERROR_TASK_VALIDATION", "incorrect STATUS", 400)
    task = table(store, "bizproc_task").get(positive(query.get("TASK_ID")) or 0)
    if task is None or task["USER_ID"] != str(caller.user_id):
        raise ApiError("ERROR_TASK_NOT_FOUND", "Task not found", 400)
    if task["STATUS"] != "0":
        raise ApiError("ERROR_TASK_COMPLETED", "Task already completed", 400)
    task.update(
        {
            "STATUS": status,
            "USER_STATUS": status,
            "MODIFIED": now_iso(store),
            "COMMENT": str(query.get("COMMENT") or ""),
        }
    )
    return True


_ROBOT_CODE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _robot_properties(fields: dict[str, Any]) -> None:
    for key in ("PROPERTIES", "RETURN_PROPERTIES"):
        props = fields.get(key)
        if props is None:
            continue
        if not isinstance(props, dict):
            raise ApiError("ERROR_ACTIVITY_VALIDATION_FAILURE", "Wrong properties array!", 400)
        for name, spec in props.items():
            if not re.match(r"^[a-z][a-z0-9_]*$", str(name), re.I):
                raise ApiError("ERROR_ACTIVITY_VALIDATION_FAILURE", f"Wrong property key {name}!", 400)
            if not isinstance(spec, dict) or not spec.get("Name", spec.get("NAME")):
                raise ApiError("ERROR_ACTIVITY_VALIDATION_FAILURE", f"Empty property NAME {name}!", 400)


def _robot_handler(url: Any) -> str:
    handler = str(url or "")
    if not handler.startswith(("http://", "https://")):
        raise ApiError(
            "ERROR_WRONG_HANDLER_URL" if handler else "ERROR_ACTIVITY_VALIDATION_FAILURE",
            "Wrong handler URL" if handler else "Empty data!",
            400,
        )
    return handler


def _robot_call(params: dict[str, Any], caller: Caller) -> tuple[dict[str, Any], str]:
    """What every bizproc.robot.* call checks first: an application, an administrator, a CODE."""
    app_only(caller, message="Application context required")
    if not caller.is_admin:
        raise ApiError("ACCESS_DENIED", "Access denied!", 403)
    query = upper(params)
    code = str(query.get("CODE") or "")
    if not code:
        raise ApiError("ERROR_ACTIVITY_VALIDATION_FAILURE", "Empty activity code!", 400)
    return query, code


@method("bizproc.robot.add", "bizproc")
def robot_add(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """bizproc/bizproc-robot/bizproc-robot-add.md: an application's automation rule, administrators only."""
    query, code = _robot_call(params, caller)
    if not _ROBOT_CODE.match(code):
        raise ApiError("ERROR_ACTIVITY_VALIDATION_FAILURE", "Wrong activity code!", 400)
    handler = _robot_handler(query.get("HANDLER"))
    if not query.get("NAME"):
        raise ApiError("ERROR_ACTIVITY_VALIDATION_FAILURE", "Empty activity NAME!", 400)
    _robot_properties(query)
    robots = table(store, "bizproc_robot")
    if any(r["CODE"] == code and r["APP"] == caller.app_id for r in robots.values()):
        raise ApiError(
            "ERROR_ACTIVITY_ALREADY_INSTALLED", "Activity or Automation rule already installed!", 400
        )
    robots[store.next_id("bizproc_robot")] = {
        "CODE": code,
        "APP": caller.app_id,
        "HANDLER": handler,
        "NAME": query["NAME"],
        "PROPERTIES": query.get("PROPERTIES") or {},
    }
    return True


@method("bizproc.robot.update", "bizproc")
def robot_update(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """bizproc/bizproc-robot/bizproc-robot-update.md: CODE and FIELDS."""
    query, code = _robot_call(params, caller)
    robot = next(
        (
            r
            for r in table(store, "bizproc_robot").values()
            if r["CODE"] == code and r["APP"] == caller.app_id
        ),
        None,
    )
    if robot is None:
        raise ApiError("ERROR_ACTIVITY_NOT_FOUND", "Activity or Automation Rule not found!", 400)
    fields = upper(query.get("FIELDS") or {}) if isinstance(query.get("FIELDS"), dict) else {}
    if not fields:
        raise ApiError("ERROR_ACTIVITY_VALIDATION_FAILURE", "No fields to update!", 400)  # UNVERIFIED message
    if "HANDLER" in fields:
        fields["HANDLER"] = _robot_handler(fields["HANDLER"])
    _robot_properties(fields)
    robot.update({k: v for k, v in fields.items() if k in ("HANDLER", "NAME", "PROPERTIES", "DESCRIPTION")})
    return True


@method("bizproc.robot.list", "bizproc")
def robot_list(store: Store, params: dict[str, Any], caller: Caller) -> list[str]:
    """bizproc/bizproc-robot/bizproc-robot-list.md: the codes of the application's rules."""
    app_only(caller, message="Application context required")
    if not caller.is_admin:
        raise ApiError("ACCESS_DENIED", "Access denied!", 403)
    return [r["CODE"] for r in table(store, "bizproc_robot").values() if r["APP"] == caller.app_id]


@method("crm.automation.trigger", "crm")
def automation_trigger(store: Store, params: dict[str, Any], caller: Caller) -> bool:
    """crm/automation/crm-automation-trigger.md: target ``TYPENAME_ID``; the record must exist."""
    target = str(params.get("target") or params.get("TARGET") or "").strip()
    if not target:
        raise ApiError("", "Target is not set.", 400)
    kind, _, raw_id = target.rpartition("_")
    record = (
        store.tables.get(kind.lower(), {}).get(positive(raw_id) or 0)
        if kind.upper() in _DOCUMENT_ENTITY
        else None
    )
    if record is None:
        raise ApiError("", "Target is not found.", 400)  # UNVERIFIED: the docs list only "Target is not set."
    table(store, "automation_trigger")[store.next_id("automation_trigger")] = {
        "TARGET": target,
        "CODE": str(params.get("code") or ""),
        "AT": now_iso(store),
    }
    return True


@method("lists.element.get", "lists")
def lists_element_get(store: Store, params: dict[str, Any], caller: Caller) -> Listing:
    """lists/elements/lists-element-get.md: IBLOCK_TYPE_ID and IBLOCK_ID are required."""
    query = upper(params)
    for key in ("IBLOCK_TYPE_ID", "IBLOCK_ID"):
        if not query.get(key) and not (key == "IBLOCK_ID" and query.get("IBLOCK_CODE")):
            raise ApiError("ERROR_REQUIRED_PARAMETERS_MISSING", f"Required parameter `{key}` is missing", 400)
    if (
        str(query.get("IBLOCK_TYPE_ID")) not in ("lists", "bitrix_processes", "lists_socnet")
        or str(query.get("IBLOCK_ID")) != "1"
    ):
        raise ApiError("ERROR_IBLOCK_NOT_FOUND", "Iblock not found", 400)
    rows = [{k: v for k, v in e.items() if k != "IBLOCK_ID"} for e in table(store, "lists_element").values()]
    if query.get("ELEMENT_ID"):
        rows = [r for r in rows if r["ID"] == str(query["ELEMENT_ID"])]
    return paged(rows, query.get("START"))
