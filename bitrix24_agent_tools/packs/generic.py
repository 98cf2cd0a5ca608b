"""Each pack's allowlisted ``b24_<pack>_call`` tool (the typed tools live in one module per pack)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.client.errors import Bitrix24Error
from bitrix24_agent_tools.packs.base import (
    Call,
    CallRefused,
    HandlerGen,
    ToolContext,
    ToolOutput,
    ToolSpec,
    riskiest,
)
from bitrix24_agent_tools.packs.catalog import CATALOG
from bitrix24_agent_tools.packs.render import dumps, rows_output

MAX_HELP = 290  # a refusal's text is cut at 300 characters
# Refusals about the caller, not the call's parameters: no help would change them.
_NOT_THE_CALL = {
    "QUERY_LIMIT_EXCEEDED",
    "OPERATION_TIME_LIMIT",
    "ACCESS_DENIED",
    "INSUFFICIENT_SCOPE",
    "insufficient_scope",
    "expired_token",
    "invalid_token",
    "NO_AUTH_FOUND",
    "ERROR_METHOD_NOT_FOUND",
    "WRONG_AUTH_TYPE",
    "INVALID_CREDENTIALS",
    "METHOD_NOT_ALLOWED",
}


class CallArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.]+$")
    params: dict[str, Any] = Field(default_factory=dict)


def _call_handler(pack: str) -> Any:
    def handler(ctx: ToolContext, args: CallArgs) -> HandlerGen:
        try:
            response = yield Call(args.method, args.params)
        except Bitrix24Error as err:
            if err.status is None or not 400 <= int(err.status) < 500 or err.code in _NOT_THE_CALL:
                raise
            # The portal refused the call itself (a parameter missing or wrong): say what the method reads.
            from bitrix24_agent_tools.packs.diagnostics import method_brief

            brief = method_brief(args.method)
            if not brief:
                raise
            said = " ".join(err.description.split())[:120]
            raise CallRefused(f"{err.code}: {said}. {brief}"[:MAX_HELP], code=err.code) from None
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
    """The pack's methods, compactly (``im.message.add|delete|update``), so a model need not guess a name;
    the core pack (its schema budget) names its families and ``b24_check_method core`` lists them."""
    if pack == "core":
        return "crm, tasks, user, event..."
    groups: dict[str, list[str]] = {}
    for method in sorted(CATALOG[pack]):
        head, _, last = method.rpartition(".")
        groups.setdefault(head, []).append(last)
    return ", ".join(
        f"{head}.{'|'.join(lasts)}" if head else "|".join(lasts) for head, lasts in groups.items()
    )
