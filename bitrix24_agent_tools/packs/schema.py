"""The JSON schema a model sees, stripped of everything that does not change its behaviour."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Titles and examples repeat the name; length and pattern limits rarely change what a model sends and are
# still enforced when the Toolbox validates the arguments, so the model is told about them only through the
# error.
_DROP = {
    "title",
    "examples",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "exclusiveMinimum",
    "minimum",
    "maximum",
}


def compact_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Pydantic's schema without titles, with $refs inlined and ``X | None`` shown as ``X``."""
    raw = model.model_json_schema()
    defs = raw.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                target = defs[node["$ref"].rsplit("/", 1)[-1]]
                merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                return walk(merged)
            any_of = node.get("anyOf")
            if isinstance(any_of, list):
                rest = [n for n in any_of if n != {"type": "null"}]
                if len(rest) == 1:
                    node = {**{k: v for k, v in node.items() if k != "anyOf"}, **rest[0]}
            out = {}
            for key, value in node.items():
                if key in _DROP and not isinstance(value, dict):
                    continue
                if key == "default" and value is None:
                    continue
                if key == "additionalProperties" and value is True:
                    continue
                out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(n) for n in node]
        return node

    schema = walk(raw)
    schema.pop("description", None)  # the tool's own description says it
    schema.pop("additionalProperties", None)  # extras are refused by validation; the model need not read it
    if not schema.get("required"):
        schema.pop("required", None)
    return schema  # type: ignore[no-any-return]
