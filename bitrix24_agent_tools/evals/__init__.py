"""A shipped eval: everyday jobs across the twelve packs in six languages, each run by a chat model through a
LangChain agent on a fresh seeded sandbox and graded against the sandbox's final state.

    b24-agent-tools eval --model openai:gpt-4.1-mini        # any LangChain chat model ("provider:name")
    b24-agent-tools eval                                     # the public scripted model (no network)

The agent sees what a model sees in production: the first call carries the tools the request points to and
``b24_load_pack`` (``pack_routing_middleware``, 400-token budget), the person approves every write (the eval
counts what changed). Each job says what it may change; a change anywhere else is a *silent write*. A job is
*done* when every check holds and nothing else changed, *partial* when some checks hold, *failed* otherwise.

The scripted model plays each job's script (``jobs.toml``): its figures test the tools, the routing and the
grading — the plumbing a model relies on — not a model's judgment. Run a real model to compare models on
these jobs, or write your own jobs file (``--jobs``) for your portal's everyday work.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["JobResult", "Report", "grade", "load_jobs", "run", "run_job", "scripted_model"]

LANGUAGES = ("en", "ru", "pt", "es", "de", "pl")
_TEMPLATE = re.compile(r"\{\{(\d+)(?:\.([\w.]+))?\}\}")


def load_jobs(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The jobs of a TOML file (default: the shipped ``jobs.toml``)."""
    from bitrix24_agent_tools.vocabulary import parse_toml

    text = (
        Path(path).read_text(encoding="utf-8")
        if path
        else resources.files(__name__).joinpath("jobs.toml").read_text(encoding="utf-8")
    )
    jobs = list(parse_toml(text).get("job", []))
    seen: set[str] = set()
    for job in jobs:
        missing = [k for k in ("id", "pack", "lang", "prompt") if k not in job]
        if missing or job["id"] in seen:
            raise ValueError(f"job {job.get('id', '?')}: missing {missing} or a repeated id")
        seen.add(job["id"])
    return jobs


# --- grading ------------------------------------------------------------------------------------------------


def _snapshot(state: Mapping[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in state.items() if isinstance(v, dict)})


def _changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """(table, row key, added) of every row added, changed or removed."""
    out = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name) or {}, after.get(name) or {}
        out += [(name, str(k), k not in old) for k in set(old) | set(new) if old.get(k) != new.get(k)]
    return out


def _allowed(change: tuple[str, str, bool], allowed: Iterable[str]) -> bool:
    """Whether a job may make a change: ``table`` (any row), ``table:new`` (rows it adds), ``table:<key>``."""
    table, key, added = change
    return any(a == table or a == f"{table}:{key}" or (a == f"{table}:new" and added) for a in allowed)


def _holds(check: Mapping[str, Any], state: Mapping[str, Any], answer: str) -> bool:
    """One check: ``answer_contains`` (the final answer names a fact), or a row of ``table`` matching
    ``where`` whose ``field`` ``equals`` / ``contains`` a value; ``absent = true`` asks that no row
    matches."""
    if "answer_contains" in check:
        wanted = check["answer_contains"]
        options = wanted if isinstance(wanted, list) else [wanted]
        return any(str(o).casefold() in answer.casefold() for o in options)
    rows = (state.get(check["table"]) or {}).values()
    where = check.get("where") or {}
    matching = [
        r for r in rows if isinstance(r, Mapping) and all(str(r.get(k)) == str(v) for k, v in where.items())
    ]
    if "field" in check:
        name = check["field"]
        if "equals" in check:
            matching = [r for r in matching if str(r.get(name)) == str(check["equals"])]
        if "contains" in check:
            matching = [
                r for r in matching if str(check["contains"]).casefold() in str(r.get(name)).casefold()
            ]
    return not matching if check.get("absent") else bool(matching)


def grade(
    job: Mapping[str, Any], before: Mapping[str, Any], after: Mapping[str, Any], answer: str
) -> tuple[str, int]:
    """(outcome, silent writes) for a job's final state."""
    checks = list(job.get("check") or [])
    held = sum(_holds(c, after, answer) for c in checks)
    allowed = list(job.get("changes") or [])
    silent = sum(1 for change in _changed(before, after) if not _allowed(change, allowed))
    if checks and held == len(checks) and not silent:
        return "done", silent
    return ("partial" if held else "failed"), silent


