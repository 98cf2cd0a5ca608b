"""Results as pandas DataFrames, for notebooks (extra ``notebook``).

    from bitrix24_agent_tools.frames import to_dataframe
    to_dataframe(client.export("crm.deal.list", {"select": ["ID", "TITLE"]}))
    to_dataframe(box.run("b24_crm_list", {"entity": "deal"}))     # every field, not the model's compact text
    to_dataframe(guard.audit.rows())                               # the audit trail

Accepts a list of records (dicts or dataclasses), a tool's output (its full data), a LlamaIndex
``ToolResult``, or our compact table (``{"columns": [...], "rows": [[...]]}``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def records(value: Any) -> list[dict[str, Any]]:
    """The rows a value holds, as dicts (no pandas needed)."""
    data = value
    if hasattr(value, "artifact") and hasattr(value, "content"):  # ToolOutput: the full data
        data = value.artifact
    elif hasattr(value, "data") and isinstance(value, str):  # LlamaIndex ToolResult
        data = getattr(value, "data", None)
    if isinstance(data, Mapping):
        if isinstance(data.get("rows"), list) and isinstance(data.get("columns"), list):
            return [dict(zip(data["columns"], row, strict=False)) for row in data["rows"]]
        for key in ("items", "tasks", "result"):
            if isinstance(data.get(key), list):
                return records(data[key])
        return [dict(data)]
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        out = []
        for row in data:
            if dataclasses.is_dataclass(row) and not isinstance(row, type):
                out.append(dataclasses.asdict(row))
            elif isinstance(row, Mapping):
                out.append(dict(row))
            else:
                out.append({"value": row})
        return out
    return [] if data is None else [{"value": data}]


def to_dataframe(value: Any, columns: Sequence[str] | None = None) -> Any:
    """A ``pandas.DataFrame`` of the rows a value holds (``columns`` picks and orders them)."""
    try:
        import pandas as pd  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError("DataFrames need pandas: pip install 'bitrix24-agent-tools[notebook]'") from exc
    frame = pd.DataFrame(records(value))
    return frame[list(columns)] if columns is not None else frame
