"""Tool results for a model: compact JSON text (chosen fields, long text cut, a hint when more exists)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bitrix24_agent_tools.masking import mask_params, mask_text
from bitrix24_agent_tools.packs.base import ToolContext, ToolOutput


def cut(value: Any, limit: int) -> Any:
    """Shorten long strings (and nested ones) so one record cannot flood the context — masked first, so a cut
    can never leave part of a secret that the mask would no longer recognise."""
    if isinstance(value, str):
        value = mask_text(value)
        return value if len(value) <= limit else value[: max(0, limit - 1)] + "…"
    if isinstance(value, Mapping):
        return {k: cut(v, limit) for k, v in value.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [cut(v, limit) for v in value]
    return value


def pick(row: Any, fields: Sequence[str] | None) -> Any:
    if not fields or not isinstance(row, Mapping):
        return row
    lower = {str(k).lower(): k for k in row}
    return {lower[f.lower()]: row[lower[f.lower()]] for f in fields if f.lower() in lower}


def dumps(value: Any) -> str:
    return mask_text(json.dumps(mask_params(value), ensure_ascii=False, separators=(",", ":"), default=str))


def rows_output(
    ctx: ToolContext,
    rows: list[Any],
    *,
    fields: Sequence[str] | None = None,
    total: int | None = None,
    more: bool = False,
    hint: str = "",
) -> ToolOutput:
    """A list result: at most ``ctx.max_items`` rows with the chosen fields, plus how to get more."""
    shown = [cut(pick(r, fields), ctx.max_chars) for r in rows[: ctx.max_items]]
    body: dict[str, Any] = {"items": shown}
    count = total if total is not None else len(rows)
    body["count"] = count
    if len(rows) > ctx.max_items or more:
        body["more"] = hint or f"showing {len(shown)} of {count if total is not None else 'more'}; narrow the filter"
    return ToolOutput(content=dumps(body), artifact=rows)


def record_output(ctx: ToolContext, record: Any, fields: Iterable[str] | None = None) -> ToolOutput:
    chosen = pick(record, list(fields)) if fields else record
    return ToolOutput(content=dumps(cut(chosen, ctx.max_chars)), artifact=record)


def done_output(message: str, artifact: Any = None) -> ToolOutput:
    return ToolOutput(content=mask_text(message), artifact=artifact)