# --- the scripted model -------------------------------------------------------------------------------------


def _value(result: Any, path: str) -> Any:
    """``path`` in a tool result: a key of its first row (a list result), or a dotted path in it."""
    from bitrix24_agent_tools.packs.render import rows_of

    if not path:
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
    if path == "count" and isinstance(result, dict) and "count" in result:
        return result["count"]
    if isinstance(result, dict) and ("columns" in result or "items" in result):
        rows = rows_of(result)
        parts = path.split(".")
        index = int(parts[0]) if parts[0].isdigit() else 0
        rest = parts[1:] if parts[0].isdigit() else parts
        value: Any = rows[index] if index < len(rows) else {}
    else:
        value, rest = result, path.split(".")
    for part in rest:
        value = value[int(part)] if isinstance(value, list) else (value or {}).get(part)
    return value


def _fill(value: Any, results: Sequence[Any]) -> Any:
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value)
        if whole:
            return _value(results[int(whole.group(1))], whole.group(2))
        return _TEMPLATE.sub(lambda m: str(_value(results[int(m.group(1))], m.group(2))), value)
    if isinstance(value, dict):
        return {k: _fill(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, results) for v in value]
    return value


def scripted_model(script: Sequence[Any]) -> Any:
    """A LangChain chat model that plays a job's script (``testing.ScriptedChatModel``): each turn a list of
    ``[tool, args]`` calls (``{{N.key}}`` in an argument is ``key`` of the first row of the N-th tool result),
    the last a final answer. A scripted tool the agent has not been offered yet is loaded first with
    ``b24_load_pack`` (counted like any call)."""
    from bitrix24_agent_tools.testing import ScriptedChatModel

    def step(turn: Any) -> Callable[[list[Any]], Any]:
        if isinstance(turn, str):
            return lambda results: str(_fill(turn, results))
        return lambda results: [(str(name), _fill(dict(args), results)) for name, args in turn]

    return ScriptedChatModel([step(t) for t in script], load_missing=True)


# --- running ------------------------------------------------------------------------------------------------


@dataclass
class JobResult:
    id: str
    pack: str
    lang: str
    outcome: str
    calls: int
    loads: int
    first_call_tokens: int
    silent: int
    seconds: float
    answer: str = ""
    error: str = ""


@dataclass
class Report:
    model: str
    results: list[JobResult] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: sum(r.outcome == k for r in self.results) for k in ("done", "partial", "failed")}

    def summary(self) -> dict[str, Any]:
        n = len(self.results) or 1
        return {
            "model": self.model,
            "jobs": len(self.results),
            **self.counts(),
            "calls_per_job": round(sum(r.calls for r in self.results) / n, 2),
            "loader_calls": sum(r.loads for r in self.results),
            "first_call_tokens_mean": round(sum(r.first_call_tokens for r in self.results) / n, 1),
            "first_call_tokens_max": max((r.first_call_tokens for r in self.results), default=0),
            "silent_writes": sum(r.silent for r in self.results),
            "packs": len({r.pack for r in self.results}),
            "languages": len({r.lang for r in self.results}),
        }

    def table(self) -> str:
        lines = [f"{'job':34} {'lang':4} {'outcome':8} {'calls':>5} {'first':>5} {'silent':>6}"]
        for r in self.results:
            lines.append(
                f"{r.id:34} {r.lang:4} {r.outcome:8} {r.calls:>5} {r.first_call_tokens:>5} {r.silent:>6}"
                + (f"  {r.error[:60]}" if r.error else "")
            )
        s = self.summary()
        lines.append(
            f"{s['model']}: {s['jobs']} jobs in {s['packs']} packs and {s['languages']} languages — "
            f"done {s['done']}, partial {s['partial']}, failed {s['failed']}; "
            f"{s['calls_per_job']} tool calls per job ({s['loader_calls']} loader calls); "
            f"first call {s['first_call_tokens_mean']} tokens on average, "
            f"{s['first_call_tokens_max']} at most; "
            f"{s['silent_writes']} silent writes"
        )
        return "\n".join(lines)


