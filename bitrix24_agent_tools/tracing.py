"""OpenTelemetry spans (extra ``otel``): every tool call, every guard decision and every portal request,
named and attributed with the GenAI and MCP semantic conventions. Without ``opentelemetry-api`` installed, or
with no tracer provider configured, nothing is recorded and nothing is slowed down beyond a no-op.

No attribute carries a parameter value, a record, a URL or a message: only names (tool, method, pack), risks,
decisions and outcomes — so no secret and no personal data can reach a trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

_TRACER: Any = None


def _tracer() -> Any:
    global _TRACER
    if _TRACER is None:
        try:
            from opentelemetry import trace
        except ImportError:
            _TRACER = False
        else:
            from bitrix24_agent_tools._meta import package_version

            _TRACER = trace.get_tracer("bitrix24_agent_tools", package_version())
    return _TRACER or None


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any], *, kind: str = "INTERNAL") -> Iterator[Any]:
    """A span around a block (a no-op without OpenTelemetry); an exception marks it as an error."""
    tracer = _tracer()
    if tracer is None:
        yield None
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    with tracer.start_as_current_span(
        name, kind=getattr(SpanKind, kind), attributes=dict(attributes), record_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__name__)
            current.set_status(Status(StatusCode.ERROR))
            raise


def tool_span(tool: str) -> Any:
    """``execute_tool <name>`` (GenAI semantic conventions)."""
    return span(
        f"execute_tool {tool}",
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool, "gen_ai.tool.type": "function"},
    )


def request_span(method: str, api: str) -> Any:
    """One call to the portal (an RPC: the method is its name)."""
    return span(
        f"bitrix24 {method}",
        {"rpc.system": "bitrix24", "rpc.method": method, "bitrix24.api": api},
        kind="CLIENT",
    )


def mcp_span(tool: str) -> Any:
    """``tools/call <name>`` (MCP semantic conventions)."""
    return span(
        f"tools/call {tool}",
        {"mcp.method.name": "tools/call", "gen_ai.tool.name": tool, "gen_ai.operation.name": "execute_tool"},
        kind="SERVER",
    )


def decision(method: str, risk: str, decided: str, status: str) -> None:
    """A guard decision, as an event on the current span (the tool's)."""
    tracer = _tracer()
    if tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().add_event(
        "bitrix24.guard.decision",
        {
            "bitrix24.method": method,
            "bitrix24.risk": risk,
            "bitrix24.decision": decided,
            "bitrix24.status": status,
        },
    )


def outcome(current: Any, is_error: bool, code: str | None = None) -> None:
    """A tool's result on its span: whether it was an error (a refusal, a portal error), and its code."""
    if current is None:
        return
    current.set_attribute("bitrix24.tool.is_error", is_error)
    if code:
        current.set_attribute("error.type", code)
        from opentelemetry.trace import Status, StatusCode

        current.set_status(Status(StatusCode.ERROR))
