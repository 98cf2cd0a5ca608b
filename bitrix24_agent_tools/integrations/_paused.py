"""Two-phase approval for frameworks that pause a tool call for a person themselves (the OpenAI Agents SDK's
``needs_approval``, pydantic-ai's approval-required deferred tools): the write is first run up to the guard's
question — checked, rendered from its contract, held (nothing written, nothing stored) — and the framework
shows the person that rendering; after their yes the same call runs again and the guard approves it only if it
is still the very call they saw (the request id is the canonical call's fingerprint)."""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from bitrix24_agent_tools.guard import ConfirmationRequest, Decision
from bitrix24_agent_tools.packs.base import ToolOutput

if TYPE_CHECKING:
    from bitrix24_agent_tools.toolbox import Toolbox

_answer: contextvars.ContextVar[Any] = contextvars.ContextVar("b24_paused_answer", default=None)


class PausedConfirmer:
    """The guard's confirmer in these faces: it answers only inside :meth:`Paused.preview` (hold, capturing
    the request) and :meth:`Paused.execute` (yes to the approved request, no to any other)."""

    async def __call__(self, request: ConfirmationRequest) -> Decision:
        answer = _answer.get()
        if answer is None:
            return Decision.reject("no person can confirm writes here; nothing was written")
        return answer(request)  # type: ignore[no-any-return]


class Paused:
    def __init__(self, toolbox: Any, framework: str) -> None:
        self.toolbox = toolbox
        self.framework = framework

    def risk(self, name: str, args: Any) -> str:
        """A tool's risk before running it: its own, or for a pack's generic call tool, the method's."""
        spec = self.toolbox._by_name.get(name)
        if spec is None:
            return "write"
        if spec.generic and isinstance(args, dict) and isinstance(args.get("method"), str):
            params = args.get("params") if isinstance(args.get("params"), dict) else {}
            return str(self.toolbox.guard.risk_of(args["method"], params))
        return str(spec.risk)

    async def preview(self, name: str, args: Any) -> ConfirmationRequest | ToolOutput:
        """Run the call up to the person: the request they must see, or the tool's output when it never got
        that far (refused by the guard, bad arguments, or it needed nobody)."""
        seen: list[ConfirmationRequest] = []

        def hold(request: ConfirmationRequest) -> Decision:
            seen.append(request)
            return Decision.hold(f"waiting for a person's approval in {self.framework}", by=self.framework)

        token = _answer.set(hold)
        try:
            out = await self.toolbox.arun(name, args)
        finally:
            _answer.reset(token)
        return seen[-1] if seen else out

    async def execute(self, name: str, args: Any, request_id: str, by: str) -> ToolOutput:
        """Run the call the person approved: yes only to the request they saw."""

        def bound(request: ConfirmationRequest) -> Decision:
            if request.request_id != request_id:
                return Decision.reject(
                    "the call is not the one that was approved; nothing was written", by=by
                )
            return Decision.approve(by=by)

        token = _answer.set(bound)
        try:
            return await self.toolbox.arun(name, args)  # type: ignore[no-any-return]
        finally:
            _answer.reset(token)


class PausedFace:
    """What the paused faces share: a toolbox whose guard answers only through :class:`Paused`."""

    framework = "the framework"

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.paused = Paused(toolbox, self.framework)

    @classmethod
    def create(
        cls,
        client: Any = None,
        *,
        aclient: Any = None,
        packs: Any = ("core",),
        policy: Any = None,
        **guard_options: Any,
    ) -> Any:
        """A face over a client (an async one is used when given): the chosen packs, writes answered only
        through the framework's own approval."""
        from bitrix24_agent_tools.guard import Guard, Policy
        from bitrix24_agent_tools.toolbox import Toolbox

        guard = Guard(policy or Policy.writer(), PausedConfirmer(), **guard_options)
        return cls(Toolbox(client, aclient, packs=tuple(packs), guard=guard))
