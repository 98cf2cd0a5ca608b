"""A little of the other packs: live feed, calendar, business processes, Drive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bitrix24_agent_tools.sandbox.errors import ApiError
from bitrix24_agent_tools.sandbox.registry import (
    _id,
    method,
    now_iso,
)
from bitrix24_agent_tools.sandbox.types import Caller

if TYPE_CHECKING:
    from bitrix24_agent_tools.sandbox.portal import Portal


# --- a little of the other packs: live feed, calendar, business processes, Drive ----------------------------


@method("log.blogpost.add", "log")
def blogpost_add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    message = str(params.get("POST_MESSAGE") or "").strip()
    if not message:  # log-blogpost-add.md, Error Handling
        raise ApiError("SONET_CONTROLLER_LIVEFEED_BLOGPOST_ADD_ERROR", "Blog post hasn't been added", 400)
    new_id = portal.next_id("blogpost")
    portal.state.setdefault("blogpost", {})[new_id] = {
        "ID": str(new_id), "TITLE": str(params.get("POST_TITLE") or ""), "DETAIL_TEXT": message,
        "AUTHOR_ID": str(caller.user_id), "DEST": params.get("DEST") or ["UA"], "DATE_PUBLISH": now_iso(portal)}
    return new_id


@method("log.blogpost.get", "log")
def blogpost_get(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    posts = list(portal.state.get("blogpost", {}).values())
    wanted = params.get("POST_ID")
    return [p for p in posts if wanted is None or p["ID"] == str(wanted)]


@method("calendar.event.add", "calendar")
def calendar_event_add(portal: Portal, params: dict[str, Any], caller: Caller) -> int:
    # calendar-event-add.md, Error Handling: HTTP 400, empty code, one text per missing parameter
    for key in ("type", "ownerId", "name", "from", "to"):
        if params.get(key) in (None, "") and not (key in ("from", "to") and params.get(f"{key}_ts")):
            raise ApiError("", f'The required parameter "{key}" for the method "calendar.event.add" is not set', 400)
    if str(params["to"]) < str(params["from"]):
        raise ApiError("ERROR_ARGUMENT", "'to' is before 'from'")
    new_id = portal.next_id("calendar_event")
    portal.state.setdefault("calendar_event", {})[new_id] = {
        "ID": str(new_id), "NAME": str(params["name"]), "DATE_FROM": str(params["from"]), "DATE_TO": str(params["to"]),
        "OWNER_ID": str(params.get("ownerId") or caller.user_id), "CAL_TYPE": str(params.get("type") or "user"),
        "SECTION_ID": str(params.get("section") or "1"), "DESCRIPTION": str(params.get("description") or "")}
    return new_id


@method("calendar.event.get", "calendar")
def calendar_event_get(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    events = portal.state.get("calendar_event", {}).values()
    return [e for e in events if str(params.get("from") or "") <= e["DATE_FROM"] <= str(params.get("to") or "9999")]


@method("bizproc.workflow.template.list", "bizproc")
def workflow_templates(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    return [{"ID": "1", "NAME": "Deal approval", "DOCUMENT_TYPE": ["crm", "CCrmDocumentDeal", "DEAL"]},
            {"ID": "2", "NAME": "Lead qualification", "DOCUMENT_TYPE": ["crm", "CCrmDocumentLead", "LEAD"]}]


@method("bizproc.workflow.start", "bizproc")
def workflow_start(portal: Portal, params: dict[str, Any], caller: Caller) -> str:
    template = str(params.get("TEMPLATE_ID") or "")
    document = params.get("DOCUMENT_ID")
    if template not in ("1", "2"):
        raise ApiError("ERROR_ARGUMENT", "unknown TEMPLATE_ID")
    if not isinstance(document, list) or len(document) != 3:
        raise ApiError("ERROR_ARGUMENT", "DOCUMENT_ID must be [module, entity, id]")
    workflow_id = f"{portal.next_id('workflow'):08x}.sbx"
    portal.state.setdefault("workflow", {})[workflow_id] = {"ID": workflow_id, "TEMPLATE_ID": template,
                                                            "DOCUMENT_ID": document, "STARTED_BY": str(caller.user_id)}
    return workflow_id


@method("bizproc.workflow.instances", "bizproc")
def workflow_instances(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    return list(portal.state.get("workflow", {}).values())


_DRIVE: dict[int, dict[str, Any]] = {1: {"ID": "1", "NAME": "Shared", "TYPE": "folder", "PARENT_ID": None},
          2: {"ID": "2", "NAME": "Contracts", "TYPE": "folder", "PARENT_ID": "1"},
          3: {"ID": "3", "NAME": "Acme contract.pdf", "TYPE": "file", "PARENT_ID": "2", "SIZE": "48213"},
          4: {"ID": "4", "NAME": "Price list 2026.xlsx", "TYPE": "file", "PARENT_ID": "1", "SIZE": "19004"}}


@method("disk.folder.getchildren", "disk")
def folder_children(portal: Portal, params: dict[str, Any], caller: Caller) -> list[dict[str, Any]]:
    folder = str(_id(params))
    if int(folder) not in _DRIVE or _DRIVE[int(folder)]["TYPE"] != "folder":
        raise ApiError("ERROR_NOT_FOUND", "Could not find folder", 404)
    return [dict(item) for item in _DRIVE.values() if item["PARENT_ID"] == folder]
