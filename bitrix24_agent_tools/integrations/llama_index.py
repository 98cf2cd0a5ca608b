"""LlamaIndex face: Bitrix24ToolSpec (FunctionTools with our schemas and async functions) and workflow HITL.

No logic lives here: every call goes through :class:`~bitrix24_agent_tools.toolbox.Toolbox`. (No ``from
__future__ import annotations``: LlamaIndex detects the workflow ``Context`` parameter by its annotation.)
"""

import contextvars
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from llama_index.core.objects.base import ObjectRetriever
from llama_index.core.tools import FunctionTool, ToolMetadata
from llama_index.core.tools.tool_spec.base import BaseToolSpec
from llama_index.core.workflow import Context, HumanResponseEvent, InputRequiredEvent

from bitrix24_agent_tools.guard import ConfirmationRequest, Decision, Guard, Policy
from bitrix24_agent_tools.packs.loader import tool_packs
from bitrix24_agent_tools.toolbox import Toolbox, register_pause


def _register_waiting() -> None:
    """A workflow waiting for the person's HumanResponseEvent raises WaitingForEvent: the guard lets it
    through."""
    import importlib

    for module in ("workflows.runtime.types.results", "workflows.errors", "llama_index.core.workflow.errors"):
        try:
            register_pause(importlib.import_module(module).WaitingForEvent)
        except (ImportError, AttributeError):
            continue


_register_waiting()

_workflow_ctx: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "b24_workflow_ctx", default=None
)


class Bitrix24ToolSpec(BaseToolSpec):
    """The tools of some packs as LlamaIndex FunctionTools bound to one portal and one guard."""

    spec_functions: list[Any] = []  # noqa: RUF012 — the base declares it; our tools come from the packs

    def __init__(
        self,
        toolbox: Any = None,
        *,
        packs: Iterable[str] = ("core",),
        guard: Guard | None = None,
        confirm: Any = None,
        policy: Policy | None = None,
        aclient: Any = None,
    ) -> None:
        """``Bitrix24ToolSpec(client, packs=..., confirm=...)`` or ``Bitrix24ToolSpec(toolbox)``."""
        if not isinstance(toolbox, Toolbox):
            toolbox = Toolbox(
                toolbox, aclient, packs=packs, guard=guard or Guard(policy or Policy.writer(), confirm)
            )
        self.toolbox: Toolbox = toolbox

    @classmethod
    def create(
        cls,
        client: Any = None,
        *,
        aclient: Any = None,
        packs: Iterable[str] = ("core",),
        guard: Guard | None = None,
        confirm: Any = None,
        policy: Policy | None = None,
    ) -> "Bitrix24ToolSpec":
        guard = guard or Guard(policy or Policy.writer(), confirm)
        return cls(Toolbox(client, aclient, packs=packs, guard=guard))

    def for_request(self, text: str, *, budget: int | None = None) -> "Bitrix24ToolSpec":
        """The routed packs' tools, or with ``budget`` only the tools ``text`` points to and
        ``b24_load_pack``."""
        return Bitrix24ToolSpec(self.toolbox.for_request(text, budget=budget))

    def retriever(self, budget: int = 400) -> Any:
        """Deferred tools for a FunctionAgent / AgentWorkflow
        (``FunctionAgent(tool_retriever=spec.retriever())``): each user message gets the tools it points to
        and ``b24_load_pack`` (within ``budget`` tokens); a tool the model loads is offered from the next
        step; a tool not offered is not found."""
        return _DeferredTools(self, budget)

    def to_tool_list(
        self, spec_functions: Any = None, func_to_metadata_mapping: Any = None
    ) -> list[FunctionTool]:
        """Every tool, or only those ``spec_functions`` names (LlamaIndex's own convention); an unknown name
        is an error, not a silent drop."""
        specs = self.toolbox.specs
        if spec_functions is not None:
            wanted = [f if isinstance(f, str) else getattr(f, "__name__", str(f)) for f in spec_functions]
            by_name = {s.name: s for s in specs}
            unknown = [n for n in wanted if n not in by_name]
            if unknown:
                raise ValueError(f"unknown tool(s) {', '.join(unknown)}; available: {', '.join(by_name)}")
            specs = [by_name[n] for n in wanted]
        return [self._tool(spec.name, spec.description, spec.args) for spec in specs]

    def _tool(self, name: str, description: str, schema: Any) -> FunctionTool:
        toolbox = self.toolbox

        if isinstance(toolbox.guard.confirm, WorkflowConfirmer):
            # The agent hands its workflow Context to tools that declare it; the confirmer asks the person
            # there.
            def run(ctx: Context = None, **kwargs: Any) -> str:  # type: ignore[assignment]
                return ToolResult.of(toolbox.run(name, kwargs))

            async def arun(ctx: Context, **kwargs: Any) -> str:
                token = _workflow_ctx.set(ctx)
                try:
                    return ToolResult.of(await toolbox.arun(name, kwargs))
                finally:
                    _workflow_ctx.reset(token)
        else:

            def run(**kwargs: Any) -> str:  # type: ignore[misc]
                return ToolResult.of(toolbox.run(name, kwargs))

            async def arun(**kwargs: Any) -> str:  # type: ignore[misc]
                return ToolResult.of(await toolbox.arun(name, kwargs))

        metadata = _CompactMetadata(name=name, description=description, fn_schema=schema)
        return FunctionTool.from_defaults(fn=run, async_fn=arun, tool_metadata=metadata)


