"""The automation pack's typed tools: the workflow templates, start one on a CRM record, a person's pending
workflow tasks (approvals) and their answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output


class StartArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template_id: int = Field(gt=0, description="b24_workflow_templates")
    entity: str = Field(description="deal or lead")
    id: int = Field(gt=0)


_DOCUMENTS = {"deal": ("CCrmDocumentDeal", "DEAL"), "lead": ("CCrmDocumentLead", "LEAD")}


def workflow_start(ctx: ToolContext, args: StartArgs) -> HandlerGen:
    if args.entity not in _DOCUMENTS:
        raise ValueError("entity must be deal or lead")
    cls, prefix = _DOCUMENTS[args.entity]
    response = yield Call(
        "bizproc.workflow.start",
        {"TEMPLATE_ID": args.template_id, "DOCUMENT_ID": ["crm", cls, f"{prefix}_{args.id}"]},
    )
    return done_output(
        f"workflow {response.result} started on {args.entity} #{args.id}", {"id": response.result}
    )


class TemplatesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity: Literal["deal", "lead"] | None = Field(None, description="default: all")


def workflow_templates(ctx: ToolContext, args: TemplatesArgs) -> HandlerGen:
    """bizproc.workflow.template.list (bizproc/template/bizproc-workflow-template-list.md): each template with
    the kind of record it runs on (``DOCUMENT_TYPE``)."""
    response = yield Call("bizproc.workflow.template.list", {"SELECT": ["ID", "NAME", "DOCUMENT_TYPE"]})
    kinds = {v[0]: k for k, v in _DOCUMENTS.items()}
    rows = []
    for t in response.result or []:
        doc = t.get("DOCUMENT_TYPE") or []
        kind = kinds.get(doc[1], "/".join(map(str, doc))) if isinstance(doc, list) and len(doc) > 1 else doc
        if args.entity is None or kind == args.entity:
            rows.append({"id": t.get("ID"), "name": t.get("NAME"), "runs_on": kind})
    return rows_output(ctx, rows, searched=f"workflow templates for {args.entity or 'any record'}")


class TasksArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int | None = Field(None, gt=0, description="default: yours")


def workflow_tasks(ctx: ToolContext, args: TasksArgs) -> HandlerGen:
    """A person's pending workflow tasks (bizproc/bizproc-task/bizproc-task-list.md: ``STATUS`` 0 is
    running), with the document and the workflow they belong to."""
    flt: dict[str, object] = {"STATUS": 0}
    if args.user_id:
        flt["USER_ID"] = args.user_id
    response = yield Call(
        "bizproc.task.list",
        {
            "FILTER": flt,
            "SELECT": ["ID", "NAME", "DOCUMENT_NAME", "WORKFLOW_TEMPLATE_NAME", "MODIFIED", "USER_ID"],
        },
    )
    rows = [
        {
            "id": t.get("ID"),
            "name": t.get("NAME"),
            "document": t.get("DOCUMENT_NAME"),
            "workflow": t.get("WORKFLOW_TEMPLATE_NAME"),
            "since": t.get("MODIFIED"),
        }
        for t in response.result or []
        if isinstance(t, dict)
    ]
    who = f"user {args.user_id}" if args.user_id else "you"
    return rows_output(ctx, rows, total=response.total, searched=f"pending workflow tasks of {who}")


class AnswerArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_id: int = Field(gt=0)
    answer: Literal["approve", "reject"]
    comment: str | None = Field(None, max_length=2000)


def workflow_task_answer(ctx: ToolContext, args: AnswerArgs) -> HandlerGen:
    """bizproc.task.complete (bizproc/bizproc-task/bizproc-task-complete.md): STATUS yes (approve) or no
    (reject) — an approval task's two answers."""
    params: dict[str, object] = {
        "TASK_ID": args.task_id,
        "STATUS": "yes" if args.answer == "approve" else "no",
    }
    if args.comment:
        params["COMMENT"] = args.comment
    yield Call("bizproc.task.complete", params)
    return done_output(f"workflow task #{args.task_id}: {args.answer}d", {"id": args.task_id})


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_workflow_templates",
            "List business process templates.",
            TemplatesArgs,
            "read",
            ("bizproc.workflow.template.list",),
            workflow_templates,
            "automation",
        ),
        ToolSpec(
            "b24_workflow_start",
            "Start a business process on a deal or lead.",
            StartArgs,
            "write",
            ("bizproc.workflow.start",),
            workflow_start,
            "automation",
        ),
        ToolSpec(
            "b24_workflow_tasks",
            "List pending workflow tasks (approvals) of a person.",
            TasksArgs,
            "read",
            ("bizproc.task.list",),
            workflow_tasks,
            "automation",
        ),
        ToolSpec(
            "b24_workflow_task_answer",
            "Approve or reject a workflow task.",
            AnswerArgs,
            "write",
            ("bizproc.task.complete",),
            workflow_task_answer,
            "automation",
        ),
    ]
