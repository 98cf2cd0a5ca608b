"""`b24-agent-tools demo`: an agent works a sandbox portal on loopback, with a person approving every write.

Runs offline with no API key: a scripted chat model stands in for the LLM and decides each step from the tool
results it reads back, so the run shows the real path — router → LangChain agent → guard (LangGraph interrupt
for every write) → client → HTTP → sandbox portal.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

REQUEST = (
    "The Acme Logistics deal is signed: move it to WON, note it in the deal's timeline, "
    "create a kick-off task for its manager and tell them in chat."
)


def _scripted_model() -> Any:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    from bitrix24_agent_tools.packs.render import rows_of

    class ScriptedModel(BaseChatModel):
        """Plays the LLM: picks the next tool call from what the tools have returned so far. Like a real model
        with deferred tools, it loads a tool it was not offered with ``b24_load_pack`` before calling it."""

        offered: list[str] = []  # noqa: RUF012 - a pydantic field (copied per bind), not a shared class list

        @property
        def _llm_type(self) -> str:
            return "scripted-demo"

        def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
            names = [
                getattr(t, "name", None) or (t.get("name") if isinstance(t, dict) else None) for t in tools
            ]
            return self.model_copy(update={"offered": [n for n in names if n]})

        def _generate(
            self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> ChatResult:
            results = [m for m in messages if isinstance(m, ToolMessage) and m.name != "b24_load_pack"]
            step = len(results)
            deal: dict[str, Any] = {}
            for m in results:
                try:
                    body = json.loads(str(m.content))
                except ValueError:
                    continue
                rows = rows_of(body) if isinstance(body, dict) else []
                if rows and "TITLE" in rows[0]:
                    deal = rows[0]
            calls: list[tuple[str, dict[str, Any]]] = [
                (
                    "b24_crm_list",
                    {"entity": "deals", "filter": {"%TITLE": "Acme Logistics"}},
                ),  # a typo a model makes
                ("b24_crm_list", {"entity": "deal", "filter": {"%TITLE": "Acme Logistics"}, "limit": 3}),
                ("b24_deal_move", {"id": int(deal.get("ID", 0) or 1), "stage_id": "WON"}),
                (
                    "b24_crm_comment",
                    {
                        "entity": "deal",
                        "id": int(deal.get("ID", 0) or 1),
                        "text": "Contract signed; moved to WON.",
                    },
                ),
                (
                    "b24_task_create",
                    {
                        "title": "Kick-off call: Acme Logistics",
                        "responsible_id": int(deal.get("ASSIGNED_BY_ID", 1) or 1),
                        "deadline": (date.today() + timedelta(days=3)).isoformat(),
                    },
                ),
                (
                    "b24_chat_send",
                    {
                        "dialog_id": str(deal.get("ASSIGNED_BY_ID", 1)),
                        "message": f"Deal #{deal.get('ID')} is WON. Kick-off task created for you.",
                    },
                ),
            ]
            if step < len(calls):
                name, args = calls[step]
                if self.offered and name not in self.offered and "b24_load_pack" in self.offered:
                    name, args = "b24_load_pack", {"pack": name}
                message = AIMessage(
                    content="",
                    tool_calls=[
                        {"name": name, "args": args, "id": f"call_{len(messages)}", "type": "tool_call"}
                    ],
                )
            else:  # report what actually happened, from the tools' answers
                jobs = ["moved the deal to WON", "commented on it", "set a kick-off task", "told the manager"]
                outcome = results[2:6]
                done = [
                    job
                    for job, m in zip(jobs, outcome, strict=False)
                    if getattr(m, "status", "success") != "error"
                    and not str(m.content).startswith(("rejected", "invalid", "refused", "tool "))
                    and "refused" not in str(m.content)
                ]
                skipped = [job for job in jobs if job not in done]
                text = f"Deal #{deal.get('ID')}: " + (", ".join(done) or "nothing done")
                if skipped:
                    text += "; not done: " + ", ".join(skipped)
                message = AIMessage(content=text + ".")
            return ChatResult(generations=[ChatGeneration(message=message)])

    return ScriptedModel()


def run_demo(
    *,
    seed: int = 7,
    answer: Callable[[dict[str, Any]], Any] | None = None,
    out: Callable[[str], None] = print,
    model: str | None = None,
    portal_url: str | None = None,
) -> dict[str, Any]:
    """Run the whole demo; returns figures for tests. ``answer`` plays the person (default: ask on a TTY, else
    auto-approve and say so; the chat message gets an edit so the edit path shows). ``model``
    ("provider:name") swaps the scripted model for a real one via ``init_chat_model`` (its API key must be in
    the environment)."""
    import contextlib

    from langchain.agents import create_agent
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import Command

    from bitrix24_agent_tools.client import Bitrix24
    from bitrix24_agent_tools.guard import Guard, Policy
    from bitrix24_agent_tools.integrations.langchain import (
        Bitrix24Toolkit,
        InterruptConfirmer,
        pack_routing_middleware,
    )
    from bitrix24_agent_tools.masking import mask_url
    from bitrix24_agent_tools.packs import PACKS, specs_for
    from bitrix24_agent_tools.router import route
    from bitrix24_agent_tools.sandbox import Portal
    from bitrix24_agent_tools.selection import _cost as shipped_cost  # the shipped table: no tokenizer
    from bitrix24_agent_tools.selection import select_tools

    portal = Portal(seed=seed, deals=40, rate_limit="standard")
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if portal_url:  # a real portal: every write is still confirmed by a person
            client = stack.enter_context(Bitrix24(portal_url))
            out(f"portal {mask_url(portal_url)} (real: each write asks you first)")
        else:
            server = stack.enter_context(portal.serve())
            client = stack.enter_context(Bitrix24(server.webhook_url))
            out(f"sandbox portal on {server.url}  (webhook {mask_url(server.webhook_url)})")
        decision = route(REQUEST)
        first = select_tools(REQUEST)
        every_tool = [s.name for s in specs_for(PACKS)]
        routed = sum(shipped_cost(n) for n in first.tools)
        everything = sum(shipped_cost(n) for n in every_tool)
        out(f"request: {REQUEST}")
        out(f"router: packs {', '.join(decision.packs)} ({decision.reason})")
        out(
            f"first model call: {routed} o200k tokens for {', '.join(first.tools)} "
            f"(every pack one b24_load_pack away; all 12 packs at once would cost {everything})"
        )
        guard = Guard(Policy.writer(), InterruptConfirmer())
        toolkit = Bitrix24Toolkit.create(client, packs=tuple(PACKS), guard=guard, loader=True)
        if model:
            from langchain.chat_models import init_chat_model

            chat = init_chat_model(model)
            out(f"model: {model}")
        else:
            chat = _scripted_model()
            out("model: scripted (plays the LLM offline; pass --model provider:name for a real one)")
        agent = create_agent(
            chat,
            toolkit.get_tools(),
            middleware=[pack_routing_middleware(toolkit)],
            checkpointer=InMemorySaver(),
        )
        config: dict[str, Any] = {"configurable": {"thread_id": "demo"}}
        person = answer or _default_person(out, real_portal=bool(portal_url))
        shown = 1  # the user's message

        def trace(messages: list[Any]) -> int:
            """Print the agent's steps not printed yet, in order (before the person is asked about the next
            one)."""
            for message in messages[shown:]:
                kind = type(message).__name__
                if kind == "AIMessage" and message.tool_calls:
                    for call in message.tool_calls:
                        out(f"  agent → {call['name']} {json.dumps(call['args'], ensure_ascii=False)}")
                elif kind == "ToolMessage":
                    out(f"  tool  ← {str(message.content)[:160]}")
                elif kind == "AIMessage":
                    out(f"  agent: {message.content}")
            return len(messages)

        result = agent.invoke({"messages": [{"role": "user", "content": REQUEST}]}, config)  # type: ignore[call-overload]
        asked = 0
        while result.get("__interrupt__"):
            shown = trace(agent.get_state(config).values.get("messages", []))  # type: ignore[arg-type]
            request = result["__interrupt__"][0].value["bitrix24_confirmation"]
            asked += 1
            # The answer names the request it is for: an answer can never be spent on another write.
            result = agent.invoke(Command(resume={request["request_id"]: person(request)}), config)  # type: ignore[call-overload]
        shown = trace(result["messages"])
        audit = guard.audit.rows()
        out("audit trail:")
        for row in audit:
            out(
                f"  {row.method:24} {row.risk:11} {row.decision:9} {row.status:7} by {row.approved_by or '-'}"
            )
        writes = [r for r in audit if r.risk != "read" and r.status == "ok"]
        out(
            f"audit: {len(audit)} rows, {len(writes)} confirmed writes, {asked} confirmations asked; "
            f"HTTP requests to the portal: {len([r for r in portal.requests if r.method])}; "
            f"{time.perf_counter() - started:.2f}s"
        )
        deal_id = next(
            (int(r.params["id"]) for r in audit if r.method == "crm.deal.update" and r.status == "ok"), None
        )
        deal = client.call("crm.deal.get", {"id": deal_id}).result if deal_id else None
        return {
            "packs": decision.packs,
            "routed_tokens": routed,
            "all_tokens": everything,
            "asked": asked,
            "writes": len(writes),
            "deal": deal,
            "final": result["messages"][-1].content,
        }


def _default_person(out: Callable[[str], None], real_portal: bool = False) -> Callable[[dict[str, Any]], Any]:
    import sys

    def person(request: dict[str, Any]) -> Any:
        out(f"  person asked [{request['risk']}]: {request['summary']}")
        if sys.stdin.isatty():
            answer = input("  approve? [y]es / [n]o: ").strip().lower()
            return (
                {"approve": True, "by": "you"}
                if answer in ("y", "yes", "да")
                else {"reject": "declined at the demo prompt"}
            )
        if real_portal:  # no person at a terminal and a real portal: nobody may approve on their behalf
            out(
                "  person: none at a terminal — refused (a real portal is never written without a person's "
                "yes)"
            )
            return {
                "reject": "no person at a terminal to approve a write to a real portal",
                "by": "demo (no TTY)",
            }
        extra = " Please call the client today."
        if request["method"] == "im.message.add" and not request["params"]["MESSAGE"].endswith(extra):
            edited = {
                **request["params"],
                "MESSAGE": request["params"]["MESSAGE"] + extra,
            }
            out(
                f"  person: approve with an edit → MESSAGE = {edited['MESSAGE']} (shown again before it runs)"
            )
            return {"edit": edited, "by": "demo-user"}
        out("  person: approve (auto-approved: no TTY to ask at)")
        return {"approve": True, "by": "auto (no TTY)"}

    return person


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run an agent against a sandbox portal (offline, no API key)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", help="provider:name of a real chat model (its API key in the environment)")
    parser.add_argument(
        "--portal",
        metavar="WEBHOOK_URL",
        help="a real portal instead of the sandbox (writes still confirmed)",
    )
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    import importlib.util
    import sys

    needed = ("langchain", "langgraph") if args.portal else ("langchain", "langgraph", "bitrix24_sandbox")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        print(
            "the demo runs a LangChain agent on a sandbox portal: "
            "pip install 'bitrix24-agent-tools[langchain,sandbox]' "
            f"(missing: {', '.join(missing)})",
            file=sys.stderr,
        )
        return 2
    figures = run_demo(seed=args.seed, model=args.model, portal_url=args.portal)
    return 0 if figures["deal"] and figures["deal"]["STAGE_ID"] == "WON" else 1
