"""A testing kit for your own agents: a scripted tool-calling chat model (LangChain) and its twins for
LlamaIndex, the OpenAI Agents SDK and pydantic-ai, and sandbox fixtures, so an agent's tests run offline, the
way ours do.

    from bitrix24_agent_tools.testing import ScriptedChatModel

    model = ScriptedChatModel(steps=[
        [("b24_crm_list", {"entity": "deal", "filter": {"%TITLE": "Acme"}})],
        lambda results: [("b24_deal_move", {"id": int(results[-1]["rows"][0][0]), "stage_id": "WON"})],
        "Done: the Acme deal is won.",
    ])
    agent = create_agent(model, toolkit.get_tools())

Each step is the next model turn: a list of ``(tool, args)`` calls, a function of the tool results so far
(parsed JSON where a result is JSON) that returns such a list, or a string (the final answer). With pytest,
the fixtures ``b24_portal`` (a seeded sandbox), ``b24_client`` (a sync client on it) and ``b24_toolbox`` come
from ``pytest -p bitrix24_agent_tools.testing`` (or ``pytest_plugins`` in your conftest).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

Call = tuple[str, dict[str, Any]]
Step = list[Call] | Callable[[list[Any]], list[Call] | str] | str


def _parsed(content: Any) -> Any:
    """A tool result as a step reads it: parsed JSON where it is JSON, else the text."""
    try:
        return json.loads(str(content))
    except ValueError:
        return str(content)


def _results(messages: Sequence[Any], skip: str | None = None) -> list[Any]:
    return [
        _parsed(m.content)
        for m in messages
        if type(m).__name__ == "ToolMessage" and (skip is None or getattr(m, "name", None) != skip)
    ]


def ScriptedChatModel(steps: Sequence[Step], *, load_missing: bool = False) -> Any:
    """A LangChain chat model that plays the given steps, one per turn, and binds tools like a real one.

    ``load_missing=True``: a step's tool the agent has not been offered yet (pack routing) is loaded first
    with ``b24_load_pack``, as a model would; that turn and its result do not count as a step's."""
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    from bitrix24_agent_tools.packs.loader import LOADER

    def loading(message: Any) -> bool:
        calls = getattr(message, "tool_calls", None) or []
        return load_missing and bool(calls) and all(c["name"] == LOADER for c in calls)

    class _Scripted(BaseChatModel):
        script: list[Any]
        bound: list[str] = []  # noqa: RUF012 — a pydantic field, copied per bind

        @property
        def _llm_type(self) -> str:
            return "bitrix24-scripted"

        def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
            names = [
                getattr(t, "name", None) or (t.get("name") if isinstance(t, dict) else None) for t in tools
            ]
            return self.model_copy(update={"bound": [n for n in names if n]})

        def _generate(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> ChatResult:
            answers = [m for m in messages if type(m).__name__ == "AIMessage"]
            turn = sum(1 for m in answers if not loading(m))
            step: Any = self.script[turn] if turn < len(self.script) else "done"
            if callable(step):
                step = step(_results(messages, LOADER if load_missing else None))
            if isinstance(step, str):
                message = AIMessage(content=step)
            else:
                wanted = [(name, args) for name, args in step]
                missing = [name for name, _ in wanted if name not in self.bound]
                if load_missing and missing:  # not offered yet: load it first
                    wanted = [(LOADER, {"pack": name}) for name in dict.fromkeys(missing)]
                calls = [
                    {"name": name, "args": args, "id": f"call_{len(answers)}_{i}", "type": "tool_call"}
                    for i, (name, args) in enumerate(wanted)
                ]
                message = AIMessage(content="", tool_calls=calls)
            return ChatResult(generations=[ChatGeneration(message=message)])

    return _Scripted(script=list(steps))


def ScriptedFunctionCallingLLM(steps: Sequence[Step]) -> Any:
    """The LlamaIndex twin: a function-calling LLM for ``FunctionAgent`` that plays the same kind of steps."""
    from llama_index.core.base.llms.types import ChatMessage, MessageRole
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.tools import ToolSelection

    script = list(steps)

    def respond(messages: Any, **kwargs: Any) -> Any:
        turn = sum(1 for m in messages if m.role == MessageRole.ASSISTANT)
        step: Any = script[turn] if turn < len(script) else "done"
        if callable(step):
            step = step([_parsed(m.content) for m in messages if m.role == MessageRole.TOOL])
        if isinstance(step, str):
            return ChatMessage(role=MessageRole.ASSISTANT, content=step)
        calls = [
            ToolSelection(tool_id=f"call_{turn}_{i}", tool_name=name, tool_kwargs=args)
            for i, (name, args) in enumerate(step)
        ]
        return ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": calls})

    return MockFunctionCallingLLM(response_generator=respond)


def ScriptedAgentsModel(steps: Sequence[Step]) -> Any:
    """The OpenAI Agents SDK twin: an ``agents`` ``Model`` that plays the same kind of steps (one turn per
    model call; tool results are read from the run's ``function_call_output`` items)."""
    from agents import ModelResponse, Usage
    from agents.models.interface import Model
    from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

    script = list(steps)

    class _Scripted(Model):
        async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> Any:
            items = [i for i in (input if isinstance(input, list) else []) if isinstance(i, dict)]
            results = [_parsed(i.get("output")) for i in items if i.get("type") == "function_call_output"]
            turn = _turns(items)
            step: Any = script[turn] if turn < len(script) else "done"
            if callable(step):
                step = step(results)
            if isinstance(step, str):
                text = ResponseOutputText(type="output_text", text=step, annotations=[])
                out: list[Any] = [ResponseOutputMessage(id=f"msg{turn}", type="message", role="assistant",
                                                        status="completed", content=[text])]  # fmt: skip
            else:
                out = [
                    ResponseFunctionToolCall(
                        type="function_call",
                        name=name,
                        arguments=json.dumps(args),
                        call_id=f"call_{turn}_{i}",
                        id=f"fc_{turn}_{i}",
                        status="completed",
                    )
                    for i, (name, args) in enumerate(step)
                ]
            return ModelResponse(output=out, usage=Usage(), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError("the scripted model does not stream")

    return _Scripted()


def _turns(items: list[dict[str, Any]]) -> int:
    """Model turns already played: batches of tool calls whose outputs came back."""
    calls = [i.get("call_id") for i in items if i.get("type") == "function_call"]
    answered = {i.get("call_id") for i in items if i.get("type") == "function_call_output"}
    turns, seen = 0, set()
    for call in calls:
        prefix = str(call).rsplit("_", 1)[0]
        if prefix not in seen and call in answered:
            seen.add(prefix)
            turns += 1
    return turns


def ScriptedPydanticModel(steps: Sequence[Step]) -> Any:
    """The pydantic-ai twin: a ``FunctionModel`` that plays the same kind of steps."""
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.models.function import FunctionModel

    script = list(steps)

    def respond(messages: list[Any], info: Any) -> Any:
        turn = sum(1 for m in messages if getattr(m, "kind", "") == "response")
        results = [
            _parsed(p.content)
            for m in messages
            for p in getattr(m, "parts", [])
            if isinstance(p, ToolReturnPart)
        ]
        step: Any = script[turn] if turn < len(script) else "done"
        if callable(step):
            step = step(results)
        if isinstance(step, str):
            return ModelResponse(parts=[TextPart(step)])
        return ModelResponse(
            parts=[
                ToolCallPart(name, args, tool_call_id=f"call_{turn}_{i}")
                for i, (name, args) in enumerate(step)
            ]
        )

    return FunctionModel(respond)


# --- pytest fixtures (pytest -p bitrix24_agent_tools.testing, or pytest_plugins in a conftest) ------------

try:
    import pytest
except ImportError:  # pragma: no cover — the kit works without pytest; only the fixtures need it
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def b24_portal() -> Any:
        """A seeded sandbox portal (in-process), new for each test."""
        from bitrix24_agent_tools.sandbox import Portal

        return Portal(seed=1)

    @pytest.fixture
    def b24_client(b24_portal: Any) -> Iterator[Any]:
        """A client on the sandbox portal (no network)."""
        from bitrix24_agent_tools.client import Bitrix24

        with Bitrix24(b24_portal.webhook_url, transport=b24_portal.transport()) as client:
            yield client

    @pytest.fixture
    def b24_toolbox(b24_client: Any) -> Any:
        """Every pack's tools on the sandbox, writes approved by an AutoConfirmer (``.guard.confirm.seen``
        holds what a person would have been shown)."""
        from bitrix24_agent_tools.confirmers import AutoConfirmer
        from bitrix24_agent_tools.guard import Guard, Policy
        from bitrix24_agent_tools.packs import PACKS
        from bitrix24_agent_tools.toolbox import Toolbox

        return Toolbox(b24_client, packs=tuple(PACKS), guard=Guard(Policy.writer(), AutoConfirmer()))
