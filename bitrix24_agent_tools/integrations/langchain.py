"""LangChain face: Bitrix24Toolkit, tools with args_schema (sync + async, content_and_artifact), LangGraph
HITL, routing middleware.

No logic lives here: every call goes through :class:`~bitrix24_agent_tools.toolbox.Toolbox`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any

from langchain_core.tools import BaseTool, BaseToolkit
from pydantic import ConfigDict, PrivateAttr, ValidationError, model_validator

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.guard import (
    ConfirmationRequest,
    Decision,
    Guard,
    Policy,
    bound_decision,
    named_request,
)
from bitrix24_agent_tools.packs import ToolSpec
from bitrix24_agent_tools.packs.schema import compact_schema
from bitrix24_agent_tools.router import route
from bitrix24_agent_tools.toolbox import Toolbox, register_pause, validation_message

try:  # LangGraph's interrupt pauses the run while the person answers: the guard lets it through
    from langgraph.errors import GraphBubbleUp

    register_pause(GraphBubbleUp)
except ImportError:  # LangChain without LangGraph: no interrupts to pass through
    pass


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

    # Positional-only receiver and no run_manager parameter: a model argument may be named anything ("self",
    # "run_manager", ...) and must reach the Toolbox's validation, not collide with Python's parameters.
    def _run(tool, /, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        out = tool._toolbox.run(tool.name, kwargs)
        return out.content, out.artifact

    async def _arun(tool, /, *args: Any, **kwargs: Any) -> tuple[str, Any]:
        out = await tool._toolbox.arun(tool.name, kwargs)
        return out.content, out.artifact


class Bitrix24Toolkit(BaseToolkit):
    """The tools of some packs (or of the packs routed from a request), bound to one portal and one guard."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    toolbox: Toolbox

    @model_validator(mode="before")
    @classmethod
    def _from_client(cls, data: Any) -> Any:
        """``Bitrix24Toolkit(client=..., packs=..., confirm=...)`` works like ``create()`` (LangChain
        convention)."""
        if isinstance(data, dict) and "toolbox" not in data and ("client" in data or "aclient" in data):
            guard = data.get("guard") or Guard(data.get("policy") or Policy.writer(), data.get("confirm"))
            return {
                "toolbox": Toolbox(
                    data.get("client"), data.get("aclient"), packs=data.get("packs", ("core",)), guard=guard
                )
            }
        return data

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
        loader: bool = False,
        scope_aware: bool = False,
        boundary: Iterable[str] | None = None,
    ) -> Bitrix24Toolkit:
        """``loader=True`` adds ``b24_load_pack``: give the agent every pack's tools and
        ``pack_routing_middleware`` offers each model call only the routed packs, the loader, and the packs
        the model loaded since. ``boundary`` (default: ``packs``) is what routing and the loader may reach.
        ``scope_aware=True`` asks the portal for the credential's scopes and leaves out tools it cannot
        call."""
        guard = guard or Guard(policy or Policy.writer(), confirm)
        toolbox = Toolbox(client, aclient, packs=packs, guard=guard, loader=loader, boundary=boundary)
        if scope_aware:
            toolbox.restrict_to_portal_scopes()
        return cls(toolbox=toolbox)

    @classmethod
    def from_env(cls, **kwargs: Any) -> Bitrix24Toolkit:
        """A toolkit on ``B24_WEBHOOK_URL`` (or the OAuth variables), configured by the ``B24_*`` variables
        (``settings.py``: packs, method allowlist, plans-only mode, audit file, rate, Redis)."""
        from bitrix24_agent_tools.settings import Settings

        settings = Settings.from_env()
        packs = kwargs.pop("packs", None) or settings.packs
        guard = kwargs.pop("guard", None) or settings.guard(
            kwargs.pop("confirm", None), kwargs.pop("policy", None)
        )
        return cls.create(Bitrix24.from_env(**settings.client_options()), packs=packs, guard=guard, **kwargs)

    def for_request(self, text: str) -> Bitrix24Toolkit:
        return Bitrix24Toolkit(toolbox=self.toolbox.for_request(text))

    def get_tools(self, *, defer: bool = False) -> list[BaseTool]:
        """The tools. ``defer=True`` marks every tool outside ``core`` (and the loader) for the provider's
        own deferred loading (``extras["defer_loading"]``, which LangChain's ``ProviderToolSearchMiddleware``
        and ``ChatAnthropic`` read): the model sees core and finds the rest through the provider's tool
        search."""
        tools: list[BaseTool] = []
        for spec in self.toolbox.specs:
            tool = Bitrix24Tool.from_spec(spec, self.toolbox)
            if defer and spec.pack not in ("core", "loader") and "extras" in type(tool).model_fields:
                tool.extras = {**(getattr(tool, "extras", None) or {}), "defer_loading": True}
            tools.append(tool)
        return tools


