"""`b24-agent-tools`: call a method through the guard, run a stored plan, list packs, route text, and the
subcommands."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from bitrix24_agent_tools.masking import mask_text

# Subcommand module → (command, the extra it needs). A module is imported only to register its parser.
_SUBCOMMAND_MODULES = {
    "bitrix24_agent_tools.demo": ("demo", "langgraph"),
    "bitrix24_agent_tools.sandbox.cli": ("sandbox", "sandbox"),
    "bitrix24_agent_tools.events.cli": ("worker", "postgres"),
    "bitrix24_agent_tools.integrations.mcp": ("mcp", "mcp"),
    "bitrix24_agent_tools.evals.cli": ("eval", "langchain,sandbox"),
}


def _client(args: argparse.Namespace) -> Any:
    from bitrix24_agent_tools.client import Bitrix24

    if args.webhook:
        return Bitrix24(args.webhook, verify=not args.insecure)
    return Bitrix24.from_env(verify=not args.insecure)


def _confirmer(args: argparse.Namespace) -> Any:
    """Who answers for a write on the command line: the flag, a person at the terminal, or nobody."""
    from bitrix24_agent_tools.confirmers import TerminalConfirmer
    from bitrix24_agent_tools.guard import Decision

    if args.confirm_write:  # the person typing the flag is the confirmation; they see what they approve

        def confirm(request: Any) -> Any:
            print(f"[{request.risk}] {request.summary}\n  approved by --confirm-write", file=sys.stderr)
            return Decision.approve(by="cli --confirm-write")

        return confirm
    if sys.stdin.isatty():
        return TerminalConfirmer()
    return None  # no person to ask: writes are refused with a message saying so


def _guard(args: argparse.Namespace) -> Any:
    from bitrix24_agent_tools.guard import Policy
    from bitrix24_agent_tools.settings import Settings
    from bitrix24_agent_tools.stores import SqliteAuditStore, SqlitePlanStore, state_path

    policy = Policy.admin() if args.allow_destructive else Policy.writer()
    confirm = _confirmer(args)

    extra: dict[str, Any] = {"allow": tuple(args.allow or ())}
    if args.audit:
        extra["audit"] = SqliteAuditStore(args.audit)
    settings = Settings.from_env()
    if not settings.redis_url:
        extra["plans"] = SqlitePlanStore(args.plans or state_path("plans.sqlite3"))
    return settings.guard(confirm, policy, **extra)


def _cmd_call(args: argparse.Namespace) -> int:
    from bitrix24_agent_tools.toolbox import Toolbox

    packs = tuple(p.strip() for p in args.packs.split(",") if p.strip())
    if args.show_plan:  # what the plan would do, without running, approving or using it up
        from bitrix24_agent_tools.stores import PlanError

        guard = _guard(args)
        client = _client(args)
        try:
            plan = guard.show_plan(args.show_plan, tenant=client.portal)
        except PlanError as exc:
            print(mask_text(str(exc)), file=sys.stderr)
            return 1
        print(mask_text(f"plan {plan.id} ({plan.risk}, made by {plan.tool}):\n{plan.summary}"))
        return 0
    box = Toolbox(_client(args), packs=packs, guard=_guard(args))
    if args.execute_plan:
        if not args.confirm_write:
            print("refusing: running a plan writes to the portal; add --confirm-write", file=sys.stderr)
            return 2
        out = box.execute_plan(args.execute_plan, confirm=_confirmer(args))
    else:
        if not args.method:
            print("give a method (e.g. crm.deal.list) or --execute-plan ID", file=sys.stderr)
            return 2
        try:
            params = json.loads(args.params or "{}")
        except ValueError:
            print("--params must be a JSON object", file=sys.stderr)
            return 2
        from bitrix24_agent_tools.packs import pack_of

        pack = pack_of(args.method) or packs[0]
        if pack not in packs:
            box = Toolbox(box.client, packs=(*packs, pack), guard=box.guard)
        out = box.run(f"b24_{pack}_call", {"method": args.method, "params": params})
    # A refusal or a portal error is an error: stderr and exit 1, like every other error of the command.
    print(mask_text(out.content), file=sys.stderr if out.is_error else sys.stdout)
    return 1 if out.is_error else 0


def _cmd_packs(args: argparse.Namespace) -> int:
    from bitrix24_agent_tools.packs import PACKS
    from bitrix24_agent_tools.selection import _cost

    for name, pack in PACKS.items():  # costs from the shipped table: no tokenizer needed
        cost = sum(_cost(spec.name) for spec in pack.specs)
        print(
            f"{name:12} {len(pack.specs):2} tools {cost:5} tokens  {len(pack.catalog):3} methods  "
            f"{pack.summary}"
        )
    return 0


def _cmd_route(args: argparse.Namespace) -> int:
    from bitrix24_agent_tools.router import route

    decision = route(" ".join(args.text))
    print(f"{','.join(decision.packs)}\t{decision.reason}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="b24-agent-tools", description="Safe, token-lean Bitrix24 tools for agents."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    call = sub.add_parser("call", help="call a REST method through the guard (or run a stored plan)")
    call.add_argument("method", nargs="?", help="REST method, e.g. crm.deal.list")
    call.add_argument("--params", default="{}", help="JSON object")
    call.add_argument("--packs", default="core", help="packs whose allowlists apply (comma-separated)")
    call.add_argument("--webhook", help="webhook URL (default: B24_WEBHOOK_URL / OAuth variables)")
    call.add_argument("--confirm-write", action="store_true", help="approve this write (you are the person)")
    call.add_argument("--allow-destructive", action="store_true", help="allow destructive calls too")
    call.add_argument("--execute-plan", metavar="ID", help="run a stored plan once")
    call.add_argument("--show-plan", metavar="ID", help="show what a stored plan would do (runs nothing)")
    call.add_argument(
        "--plans", default=None, help="plan store (sqlite file; default: the user data directory)"
    )
    call.add_argument("--audit", help="audit store (sqlite file)")
    call.add_argument("--allow", action="append", help="extra allowed method pattern")
    call.add_argument("--insecure", action="store_true", help="skip TLS verification (sandbox only)")
    call.set_defaults(func=_cmd_call)
    packs = sub.add_parser("packs", help="list packs with their tool count and token cost")
    packs.set_defaults(func=_cmd_packs)
    router = sub.add_parser("route", help="show which packs a request needs")
    router.add_argument("text", nargs="+", help="the request, as a user would type it")
    router.set_defaults(func=_cmd_route)
    for name, (command, extra) in _SUBCOMMAND_MODULES.items():
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that feature is not written; others still work
                continue
            # A face whose extra is missing: the command stays, and says what to install.
            # prefix_chars that no argument uses: whatever options follow are taken as-is, not refused
            missing = sub.add_parser(
                command, help=f"(needs the [{extra}] extra)", add_help=False, prefix_chars="\x00"
            )
            missing.add_argument("rest", nargs="*")
            missing.set_defaults(func=_needs_extra(command, extra, str(exc.name)))
            continue
        module.register(sub)
    return parser


def _needs_extra(command: str, extra: str, module: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        print(
            f"`{command}` needs the [{extra}] extra ({module} is not installed): "
            f"pip install 'bitrix24-agent-tools[{extra}]'",
            file=sys.stderr,
        )
        return 2

    return run


def _version() -> str:
    from bitrix24_agent_tools._meta import package_version

    return package_version("unknown")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear one-line error, never a traceback with secrets
        print(f"error: {mask_text(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
