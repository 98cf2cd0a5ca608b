"""Tool-schema token cost per pack (o200k_base and cl100k_base), next to the peers' published figures.

python -m benchmarks.tokens
"""

from __future__ import annotations

import json

from bitrix24_agent_tools.demo import REQUEST
from bitrix24_agent_tools.packs import PACKS, specs_for
from bitrix24_agent_tools.router import route
from bitrix24_agent_tools.tokens import count_tokens, tools_cost

PEERS = [  # o200k tokens of the same LLM view (name + description + input schema), from issue #4 and #11
    ("mcp-bitrix24", 11, 1393),
    ("bitrix24-mcp", 6, 606),
    ("fast-bitrix24-mcp", 28, 9369),
    ("mcp-b24", 43, 32690),
]


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
    return sum(
        count_tokens(json.dumps(convert_to_openai_tool(t)["function"], separators=(",", ":")))
        for t in toolkit.get_tools()
    )


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
    print(
        f"{'all 12 packs':12} {len(everything):5d} {total:6d} {tools_cost(everything, 'cl100k_base'):7d} "
        f"{total / len(everything):10.0f}"
    )
    routed = route(REQUEST).packs
    routed_cost = tools_cost(specs_for(routed))
    print(
        f"\nrouted request -> packs {','.join(routed)}: {routed_cost} tokens vs {total} for all packs "
        f"({100 * (1 - routed_cost / total):.0f}% saved on every model call)"
    )
    lc = langchain_view_tokens(["core"])
    if lc is not None:
        print(f"core as LangChain sends it (convert_to_openai_tool): {lc} tokens (ours: {tools_cost(core)})")
    print("\npeers (o200k, same view)")
    for name, n, cost in PEERS:
        print(f"{name:18} {n:3d} tools {cost:6d} tokens {cost / n:6.0f}/tool")
    first = first_call_figures()
    print(
        f"\nfirst model call (selection.select_tools, loader included; goal <= 400): demo request "
        f"{first['demo']} tokens; labeled phrases mean {first['mean']:.0f}, worst {first['worst']} "
        f"({first['worst_phrase']!r}); every pack one b24_load_pack away"
    )
    accuracy = router_accuracy()
    print(
        f"router: labeled (tuned on) {accuracy['labeled']:.1%} of {accuracy['labeled_n']}; held-out, never "
        "tuned on: "
        f"A {accuracy['held_out']:.1%} of {accuracy['held_out_n']} (its misses were seen once), "
        f"C {accuracy['held_out_c']:.1%} of {accuracy['held_out_c_n']}, "
        f"E {accuracy['held_out_e']:.1%} of {accuracy['held_out_e_n']} (95.8% on its one run), "
        f"M {accuracy['held_out_m']:.1%} of {accuracy['held_out_m_n']} (95.8% on its one run), "
        f"T {accuracy['held_out_t']:.1%} of {accuracy['held_out_t_n']} (written after the last vocabulary "
        f"change); C, E, M and T together {accuracy['held_out_kept']:.1%} — phrases in six languages "
        "(B, D, F-L and N-S were held out, run once, then looked into: training phrases now)"
    )
    per_row = list_tokens_per_row()
    print(
        f"\nlist results: {per_row:.1f} tokens per row for 20 deals with the default columns, names of the "
        f"responsible user, company and stage included (budget: 40)"
    )
    return {
        "core_tokens": tools_cost(core),
        "core_per_tool": tools_cost(core) / len(core),
        "all_tokens": total,
        "all_per_tool": total / len(everything),
        "routed_tokens": routed_cost,
        "list_tokens_per_row": per_row,
        "first_call_demo": first["demo"],
        "first_call_worst": first["worst"],
        "router_held_out": accuracy["held_out"],
    }


def phrases(name: str) -> list[tuple[str, tuple[str, ...]]]:
    """(phrase, expected packs) rows of tests/<name>.tsv."""
    from pathlib import Path

    from bitrix24_agent_tools.router import ORDER

    rows = []
    for line in (
        (Path(__file__).resolve().parent.parent / "tests" / f"{name}.tsv")
        .read_text(encoding="utf-8")
        .splitlines()
    ):
        if line.strip() and not line.startswith("#"):
            phrase, packs = line.split("\t")
            rows.append((phrase, tuple(p for p in ORDER if p in packs.split(","))))
    return rows


def first_call_figures() -> dict[str, object]:
    """Tokens of the first model call's tools for the demo request and for every labeled phrase."""
    from bitrix24_agent_tools.packs.loader import loader_spec
    from bitrix24_agent_tools.selection import select_tools

    by_name = {s.name: s for s in [*specs_for(PACKS), loader_spec()]}

    def cost(text: str) -> int:
        return tools_cost([by_name[n] for n in select_tools(text).tools])

    texts = [p for name in ("router_phrases", "router_heldout") for p, _ in phrases(name)]
    costs = {t: cost(t) for t in texts}
    worst = max(costs, key=lambda t: costs[t])
    return {
        "demo": cost(REQUEST),
        "mean": sum(costs.values()) / len(costs),
        "worst": costs[worst],
        "worst_phrase": worst,
    }


def router_accuracy() -> dict[str, float]:
    out: dict[str, float] = {}
    for key, name in (
        ("labeled", "router_phrases"),
        ("held_out", "router_heldout"),
        ("held_out_c", "router_heldout_c"),
        ("held_out_e", "router_heldout_e"),
        ("held_out_m", "router_heldout_m"),
        ("held_out_t", "router_heldout_t"),
    ):
        rows = phrases(name)
        out[key] = sum(route(p).packs == want for p, want in rows) / len(rows)
        out[f"{key}_n"] = len(rows)
    splits = ("held_out_c", "held_out_e", "held_out_m", "held_out_t")
    out["held_out_kept"] = sum(out[k] * out[f"{k}_n"] for k in splits) / sum(out[f"{k}_n"] for k in splits)
    return out


def list_tokens_per_row() -> float:
    """What b24_crm_list sends the model for 20 deals (a table with names), in o200k tokens per row."""
    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.sandbox import Portal
    from bitrix24_agent_tools.tokens import count_tokens
    from bitrix24_agent_tools.toolbox import Toolbox

    portal = Portal(seed=1, deals=40)
    out = Toolbox(Bitrix24(portal.webhook_url, transport=portal.transport())).run(
        "b24_crm_list", {"entity": "deal", "limit": 20}
    )
    return count_tokens(out.content) / 20


if __name__ == "__main__":
    main()
