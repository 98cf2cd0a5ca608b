"""The registry of packs: what an agent can do, as framework-neutral ToolSpecs with risk-classified
catalogs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bitrix24_agent_tools.packs import (
    automation,
    boards,
    collab,
    commerce,
    comms,
    content,
    core,
    diagnostics,
    generic,
    services,
    sites,
)
from bitrix24_agent_tools.packs.base import (
    Call,
    CallRefused,
    Fetch,
    Handler,
    HandlerGen,
    Risk,
    ToolContext,
    ToolOutput,
    ToolSpec,
    adrive,
    drive,
    riskiest,
)
from bitrix24_agent_tools.packs.catalog import CATALOG, catalog_risk, classify, name_risk, pack_of


@dataclass(frozen=True)
class Pack:
    name: str
    summary: str
    catalog: dict[str, Risk]
    specs: tuple[ToolSpec, ...]


_SUMMARIES = {
    "core": "CRM, tasks, users, events, batch",
    "comms": "chats, bots, notifications, telephony, open lines",
    "automation": "business processes, robots, workflow templates",
    "collab": "workgroups, projects, live feed",
    "content": "Drive files and documents",
    "boards": "scrum sprints, kanban, epics, backlog",
    "commerce": "orders, payments, deliveries, catalog",
    "services": "booking, calendar, work time",
    "platform": "CoPilot/AI, app storage, BI connector",
    "sites": "sites and landing pages",
    "compliance": "consents and e-signature",
    "diagnostics": "what this portal and credential can do",
}
# Each pack's typed tools, one module per pack; every pack also has its allowlisted generic call (generic.py).
_TYPED = {
    module.__name__.rsplit(".", 1)[1]: module.specs()
    for module in (core, comms, automation, collab, content, boards, commerce, services, sites, diagnostics)
}

PACKS: dict[str, Pack] = {
    name: Pack(name, _SUMMARIES[name], CATALOG[name], (*_TYPED.get(name, []), generic.call_spec(name)))
    for name in CATALOG
}


def specs_for(packs: Iterable[str]) -> list[ToolSpec]:
    """The ToolSpecs of the named packs, in pack order; unknown pack names are an error."""
    out: list[ToolSpec] = []
    for name in dict.fromkeys(packs):
        if name not in PACKS:
            raise ValueError(f"unknown pack {name!r}; known packs: {', '.join(PACKS)}")
        out.extend(PACKS[name].specs)
    return out


__all__ = [
    "CATALOG",
    "PACKS",
    "Call",
    "CallRefused",
    "Fetch",
    "Handler",
    "HandlerGen",
    "Pack",
    "Risk",
    "ToolContext",
    "ToolOutput",
    "ToolSpec",
    "adrive",
    "catalog_risk",
    "classify",
    "drive",
    "name_risk",
    "pack_of",
    "riskiest",
    "specs_for",
]
