"""Tool-schema token cost per pack (o200k_base and cl100k_base), next to the peers' published figures.

    python -m benchmarks.tokens
"""

from __future__ import annotations

import json

from bitrix24_agent_tools.packs import PACKS, specs_for
from bitrix24_agent_tools.router import route
from bitrix24_agent_tools.tokens import count_tokens, tools_cost

PEERS = [  # o200k tokens of the same LLM view (name + description + input schema), from issue #4 and #11
    ("mcp-bitrix24", 11, 1393), ("bitrix24-mcp", 6, 606), ("fast-bitrix24-mcp", 28, 9369), ("mcp-b24", 43, 32690),
]
REQUEST = "The Acme Logistics deal is signed: move it to WON and tell the manager in chat."


def langchain_view_tokens(packs: list[str]) -> int | None:
    """The same tools as LangChain sends them (convert_to_openai_tool), to show the face adds nothing."""
    try:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        from bitrix24_agent_tools.client import Bitrix24
        from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit
        from bitrix24_agent_tools.sandbox import Portal
    except ImportError:
        return None
    portal = Portal(seed=0, deals=1)
    toolkit = Bitrix24Toolkit.create(Bitrix24(portal.webhook_url, transport=portal.transport()), packs=packs)
    return sum(count_tokens(json.dumps(convert_to_openai_tool(t)["function"], separators=(",", ":"))) for t in toolkit.get_tools())


def rows() -> list[tuple[str, int, int, int]]:
    out = []
    for name, pack in PACKS.items():
        specs = list(pack.specs)
        out.append((name, len(specs), tools_cost(specs), tools_cost(specs, "cl100k_base")))
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    print("Tool schema tokens per pack (LLM view: name + description + compact JSON schema)")
    print(f"{'pack':12} {'tools':>5} {'o200k':>6} {'cl100k':>7} {'o200k/tool':>10}")
    for name, n, o200k, cl100k in rows():
        print(f"{name:12} {n:5d} {o200k:6d} {cl100k:7d} {o200k / n:10.0f}")
    everything = specs_for(PACKS)
    core = specs_for(["core"])
    total = tools_cost(everything)
    print(f"{'all 12 packs':12} {len(everything):5d} {total:6d} {tools_cost(everything, 'cl100k_base'):7d} {total / len(everything):10.0f}")
    routed = route(REQUEST).packs
    routed_cost = tools_cost(specs_for(routed))
    print(f"\nrouted request -> packs {','.join(routed)}: {routed_cost} tokens vs {total} for all packs "
          f"({100 * (1 - routed_cost / total):.0f}% saved on every model call)")
    lc = langchain_view_tokens(["core"])
    if lc is not None:
        print(f"core as LangChain sends it (convert_to_openai_tool): {lc} tokens (ours: {tools_cost(core)})")
    print("\npeers (o200k, same view)")
    for name, n, cost in PEERS:
        print(f"{name:18} {n:3d} tools {cost:6d} tokens {cost / n:6.0f}/tool")
    per_row = list_tokens_per_row()
    print(f"\nlist results: {per_row:.1f} tokens per row for 20 deals with the default columns, names of the "
          f"responsible user, company and stage included (budget: 40)")
    return {"core_tokens": tools_cost(core), "core_per_tool": tools_cost(core) / len(core), "all_tokens": total,
            "all_per_tool": total / len(everything), "routed_tokens": routed_cost, "list_tokens_per_row": per_row}


def list_tokens_per_row() -> float:
    """What b24_crm_list sends the model for 20 deals (a table with names), in o200k tokens per row."""
    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.sandbox import Portal
    from bitrix24_agent_tools.tokens import count_tokens
    from bitrix24_agent_tools.toolbox import Toolbox

    portal = Portal(seed=1, deals=40)
    out = Toolbox(Bitrix24(portal.webhook_url, transport=portal.transport())).run("b24_crm_list",
                                                                                  {"entity": "deal", "limit": 20})
    return count_tokens(out.content) / 20


if __name__ == "__main__":
    main()
