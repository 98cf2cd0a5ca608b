"""OpenAI Agents SDK face: the packs as function tools whose writes need approval (``needs_approval``).

A write interrupts the run (``result.interruptions``); :meth:`Bitrix24AgentTools.confirmation` gives
the rendering a person must see (every parameter the portal will read, from the method's contract).
Approve or reject on the run state (``state = result.to_state(); state.approve(item)``) and run again:
the write runs once, and only if it is still the call the person saw. Reads run without asking. Extra
``openai-agents``.
"""

from __future__ import annotations

import json
from typing import Any

from bitrix24_agent_tools.guard import ConfirmationRequest
from bitrix24_agent_tools.integrations._paused import PausedFace
from bitrix24_agent_tools.packs.base import ToolOutput
from bitrix24_agent_tools.packs.schema import compact_schema
from bitrix24_agent_tools.toolbox import Toolbox

__all__ = ["Bitrix24AgentTools"]


class Bitrix24AgentTools(PausedFace):
    """Function tools for ``agents.Agent(tools=...)``; see the module doc."""

    framework = "the OpenAI Agents SDK"

    def __init__(self, toolbox: Toolbox) -> None:
        super().__init__(toolbox)
        self._shown: dict[str, ConfirmationRequest] = {}  # call_id → what the person is asked
        self._settled: dict[str, ToolOutput] = {}  # call_id → an answer given without a person (refusals)

    def tools(self) -> list[Any]:
        from agents import FunctionTool

        return [
            FunctionTool(
                name=spec.name,
                description=spec.description,
                params_json_schema=compact_schema(spec.args),
                on_invoke_tool=self._invoker(spec.name),
                strict_json_schema=False,
                needs_approval=self._needs(spec.name),
            )
            for spec in self.toolbox.specs
        ]

    def confirmation(self, interruption: Any) -> ConfirmationRequest | None:
        """What the person must see for an interruption (a ``ToolApprovalItem``) before approving it."""
        return self._shown.get(_call_id(interruption))

    def _needs(self, name: str) -> Any:
        async def needs(context: Any, params: dict[str, Any], call_id: str) -> bool:
            if self.paused.risk(name, params) == "read":
                return False
            shown = await self.paused.preview(name, params)
            if isinstance(shown, ConfirmationRequest):
                self._shown[call_id] = shown
                return True
            self._settled[call_id] = shown  # refused before a person was needed: nothing to approve
            return False

        return needs

    def _invoker(self, name: str) -> Any:
        async def invoke(context: Any, raw: str) -> str:
            call_id = str(getattr(context, "tool_call_id", "") or "")
            if call_id in self._settled:
                return self._settled.pop(call_id).content
            try:
                args = json.loads(raw or "{}")
            except ValueError:
                return "invalid arguments: not JSON"
            shown = self._shown.pop(call_id, None)
            if shown is not None:  # the SDK invokes an approval-needing call only after its approval
                out = await self.paused.execute(name, args, shown.request_id, by="openai-agents approval")
                return out.content
            if self.paused.risk(name, args) != "read":
                return "this write was not approved; nothing was written"
            return (await self.toolbox.arun(name, args)).content

        return invoke


def _call_id(interruption: Any) -> str:
    raw = getattr(interruption, "raw_item", None)
    for source in (interruption, raw):
        value = getattr(source, "call_id", None) or (
            source.get("call_id") if isinstance(source, dict) else None
        )
        if value:
            return str(value)
    return ""
