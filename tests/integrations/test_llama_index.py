"""LlamaIndex face: FunctionTools with our compact schemas, and a workflow that pauses for a person at each
write."""

from __future__ import annotations

from typing import Any

from llama_index.core.workflow import (
    Context,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec, WorkflowConfirmer
from bitrix24_agent_tools.packs import specs_for
from bitrix24_agent_tools.packs.schema import compact_schema
from bitrix24_agent_tools.sandbox import Portal


def _spec(confirm: Any = None) -> tuple[Portal, Bitrix24ToolSpec]:
    portal = Portal(seed=1)
    return portal, Bitrix24ToolSpec.create(
        Bitrix24(portal.webhook_url, transport=portal.transport()), packs=("core",), confirm=confirm
    )


def test_tool_list_matches_the_pack_with_our_compact_schemas() -> None:
    _, spec = _spec()
    tools = spec.to_tool_list()
    assert [t.metadata.name for t in tools] == [s.name for s in specs_for(["core"])]
    first = tools[0]
    assert first.metadata.get_parameters_dict() == compact_schema(specs_for(["core"])[0].args)
    assert not first.requires_context
    _, hitl = _spec(WorkflowConfirmer())
    assert hitl.to_tool_list()[0].requires_context  # so agents hand the workflow Context to the confirmer


def test_sync_and_async_calls_and_bad_arguments() -> None:
    _, spec = _spec()
    tool = {t.metadata.name: t for t in spec.to_tool_list()}["b24_crm_get"]
    assert '"ID":"3"' in tool.call(entity="deal", id=3).content
    assert tool.call(entity="planet", id=3).content.startswith("invalid arguments:")


class _OneWrite(Workflow):
    def __init__(self, tool: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tool = tool

    @step
    async def write(self, ctx: Context, ev: StartEvent) -> StopEvent:
        out = await self.tool.acall(ctx=ctx, title=ev.get("title"))
        return StopEvent(result=out.content)


async def _run(answer: Any) -> tuple[Portal, str, list[str]]:
    portal, spec = _spec(WorkflowConfirmer())
    tool = {t.metadata.name: t for t in spec.to_tool_list()}["b24_task_create"]
    handler = _OneWrite(tool, timeout=20).run(title="Call the client")
    asked: list[str] = []
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            asked.append(event.prefix)
            assert not any(
                t["title"] == "Call the client" for t in portal.entities("task")
            )  # not yet written
            handler.ctx.send_event(HumanResponseEvent(response=answer, waiter_id=event.waiter_id))  # type: ignore[union-attr,attr-defined]
    return portal, str(await handler), asked


async def test_workflow_asks_a_person_and_writes_after_yes() -> None:
    portal, result, asked = await _run("yes")
    assert asked == ["Approve? Create task (tasks.task.add)\n  TITLE = Call the client\n  RESPONSIBLE_ID = 1"]
    assert result.startswith("created task #")
    assert len([t for t in portal.entities("task") if t["title"] == "Call the client"]) == 1


async def test_workflow_rejection_reaches_the_model() -> None:
    portal, result, _ = await _run({"reject": "the client asked to wait"})
    assert result == "rejected by the reviewer: the client asked to wait"
    assert not any(t["title"] == "Call the client" for t in portal.entities("task"))


async def test_a_function_agent_pauses_for_confirmation_and_completes_after_the_answer() -> None:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.core.base.llms.types import ChatMessage, MessageRole
    from llama_index.core.llms.mock import MockFunctionCallingLLM
    from llama_index.core.tools import ToolSelection

    def respond(messages: Any, **kwargs: Any) -> ChatMessage:
        if any(m.role == MessageRole.TOOL for m in messages):
            return ChatMessage(role=MessageRole.ASSISTANT, content="Task created.")
        call = ToolSelection(tool_id="c1", tool_name="b24_task_create", tool_kwargs={"title": "Agent task"})
        return ChatMessage(role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": [call]})

    portal, spec = _spec(WorkflowConfirmer())
    agent = FunctionAgent(tools=spec.to_tool_list(), llm=MockFunctionCallingLLM(response_generator=respond))
    handler = agent.run(user_msg="create a task")
    asked = []
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            asked.append(event.prefix)
            assert not any(t["title"] == "Agent task" for t in portal.entities("task"))
            handler.ctx.send_event(HumanResponseEvent(response="yes", waiter_id=event.waiter_id))  # type: ignore[union-attr,attr-defined]
    result = await handler
    assert asked == ["Approve? Create task (tasks.task.add)\n  TITLE = Agent task\n  RESPONSIBLE_ID = 1"]
    assert "Task created." in str(result)
    assert len([t for t in portal.entities("task") if t["title"] == "Agent task"]) == 1


async def test_a_tool_retriever_offers_what_the_message_points_to_and_loads_more_on_demand() -> None:
    from bitrix24_agent_tools import Bitrix24
    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec
    from bitrix24_agent_tools.packs import PACKS
    from bitrix24_agent_tools.sandbox import Portal

    portal = Portal(seed=1)
    spec = Bitrix24ToolSpec.create(
        Bitrix24(portal.webhook_url, transport=portal.transport()),
        packs=tuple(PACKS),
        confirm=AutoConfirmer(),
    )
    retriever = spec.retriever()
    offered = [t.metadata.name for t in await retriever.aretrieve("Move deal 3 to WON")]
    assert (
        offered[0] == "b24_deal_move" and offered[-1] == "b24_load_pack" and "b24_task_create" not in offered
    )
    assert await retriever.aretrieve("b24_task_create") == []  # not offered: not found, not run
    loader = (await retriever.aretrieve("b24_load_pack"))[0]
    assert "loaded b24_task_create" in str(await loader.acall(pack="b24_task_create"))
    created = (await retriever.aretrieve("b24_task_create"))[0]
    assert "created task" in str(await created.acall(title="Kick-off"))


def test_to_tool_list_honours_spec_functions() -> None:
    import pytest as _pytest

    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec
    from bitrix24_agent_tools.sandbox import Portal

    portal = Portal(seed=1)
    spec = Bitrix24ToolSpec(Bitrix24(portal.webhook_url, transport=portal.transport()))
    chosen = spec.to_tool_list(spec_functions=["b24_crm_list", "b24_crm_get"])
    assert [t.metadata.name for t in chosen] == ["b24_crm_list", "b24_crm_get"]
    with _pytest.raises(ValueError, match="unknown tool"):
        spec.to_tool_list(spec_functions=["b24_nope"])


def test_a_result_carries_the_data_beside_the_text_the_model_reads() -> None:
    """LlamaIndex keeps a tool's return value as ``raw_output``: the text the model reads, with every field of
    every row in ``.data``."""
    _, spec = _spec()
    tool = {t.metadata.name: t for t in spec.to_tool_list()}["b24_crm_list"]
    out = tool.call(entity="deal", limit=3)
    assert '"rows"' in out.content and len(out.raw_output.data) == 3
    assert {"ID", "TITLE", "STAGE_ID"} <= set(out.raw_output.data[0]) and out.raw_output.is_error is False