class InterruptConfirmer:
    """LangGraph human-in-the-loop: pause the graph with the request, resume with ``Command(resume=...)``.

    The interrupt value carries the request (``bitrix24_confirmation``, with its ``request_id``) and the same
    request in LangChain v1 ``HumanInTheLoopMiddleware`` form (``action_requests`` / ``review_configs``), so
    its UIs can show it. Several writes of one AI message pause at once, so every answer must name its
    request:
    ``{request_id: decision}`` (what :func:`answers` builds) or a decision carrying ``"request_id"``, where a
    decision is ``{"type": "approve"}``, ``{"type": "reject", "message": ...}``, ``{"type": "edit",
    "edited_action": {"args": {...}}}``, ``{"decisions": [one of those]}``, a bool or ``{"approve": True}``.
    An answer that names no request is a "no"; one that names another request asks again for this one. An
    edit is applied through the method's contract and shown again for a final yes.
    """

    max_asks = 3

    def __init__(self, approvals: Any = None) -> None:
        """With an :class:`~bitrix24_agent_tools.approvals.ApprovalService`, the person answers through it
        (Bitrix24 chat, the approval page) and only its answers count: the interrupt carries the request's
        ``approval`` (id, url, approvers, expiry), and any resume value just wakes the graph to take the
        answer — an approver's yes runs the write once; while nobody has answered, the graph pauses again."""
        self.approvals = approvals

    def __call__(self, request: ConfirmationRequest) -> Any:
        from langgraph.types import interrupt

        if self.approvals is not None:
            return self._through_service(request)
        for _ask in range(self.max_asks):
            answer = interrupt(confirmation_payload(request))
            named = named_request(answer)
            if isinstance(answer, dict) and request.request_id in answer:
                return replace(hitl_decision(answer[request.request_id]), request_id=request.request_id)
            if named == request.request_id:
                return replace(hitl_decision(answer), request_id=request.request_id)
            if named is None:
                return bound_decision(answer, request.request_id, require_binding=True)
            # An answer meant for another request: this one is asked again, never answered by it.
        return Decision.reject("no answer named this request; nothing was written")

    def _through_service(self, request: ConfirmationRequest) -> Decision:
        from langgraph.types import interrupt

        from bitrix24_agent_tools.approvals import ApprovalError

        service = self.approvals
        taken = service.take(request.tenant, request.request_id)
        if taken is not None:
            return taken  # type: ignore[no-any-return]
        try:
            approval = service.open(request)
        except ApprovalError as exc:
            return Decision.reject(f"{exc}; nothing was written", by="approval-service")
        payload = confirmation_payload(request)
        payload["approval"] = {
            "id": approval.id,
            "url": service.link(approval),
            "approvers": list(approval.approvers),
            "expires_at": approval.expires_at,
        }
        for _ask in range(self.max_asks):
            interrupt(payload)  # the resume value is a wake-up: only the service's answers count
            taken = service.take(request.tenant, request.request_id)
            if taken is not None:
                return taken  # type: ignore[no-any-return]
            if service.pending(request.tenant, request.request_id) is None:
                return Decision.reject("the request expired unanswered; nothing was written")
        return Decision.reject("no approver answered yet; nothing was written")


def hitl_decision(value: Any) -> Decision:
    """An answer in LangChain v1 ``HumanInTheLoopMiddleware`` form (``{"decisions": [one]}``, ``{"type":
    "edit", "edited_action": {"args": ...}}``, ``{"type": "reject", "message": ...}``), or any shape
    :meth:`Decision.coerce` reads."""
    if isinstance(value, dict):
        decisions = value.get("decisions")
        if isinstance(decisions, list):
            if len(decisions) != 1:
                return Decision.reject("expected exactly one decision for this request; treated as no")
            return hitl_decision(decisions[0])
        if value.get("type") == "edit":
            action = value.get("edited_action")
            args = action.get("args") if isinstance(action, dict) else None
            if isinstance(args, dict):
                return Decision.edit(dict(args), by=value.get("by"))
            return Decision.reject("an edit needs edited_action.args; treated as no")
        if value.get("type") == "reject" and value.get("message"):
            return Decision.reject(str(value["message"]), by=value.get("by"))
    return Decision.coerce(value)


