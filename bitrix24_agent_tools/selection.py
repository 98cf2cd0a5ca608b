"""The tools a request's first model call needs, below the pack level, within a token budget.

The pack router (``router.route``) says which packs a request touches; this module picks, inside them, the few
tools the request's verbs and nouns point to (list or create, deal or task, upload, book...). Every other tool
stays one call away behind ``b24_load_pack``. When nothing in the request points to a tool, the selection is
the loader and the most general read of each routed pack: a guess costs a loader call, not the whole core
pack.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

from bitrix24_agent_tools import vocabulary
from bitrix24_agent_tools.packs.loader import tool_packs
from bitrix24_agent_tools.router import longest_matches, normalize, route, stem_pattern

DEFAULT_BUDGET = 400  # o200k tokens of tool schemas in the first model call (issue: deferred packs)
_DATA = vocabulary.load("selection")

# What a request does: verbs (and a few nouns) in the six router languages. A word matches a stem it starts
# with.
ACTIONS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _DATA["actions"].items()}
# Which records a request is about.
ENTITIES: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _DATA["entities"].items()}
# (entity, action) → the core tool that does it; an entity without an action is listed.
CORE: dict[tuple[str, str], str] = {
    (entity, action): tool for entity, tools in _DATA["core"].items() for action, tool in tools.items()
}
# The typed tools of the other packs, by what a request says; a routed pack none of whose tools is named gets
# its generic call.
TYPED: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _DATA["typed"].items()}


# Tools added, in this order, while the budget allows: the reads most everyday jobs make on the way.
FILL = tuple(_DATA["fill"]["tools"])
# The other packs: their verbs, the things they act on, and the tools each (thing, verb) pair names ("_": the
# thing named with no verb of its own), so "close the sprint" is not "add to the sprint".
PACK_ACTIONS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _DATA["pack_actions"].items()}
OBJECTS: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in _DATA["objects"].items()}
PACK_TOOLS: dict[tuple[str, str], tuple[str, ...]] = {
    (thing, action): tuple(tools) for thing, by in _DATA["pack_tools"].items() for action, tools in by.items()
}


@dataclass(frozen=True)
class Selection:
    """The first model call's tools: what the request points to, and the loader for everything else."""

    tools: tuple[str, ...]
    packs: tuple[str, ...]
    confident: bool
    reason: str


@lru_cache(maxsize=1)
def _patterns() -> dict[str, list[tuple[str, str, re.Pattern[str]]]]:
    def compile_all(table: dict[str, tuple[str, ...]]) -> list[tuple[str, str, re.Pattern[str]]]:
        return [
            (key, stem, pattern)
            for key, stems in table.items()
            for stem in stems
            if (pattern := stem_pattern(stem)) is not None
        ]

    return {
        "action": compile_all(ACTIONS),
        "entity": compile_all(ENTITIES),
        "typed": compile_all(TYPED),
        "pack_action": compile_all(PACK_ACTIONS),
        "object": compile_all(OBJECTS),
    }


def _hits(kind: str, text: str) -> list[tuple[int, str]]:
    """(position, key) of every stem of ``kind`` in ``text``, in order; a longer match hides shorter ones
    in it."""
    return sorted((at, key) for at, key, _ in longest_matches(text, _patterns()[kind]))


def _numbered(text: str, at: int) -> bool:
    """Whether the record word at ``at`` is followed by its number ("deal 12", "сделку #12", "task no. 7")."""
    return re.match(r"[\w-]*\s*(?:#|no\.?|№|nr\.?)?\s*\d+", text[at:]) is not None


@lru_cache(maxsize=1)
def _costs() -> dict[str, int]:
    from bitrix24_agent_tools.tokens import COSTS

    try:
        return {str(k): int(v) for k, v in json.loads(COSTS.read_text()).items()}
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=128)
def _cost(name: str) -> int:
    """A tool's schema cost in o200k tokens, from the shipped table (no tokenizer needed); a tool the table
    does not know is over-estimated from its characters (three a token)."""
    if name in _costs():
        return _costs()[name]
    from bitrix24_agent_tools.packs import PACKS
    from bitrix24_agent_tools.packs.loader import loader_spec
    from bitrix24_agent_tools.tokens import tool_view

    spec = (
        loader_spec()
        if name == "b24_load_pack"
        else next(s for p in PACKS.values() for s in p.specs if s.name == name)
    )
    return len(json.dumps(tool_view(spec), ensure_ascii=False)) // 3 + 1


