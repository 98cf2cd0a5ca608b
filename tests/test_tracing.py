"""Tracing: spans for tool calls, guard decisions and portal requests, with no secret in any attribute."""

from __future__ import annotations

from typing import Any

import pytest

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import AutoConfirmer
from bitrix24_agent_tools.guard import Guard, Policy
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.toolbox import Toolbox

pytest.importorskip("opentelemetry.sdk")


@pytest.fixture(scope="module")
def exporter() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    import bitrix24_agent_tools.tracing as tracing

    tracing._TRACER = None  # pick up the provider just set
    return memory


def test_a_tool_call_is_a_span_with_its_decisions_and_its_portal_requests(exporter: Any) -> None:
    exporter.clear()
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), AutoConfirmer()))
    assert not box.run("b24_task_create", {"title": "traced", "responsible_id": 1}).is_error
    refused = box.run("b24_core_call", {"method": "tasks.task.delete", "params": {"taskId": 1, "id": 2}})
    assert refused.is_error
    spans = exporter.get_finished_spans()
    tools = [s for s in spans if s.name.startswith("execute_tool")]
    assert [s.attributes["gen_ai.tool.name"] for s in tools] == ["b24_task_create", "b24_core_call"]
    created, denied = tools
    assert created.attributes["gen_ai.operation.name"] == "execute_tool"
    # the responsible user's check (a read), then the write the person approved
    assert [e.attributes["bitrix24.decision"] for e in created.events] == ["read", "approved"]
    requests = [s for s in spans if s.name == "bitrix24 tasks.task.add"]
    assert requests and requests[0].parent.span_id == created.context.span_id
    assert requests[0].attributes["rpc.method"] == "tasks.task.add"
    assert (
        denied.attributes["bitrix24.tool.is_error"] is True
        and denied.attributes["error.type"] == "BAD_PARAMS"
    )


def test_no_secret_reaches_a_trace(exporter: Any) -> None:
    exporter.clear()
    portal = Portal(seed=1)
    client = Bitrix24(portal.webhook_url, transport=portal.transport())
    box = Toolbox(client, packs=("core",), guard=Guard(Policy.writer(), AutoConfirmer()))
    box.run(
        "b24_crm_update", {"entity": "deal", "id": 4, "fields": {"COMMENTS": f"see {portal.webhook_url}"}}
    )
    box.run("b24_crm_list", {"entity": "deal"})
    dump = repr([(s.name, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events])
                 for s in exporter.get_finished_spans()])  # fmt: skip
    assert exporter.get_finished_spans() and portal.webhook_code not in dump and "see " not in dump


async def test_an_mcp_tool_call_is_a_server_span_around_the_tool(exporter: Any) -> None:
    from mcp.client import Client

    from bitrix24_agent_tools.client import AsyncBitrix24
    from bitrix24_agent_tools.integrations.mcp import Bitrix24MCP

    exporter.clear()
    portal = Portal(seed=1)
    app = Bitrix24MCP(aclient=AsyncBitrix24(portal.webhook_url, transport=portal.async_transport()))
    async with Client(app.server) as client:
        await client.call_tool("b24_crm_list", {"entity": "deal"})
    finished = exporter.get_finished_spans()
    spans = {s.name: s for s in finished}
    outer, tool = spans["tools/call b24_crm_list"], spans["execute_tool b24_crm_list"]
    parents = {s.context.span_id: s.parent.span_id if s.parent else None for s in finished}
    ancestors, current = [], tool.context.span_id
    while current is not None:
        current = parents.get(current)
        ancestors.append(current)
    assert outer.attributes["mcp.method.name"] == "tools/call" and outer.context.span_id in ancestors
