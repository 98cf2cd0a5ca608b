"""The diagnostics pack's typed tools: explain an error code, say which pack allows a method."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.packs.base import HandlerGen, ToolContext, ToolOutput, ToolSpec
from bitrix24_agent_tools.packs.catalog import CATALOG, catalog_risk, classify, pack_of
from bitrix24_agent_tools.packs.render import dumps


class CodeArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=2, max_length=100)


def explain_error(ctx: ToolContext, args: CodeArgs) -> HandlerGen:
    from bitrix24_agent_tools.client.errors import error_from

    err = error_from(args.code.strip())
    text = f"{args.code}: {err.hint} (retryable: {'yes' if err.retryable else 'no'})"
    return ToolOutput(
        content=text, artifact={"code": args.code, "hint": err.hint, "retryable": err.retryable}
    )
    yield  # pragma: no cover — a generator that makes no calls


class MethodArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.]+$")


def check_method(ctx: ToolContext, args: MethodArgs) -> HandlerGen:
    if args.method.lower() in CATALOG:  # a pack's name: its methods, grouped by risk, in one compact line
        name = args.method.lower()
        groups: dict[str, list[str]] = {}
        for method, level in CATALOG[name].items():
            groups.setdefault(level, []).append(method)
        listing = "; ".join(
            f"{level}: {' '.join(groups[level])}"
            for level in ("read", "write", "destructive")
            if level in groups
        )
        return ToolOutput(
            content=f"{name} (b24_{name}_call) — {listing}", artifact={"pack": name, "methods": groups}
        )
    pack = pack_of(args.method)
    risk = classify(args.method)
    known = catalog_risk(args.method) is not None
    active = ctx.extra.get("packs", ())
    where = f"pack {pack}" if pack else "no pack (add it to the allowlist explicitly)"
    status = "active" if pack in active else "not active: route or enable that pack"
    text = f"{args.method}: {where}, risk {risk}{'' if known else ' (by name)'}" + (
        f", {status}" if pack else ""
    )
    reads = _reads(args.method)
    return ToolOutput(
        content=text + (f"; {reads}" if reads else ""),
        artifact={"method": args.method, "pack": pack, "risk": risk, "reads": reads},
    )
    yield  # pragma: no cover


def _reads(method: str) -> str:
    """What a method reads, from its contract (``*`` required), what it returns, its docs page."""
    from bitrix24_agent_tools.contracts import contract_for

    contract = contract_for(method)
    if contract is None:
        return ""
    if not contract.verified:
        return f"parameters UNVERIFIED ({contract.doc})"
    parts = []
    for name, spec in contract.params.items():
        kind = spec.type.split("|", 1)[0]
        keys = (
            f": {', '.join(list(spec.fields)[:12])}{' …' if len(spec.fields) > 12 else ''}"
            if spec.fields
            else ""
        )
        enum = f" one of {'/'.join(spec.enum)}" if spec.enum else ""
        names = f" → {contract.record[1]}" if contract.record and contract.record[0] == name else ""
        parts.append(f"{name}{'*' if spec.required else ''} ({kind}{enum}{names}{keys})")
    returns = f"; returns {', '.join(contract.result)}" if contract.result else ""
    shown = dumps(example(contract))
    return f"reads {'; '.join(parts) or 'no parameters'}{returns}; e.g. params={shown}; docs {contract.doc}"


_SAMPLE = {
    "integer": 1,
    "double": 10.5,
    "boolean": True,
    "date": "2026-12-07",
    "datetime": "2026-12-07T10:00:00+03:00",
    "array": [1],
    "object": {},
}


def _sample(spec: Any) -> Any:
    """A value of a parameter's type (an enumeration's first value; an object's required keys, else its
    first two) — for an example call made from the contract, not copied from anywhere."""
    if spec.enum:
        return spec.enum[0]
    if spec.fields:
        keys = [k for k, v in spec.fields.items() if v.required] or list(spec.fields)[:2]
        return {k: _sample(spec.fields[k]) for k in keys}
    kind = spec.type.split("|", 1)[0].lower()
    if spec.refers_to or kind in ("user", "employee") or kind.startswith("crm_"):
        return 1
    return _SAMPLE.get(kind, "…")


def example(contract: Any) -> dict[str, Any]:
    """Example params for a method: its required parameters (else its first two), each with a value of its
    type."""
    names = [n for n, p in contract.params.items() if p.required] or list(contract.params)[:2]
    return {n: _sample(contract.params[n]) for n in names}


def method_help(method: str) -> str:
    """One line a model can act on: what ``method`` reads, returns, an example, its docs page."""
    return _reads(method)


def method_brief(method: str) -> str:
    """What ``method`` needs, in the few words an error has room for: its required parameters, the others'
    names, an example; "" for a method without a verified contract."""
    from bitrix24_agent_tools.contracts import contract_for

    contract = contract_for(method)
    if contract is None or not contract.verified:
        return ""
    needed = [n for n, p in contract.params.items() if p.required]
    others = [n for n in contract.params if n not in needed]
    also = f" (also reads {', '.join(others[:8])}{' …' if len(others) > 8 else ''})" if others else ""
    return (
        f"{method} needs {', '.join(needed) or 'no parameter'}{also}; e.g. params={dumps(example(contract))}"
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_explain_error",
            "Explain a Bitrix24 error code: cause and fix.",
            CodeArgs,
            "read",
            (),
            explain_error,
            "diagnostics",
        ),
        ToolSpec(
            "b24_check_method",
            "A method's parameters, an example and what it returns; or a pack's methods.",
            MethodArgs,
            "read",
            (),
            check_method,
            "diagnostics",
        ),
    ]