def run_job(job: Mapping[str, Any], model: Any, *, budget: int = 400, recursion_limit: int = 40) -> JobResult:
    """One job on a fresh sandbox (seed 0), through a LangChain agent with pack routing."""
    from langchain.agents import create_agent
    from langchain_core.messages import AIMessage, ToolMessage

    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.confirmers import AutoConfirmer
    from bitrix24_agent_tools.guard import Guard, Policy
    from bitrix24_agent_tools.integrations.langchain import Bitrix24Toolkit, pack_routing_middleware
    from bitrix24_agent_tools.packs import PACKS
    from bitrix24_agent_tools.packs.loader import LOADER
    from bitrix24_agent_tools.sandbox import Portal
    from bitrix24_agent_tools.selection import _cost, select_tools
    from bitrix24_agent_tools.toolbox import Toolbox

    started = time.perf_counter()
    portal = Portal(seed=0)
    with tempfile.TemporaryDirectory(prefix="b24-eval-") as files:
        for name, text in (job.get("files") or {}).items():
            Path(files, name).write_text(str(text), encoding="utf-8")
        # An installed application (OAuth), as a team deployment runs: app-only methods (app storage,
        # e-signature) answer as on a portal.
        app = portal.register_app()
        client = Bitrix24(portal.app_auth(app, portal.install_app(app)), transport=portal.transport())
        toolbox = Toolbox(
            client,
            packs=tuple(PACKS),
            guard=Guard(Policy.admin(), AutoConfirmer(destructive=True)),
            loader=True,
            files_dir=files,
        )
        toolkit = Bitrix24Toolkit(toolbox=toolbox)
        agent = create_agent(
            model, toolkit.get_tools(), middleware=[pack_routing_middleware(toolkit, budget)]
        )
        before = _snapshot(portal.state)
        error, messages = "", []
        try:
            out = agent.invoke(
                {"messages": [("user", str(job["prompt"]))]}, {"recursion_limit": recursion_limit}
            )
            messages = list(out.get("messages", []))
        except Exception as exc:  # a model that loops or errors fails its job; the run goes on
            error = f"{type(exc).__name__}: {exc}"
        after = _snapshot(portal.state)
        if job.get("local_check"):  # a file the job writes locally
            name = str(job["local_check"]["file"])
            local = Path(files, name)
            answer_extra = (
                f" [local {name}: {local.read_text(errors='replace')[:200]}]" if local.exists() else ""
            )
        else:
            answer_extra = ""
        client.close()
    calls = [c for m in messages if isinstance(m, AIMessage) for c in m.tool_calls]
    answer = next((str(m.content) for m in reversed(messages) if isinstance(m, AIMessage) and m.content), "")
    outcome, silent = grade(job, before, after, answer + answer_extra)
    first = select_tools(str(job["prompt"]), budget).tools  # what pack_routing_middleware offers first
    errors = [str(m.content)[:120] for m in messages if isinstance(m, ToolMessage) and m.status == "error"]
    return JobResult(
        id=str(job["id"]),
        pack=str(job["pack"]),
        lang=str(job["lang"]),
        outcome="failed" if error and outcome == "done" else outcome,
        calls=len(calls),
        loads=sum(1 for c in calls if c["name"] == LOADER),
        first_call_tokens=sum(_cost(n) for n in first),  # the shipped cost table: no tokenizer needed
        silent=silent,
        seconds=round(time.perf_counter() - started, 2),
        answer=answer[:300],
        error=error or ("; ".join(errors)[:200] if outcome != "done" else ""),
    )


def run(
    jobs: Iterable[Mapping[str, Any]],
    model: Callable[[Mapping[str, Any]], Any] | Any | None = None,
    *,
    name: str = "scripted",
    budget: int = 400,
) -> Report:
    """Every job; ``model`` is a chat model, a function of the job that makes one, or None (the scripted
    model, playing each job's script)."""
    report = Report(model=name)
    for job in jobs:
        if model is None:
            chat = scripted_model(job.get("script") or ["I cannot do this job."])
        elif callable(model) and not hasattr(model, "invoke"):
            chat = model(job)
        else:
            chat = model
        report.results.append(run_job(job, chat, budget=budget))
    return report
