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
        if len(value) <= limit:
            return value  # kept whole: ``dumps`` masks it with everything else
        value = mask_text(value)  # about to be cut: masked first, so no part of a secret survives the cut
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
    searched: str = "",
    asked: int | None = None,
) -> ToolOutput:
    """A list result: at most ``ctx.max_items`` rows with the chosen fields, plus how to get more.

    Rows of records go out as a table — the column names once, each row as an array (about half the tokens of
    a list of objects); the full rows stay in the artifact. An empty result says what was searched (so "none"
    is told apart from a misread filter); a ``limit`` above what a tool shows at once is said, not cut
    silently.
    """
    shown = [cut(pick(r, fields), ctx.max_chars) for r in rows[: ctx.max_items]]
    body: dict[str, Any] = (
        table(shown) if shown and all(isinstance(r, Mapping) for r in shown) else {"items": shown}
    )
    count = total if total is not None else len(rows)
    body["count"] = count
    if not rows and searched:
        body["searched"] = searched
    if asked is not None and asked > ctx.max_items and len(rows) > len(shown):
        body["note"] = f"a tool shows at most {ctx.max_items} rows at once ({asked} asked)"
    if len(rows) > ctx.max_items or more:
        body["more"] = (
            hint or f"showing {len(shown)} of {count if total is not None else 'more'}; narrow the filter"
        )
    return ToolOutput(content=dumps(body), artifact=rows)


def table(rows: list[Any]) -> dict[str, Any]:
    """``{"columns": [...], "rows": [[...], ...]}``: every key once, in first-seen order; a missing value
    is null."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return {"columns": columns, "rows": [[row.get(c) for c in columns] for row in rows]}


def rows_of(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of a list result as objects again (for code that reads our output, e.g. a scripted model)."""
    if isinstance(body.get("items"), list):
        return list(body["items"])
    columns = body.get("columns") or []
    return [dict(zip(columns, row, strict=False)) for row in body.get("rows") or []]


def record_output(ctx: ToolContext, record: Any, fields: Iterable[str] | None = None) -> ToolOutput:
    chosen = pick(record, list(fields)) if fields else record
    return ToolOutput(content=dumps(cut(chosen, ctx.max_chars)), artifact=record)


def done_output(message: str, artifact: Any = None) -> ToolOutput:
    return ToolOutput(content=mask_text(message), artifact=artifact)