def confirmation_payload(request: ConfirmationRequest) -> dict[str, Any]:
    """What a LangGraph interrupt shows: our request and the HumanInTheLoopMiddleware shape of it."""
    return {
        "bitrix24_confirmation": request.to_dict(),
        "request_id": request.request_id,
        "action_requests": [
            {
                "name": request.tool,
                "args": request.params,
                "description": request.summary,
                "id": request.request_id,
            }
        ],
        "review_configs": [{"action_name": request.tool, "allowed_decisions": ["approve", "edit", "reject"]}],
        "answer_with": {request.request_id: {"type": "approve | reject | edit"}},
    }


def answers(interrupts: Iterable[Any], decide: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """A ``Command(resume=...)`` value for every pending confirmation, ``decide(request_dict)`` answering
    each.

    Each answer is keyed by LangGraph's interrupt id (so the graph hands it to the right pause) and wrapped in
    ``{request_id: answer}`` (so the guard accepts it only for the request it was given for).
    """
    out: dict[str, Any] = {}
    for item in interrupts:
        value = getattr(item, "value", item)
        if isinstance(value, dict) and isinstance(value.get("bitrix24_confirmation"), dict):
            request = value["bitrix24_confirmation"]
            bound = {str(request["request_id"]): decide(request)}
            out[str(getattr(item, "id", None) or request["request_id"])] = bound
    return out


def pack_routing_middleware(toolkit: Bitrix24Toolkit, budget: int | None = 400) -> Any:
    """A LangChain v1 agent middleware: each model call sees only the tools routed from the last user message.

    With ``budget`` (o200k tokens, default 400) the turn's first call carries the tools the request points to
    and ``b24_load_pack`` (``selection.select_tools``), and once the turn is under way the routed packs' tools
    as well; with ``budget=None``, every tool of the routed packs from the start. Tools the model loads are
    offered from the next call; a tool of a pack that was neither routed nor loaded is refused if called
    anyway."""
    from langchain.agents.middleware import AgentMiddleware, ModelRequest
    from langchain_core.messages import HumanMessage

    from bitrix24_agent_tools.packs.loader import LOADER, loader_spec

    extra: list[BaseTool] = []
    if (
        LOADER not in toolkit.toolbox._by_name
    ):  # the toolkit was made without loader=True: the middleware brings it
        spec = loader_spec()
        toolkit.toolbox.specs.append(spec)
        toolkit.toolbox._by_name[spec.name] = spec
        extra.append(Bitrix24Tool.from_spec(spec, toolkit.toolbox))

    def offered(messages: list[Any]) -> set[str]:
        """Tool names for the latest user message, plus those the model loaded with b24_load_pack since."""
        from langchain_core.messages import AIMessage

        from bitrix24_agent_tools.packs.loader import loaded_tools
        from bitrix24_agent_tools.selection import select_tools

        last = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
        text = str(messages[last].content) if last >= 0 else ""
        calls = [
            (c["name"], dict(c.get("args") or {}))
            for m in messages[last + 1 :]
            if isinstance(m, AIMessage)
            for c in m.tool_calls
        ]
        routed = {s.name for s in toolkit.toolbox.specs if s.pack in set(route(text).packs)}
        if budget is None:
            first = routed
        elif calls:  # the turn is under way: the routed packs' tools too, so a job rarely needs a loader call
            first = routed | set(select_tools(text, budget).tools)
        else:  # the first model call of the turn: only what the request points to, within the budget
            first = set(select_tools(text, budget).tools)
        return {*first, *loaded_tools(calls), LOADER}

    def narrowed(request: ModelRequest) -> ModelRequest:
        names = offered(list(request.messages))
        keep = [t for t in request.tools if not isinstance(t, Bitrix24Tool) or t.name in names]
        return request.override(tools=keep)

    def hidden(request: Any) -> Any:
        """A refusal when the model calls a tool that was not offered for this request (else None)."""
        from langchain_core.messages import ToolMessage

        name = request.tool_call.get("name")
        spec = toolkit.toolbox._by_name.get(name)
        if spec is None:
            return None
        messages = (
            request.state.get("messages", [])
            if isinstance(request.state, dict)
            else getattr(request.state, "messages", [])
        )
        if name in offered(list(messages)):
            return None
        return ToolMessage(
            content=f"tool {name} is not available yet: call b24_load_pack with {name} or pack {spec.pack} "
            "first",
            tool_call_id=request.tool_call.get("id") or "",
            name=name,
            status="error",
        )

    class PackRouting(AgentMiddleware):
        tools = extra  # the loader, when the toolkit's own tools do not include it

        def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
            return handler(narrowed(request))

        async def awrap_model_call(
            self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]
        ) -> Any:
            return await handler(narrowed(request))

        def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
            return hidden(request) or handler(request)

        async def awrap_tool_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
            return hidden(request) or await handler(request)

    return PackRouting()
