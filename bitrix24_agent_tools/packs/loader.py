"""``b24_load_pack``: the small tool that loads a pack's tools on demand (deferred packs).

The first model call carries the routed packs and this loader; when the model calls it, the face offers that
pack's tools from the next step (LangChain middleware, MCP ``tools/list_changed``). It makes no portal call.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bitrix24_agent_tools.packs.base import HandlerGen, ToolContext, ToolOutput, ToolSpec
from bitrix24_agent_tools.risk import CATALOG

LOADER = "b24_load_pack"
PACK_NAMES = (*(p for p in CATALOG if p != "core"), "core")  # core last: the others are what one loads


@lru_cache(maxsize=1)
def tool_packs() -> dict[str, str]:
    """Every tool's name → the pack it belongs to (the loader's, the faces' and the selection's one
    lookup)."""
    from bitrix24_agent_tools.packs import PACKS

    return {spec.name: pack.name for pack in PACKS.values() for spec in pack.specs}


class LoadArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pack: str = Field(min_length=2, max_length=60)

    @field_validator("pack")
    @classmethod
    def _known(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in PACK_NAMES and value not in tool_packs():
            raise ValueError(f"pack must be one of {', '.join(PACK_NAMES)} (or a tool's name)")
        return value


def load_pack(ctx: ToolContext, args: LoadArgs) -> HandlerGen:
    from bitrix24_agent_tools.packs import PACKS

    if args.pack not in PACK_NAMES:  # one tool, e.g. b24_task_create: cheaper than its whole pack
        return ToolOutput(
            content=f"loaded {args.pack} (usable from the next step)",
            artifact={"loaded_tools": [args.pack], "pack": tool_packs()[args.pack]},
        )
    names = [s.name for s in PACKS[args.pack].specs]
    return ToolOutput(
        content=f"loaded {args.pack}: {', '.join(names)} (usable from the next step)",
        artifact={"loaded_pack": args.pack, "tools": names},
    )
    yield  # pragma: no cover - makes no call


def loader_spec() -> ToolSpec:
    return ToolSpec(
        LOADER,
        "Load a tool, or a pack's tools: core (CRM, tasks), comms (chat, calls), automation, collab (feed), "
        "content (Drive), boards (scrum), commerce, services (calendar, booking), platform (AI), sites, "
        "compliance, diagnostics.",
        LoadArgs,
        "read",
        (),
        load_pack,
        "loader",
    )


def loaded_packs(calls: list[tuple[str, dict[str, object]]]) -> set[str]:
    """Packs the model loaded, from its (tool name, arguments) calls so far."""
    return {
        str(args.get("pack", "")).strip().lower()
        for name, args in calls
        if name == LOADER and str(args.get("pack", "")).strip().lower() in PACK_NAMES
    }


def loaded_tools(calls: list[tuple[str, dict[str, object]]]) -> set[str]:
    """Every tool the model loaded (one by one or with its pack), from its calls so far."""
    from bitrix24_agent_tools.packs import PACKS

    names = tool_packs()
    out = {str(args.get("pack", "")).strip().lower() for name, args in calls if name == LOADER} & set(names)
    for pack in loaded_packs(calls):
        out.update(s.name for s in PACKS[pack].specs)
    return out
