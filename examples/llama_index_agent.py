"""LlamaIndex: the tool spec's FunctionTools, and a workflow that asks a person before each write.

python examples/llama_index_agent.py
"""

from __future__ import annotations

import asyncio

from llama_index.core.workflow import (
    Context,
    HumanResponseEvent,
    InputRequiredEvent,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)

from bitrix24_agent_tools import Bitrix24
from bitrix24_agent_tools.integrations.llama_index import Bitrix24ToolSpec, WorkflowConfirmer
from bitrix24_agent_tools.sandbox import Portal


class CreateTask(Workflow):
    def __init__(self, tools: dict[str, object], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.tools = tools

    @step
    async def create(self, ctx: Context, ev: StartEvent) -> StopEvent:
        out = await self.tools["b24_task_create"].acall(ctx=ctx, title=ev.get("title"))  # type: ignore[attr-defined]
        return StopEvent(result=out.content)


async def main() -> int:
    portal = Portal(seed=1)
    spec = Bitrix24ToolSpec.create(
        Bitrix24(portal.webhook_url, transport=portal.transport()), confirm=WorkflowConfirmer()
    )
    tools = {t.metadata.name: t for t in spec.to_tool_list()}
    print("tools:", ", ".join(tools))
    handler = CreateTask(tools, timeout=30).run(title="Send the contract to Acme")
    async for event in handler.stream_events():
        if isinstance(event, InputRequiredEvent):
            print(event.prefix, "-> yes")
            handler.ctx.send_event(HumanResponseEvent(response="yes", waiter_id=event.waiter_id))  # type: ignore[union-attr,attr-defined]
    print(await handler)
    return 0 if any(t["title"] == "Send the contract to Acme" for t in portal.entities("task")) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
