"""Refresh the method contracts' documented facts from a local checkout of the official REST docs.

    python tools/contracts_from_docs.py /path/to/b24restdocs            # rewrite the contract files
    python tools/contracts_from_docs.py /path/to/b24restdocs --check    # exit 1 where a file disagrees

For every method of ``bitrix24_agent_tools/contracts/<pack>.json`` it reads the page named in ``doc``: the
parameter tables under the page's parameters heading (name, type, required by a trailing ``*``, and the
values listed under "Possible/Allowed values"), nested tables of object parameters (a heading that names the
parameter, or a fields page the parameter's description links to), and the keys of the result. What the docs
cannot say — which parameter names the record, which values refer to other records, list semantics, where
``$result`` references may stand — is kept as it stands in the file: this tool reads facts, copies no prose.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent / "bitrix24_agent_tools" / "contracts"
_ROW = re.compile(r"^\|\|\s*\*\*([^*^]+?)(?:\^\*\^)?\*\*(\*?)\s*(.*)$")
_TYPE = re.compile(r"\[`([^`]+)`\]")
_HEADING = re.compile(r"^(#{2,4})\s+(.*?)\s*(?:\{#([\w-]+)\})?\s*$")
_LINK = re.compile(r"\]\((\./|\.\./)*([\w./-]*fields[\w-]*\.md)(#[\w-]+)?\)")
_VALUE = re.compile(r"^\s*-\s*`([^`]+)`\s*[—–-]")
_KEEP = ("ref", "list", "record", "switch", "reference", "secret", "file", "time", "open", "note")


def tables(lines: list[str]) -> list[tuple[str, str | None, list[dict[str, Any]]]]:
    """Every ``#| … |#`` table under a heading: (heading text, anchor, rows)."""
    out: list[tuple[str, str | None, list[dict[str, Any]]]] = []
    heading, anchor = "", None
    i = 0
    while i < len(lines):
        m = _HEADING.match(lines[i])
        if m:
            heading, anchor = m.group(2), m.group(3)
        if lines[i].strip().startswith("#|"):
            rows: list[dict[str, Any]] = []
            i += 1
            depth = 0  # a table inside a row (a list of values) is part of that row
            while i < len(lines) and not (depth == 0 and lines[i].strip().startswith("|#")):
                stripped = lines[i].strip()
                depth += stripped.startswith("#|") - stripped.startswith("|#")
                r = _ROW.match(stripped) if depth == 0 else None
                if r and r.group(1).strip() not in ("Name", "Parameter", "Code", "Status", "Field"):
                    rows.append(
                        {
                            "name": r.group(1).strip().rstrip("*"),
                            "required": bool(r.group(2))
                            or r.group(1).strip().endswith("*")
                            or "^*^" in lines[i],
                            "text": [r.group(3)],
                        }
                    )
                elif rows:
                    rows[-1]["text"].append(lines[i])
                i += 1
            out.append((heading, anchor, rows))
        i += 1
    return out


def facts(row: dict[str, Any]) -> dict[str, Any]:
    text = "\n".join(row["text"])
    types = _TYPE.findall(text.split(" | ", 1)[0].split("|", 1)[0])
    out: dict[str, Any] = {"type": "|".join(dict.fromkeys(types)) or "UNVERIFIED"}
    if row["required"]:
        out["required"] = True
    values = [m.group(1) for line in text.splitlines() if (m := _VALUE.match(line))]
    if (
        values
        and not re.search(r"object|array", out["type"])
        and re.search(r"(?i)(possible|allowed|values:|one of)", text)
    ):
        out["enum"] = values
    return out