class ToolResult(str):
    """A tool's result as LlamaIndex keeps it: the compact text the model reads (this string) carrying the
    full data (``.data``, every field, e.g. for ``pandas.DataFrame(result.data)``) and ``.is_error``. It is
    the ``raw_output`` of the tool's ``ToolOutput``."""

    data: Any
    is_error: bool

    @classmethod
    def of(cls, out: Any) -> "ToolResult":
        result = cls(out.content)
        result.data = out.artifact
        result.is_error = bool(out.is_error)
        return result


class _CompactMetadata(ToolMetadata):
    """The model sees our compact schema (no titles, no null unions), as in every other face."""

    def get_parameters_dict(self) -> dict[str, Any]:
        from bitrix24_agent_tools.packs.schema import compact_schema

        assert self.fn_schema is not None
        return compact_schema(self.fn_schema)


class WorkflowConfirmer:
    """Ask a person from inside a LlamaIndex workflow/agent: emit ``InputRequiredEvent`` with the request,
    wait for the ``HumanResponseEvent`` whose ``response`` is the answer ("yes", a bool, or a dict like
    ``{"edit": {...}}``).

    The workflow replays the tool when the answer arrives; the guard's work before asking is read-only, so a
    replay is safe.
    """

    async def __call__(self, request: ConfirmationRequest) -> Decision:
        ctx = _workflow_ctx.get()
        if ctx is None:
            return Decision.reject("no workflow context to ask a person in; use arun() inside an agent")
        waiter = hashlib.sha256(
            json.dumps(request.to_dict(), sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        event = await ctx.wait_for_event(
            HumanResponseEvent,
            waiter_event=InputRequiredEvent(
                prefix=f"Approve? {request.summary}", request=request.to_dict(), waiter_id=waiter
            ),
            waiter_id=waiter,
            requirements={"waiter_id": waiter},
        )
        return Decision.coerce(getattr(event, "response", None))


class _DeferredTools(ObjectRetriever[Any]):
    """A tool retriever that asks the selection, not an index. LlamaIndex calls it with the user's message
    (the tools to offer) and with a tool's name (the tool to run): only an offered or loaded tool is found."""

    def __init__(
        self, spec: Bitrix24ToolSpec, budget: int
    ) -> None:  # no index: the base's retriever is not used
        self._spec = spec
        self._budget = budget
        self._current: Bitrix24ToolSpec | None = None

    def retrieve(self, str_or_query_bundle: Any) -> list[Any]:
        text = getattr(str_or_query_bundle, "query_str", str_or_query_bundle)
        text = str(text or "")
        if self._current is not None and text in self._current.toolbox._by_name:
            found = self._current.toolbox.spec(text)
            return [self._current._tool(found.name, found.description, found.args)]
        if self._current is not None and text in tool_packs():
            return []  # a tool that was not offered or loaded: not found, so not run
        self._current = self._spec.for_request(text, budget=self._budget)
        return self._current.to_tool_list()

    async def aretrieve(self, str_or_query_bundle: Any) -> list[Any]:
        return self.retrieve(str_or_query_bundle)
