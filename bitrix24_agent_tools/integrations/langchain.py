"""LangChain face: Bitrix24Toolkit, tools with args_schema (sync + async, content_and_artifact), LangGraph HITL, routing middleware.

No logic lives here: every call goes through :class:`~bitrix24_agent_tools.toolbox.Toolbox`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from langchain_core.tools import BaseTool, BaseToolkit
from pydantic import ConfigDict, PrivateAttr, ValidationError

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy
from bitrix24_agent_tools.packs import ToolSpec
from bitrix24_agent_tools.packs.schema import compact_schema
from bitrix24_agent_tools.router import route
from bitrix24_agent_tools.toolbox import Toolbox, validation_message


def _on_invalid(exc: ValidationError) -> str:
    return validation_message(exc)


class Bitrix24Tool(BaseTool):
    """One ToolSpec as a LangChain tool; the content goes to the model, the full data is the artifact."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    response_format: str = "content_and_artifact"  # type: ignore[assignment]
    handle_validation_error: Any = _on_invalid
    _toolbox: Toolbox = PrivateAttr()

    @classmethod
    def from_spec(cls, spec: ToolSpec, toolbox: Toolbox) -> Bitrix24Tool:
        # The model gets our compact JSON schema (the same tokens as every other face); the Toolbox validates
        # arguments against the pydantic model and answers bad ones with one line.
        tool = cls(name=spec.name, description=spec.description, args_schema=compact_schema(spec.args))
        tool._toolbox = toolbox
        return tool

    def _run(self, *args: Any, run_manager: Any = None, **kwargs: Any) -> tuple[str, Any]:
        out = self._toolbox.run(self.name, kwargs)
        return out.content, out.artifact

    async def _arun(self, *args: Any, run_manager: Any = None, **kwargs: Any) -> tuple[str, Any]:
        out = await self._toolbox.arun(self.name, kwargs)
        return out.content, out.artifact


class Bitrix24Toolkit(BaseToolkit):
    """The tools of some packs (or of the packs routed from a request), bound to one portal and one guard."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    toolbox: Toolbox

    @classmethod
    def create(
        cls,
        client: Any = None,
        *,
        aclient: Any = None,
        packs: Iterable[str] = ("core",),
        guard: Guard | None = None,
        confirm: Callable[[ConfirmationRequest], Any] | None = None,
        policy: Policy | None = None,
    ) -> Bitrix24Toolkit:
        guard = guard or Guard(policy or Policy.writer(), confirm)
        return cls(toolbox=Toolbox(client, aclient, packs=packs, guard=guard))

    @classmethod
    def from_env(cls, **kwargs: Any) -> Bitrix24Toolkit:
        """A toolkit on ``B24_WEBHOOK_URL`` (or the OAuth variables); packs from ``B24_PACKS`` if set."""
        import os

        packs = kwargs.pop("packs", None) or tuple(p.strip() for p in os.environ.get("B24_PACKS", "core").split(",") if p.strip())
        return cls.create(Bitrix24.from_env(), packs=packs, **kwargs)

    def for_request(self, text: str) -> Bitrix24Toolkit:
        return Bitrix24Toolkit(toolbox=self.toolbox.for_request(text))

    def get_tools(self) -> list[BaseTool]:
        return [Bitrix24Tool.from_spec(spec, self.toolbox) for spec in self.toolbox.specs]


class InterruptConfirmer:
    """LangGraph human-in-the-loop: pause the graph with the request, resume with ``Command(resume=decision)``.

    The resume value may be a Decision, a bool, "yes", or a dict (``{"approve": True}``, ``{"reject": "why"}``,
    ``{"edit": {...params}}``). LangGraph re-runs the tool on resume; everything the guard does before asking
    (checks, reading current values) is read-only, so repeating it is safe.
    """

    def __call__(self, request: ConfirmationRequest) -> Decision:
        from langgraph.types import interrupt

        return Decision.coerce(interrupt({"bitrix24_confirmation": request.to_dict()}))


def pack_routing_middleware(toolkit: Bitrix24Toolkit) -> Any:
    """A LangChain v1 agent middleware: each model call sees only the tools of the packs routed from the last user message."""
    from langchain.agents.middleware import AgentMiddleware, ModelRequest
    from langchain_core.messages import HumanMessage

    def narrowed(request: ModelRequest) -> ModelRequest:
        text = next((str(m.content) for m in reversed(request.messages) if isinstance(m, HumanMessage)), "")
        packs = set(route(text).packs)
        keep = [t for t in request.tools if not isinstance(t, Bitrix24Tool) or toolkit.toolbox.spec(t.name).pack in packs]
        return request.override(tools=keep)

    class PackRouting(AgentMiddleware):
        def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
            return handler(narrowed(request))

        async def awrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]) -> Any:
            return await handler(narrowed(request))

    return PackRouting()
