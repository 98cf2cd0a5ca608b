"""pydantic-ai face: the packs as a toolset whose writes are approval-required deferred tools.

A write pauses the run: the agent's output is ``DeferredToolRequests`` whose ``metadata[tool_call_id]``
carries our rendering of the call (``bitrix24_confirmation``: every parameter the portal will read, from
the method's contract) and its ``request_id``. Resume with ``DeferredToolResults(approvals={id: True |
ToolDenied(...)}, metadata={id: that metadata})``: the write then runs once, and only if it is still the
call the person saw. Reads run at once. Extra ``pydantic-ai``.
"""

from __future__ import annotations

from typing import Any

from bitrix24_agent_tools.guard import ConfirmationRequest
from bitrix24_agent_tools.integrations._paused import PausedFace
from bitrix24_agent_tools.packs.schema import compact_schema
from bitrix24_agent_tools.toolbox import Toolbox

__all__ = ["Bitrix24Toolset", "bitrix24_toolset"]


class Bitrix24Toolset(PausedFace):
    """The tools of the chosen packs for a pydantic-ai ``Agent(toolsets=[...])``; see the module doc."""

    framework = "pydantic-ai"

    def __init__(self, toolbox: Toolbox) -> None:
        super().__init__(toolbox)
        self._asked: dict[str, str] = {}  # tool_call_id → the request id the person was shown

    def toolset(self) -> Any:
        from pydantic_ai import FunctionToolset, Tool

        return FunctionToolset(
            [
                Tool.from_schema(
                    self._function(spec.name),
                    name=spec.name,
                    description=spec.description,
                    json_schema=compact_schema(spec.args),
                    takes_ctx=True,
                )
                for spec in self.toolbox.specs
            ]
        )

    def _function(self, name: str) -> Any:
        async def run(ctx: Any, **args: Any) -> Any:
            from pydantic_ai import ApprovalRequired

            call_id = str(getattr(ctx, "tool_call_id", "") or "")
            if getattr(ctx, "tool_call_approved", False):
                given = getattr(ctx, "tool_call_metadata", None) or {}
                request_id = self._asked.pop(call_id, None) or str(given.get("request_id") or "")
                if not request_id:
                    return "approved, but no request was shown for this call; nothing was written"
                return (await self.paused.execute(name, args, request_id, by="pydantic-ai approval")).content
            if self.paused.risk(name, args) == "read":
                return (await self.toolbox.arun(name, args)).content
            shown = await self.paused.preview(name, args)
            if not isinstance(shown, ConfirmationRequest):
                return shown.content  # refused before a person was needed
            self._asked[call_id] = shown.request_id
            raise ApprovalRequired(
                metadata={"request_id": shown.request_id, "bitrix24_confirmation": shown.to_dict()}
            )

        run.__name__ = name
        return run


def bitrix24_toolset(client: Any = None, **options: Any) -> Any:
    """The pydantic-ai toolset for ``Agent(toolsets=[...])`` in one call."""
    return Bitrix24Toolset.create(client, **options).toolset()
