"""Each pack's allowlisted ``b24_<pack>_call`` tool, and the few typed tools of the smaller packs."""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolOutput, ToolSpec, riskiest
from bitrix24_agent_tools.packs.catalog import CATALOG, catalog_risk, classify, pack_of
from bitrix24_agent_tools.packs.render import done_output, dumps, rows_output


class CallArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.]+$")
    params: dict[str, Any] = Field(default_factory=dict)


def _call_handler(pack: str) -> Any:
    def handler(ctx: ToolContext, args: CallArgs) -> HandlerGen:
        response = yield Call(args.method, args.params)
        result = response.result
        rows = result if isinstance(result, list) else None
        if isinstance(result, dict):
            for key in ("items", "tasks"):
                if isinstance(result.get(key), list):
                    rows = result[key]
        if rows is not None:
            return rows_output(ctx, rows, total=response.total, more=response.next is not None,
                               hint=f"more rows: call again with params.start={response.next}" if response.next else "")
        return ToolOutput(content=dumps(result), artifact=result)

    handler.__name__ = f"{pack}_call"
    return handler


def call_spec(pack: str) -> ToolSpec:
    methods = tuple(CATALOG[pack])
    risk = riskiest([r for r in CATALOG[pack].values()])
    return ToolSpec(f"b24_{pack}_call", f"Call a Bitrix24 {pack} REST method (pack allowlist).", CallArgs, risk,
                    methods, _call_handler(pack), pack, generic=True)


class SendArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dialog_id: str = Field(min_length=1, max_length=64, description="user id, or chatN")
    message: str = Field(min_length=1, max_length=20000)


def _user_exists(ctx: ToolContext, user_id: int) -> Generator[Call, Any, None]:
    from bitrix24_agent_tools.packs import preflight

    users = yield from preflight.cached(ctx, "user.get", {"ID": user_id})
    if users is not None and not users:
        raise ValueError(f"user #{user_id} does not exist (find it with b24_user_find)")


def chat_send(ctx: ToolContext, args: SendArgs) -> HandlerGen:
    dialog = args.dialog_id.strip()
    if dialog.isdigit():
        yield from _user_exists(ctx, int(dialog))
    elif not re.fullmatch(r"chat\d+", dialog):
        raise ValueError(f"dialog_id must be a user ID (find it with b24_user_find) or chatN, got {dialog!r}")
    response = yield Call("im.message.add", {"DIALOG_ID": dialog, "MESSAGE": args.message})
    return done_output(f"message #{response.result} sent to {args.dialog_id}", {"id": response.result})


class NotifyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(gt=0)
    message: str = Field(min_length=1, max_length=5000)


def notify(ctx: ToolContext, args: NotifyArgs) -> HandlerGen:
    yield from _user_exists(ctx, args.user_id)
    response = yield Call("im.notify.system.add", {"USER_ID": args.user_id, "MESSAGE": args.message})
    return done_output(f"notification #{response.result} sent to user {args.user_id}", {"id": response.result})


class CodeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=2, max_length=100)


def explain_error(ctx: ToolContext, args: CodeArgs) -> HandlerGen:
    from bitrix24_agent_tools.client.errors import error_from

    err = error_from(args.code.strip())
    text = f"{args.code}: {err.hint} (retryable: {'yes' if err.retryable else 'no'})"
    return ToolOutput(content=text, artifact={"code": args.code, "hint": err.hint, "retryable": err.retryable})
    yield  # pragma: no cover — a generator that makes no calls


class MethodArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.]+$")


def check_method(ctx: ToolContext, args: MethodArgs) -> HandlerGen:
    pack = pack_of(args.method)
    risk = classify(args.method)
    known = catalog_risk(args.method) is not None
    active = ctx.extra.get("packs", ())
    where = f"pack {pack}" if pack else "no pack (add it to the allowlist explicitly)"
    status = "active" if pack in active else "not active: route or enable that pack"
    text = f"{args.method}: {where}, risk {risk}{'' if known else ' (by name)'}" + (f", {status}" if pack else "")
    return ToolOutput(content=text, artifact={"method": args.method, "pack": pack, "risk": risk})
    yield  # pragma: no cover


def comms_specs() -> list[ToolSpec]:
    return [
        ToolSpec("b24_chat_send", "Send a chat message.", SendArgs, "write", ("im.message.add", "user.get"), chat_send,
                 "comms"),
        ToolSpec("b24_notify", "Send a system notification to a user.", NotifyArgs, "write",
                 ("im.notify.system.add", "user.get"), notify, "comms"),
    ]


def diagnostics_specs() -> list[ToolSpec]:
    return [
        ToolSpec("b24_explain_error", "Explain a Bitrix24 error code: cause and fix.", CodeArgs, "read", (),
                 explain_error, "diagnostics"),
        ToolSpec("b24_check_method", "Which pack allows a method and its risk.", MethodArgs, "read", (),
                 check_method, "diagnostics"),
    ]


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


class MeetingArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    start: str = Field(description="ISO 8601")
    end: str = Field(description="ISO 8601")
    user_id: int | None = Field(default=None, gt=0, description="whose calendar; default yours")


def calendar_add(ctx: ToolContext, args: MeetingArgs) -> HandlerGen:
    owner = args.user_id
    if owner is None:  # calendar.event.add needs type and ownerId (calendar-event-add.md): the caller's own calendar
        me = yield Call("user.current", {})
        owner = int((me.result or {}).get("ID") or 0) if isinstance(me.result, dict) else 0
    response = yield Call("calendar.event.add", {"type": "user", "ownerId": owner, "name": args.name,
                                                 "from": args.start, "to": args.end})
    return done_output(f"event #{response.result} '{args.name}' added", {"id": response.result})


class StartArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template_id: int = Field(gt=0)
    entity: str = Field(description="deal or lead")
    id: int = Field(gt=0)


_DOCUMENTS = {"deal": ("CCrmDocumentDeal", "DEAL"), "lead": ("CCrmDocumentLead", "LEAD")}


def workflow_start(ctx: ToolContext, args: StartArgs) -> HandlerGen:
    if args.entity not in _DOCUMENTS:
        raise ValueError("entity must be deal or lead")
    cls, prefix = _DOCUMENTS[args.entity]
    response = yield Call("bizproc.workflow.start",
                          {"TEMPLATE_ID": args.template_id, "DOCUMENT_ID": ["crm", cls, f"{prefix}_{args.id}"]})
    return done_output(f"workflow {response.result} started on {args.entity} #{args.id}", {"id": response.result})


class FolderArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int = Field(gt=0)


def folder_list(ctx: ToolContext, args: FolderArgs) -> HandlerGen:
    response = yield Call("disk.folder.getchildren", {"id": args.id})
    return rows_output(ctx, list(response.result or []), fields=["ID", "NAME", "TYPE", "SIZE"])


def more_specs() -> dict[str, list[ToolSpec]]:
    return {
        "collab": [ToolSpec("b24_feed_post", "Post to the live feed.", PostArgs, "write", ("log.blogpost.add",), feed_post, "collab")],
        "services": [ToolSpec("b24_calendar_add", "Add a calendar event.", MeetingArgs, "write", ("calendar.event.add", "user.current"),
                              calendar_add, "services")],
        "automation": [ToolSpec("b24_workflow_start", "Start a business process on a deal or lead.", StartArgs, "write",
                                ("bizproc.workflow.start",), workflow_start, "automation")],
        "content": [ToolSpec("b24_folder_list", "List a Drive folder.", FolderArgs, "read", ("disk.folder.getchildren",),
                             folder_list, "content")],
    }
