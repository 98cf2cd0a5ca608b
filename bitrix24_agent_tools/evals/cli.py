"""``b24-agent-tools eval``: run the shipped everyday jobs (or your own) with a chat model on the sandbox."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import bitrix24_sandbox  # noqa: F401 — the [sandbox] extra: the jobs run on sandbox portals
import langchain.agents  # noqa: F401 — the [langchain] extra: without it the command says what to install

from bitrix24_agent_tools.evals import LANGUAGES, load_jobs, run


def register(subparsers: Any) -> None:
    ev = subparsers.add_parser(
        "eval", help="run everyday jobs with a chat model on the sandbox and grade the final state"
    )
    ev.add_argument(
        "--model",
        help="a LangChain chat model as provider:name (init_chat_model), e.g. openai:gpt-4.1-mini; "
        "default: the public scripted model (plays each job's script, no network)",
    )
    ev.add_argument("--jobs", help="a jobs file (TOML, same format as the shipped evals/jobs.toml)")
    ev.add_argument("--pack", action="append", help="only jobs of this pack (repeatable)")
    ev.add_argument("--lang", action="append", choices=LANGUAGES, help="only jobs in this language")
    ev.add_argument("--budget", type=int, default=400, help="first-call tool budget in tokens (default 400)")
    ev.add_argument("--json", action="store_true", help="print the report as JSON")
    ev.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    jobs = [
        j
        for j in load_jobs(args.jobs)
        if (not args.pack or j["pack"] in args.pack) and (not args.lang or j["lang"] in args.lang)
    ]
    if not jobs:
        print("no job matches", file=sys.stderr)
        return 2
    model: Any = None
    if args.model:
        from langchain.chat_models import init_chat_model

        model = init_chat_model(args.model)
    report = run(jobs, model, name=args.model or "scripted", budget=args.budget)
    if args.json:
        print(
            json.dumps(
                {"summary": report.summary(), "jobs": [vars(r) for r in report.results]}, ensure_ascii=False
            )
        )
    else:
        print(report.table())
    return 0 if report.counts()["done"] == len(report.results) else 1
