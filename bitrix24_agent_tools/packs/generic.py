"""Each pack's allowlisted ``b24_<pack>_call`` tool, and the few typed tools of the smaller packs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolOutput, ToolSpec, riskiest
from bitrix24_agent_tools.packs.catalog import CATALOG, catalog_risk, classify, pack_of
from bitrix24_agent_tools.packs.render import done_output, dumps, rows_output


class CallArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.]+$")
    params: dict[str, Any] = Field(default_factory=dict)


def _call_handler(pack: str) -> Any:
    def handler(ctx: ToolContext, args: CallArgs) -> HandlerGen:
        response = yield Call(args.method, args.params)
        result = response.result
        rows = result if isinstance(result, list) else None
        if isinstance(result, dict):
            for key in ("items", "tasks"):
                if isinstance(result.get(key), list):
                    rows = result[key]
        if rows is not None:
            return rows_output(ctx, rows, total=response.total, more=response.next is not None,
                               hint=f"more rows: call again with params.start={response.next}" if response.next else "")
        return ToolOutput(content=dumps(result), artifact=result)

    handler.__name__ = f"{pack}_call"
    return handler


def call_spec(pack: str) -> ToolSpec:
    methods = tuple(CATALOG[pack])
    risk = riskiest([r for r in CATALOG[pack].values()])
    return ToolSpec(f"b24_{pack}_call", f"Call a Bitrix24 {pack} REST method (pack allowlist).", CallArgs, risk,
                    methods, _call_handler(pack), pack, generic=True)


class SendArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dialog_id: str = Field(min_length=1, max_length=64, description="user id, or chatN")
    message: str = Field(min_length=1, max_length=20000)


def chat_send(ctx: ToolContext, args: SendArgs) -> HandlerGen:
    response = yield Call("im.message.add", {"DIALOG_ID": args.dialog_id, "MESSAGE": args.message})
    return done_output(f"message #{response.result} sent to {args.dialog_id}", {"id": response.result})


class NotifyArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: int = Field(gt=0)
    message: str = Field(min_length=1, max_length=5000)


def notify(ctx: ToolContext, args: NotifyArgs) -> HandlerGen:
    response = yield Call("im.notify.system.add", {"USER_ID": args.user_id, "MESSAGE": args.message})
    return done_output(f"notification #{response.result} sent to user {args.user_id}", {"id": response.result})


class CodeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=2, max_length=100)


def explain_error(ctx: ToolContext, args: CodeArgs) -> HandlerGen:
    from bitrix24_agent_tools.client.errors import error_from

    err = error_from(args.code.strip())
    text = f"{args.code}: {err.hint} (retryable: {'yes' if err.retryable else 'no'})"
    return ToolOutput(content=text, artifact={"code": args.code, "hint": err.hint, "retryable": err.retryable})
    yield  # pragma: no cover — a generator that makes no calls


class MethodArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.]+$")


def check_method(ctx: ToolContext, args: MethodArgs) -> HandlerGen:
    pack = pack_of(args.method)
    risk = classify(args.method)
    known = catalog_risk(args.method) is not None
    active = ctx.extra.get("packs", ())
    where = f"pack {pack}" if pack else "no pack (add it to the allowlist explicitly)"
    status = "active" if pack in active else "not active: route or enable that pack"
    text = f"{args.method}: {where}, risk {risk}{'' if known else ' (by name)'}" + (f", {status}" if pack else "")
    return ToolOutput(content=text, artifact={"method": args.method, "pack": pack, "risk": risk})
    yield  # pragma: no cover


def comms_specs() -> list[ToolSpec]:
    return [
        ToolSpec("b24_chat_send", "Send a chat message.", SendArgs, "write", ("im.message.add",), chat_send, "comms"),
        ToolSpec("b24_notify", "Send a system notification to a user.", NotifyArgs, "write",
                 ("im.notify.system.add",), notify, "comms"),
    ]


def diagnostics_specs() -> list[ToolSpec]:
    return [
        ToolSpec("b24_explain_error", "Explain a Bitrix24 error code: cause and fix.", CodeArgs, "read", (),
                 explain_error, "diagnostics"),
        ToolSpec("b24_check_method", "Which pack allows a method and its risk.", MethodArgs, "read", (),
                 check_method, "diagnostics"),
    ]
