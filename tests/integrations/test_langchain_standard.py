"""LangChain's standard tool suite (langchain-tests ToolsUnitTests) over every tool of every pack."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ToolsUnitTests

from bitrix24_agent_tools.client import Bitrix24
from bitrix24_agent_tools.confirmers import approve_all
from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit
from bitrix24_agent_tools.packs import PACKS
from bitrix24_agent_tools.sandbox import Portal

_PORTAL = Portal(seed=1)
_TOOLS = {
    t.name: t
    for t in Bitrix24Toolkit.create(
        Bitrix24(_PORTAL.webhook_url, transport=_PORTAL.transport()), packs=tuple(PACKS), confirm=approve_all
    ).get_tools()
}


_SPECS = {s.name: s for p in PACKS.values() for s in p.specs}


def _example(schema: dict[str, Any]) -> dict[str, Any]:
    """The smallest arguments the tool's own schema accepts: one value per required field."""
    out: dict[str, Any] = {}
    for name in schema.get("required", []):
        spec = schema["properties"][name]
        if "enum" in spec:
            out[name] = spec["enum"][0]
            continue
        kind = spec.get("type") or next(
            (a.get("type") for a in spec.get("anyOf", []) if a.get("type")), "string"
        )
        out[name] = {"string": "x", "integer": 1, "number": 1.0, "boolean": True, "array": [], "object": {}}[
            kind
        ]
    if not out:  # nothing required: one optional field at its default (an empty call is the framework's edge)
        name, spec = next((n, p) for n, p in schema["properties"].items() if "default" in p)
        out[name] = spec["default"]
    return out


def _suite(name: str) -> type:
    tool = _TOOLS[name]

    class Suite(ToolsUnitTests):
        @property
        def tool_constructor(self) -> Any:
            return tool

        @property
        def tool_invoke_params_example(self) -> dict[str, Any]:
            return _example(_SPECS[name].args.model_json_schema())

    Suite.__name__ = Suite.__qualname__ = f"TestStandard_{name}"
    return Suite


for _name in _TOOLS:
    globals()[f"TestStandard_{_name}"] = _suite(_name)


def test_the_suite_covers_every_tool() -> None:
    assert len(_TOOLS) == sum(len(p.specs) for p in PACKS.values()) and len(_TOOLS) >= 38
