"""The automation pack's typed tools: start a business process on a CRM record."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output


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
    response = yield Call(
        "bizproc.workflow.start",
        {"TEMPLATE_ID": args.template_id, "DOCUMENT_ID": ["crm", cls, f"{prefix}_{args.id}"]},
    )
    return done_output(
        f"workflow {response.result} started on {args.entity} #{args.id}", {"id": response.result}
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_workflow_start",
            "Start a business process on a deal or lead.",
            StartArgs,
            "write",
            ("bizproc.workflow.start",),
            workflow_start,
            "automation",
        )
    ]