def _pack_tools(
    verbs: list[tuple[int, str]], things: list[tuple[int, str]], names: set[str]
) -> list[tuple[int, str]]:
    """The tools of one pack a request names: each verb with the thing it acts on (the next one within a few
    words, else the nearest), then each thing no verb took by its own tools."""
    mine = [
        (at, t)
        for at, t in things
        if any(x in names for (o, _), xs in PACK_TOOLS.items() if o == t for x in xs)
    ]
    out: list[tuple[int, str]] = []
    taken: set[int] = set()
    for at, verb in verbs:
        fits = [(oat, o) for oat, o in mine if (o, verb) in PACK_TOOLS]
        after = [f for f in fits if 0 <= f[0] - at <= 40]
        near = after[0] if after else min(fits, key=lambda f: abs(f[0] - at), default=None)
        if near is not None:
            out += [(min(at, near[0]), t) for t in PACK_TOOLS[(near[1], verb)] if t in names]
            taken.add(near[0])
    for at, thing in mine:
        if at not in taken:
            out += [(at, t) for t in PACK_TOOLS.get((thing, "_"), ()) if t in names]
    return out


def select_tools(text: str, budget: int = DEFAULT_BUDGET) -> Selection:
    """The tools for the first model call on ``text``: at most ``budget`` tokens of schemas, the loader
    included."""
    from bitrix24_agent_tools.packs import PACKS

    decision = route(text)
    clean = normalize(text)
    actions, entities, typed = _hits("action", clean), _hits("entity", clean), _hits("typed", clean)
    # Each action goes with the record mentioned nearest to it ("move it to WON, create a task": move→deal,
    # create→task); a record no action goes with is looked up (listed).
    wanted: list[tuple[int, str]] = []
    paired: set[int] = set()
    for at, action in actions:
        if action == "convert":
            wanted.append((at, "b24_lead_convert"))
            continue
        # the object of a verb mostly follows it ("create a task for its manager"); else the nearest one
        # before
        fits = [e for e in entities if (e[1], action) in CORE]  # only records this action can apply to
        after = [e for e in fits if 0 <= e[0] - at <= 40]
        near = after[0] if after else min(fits, key=lambda e: abs(e[0] - at), default=None)
        if near is not None and (near[1], action) in CORE:
            wanted.append((min(at, near[0]), CORE[(near[1], action)]))
            if _numbered(
                clean, near[0]
            ):  # "deal 12": the action has its ID; "the Acme deal" must be found first
                paired.add(near[0])
        elif action == "fields":
            wanted.append((at, "b24_crm_fields"))
    wanted.extend((at, CORE[(entity, "list")]) for at, entity in entities if at not in paired)
    if (
        wanted
        and any(a in ("create", "update") for _, a in actions)
        and all(e != "user" for _, e in entities)
    ):
        wanted.append((len(clean), "b24_user_find"))  # a person's name must become an ID
    verbs, things = _hits("pack_action", clean), _hits("object", clean)
    for pack in decision.packs:
        if pack == "core":
            continue
        names = {s.name for s in PACKS[pack].specs}
        chosen = _pack_tools(verbs, things, names)
        named = chosen or [(at, t) for at, t in typed if t in names]
        wanted.extend(named or [(len(clean) + 1, f"b24_{pack}_call")])
    wanted.sort()
    confident = bool(wanted)
    if not wanted:  # nothing points to a tool: the most general read, and the loader for the rest
        wanted = [(0, "b24_crm_list")]
    # What is left of the budget goes to the tools most jobs use next (finding a record, a person, a task by
    # name), so fewer jobs need a loader call.
    wanted.extend((len(clean) + 2, name) for name in FILL)
    tools: list[str] = []
    spent = _cost("b24_load_pack")
    for name in dict.fromkeys(name for _, name in wanted):
        if spent + _cost(name) <= budget:
            tools.append(name)
            spent += _cost(name)
    reason = (
        f"packs {', '.join(decision.packs)}; actions {', '.join(a for _, a in actions) or '-'}; "
        f"records {', '.join(e for _, e in entities) or '-'}; {spent} tokens with the loader"
    )
    packs = tuple(dict.fromkeys(tool_packs()[t] for t in tools))
    return Selection((*tools, "b24_load_pack"), packs, confident, reason)