def section(text: str) -> list[str]:
    """The lines from the parameters heading to the next second-level heading."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^##\s.*[Pp]arameters", line)), None)
    if start is None:  # a page whose parameter table stands before its first heading
        start = 0
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if re.match(r"^##\s", lines[i]) and not re.search(r"(?i)param", lines[i])
        ),
        len(lines),
    )
    return lines[start:end]


def read_page(docs: Path, page: str) -> dict[str, Any] | None:
    path = docs / page
    if not path.exists():
        return None
    part = section(path.read_text(encoding="utf-8"))
    found = tables(part)
    if not found:
        return {}
    params: dict[str, Any] = {}
    top_rows = found[0][2]
    for row in top_rows:
        params[row["name"]] = facts(row)
    for heading, anchor, rows in found[1:]:
        owner = _owner(params, top_rows, heading, anchor)
        if owner is None:  # "Additional parameters": read at the top level
            for row in rows:
                params.setdefault(row["name"], facts(row))
        else:
            owner.setdefault("fields", {})
            for row in rows:
                owner["fields"].setdefault(row["name"], facts(row))
    for row in top_rows:  # an object described on a fields page of its own
        spec = params[row["name"]]
        link = _LINK.search("\n".join(row["text"]))
        if "fields" not in spec and link and re.search(r"object|array", spec["type"]):
            target = (path.parent / link.group(2)).resolve()
            if target.exists():
                sub = tables(target.read_text(encoding="utf-8").splitlines())
                names = {r["name"]: facts(r) for _, _, rs in sub[:1] for r in rs}
                if names:
                    spec["fields"] = names
                    spec["fields_doc"] = str(target.relative_to(docs.resolve()))
    return params


def _owner(params: dict[str, Any], top_rows: list[dict[str, Any]], heading: str, anchor: str | None) -> Any:
    """The parameter (or a key of an object parameter) whose nested table this is: by the anchor its row
    links to, else by its name in the heading; None for a table of more top-level parameters."""
    texts = {r["name"]: "\n".join(r["text"]) for r in top_rows}
    candidates = [(name, spec, texts.get(name, "")) for name, spec in params.items()]
    for spec in params.values():
        for sub, sub_spec in (spec.get("fields") or {}).items():
            candidates.append((sub, sub_spec, ""))
    if anchor:
        for _name, spec, text in candidates:
            if re.search(rf"\(#{re.escape(anchor)}\)", text):
                return spec
    for name, spec, _text in reversed(candidates):  # the innermost name a heading says
        if re.search(rf"(?i)(^|[\s`]){re.escape(name)}([\s`]|$)", heading):
            return spec
    return None


def read_result(docs: Path, page: str) -> list[str]:
    """The keys the page's "Returned Data" table lists inside ``result`` (``task`` of tasks.task.add), or
    ``[]`` where the result is the value itself (an ID, a list, a bool)."""
    path = docs / page
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^#{2,3}\s+Returned Data", line)), None)
    if start is None:
        return []
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^##\s", lines[i])), len(lines))
    found = tables(lines[start:end])
    envelope = {
        "result",
        "time",
        "total",
        "next",
        "start",
        "finish",
        "duration",
        "processing",
        "date_start",
        "date_finish",
        "operating",
        "operating_reset_at",
        "error",
        "error_description",
    }
    names = [r["name"] for r in (found[0][2] if found else []) if r["name"] not in envelope]
    return names[:8] if found and any(r["name"] == "result" for r in found[0][2]) else []


def merge(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Documented facts from ``new``; the hand-read semantics of ``old`` kept."""
    out = dict(new)
    for key in _KEEP:
        if old and key in old:
            out[key] = old[key]
    if old and isinstance(old.get("fields"), dict) and isinstance(new.get("fields"), dict):
        out["fields"] = {k: merge(old["fields"].get(k), v) for k, v in new["fields"].items()}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("docs")
    ap.add_argument("--check", action="store_true")
    ns = ap.parse_args()
    docs = Path(ns.docs)
    differ = 0
    for file in sorted(ROOT.glob("*.json")):
        data = json.loads(file.read_text(encoding="utf-8"))
        for method, contract in data.get("methods", {}).items():
            doc = contract.get("doc", "")
            if not doc.startswith("api-reference/") or contract.get("verified") is False:
                continue
            params = read_page(docs, doc)
            if params is None:
                print(f"{file.name}: {method}: no page {doc}", file=sys.stderr)
                differ += 1
                continue
            merged = {k: merge(contract.get("params", {}).get(k), v) for k, v in params.items()}
            for name, extra in contract.get("params", {}).items():  # parameters read but not in the tables
                if name not in merged and extra.get("source"):
                    merged[name] = extra
            if merged != contract.get("params") or (read_result(docs, doc) or None) != contract.get("result"):
                differ += 1
                if ns.check:
                    print(f"{file.name}: {method} differs from {doc}")
            contract["params"] = merged
            result = read_result(docs, doc)
            if result:
                contract["result"] = result
            else:
                contract.pop("result", None)
        if not ns.check and "methods" in data:
            file.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 1 if ns.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
