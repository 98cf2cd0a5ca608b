"""Each pack's allowlisted ``b24_<pack>_call`` tool (the typed tools live in one module per pack)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolOutput, ToolSpec, riskiest
from bitrix24_agent_tools.packs.catalog import CATALOG
from bitrix24_agent_tools.packs.render import dumps, rows_output


class CallArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.]+$")
    params: dict[str, Any] = Field(default_factory=dict)


def _call_handler(pack: str) -> Any:
    def handler(ctx: ToolContext, args: CallArgs) -> HandlerGen:
        response = yield Call(args.method, args.params)
        result = response.result
        rows = result if isinstance(result, list) else None
        if isinstance(result, dict):
            lists = [key for key, value in result.items() if isinstance(value, list)]
            if (
                len(result) == 1 and lists
            ):  # {"orders": [...]}, {"prices": [...]}, {"booking": [...]}: the rows
                rows = result[lists[0]]
            for key in ("items", "tasks"):
                if isinstance(result.get(key), list):
                    rows = result[key]
        if rows is not None:
            return rows_output(
                ctx,
                rows,
                total=response.total,
                more=response.next is not None,
                hint=f"more rows: call again with params.start={response.next}" if response.next else "",
                searched=f"{args.method} {dumps(args.params)}"[:300],
            )
        return ToolOutput(content=dumps(result), artifact=result)

    handler.__name__ = f"{pack}_call"
    return handler


def call_spec(pack: str) -> ToolSpec:
    methods = tuple(CATALOG[pack])
    risk = riskiest([r for r in CATALOG[pack].values()])
    return ToolSpec(
        f"b24_{pack}_call",
        f"Call a {pack} REST method: {_families(pack)}.",
        CallArgs,
        risk,
        methods,
        _call_handler(pack),
        pack,
        generic=True,
    )


def _families(pack: str) -> str:
    """The method families a pack's allowlist covers (``landing.*``), so a model knows where a method belongs;
    ``b24_check_method <pack>`` lists the methods themselves."""
    if pack == "core":  # the core pack's schema budget: its main families only
        return "crm, tasks, user, event..."
    heads = sorted({m.split(".", 1)[0] for m in CATALOG[pack]})
    return ", ".join(f"{h}.*" if any(m.startswith(h + ".") for m in CATALOG[pack]) else h for h in heads)
